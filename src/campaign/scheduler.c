/* Coordinator thread on rank 0, a worker loop on every rank. */
#include "ensfold/scheduler.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

typedef struct {
  ef_ctx *ctx; /* the coordinator thread's own context */
  MPI_Comm comm;
  const ef_plan *plan;
  const ef_schedule *s;
  int size;       /* ranks, every one a worker */
  int rc;         /* coordinator's outcome */
  char err[1024]; /* its message */
} coord_state;

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

static void *coordinator(void *arg) {
  coord_state *cs = arg;
  const ef_schedule *s = cs->s;
  size_t n = ef_plan_n_units(cs->plan), done = 0, resumed = 0;
  for (size_t i = 0; i < n; i++) resumed += s->skip && s->skip[i];
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
    if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_READY, cs->comm, &flag, &st) != MPI_SUCCESS) {
      cs->rc = EF_ERR_MPI;
      snprintf(cs->err, sizeof cs->err, "coordinator: MPI_Iprobe failed");
      break;
    }
    if (!flag) {
      /* nap 50 us, doubling while idle up to 5 ms: quick answers for tiny
       * units, and a negligible share of rank 0's core when units take
       * seconds (GAN training) */
      struct timespec nap = {0, idle_ns};
      nanosleep(&nap, NULL);
      if (idle_ns < 5000000) idle_ns *= 2;
      continue;
    }
    idle_ns = 50000;
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    unsigned char small[sizeof(msg_header)];
    unsigned char *into = buf ? buf : small;
    if ((size_t)count > (buf ? cap : sizeof small) ||
        MPI_Recv(into, count, MPI_BYTE, st.MPI_SOURCE, TAG_READY, cs->comm, MPI_STATUS_IGNORE) !=
            MPI_SUCCESS) {
      cs->rc = EF_ERR_MPI;
      snprintf(cs->err, sizeof cs->err, "coordinator: bad message from rank %d", st.MPI_SOURCE);
      break;
    }
    msg_header h;
    memcpy(&h, into, sizeof h);
    if (h.has_result && !stopping) {
      int rc = s->on_result(cs->ctx, s->result_arg, h.unit, h.status, h.wall_s, h.rank,
                            h.attempts, (const double *)(into + sizeof h));
      done++;
      if (rc != EF_OK) {
        cs->rc = rc;
        snprintf(cs->err, sizeof cs->err, "%s", ef_error_message(cs->ctx));
        stopping = 1;
      }
    }
    int32_t assign = -1;
    if (!stopping && dispatch) assign = ef_dispatch_next(dispatch, st.MPI_SOURCE);
    if (assign >= 0 && s->on_start) {
      int rc = s->on_start(cs->ctx, s->result_arg, assign, st.MPI_SOURCE);
      if (rc != EF_OK) {
        cs->rc = rc;
        snprintf(cs->err, sizeof cs->err, "%s", ef_error_message(cs->ctx));
        stopping = 1;
        assign = -1;
      }
    }
    if (MPI_Send(&assign, 1, MPI_INT32_T, st.MPI_SOURCE, TAG_ASSIGN, cs->comm) != MPI_SUCCESS) {
      cs->rc = EF_ERR_MPI;
      snprintf(cs->err, sizeof cs->err, "coordinator: MPI_Send to rank %d failed", st.MPI_SOURCE);
      break;
    }
    if (assign < 0) active--;
    double t = now_s();
    if (!s->quiet && (t - last >= every || (active == 0 && !stopping))) {
      progress(cs->ctx, done, n, resumed, t0);
      last = t;
    }
  }
  free(buf);
  ef_dispatch_destroy(dispatch);
  /* what the coordinator cost: its own CPU time against the wall time */
  struct timespec cpu;
  double wall = now_s() - t0;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0 && !s->quiet)
    ef_log(cs->ctx, EF_LOG_INFO,
           "coordinator: %.3f s CPU over %.3f s of scheduling (%.1f%% of one core), %zu units",
           (double)cpu.tv_sec + 1e-9 * (double)cpu.tv_nsec, wall,
           100.0 * ((double)cpu.tv_sec + 1e-9 * (double)cpu.tv_nsec) / (wall > 0 ? wall : 1e-9),
           done - resumed);
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

