/* Campaign pieces without MPI: plan ids and seeds, paired bootstrap
 * weights, the journal (round trip, torn tail, wrong campaign) and the
 * coordinator's dispatch (order, affinity, resume, window). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ensfold/journal.h"
#include "ensfold/model.h"
#include "ensfold/plan.h"
#include "ensfold/unit.h"
#include "src/campaign/dispatch.h"

static ef_ctx *ctx;
static int setup(void **s) { (void)s; return ef_ctx_create(&ctx, MPI_COMM_NULL); }
static int teardown(void **s) { (void)s; ef_ctx_destroy(ctx); return 0; }

static void test_plan(void **state) {
  (void)state;
  ef_config c;
  assert_int_equal(ef_config_load_string(ctx, &c,
                   "seed: 5\ncampaign: {fill_models: [M2, PS], replicas: 3, ensemble: 4}\n",
                   "p.yaml"), EF_OK);
  ef_plan *p;
  assert_int_equal(ef_plan_create(ctx, &p, &c), EF_OK);
  /* ibu has one member whatever the ensemble says; fills in canonical order */
  assert_int_equal(ef_plan_n_units(p), 2 * 4);
  assert_int_equal(ef_plan_n_groups(p), 2);
  int m, f;
  ef_plan_group(p, 0, &m, &f);
  assert_int_equal(f, EF_MODEL_PS);
  ef_plan_group(p, 1, &m, &f);
  assert_int_equal(f, EF_MODEL_M2);
  for (size_t i = 0; i < ef_plan_n_units(p); i++) {
    const ef_unit *u = ef_plan_unit(p, i);
    assert_int_equal(u->id, (int)i);
    assert_int_equal(ef_plan_unit_id(p, u->method, u->fill, u->replica, u->member), u->id);
    /* common random numbers: one seed per (method, replica, member), the
     * same for every fill model, distinct otherwise */
    for (size_t j = 0; j < i; j++) {
      const ef_unit *v = ef_plan_unit(p, j);
      int same = v->method == u->method && v->replica == u->replica && v->member == u->member;
      assert_int_equal(v->seed == u->seed, same);
    }
  }
  assert_int_equal(ef_plan_unit_id(p, EF_METHOD_IBU, EF_MODEL_M1, 0, 0), -1);
  assert_int_equal(ef_plan_unit_id(p, EF_METHOD_IBU, EF_MODEL_PS, 4, 0), -1);
  /* the same campaign listed in another order has the same units */
  ef_config c2;
  assert_int_equal(ef_config_load_string(ctx, &c2,
                   "seed: 5\ncampaign: {fill_models: [PS, M2], replicas: 3}\n", "q.yaml"), EF_OK);
  ef_plan *p2;
  assert_int_equal(ef_plan_create(ctx, &p2, &c2), EF_OK);
  for (size_t i = 0; i < ef_plan_n_units(p); i++) {
    const ef_unit *a = ef_plan_unit(p, i), *b = ef_plan_unit(p2, i);
    assert_int_equal(a->method, b->method);
    assert_int_equal(a->fill, b->fill);
    assert_int_equal(a->replica, b->replica);
    assert_int_equal(a->member, b->member);
    assert_true(a->seed == b->seed);
  }
  ef_plan_destroy(p);
  ef_plan_destroy(p2);
  ef_config_free(&c);
  ef_config_free(&c2);
}

/* The method registry: one entry per name campaign.methods accepts, in the
 * order of its bits, each complete (include/ensfold/method.h). */
static void test_registry(void **state) {
  (void)state;
  assert_int_equal(ef_method_count(), EF_N_METHODS);
  assert_null(ef_method_get(-1));
  assert_null(ef_method_get(ef_method_count()));
  for (int id = 0; id < ef_method_count(); id++) {
    const ef_method *m = ef_method_get(id);
    assert_non_null(m);
    assert_non_null(m->name);
    assert_non_null(m->run);
    assert_true(m->cost > 0);
    assert_true(!m->ws_create == !m->ws_destroy);
    assert_true(!(m->deterministic && m->has_own)); /* an own answer is a generative one */
    ef_config cfg;
    assert_int_equal(ef_config_defaults(ctx, &cfg), EF_OK);
    char set[96];
    snprintf(set, sizeof set, "campaign.methods=[%s]", m->name);
    assert_int_equal(ef_config_set(ctx, &cfg, set), EF_OK);
    assert_int_equal(cfg.campaign.methods, 1u << id);
    assert_string_equal(ef_method_name(id), m->name);
    ef_config_free(&cfg);
  }
}

