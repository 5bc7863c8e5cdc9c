/* The MC reweighted to a generator's answer (include/ensfold/mcweight.h):
 * an MC of N(0.2, 1.6^2) in each of two unbounded observables, reweighted
 * to samples of a correlated standard normal (rho 0.4), has the samples'
 * means, widths and correlation; multiplicities enter the weights (0 stays
 * 0); the same seed and stream give the same weights. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/mcweight.h"

enum { N_MC = 200000 };
#define RHO 0.4

static ef_ctx *ctx;
static ef_space sp;
static ef_events mc;
static ef_featmap *fm;
static ef_mcweight *mw;
static double w[N_MC], w2[N_MC], mult[N_MC];

/* The generator's answer: (z1, RHO z1 + sqrt(1 - RHO^2) z2). */
static void draw(void *arg, ef_rng *r, float *v) {
  (void)arg;
  double z1 = ef_rng_normal(r), z2 = ef_rng_normal(r);
  v[0] = (float)z1;
  v[1] = (float)(RHO * z1 + sqrt(1.0 - RHO * RHO) * z2);
}

static int setup(void **state) {
  (void)state;
  if (ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) return -1;
  sp.dim = 2;
  sp.n_cat = 2;
  sp.axis[0] = (ef_axis){"x1", EF_AXIS_UNBOUNDED, -INFINITY, INFINITY};
  sp.axis[1] = (ef_axis){"x2", EF_AXIS_UNBOUNDED, -INFINITY, INFINITY};
  sp.cat[0] = (ef_category){"lost", 1};
  sp.cat[1] = (ef_category){"seen", 0};
  if (ef_events_alloc(ctx, &mc, &sp, N_MC, EF_KIND_MC, EF_EVENTS_VERTEX | EF_EVENTS_PROB) != EF_OK)
    return -1;
  ef_rng r;
  ef_rng_init(&r, 7, EF_RNG_TEST, 0);
  for (size_t i = 0; i < N_MC; i++) {
    mc.topology[i] = 1;
    for (int d = 0; d < 2; d++) {
      mc.vertex[2 * i + d] = 0.2 + 1.6 * ef_rng_normal(&r);
      mc.reco[2 * i + d] = mc.vertex[2 * i + d] + 0.5 * ef_rng_normal(&r);
    }
    mc.prob[2 * i] = 0.0f;
    mc.prob[2 * i + 1] = 1.0f;
    mult[i] = (double)(i % 3); /* 0, 1, 2 */
  }
  if (ef_featmap_create(ctx, &fm, &sp, &mc, NULL, 0.0) != EF_OK) return -1;
  ef_refine_params rp = {.net = {.hidden = 32, .layers = 2, .steps = 1500, .batch = 512,
                                 .lr = 1e-3},
                         .samples = 1000, .iterations = 1, .clip = 1000.0};
  return ef_mcweight_create(ctx, &mw, &rp, fm) == EF_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  ef_mcweight_destroy(mw);
  ef_featmap_destroy(fm);
  ef_events_free(&mc);
  ef_ctx_destroy(ctx);
  return 0;
}

/* Weighted means, widths and correlation of the MC's vertices. */
static void moments(const double *wt, double m[2], double s[2], double *rho) {
  double sw = 0, s1[2] = {0}, s2[3] = {0};
  for (size_t i = 0; i < N_MC; i++) {
    const double *v = mc.vertex + 2 * i;
    sw += wt[i];
    for (int d = 0; d < 2; d++) s1[d] += wt[i] * v[d];
  }
  for (int d = 0; d < 2; d++) m[d] = s1[d] / sw;
  for (size_t i = 0; i < N_MC; i++) {
    double a = mc.vertex[2 * i] - m[0], b = mc.vertex[2 * i + 1] - m[1];
    s2[0] += wt[i] * a * a;
    s2[1] += wt[i] * b * b;
    s2[2] += wt[i] * a * b;
  }
  s[0] = sqrt(s2[0] / sw);
  s[1] = sqrt(s2[1] / sw);
  *rho = s2[2] / sw / (s[0] * s[1]);
}

/* Measured: means 0.0006, -0.0029, widths 0.997, 1.000, correlation 0.396. */
static void test_reweights_to_samples(void **state) {
  (void)state;
  ef_rng r;
  ef_rng_init(&r, 11, EF_RNG_TEST, 1);
  assert_int_equal(ef_mcweight_fit(ctx, mw, draw, NULL, &mc, NULL, 11, 0, &r, w), EF_OK);
  double m[2], s[2], rho;
  moments(w, m, s, &rho);
  printf("reweighted MC: means %.4f %.4f, widths %.4f %.4f, correlation %.4f (samples 0, 1, "
         "%.1f; the MC 0.2, 1.6, 0)\n", m[0], m[1], s[0], s[1], rho, RHO);
  for (int d = 0; d < 2; d++) {
    assert_true(fabs(m[d]) < 0.03);
    assert_true(fabs(s[d] - 1.0) < 0.04);
  }
  assert_true(fabs(rho - RHO) < 0.05);
  for (size_t i = 0; i < N_MC; i++) assert_true(w[i] > 0 && w[i] <= 1000.0);
}

static void test_multiplicity_and_repeat(void **state) {
  (void)state;
  ef_rng r;
  ef_rng_init(&r, 11, EF_RNG_TEST, 1);
  assert_int_equal(ef_mcweight_fit(ctx, mw, draw, NULL, &mc, mult, 11, 0, &r, w2), EF_OK);
  for (size_t i = 0; i < N_MC; i++)
    if (mult[i] == 0) assert_true(w2[i] == 0.0);
  ef_rng_init(&r, 11, EF_RNG_TEST, 1);
  assert_int_equal(ef_mcweight_fit(ctx, mw, draw, NULL, &mc, mult, 11, 0, &r, w), EF_OK);
  assert_memory_equal(w, w2, sizeof w);
  double m[2], s[2], rho;
  moments(w2, m, s, &rho);
  assert_true(fabs(m[0]) < 0.04 && fabs(s[0] - 1.0) < 0.05 && fabs(rho - RHO) < 0.06);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reweights_to_samples),
      cmocka_unit_test(test_multiplicity_and_repeat),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
