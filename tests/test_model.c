/* Models against physics.md sections 2-3 and samplers against their
 * analytic densities (chi2 over 20 x 18 bins, 1e6 events, fixed seeds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"
#include <math.h>
#include <stdio.h>

#include "ensfold/config.h"
#include "ensfold/model.h"
#include "ensfold/stats.h"

static ef_physics_params defaults(void) {
  ef_ctx *ctx;
  ef_ctx_create(&ctx, MPI_COMM_NULL);
  ef_config c;
  ef_config_defaults(ctx, &c);
  ef_physics_params p = c.physics;
  ef_config_free(&c);
  ef_ctx_destroy(ctx);
  return p;
}

/* F(t) = 4 pi x density averaged over phi = (a - b c^2) / norm. */
static double f_of(const ef_model *m, double deg) {
  double c = cos(deg * M_PI / 180), s = 0;
  for (int j = 0; j < 360; j++) s += ef_model_density(m, c, -M_PI + (j + 0.5) * M_PI / 180);
  return s / 360 * 4 * M_PI;
}

static void test_spec_numbers(void **state) {
  (void)state;
  ef_physics_params p = defaults();
  ef_model m1, m2;
  ef_model_init(&m1, EF_MODEL_M1, &p);
  ef_model_init(&m2, EF_MODEL_M2, &p);
  /* physics.md 2: a = 0.21330, b = 0.14040, F(0) = 0.438, F(90) = 1.281 */
  assert_close(m1.a, 0.21330, 5e-6);
  assert_close(m1.b, 0.14040, 5e-6);
  assert_close(f_of(&m1, 0), 0.438, 5e-4);
  assert_close(f_of(&m1, 90), 1.281, 5e-4);
  assert_close(ef_model_sigma(&m1, cos(30 * M_PI / 180)), 0.276, 5e-4);
  assert_close(ef_model_sigma(&m1, cos(60 * M_PI / 180)), 0.502, 5e-4);
  assert_close(ef_model_sigma(&m1, 0.0), 0.559, 5e-4);
  /* physics.md 3: N2 = 0.19923; F2 = 1.07, 1.04, 0.82, 0.37 at 0, 90, 150, 180 */
  assert_close(m2.norm, 0.19923, 5e-6);
  assert_close(f_of(&m2, 0), 1.07, 5e-3);
  assert_close(f_of(&m2, 90), 1.04, 5e-3);
  assert_close(f_of(&m2, 150), 0.82, 5e-3);
  assert_close(f_of(&m2, 180), 0.37, 5e-3);
  /* sigma_D(W): 281 ub at 0.34 GeV, 0.53 ub at 1.1 GeV */
  p.beam_energy = 0.34;
  assert_close(ef_m1_sigma_total_ub(&p), 281, 1.0);
  p.beam_energy = 1.1;
  assert_close(ef_m1_sigma_total_ub(&p), 0.53, 0.005);
  /* the talk's factor 5 changes a only */
  p.talk_a_factor = 1;
  ef_model t;
  ef_model_init(&t, EF_MODEL_M1, &p);
  assert_close(t.a, m1.a + 4 * 0.135 * 0.135, 1e-12);
}

static const double gl_x[8] = {-0.9602898564975363, -0.7966664774136267, -0.5255324099163290,
                               -0.1834346424956498, 0.1834346424956498,  0.5255324099163290,
                               0.7966664774136267,  0.9602898564975363};
static const double gl_w[8] = {0.1012285362903763, 0.2223810344533745, 0.3137066458778873,
                               0.3626837833783620, 0.3626837833783620, 0.3137066458778873,
                               0.2223810344533745, 0.1012285362903763};

/* Integral of the density over a bin, Gauss-Legendre in theta (dcos =
 * sin t dt: M2's exp(k t) has a square-root cusp in cos t at t = pi) and
 * in phi. */
static double bin_prob(const ef_model *m, double c0, double c1, double f0, double f1) {
  double t0 = acos(c1), t1 = acos(c0), s = 0;
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) {
      double t = 0.5 * (t0 + t1) + 0.5 * (t1 - t0) * gl_x[i];
      double f = 0.5 * (f0 + f1) + 0.5 * (f1 - f0) * gl_x[j];
      s += gl_w[i] * gl_w[j] * ef_model_density(m, cos(t), f) * sin(t);
    }
  return s * 0.25 * (t1 - t0) * (f1 - f0);
}