static void test_bootstrap_weights(void **state) {
  (void)state;
  enum { N = 200000 };
  static double a[N], b[N], c[N];
  ef_bootstrap_weights(11, EF_RNG_BOOTSTRAP, 3, N, a);
  ef_bootstrap_weights(11, EF_RNG_BOOTSTRAP, 3, N, b);
  ef_bootstrap_weights(11, EF_RNG_BOOTSTRAP, 4, N, c);
  assert_memory_equal(a, b, sizeof a); /* replica r is replica r, for everyone */
  double s = 0, s2 = 0, same = 0;
  for (int i = 0; i < N; i++) {
    s += a[i];
    s2 += a[i] * a[i];
    same += a[i] == c[i];
  }
  double mean = s / N, var = s2 / N - mean * mean;
  printf("# Poisson(1) weights: mean %.4f, variance %.4f over %d events\n", mean, var, N);
  assert_close(mean, 1.0, 5 / sqrt((double)N));
  assert_close(var, 1.0, 5 * sqrt(3.0 / N));
  /* replicas differ: P(equal) for two independent Poisson(1) is 0.3085 */
  assert_close(same / N, 0.3085, 0.01);
  /* a prefix does not depend on how many events follow */
  ef_bootstrap_weights(11, EF_RNG_BOOTSTRAP, 3, 1000, b);
  assert_memory_equal(a, b, 1000 * sizeof(double));
}

typedef struct {
  int count, started;
  int units[16];
  double first[16];
} seen;

static void visit(void *arg, const ef_journal_record *rec, const double *res) {
  seen *s = arg;
  if (rec->kind == EF_JOURNAL_STARTED) {
    assert_null(res);
    s->started++;
    return;
  }
  assert_int_equal(rec->attempts, 1 + rec->unit % 2);
  s->units[s->count] = rec->unit;
  s->first[s->count] = res[0];
  s->count++;
}

