/* The bin-by-bin method (src/methods/binbybin.c), added by
 * docs/architecture.md's checklist: its registry entry, its result against
 * the correction factors computed here from the inputs, the unmeasured bins
 * at the fill's shape, and its refusal of unequal binnings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/model.h"
#include "ensfold/plan.h"
#include "ensfold/unit.h"

static ef_ctx *ctx;

static const char *CONFIG =
    "seed: 8\n"
    "data: {events: 20000}\n"
    "mc: {events: 60000}\n"
    "campaign: {methods: [bin-by-bin], fill_models: [PS], replicas: 2}\n"
    "binning: {vertex: {polar_bins: 9, phi_bins: 12}, detector: {polar_bins: 9, phi_bins: 12}}\n"
    "detector: {pi0: {table_dtheta: 2, table_dphi: 2}}\n";

static int setup(void **s) {
  (void)s;
  return ef_ctx_create(&ctx, MPI_COMM_NULL);
}

static int teardown(void **s) {
  (void)s;
  ef_ctx_destroy(ctx);
  return 0;
}

static int rbin(const ef_binning *b, const ef_events *ev, size_t e) {
  return ev->topology[e] < 1 ? -1 : ef_binning_index(b, ev->reco + 2 * e);
}

static void test_bin_by_bin(void **state) {
  (void)state;
  const ef_method *m = ef_method_get(EF_METHOD_BIN_BY_BIN);
  assert_non_null(m);
  assert_string_equal(m->name, "bin-by-bin");
  assert_true(m->deterministic && !m->has_own);
  ef_config cfg;
  assert_int_equal(ef_config_load_string(ctx, &cfg, CONFIG, "t.yaml"), EF_OK);
  ef_inputs *in;
  assert_int_equal(ef_inputs_create(ctx, &in, &cfg), EF_OK);
  ef_plan *plan;
  assert_int_equal(ef_plan_create(ctx, &plan, &cfg), EF_OK);
  ef_unit_ws *ws;
  assert_int_equal(ef_unit_ws_create(ctx, &ws, &cfg, in), EF_OK);
  const ef_binning *b = ef_inputs_vertex_binning(in);
  int nv = ef_binning_count(b);
  double *row = malloc(ef_unit_result_len(in) * sizeof *row);
  double *t = calloc((size_t)nv, sizeof *t), *r = calloc((size_t)nv, sizeof *r);
  double *d = calloc((size_t)nv, sizeof *d);
  assert_true(row && t && r && d);
  const ef_unit *u = ef_plan_unit(plan, (size_t)ef_plan_unit_id(plan, EF_METHOD_BIN_BY_BIN,
                                                                  EF_MODEL_PS, 0, 0));
  assert_int_equal(ef_unit_run(ctx, &cfg, in, u, 0, ws, row), EF_OK);
  /* the factors from the inputs, replica 0 (no bootstrap weights) */
  const ef_events *mc = ef_inputs_mc(in), *data = ef_inputs_data(in);
  for (size_t e = 0; e < mc->n; e++) {
    t[ef_binning_index(b, mc->vertex + 2 * e)] += 1.0;
    int j = rbin(b, mc, e);
    if (j >= 0) r[j] += 1.0;
  }
  for (size_t e = 0; e < data->n; e++) {
    int j = rbin(b, data, e);
    if (j >= 0) d[j] += 1.0;
  }
  const unsigned char *unf = ef_inputs_unfolded(in);
  const double *prior = ef_inputs_prior(in, EF_MODEL_PS);
  double sum = 0.0, psum = 0.0;
  int n_unf = 0;
  for (int i = 0; i < nv; i++)
    if (unf[i] && r[i] > 0) {
      assert_close(row[i], d[i] * t[i] / r[i], 1e-12 * (row[i] + 1));
      sum += row[i];
      psum += prior[i];
      n_unf++;
    }
  for (int i = 0; i < nv; i++)
    if (!(unf[i] && r[i] > 0)) assert_close(row[i], prior[i] * sum / psum, 1e-9 * (row[i] + 1));
  double chi2 = 0.0;
  const double *truth = ef_inputs_truth(in);
  for (int i = 0; i < nv; i++)
    if (unf[i] && r[i] > 0) chi2 += (row[i] - truth[i]) * (row[i] - truth[i]) / truth[i];
  printf("# bin-by-bin: %d of %d bins from their factors, the rest at the PS shape; "
         "sum (n - truth)^2 / truth / bins = %.2f (PS MC, M1 data)\n", n_unf, nv, chi2 / n_unf);
  free(row);
  free(t);
  free(r);
  free(d);
  ef_unit_ws_destroy(ws);
  ef_plan_destroy(plan);
  ef_inputs_destroy(in);
  /* unequal binnings are refused before any unit runs */
  assert_int_equal(ef_config_set(ctx, &cfg, "binning.detector.phi_bins=6"), EF_OK);
  assert_int_equal(ef_inputs_create(ctx, &in, &cfg), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "bin-by-bin needs binning.detector equal"));
  ef_config_free(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_bin_by_bin)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
