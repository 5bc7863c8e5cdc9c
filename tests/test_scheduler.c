/* The scheduler (src/campaign/scheduler.c) through ef_scheduler_run: the
 * order units are handed out in, every unit run exactly once and its result
 * gathered intact (values, status, tries, rank, wall time), failed units
 * reported and the campaign carried on, resumed units never run again, an
 * error from on_result / on_start stopping the campaign with its message,
 * and, over MPI, a short or oversized message refused with a clear error
 * and a stalled unit reported.
 *
 * One executable, run three ways (tests/meson.build):
 *   test_scheduler            serial context (MPI_COMM_NULL): run_serial;
 *                             suite 'unit', no MPI_Init, so the sanitizer
 *                             build's leak check sees only our allocations;
 *   test_scheduler --mpi      MPI_Init_thread as a singleton: one rank, the
 *                             coordinator thread and rank 0's worker in one
 *                             process (suite 'mpi': Open MPI's own
 *                             allocations look like leaks at exit);
 *   mpirun -n 2 ... --mpi     the same over two processes (suite 'mpi').
 * Under MPI every test calls its collectives first and asserts after, so a
 * failed assertion on one rank cannot leave the other waiting. Callbacks
 * that run on the coordinator thread only record; cmocka asserts on the
 * main thread alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ensfold/plan.h"
#include "ensfold/scheduler.h"

enum {
  MAX_UNITS = 64, /* more than the plan below has */
  RLEN = 3,       /* doubles per unit result: 2 values, then the rank that ran it */
  /* the coordinator's message tags and header, copied from scheduler.c (its
   * TAG_READY, TAG_ASSIGN and msg_header: six int32 and a double) */
  TAG_READY = 101,
  TAG_ASSIGN = 102,
  HEADER_BYTES = 6 * 4 + 8,
};

static ef_ctx *ctx;

/* 18 units: ibu 2 fills x 3 replicas (R + 1) x 1 member (ibu has one
 * whatever the ensemble says) = 6, gan-topo 2 x 3 x 2 members = 12 (the
 * unit count rule of include/ensfold/plan.h, the same as test_campaign's
 * test_plan). gan-topo's units cost 1000, ibu's 1 (their method tables);
 * gan-topo's share detector networks per (method, replica): 3 keys. */
static const char *CONFIG = "seed: 5\ncampaign: {methods: [ibu, gan-topo], "
                            "fill_models: [PS, M2], replicas: 2, ensemble: 2}\n";
enum { N_UNITS = 18 };

/* What the callbacks saw. work runs on every rank's main thread; on_start
 * and on_result on rank 0 (the coordinator thread under MPI). */
typedef struct {
  ef_ctx *ctx;            /* the main context, for work's error messages */
  int my_rank;
  /* behaviour asked of work (by unit id; NULL = EF_OK, 1 try) */
  const int *status;
  const int *attempts;
  int32_t slow_unit;      /* sleeps SLOW_S, -1 = none */
  int slow_first;         /* this rank's first unit sleeps 2 SLOW_S */
  int inject;             /* INJECT_*: a bad message during the first unit */
  int inject_rc;          /* MPI's answer to those sends */
  /* behaviour asked of the callbacks: fail the k-th call (1-based), 0 = never */
  int fail_result_at, fail_start_at;
  /* work's record (this rank) */
  int n_work;
  int work_count[MAX_UNITS];
  /* the coordinator's record (rank 0) */
  int n_start, n_result, seq, out_of_range;
  int32_t started[MAX_UNITS];   /* units in the order on_start saw them */
  int start_rank[MAX_UNITS];    /* (by start index) the rank each went to */
  int32_t resulted[MAX_UNITS];  /* units in the order on_result saw them */
  int start_count[MAX_UNITS], result_count[MAX_UNITS]; /* by unit id */
  int start_seq[MAX_UNITS], result_seq[MAX_UNITS];     /* by unit id: when */
  int res_status[MAX_UNITS], res_rank[MAX_UNITS], res_attempts[MAX_UNITS];
  double res_wall[MAX_UNITS];
  double res_val[MAX_UNITS][RLEN];
} rec;

