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
#include <string.h>

#include "ensfold/binning.h"
#include "ensfold/config.h"
#include "ensfold/model.h"
#include "ensfold/rng.h"

#define PI0(s, p, f) {.scheme = s, .n_polar = p, .n_phi = f}
static const ef_binning_params schemes[] = {
    PI0(EF_BIN_THETA_PHI, 18, 36),                             /* the default: 10 deg x 10 deg */
    PI0(EF_BIN_COS_PHI, 20, 18),   PI0(EF_BIN_THETA_PHI, 60, 36), /* 2,160 bins */
    PI0(EF_BIN_COS_PHI, 1, 1),     PI0(EF_BIN_THETA_PHI, 7, 5),   /* edges that are not round numbers */
};
#define N_SCHEMES (sizeof schemes / sizeof schemes[0])

static ef_ctx *g_ctx;

/* The pi0 binning of p (the test fails if it is refused). */
static ef_binning *mk(ef_binning_params p) {
  ef_binning *b = NULL;
  ef_space pi0;
  ef_space_pi0(&pi0);
  if (ef_binning_from_params(g_ctx, &b, &p, &pi0, "test") != EF_OK)
    fail_msg("refused: %s", ef_error_message(g_ctx));
  return b;
}

static int idx(const ef_binning *b, double c, double f) {
  return ef_binning_index(b, (const double[2]){c, f});
}

static void bounds(const ef_binning *b, int k, double *c0, double *c1, double *f0, double *f1) {
  double lo[2], hi[2];
  ef_binning_range(b, k, lo, hi);
  *c0 = lo[0];
  *c1 = hi[0];
  *f0 = lo[1];
  *f1 = hi[1];
}

static void check_inside(const ef_binning *b, double c, double f) {
  int k = idx(b, c, f);
  assert_true(k >= 0 && k < ef_binning_count(b));
  double c0, c1, f0, f1;
  bounds(b, k, &c0, &c1, &f0, &f1);
  if (!(c >= c0 && c <= c1 && f >= f0 && f <= f1))
    fail_msg("(%.17g, %.17g) -> bin %d with bounds cos [%.17g, %.17g] phi [%.17g, %.17g]", c, f, k,
             c0, c1, f0, f1);
}

static void test_index_bounds(void **state) {
  (void)state;
  ef_rng r;
  ef_rng_init(&r, 4242, EF_RNG_TEST, 1);
  for (size_t s = 0; s < N_SCHEMES; s++) {
    ef_binning *b = mk(schemes[s]);
    for (int e = 0; e < 100000; e++)
      check_inside(b, 2 * ef_rng_uniform(&r) - 1, M_PI * (2 * ef_rng_uniform(&r) - 1));
    /* every edge (and its neighbours one ulp away) lands in a bin that
     * contains it */
    for (int k = 0; k < ef_binning_count(b); k++) {
      double c0, c1, f0, f1;
      bounds(b, k, &c0, &c1, &f0, &f1);
      assert_true(c0 < c1 && f0 < f1);
      double cs[6] = {c0, c1, nextafter(c0, 2), nextafter(c1, -2), 0.5 * (c0 + c1), c0};
      double fs[6] = {f0, f1, nextafter(f0, 4), nextafter(f1, -4), 0.5 * (f0 + f1), f1};
      for (int a = 0; a < 6; a++)
        for (int q = 0; q < 6; q++) check_inside(b, cs[a], fs[q]);
      /* the centre is in its own bin */
      assert_int_equal(idx(b, 0.5 * (c0 + c1), 0.5 * (f0 + f1)), k);
    }
    /* the bins tile [-1, 1] x [-pi, pi] */
    double area = 0;
    for (int k = 0; k < ef_binning_count(b); k++) {
      double c0, c1, f0, f1;
      bounds(b, k, &c0, &c1, &f0, &f1);
      area += (c1 - c0) * (f1 - f0);
    }
    assert_close(area, 4 * M_PI, 1e-12);
    ef_binning_free(b);
  }
}

/* Unmeasured classes: rows of 8 phi bins (a hole is at most 2 wide). */
static void test_classify(void **state) {
  (void)state;
  ef_binning *b = mk((ef_binning_params){.scheme = EF_BIN_THETA_PHI, .n_polar = 4, .n_phi = 8});
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
  ef_binning_classify(b, m, cls);
  for (int k = 0; k < 32; k++) assert_int_equal(cls[k], want[k]);
  ef_binning_free(b);
}

