/* Event samples in memory and in HDF5 event files (docs/formats.md).
 *
 * A sample lives in an event space (include/ensfold/space.h): D observables
 * and K categories. An event file has a group /events with
 *   topology  int8    (N)     the category, 0..K-1 (pi0: T0..T3)
 *   reco      float64 (N, D)  the reconstructed observables; NaN in a
 *                             blind category (pi0: cos theta*, phi*)
 *   vertex    float64 (N, D)  MC only: the true observables
 *   prob      float32 (N, K)  MC only: P(category | vertex)
 *   weight    float64 (N)     optional, finite and >= 0
 * and attributes model, beam_energy, seed, kind ("data" or "mc"),
 * ensfold_version on the group; format version 2 also declares the space
 * there (format_version, observables, ...). A version 1 file (no
 * format_version) is the pi0 space. The reader validates everything and
 * names the file, dataset and row of the first problem. */
#ifndef ENSFOLD_EVENTS_H
#define ENSFOLD_EVENTS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ensfold/ctx.h"
#include "ensfold/space.h"

typedef enum { EF_KIND_DATA = 0, EF_KIND_MC = 1 } ef_event_kind;

/* A plain container (like gsl_vector): the arrays are the data. */
typedef struct {
  size_t n;
  ef_event_kind kind;
  ef_space space;   /* D = space.dim observables, K = space.n_cat categories */
  int8_t *topology; /* (n) category */
  double *reco;     /* (n, D) */
  double *vertex;   /* (n, D) or NULL */
  float *prob;      /* (n, K) or NULL */
  double *weight;   /* (n) or NULL */
  char model[16];   /* generator model name, "" if unknown */
  double beam_energy; /* GeV, NAN if unknown */
  uint64_t seed;
  int has_seed;
} ef_events;

/* The most events one file may hold: the response and the GAN index events
 * with int32. ef_events_read also refuses a file whose arrays would take
 * more than a quarter of the memory the process may use (docs/formats.md). */
#define EF_EVENTS_MAX 2147483647u

#define EF_EVENTS_VERTEX 1u /* allocate vertex */
#define EF_EVENTS_PROB 2u   /* allocate prob */
#define EF_EVENTS_WEIGHT 4u /* allocate weight */

/* Is event e in a seen category (pi0: T1..T3) with every reconstructed
 * observable finite? */
static inline int ef_events_measured(const ef_events *ev, size_t e) {
  const int D = ev->space.dim;
  if (ev->space.cat[ev->topology[e]].blind) return 0;
  for (int d = 0; d < D; d++)
    if (!isfinite(ev->reco[(size_t)D * e + (size_t)d])) return 0;
  return 1;
}

/* The observables a partly reconstructed category loses (gauss's partial
 * category): lost[c D + j] = 1 when at least two of the listed events are
 * measured in category c and all of them record one value for observable j,
 * val[c D + j] (val may be NULL). idx lists the events to look at, repeats
 * allowed (NULL: events 0..n-1). lost, val: (K, D). */
void ef_events_lost(const ef_events *ev, const int32_t *idx, size_t n, unsigned char *lost,
                    double *val);

/* n events of the given space (copied into ev->space). */
int ef_events_alloc(ef_ctx *ctx, ef_events *ev, const ef_space *space, size_t n,
                    ef_event_kind kind, unsigned what);
void ef_events_free(ef_events *ev); /* accepts a zeroed or freed struct */

/* Check shapes, ranges and NaN placement in memory; name is used in
 * messages (the file name when read from disk). */
int ef_events_validate(ef_ctx *ctx, const ef_events *ev, const char *name);

/* Write to path atomically: a temporary file in the same directory is
 * renamed over path only when complete, so a failure never damages an
 * existing file. Serial (not collective). */
int ef_events_write(ef_ctx *ctx, const ef_events *ev, const char *path);
/* Read and validate. MC files must have vertex and prob. What the file
 * declares is checked against what it holds, EF_EVENTS_MAX and the memory
 * limit before anything is allocated for it (docs/formats.md). */
int ef_events_read(ef_ctx *ctx, const char *path, ef_events *out);

const char *ef_event_kind_name(ef_event_kind kind);

#endif
