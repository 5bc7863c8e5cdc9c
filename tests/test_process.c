/* The process interface with the built-in pi0 plug-in: its space and
 * models, and that every call gives what the physics modules give directly
 * (the campaign's results stay bit-identical), plus the refusals: no
 * generation without the detector, files of another space or beam energy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ef_test.h"
#include "ef_test_binning.h"
#include "ensfold/config.h"
#include "ensfold/detector.h"
#include "ensfold/generator.h"
#include "ensfold/model.h"
#include "ensfold/process.h"

static ef_ctx *ctx;
static ef_config cfg;

static double density(const void *arg, double c, double f) { return ef_model_density(arg, c, f); }

static void test_space_and_models(void **state) {
  (void)state;
  ef_process *p;
  assert_int_equal(ef_process_create(ctx, &p, &cfg, NULL), EF_OK);
  assert_string_equal(ef_process_name(p), "pi0");
  assert_true(ef_space_is_pi0(ef_process_space(p)));
  assert_int_equal(ef_process_n_models(p), 3);
  assert_string_equal(ef_process_model_name(p, 0), "M1");
  assert_string_equal(ef_process_model_name(p, 2), "M2");
  assert_string_equal(ef_process_model_name(p, 3), "?");
  assert_false(ef_process_has_detector(p));
  ef_binning *b = ef_test_binning(EF_BIN_THETA_PHI, 18, 36);
  assert_non_null(b);
  for (int m = 0; m < 3; m++) {
    ef_model mm;
    ef_model_init(&mm, (ef_model_id)m, &cfg.physics);
    double sum = 0;
    for (int k = 0; k < ef_binning_count(b); k++) {
      double q = ef_process_bin_probability(p, m, b, k);
      assert_true(q == ef_binning_integrate(b, k, density, &mm)); /* bit for bit */
      sum += q;
    }
    assert_close(sum, 1.0, 1e-9);
    ef_rng r1, r2;
    ef_rng_init(&r1, 5, EF_RNG_TEST, (uint32_t)m);
    ef_rng_init(&r2, 5, EF_RNG_TEST, (uint32_t)m);
    for (int i = 0; i < 1000; i++) {
      double v[2], c, f;
      ef_process_sample(p, m, &r1, v);
      ef_model_sample(&mm, &r2, &c, &f);
      assert_true(v[0] == c && v[1] == f);
    }
  }
  ef_binning_free(b);
  ef_process_destroy(p);
}

static void test_generate_and_efficiency(void **state) {
  (void)state;
  ef_process *p;
  assert_int_equal(ef_process_create(ctx, &p, &cfg, NULL), EF_OK);
  ef_events ev = {0}, direct = {0};
  ef_rng r;
  ef_rng_init(&r, 9, EF_RNG_TEST, 0);
  assert_int_equal(ef_process_generate(ctx, p, 1, &r, 100, EF_KIND_MC, 0, NULL, NULL, &ev),
                   EF_ERR_INTERNAL);
  assert_non_null(strstr(ef_error_message(ctx), "without the detector"));
  assert_int_equal(ef_process_need_detector(ctx, p), EF_OK);
  assert_true(ef_process_has_detector(p));
  assert_int_equal(ef_process_need_detector(ctx, p), EF_OK); /* once is enough */
  ef_rng_init(&r, 9, EF_RNG_TEST, 0);
  assert_int_equal(ef_process_generate(ctx, p, 1, &r, 2000, EF_KIND_MC, 0, NULL, NULL, &ev), EF_OK);
  ef_detector *det;
  assert_int_equal(ef_detector_create(ctx, &det, &cfg.physics, &cfg.detector), EF_OK);
  ef_model ps;
  ef_model_init(&ps, EF_MODEL_PS, &cfg.physics);
  ef_rng_init(&r, 9, EF_RNG_TEST, 0);
  assert_int_equal(ef_generate(ctx, det, &ps, &r, 2000, EF_KIND_MC, 0, NULL, NULL, &direct), EF_OK);
  assert_int_equal(ev.n, direct.n);
  assert_memory_equal(ev.topology, direct.topology, ev.n);
  assert_memory_equal(ev.vertex, direct.vertex, 2 * ev.n * sizeof(double));
  assert_memory_equal(ev.prob, direct.prob, 4 * ev.n * sizeof(float));
  /* exact efficiencies: a probability vector per bin, the 0-10 deg cap
   * nearly blind, the middle rows mostly seen */
  ef_binning *b = ef_test_binning(EF_BIN_THETA_PHI, 18, 36);
  double seen_mid = 0;
  for (int k = 0; k < ef_binning_count(b); k++) {
    double eff[4];
    ef_process_bin_efficiency(p, b, k, eff);
    assert_close(eff[0] + eff[1] + eff[2] + eff[3], 1.0, 1e-12);
    if (k < 36) assert_true(eff[0] > 0.95);
    if (k / 36 == 9) seen_mid += (1 - eff[0]) / 36;
  }
  assert_true(seen_mid > 0.5);
  /* pi0 gives bin averages only (its own 8 x 8 grid): the maps' reference stays that */
  double v[2] = {0.1, 0.2}, pv[4] = {-1, -1, -1, -1};
  assert_int_equal(ef_process_efficiency_at(p, v, pv), 0);
  assert_true(pv[0] == -1);
  ef_binning_free(b);
  ef_detector_destroy(det);
  ef_events_free(&ev);
  ef_events_free(&direct);
  ef_process_destroy(p);
}