enum { INJECT_NONE, INJECT_SHORT, INJECT_LONG, INJECT_UNIT };
#define SLOW_S 0.5

/* The value work writes as result[j] of unit u (j < RLEN - 1): the test's own
 * formula, so a result that arrives at on_result is known exactly. */
static double value_of(int32_t u, int j) { return 1000.0 * u + j + 0.25; }

/* The communicator ef_scheduler_run works on is its own MPI_Comm_dup of the
 * context's. The test keeps the last one through the MPI profiling
 * interface (PMPI), so that work can put a malformed message on it, as a
 * broken or foreign peer would. Nothing else changes: the call forwards. */
static MPI_Comm last_dup = MPI_COMM_NULL;
int MPI_Comm_dup(MPI_Comm comm, MPI_Comm *newcomm) {
  int rc = PMPI_Comm_dup(comm, newcomm);
  if (rc == MPI_SUCCESS) last_dup = *newcomm;
  return rc;
}

/* A bad READY message to the coordinator (this is rank 0, one rank) while
 * this rank's worker runs its first unit. The coordinator must take it off
 * the wire, refuse it and tell the worker to stop (nothing else will: a
 * coordinator that quits without that leaves the worker waiting). The
 * buffer is static: the send is freed, not waited for. */
static int inject_bad_ready(int kind) {
  /* short: 4 bytes, less than a header; long: a header and RLEN + 1
   * doubles, more than a READY with a result; unit: the size of a READY
   * with a result, for unit 100000, which this rank does not hold */
  static unsigned char bad[HEADER_BYTES + (RLEN + 1) * sizeof(double)];
  int len = kind == INJECT_SHORT ? 4 : (int)sizeof bad;
  if (kind == INJECT_UNIT) {
    int32_t head[6] = {1, 100000, 0, 0, 1, 0}; /* has_result, unit, status, rank, tries, pad */
    memcpy(bad, head, sizeof head);
    len = HEADER_BYTES + RLEN * (int)sizeof(double);
  }
  MPI_Request req;
  int mrc = MPI_Isend(bad, len, MPI_BYTE, 0, TAG_READY, last_dup, &req);
  if (mrc == MPI_SUCCESS) mrc = MPI_Request_free(&req);
  return mrc;
}

static int work(void *arg, int32_t unit, double *result, int *attempts) {
  rec *r = arg;
  r->n_work++;
  if (unit >= 0 && unit < MAX_UNITS) r->work_count[unit]++;
  if (r->inject != INJECT_NONE && r->n_work == 1) r->inject_rc = inject_bad_ready(r->inject);
  if (unit == r->slow_unit) {
    struct timespec d = {0, (long)(SLOW_S * 1e9)};
    nanosleep(&d, NULL);
  }
  if (r->slow_first && r->n_work == 1) {
    struct timespec d = {0, (long)(2 * SLOW_S * 1e9)};
    nanosleep(&d, NULL);
  }
  for (int j = 0; j < RLEN - 1; j++) result[j] = value_of(unit, j);
  result[RLEN - 1] = r->my_rank;
  *attempts = r->attempts ? r->attempts[unit] : 1;
  int st = r->status ? r->status[unit] : EF_OK;
  if (st != EF_OK) ef_error_set(r->ctx, st, "unit %d: failure asked by the test", unit);
  return st;
}

static int on_start(ef_ctx *c, void *arg, int32_t unit, int rank) {
  rec *r = arg;
  if (unit < 0 || unit >= MAX_UNITS) {
    r->out_of_range++;
    return EF_OK;
  }
  if (r->n_start < MAX_UNITS) {
    r->started[r->n_start] = unit;
    r->start_rank[r->n_start] = rank;
  }
  r->n_start++;
  r->start_count[unit]++;
  r->start_seq[unit] = ++r->seq;
  if (r->n_start == r->fail_start_at)
    return ef_error_set(c, EF_ERR_IO, "journal: cannot record the start of unit %d (test)", unit);
  return EF_OK;
}

