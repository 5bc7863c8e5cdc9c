/* Campaign inputs (src/campaign/inputs.c) on a small generated campaign:
 * the data's detector bins, the priors and the truth, the MC efficiency
 * maps, the data attributed per vertex bin and the unfolded ("measured")
 * bins, and a method's refusal of inputs that fail all its units. */
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

#include "ensfold/ibu.h"
#include "ensfold/inputs.h"
#include "ensfold/model.h"

static ef_ctx *ctx;

static const char *CONFIG =
    "seed: 3\n"
    "data: {events: 20000}\n"
    "mc: {events: 60000}\n"
    "campaign: {methods: [ibu], fill_models: [PS, M2], replicas: 2}\n"
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

/* The seen MC per bin is the count of the MC's measured events in it (an
 * unweighted MC: Kish's number is the count), counted here apart. */
static void check_mc_seen(const ef_inputs *in, int nv) {
  const ef_events *mc = ef_inputs_mc(in);
  assert_null(mc->weight);
  double *count = calloc((size_t)nv, sizeof *count);
  for (size_t e = 0; e < mc->n; e++) {
    int k = ef_binning_index(ef_inputs_vertex_binning(in), mc->vertex + 2 * e);
    if (k >= 0 && ef_events_measured(mc, e)) count[k] += 1.0;
  }
  for (int k = 0; k < nv; k++) assert_close(ef_inputs_mc_seen(in)[k], count[k], 1e-9 * count[k]);
  free(count);
}

/* ibu.min_mc between the bins' seen MC events takes exactly the thinner
 * bins out of the measured ones; one that no bin reaches refuses the
 * inputs with a message naming the key. */
static void check_min_mc(ef_config *cfg) {
  ef_inputs *in;
  assert_int_equal(ef_inputs_create(ctx, &in, cfg), EF_OK);
  int nv = ef_binning_count(ef_inputs_vertex_binning(in)), n0 = 0, n1 = 0;
  const unsigned char *unf = ef_inputs_unfolded(in);
  double *m = calloc((size_t)nv, sizeof *m);
  assert_non_null(m);
  for (int k = 0; k < nv; k++)
    if (unf[k]) m[n0++] = ef_inputs_mc_seen(in)[k];
  assert_true(n0 > 2);
  for (int i = 0; i < n0; i++) /* a plain sort: n0 is small */
    for (int j = i + 1; j < n0; j++)
      if (m[j] < m[i]) { double t = m[i]; m[i] = m[j]; m[j] = t; }
  double cut = m[n0 / 2]; /* the median seen MC of the measured bins */
  unsigned char *before = malloc((size_t)nv);
  memcpy(before, unf, (size_t)nv);
  ef_inputs_destroy(in);
  char set[64];
  snprintf(set, sizeof set, "ibu.min_mc=%.17g", cut);
  assert_int_equal(ef_config_set(ctx, cfg, set), EF_OK);
  assert_int_equal(ef_inputs_create(ctx, &in, cfg), EF_OK);
  for (int k = 0; k < nv; k++) {
    int want = before[k] && ef_inputs_mc_seen(in)[k] >= cut;
    assert_int_equal(ef_inputs_unfolded(in)[k], want);
    n1 += want;
  }
  assert_true(n1 > 0 && n1 < n0);
  ef_inputs_destroy(in);
  assert_int_equal(ef_config_set(ctx, cfg, "ibu.min_mc=1e9"), EF_OK);
  assert_int_equal(ef_inputs_create(ctx, &in, cfg), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "ibu.min_mc = 1e+09"));
  assert_non_null(strstr(ef_error_message(ctx), "so every ibu unit would fail"));
  assert_int_equal(ef_config_set(ctx, cfg, "ibu.min_mc=10"), EF_OK);
  free(before);
  free(m);
}

static void test_generated(void **state) {
  (void)state;
  ef_config cfg;
  assert_int_equal(ef_config_load_string(ctx, &cfg, CONFIG, "t.yaml"), EF_OK);
  ef_inputs *in;
  assert_int_equal(ef_inputs_create(ctx, &in, &cfg), EF_OK);
  const ef_binning *vb = ef_inputs_vertex_binning(in), *db = ef_inputs_detector_binning(in);
  int nv = ef_binning_count(vb);
  const ef_events *data = ef_inputs_data(in);
  assert_int_equal((int)data->n, 20000);
  /* every data event's detector bin is ibu.c's */
  const int *bins = ef_inputs_data_bins(in);
  double measured = 0.0;
  for (size_t e = 0; e < data->n; e++) {
    assert_int_equal(bins[e],
                     ef_ibu_detector_bin(db, &data->space, data->topology[e], data->reco + 2 * e));
    measured += bins[e] >= 0;
  }
  /* priors are probabilities; the truth sums to the data's events */
  for (int f = EF_MODEL_PS; f <= EF_MODEL_M2; f++) {
    double s = 0.0;
    for (int k = 0; k < nv; k++) s += ef_inputs_prior(in, f)[k];
    assert_close(s, 1.0, 1e-6);
  }
  assert_null(ef_inputs_prior(in, EF_MODEL_M1)); /* not a fill of this campaign */
  double t = 0.0;
  for (int k = 0; k < nv; k++) t += ef_inputs_truth(in)[k];
  assert_close(t, 20000.0, 20000.0 * 1e-6);
  /* the MC's P(T0..T3 | bin) sums to 1 in every bin with MC (each event's
   * probabilities are float32: 1 within a few 1e-8 each) */
  const double *me = ef_inputs_mc_efficiency(in);
  for (int k = 0; k < nv; k++)
    assert_close(me[k] + me[nv + k] + me[2 * nv + k] + me[3 * nv + k], 1.0, 1e-6);
  /* the attributed data sum to the measured data the response reaches; a
   * bin is unfolded exactly when efficiency and attributed data pass */
  const double *att = ef_inputs_attributed(in), *mcs = ef_inputs_mc_seen(in);
  const double *eps = ef_response_efficiency(ef_inputs_response(in));
  const unsigned char *unf = ef_inputs_unfolded(in), *it = ef_inputs_iterated(in);
  double sa = 0.0;
  int n_unf = 0, n_it = 0;
  for (int k = 0; k < nv; k++) {
    sa += att[k];
    int seen = eps[k] > 0 && eps[k] >= cfg.ibu.min_efficiency;
    assert_int_equal(unf[k], seen && att[k] >= cfg.ibu.min_expected && mcs[k] >= cfg.ibu.min_mc);
    /* IBU iterates every bin the detector sees, measured or not */
    assert_int_equal(it[k], seen);
    n_unf += unf[k];
    n_it += it[k];
  }
  assert_true(sa <= measured + 1e-6 && sa > 0.99 * measured);
  printf("# %d vertex bins, %d measured, %d iterated; %.0f of %.0f measured data events "
         "attributed\n", nv, n_unf, n_it, sa, measured);
  assert_true(n_unf > 0 && n_unf < n_it && n_it < nv);
  check_mc_seen(in, nv);
  ef_inputs_destroy(in);
  check_min_mc(&cfg);
  /* a min_expected no bin reaches: IBU refuses the inputs before any unit */
  assert_int_equal(ef_config_set(ctx, &cfg, "ibu.min_expected=1e9"), EF_OK);
  assert_int_equal(ef_inputs_create(ctx, &in, &cfg), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "so every ibu unit would fail"));
  assert_null(in);
  ef_config_free(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_generated)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
