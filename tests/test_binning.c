/* Binnings: index and bounds agree on random points and on the edges, NaN
 * gives -1, and the bin integrals add up to the known totals (a constant
 * over the sphere: 4 pi; the normalised M1, PS and M2 densities: 1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"
#include <math.h>
#include <stdio.h>

#include "ensfold/binning.h"
#include "ensfold/config.h"
#include "ensfold/model.h"
#include "ensfold/rng.h"

static const ef_binning schemes[] = {
    {EF_BIN_THETA_PHI, 18, 36},                             /* the default: 10 deg x 10 deg */
    {EF_BIN_COS_PHI, 20, 18},   {EF_BIN_THETA_PHI, 60, 36}, /* 2,160 bins */
    {EF_BIN_COS_PHI, 1, 1},     {EF_BIN_THETA_PHI, 7, 5},   /* edges that are not round numbers */
};
#define N_SCHEMES (sizeof schemes / sizeof schemes[0])

static void check_inside(const ef_binning *b, double c, double f) {
  int k = ef_binning_index(b, c, f);
  assert_true(k >= 0 && k < ef_binning_count(b));
  double c0, c1, f0, f1;
  ef_binning_bounds(b, k, &c0, &c1, &f0, &f1);
  if (!(c >= c0 && c <= c1 && f >= f0 && f <= f1))
    fail_msg("(%.17g, %.17g) -> bin %d with bounds cos [%.17g, %.17g] phi [%.17g, %.17g]", c, f, k,
             c0, c1, f0, f1);
}

static void test_index_bounds(void **state) {
  (void)state;
  ef_rng r;
  ef_rng_init(&r, 4242, EF_RNG_TEST, 1);
  for (size_t s = 0; s < N_SCHEMES; s++) {
    const ef_binning *b = &schemes[s];
    for (int e = 0; e < 100000; e++)
      check_inside(b, 2 * ef_rng_uniform(&r) - 1, M_PI * (2 * ef_rng_uniform(&r) - 1));
    /* every edge (and its neighbours one ulp away) lands in a bin that
     * contains it */
    for (int k = 0; k < ef_binning_count(b); k++) {
      double c0, c1, f0, f1;
      ef_binning_bounds(b, k, &c0, &c1, &f0, &f1);
      assert_true(c0 < c1 && f0 < f1);
      double cs[6] = {c0, c1, nextafter(c0, 2), nextafter(c1, -2), 0.5 * (c0 + c1), c0};
      double fs[6] = {f0, f1, nextafter(f0, 4), nextafter(f1, -4), 0.5 * (f0 + f1), f1};
      for (int a = 0; a < 6; a++)
        for (int q = 0; q < 6; q++) check_inside(b, cs[a], fs[q]);
      /* the centre is in its own bin */
      assert_int_equal(ef_binning_index(b, 0.5 * (c0 + c1), 0.5 * (f0 + f1)), k);
    }
    /* the bins tile [-1, 1] x [-pi, pi] */
    double area = 0;
    for (int k = 0; k < ef_binning_count(b); k++) {
      double c0, c1, f0, f1;
      ef_binning_bounds(b, k, &c0, &c1, &f0, &f1);
      area += (c1 - c0) * (f1 - f0);
    }
    assert_close(area, 4 * M_PI, 1e-12);
  }
}

/* Unmeasured classes: rows of 8 phi bins (a hole is at most 2 wide). */
static void test_classify(void **state) {
  (void)state;
  const ef_binning b = {EF_BIN_THETA_PHI, 4, 8};
  /* row 0: nothing measured (a cap); row 1: gaps of 1 and 2, cyclic (the
   * last and first bin form one gap of 2); row 2: a gap of 3 (too wide);
   * row 3: all measured */
  const unsigned char m[32] = {0, 0, 0, 0, 0, 0, 0, 0,
                               0, 1, 1, 0, 1, 1, 1, 0,
                               1, 0, 0, 0, 1, 1, 1, 1,
                               1, 1, 1, 1, 1, 1, 1, 1};
  const unsigned char want[32] = {2, 2, 2, 2, 2, 2, 2, 2,
                                  1, 0, 0, 1, 0, 0, 0, 1,
                                  0, 2, 2, 2, 0, 0, 0, 0,
                                  0, 0, 0, 0, 0, 0, 0, 0};
  unsigned char cls[32];
  ef_binning_classify(&b, m, cls);
  for (int k = 0; k < 32; k++) assert_int_equal(cls[k], want[k]);
}