static int on_result(ef_ctx *c, void *arg, int32_t unit, int status, double wall_s, int rank,
                     int attempts, const double *result) {
  rec *r = arg;
  if (unit < 0 || unit >= MAX_UNITS) {
    r->out_of_range++;
    return EF_OK;
  }
  if (r->n_result < MAX_UNITS) r->resulted[r->n_result] = unit;
  r->n_result++;
  r->result_count[unit]++;
  r->result_seq[unit] = ++r->seq;
  r->res_status[unit] = status;
  r->res_rank[unit] = rank;
  r->res_attempts[unit] = attempts;
  r->res_wall[unit] = wall_s;
  memcpy(r->res_val[unit], result, sizeof r->res_val[unit]);
  if (r->n_result == r->fail_result_at)
    return ef_error_set(c, EF_ERR_IO, "journal: disk full while recording unit %d (test)", unit);
  return EF_OK;
}

static void rec_init(rec *r) {
  memset(r, 0, sizeof *r);
  r->ctx = ctx;
  r->my_rank = ef_ctx_rank(ctx);
  r->slow_unit = -1;
}

static ef_schedule schedule_of(rec *r) {
  return (ef_schedule){.result_len = RLEN, .work = work, .work_arg = r, .on_result = on_result,
                       .result_arg = r, .on_start = on_start, .quiet = 1};
}

static int n_ranks(void) { return ef_ctx_size(ctx); }
static int is_root(void) { return ef_ctx_rank(ctx) == 0; }

/* Collective under MPI: per unit, how many times work ran it on all ranks. */
static void total_work(const rec *r, int *total) {
  if (ef_ctx_comm(ctx) == MPI_COMM_NULL) {
    memcpy(total, r->work_count, sizeof r->work_count);
    return;
  }
  int mrc = MPI_Allreduce(r->work_count, total, MAX_UNITS, MPI_INT, MPI_SUM, ef_ctx_comm(ctx));
  assert_int_equal(mrc, MPI_SUCCESS); /* collective on every rank alike */
}

/* Collective under MPI: rank 0's error message, for every rank to compare
 * its own with (the scheduler's final agreement sends it to all). */
static void root_message(char *msg, size_t len) {
  snprintf(msg, len, "%s", ef_error_message(ctx));
  if (ef_ctx_comm(ctx) != MPI_COMM_NULL)
    assert_int_equal(MPI_Bcast(msg, (int)len, MPI_CHAR, 0, ef_ctx_comm(ctx)), MPI_SUCCESS);
}

static ef_plan *make_plan(ef_config *cfg) {
  assert_int_equal(ef_config_load_string(ctx, cfg, CONFIG, "sched.yaml"), EF_OK);
  ef_plan *p = NULL;
  assert_int_equal(ef_plan_create(ctx, &p, cfg), EF_OK);
  assert_int_equal(ef_plan_n_units(p), N_UNITS);
  return p;
}

/* The documented dispatch order (include/ensfold/plan.h: costliest first,
 * then by (method, replica, member), then by id), computed here from the
 * units' fields alone, not taken from ef_plan_order. */
static int before(const ef_unit *x, const ef_unit *y) {
  if (x->cost != y->cost) return x->cost > y->cost;
  const int kx[4] = {x->method, x->replica, x->member, x->id};
  const int ky[4] = {y->method, y->replica, y->member, y->id};
  for (int k = 0; k < 4; k++)
    if (kx[k] != ky[k]) return kx[k] < ky[k];
  return 0;
}