int ef_scheduler_run(ef_ctx *ctx, const ef_plan *plan, const ef_schedule *s) {
  if (ef_ctx_comm(ctx) == MPI_COMM_NULL) return run_serial(ctx, plan, s);
  int rank = ef_ctx_rank(ctx), rc = EF_OK;
  MPI_Comm comm;
  EF_CHECK_MPI(ctx, MPI_Comm_dup(ef_ctx_comm(ctx), &comm));
  coord_state cs = {.ctx = NULL, .comm = comm, .plan = plan, .s = s, .size = ef_ctx_size(ctx),
                    .rc = EF_OK};
  pthread_t thread;
  int started = 0;
  if (rank == 0 && ef_ctx_clone(&cs.ctx, ctx) != EF_OK) {
    MPI_Comm_free(&comm);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the coordinator");
  }
  if (rank == 0) {
    int provided = 0, mrc = MPI_Query_thread(&provided);
    if (mrc != MPI_SUCCESS) {
      ef_ctx_destroy(cs.ctx);
      MPI_Comm_free(&comm);
      return ef_error_mpi(ctx, mrc, "MPI_Query_thread", __FILE__, __LINE__);
    }
    if (provided < MPI_THREAD_MULTIPLE) {
      ef_ctx_destroy(cs.ctx);
      MPI_Comm_free(&comm);
      return ef_error_set(ctx, EF_ERR_MPI,
                          "the MPI library gives thread level %d, the coordinator needs "
                          "MPI_THREAD_MULTIPLE", provided);
    }
    if (pthread_create(&thread, NULL, coordinator, &cs) != 0) {
      /* every rank would wait for it: abort the whole job at the top */
      ef_ctx_destroy(cs.ctx);
      MPI_Comm_free(&comm);
      return ef_error_set(ctx, EF_ERR_INTERNAL, "cannot start the coordinator thread");
    }
    started = 1;
  }
  size_t len = sizeof(msg_header) + s->result_len * sizeof(double);
  unsigned char *buf = malloc(len);
  if (!buf) rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a unit result");
  msg_header h = {0, -1, 0, rank, 0, 0, 0.0};
  for (;;) {
    /* after a local failure keep talking to the coordinator, sending no
     * more results, so that every rank reaches the end together */
    size_t send_len = h.has_result ? len : sizeof h;
    if (buf) memcpy(buf, &h, sizeof h);
    int mrc = MPI_Send(buf ? buf : (unsigned char *)&h, (int)(buf ? send_len : sizeof h),
                       MPI_BYTE, 0, TAG_READY, comm);
    int32_t assign = -1;
    if (mrc == MPI_SUCCESS)
      mrc = MPI_Recv(&assign, 1, MPI_INT32_T, 0, TAG_ASSIGN, comm, MPI_STATUS_IGNORE);
    if (mrc != MPI_SUCCESS) {
      rc = ef_error_mpi(ctx, mrc, "worker MPI_Send/MPI_Recv", __FILE__, __LINE__);
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
  if (started) pthread_join(thread, NULL);
  ef_ctx_destroy(cs.ctx);
  MPI_Comm_free(&comm);
  /* everyone learns the coordinator's outcome */
  int crc = rank == 0 ? cs.rc : EF_OK;
  EF_CHECK_MPI(ctx, MPI_Bcast(&crc, 1, MPI_INT, 0, ef_ctx_comm(ctx)));
  if (crc != EF_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", rank == 0 ? cs.err : "");
    EF_CHECK_MPI(ctx, MPI_Bcast(msg, sizeof msg, MPI_CHAR, 0, ef_ctx_comm(ctx)));
    return ef_error_set(ctx, crc, "%s", msg);
  }
  return rc;
}
