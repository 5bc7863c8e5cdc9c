/* Group statistics (src/campaign/groupstats.c) and the result file
 * (src/campaign/output.c) on a campaign whose unit rows are made by hand:
 * the replica mean and sigma, the paired fill difference and the model
 * part, the closure classes, a failed unit's replica left out, and the
 * file's datasets equal to what was computed. Serial (no MPI job). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ensfold/model.h"
#include "ensfold/output.h"
#include "ensfold/plan.h"
#include "ensfold/unit.h"
#include "src/campaign/groupstats.h"

static ef_ctx *ctx;
static ef_config cfg;
static ef_inputs *in;
static ef_plan *plan;

static const char *CONFIG =
    "seed: 11\n"
    "data: {events: 20000}\n"
    "mc: {events: 60000}\n"
    "campaign: {methods: [ibu], fill_models: [PS, M2], replicas: 4}\n"
    "binning: {vertex: {polar_bins: 6, phi_bins: 8}, detector: {polar_bins: 6, phi_bins: 8}}\n"
    "detector: {pi0: {table_dtheta: 2, table_dphi: 2}}\n";

static int setup(void **s) {
  (void)s;
  if (ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) return -1;
  if (ef_config_load_string(ctx, &cfg, CONFIG, "t.yaml") != EF_OK) return -1;
  if (ef_inputs_create(ctx, &in, &cfg) != EF_OK) return -1;
  return ef_plan_create(ctx, &plan, &cfg) == EF_OK ? 0 : -1;
}

static int teardown(void **s) {
  (void)s;
  ef_plan_destroy(plan);
  ef_inputs_destroy(in);
  ef_config_free(&cfg);
  ef_ctx_destroy(ctx);
  return 0;
}

/* Unit rows: replica r of fill f holds truth_i (1 + 0.01 r) + 10 f in every
 * bin (replica 0 the truth); the efficiency map is the MC's, no curves, no
 * own answer (NaN). */
static double *make_rows(size_t len, int nv, int32_t *status) {
  size_t nu = ef_plan_n_units(plan);
  double *rows = calloc(nu * len, sizeof *rows);
  assert_non_null(rows);
  const double *truth = ef_inputs_truth(in);
  for (size_t u = 0; u < nu; u++) {
    const ef_unit *x = ef_plan_unit(plan, u);
    ef_unit_parts p = ef_unit_row_parts(rows + u * len, in);
    for (int i = 0; i < nv; i++) {
      p.hist[i] = truth[i] * (1 + 0.01 * x->replica) + 10.0 * (x->fill == EF_MODEL_M2);
      p.own[i] = NAN;
    }
    memcpy(p.eff, ef_inputs_mc_efficiency(in), 4 * (size_t)nv * sizeof(double));
    status[u] = EF_OK;
  }
  return rows;
}