static void expected_order(const ef_plan *p, int32_t *order) {
  size_t n = ef_plan_n_units(p);
  for (size_t i = 0; i < n; i++) {
    int32_t u = (int32_t)i;
    size_t j = i;
    for (; j > 0 && before(ef_plan_unit(p, (size_t)u), ef_plan_unit(p, (size_t)order[j - 1])); j--)
      order[j] = order[j - 1];
    order[j] = u;
  }
}

/* Every unit handed out once, run once, its result gathered once after its
 * start with exactly the values, rank and tries work gave it. One rank: in
 * the documented order, costliest first. Two ranks: the first unit out is
 * the costliest, and a rank never comes back to an affinity key it left
 * (src/campaign/dispatch.h: it keeps its key while a unit of it is left). */
static void test_order_and_results(void **state) {
  (void)state;
  ef_config cfg;
  ef_plan *p = make_plan(&cfg);
  int32_t want[N_UNITS];
  expected_order(p, want);
  rec r;
  rec_init(&r);
  ef_schedule s = schedule_of(&r);
  int rc = ef_scheduler_run(ctx, p, &s);
  int total[MAX_UNITS];
  total_work(&r, total);

  assert_int_equal(rc, EF_OK);
  for (int u = 0; u < N_UNITS; u++) assert_int_equal(total[u], 1);
  if (is_root()) {
    assert_int_equal(r.out_of_range, 0);
    assert_int_equal(r.n_start, N_UNITS);
    assert_int_equal(r.n_result, N_UNITS);
    for (int u = 0; u < N_UNITS; u++) {
      assert_int_equal(r.start_count[u], 1);
      assert_int_equal(r.result_count[u], 1);
      assert_true(r.start_seq[u] < r.result_seq[u]); /* started before it is done */
      assert_int_equal(r.res_status[u], EF_OK);
      assert_int_equal(r.res_attempts[u], 1); /* work's answer: 1 try */
      for (int j = 0; j < RLEN - 1; j++) assert_true(r.res_val[u][j] == value_of(u, j));
      /* the rank on_result names is the rank whose work wrote the values */
      assert_int_equal(r.res_rank[u], (int)r.res_val[u][RLEN - 1]);
      assert_true(r.res_wall[u] >= 0.0 && r.res_wall[u] < 60.0);
    }
    for (int k = 0; k < N_UNITS; k++) {
      /* on_start names the rank that then ran the unit */
      assert_int_equal(r.start_rank[k], r.res_rank[r.started[k]]);
    }
    if (n_ranks() == 1) {
      assert_memory_equal(r.started, want, sizeof want);
      assert_memory_equal(r.resulted, want, sizeof want);
      /* 12 gan-topo units (cost 1000) before the 6 ibu units (cost 1) */
      for (int k = 0; k < N_UNITS; k++)
        assert_int_equal(ef_plan_unit(p, (size_t)r.started[k])->method,
                         k < 12 ? EF_METHOD_GAN_TOPO : EF_METHOD_IBU);
    } else {
      assert_int_equal(r.started[0], want[0]);
      for (int rank = 0; rank < n_ranks(); rank++) {
        int32_t prev = -1;
        unsigned char left[MAX_UNITS] = {0}; /* keys this rank has left */
        for (int k = 0; k < N_UNITS; k++) {
          if (r.start_rank[k] != rank) continue;
          int32_t key = ef_plan_affinity(p, r.started[k]);
          assert_true(key < MAX_UNITS);
          if (key >= 0) assert_int_equal(left[key], 0);
          if (prev >= 0 && key != prev) left[prev] = 1;
          prev = key;
        }
      }
    }
  }
  ef_plan_destroy(p);
  ef_config_free(&cfg);
}

/* Failed units (work's own retries spent) are reported with their status and
 * tries, and the campaign carries on: ef_scheduler_run still returns EF_OK
 * (include/ensfold/scheduler.h) and every other unit runs. */