static void sampler_chi2(ef_model_id id, double k_fb) {
  ef_physics_params p = defaults();
  p.k_fb = k_fb;
  ef_model m;
  ef_model_init(&m, id, &p);
  enum { NC = 20, NF = 18 };
  static double cnt[NC][NF];
  for (int i = 0; i < NC; i++)
    for (int j = 0; j < NF; j++) cnt[i][j] = 0;
  ef_rng r;
  ef_rng_init(&r, 20261124, EF_RNG_TEST, (uint32_t)id);
  const int n = 1000000;
  for (int e = 0; e < n; e++) {
    double c, f;
    ef_model_sample(&m, &r, &c, &f);
    assert_true(c >= -1 && c <= 1 && f >= -M_PI && f <= M_PI);
    int i = (int)((c + 1) / 2 * NC), j = (int)((f + M_PI) / (2 * M_PI) * NF);
    cnt[i < NC ? i : NC - 1][j < NF ? j : NF - 1] += 1;
  }
  double chi2 = 0, total_p = 0;
  for (int i = 0; i < NC; i++)
    for (int j = 0; j < NF; j++) {
      double pb = bin_prob(&m, -1 + 2.0 * i / NC, -1 + 2.0 * (i + 1) / NC,
                           -M_PI + 2 * M_PI * j / NF, -M_PI + 2 * M_PI * (j + 1) / NF);
      total_p += pb;
      double mu = n * pb;
      chi2 += (cnt[i][j] - mu) * (cnt[i][j] - mu) / mu;
    }
  double pval = ef_chi2_sf(chi2, NC * NF - 1);
  printf("# %s k_fb=%g: chi2 = %.1f / %d, p = %.3g, sum of bin probabilities %.9f\n",
         ef_model_name(id), k_fb, chi2, NC * NF - 1, pval, total_p);
  assert_close(total_p, 1.0, 1e-9);
  assert_true(pval > 0.001);
}

static void test_sampler_m1(void **state) { (void)state; sampler_chi2(EF_MODEL_M1, 0.0); }
static void test_sampler_m1_fb(void **state) { (void)state; sampler_chi2(EF_MODEL_M1, 0.2); }
static void test_sampler_ps(void **state) { (void)state; sampler_chi2(EF_MODEL_PS, 0.0); }
static void test_sampler_m2(void **state) { (void)state; sampler_chi2(EF_MODEL_M2, 0.0); }

/* A sampler that is wrong must fail the same test: sample PS, test as M1. */
static void test_chi2_has_power(void **state) {
  (void)state;
  ef_physics_params p = defaults();
  ef_model m1, ps;
  ef_model_init(&m1, EF_MODEL_M1, &p);
  ef_model_init(&ps, EF_MODEL_PS, &p);
  ef_rng r;
  ef_rng_init(&r, 1, EF_RNG_TEST, 99);
  enum { NC = 20, NF = 18 };
  static double cnt[NC][NF];
  const int n = 100000;
  for (int e = 0; e < n; e++) {
    double c, f;
    ef_model_sample(&ps, &r, &c, &f);
    int i = (int)((c + 1) / 2 * NC), j = (int)((f + M_PI) / (2 * M_PI) * NF);
    cnt[i < NC ? i : NC - 1][j < NF ? j : NF - 1] += 1;
  }
  double chi2 = 0;
  for (int i = 0; i < NC; i++)
    for (int j = 0; j < NF; j++) {
      double mu = n * bin_prob(&m1, -1 + 2.0 * i / NC, -1 + 2.0 * (i + 1) / NC,
                               -M_PI + 2 * M_PI * j / NF, -M_PI + 2 * M_PI * (j + 1) / NF);
      chi2 += (cnt[i][j] - mu) * (cnt[i][j] - mu) / mu;
    }
  assert_true(ef_chi2_sf(chi2, NC * NF - 1) < 1e-6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spec_numbers),  cmocka_unit_test(test_sampler_m1),
      cmocka_unit_test(test_sampler_m1_fb), cmocka_unit_test(test_sampler_ps),
      cmocka_unit_test(test_sampler_m2),    cmocka_unit_test(test_chi2_has_power),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
