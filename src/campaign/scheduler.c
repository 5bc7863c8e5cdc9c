/* Coordinator thread on rank 0, a worker loop on every rank. */
#include "ensfold/scheduler.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "dispatch.h"

#define TAG_READY 101  /* worker -> coordinator: header (+ result) */
#define TAG_ASSIGN 102 /* coordinator -> worker: unit id, -1 = stop */

typedef struct {
  int32_t has_result, unit, status, rank, attempts, pad;
  double wall_s;
} msg_header;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sleep *ns, then double it up to 5 ms: quick answers for tiny units, and a
 * negligible share of a core while waiting seconds (a training unit) or on a
 * stalled peer. */
static void nap(long *ns) {
  struct timespec d = {0, *ns};
  nanosleep(&d, NULL);
  if (*ns < 5000000) *ns *= 2;
}

/* What the coordinator knows of one rank's current unit. */
typedef struct {
  int32_t unit;     /* the unit it holds, -1 = none */
  double since;     /* when it was handed out, now_s() */
  double next_warn; /* running time of the next stall warning; 0 = at the threshold */
} rank_watch;

typedef struct {
  ef_ctx *ctx; /* the coordinator thread's own context */
  MPI_Comm comm;
  const ef_plan *plan;
  const ef_schedule *s;
  int size;          /* ranks, every one a worker */
  int rc;            /* coordinator's outcome */
  char err[1024];    /* its message */
  const char *hosts; /* (size, MPI_MAX_PROCESSOR_NAME): each rank's host */
  rank_watch *watch; /* (size) */
  double longest;    /* longest unit wall time so far, s */
  double last_check; /* last stall check, now_s() */
} coord_state;

/* Wait for req without busy-polling: MPI_Test between naps of 2 us
 * doubling to 5 ms; the coordinator passes itself to keep watching for
 * stalls meanwhile. */
static void watch_stalls(coord_state *cs);
static int wait_napping(MPI_Request *req, MPI_Status *st, coord_state *watcher) {
  long ns = 2000;
  for (;;) {
    int flag = 0, mrc = MPI_Test(req, &flag, st ? st : MPI_STATUS_IGNORE);
    if (mrc != MPI_SUCCESS || flag) return mrc;
    if (watcher) watch_stalls(watcher);
    nap(&ns);
  }
}

static const char *host_of(const coord_state *cs, int rank) {
  return cs->hosts + (size_t)rank * MPI_MAX_PROCESSOR_NAME;
}

/* A stall past S: name every unit in flight, sync the journal, end the job.
 * Does not return unless MPI_Abort fails. */
static void stop_stalled(coord_state *cs, int rank, double t, double stop) {
  char list[1024];
  size_t used = 0;
  int n = 0;
  for (int r = 0; r < cs->size; r++) {
    const rank_watch *w = &cs->watch[r];
    if (w->unit < 0) continue;
    if (used + 96 < sizeof list)
      used += (size_t)snprintf(list + used, sizeof list - used, "%sunit %d (rank %d, %s, %.1f s)",
                               n ? ", " : "", w->unit, r, host_of(cs, r), t - w->since);
    else if (used + 5 < sizeof list)
      used += (size_t)snprintf(list + used, sizeof list - used, ", ...");
    n++;
  }
  ef_log(cs->ctx, EF_LOG_ERROR,
         "stall: unit %d on rank %d (%s) has run %.1f s, past the stop threshold %.3g s "
         "(--stall-stop %g s, or 30 x the longest unit so far, %.3f s); stopping the job. "
         "%d unit(s) in flight: %s. They are in the journal as started: rerun with --resume "
         "to run them again (with a larger --stall-stop if they are merely slow)",
         cs->watch[rank].unit, rank, host_of(cs, rank), t - cs->watch[rank].since, stop,
         cs->s->stall_stop_s, cs->longest, n, list);
  if (cs->s->on_stall_stop && cs->s->on_stall_stop(cs->ctx, cs->s->result_arg) != EF_OK)
    ef_log(cs->ctx, EF_LOG_ERROR, "%s", ef_error_message(cs->ctx));
  /* a stopped rank can take part in nothing: end the whole job from here */
  int mrc = MPI_Abort(cs->comm, ef_status_exit_code(EF_ERR_MPI));
  ef_log(cs->ctx, EF_LOG_ERROR, "MPI_Abort failed (%d): kill the job by hand", mrc);
}

