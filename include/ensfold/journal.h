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
#include "ensfold/identity.h"

typedef struct ef_journal ef_journal;

/* The run that holds a journal, as its header records it. */
typedef struct {
  char host[64];
  int32_t pid;
  int32_t pad;
  int64_t since; /* Unix time the run took the journal */
} ef_journal_owner;

typedef enum {
  EF_JOURNAL_ABSENT,  /* no file */
  EF_JOURNAL_EMPTY,   /* shorter than a header: created, never written (disk full?) */
  EF_JOURNAL_IDLE,    /* a journal no run holds: an interrupted run's */
  EF_JOURNAL_LIVE,    /* a run holds its lock now (the owner says which) */
  EF_JOURNAL_FOREIGN, /* not an ensfold journal of this version */
} ef_journal_state;

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

/* Open path for appending and hold its lock (flock) until close. id,
 * n_units and result_len identify the campaign: resuming a journal of
 * another campaign (config or input events changed: names[0] and names[1]
 * say where the data and MC come from, for the message) is refused
 * (EF_ERR_INPUT), as is a journal another run holds (naming its host and
 * pid). resume = 0 creates a new journal (an existing one is an error: the
 * caller decides whether to remove it); an EMPTY journal is started afresh
 * either way. A journal that cannot be created whole is removed again. */
int ef_journal_open(ef_ctx *ctx, ef_journal **out, const char *path, const ef_identity *id,
                    const char *const names[2], uint32_t n_units, uint32_t result_len,
                    int resume, ef_journal_visit visit, void *arg);
/* Remove the journal at path (--overwrite), unless a run holds it: then
 * EF_ERR_INPUT naming that run's host and pid. No file is fine. */
int ef_journal_remove(ef_ctx *ctx, const char *path);
/* What is at path, without changing it; owner (may be NULL) gets the
 * header's owner for IDLE and LIVE journals. */
ef_journal_state ef_journal_probe(const char *path, ef_journal_owner *owner);
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

#endif