static void test_failures_reported(void **state) {
  (void)state;
  ef_config cfg;
  ef_plan *p = make_plan(&cfg);
  /* unit % 5 == 1: a numerical failure after 3 tries; % 5 == 3: succeeded
   * on the 2nd try; unit 17: bad input, 1 try; the rest OK on the 1st */
  int status[N_UNITS], attempts[N_UNITS];
  for (int u = 0; u < N_UNITS; u++) {
    status[u] = u % 5 == 1 ? EF_ERR_NUMERIC : EF_OK;
    attempts[u] = u % 5 == 1 ? 3 : u % 5 == 3 ? 2 : 1;
  }
  status[17] = EF_ERR_INPUT;
  attempts[17] = 1;
  rec r;
  rec_init(&r);
  r.status = status;
  r.attempts = attempts;
  ef_schedule s = schedule_of(&r);
  int rc = ef_scheduler_run(ctx, p, &s);
  int total[MAX_UNITS];
  total_work(&r, total);

  assert_int_equal(rc, EF_OK);
  for (int u = 0; u < N_UNITS; u++) assert_int_equal(total[u], 1);
  if (is_root()) {
    assert_int_equal(r.n_result, N_UNITS);
    int failed = 0;
    for (int u = 0; u < N_UNITS; u++) {
      assert_int_equal(r.result_count[u], 1);
      assert_int_equal(r.res_status[u], status[u]);
      assert_int_equal(r.res_attempts[u], attempts[u]);
      failed += r.res_status[u] != EF_OK;
    }
    assert_int_equal(failed, 4 + 1); /* units 1, 6, 11, 16 and 17 */
  }
  ef_plan_destroy(p);
  ef_config_free(&cfg);
}

/* Resume: units marked done are never started or run again; the others run
 * once, in the documented order (one rank) with the done ones left out.
 * Everything done: nothing runs, EF_OK. */
static void test_resume_skip(void **state) {
  (void)state;
  ef_config cfg;
  ef_plan *p = make_plan(&cfg);
  int32_t want[N_UNITS];
  expected_order(p, want);
  unsigned char skip[N_UNITS];
  double wall[N_UNITS];
  for (int u = 0; u < N_UNITS; u++) {
    skip[u] = u % 3 == 0; /* 6 of 18 done */
    wall[u] = skip[u] ? 0.01 : 0.0;
  }
  rec r;
  rec_init(&r);
  ef_schedule s = schedule_of(&r);
  s.skip = skip;
  s.wall_s = wall;
  int rc = ef_scheduler_run(ctx, p, &s);
  int total[MAX_UNITS];
  total_work(&r, total);

  rec all;
  rec_init(&all);
  unsigned char every[N_UNITS];
  memset(every, 1, sizeof every);
  ef_schedule s_all = schedule_of(&all);
  s_all.skip = every;
  int rc_all = ef_scheduler_run(ctx, p, &s_all);
  int total_all[MAX_UNITS];
  total_work(&all, total_all);

  assert_int_equal(rc, EF_OK);
  for (int u = 0; u < N_UNITS; u++) assert_int_equal(total[u], !skip[u]);
  if (is_root()) {
    assert_int_equal(r.n_start, N_UNITS - 6);
    assert_int_equal(r.n_result, N_UNITS - 6);
    for (int u = 0; u < N_UNITS; u++) {
      assert_int_equal(r.start_count[u], !skip[u]);
      assert_int_equal(r.result_count[u], !skip[u]);
    }
    if (n_ranks() == 1) {
      int k = 0;
      for (int i = 0; i < N_UNITS; i++)
        if (!skip[want[i]]) assert_int_equal(r.started[k++], want[i]);
      assert_int_equal(k, N_UNITS - 6);
    }
  }
  assert_int_equal(rc_all, EF_OK);
  for (int u = 0; u < N_UNITS; u++) assert_int_equal(total_all[u], 0);
  assert_int_equal(all.n_start, 0);
  assert_int_equal(all.n_result, 0);
  ef_plan_destroy(p);
  ef_config_free(&cfg);
}

