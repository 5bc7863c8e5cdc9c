/* The CLAS-like detector: geometry, the tabulated pi0 acceptance against
 * direct quadrature, P(T | v) against a brute-force Monte Carlo, topology
 * fractions against physics.md 6, and reconstruction with smearing off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"
#include <math.h>
#include <stdio.h>

#include "ensfold/config.h"
#include "ensfold/detector.h"
#include "ensfold/model.h"

#define DEG (M_PI / 180.0)

static ef_ctx *ctx;
static ef_config cfg;
static ef_detector *det;   /* defaults, 1.1 GeV */

static int setup(void **state) {
  (void)state;
  if (ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) return -1;
  if (ef_config_defaults(ctx, &cfg) != EF_OK) return -1;
  return ef_detector_create(ctx, &det, &cfg.physics, &cfg.detector);
}

static int teardown(void **state) {
  (void)state;
  ef_detector_destroy(det);
  ef_config_free(&cfg);
  ef_ctx_destroy(ctx);
  return 0;
}

static void test_geometry(void **state) {
  (void)state;
  assert_int_equal(ef_detector_sector(0.0), 1);
  assert_int_equal(ef_detector_sector(29.9 * DEG), 1);
  assert_int_equal(ef_detector_sector(30.1 * DEG), 2);
  assert_int_equal(ef_detector_sector(M_PI), 4);
  assert_int_equal(ef_detector_sector(-60 * DEG), 6);
  assert_int_equal(ef_detector_sector(-29 * DEG), 1);
  assert_close(ef_detector_phi_local_deg(70 * DEG), 10.0, 1e-9);
  assert_close(ef_detector_phi_local_deg(-70 * DEG), -10.0, 1e-9);
  /* coil: flat +-26 deg above 30 deg polar angle, narrower below */
  assert_true(ef_detector_coil_ok(det, 60 * DEG, 25.9 * DEG));
  assert_false(ef_detector_coil_ok(det, 60 * DEG, 26.1 * DEG));
  /* at 10 deg: 30 - 2/sin(10 deg) = 18.48 deg */
  assert_true(ef_detector_coil_ok(det, 10 * DEG, 18.4 * DEG));
  assert_false(ef_detector_coil_ok(det, 10 * DEG, 18.6 * DEG));
  /* paddles: k = 1 + floor(57 (theta - 8) / 134) */
  assert_int_equal(ef_detector_paddle(det, 8.0 * DEG), 1);
  assert_int_equal(ef_detector_paddle(det, 50.0 * DEG), 1 + (int)floor(57 * 42.0 / 134));
  assert_int_equal(ef_detector_paddle(det, 142.0 * DEG), 57);
  assert_int_equal(ef_detector_paddle(det, 5.0 * DEG), 0);
}

/* A proton of 1 GeV/c at (theta, phi) in the lab. */
static double eps_p_at(double th_deg, double phi_deg, double p) {
  double e = sqrt(p * p + EF_M_PROTON * EF_M_PROTON);
  double v[4] = {e, p * sin(th_deg * DEG) * cos(phi_deg * DEG),
                 p * sin(th_deg * DEG) * sin(phi_deg * DEG), p * cos(th_deg * DEG)};
  return ef_detector_eps_proton(det, v);
}

static void test_proton_acceptance(void **state) {
  (void)state;
  double live = 0.97 * 0.98 * 0.99;
  assert_close(eps_p_at(50, 0, 1.0), live, 1e-12);
  assert_close(eps_p_at(95, 0, 1.0), 0.0, 0);    /* sector 1 TOF dead above 90 */
  assert_close(eps_p_at(95, 60, 1.0), live, 1e-12); /* sector 2 live */
  assert_close(eps_p_at(75, 120, 1.0), 0.0, 0);  /* sector 3 dead above 70 */
  assert_close(eps_p_at(85, 240, 1.0), 0.0, 0);  /* sector 5 dead above 80 */
  assert_close(eps_p_at(50, 0, 0.29), 0.0, 0);   /* below 0.30 GeV/c */
  assert_close(eps_p_at(9, 0, 1.0), 0.0, 0);     /* below 10 deg */
  assert_close(eps_p_at(141, 60, 1.0), 0.0, 0);  /* above 140 deg */
  assert_close(eps_p_at(50, 28, 1.0), 0.0, 0);   /* in the coil */
}