static void test_groups(void **state) {
  (void)state;
  int nv = ef_binning_count(ef_inputs_vertex_binning(in));
  size_t len = ef_unit_result_len(in), nu = ef_plan_n_units(plan);
  int32_t *status = calloc(nu, sizeof *status);
  assert_non_null(status);
  double *rows = make_rows(len, nv, status);
  /* replica 3 of the PS group fails: that replica leaves the PS group and
   * the paired difference, not the M2 group */
  int32_t bad = ef_plan_unit_id(plan, EF_METHOD_IBU, EF_MODEL_PS, 3, 0);
  status[bad] = EF_ERR_NUMERIC;
  for (size_t k = 0; k < len; k++) rows[(size_t)bad * len + k] = NAN;
  ef_identity id = {1, 2, 3};
  ef_output_data d = {.cfg = &cfg, .config_text = CONFIG, .identity = &id, .plan = plan,
                      .in = in, .results = rows, .result_len = len, .status = status};
  ef_group_set set;
  assert_int_equal(ef_groupstats_compute(ctx, &d, 1, &set), EF_OK);
  assert_int_equal(set.ng, 2);
  assert_int_equal(set.ndiff, 1);
  const double *truth = ef_inputs_truth(in);
  for (int g = 0; g < 2; g++) {
    const group_stats *x = &set.gs[g];
    int ps = x->fill == EF_MODEL_PS, R = ps ? 3 : 4;
    assert_int_equal(x->n_rep, R);
    /* M2: replicas 1..4, factors 1.01 .. 1.04: mean 1.025, sample sd
     * 0.01 sqrt(5/3); PS: replicas 1, 2, 4: mean 1 + 0.07/3, sd 0.01 sqrt(7/3) */
    double fm = ps ? 1 + 0.07 / 3 : 1.025, fs = 0.01 * sqrt(ps ? 7.0 / 3 : 5.0 / 3);
    for (int i = 0; i < nv; i++) {
      assert_close(x->mean[i], truth[i] * fm + (ps ? 0 : 10), 1e-9 * (truth[i] + 10));
      assert_close(x->sigma[i], truth[i] * fs, 1e-9 * truth[i] + 1e-12);
      assert_close(x->parts.stat[i], x->sigma[i], 0); /* IBU: no training part */
      assert_close(x->parts.central[i], x->sigma[i], 0);
      assert_close(x->parts.training[i], 0.0, 0);
    }
    assert_int_equal(x->has_own, 0);
  }
  /* model part: |PS - M2| / 2 of the group means, the same for both groups */
  for (int i = 0; i < nv; i++) {
    double want = fabs(set.gs[0].mean[i] - set.gs[1].mean[i]) / 2;
    assert_close(set.gs[0].model[i], want, 1e-9 * (want + 1));
    assert_close(set.gs[1].model[i], set.gs[0].model[i], 0);
  }
  /* the paired difference over the 3 replicas both have: -10 in every bin,
   * no spread */
  const diff_stats *df = &set.ds[0];
  assert_int_equal(df->n_rep, 3);
  for (int i = 0; i < nv; i++) {
    assert_close(fabs(df->mean[i]), 10.0, 1e-9);
    assert_close(df->sigma[i], 0.0, 1e-9);
  }
  /* classes: every bin is measured, a hole or open */
  for (int i = 0; i < nv; i++) assert_true(set.cls[i] <= EF_CLASS_OPEN);

  /* the file holds what was computed */
  char path[] = "/tmp/ef-test-output-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  unlink(path);
  double wall[64] = {0};
  int32_t ranks[64] = {0}, attempts[64] = {0};
  assert_true(nu <= 64);
  d.wall_s = wall;
  d.rank = ranks;
  d.attempts = attempts;
  assert_int_equal(ef_output_write(ctx, path, &d), EF_OK);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  assert_true(f >= 0);
  for (int g = 0; g < 2; g++) {
    char name[96];
    snprintf(name, sizeof name, "groups/ibu_%s/mean", g == 0 ? "PS" : "M2");
    const group_stats *x = set.gs[0].fill == (g == 0 ? EF_MODEL_PS : EF_MODEL_M2) ? &set.gs[0]
                                                                                 : &set.gs[1];
    double *v = malloc((size_t)nv * sizeof *v);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(ds >= 0);
    assert_true(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    for (int i = 0; i < nv; i++) assert_close(v[i], x->mean[i], 0);
    H5Dclose(ds);
    free(v);
  }
  int32_t st[64];
  hid_t ds = H5Dopen2(f, "units/status", H5P_DEFAULT);
  assert_true(H5Dread(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, st) >= 0);
  assert_int_equal(st[bad], EF_ERR_NUMERIC);
  H5Dclose(ds);
  H5Fclose(f);
  unlink(path);
  printf("# %d bins, 2 groups (PS without its failed replica 3), paired difference over 3 "
         "replicas; file written and read back\n", nv);
  ef_groupstats_free(&set);
  free(rows);
  free(status);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_groups)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