static void test_edges_and_nan(void **state) {
  (void)state;
  const ef_binning th = {EF_BIN_THETA_PHI, 18, 36}, co = {EF_BIN_COS_PHI, 20, 18};
  /* theta scheme counts from theta* = 0 (cos = 1) */
  assert_int_equal(ef_binning_index(&th, 1.0, -M_PI), 0);
  assert_int_equal(ef_binning_index(&th, -1.0, M_PI), 18 * 36 - 1);
  assert_int_equal(ef_binning_index(&th, cos(15 * M_PI / 180), 5 * M_PI / 180), 1 * 36 + 18);
  /* 95 deg, -175 deg: polar bin 9, phi bin 0 */
  assert_int_equal(ef_binning_index(&th, cos(95 * M_PI / 180), -175 * M_PI / 180), 9 * 36);
  /* cos scheme counts from cos = -1; the upper edges go to the last bin */
  assert_int_equal(ef_binning_index(&co, -1.0, -M_PI), 0);
  assert_int_equal(ef_binning_index(&co, 1.0, M_PI), 20 * 18 - 1);
  assert_int_equal(ef_binning_index(&co, 0.0, 0.0), 10 * 18 + 9);
  /* NaN (T0 reco) */
  assert_int_equal(ef_binning_index(&th, NAN, 0.1), -1);
  assert_int_equal(ef_binning_index(&th, 0.1, NAN), -1);
  assert_int_equal(ef_binning_index(&co, NAN, NAN), -1);
  /* a hair outside the range is clamped / wrapped */
  assert_int_equal(ef_binning_index(&th, nextafter(1.0, 2.0), 0.1),
                   ef_binning_index(&th, 1.0, 0.1));
  assert_int_equal(ef_binning_index(&th, 0.3, 3 * M_PI / 2), ef_binning_index(&th, 0.3, -M_PI / 2));
  /* centres */
  double t, f;
  ef_binning_centre_deg(&th, 36 + 18, &t, &f);
  assert_close(t, 15.0, 1e-12);
  assert_close(f, 5.0, 1e-12);
  ef_binning_centre_deg(&co, 10 * 18, &t, &f);
  assert_close(t, acos(0.05) * 180 / M_PI, 1e-12);
  assert_close(f, -170.0, 1e-12);
}

static double constant(const void *arg, double c, double f) {
  (void)arg;
  (void)c;
  (void)f;
  return 1.0;
}

static double model_density(const void *arg, double c, double f) {
  return ef_model_density((const ef_model *)arg, c, f);
}

static void test_integrals(void **state) {
  (void)state;
  ef_ctx *ctx;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  ef_config cfg;
  assert_int_equal(ef_config_defaults(ctx, &cfg), EF_OK);
  for (size_t s = 0; s < N_SCHEMES; s++) {
    const ef_binning *b = &schemes[s];
    double tot = 0;
    for (int k = 0; k < ef_binning_count(b); k++) {
      double c0, c1, f0, f1, v = ef_binning_integrate(b, k, constant, NULL);
      ef_binning_bounds(b, k, &c0, &c1, &f0, &f1);
      /* a constant is integrated exactly: the bin's area in (cos, phi), up
       * to the rounding of the cos edges (1 - cos 10 deg cancels digits) */
      assert_close(v, (c1 - c0) * (f1 - f0), 1e-14 * (fabs(c0) + fabs(c1)) * (f1 - f0));
      tot += v;
    }
    assert_close(tot, 4 * M_PI, 1e-12);
    /* One 8 x 8 rule over the whole sphere misses cos 2 phi* by ~1e-6: the
     * 1e-9 check is for binnings of a usable size. */
    if (ef_binning_count(b) < 4) continue;
    for (int id = 0; id < EF_N_MODELS; id++) {
      ef_model m;
      ef_model_init(&m, (ef_model_id)id, &cfg.physics);
      double sum = 0, vmin = INFINITY;
      for (int k = 0; k < ef_binning_count(b); k++) {
        double v = ef_binning_integrate(b, k, model_density, &m);
        sum += v;
        if (v < vmin) vmin = v;
      }
      printf("# %s %s %d x %d: sum over bins %.15f (1 - sum = %.2e), smallest bin %.3e\n",
             b->scheme == EF_BIN_THETA_PHI ? "theta" : "cos", ef_model_name((ef_model_id)id),
             b->n_polar, b->n_phi, sum, 1 - sum, vmin);
      assert_close(sum, 1.0, 1e-9);
      assert_true(vmin > 0);
    }
  }
  /* M1 in one known bin: the phi-integral of cos 2(phi - 0) over a full
   * period vanishes, so a 1-polar-bin x 1-phi-bin binning gets exactly 1
   * and a bin [0, pi/2] x [0, pi] gets (1/4 of the sphere's unpolarised
   * part): int_0^1 (a - b c^2) dc / (2 norm) = (a - b/3) / (2 (a - b/3)) = 1/2
   * of the polar integral, times the phi fraction 1/2. */
  ef_model m1;
  ef_model_init(&m1, EF_MODEL_M1, &cfg.physics);
  const ef_binning quad = {EF_BIN_COS_PHI, 2, 4};
  double q = 0;
  /* cos in [0, 1] (polar bin 1), phi in [0, pi] (phi bins 2 and 3) */
  q += ef_binning_integrate(&quad, 1 * 4 + 2, model_density, &m1);
  q += ef_binning_integrate(&quad, 1 * 4 + 3, model_density, &m1);
  printf("# M1 over cos in [0,1], phi in [0,pi]: %.15f (expected 0.25)\n", q);
  assert_close(q, 0.25, 1e-12);
  ef_config_free(&cfg);
  ef_ctx_destroy(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_index_bounds),
      cmocka_unit_test(test_edges_and_nan),
      cmocka_unit_test(test_integrals),
      cmocka_unit_test(test_classify),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