/* on_result failing (the journal cannot record a result) stops the campaign:
 * ef_scheduler_run returns that code on every rank with on_result's message;
 * no unit is started after it, and on_result is not called again. */
static void test_result_error_stops(void **state) {
  (void)state;
  ef_config cfg;
  ef_plan *p = make_plan(&cfg);
  int32_t want[N_UNITS];
  expected_order(p, want);
  rec r;
  rec_init(&r);
  r.fail_result_at = 3;
  ef_schedule s = schedule_of(&r);
  int rc = ef_scheduler_run(ctx, p, &s);
  int total[MAX_UNITS];
  total_work(&r, total);
  char msg[1024];
  root_message(msg, sizeof msg);

  assert_int_equal(rc, EF_ERR_IO);
  assert_string_equal(ef_error_message(ctx), msg); /* the same on every rank */
  int ran = 0;
  for (int u = 0; u < N_UNITS; u++) ran += total[u];
  if (is_root()) {
    char expect[128];
    snprintf(expect, sizeof expect, "journal: disk full while recording unit %d (test)",
             r.resulted[2]);
    assert_string_equal(msg, expect);
    assert_int_equal(r.n_result, 3);
    /* every unit handed out ran; besides the 3 done, at most one per other
     * rank was in flight when the campaign stopped */
    assert_int_equal(ran, r.n_start);
    assert_in_range(r.n_start, 3, 3 + n_ranks() - 1);
    if (n_ranks() == 1) {
      /* one rank: the 3rd unit of the order is the last one run */
      assert_int_equal(r.resulted[2], want[2]);
      assert_int_equal(r.n_start, 3);
    }
  }
  ef_plan_destroy(p);
  ef_config_free(&cfg);
}

/* on_start failing (the journal cannot record a start) stops the campaign
 * before the unit runs: that code and message on every rank, and the unit
 * refused is never run. */
static void test_start_error_stops(void **state) {
  (void)state;
  ef_config cfg;
  ef_plan *p = make_plan(&cfg);
  int32_t want[N_UNITS];
  expected_order(p, want);
  rec r;
  rec_init(&r);
  r.fail_start_at = 2;
  ef_schedule s = schedule_of(&r);
  int rc = ef_scheduler_run(ctx, p, &s);
  int total[MAX_UNITS];
  total_work(&r, total);
  char msg[1024];
  root_message(msg, sizeof msg);

  assert_int_equal(rc, EF_ERR_IO);
  assert_string_equal(ef_error_message(ctx), msg);
  if (is_root()) {
    char expect[128];
    snprintf(expect, sizeof expect, "journal: cannot record the start of unit %d (test)",
             r.started[1]);
    assert_string_equal(msg, expect);
    assert_int_equal(r.n_start, 2);
    /* only the 1st unit ran; the 2nd, refused at its start, did not */
    assert_int_equal(total[r.started[0]], 1);
    assert_int_equal(total[r.started[1]], 0);
    int ran = 0;
    for (int u = 0; u < N_UNITS; u++) ran += total[u];
    assert_int_equal(ran, 1);
    if (n_ranks() == 1) {
      assert_int_equal(r.started[0], want[0]);
      assert_int_equal(r.started[1], want[1]);
      assert_int_equal(r.n_result, 1); /* the 1st unit's result came in first */
    }
  }
  ef_plan_destroy(p);
  ef_config_free(&cfg);
}

/* A coordinator that took the bad message as a request, or refused it
 * without telling the worker to stop, would leave a rank waiting forever:
 * say so, rather than leave the test to meson's timeout. */
static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "test_scheduler: ef_scheduler_run has not returned 20 s after a "
                            "bad message: the coordinator took it, or did not tell the worker "
                            "to stop?\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  _exit(1);
}

/* ef_scheduler_run under a 20 s alarm (on_alarm) */
static int run_with_alarm(ef_plan *p, ef_schedule *s) {
  signal(SIGALRM, on_alarm);
  alarm(20);
  int rc = ef_scheduler_run(ctx, p, s);
  alarm(0);
  signal(SIGALRM, SIG_DFL);
  return rc;
}

