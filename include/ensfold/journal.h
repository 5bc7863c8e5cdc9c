/* The campaign journal: an append-only file next to the result file that
 * records every finished unit (status, wall time, rank, result) as soon as
 * the coordinator has it. A run killed at any moment leaves only whole
 * records (each is checksummed; a torn tail is dropped on resume), so
 * --resume redoes exactly the units without a record. Rank 0 only. */
#ifndef ENSFOLD_JOURNAL_H
#define ENSFOLD_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ensfold/ctx.h"

typedef struct ef_journal ef_journal;

typedef struct {
  int32_t unit;
  int32_t status; /* EF_OK or the failing status */
  int32_t rank;
  double wall_s;
} ef_journal_record;

/* Called for every valid record found when resuming. */
typedef void (*ef_journal_visit)(void *arg, const ef_journal_record *rec, const double *result);

/* Open path for appending. config_hash, n_units and result_len identify the
 * campaign: resuming a journal of another campaign is refused (EF_ERR_INPUT).
 * resume = 0 creates a new journal (an existing one is an error: the caller
 * decides whether to remove it). */
int ef_journal_open(ef_ctx *ctx, ef_journal **out, const char *path, uint64_t config_hash,
                    uint32_t n_units, uint32_t result_len, int resume, ef_journal_visit visit,
                    void *arg);
/* Append one record (one write(2) call; fdatasync at most once a second). */
int ef_journal_append(ef_ctx *ctx, ef_journal *j, const ef_journal_record *rec,
                      const double *result);
void ef_journal_close(ef_journal *j); /* accepts NULL */

/* FNV-1a 64-bit hash (of the resolved config text, for example). */
uint64_t ef_hash64(const void *data, size_t len);

#endif