/* Warn about units running past W (once per crossing: W, 2W, 4W, ...),
 * stop the job for one past S. At most every 0.1 s. */
static void watch_stalls(coord_state *cs) {
  const ef_schedule *s = cs->s;
  double t = now_s();
  if (t - cs->last_check < 0.1 || (s->stall_warn_s <= 0 && s->stall_stop_s <= 0)) return;
  cs->last_check = t;
  double warn = fmax(s->stall_warn_s, 10.0 * cs->longest);
  double stop = fmax(s->stall_stop_s, 30.0 * cs->longest);
  for (int r = 0; r < cs->size; r++) {
    rank_watch *w = &cs->watch[r];
    if (w->unit < 0) continue;
    double run = t - w->since, at = fmax(warn, w->next_warn);
    if (s->stall_stop_s > 0 && run > stop) {
      stop_stalled(cs, r, t, stop);
      s = cs->s; /* MPI_Abort failed: keep warning */
    }
    if (s->stall_warn_s <= 0 || run <= at) continue;
    w->next_warn = 2.0 * at;
    char then[96] = "--stall-stop 0: the job waits";
    if (s->stall_stop_s > 0) snprintf(then, sizeof then, "the job stops at %.3g s", stop);
    if (s->stall_stop_s <= 0 || w->next_warn < stop)
      snprintf(then + strlen(then), sizeof then - strlen(then), ", next warning at %.3g s",
               w->next_warn);
    ef_log(cs->ctx, EF_LOG_WARN,
           "stall? unit %d on rank %d (%s) has run %.1f s, past %.3g s (--stall-warn %g s, or "
           "10 x the longest unit so far, %.3f s); %s", w->unit, r, host_of(cs, r), run, at,
           s->stall_warn_s, cs->longest, then);
  }
}

/* Rank r asked for work, having finished h->unit if h->has_result. */
static void watch_ready(coord_state *cs, int r, const msg_header *h, double t) {
  rank_watch *w = &cs->watch[r];
  if (h->has_result && h->wall_s > cs->longest) cs->longest = h->wall_s;
  if (w->unit >= 0 && w->next_warn > 0)
    ef_log(cs->ctx, EF_LOG_WARN, "unit %d on rank %d (%s) reported stalled has finished after %.1f s",
           w->unit, r, host_of(cs, r), t - w->since);
  w->unit = -1;
  w->next_warn = 0.0;
}

static void watch_assign(coord_state *cs, int r, int32_t unit, double t) {
  cs->watch[r] = (rank_watch){unit, t, 0.0};
}

static void progress(ef_ctx *ctx, size_t done, size_t total, size_t resumed, double t0) {
  double el = now_s() - t0, rate = (done - resumed) / (el > 0 ? el : 1e-9);
  double eta = rate > 0 ? (double)(total - done) / rate : 0.0;
  ef_log(ctx, EF_LOG_INFO, "units %zu/%zu done (%zu resumed), %.2f units/s, ETA %.0f s", done,
         total, resumed, rate, eta);
}

/* The dispatch of the plan's units over size ranks: dispatch order, and a
 * rank keeps to its previous unit's affinity key where it can. */
static int make_dispatch(ef_ctx *ctx, const ef_plan *plan, const unsigned char *skip, int size,
                         ef_dispatch **out) {
  size_t n = ef_plan_n_units(plan);
  int32_t *key = malloc((n ? n : 1) * sizeof *key);
  if (!key) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for %zu affinity keys", n);
  for (size_t u = 0; u < n; u++) key[u] = ef_plan_affinity(plan, (int32_t)u);
  int rc = ef_dispatch_create(ctx, out, n, ef_plan_order(plan), key, skip, size);
  free(key);
  return rc;
}

/* What the coordinator cost: its own CPU time against the wall time. */
static void report_cpu(ef_ctx *ctx, int quiet, double t0, size_t units) {
  struct timespec cpu;
  double wall = now_s() - t0;
  if (quiet || clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) != 0) return;
  double c = (double)cpu.tv_sec + 1e-9 * (double)cpu.tv_nsec;
  ef_log(ctx, EF_LOG_INFO,
         "coordinator: %.3f s CPU over %.3f s of scheduling (%.1f%% of one core), %zu units", c,
         wall, 100.0 * c / (wall > 0 ? wall : 1e-9), units);
}