/* One rank under MPI: a bad READY message (wrong size, or the result of a
 * unit the rank does not hold) reaches the coordinator while the first unit
 * runs. It is refused, nothing in it used: the worker is told to stop, the
 * campaign ends with EF_ERR_MPI and a message naming the rank, no result is
 * taken, and nothing hangs or crashes. */
static void bad_message(int kind) {
  if (ef_ctx_comm(ctx) == MPI_COMM_NULL || n_ranks() != 1) skip();
  ef_config cfg;
  ef_plan *p = make_plan(&cfg);
  rec r;
  rec_init(&r);
  r.inject = kind;
  ef_schedule s = schedule_of(&r);
  int rc = run_with_alarm(p, &s);

  assert_int_equal(r.inject_rc, MPI_SUCCESS);
  assert_int_equal(rc, EF_ERR_MPI);
  /* serve()'s message in scheduler.c, then what was wrong */
  const char *want = "coordinator: bad message from rank 0 (";
  assert_int_equal(strncmp(ef_error_message(ctx), want, strlen(want)), 0);
  assert_int_equal(r.n_work, 1);   /* the unit in which the message was sent */
  assert_int_equal(r.n_start, 1);
  assert_int_equal(r.n_result, 0); /* its result came after the bad message: not taken */
  assert_int_equal(r.out_of_range, 0);
  ef_plan_destroy(p);
  ef_config_free(&cfg);
}

static void test_short_message_refused(void **state) {
  (void)state;
  bad_message(INJECT_SHORT);
}

static void test_oversized_message_refused(void **state) {
  (void)state;
  bad_message(INJECT_LONG);
}

static void test_foreign_unit_refused(void **state) {
  (void)state;
  bad_message(INJECT_UNIT);
}

/* Two ranks: rank 1 sends a bad READY during its first unit while rank 0's
 * first unit runs 1 s. The coordinator refuses it without counting rank 1
 * out: rank 1's own READY is served when it comes, rank 0's too, and both
 * ranks return the error (a coordinator that stopped rank 1 on the bad
 * message and again on its real READY ended its loop with rank 0's worker
 * still waiting). */
static void test_bad_message_two_ranks(void **state) {
  (void)state;
  if (ef_ctx_comm(ctx) == MPI_COMM_NULL || n_ranks() != 2) skip();
  ef_config cfg;
  ef_plan *p = make_plan(&cfg);
  rec r;
  rec_init(&r);
  if (r.my_rank == 1) r.inject = INJECT_SHORT;
  r.slow_first = r.my_rank == 0;
  ef_schedule s = schedule_of(&r);
  int rc = run_with_alarm(p, &s);
  assert_int_equal(rc, EF_ERR_MPI);
  const char *want = "coordinator: bad message from rank 1 (";
  assert_int_equal(strncmp(ef_error_message(ctx), want, strlen(want)), 0);
  assert_int_equal(r.out_of_range, 0);
  ef_plan_destroy(p);
  ef_config_free(&cfg);
}

/* One rank under MPI: the first unit runs SLOW_S = 0.5 s against a warning
 * floor of 0.15 s (the longest unit so far being 0 s, W = max(0.15, 10 x 0)):
 * the coordinator warns about it while it runs, says when it has finished,
 * and gathers its wall time (at least the 0.5 s it slept). The others then
 * run in no time against W = 10 x 0.5 s and draw no warning. */