static void test_check_events(void **state) {
  (void)state;
  ef_process *p;
  assert_int_equal(ef_process_create(ctx, &p, &cfg, NULL), EF_OK);
  ef_space pi0;
  ef_space_pi0(&pi0);
  ef_events ev = {0};
  assert_int_equal(ef_events_alloc(ctx, &ev, &pi0, 1, EF_KIND_DATA, 0), EF_OK);
  ev.beam_energy = cfg.physics.beam_energy;
  assert_int_equal(ef_process_check_events(ctx, p, &ev, "d.h5", "data.file"), EF_OK);
  ev.beam_energy = NAN; /* not recorded: accepted */
  assert_int_equal(ef_process_check_events(ctx, p, &ev, "d.h5", "data.file"), EF_OK);
  ev.beam_energy = cfg.physics.beam_energy * 1.01;
  assert_int_equal(ef_process_check_events(ctx, p, &ev, "d.h5", "data.file"), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "d.h5 (data.file): made at beam energy"));
  ev.beam_energy = cfg.physics.beam_energy;
  ev.space.dim = 3;
  assert_int_equal(ef_process_check_events(ctx, p, &ev, "d.h5", "data.file"), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "campaigns unfold the pi0 space only"));
  ev.space = pi0;
  ef_events_free(&ev);
  ef_process_destroy(p);
}

/* ---- gauss ---------------------------------------------------------- */

static ef_process *gauss_process(ef_config *c) {
  ef_process *p = NULL;
  if (ef_process_create(ctx, &p, c, NULL) != EF_OK) fail_msg("gauss: %s", ef_error_message(ctx));
  if (ef_process_need_detector(ctx, p) != EF_OK) fail_msg("gauss: %s", ef_error_message(ctx));
  return p;
}

static void moments(const double *x, size_t n, int stride, double *mean, double *sd) {
  double s = 0, q = 0;
  for (size_t i = 0; i < n; i++) s += x[i * (size_t)stride];
  *mean = s / (double)n;
  for (size_t i = 0; i < n; i++) q += pow(x[i * (size_t)stride] - *mean, 2);
  *sd = sqrt(q / (double)(n - 1));
}

/* The defaults: OmniFold's Gaussian example (data N(0, 1), MC N(0.2,
 * 0.8), smearing 0.5, every event seen). */