static void test_journal(void **state) {
  (void)state;
  char dir[] = "/tmp/ef-journal-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/j", dir);
  ef_journal *j;
  const ef_identity id = {77, 5, 6}, other_data = {77, 4, 6}, other_cfg = {78, 5, 6};
  const char *const names[2] = {"data.file 'd.h5'", "mc.file 'm.h5'"};
  assert_int_equal(ef_journal_probe(path, NULL), EF_JOURNAL_ABSENT);
  assert_int_equal(ef_journal_open(ctx, &j, path, &id, names, 10, 3, 0, NULL, NULL), EF_OK);
  /* held: the probe says so and names this process */
  ef_journal_owner o;
  assert_int_equal(ef_journal_probe(path, &o), EF_JOURNAL_LIVE);
  assert_int_equal(o.pid, (int32_t)getpid());
  for (int u = 0; u < 4; u++) {
    double r[3] = {u + 0.5, 2, 3};
    ef_journal_record start = {EF_JOURNAL_STARTED, u * 2, EF_OK, u % 2, 0, 0.0};
    assert_int_equal(ef_journal_append(ctx, j, &start, NULL), EF_OK);
    ef_journal_record rec = {EF_JOURNAL_DONE, u * 2, EF_OK, u % 2, 1, 0.1 * u};
    assert_int_equal(ef_journal_append(ctx, j, &rec, r), EF_OK);
  }
  /* a reader may scan it while the run appends */
  uint32_t nu = 0, rl = 0;
  seen sc = {0};
  assert_int_equal(ef_journal_scan(ctx, path, &nu, &rl, visit, &sc), EF_OK);
  assert_int_equal(nu, 10);
  assert_int_equal(rl, 3);
  assert_int_equal(sc.count, 4);
  assert_int_equal(sc.started, 4);
  /* --overwrite of a live journal is refused, naming the run */
  assert_int_equal(ef_journal_remove(ctx, path), EF_ERR_INPUT);
  char want[96];
  snprintf(want, sizeof want, "pid %d", (int)getpid());
  assert_non_null(strstr(ef_error_message(ctx), want));
  ef_journal_close(j);
  assert_int_equal(ef_journal_probe(path, NULL), EF_JOURNAL_IDLE);
  /* a second fresh run refuses to clobber it */
  assert_int_equal(ef_journal_open(ctx, &j, path, &id, names, 10, 3, 0, NULL, NULL), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "--resume"));
  /* a torn last record (a kill in the middle of a write) is dropped */
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(truncate(path, st.st_size - 5), 0);
  seen s = {0};
  assert_int_equal(ef_journal_open(ctx, &j, path, &id, names, 10, 3, 1, visit, &s), EF_OK);
  assert_int_equal(s.count, 3);
  assert_int_equal(s.started, 4);
  assert_int_equal(s.units[2], 4);
  assert_close(s.first[1], 1.5, 0);
  double r[3] = {9, 9, 9};
  ef_journal_record rec = {EF_JOURNAL_DONE, 6, EF_OK, 0, 1, 1.0};
  assert_int_equal(ef_journal_append(ctx, j, &rec, r), EF_OK);
  ef_journal_close(j);
  s.count = 0;
  assert_int_equal(ef_journal_open(ctx, &j, path, &id, names, 10, 3, 1, visit, &s), EF_OK);
  assert_int_equal(s.count, 4);
  assert_int_equal(s.units[3], 6);
  /* a second run on the same journal at the same time is refused */
  ef_journal *j2;
  assert_int_equal(ef_journal_open(ctx, &j2, path, &id, names, 10, 3, 1, NULL, NULL),
                   EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "another ensfold run"));
  assert_non_null(strstr(ef_error_message(ctx), want));
  ef_journal_close(j);
  /* another campaign's journal: the config, or the data events changed */
  assert_int_equal(ef_journal_open(ctx, &j, path, &other_cfg, names, 10, 3, 1, NULL, NULL),
                   EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "different campaign: the config changed"));
  assert_int_equal(ef_journal_open(ctx, &j, path, &other_data, names, 10, 3, 1, NULL, NULL),
                   EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "the data events (data.file 'd.h5') changed"));
  assert_null(strstr(ef_error_message(ctx), "mc.file"));
  /* the same campaign with another result row length (another version) */
  assert_int_equal(ef_journal_open(ctx, &j, path, &id, names, 10, 4, 1, NULL, NULL), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "3 values"));
  /* an idle journal can be removed (--overwrite) */
  assert_int_equal(ef_journal_remove(ctx, path), EF_OK);
  assert_int_equal(ef_journal_probe(path, NULL), EF_JOURNAL_ABSENT);
  /* a 0-byte journal (a full disk at its creation) blocks neither a rerun
   * nor a resume: it is started afresh */
  for (int resume = 0; resume < 2; resume++) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(ef_journal_probe(path, NULL), EF_JOURNAL_EMPTY);
    seen e = {0};
    assert_int_equal(ef_journal_open(ctx, &j, path, &id, names, 10, 3, resume, visit, &e), EF_OK);
    assert_int_equal(e.count, 0);
    ef_journal_close(j);
    assert_int_equal(ef_journal_probe(path, NULL), EF_JOURNAL_IDLE);
    unlink(path);
  }
  rmdir(dir);
}

/* Hand out everything through d, ranks asking in turn 0, 1, ..., n_ranks - 1,
 * 0, ...; got (n): the units in the order handed out, by_rank (n): who got
 * each. Returns how many were handed out. */
static size_t drain(ef_dispatch *d, int n_ranks, size_t n, int32_t *got, int *by_rank) {
  size_t k = 0;
  int idle = 0;
  for (int r = 0; idle < n_ranks; r = (r + 1) % n_ranks) {
    int32_t u = ef_dispatch_next(d, r);
    if (u < 0) {
      idle++;
      continue;
    }
    idle = 0; /* a rank told "none left" while units remain would be a bug: checked below */
    assert_true(k < n);
    got[k] = u;
    by_rank[k++] = r;
  }
  return k;
}