/* An MPI call of the coordinator failed (with rank src; -1: none): cs->rc
 * and cs->err name the call and say why. Returns -1 (serve's "quit"). */
static int coord_mpi_fail(coord_state *cs, int mrc, const char *call, int src, int line) {
  cs->rc = ef_error_mpi(cs->ctx, mrc, call, __FILE__, line);
  if (src >= 0) ef_error_wrap(cs->ctx, "coordinator, rank %d: ", src);
  else ef_error_wrap(cs->ctx, "coordinator: ");
  snprintf(cs->err, sizeof cs->err, "%s", ef_error_message(cs->ctx));
  return -1;
}

/* Take the READY message st announces off the wire, whatever its size (a
 * sender must not be left waiting on a message nobody receives): into buf
 * (space bytes) when it fits, else into a temporary buffer of its own, of
 * which only the header is kept. *count is its size. Returns 0, or -1 on an
 * MPI failure (cs->rc, cs->err). */
static int receive_ready(coord_state *cs, const MPI_Status *st, unsigned char *buf, size_t space,
                         int *count) {
  int src = st->MPI_SOURCE, mrc = MPI_Get_count(st, MPI_BYTE, count);
  if (mrc != MPI_SUCCESS) return coord_mpi_fail(cs, mrc, "MPI_Get_count", src, __LINE__);
  unsigned char *into = buf, *tmp = NULL;
  if (*count < 0 || (size_t)*count > space) { /* error path only: a malformed message */
    tmp = malloc(*count > 0 ? (size_t)*count : 1);
    if (!tmp) {
      cs->rc = EF_ERR_NOMEM;
      snprintf(cs->err, sizeof cs->err, "coordinator: out of memory for a %d-byte message "
               "from rank %d", *count, src);
      return -1;
    }
    into = tmp;
  }
  MPI_Request req;
  mrc = MPI_Irecv(into, *count, MPI_BYTE, src, TAG_READY, cs->comm, &req);
  if (mrc == MPI_SUCCESS) mrc = wait_napping(&req, NULL, cs);
  if (tmp) {
    memcpy(buf, tmp, space < (size_t)*count ? space : (size_t)*count);
    free(tmp);
  }
  if (mrc != MPI_SUCCESS) return coord_mpi_fail(cs, mrc, "MPI_Irecv (a READY message)", src, __LINE__);
  return 0;
}

/* Is h (count bytes in all) a READY message rank src may send: no result and
 * a header alone, or the result of the unit src holds, header and result. */
static int ready_ok(const coord_state *cs, const msg_header *h, int count, int src) {
  size_t len = sizeof *h + cs->s->result_len * sizeof(double);
  if (count < (int)sizeof *h) return 0;
  if (h->has_result == 0) return (size_t)count == sizeof *h;
  return h->has_result == 1 && (size_t)count == len && cs->watch[src].unit >= 0 &&
         h->unit == cs->watch[src].unit;
}

/* One READY message from a worker, already probed (st): take its result,
 * hand it the next unit or -1. A malformed one (wrong size, a unit the rank
 * does not hold) is taken off the wire and answered by nothing: it stops
 * the campaign like a failed result (every rank's next READY is answered
 * -1), and the rank it names, whose worker is still running or waiting on a
 * READY of its own, is served when that READY comes. Returns 1 when a unit
 * went out, 0 when the rank was told to stop, 2 for a refused message, -1
 * when the coordinator must quit at once (an MPI failure: cs->rc and
 * cs->err say which). */