static void test_edges_and_nan(void **state) {
  (void)state;
  ef_binning *th = mk((ef_binning_params){.scheme = EF_BIN_THETA_PHI, .n_polar = 18, .n_phi = 36});
  ef_binning *co = mk((ef_binning_params){.scheme = EF_BIN_COS_PHI, .n_polar = 20, .n_phi = 18});
  /* theta scheme counts from theta* = 0 (cos = 1) */
  assert_int_equal(idx(th, 1.0, -M_PI), 0);
  assert_int_equal(idx(th, -1.0, M_PI), 18 * 36 - 1);
  assert_int_equal(idx(th, cos(15 * M_PI / 180), 5 * M_PI / 180), 1 * 36 + 18);
  /* 95 deg, -175 deg: polar bin 9, phi bin 0 */
  assert_int_equal(idx(th, cos(95 * M_PI / 180), -175 * M_PI / 180), 9 * 36);
  /* cos scheme counts from cos = -1; the upper edges go to the last bin */
  assert_int_equal(idx(co, -1.0, -M_PI), 0);
  assert_int_equal(idx(co, 1.0, M_PI), 20 * 18 - 1);
  assert_int_equal(idx(co, 0.0, 0.0), 10 * 18 + 9);
  /* NaN (T0 reco) */
  assert_int_equal(idx(th, NAN, 0.1), -1);
  assert_int_equal(idx(th, 0.1, NAN), -1);
  assert_int_equal(idx(co, NAN, NAN), -1);
  /* a hair outside the range is clamped / wrapped */
  assert_int_equal(idx(th, nextafter(1.0, 2.0), 0.1),
                   idx(th, 1.0, 0.1));
  assert_int_equal(idx(th, 0.3, 3 * M_PI / 2), idx(th, 0.3, -M_PI / 2));
  /* centres */
  double t, f;
  ef_binning_centre_deg(th, 36 + 18, &t, &f);
  assert_close(t, 15.0, 1e-12);
  assert_close(f, 5.0, 1e-12);
  ef_binning_centre_deg(co, 10 * 18, &t, &f);
  assert_close(t, acos(0.05) * 180 / M_PI, 1e-12);
  assert_close(f, -170.0, 1e-12);
  ef_binning_free(th);
  ef_binning_free(co);
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
    ef_binning *b = mk(schemes[s]);
    double tot = 0;
    for (int k = 0; k < ef_binning_count(b); k++) {
      double c0, c1, f0, f1, v = ef_binning_integrate(b, k, constant, NULL);
      bounds(b, k, &c0, &c1, &f0, &f1);
      /* a constant is integrated exactly: the bin's area in (cos, phi), up
       * to the rounding of the cos edges (1 - cos 10 deg cancels digits) */
      assert_close(v, (c1 - c0) * (f1 - f0), 1e-14 * (fabs(c0) + fabs(c1)) * (f1 - f0));
      tot += v;
    }
    assert_close(tot, 4 * M_PI, 1e-12);
    /* One 8 x 8 rule over the whole sphere misses cos 2 phi* by ~1e-6: the
     * 1e-9 check is for binnings of a usable size. */
    if (ef_binning_count(b) < 4) {
      ef_binning_free(b);
      continue;
    }
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
             schemes[s].scheme == EF_BIN_THETA_PHI ? "theta" : "cos",
             ef_model_name((ef_model_id)id), schemes[s].n_polar, schemes[s].n_phi, sum, 1 - sum,
             vmin);
      assert_close(sum, 1.0, 1e-9);
      assert_true(vmin > 0);
    }
    ef_binning_free(b);
  }
  /* M1 in one known bin: the phi-integral of cos 2(phi - 0) over a full
   * period vanishes, so a 1-polar-bin x 1-phi-bin binning gets exactly 1
   * and a bin [0, pi/2] x [0, pi] gets (1/4 of the sphere's unpolarised
   * part): int_0^1 (a - b c^2) dc / (2 norm) = (a - b/3) / (2 (a - b/3)) = 1/2
   * of the polar integral, times the phi fraction 1/2. */
  ef_model m1;
  ef_model_init(&m1, EF_MODEL_M1, &cfg.physics);
  ef_binning *quad = mk((ef_binning_params){.scheme = EF_BIN_COS_PHI, .n_polar = 2, .n_phi = 4});
  double q = 0;
  /* cos in [0, 1] (polar bin 1), phi in [0, pi] (phi bins 2 and 3) */
  q += ef_binning_integrate(quad, 1 * 4 + 2, model_density, &m1);
  q += ef_binning_integrate(quad, 1 * 4 + 3, model_density, &m1);
  printf("# M1 over cos in [0,1], phi in [0,pi]: %.15f (expected 0.25)\n", q);
  assert_close(q, 0.25, 1e-12);
  ef_binning_free(quad);
  ef_config_free(&cfg);
  ef_ctx_destroy(ctx);
}

