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

typedef enum {
  EF_JOURNAL_STARTED = 1, /* a unit was handed to a rank (no result) */
  EF_JOURNAL_DONE = 2,    /* a unit finished (ok or failed), with its result */
} ef_journal_kind;

typedef struct {
  int32_t kind;     /* ef_journal_kind */
  int32_t unit;
  int32_t status;   /* DONE: EF_OK or the failing status */
  int32_t rank;
  int32_t attempts; /* DONE: tries it took (1 = first time) */
  double wall_s;
} ef_journal_record;

/* Called for every valid record, in order, when resuming or scanning;
 * result is NULL for STARTED records. */
typedef void (*ef_journal_visit)(void *arg, const ef_journal_record *rec, const double *result);

/* Open path for appending. config_hash, n_units and result_len identify the
 * campaign: resuming a journal of another campaign is refused (EF_ERR_INPUT).
 * resume = 0 creates a new journal (an existing one is an error: the caller
 * decides whether to remove it). */
int ef_journal_open(ef_ctx *ctx, ef_journal **out, const char *path, uint64_t config_hash,
                    uint32_t n_units, uint32_t result_len, int resume, ef_journal_visit visit,
                    void *arg);
/* Append one record (one write(2) call; fdatasync at most once a second).
 * result (result_len doubles) is read for DONE records only. */
int ef_journal_append(ef_ctx *ctx, ef_journal *j, const ef_journal_record *rec,
                      const double *result);
/* fdatasync what was appended so far (before the job is ended on purpose). */
int ef_journal_sync(ef_ctx *ctx, ef_journal *j);
/* Read a journal without taking it over (safe while a run appends to it):
 * its size parameters, then every whole record. EF_ERR_INPUT if path is
 * not a journal. */
int ef_journal_scan(ef_ctx *ctx, const char *path, uint32_t *n_units, uint32_t *result_len,
                    ef_journal_visit visit, void *arg);
void ef_journal_close(ef_journal *j); /* accepts NULL */

/* FNV-1a 64-bit hash (of the resolved config text, for example). */
uint64_t ef_hash64(const void *data, size_t len);

#endif