static void test_gauss_default(void **state) {
  (void)state;
  ef_config c = cfg;
  c.process = EF_PROCESS_GAUSS;
  ef_process *p = gauss_process(&c);
  const ef_space *sp = ef_process_space(p);
  assert_int_equal(sp->dim, 1);
  assert_int_equal(sp->n_cat, 1);
  assert_string_equal(sp->axis[0].name, "x1");
  assert_int_equal(sp->axis[0].kind, EF_AXIS_UNBOUNDED);
  assert_string_equal(ef_process_model_name(p, 0), "data");
  ef_events d = {0}, m = {0};
  ef_rng r;
  ef_rng_init(&r, 11, EF_RNG_TEST, 0);
  const size_t n = 200000;
  assert_int_equal(ef_process_generate(ctx, p, 0, &r, n, EF_KIND_MC, 0, NULL, NULL, &d), EF_OK);
  assert_int_equal(ef_process_generate(ctx, p, 1, &r, n, EF_KIND_MC, 0, NULL, NULL, &m), EF_OK);
  double mu, sd, tol = 5 / sqrt((double)n); /* 5 sigma of the mean per unit width */
  moments(d.vertex, n, 1, &mu, &sd);
  assert_close(mu, 0.0, tol);
  assert_close(sd, 1.0, tol);
  moments(m.vertex, n, 1, &mu, &sd);
  assert_close(mu, 0.2, 0.8 * tol);
  assert_close(sd, 0.8, 0.8 * tol);
  moments(m.reco, n, 1, &mu, &sd);
  assert_close(sd, sqrt(0.64 + 0.25), tol);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(m.topology[i], 0);
    assert_true(m.prob[i] == 1.0f);
  }
  assert_string_equal(m.model, "mc");
  /* a pi0 file is not a gauss file */
  ef_space pi0;
  ef_space_pi0(&pi0);
  d.space = pi0;
  assert_int_equal(ef_process_check_events(ctx, p, &d, "f.h5", "mc.file"), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "f.h5 (mc.file): declares 2 observables"));
  assert_non_null(strstr(ef_error_message(ctx), "process gauss (gauss.dim 1"));
  d.space = *sp;
  assert_int_equal(ef_process_check_events(ctx, p, &d, "f.h5", "mc.file"), EF_OK);
  ef_events_free(&d);
  ef_events_free(&m);
  ef_process_destroy(p);
}

/* D = 3, correlated, the standard acceptance: bin probabilities against
 * generated counts, the categories against their probabilities, the
 * partial category's lost x3, the smearing; the bin efficiency against a
 * fine grid of the formula. */
