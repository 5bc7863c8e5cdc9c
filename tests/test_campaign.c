/* Campaign pieces without MPI: plan ids and seeds, paired bootstrap
 * weights, and the journal (round trip, torn tail, wrong campaign). */
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
    assert_true(u->seed == ef_plan_unit_seed(5, u->id));
    for (size_t j = 0; j < i; j++) assert_true(ef_plan_unit(p, j)->seed != u->seed);
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
  assert_int_equal(ef_journal_open(ctx, &j, path, 77, 10, 3, 0, NULL, NULL), EF_OK);
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
  ef_journal_close(j);
  /* a second fresh run refuses to clobber it */
  assert_int_equal(ef_journal_open(ctx, &j, path, 77, 10, 3, 0, NULL, NULL), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "--resume"));
  /* a torn last record (a kill in the middle of a write) is dropped */
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(truncate(path, st.st_size - 5), 0);
  seen s = {0};
  assert_int_equal(ef_journal_open(ctx, &j, path, 77, 10, 3, 1, visit, &s), EF_OK);
  assert_int_equal(s.count, 3);
  assert_int_equal(s.started, 4);
  assert_int_equal(s.units[2], 4);
  assert_close(s.first[1], 1.5, 0);
  double r[3] = {9, 9, 9};
  ef_journal_record rec = {EF_JOURNAL_DONE, 6, EF_OK, 0, 1, 1.0};
  assert_int_equal(ef_journal_append(ctx, j, &rec, r), EF_OK);
  ef_journal_close(j);
  s.count = 0;
  assert_int_equal(ef_journal_open(ctx, &j, path, 77, 10, 3, 1, visit, &s), EF_OK);
  assert_int_equal(s.count, 4);
  assert_int_equal(s.units[3], 6);
  /* a second run on the same journal at the same time is refused */
  ef_journal *j2;
  assert_int_equal(ef_journal_open(ctx, &j2, path, 77, 10, 3, 1, NULL, NULL), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "another ensfold run"));
  ef_journal_close(j);
  /* another campaign's journal */
  assert_int_equal(ef_journal_open(ctx, &j, path, 78, 10, 3, 1, NULL, NULL), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "different campaign"));
  unlink(path);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plan),
      cmocka_unit_test(test_bootstrap_weights),
      cmocka_unit_test(test_journal),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