/* The table against direct quadrature of physics.md on a 960 x 960 grid
 * (whose own error is ~1e-4: 480 x 480 and 1920 x 1920 differ from it by
 * that much), at 60 random vertices where the pi0 can be seen. */
static void test_pi0_table_vs_quadrature(void **state) {
  (void)state;
  ef_rng r;
  ef_rng_init(&r, 11, EF_RNG_TEST, 0);
  double worst = 0, mean = 0;
  int n = 0, nonzero = 0;
  for (int k = 0; k < 60; k++) {
    double c = 0.2 + 0.8 * ef_rng_uniform(&r), f = M_PI * (2 * ef_rng_uniform(&r) - 1);
    double tab = ef_detector_eps_pi0(det, c, f);
    double direct = ef_detector_eps_pi0_grid(det, c, f, 960);
    worst = fmax(worst, fabs(tab - direct));
    mean += fabs(tab - direct);
    nonzero += direct > 0.01;
    n++;
  }
  printf("# pi0 table vs 960x960 quadrature: max |diff| %.2e, mean %.2e over %d points "
         "(%d with eps > 0.01)\n", worst, mean / n, n, nonzero);
  assert_true(nonzero > 20);
  assert_true(worst < 1e-3);
  /* exact zeros: pi0 outside the 45 deg cone (backward) */
  assert_close(ef_detector_eps_pi0(det, -0.5, 0.1), 0.0, 0);
  assert_close(ef_detector_eps_pi0(det, 0.1, 0.1), 0.0, 0);
  /* symmetric in the sector-local azimuth and periodic in sectors */
  assert_close(ef_detector_eps_pi0(det, 0.8, 10 * DEG),
                     ef_detector_eps_pi0(det, 0.8, -10 * DEG), 1e-12);
  assert_close(ef_detector_eps_pi0(det, 0.8, 10 * DEG),
                     ef_detector_eps_pi0(det, 0.8, 130 * DEG), 1e-12);
}

/* P(T | v) averaged in (theta*, phi*) bins against a brute-force Monte Carlo
 * of the detector (every efficiency its own Bernoulli draw, a random decay
 * direction per event, no quadrature). */
static void test_prob_vs_bruteforce(void **state) {
  (void)state;
  enum { NT = 18, NF = 12, K = 3000 };
  ef_rng r, rb;
  ef_rng_init(&r, 3, EF_RNG_TEST, 1);
  ef_rng_init(&rb, 3, EF_RNG_TEST, 2);
  double worst_z = 0, chi2 = 0;
  int ndf = 0;
  for (int it = 0; it < NT; it++)
    for (int jf = 0; jf < NF; jf++) {
      double exp_[4] = {0}, var[4] = {0}, obs[4] = {0};
      double c_hi = cos(it * 10 * DEG), c_lo = cos((it + 1) * 10 * DEG);
      for (int k = 0; k < K; k++) {
        double c = c_lo + (c_hi - c_lo) * ef_rng_uniform(&r);
        double f = -M_PI + (jf + ef_rng_uniform(&r)) * 2 * M_PI / NF;
        double p[4];
        ef_detector_prob(det, c, f, p);
        for (int t = 0; t < 4; t++) {
          exp_[t] += p[t];
          var[t] += p[t] * (1 - p[t]);
        }
        obs[ef_detector_simulate_bruteforce(det, &rb, c, f)] += 1;
      }
      for (int t = 0; t < 4; t++) {
        /* table error (<= 1e-3 per event) adds a systematic of K * 1e-3 */
        double sd = sqrt(var[t] + 1e-9);
        if (var[t] < 1e-6) {
          assert_close(obs[t], exp_[t], 0.5 + 1e-3 * K);
          continue;
        }
        double z = (obs[t] - exp_[t]) / sd;
        worst_z = fmax(worst_z, fabs(z));
        chi2 += z * z;
        ndf++;
      }
    }
  printf("# P(T|v) vs brute force: %d (bin, topology) cells, chi2/ndf %.3f, worst |z| %.2f\n",
         ndf, chi2 / ndf, worst_z);
  assert_true(worst_z < 5.0);
  assert_true(chi2 / ndf < 1.3);
}