static void test_dispatch(void **state) {
  (void)state;
  /* in order, except that a rank keeps its key: 2 ranks over 10 units */
  enum { N = 10 };
  int32_t order[N], key[N] = {-1, -1, 5, 7, 5, 7, 5, -1, 7, 5}, got[N];
  int by[N];
  for (int i = 0; i < N; i++) order[i] = i;
  ef_dispatch *d;
  assert_int_equal(ef_dispatch_create(ctx, &d, N, order, key, NULL, 2), EF_OK);
  /* r0: 0, r1: 1, r0: 2 (key 5), r1: 3 (key 7), then each its key: r0 4, r1 5,
   * r0 6, r1 8 (past 7, key -1), r0 9, r1: no 7 left -> 7 */
  const int32_t want[N] = {0, 1, 2, 3, 4, 5, 6, 8, 9, 7};
  assert_int_equal(drain(d, 2, N, got, by), N);
  assert_memory_equal(got, want, sizeof want);
  assert_int_equal(ef_dispatch_next(d, 0), -1);
  assert_int_equal(ef_dispatch_next(d, 1), -1);
  ef_dispatch_destroy(d);

  /* a rank leaving its key, or without one, skips units whose key another
   * rank holds: r0 0 (key 5), r1 3 (key 7: not 1, whose key r0 holds), then
   * each keeps its key (r0 takes 8 past 6 and 7), then the keyless 7 and 9 */
  {
    int32_t k2[N] = {5, 5, 5, 7, 7, 7, 7, -1, 5, -1};
    const int32_t want2[N] = {0, 3, 1, 4, 2, 5, 8, 6, 7, 9};
    assert_int_equal(ef_dispatch_create(ctx, &d, N, order, k2, NULL, 2), EF_OK);
    assert_int_equal(drain(d, 2, N, got, by), N);
    assert_memory_equal(got, want2, sizeof want2);
    ef_dispatch_destroy(d);
  }

  /* resume: skipped units never go out, the others exactly once */
  unsigned char skip[N] = {1, 0, 0, 1, 0, 0, 1, 0, 0, 1};
  assert_int_equal(ef_dispatch_create(ctx, &d, N, order, key, skip, 3), EF_OK);
  size_t k = drain(d, 3, N, got, by);
  assert_int_equal(k, N - 4);
  int count[N] = {0};
  for (size_t i = 0; i < k; i++) count[got[i]]++;
  for (int u = 0; u < N; u++) assert_int_equal(count[u], !skip[u]);
  ef_dispatch_destroy(d);

  /* the window: a unit with the rank's key EF_DISPATCH_WINDOW entries or
   * more past the first free one is not looked for */
  size_t n = EF_DISPATCH_WINDOW + 10;
  int32_t *ord = malloc(n * sizeof *ord), *ky = malloc(n * sizeof *ky);
  assert_non_null(ord);
  assert_non_null(ky);
  for (size_t i = 0; i < n; i++) {
    ord[i] = (int32_t)(n - 1 - i); /* dispatch order need not be id order */
    ky[i] = -1;
  }
  /* positions in the order 0, WINDOW and WINDOW + 1 have key 3 */
  ky[ord[0]] = ky[ord[EF_DISPATCH_WINDOW]] = ky[ord[EF_DISPATCH_WINDOW + 1]] = 3;
  assert_int_equal(ef_dispatch_create(ctx, &d, n, ord, ky, NULL, 1), EF_OK);
  assert_int_equal(ef_dispatch_next(d, 0), ord[0]);
  /* first free position 1: WINDOW is within 1 + WINDOW entries */
  assert_int_equal(ef_dispatch_next(d, 0), ord[EF_DISPATCH_WINDOW]);
  /* WINDOW + 1 is not: back to the order */
  assert_int_equal(ef_dispatch_next(d, 0), ord[1]);
  /* a rank without a key never searches: in order from here */
  assert_int_equal(ef_dispatch_next(d, 0), ord[2]);
  ef_dispatch_destroy(d);
  free(ord);
  free(ky);
}

/* Detector-network trainings a dispatch costs: per rank, the runs of units
 * with the same key >= 0 (a rank keeps the networks of its last key). */
static int trainings(const int32_t *got, const int *by, const int32_t *key, size_t n, int ranks) {
  int t = 0;
  for (int r = 0; r < ranks; r++) {
    int32_t prev = -1;
    for (size_t i = 0; i < n; i++) {
      if (by[i] != r) continue;
      int32_t k = key[got[i]];
      t += k >= 0 && k != prev;
      prev = k;
    }
  }
  return t;
}

/* The dispatch of a real plan with GAN methods: every unit once, and a rank
 * that leaves an affinity key never comes back to it (the window covers this
 * small plan, so it leaves a key only when no unit of it is left); ranks
 * start on different keys, so each key's networks are trained about once. */