static int serve(coord_state *cs, ef_dispatch *dispatch, unsigned char *buf, size_t cap,
                 const MPI_Status *st, int *stopping, size_t *done) {
  const ef_schedule *s = cs->s;
  int count = 0, src = st->MPI_SOURCE;
  unsigned char small[sizeof(msg_header)];
  if (receive_ready(cs, st, buf ? buf : small, buf ? cap : sizeof small, &count) < 0) return -1;
  msg_header h;
  memcpy(&h, buf ? buf : small, sizeof h);
  int rc = EF_OK;
  if (!ready_ok(cs, &h, count, src)) {
    rc = ef_error_set(cs->ctx, EF_ERR_MPI, "coordinator: bad message from rank %d (%d bytes, "
                      "unit %d, result flag %d; rank %d holds unit %d)", src, count,
                      count >= (int)sizeof h ? h.unit : -1,
                      count >= (int)sizeof h ? h.has_result : -1, src, cs->watch[src].unit);
    if (!*stopping) {
      cs->rc = rc;
      snprintf(cs->err, sizeof cs->err, "%s", ef_error_message(cs->ctx));
    }
    *stopping = 1;
    return 2;
  }
  watch_ready(cs, src, &h, now_s());
  if (rc == EF_OK && h.has_result && !*stopping) {
    rc = s->on_result(cs->ctx, s->result_arg, h.unit, h.status, h.wall_s, src, h.attempts,
                      (const double *)(buf + sizeof h));
    (*done)++;
  }
  int32_t assign = -1;
  if (rc == EF_OK && !*stopping && dispatch) assign = ef_dispatch_next(dispatch, src);
  if (assign >= 0 && s->on_start) rc = s->on_start(cs->ctx, s->result_arg, assign, src);
  if (rc != EF_OK) {
    if (!*stopping) { /* the first failure's message is the one every rank reports */
      cs->rc = rc;
      snprintf(cs->err, sizeof cs->err, "%s", ef_error_message(cs->ctx));
    }
    *stopping = 1;
    assign = -1;
  }
  /* 4 bytes go out eagerly: this send does not wait for the worker */
  int mrc = MPI_Send(&assign, 1, MPI_INT32_T, src, TAG_ASSIGN, cs->comm);
  if (mrc != MPI_SUCCESS) return coord_mpi_fail(cs, mrc, "MPI_Send", src, __LINE__);
  if (assign >= 0) watch_assign(cs, src, assign, now_s());
  return assign >= 0;
}

static void *coordinator(void *arg) {
  coord_state *cs = arg;
  const ef_schedule *s = cs->s;
  size_t n = ef_plan_n_units(cs->plan), done = 0, resumed = 0;
  for (size_t i = 0; i < n; i++) {
    if (!s->skip || !s->skip[i]) continue;
    resumed++;
    if (s->wall_s && s->wall_s[i] > cs->longest) cs->longest = s->wall_s[i];
  }
  done = resumed;
  int active = cs->size, stopping = 0;
  ef_dispatch *dispatch = NULL;
  size_t cap = sizeof(msg_header) + s->result_len * sizeof(double);
  unsigned char *buf = malloc(cap);
  if (!buf) {
    cs->rc = EF_ERR_NOMEM;
    snprintf(cs->err, sizeof cs->err, "coordinator: out of memory");
    stopping = 1;
  } else if (make_dispatch(cs->ctx, cs->plan, s->skip, cs->size, &dispatch) != EF_OK) {
    cs->rc = ef_error_code(cs->ctx);
    snprintf(cs->err, sizeof cs->err, "%s", ef_error_message(cs->ctx));
    stopping = 1;
  }
  double t0 = now_s(), last = t0, every = s->progress_every_s > 0 ? s->progress_every_s : 2.0;
  long idle_ns = 50000;
  while (active > 0) {
    int flag = 0;
    MPI_Status st;
    int mrc = MPI_Iprobe(MPI_ANY_SOURCE, TAG_READY, cs->comm, &flag, &st);
    if (mrc != MPI_SUCCESS) {
      coord_mpi_fail(cs, mrc, "MPI_Iprobe", -1, __LINE__);
      break;
    }
    watch_stalls(cs);
    if (!flag) {
      nap(&idle_ns);
      continue;
    }
    idle_ns = 50000;
    int more = serve(cs, dispatch, buf, cap, &st, &stopping, &done);
    if (more < 0) break;
    if (more == 0) active--;
    double t = now_s();
    if (!s->quiet && (t - last >= every || (active == 0 && !stopping))) {
      progress(cs->ctx, done, n, resumed, t0);
      last = t;
    }
  }
  free(buf);
  ef_dispatch_destroy(dispatch);
  report_cpu(cs->ctx, s->quiet, t0, done - resumed);
  return NULL;
}