/* physics.md 6, M1 / PS / M2 at 1.1 GeV, 200k events each. */
static void test_topology_fractions(void **state) {
  (void)state;
  static const double spec[3][4] = {{0.222, 0.021, 0.696, 0.062},
                                    {0.263, 0.026, 0.644, 0.067},
                                    {0.253, 0.028, 0.649, 0.071}};
  for (int id = 0; id < EF_N_MODELS; id++) {
    ef_model m;
    ef_model_init(&m, (ef_model_id)id, &cfg.physics);
    ef_rng r;
    ef_rng_init(&r, 1, EF_RNG_TEST, 10 + id);
    double cnt[4] = {0}, pexp[4] = {0};
    const int n = 200000;
    for (int e = 0; e < n; e++) {
      double c, f, p[4], reco[2];
      ef_model_sample(&m, &r, &c, &f);
      cnt[ef_detector_simulate(det, &r, c, f, p, reco)] += 1;
      for (int t = 0; t < 4; t++) pexp[t] += p[t];
    }
    printf("# %s at 1.1 GeV: sampled T0..T3 = %.4f %.4f %.4f %.4f; exact-P mean = %.4f %.4f "
           "%.4f %.4f; spec %.3f %.3f %.3f %.3f\n", ef_model_name((ef_model_id)id),
           cnt[0] / n, cnt[1] / n, cnt[2] / n, cnt[3] / n, pexp[0] / n, pexp[1] / n,
           pexp[2] / n, pexp[3] / n, spec[id][0], spec[id][1], spec[id][2], spec[id][3]);
    for (int t = 0; t < 4; t++) {
      assert_close(cnt[t] / n, spec[id][t], 0.02);
      assert_close(pexp[t] / n, spec[id][t], 0.02);
    }
  }
}

/* physics.md 6: M1 at 1.1 GeV by theta*, exact P averaged per bin. */
static void test_theta_bands(void **state) {
  (void)state;
  ef_model m;
  ef_model_init(&m, EF_MODEL_M1, &cfg.physics);
  struct { double lo, hi, t0, t1, t2, t3; } band[] = {
      {0, 20, 0.93, 0.07, 0.0, 0.0},   {20, 40, 0.34, 0.13, 0.37, 0.17},
      {40, 60, 0.12, -1, 0.52, 0.29}, {60, 80, 0.16, -1, 0.73, 0.08},
      {140, 160, -1, -1, 0.59, -1},    {160, 180, 1.00, 0.0, 0.0, 0.0},
  };
  ef_rng r;
  ef_rng_init(&r, 2, EF_RNG_TEST, 20);
  for (size_t b = 0; b < sizeof band / sizeof band[0]; b++) {
    double s[4] = {0}, w = 0;
    for (int e = 0; e < 40000; e++) {
      double c = cos(band[b].hi * DEG) + (cos(band[b].lo * DEG) - cos(band[b].hi * DEG)) * ef_rng_uniform(&r);
      double f = M_PI * (2 * ef_rng_uniform(&r) - 1), p[4];
      double wt = ef_model_density(&m, c, f);
      ef_detector_prob(det, c, f, p);
      for (int t = 0; t < 4; t++) s[t] += wt * p[t];
      w += wt;
    }
    double want[4] = {band[b].t0, band[b].t1, band[b].t2, band[b].t3};
    printf("# theta* %3.0f-%3.0f: T0..T3 = %.3f %.3f %.3f %.3f\n", band[b].lo, band[b].hi,
           s[0] / w, s[1] / w, s[2] / w, s[3] / w);
    for (int t = 0; t < 4; t++)
      if (want[t] >= 0) assert_close(s[t] / w, want[t], 0.02);
  }
}