static void test_dispatch_plan(void **state) {
  (void)state;
  ef_config c;
  assert_int_equal(ef_config_load_string(ctx, &c,
                   "seed: 5\ncampaign: {methods: [ibu, gan-topo, gan-mixed], "
                   "fill_models: [PS, M2], replicas: 3, ensemble: 3}\n", "d.yaml"), EF_OK);
  ef_plan *p;
  assert_int_equal(ef_plan_create(ctx, &p, &c), EF_OK);
  size_t n = ef_plan_n_units(p);
  assert_int_equal(n, 2 * 4 + 2 * 2 * 4 * 3);
  int32_t *key = malloc(n * sizeof *key), *got = malloc(n * sizeof *got);
  int *by = malloc(n * sizeof *by);
  assert_true(key && got && by);
  for (size_t u = 0; u < n; u++) {
    key[u] = ef_plan_affinity(p, (int32_t)u);
    const ef_unit *x = ef_plan_unit(p, u);
    assert_true((key[u] < 0) == (x->method == EF_METHOD_IBU));
  }
  enum { RANKS = 3 };
  ef_dispatch *d;
  assert_int_equal(ef_dispatch_create(ctx, &d, n, ef_plan_order(p), key, NULL, RANKS), EF_OK);
  assert_int_equal(drain(d, RANKS, n, got, by), n);
  unsigned char *once = calloc(n, 1);
  assert_non_null(once);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(once[got[i]], 0);
    once[got[i]] = 1;
  }
  for (int r = 0; r < RANKS; r++) {
    int32_t prev = -1;
    unsigned char left[64] = {0}; /* keys this rank has left */
    for (size_t i = 0; i < n; i++) {
      if (by[i] != r) continue;
      int32_t k = key[got[i]];
      assert_true(k < 64);
      if (k >= 0) assert_int_equal(left[k], 0);
      if (prev >= 0 && k != prev) left[prev] = 1;
      prev = k;
    }
  }
  int with = trainings(got, by, key, n, RANKS);
  /* outer GAN trainings: a rank keeps its last one (gan.c), which a unit
   * of the same (method, replica, member) with another fill reuses; the
   * order puts those units next to one another, so each of the 2 x 4 x 3
   * (method, replica, member) is trained once for its 2 fills */
  int outer = 0;
  for (int r = 0; r < RANKS; r++) {
    const ef_unit *last = NULL;
    for (size_t i = 0; i < n; i++) {
      const ef_unit *x = ef_plan_unit(p, (size_t)got[i]);
      if (by[i] != r || x->method == EF_METHOD_IBU) continue;
      outer += !last || last->seed != x->seed;
      last = x;
    }
  }
  printf("# outer GAN trainings for 48 GAN units on %d ranks: %d\n", RANKS, outer);
  assert_int_equal(outer, 2 * 4 * 3);
  ef_dispatch_destroy(d);
  /* the same requests in plain dispatch order (no keys) */
  int32_t *none = malloc(n * sizeof *none);
  assert_non_null(none);
  for (size_t u = 0; u < n; u++) none[u] = -1;
  assert_int_equal(ef_dispatch_create(ctx, &d, n, ef_plan_order(p), none, NULL, RANKS), EF_OK);
  assert_int_equal(drain(d, RANKS, n, got, by), n);
  int without = trainings(got, by, key, n, RANKS);
  /* 2 GAN methods x 4 replicas x 3 members = 24 keys */
  printf("# dispatch of %zu units on %d ranks: %d detector-network trainings for 24 keys "
         "(%d in plain order)\n", n, RANKS, with, without);
  /* each key trained by one rank, except that at the tail a rank finding
   * only other ranks' keys joins one (at most RANKS - 1 such) */
  assert_true(with <= 24 + RANKS - 1);
  assert_true(with < without);
  free(none);
  free(once);
  free(key);
  free(got);
  free(by);
  ef_dispatch_destroy(d);
  ef_plan_destroy(p);
  ef_config_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plan),
      cmocka_unit_test(test_registry),
      cmocka_unit_test(test_bootstrap_weights),
      cmocka_unit_test(test_journal),
      cmocka_unit_test(test_dispatch),
      cmocka_unit_test(test_dispatch_plan),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