/* A 3-D product binning: explicit edges on an unbounded axis (outside:
 * no bin), a clamped bounded axis, a periodic axis in degrees. */
static void test_product(void **state) {
  (void)state;
  const double e0[5] = {-2, -1, 0, 0.5, 3};
  const ef_bin_axis ax[3] = {{EF_BIN_EDGES, 4, -2, 3, 0, 0, e0},
                             {EF_BIN_LINEAR, 5, 0, 1, 0, 1, NULL},
                             {EF_BIN_LINEAR, 6, 0, 360, 1, 0, NULL}};
  ef_binning *b;
  assert_int_equal(ef_binning_make(g_ctx, &b, 3, ax, "test"), EF_OK);
  assert_int_equal(ef_binning_dim(b), 3);
  assert_int_equal(ef_binning_count(b), 120);
  char buf[64];
  ef_binning_describe(b, buf, sizeof buf);
  assert_string_equal(buf, "4 x 5 x 6");
  const double x[][3] = {{-1.5, 0.1, 10}, {0, 0.1, 10},   {0.5, 0.1, 10}, {3, 1, 360},
                         {3.0001, 0.1, 10}, {-2.5, 0.1, 10}, {0.2, 1.2, 370}, {0.2, -0.1, -10},
                         {NAN, 0.1, 10},  {0.2, 0.1, INFINITY}};
  const int want[] = {0,  (2 * 5 + 0) * 6, (3 * 5 + 0) * 6, 119, -1,
                      -1, (2 * 5 + 4) * 6, (2 * 5 + 0) * 6 + 5, -1, -1};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    int k = ef_binning_index(b, x[i]);
    if (k != want[i]) fail_msg("point %zu: bin %d, expected %d", i, k, want[i]);
  }
  assert_close(ef_binning_edge(b, 0, 3), 0.5, 0);
  assert_close(ef_binning_edge(b, 2, 6), 360, 0);
  ef_rng r;
  ef_rng_init(&r, 77, EF_RNG_TEST, 2);
  for (int e = 0; e < 20000; e++) {
    double p[3] = {-2 + 5 * ef_rng_uniform(&r), ef_rng_uniform(&r), 360 * ef_rng_uniform(&r)};
    float pf[3] = {(float)p[0], (float)p[1], (float)p[2]};
    double pd[3] = {pf[0], pf[1], pf[2]}, lo[3], hi[3];
    int k = ef_binning_index(b, p);
    assert_true(k >= 0 && k < 120);
    ef_binning_range(b, k, lo, hi);
    for (int a = 0; a < 3; a++) {
      assert_true(p[a] >= lo[a] && p[a] <= hi[a]);
      assert_true(lo[a] < hi[a]);
    }
    assert_int_equal(k, ((ef_binning_axis_index(b, k, 0) * 5) + ef_binning_axis_index(b, k, 1)) * 6 +
                            ef_binning_axis_index(b, k, 2));
    assert_int_equal(ef_binning_index_f(b, pf), ef_binning_index(b, pd));
  }
  ef_binning *c;
  assert_int_equal(ef_binning_clone(g_ctx, &c, b), EF_OK);
  assert_true(ef_binning_same(b, c));
  assert_true(ef_binning_axis(c, 0)->edges != e0); /* copied */
  const double e1[5] = {-2, -1, 0, 0.6, 3};
  ef_bin_axis ax2[3] = {ax[0], ax[1], ax[2]};
  ax2[0].edges = e1;
  ef_binning *d;
  assert_int_equal(ef_binning_make(g_ctx, &d, 3, ax2, "test"), EF_OK);
  assert_false(ef_binning_same(b, d));
  ef_binning *pi0 = mk((ef_binning_params){.scheme = EF_BIN_THETA_PHI, .n_polar = 18, .n_phi = 36});
  assert_false(ef_binning_same(b, pi0));
  ef_binning_describe(pi0, buf, sizeof buf);
  assert_string_equal(buf, "18 x 36 (theta-phi)");
  assert_true(ef_binning_is_theta_phi(pi0));
  assert_false(ef_binning_is_theta_phi(b));
  ef_binning_free(pi0);
  ef_binning_free(d);
  ef_binning_free(c);
  ef_binning_free(b);
}