static void test_gauss_standard(void **state) {
  (void)state;
  ef_config c = cfg;
  c.process = EF_PROCESS_GAUSS;
  c.gauss.dim = 3;
  c.gauss.acceptance = EF_GAUSS_STANDARD;
  c.gauss.model[0].correlation = 0.5;
  c.gauss.model[0].mean = (ef_real_vec){3, {0.0, 0.5, -0.5}};
  ef_process *p = gauss_process(&c);
  assert_int_equal(ef_process_space(p)->n_cat, 3);
  assert_true(ef_process_space(p)->cat[0].blind);
  const size_t n = 300000;
  ef_events ev = {0};
  ef_rng r;
  ef_rng_init(&r, 12, EF_RNG_TEST, 0);
  assert_int_equal(ef_process_generate(ctx, p, 0, &r, n, EF_KIND_MC, 0, NULL, NULL, &ev), EF_OK);
  const ef_bin_axis ax = {EF_BIN_LINEAR, 4, -2.5, 2.5, 0, 0, NULL};
  const ef_bin_axis axes[3] = {ax, ax, ax};
  ef_binning *b;
  assert_int_equal(ef_binning_make(ctx, &b, 3, axes, "test"), EF_OK);
  double counts[64] = {0}, chi2 = 0, pcat[3] = {0}, ncat[3] = {0}, cov = 0, s1 = 0, s2 = 0;
  for (size_t i = 0; i < n; i++) {
    const double *v = ev.vertex + 3 * i, *x = ev.reco + 3 * i;
    int k = ef_binning_index(b, v);
    if (k >= 0) counts[k]++;
    int t = ev.topology[i];
    ncat[t]++;
    for (int q = 0; q < 3; q++) pcat[q] += ev.prob[3 * i + (size_t)q];
    if (t == 0) assert_true(isnan(x[0]) && isnan(x[2]));
    if (t == 1) assert_true(x[2] == 0.0);
    if (t == 2) assert_true(isfinite(x[2]) && x[2] != 0.0);
    if (t > 0) assert_true(v[2] < c.gauss.edge);
    s1 += v[0];
    s2 += v[1] - 0.5;
    cov += v[0] * (v[1] - 0.5);
  }
  double corr = (cov / n - (s1 / n) * (s2 / n)); /* unit widths */
  assert_close(corr, 0.5, 0.02);
  int ndf = 0;
  for (int k = 0; k < 64; k++) {
    double mu = n * ef_process_bin_probability(p, 0, b, k);
    if (mu < 5) continue; /* the anti-correlated corners */
    chi2 += (counts[k] - mu) * (counts[k] - mu) / mu;
    ndf++;
  }
  printf("# gauss D = 3, rho = 0.5: chi2 of %d bin counts against the bin probabilities %.1f\n",
         ndf, chi2);
  assert_true(ndf > 40);
  assert_true(chi2 < ndf + 5 * sqrt(2.0 * ndf));
  for (int q = 0; q < 3; q++) /* categories drawn with their probabilities */
    assert_close(ncat[q] / n, pcat[q] / n, 5 * sqrt(0.25 / n));
  /* the efficiency of a bin: the formula averaged on a fine grid */
  for (int k = 0; k < 64; k += 7) {
    double lo[3], hi[3], eff[3], g = 0;
    ef_binning_range(b, k, lo, hi);
    ef_process_bin_efficiency(p, b, k, eff);
    const int N = 400;
    for (int a = 0; a < N; a++)
      for (int q = 0; q < N; q++) {
        double x1 = lo[0] + (a + 0.5) * (hi[0] - lo[0]) / N, x3 = lo[2] + (q + 0.5) * (hi[2] - lo[2]) / N;
        if (x3 < c.gauss.edge)
          g += c.gauss.eff_max / (1 + exp(-(x1 - c.gauss.eff_centre) / c.gauss.eff_width));
      }
    g /= (double)N * N;
    assert_close(eff[1] + eff[2], g, 2e-3);
    assert_close(eff[0] + eff[1] + eff[2], 1.0, 1e-12);
    assert_close(eff[1], g * c.gauss.partial, 2e-3);
    /* at a point: the formula; averaged on a fine grid of points, the bin's efficiency */
    double x[3] = {0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), 0.5 * (lo[2] + hi[2])}, pt[3];
    assert_int_equal(ef_process_efficiency_at(p, x, pt), 1);
    double want = x[2] < c.gauss.edge
                      ? c.gauss.eff_max / (1 + exp(-(x[0] - c.gauss.eff_centre) / c.gauss.eff_width))
                      : 0.0;
    assert_close(pt[1] + pt[2], want, 1e-12);
    assert_close(pt[1], want * c.gauss.partial, 1e-12);
    double fine = 0;
    for (int a = 0; a < N; a++)
      for (int q = 0; q < N; q++) {
        double y[3] = {lo[0] + (a + 0.5) * (hi[0] - lo[0]) / N, x[1],
                       lo[2] + (q + 0.5) * (hi[2] - lo[2]) / N};
        assert_int_equal(ef_process_efficiency_at(p, y, pt), 1);
        fine += (1.0 - pt[0]) / ((double)N * N);
      }
    assert_close(fine, eff[1] + eff[2], 2e-3);
  }
  /* the maps' grid (binning.h): side^D <= 64 points per bin */
  const int sides[8] = {64, 8, 4, 2, 2, 2, 1, 1};
  for (int d = 1; d <= 8; d++) assert_int_equal(ef_binning_map_side(d), sides[d - 1]);
  double x[3];
  ef_binning_map_point(b, 0, 0, 4, x); /* bin 0's first point: a quarter-cell inside each lower edge */
  double lo0[3], hi0[3];
  ef_binning_range(b, 0, lo0, hi0);
  for (int j = 0; j < 3; j++) assert_close(x[j], lo0[j] + 0.125 * (hi0[j] - lo0[j]), 1e-12);
  ef_binning_map_point(b, 0, 4 * 4 * 4 - 1, 4, x); /* its last */
  for (int j = 0; j < 3; j++) assert_close(x[j], lo0[j] + 0.875 * (hi0[j] - lo0[j]), 1e-12);
  /* probabilities over a range of +-8 widths add up to 1 */
  const ef_bin_axis wide = {EF_BIN_LINEAR, 8, -8.5, 8.5, 0, 0, NULL};
  const ef_bin_axis waxes[3] = {wide, wide, wide};
  ef_binning *w;
  assert_int_equal(ef_binning_make(ctx, &w, 3, waxes, "test"), EF_OK);
  double tot = 0;
  for (int k = 0; k < ef_binning_count(w); k++) tot += ef_process_bin_probability(p, 0, w, k);
  assert_close(tot, 1.0, 1e-9);
  ef_binning_free(w);
  ef_binning_free(b);
  ef_events_free(&ev);
  ef_process_destroy(p);
}

int main(void) {
  if (ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK || ef_config_defaults(ctx, &cfg) != EF_OK)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_space_and_models),
      cmocka_unit_test(test_generate_and_efficiency),
      cmocka_unit_test(test_check_events),
      cmocka_unit_test(test_gauss_default),
      cmocka_unit_test(test_gauss_standard),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ef_config_free(&cfg);
  ef_ctx_destroy(ctx);
  return rc;
}
