/* Dynamic scheduling of units over MPI ranks.
 *
 * Every rank is a worker. Rank 0 also runs the coordinator in a second
 * thread (MPI_THREAD_MULTIPLE): it hands out units costliest first, except
 * that a rank whose last unit had an affinity key (ef_plan_affinity: GAN
 * networks or OmniFold iterations it keeps) gets the next unit with that key when one is
 * near the head of the order (src/campaign/dispatch.h); it collects results
 * as they finish and reports progress. The coordinator sleeps while
 * idle (probe, then a nap of 50 us doubling to 5 ms), so rank 0's worker keeps its core: N ranks
 * on N cores give N workers. Every wait for another rank (a worker waiting
 * for its next unit, the final agreement) is a nonblocking call tested
 * between naps of 2 us doubling to 5 ms: Open MPI's blocking calls
 * busy-poll, and a rank waiting on a stalled peer would burn a core.
 *
 * Stalls: the coordinator knows which unit each rank holds and since when,
 * and the longest unit so far L (seeded from wall_s of resumed units). A
 * unit running longer than W = max(stall_warn_s, 10 L) is reported once per
 * crossing (again at 2W, 4W, ...) with its rank, host, running time and L;
 * one running longer than S = max(stall_stop_s, 30 L) ends the job: an
 * error names every unit in flight (rank, host, running time), on_stall_stop
 * syncs what must survive (the journal, where they are recorded as started),
 * and the coordinator calls MPI_Abort(comm, 3). Aborting there, not in main,
 * is deliberate: a stopped process can take part in no collective, and rank
 * 0's worker may be inside a unit for minutes, so nothing can return to the
 * top. 0 turns warnings or the stop off.
 *
 * Collective over ef_ctx_comm(ctx); a serial context runs the units in
 * dispatch order in the calling thread (no stall watch: nobody is left to
 * watch). */
#ifndef ENSFOLD_SCHEDULER_H
#define ENSFOLD_SCHEDULER_H

#include <stddef.h>

#include "ensfold/plan.h"

/* Compute unit id into result (result_len doubles); returns a status and
 * sets *attempts to the tries it took. */
typedef int (*ef_work_fn)(void *arg, int32_t unit, double *result, int *attempts);
/* Rank 0 (coordinator thread): a unit finished on rank `rank`. ctx is the
 * coordinator's own context (errors set there do not race with the worker
 * thread's). Returning non-OK stops the campaign (no more units are handed
 * out). */
typedef int (*ef_result_fn)(ef_ctx *ctx, void *arg, int32_t unit, int status, double wall_s,
                            int rank, int attempts, const double *result);
/* Rank 0 (coordinator thread): unit was just handed to rank. Non-OK stops
 * the campaign. */
typedef int (*ef_start_fn)(ef_ctx *ctx, void *arg, int32_t unit, int rank);
/* Rank 0 (coordinator thread): the job is about to be ended for a stall;
 * make durable what must survive (gets result_arg). */
typedef int (*ef_stall_stop_fn)(ef_ctx *ctx, void *arg);

typedef struct {
  const unsigned char *skip; /* (n_units) units already done (resume), or NULL */
  size_t result_len;         /* doubles per unit result */
  ef_work_fn work;
  void *work_arg;
  ef_result_fn on_result;
  void *result_arg;
  ef_start_fn on_start;      /* may be NULL; gets result_arg */
  int quiet;                 /* no progress lines */
  double progress_every_s;   /* default 2 s when 0 */
  const double *wall_s;      /* (n_units) wall time of the skipped units, s, or NULL */
  double stall_warn_s;       /* floor of the warning threshold W, s; 0 = no warnings */
  double stall_stop_s;       /* floor of the stop threshold S, s; 0 = never stop */
  ef_stall_stop_fn on_stall_stop; /* may be NULL; gets result_arg */
} ef_schedule;

/* Returns EF_OK when every unit was run (individual units may have
 * failed: on_result saw their status), or the first fatal error. */
int ef_scheduler_run(ef_ctx *ctx, const ef_plan *plan, const ef_schedule *s);

#endif