/* Smearing off: the reconstructed angles are the vertex to 1e-9, in every
 * measured topology. Smearing on: the spread is at the configured scale. */
static void test_reco_without_smearing(void **state) {
  (void)state;
  ef_config c0 = cfg;
  c0.source = NULL;
  c0.detector.smearing.scale = 0.0;
  ef_detector *d0;
  assert_int_equal(ef_detector_create(ctx, &d0, &c0.physics, &c0.detector), EF_OK);
  ef_model m;
  ef_model_init(&m, EF_MODEL_M1, &cfg.physics);
  ef_rng r;
  ef_rng_init(&r, 4, EF_RNG_TEST, 30);
  double worst = 0, spread2 = 0;
  int seen[4] = {0}, n2 = 0;
  for (int e = 0; e < 100000; e++) {
    double c, f, p[4], reco[2], reco1[2];
    ef_model_sample(&m, &r, &c, &f);
    ef_rng copy = r;
    int t = ef_detector_simulate(d0, &r, c, f, p, reco);
    int t1 = ef_detector_simulate(det, &copy, c, f, p, reco1);
    seen[t]++;
    if (t == EF_T0) {
      assert_true(isnan(reco[0]) && isnan(reco[1]));
      continue;
    }
    if (fabs(c) < 0.999999)
      worst = fmax(worst, fmax(fabs(reco[0] - c), fabs(ef_wrap_pi(reco[1] - f))));
    if (t1 == EF_T2) {
      spread2 += (reco1[0] - c) * (reco1[0] - c);
      n2++;
    }
  }
  printf("# smearing off: worst |reco - vertex| = %.2e over T1 %d, T2 %d, T3 %d events; "
         "smearing on: rms(cos theta) in T2 = %.2e\n", worst, seen[1], seen[2], seen[3],
         sqrt(spread2 / n2));
  assert_true(seen[1] > 100 && seen[2] > 1000 && seen[3] > 100);
  assert_true(worst < 1e-9);
  assert_true(sqrt(spread2 / n2) > 1e-3);
  ef_detector_destroy(d0);
}

/* The delta-peak preset (0.34 GeV): only T2 survives; M1 T0 0.477, T2 0.523. */
static void test_delta_peak(void **state) {
  (void)state;
  ef_config c1 = cfg;
  c1.source = NULL;
  c1.physics.beam_energy = 0.34;
  ef_detector *d1;
  assert_int_equal(ef_detector_create(ctx, &d1, &c1.physics, &c1.detector), EF_OK);
  ef_model m;
  ef_model_init(&m, EF_MODEL_M1, &c1.physics);
  ef_rng r;
  ef_rng_init(&r, 5, EF_RNG_TEST, 40);
  double cnt[4] = {0};
  const int n = 100000;
  for (int e = 0; e < n; e++) {
    double c, f, p[4], reco[2];
    ef_model_sample(&m, &r, &c, &f);
    cnt[ef_detector_simulate(d1, &r, c, f, p, reco)] += 1;
  }
  printf("# M1 at 0.34 GeV: T0..T3 = %.4f %.4f %.4f %.4f (spec 0.477 0 0.523 0)\n", cnt[0] / n,
         cnt[1] / n, cnt[2] / n, cnt[3] / n);
  assert_close(cnt[0] / n, 0.477, 0.02);
  assert_close(cnt[2] / n, 0.523, 0.02);
  assert_close(cnt[1], 0, 0);
  assert_close(cnt[3], 0, 0);
  ef_detector_destroy(d1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_geometry),
      cmocka_unit_test(test_proton_acceptance),
      cmocka_unit_test(test_pi0_table_vs_quadrature),
      cmocka_unit_test(test_prob_vs_bruteforce),
      cmocka_unit_test(test_topology_fractions),
      cmocka_unit_test(test_theta_bands),
      cmocka_unit_test(test_reco_without_smearing),
      cmocka_unit_test(test_delta_peak),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