/* Holes run along the periodic axes only: 2 (bounded) x 8 (periodic) x 2
 * (bounded). */
static void test_classify_3d(void **state) {
  (void)state;
  const ef_bin_axis ax[3] = {{EF_BIN_LINEAR, 2, 0, 1, 0, 1, NULL},
                             {EF_BIN_LINEAR, 8, -M_PI, M_PI, 1, 0, NULL},
                             {EF_BIN_LINEAR, 2, 0, 1, 0, 1, NULL}};
  ef_binning *b;
  assert_int_equal(ef_binning_make(g_ctx, &b, 3, ax, "test"), EF_OK);
#define K3(i, j, l) (((i) * 8 + (j)) * 2 + (l))
  unsigned char m[32], cls[32];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 8; j++)
      for (int l = 0; l < 2; l++) m[K3(i, j, l)] = i == 0; /* line i = 1: nothing measured */
  m[K3(0, 1, 0)] = 0;                                  /* a gap of 1 in line (0, ., 0) */
  m[K3(0, 3, 1)] = m[K3(0, 4, 1)] = m[K3(0, 5, 1)] = 0; /* a gap of 3 in line (0, ., 1) */
  m[K3(1, 2, 0)] = 1; /* line (1, ., 0): one measured bin, the other 7 a wide run */
  ef_binning_classify(b, m, cls);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 8; j++)
      for (int l = 0; l < 2; l++) {
        int k = K3(i, j, l);
        int want = m[k] ? EF_CLASS_MEASURED : EF_CLASS_OPEN;
        if (k == K3(0, 1, 0)) want = EF_CLASS_HOLE;
        if (cls[k] != want) fail_msg("bin (%d, %d, %d): class %d, expected %d", i, j, l, cls[k], want);
      }
#undef K3
  ef_binning_free(b);
}

static void expect_refused(int dim, const ef_bin_axis *ax, const char *msg) {
  ef_binning *b = (ef_binning *)&b; /* set to NULL when refused */
  assert_int_not_equal(ef_binning_make(g_ctx, &b, dim, ax, "binning.test"), EF_OK);
  assert_null(b);
  if (!strstr(ef_error_message(g_ctx), msg) || !strstr(ef_error_message(g_ctx), "binning.test"))
    fail_msg("message \"%s\" lacks \"%s\"", ef_error_message(g_ctx), msg);
}

static void test_refused(void **state) {
  (void)state;
  ef_space pi0;
  ef_space_pi0(&pi0);
  const double bad[4] = {0, 1, 1, 2};
  const ef_bin_axis zero = {EF_BIN_LINEAR, 0, 0, 1, 0, 0, NULL};
  const ef_bin_axis flat = {EF_BIN_EDGES, 3, 0, 2, 0, 0, bad};
  const ef_bin_axis empty = {EF_BIN_LINEAR, 4, 1, 1, 0, 0, NULL};
  const ef_bin_axis big[3] = {{EF_BIN_LINEAR, 2000, 0, 1, 0, 0, NULL},
                              {EF_BIN_LINEAR, 2000, 0, 1, 0, 0, NULL},
                              {EF_BIN_LINEAR, 2000, 0, 1, 0, 0, NULL}};
  expect_refused(1, &zero, "axis 0 has 0 bins");
  expect_refused(1, &flat, "increasing");
  expect_refused(1, &empty, "lo < hi");
  expect_refused(3, big, "more than 2147483647 bins");
  expect_refused(0, &zero, "0 axes");
  ef_binning *b;
  assert_int_not_equal(
      ef_binning_from_params(g_ctx, &b, &(ef_binning_params){.scheme = EF_BIN_THETA_PHI, .n_polar = 18, .n_phi = 0}, &pi0,
                             "binning.test"),
      EF_OK);
}