static int run_serial(ef_ctx *ctx, const ef_plan *plan, const ef_schedule *s) {
  size_t n = ef_plan_n_units(plan), done = 0, resumed = 0;
  const int32_t *order = ef_plan_order(plan);
  double *result = malloc((s->result_len ? s->result_len : 1) * sizeof(double));
  if (!result) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a unit result");
  for (size_t i = 0; i < n; i++) resumed += s->skip && s->skip[i];
  done = resumed;
  double t0 = now_s(), last = t0, every = s->progress_every_s > 0 ? s->progress_every_s : 2.0;
  int rc = EF_OK;
  for (size_t k = 0; k < n && rc == EF_OK; k++) {
    int32_t id = order[k];
    if (s->skip && s->skip[id]) continue;
    double t = now_s();
    int attempts = 1;
    if (s->on_start) rc = s->on_start(ctx, s->result_arg, id, 0);
    if (rc != EF_OK) break;
    int st = s->work(s->work_arg, id, result, &attempts);
    rc = s->on_result(ctx, s->result_arg, id, st, now_s() - t, 0, attempts, result);
    done++;
    if (!s->quiet && (now_s() - last >= every || done == n)) {
      progress(ctx, done, n, resumed, t0);
      last = now_s();
    }
  }
  free(result);
  return rc;
}

/* Every rank: ask rank 0 for units and run them until told to stop. The
 * exchange is nonblocking and napping (wait_napping): a rank that has run
 * out of units may wait long for a stalled peer. */
static int worker_loop(ef_ctx *ctx, MPI_Comm comm, const ef_schedule *s) {
  /* naps of a few us need a timer slack below Linux's default 50 us; only
   * this thread's, put back at the end (a failure costs latency, no more) */
  int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  if (slack > 1000) (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  int rank = ef_ctx_rank(ctx), rc = EF_OK;
  size_t len = sizeof(msg_header) + s->result_len * sizeof(double);
  unsigned char *buf = malloc(len);
  if (!buf) rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a unit result");
  msg_header h = {0, -1, 0, rank, 0, 0, 0.0};
  for (;;) {
    /* after a local failure keep talking to the coordinator, sending no
     * more results, so that every rank reaches the end together */
    size_t send_len = h.has_result ? len : sizeof h;
    if (buf) memcpy(buf, &h, sizeof h);
    int32_t assign = -1;
    MPI_Request req[2];
    const char *call = "worker MPI_Irecv (the next unit)";
    int mrc = MPI_Irecv(&assign, 1, MPI_INT32_T, 0, TAG_ASSIGN, comm, &req[0]);
    if (mrc == MPI_SUCCESS) {
      call = "worker MPI_Isend (READY)";
      mrc = MPI_Isend(buf ? buf : (unsigned char *)&h, (int)(buf ? send_len : sizeof h),
                      MPI_BYTE, 0, TAG_READY, comm, &req[1]);
    }
    if (mrc == MPI_SUCCESS) {
      call = "worker MPI_Test (sending READY)";
      mrc = wait_napping(&req[1], NULL, NULL);
    }
    if (mrc == MPI_SUCCESS) {
      call = "worker MPI_Test (receiving the next unit)";
      mrc = wait_napping(&req[0], NULL, NULL);
    }
    if (mrc != MPI_SUCCESS) {
      rc = ef_error_mpi(ctx, mrc, call, __FILE__, __LINE__);
      break;
    }
    if (assign < 0) break;
    if (!buf) {
      h.has_result = 0;
      continue;
    }
    double t = now_s();
    int attempts = 1;
    h.status = s->work(s->work_arg, assign, (double *)(buf + sizeof h), &attempts);
    h.attempts = attempts;
    h.wall_s = now_s() - t;
    h.unit = assign;
    h.has_result = 1;
    if (h.status != EF_OK)
      ef_log(ctx, EF_LOG_WARN, "unit %d failed: %s", assign, ef_error_message(ctx));
  }
  free(buf);
  if (slack > 1000) (void)prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0, 0, 0);
  return rc;
}

/* Collective MPI_Bcast from rank 0 that waits napping, not spinning. */
static int bcast_napping(ef_ctx *ctx, void *data, int count, MPI_Datatype type, MPI_Comm comm) {
  MPI_Request req;
  EF_CHECK_MPI(ctx, MPI_Ibcast(data, count, type, 0, comm, &req));
  int mrc = wait_napping(&req, NULL, NULL);
  if (mrc != MPI_SUCCESS)
    return ef_error_mpi(ctx, mrc, "MPI_Test (waiting for the MPI_Ibcast)", __FILE__, __LINE__);
  return EF_OK;
}

/* Rank 0: the coordinator's context, per-rank watch and host table, checked
 * for MPI_THREAD_MULTIPLE. On failure cs is left for coord_free. */
