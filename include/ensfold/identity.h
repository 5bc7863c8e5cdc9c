/* The identity of a campaign: what its results depend on besides the code.
 *
 * Three 64-bit hashes: the resolved config text and the content of the data
 * and MC event samples as they were read (arrays and the attributes that
 * matter, not the file's bytes: the same events in another HDF5 layout are
 * the same input). The journal records the identity it was started with and
 * the result file carries the identity it was computed from, so `--resume`
 * can refuse to mix a changed input into a campaign (docs/robustness.md).
 * The hashes detect accidental change; they are not a cryptographic seal. */
#ifndef ENSFOLD_IDENTITY_H
#define ENSFOLD_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "ensfold/ctx.h"
#include "ensfold/events.h"

typedef struct {
  uint64_t config; /* ef_hash64 of the resolved config (after its "source" line) */
  uint64_t data;   /* ef_events_hash of the data sample */
  uint64_t mc;     /* ef_events_hash of the MC sample */
} ef_identity;

/* FNV-1a 64-bit hash of len bytes (short texts: the config). */
uint64_t ef_hash64(const void *data, size_t len);
/* Fast 64-bit hash of len bytes, 8-byte words in four lanes (large arrays). */
uint64_t ef_hash64_fast(const void *data, size_t len);
/* Content hash of an event sample: n, kind, every array present (which are
 * present counts too), the beam energy and the model name. */
uint64_t ef_events_hash(const ef_events *ev);

/* The identity of the resolved config text and the two samples. */
void ef_identity_make(ef_identity *id, const char *config_text, const ef_events *data,
                      const ef_events *mc);
/* 1 when a and b are the same campaign, else 0 and a phrase naming what
 * differs into why (e.g. "the data events (data.file 'x.h5') differ");
 * data_name and mc_name say where the samples come from. */
int ef_identity_same(const ef_identity *a, const ef_identity *b, const char *data_name,
                     const char *mc_name, char *why, size_t len);

#endif