/* The config's binnings for a space: auto, product over the observables'
 * own ranges (pi0: the same axes as cos-phi) or given ranges, refusals. */
static void expect_params_refused(const ef_binning_params *p, const ef_space *sp, const char *msg) {
  ef_binning *b = (ef_binning *)&b;
  assert_int_not_equal(ef_binning_from_params(g_ctx, &b, p, sp, "binning.vertex"), EF_OK);
  assert_null(b);
  if (!strstr(ef_error_message(g_ctx), msg))
    fail_msg("message \"%s\" lacks \"%s\"", ef_error_message(g_ctx), msg);
}

static void test_from_params(void **state) {
  (void)state;
  ef_space pi0, g;
  ef_space_pi0(&pi0);
  memset(&g, 0, sizeof g);
  g.dim = 2;
  g.n_cat = 1;
  for (int i = 0; i < 2; i++) {
    snprintf(g.axis[i].name, sizeof g.axis[i].name, "x%d", i + 1);
    g.axis[i] = (ef_axis){.kind = EF_AXIS_UNBOUNDED, .lo = -INFINITY, .hi = INFINITY};
    snprintf(g.axis[i].name, sizeof g.axis[i].name, "x%d", i + 1);
  }
  snprintf(g.cat[0].name, sizeof g.cat[0].name, "seen");
  ef_binning_params p = {.scheme = EF_BIN_AUTO, .n_polar = 18, .n_phi = 36,
                         .bins = {2, {5, 4}}};
  ef_binning *b, *c;
  assert_int_equal(ef_binning_from_params(g_ctx, &b, &p, &pi0, "binning.vertex"), EF_OK);
  assert_true(ef_binning_is_theta_phi(b));
  ef_binning_free(b);
  expect_params_refused(&p, &g, "observable x1 is unbounded: give its binning range");
  p.lo = (ef_real_vec){1, {-3}};
  p.hi = (ef_real_vec){2, {3, 2}};
  assert_int_equal(ef_binning_from_params(g_ctx, &b, &p, &g, "binning.vertex"), EF_OK);
  assert_int_equal(ef_binning_count(b), 20);
  assert_close(ef_binning_edge(b, 1, 4), 2.0, 0);
  assert_int_equal(ef_binning_index(b, (const double[2]){4, 0}), -1); /* outside: no bin */
  assert_int_equal(ef_binning_index(b, (const double[2]){-3, 2}), 3);
  ef_binning_free(b);
  /* product over pi0's own ranges: the cos-phi axes */
  p.scheme = EF_BIN_PRODUCT;
  p.bins = (ef_real_vec){2, {10, 12}};
  p.lo.n = p.hi.n = 0;
  assert_int_equal(ef_binning_from_params(g_ctx, &b, &p, &pi0, "binning.vertex"), EF_OK);
  c = mk((ef_binning_params){.scheme = EF_BIN_COS_PHI, .n_polar = 10, .n_phi = 12});
  assert_true(ef_binning_same(b, c));
  assert_int_equal(idx(b, 0.3, 3 * M_PI / 2), idx(b, 0.3, -M_PI / 2));
  ef_binning_free(b);
  ef_binning_free(c);
  p.bins = (ef_real_vec){3, {10, 12, 3}};
  expect_params_refused(&p, &pi0, "binning.vertex.bins: 3 numbers for 2 observables");
  p.bins = (ef_real_vec){1, {2.5}};
  expect_params_refused(&p, &pi0, "2.5 bins for observable cos_theta");
  p.scheme = EF_BIN_THETA_PHI;
  expect_params_refused(&p, &g, "theta-phi bins the pi0 observables");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_index_bounds),
      cmocka_unit_test(test_edges_and_nan),
      cmocka_unit_test(test_integrals),
      cmocka_unit_test(test_classify),
      cmocka_unit_test(test_product),
      cmocka_unit_test(test_classify_3d),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_from_params),
  };
  if (ef_ctx_create(&g_ctx, MPI_COMM_NULL) != EF_OK) return 1;
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ef_ctx_destroy(g_ctx);
  return rc;
}