static int coord_prepare(ef_ctx *ctx, coord_state *cs, char **hosts) {
  int provided = 0, mrc = MPI_Query_thread(&provided);
  if (mrc != MPI_SUCCESS) return ef_error_mpi(ctx, mrc, "MPI_Query_thread", __FILE__, __LINE__);
  if (provided < MPI_THREAD_MULTIPLE)
    return ef_error_set(ctx, EF_ERR_MPI,
                        "the MPI library gives thread level %d, the coordinator needs "
                        "MPI_THREAD_MULTIPLE", provided);
  if (ef_ctx_clone(&cs->ctx, ctx) != EF_OK)
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the coordinator");
  cs->watch = malloc((size_t)cs->size * sizeof *cs->watch);
  *hosts = malloc((size_t)cs->size * MPI_MAX_PROCESSOR_NAME);
  if (!cs->watch || !*hosts)
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the coordinator's table of %d ranks",
                        cs->size);
  for (int r = 0; r < cs->size; r++) cs->watch[r] = (rank_watch){-1, 0.0, 0.0};
  cs->hosts = *hosts;
  return EF_OK;
}

/* Collective: rank 0 prepares the coordinator and says whether it could;
 * every rank then sends rank 0 its host name (for the stall messages). */
static int coord_setup(ef_ctx *ctx, MPI_Comm comm, coord_state *cs, char **hosts) {
  int rank = ef_ctx_rank(ctx), ok = 1;
  if (rank == 0) ok = coord_prepare(ctx, cs, hosts) == EF_OK;
  EF_CHECK_MPI(ctx, MPI_Bcast(&ok, 1, MPI_INT, 0, comm));
  if (!ok)
    return rank == 0 ? ef_error_code(ctx)
                     : ef_error_set(ctx, EF_ERR_INTERNAL, "rank 0 cannot start the coordinator");
  char name[MPI_MAX_PROCESSOR_NAME] = "";
  int len = 0;
  EF_CHECK_MPI(ctx, MPI_Get_processor_name(name, &len));
  EF_CHECK_MPI(ctx, MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, rank == 0 ? *hosts : NULL,
                               MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, comm));
  return EF_OK;
}

int ef_scheduler_run(ef_ctx *ctx, const ef_plan *plan, const ef_schedule *s) {
  if (ef_ctx_comm(ctx) == MPI_COMM_NULL) return run_serial(ctx, plan, s);
  int rank = ef_ctx_rank(ctx), rc = EF_OK;
  MPI_Comm comm;
  EF_CHECK_MPI(ctx, MPI_Comm_dup(ef_ctx_comm(ctx), &comm));
  coord_state cs = {.ctx = NULL, .comm = comm, .plan = plan, .s = s, .size = ef_ctx_size(ctx),
                    .rc = EF_OK};
  char *hosts = NULL;
  pthread_t thread;
  int started = 0;
  rc = coord_setup(ctx, comm, &cs, &hosts);
  int set_up = rc == EF_OK; /* then every rank takes part in the agreement below */
  if (rc == EF_OK && rank == 0) {
    if (pthread_create(&thread, NULL, coordinator, &cs) != 0) {
      /* every rank would wait for it: abort the whole job at the top */
      rc = ef_error_set(ctx, EF_ERR_INTERNAL, "cannot start the coordinator thread");
    } else {
      started = 1;
    }
  }
  if (rc == EF_OK) rc = worker_loop(ctx, comm, s);
  if (started) pthread_join(thread, NULL);
  ef_ctx_destroy(cs.ctx);
  free(cs.watch);
  free(hosts);
  /* everyone learns the coordinator's outcome (ranks that ran out of units
   * wait here for the last one: napping) */
  int crc = rank == 0 ? cs.rc : EF_OK, arc = EF_OK;
  if (set_up) arc = bcast_napping(ctx, &crc, 1, MPI_INT, comm);
  if (arc == EF_OK && crc != EF_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", rank == 0 ? cs.err : "");
    arc = bcast_napping(ctx, msg, sizeof msg, MPI_CHAR, comm);
    if (arc == EF_OK) rc = ef_error_set(ctx, crc, "%s", msg);
  }
  int frc = MPI_Comm_free(&comm);
  if (arc != EF_OK) return arc;
  if (frc != MPI_SUCCESS) return ef_error_mpi(ctx, frc, "MPI_Comm_free", __FILE__, __LINE__);
  return rc;
}