static void test_stall_warning(void **state) {
  (void)state;
  if (ef_ctx_comm(ctx) == MPI_COMM_NULL || n_ranks() != 1) skip();
  ef_config cfg;
  ef_plan *p = make_plan(&cfg);
  int32_t want[N_UNITS];
  expected_order(p, want);
  rec r;
  rec_init(&r);
  r.slow_unit = want[0];
  ef_schedule s = schedule_of(&r);
  s.stall_warn_s = 0.15;
  s.stall_stop_s = 0.0; /* never stop: MPI_Abort would end the test */
  /* the coordinator logs to stderr: keep it in a file meanwhile */
  FILE *log = tmpfile();
  assert_non_null(log);
  fflush(stderr);
  int saved = dup(2);
  assert_true(saved >= 0);
  assert_true(dup2(fileno(log), 2) >= 0);
  int rc = ef_scheduler_run(ctx, p, &s);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char text[8192];
  rewind(log);
  size_t len = fread(text, 1, sizeof text - 1, log);
  text[len] = '\0';
  fclose(log);
  printf("# coordinator's log:\n%s", text);

  assert_int_equal(rc, EF_OK);
  assert_int_equal(r.n_result, N_UNITS);
  assert_true(r.res_wall[want[0]] >= SLOW_S); /* nanosleep sleeps at least that */
  /* watch_stalls' and watch_ready's lines in scheduler.c */
  char warned[64], finished[96];
  snprintf(warned, sizeof warned, "stall? unit %d on rank 0 (", want[0]);
  assert_non_null(strstr(text, warned));
  assert_non_null(strstr(text, "--stall-stop 0: the job waits"));
  const char *done = strstr(text, " reported stalled has finished after ");
  assert_non_null(done);
  size_t head = 0; /* the start of done's line */
  for (size_t i = 0; text + i < done; i++)
    if (text[i] == '\n') head = i + 1;
  snprintf(finished, sizeof finished, "unit %d on rank 0 (", want[0]);
  const char *named = strstr(text + head, finished);
  assert_true(named && named < done);
  /* one slow unit, so every "stall?" line is about it */
  int stalls = 0, about_slow = 0;
  for (const char *q = strstr(text, "stall? unit "); q; q = strstr(q + 1, "stall? unit ")) {
    stalls++;
    about_slow += strncmp(q, warned, strlen(warned)) == 0;
  }
  assert_true(stalls >= 1);
  assert_int_equal(about_slow, stalls);
  ef_plan_destroy(p);
  ef_config_free(&cfg);
}

int main(int argc, char **argv) {
  int mpi = argc > 1 && strcmp(argv[1], "--mpi") == 0;
  if (mpi) {
    /* the coordinator thread talks MPI beside rank 0's worker, as in ensfold */
    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
      fprintf(stderr, "test_scheduler: MPI_Init_thread failed\n");
      return 1;
    }
    if (provided < MPI_THREAD_MULTIPLE) {
      printf("# the MPI library gives thread level %d, not MPI_THREAD_MULTIPLE: skipped\n",
             provided);
      MPI_Finalize();
      return 77;
    }
  }
  if (ef_ctx_create(&ctx, mpi ? MPI_COMM_WORLD : MPI_COMM_NULL) != EF_OK) {
    fprintf(stderr, "test_scheduler: cannot create the context\n");
    if (mpi) MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_order_and_results),
      cmocka_unit_test(test_failures_reported),
      cmocka_unit_test(test_resume_skip),
      cmocka_unit_test(test_result_error_stops),
      cmocka_unit_test(test_start_error_stops),
      cmocka_unit_test(test_short_message_refused),
      cmocka_unit_test(test_oversized_message_refused),
      cmocka_unit_test(test_foreign_unit_refused),
      cmocka_unit_test(test_bad_message_two_ranks),
      cmocka_unit_test(test_stall_warning),
  };
  /* serial: the last three skip (they need the coordinator) */
  int failed = cmocka_run_group_tests_name(mpi ? "scheduler over MPI" : "scheduler, serial",
                                           tests, NULL, NULL);
  ef_ctx_destroy(ctx);
  if (mpi) {
    int worst = failed;
    if (MPI_Allreduce(&failed, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
      MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Finalize();
    failed = worst;
  }
  return failed;
}
