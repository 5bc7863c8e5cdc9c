/* Replica statistics (mean, covariance, sigma, correlation) and closure
 * metrics (chi2 with the full covariance or its diagonal, coverage, pulls).
 * Reference values are computed by hand in the comments. */
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
#include <time.h>

#include "ensfold/rng.h"
#include "ensfold/stats.h"

static ef_ctx *ctx;

static int setup(void **state) {
  (void)state;
  return ef_ctx_create(&ctx, MPI_COMM_NULL);
}

static int teardown(void **state) {
  (void)state;
  ef_ctx_destroy(ctx);
  return 0;
}

static void test_hand_example(void **state) {
  (void)state;
  /* x0 = (1, 2, 0), x1 = (3, 2, 1), x2 = (2, 2, 5): mean (2, 2, 2),
   * deviations (-1, 0, -2), (1, 0, -1), (0, 0, 3); with 1/(R-1) = 1/2:
   * c00 = (1 + 1 + 0)/2 = 1, c02 = (2 - 1 + 0)/2 = 0.5, c22 = (4 + 1 + 9)/2
   * = 7, bin 1 constant (sigma 0); corr02 = 0.5 / sqrt(7). */
  const double x[9] = {1, 2, 0, 3, 2, 1, 2, 2, 5};
  const double cov_ref[9] = {1, 0, 0.5, 0, 0, 0, 0.5, 0, 7};
  const double corr_ref[9] = {1, 0, 0.5 / sqrt(7), 0, 1, 0, 0.5 / sqrt(7), 0, 1};
  double mean[3], cov[9], sigma[3], corr[9];
  assert_int_equal(ef_stats_replicas(ctx, x, 3, 3, mean, cov, sigma, corr), EF_OK);
  for (int i = 0; i < 3; i++) assert_close(mean[i], 2.0, 1e-15);
  assert_close(sigma[0], 1.0, 1e-15);
  assert_close(sigma[1], 0.0, 0);
  assert_close(sigma[2], sqrt(7.0), 1e-15);
  for (int k = 0; k < 9; k++) {
    assert_close(cov[k], cov_ref[k], 1e-15);
    assert_close(corr[k], corr_ref[k], 1e-15);
  }
  /* any output may be NULL, and the others do not change */
  double corr2[9], sigma2[3], mean2[3];
  assert_int_equal(ef_stats_replicas(ctx, x, 3, 3, NULL, NULL, NULL, corr2), EF_OK);
  assert_memory_equal(corr2, corr, sizeof corr);
  assert_int_equal(ef_stats_replicas(ctx, x, 3, 3, NULL, NULL, sigma2, NULL), EF_OK);
  assert_memory_equal(sigma2, sigma, sizeof sigma);
  assert_int_equal(ef_stats_replicas(ctx, x, 3, 3, mean2, NULL, NULL, NULL), EF_OK);
  assert_memory_equal(mean2, mean, sizeof mean);
  /* one replica has no spread */
  assert_int_equal(ef_stats_replicas(ctx, x, 1, 3, mean, cov, sigma, corr), EF_ERR_INPUT);
}

/* Replicas x = mu + L z from a known covariance S = L L^T. Each sample
 * covariance element has standard error sqrt((S_ii S_jj + S_ij^2) / (R - 1))
 * (Gaussian data); with 10 distinct elements a 4-sigma bound fails by chance
 * with probability ~6e-4 for an unlucky seed (the seed is fixed). */
static void test_multivariate_normal(void **state) {
  (void)state;
  enum { N = 4, R = 20000 };
  const double S[N][N] = {
      {4.0, 1.2, -0.6, 0.0}, {1.2, 1.0, 0.3, 0.2}, {-0.6, 0.3, 2.25, -0.9}, {0.0, 0.2, -0.9, 0.81}};
  const double mu[N] = {10, -3, 0.5, 100};
  double L[N][N] = {{0}};
  for (int i = 0; i < N; i++)
    for (int j = 0; j <= i; j++) {
      double s = S[i][j];
      for (int k = 0; k < j; k++) s -= L[i][k] * L[j][k];
      L[i][j] = i == j ? sqrt(s) : s / L[j][j];
    }
  double *x = malloc((size_t)R * N * sizeof *x);
  assert_non_null(x);
  ef_rng r;
  ef_rng_init(&r, 777, EF_RNG_TEST, 3);
  for (int q = 0; q < R; q++) {
    double z[N];
    for (int i = 0; i < N; i++) z[i] = ef_rng_normal(&r);
    for (int i = 0; i < N; i++) {
      double v = mu[i];
      for (int k = 0; k <= i; k++) v += L[i][k] * z[k];
      x[q * N + i] = v;
    }
  }
  double mean[N], cov[N * N], sigma[N], corr[N * N];
  assert_int_equal(ef_stats_replicas(ctx, x, R, N, mean, cov, sigma, corr), EF_OK);
  double worst = 0, worst_mean = 0;
  for (int i = 0; i < N; i++) {
    double pm = (mean[i] - mu[i]) / sqrt(S[i][i] / R);
    if (fabs(pm) > fabs(worst_mean)) worst_mean = pm;
    for (int j = 0; j < N; j++) {
      double se = sqrt((S[i][i] * S[j][j] + S[i][j] * S[i][j]) / (R - 1));
      double p = (cov[i * N + j] - S[i][j]) / se;
      if (fabs(p) > fabs(worst)) worst = p;
      assert_close(cov[i * N + j], cov[j * N + i], 0);
      assert_close(corr[i * N + j], cov[i * N + j] / (sigma[i] * sigma[j]), 1e-15);
    }
    assert_close(sigma[i], sqrt(cov[i * N + i]), 0);
  }
  printf("# MVN, %d replicas: worst covariance pull %.2f, worst mean pull %.2f (bound 4)\n", R,
         worst, worst_mean);
  assert_true(fabs(worst) < 4);
  assert_true(fabs(worst_mean) < 4);
  free(x);
}

/* 2,500 bins: covariance (n, n) doubles only, and fast enough. */
static void test_many_bins(void **state) {
  (void)state;
  enum { N = 2500, R = 41 };
  double *x = malloc((size_t)R * N * sizeof *x), *cov = malloc((size_t)N * N * sizeof *cov);
  double *corr = malloc((size_t)N * N * sizeof *corr), *sigma = malloc(N * sizeof *sigma);
  double *mean = malloc(N * sizeof *mean);
  assert_true(x && cov && corr && sigma && mean);
  ef_rng r;
  ef_rng_init(&r, 99, EF_RNG_TEST, 4);
  for (int q = 0; q < R; q++)
    for (int i = 0; i < N; i++) x[q * N + i] = ef_rng_normal(&r) * (1 + i % 7);
  clock_t t0 = clock();
  assert_int_equal(ef_stats_replicas(ctx, x, R, N, mean, cov, sigma, corr), EF_OK);
  double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
  /* spot checks against a direct two-pass sum */
  const int pairs[4][2] = {{0, 0}, {17, 2400}, {2499, 3}, {1234, 1234}};
  for (int p = 0; p < 4; p++) {
    int i = pairs[p][0], j = pairs[p][1];
    double mi = 0, mj = 0, s = 0;
    for (int q = 0; q < R; q++) {
      mi += x[q * N + i];
      mj += x[q * N + j];
    }
    mi /= R;
    mj /= R;
    for (int q = 0; q < R; q++) s += (x[q * N + i] - mi) * (x[q * N + j] - mj);
    assert_close(cov[i * N + j], s / (R - 1), 1e-12 * (1 + fabs(s)));
    assert_close(cov[j * N + i], cov[i * N + j], 0);
  }
  for (int i = 0; i < N; i++) assert_close(corr[i * N + i], 1.0, 0);
  printf("# %d bins x %d replicas: covariance + correlation in %.2f s\n", N, R, secs);
  /* closure with more bins than replicas must take the diagonal path */
  ef_closure c;
  unsigned char *mask = malloc(N);
  assert_non_null(mask);
  memset(mask, 1, N);
  double *truth = calloc(N, sizeof *truth);
  assert_non_null(truth);
  assert_int_equal(ef_stats_closure(ctx, mean, cov, sigma, truth, mask, N, R, &c, NULL), EF_OK);
  assert_int_equal(c.full_cov, 0);
  assert_int_equal(c.ndf, N);
  free(x);
  free(cov);
  free(corr);
  free(sigma);
  free(mean);
  free(mask);
  free(truth);
}

/* Five bins; bins 0-3 used, bin 3 has sigma 0 and mean = truth (it counts:
 * a zero residual, covered), bin 4 is masked out.
 * d = mean - truth = (1, 4, -0.5) over the used bins, sigma (2, 3, 1),
 * covariance of the used bins [[4, 2, 0], [2, 9, 0], [0, 0, 1]].
 * Full: the 2 x 2 block inverse is (1/32) [[9, -2], [-2, 4]], so
 * chi2 = (9 - 16 + 64) / 32 + 0.25 = 57/32 + 1/4 = 2.03125.
 * Diagonal: 1/4 + 16/9 + 1/4 = 2.2777...
 * Coverage: |1| <= 2 yes, |4| <= 3 no, |-0.5| <= 1 yes, bin 3 yes: 3/4.
 * Pulls: 0.5, 4/3, -0.5, 0 (0/0: on the truth), (3 - 100)/5 = -19.4. */
static const double ex_mean[5] = {11, 24, 9.5, 7, 3};
static const double ex_truth[5] = {10, 20, 10, 7, 100};
static const double ex_sigma[5] = {2, 3, 1, 0, 5};
static const unsigned char ex_mask[5] = {1, 1, 1, 1, 0};
static const double ex_cov[25] = {4, 2, 0, 0, 3, /**/ 2, 9, 0,      0, 0, /**/ 0, 0, 1,
                                  0, 0, 0, 0, 0, 0,      0, /**/ 3, 0, 0, 0,      25};

static void test_closure_constructed(void **state) {
  (void)state;
  ef_closure c;
  double pulls[5];
  /* R - 1 = 9 > 3 used bins: full covariance */
  assert_int_equal(
      ef_stats_closure(ctx, ex_mean, ex_cov, ex_sigma, ex_truth, ex_mask, 5, 10, &c, pulls), EF_OK);
  printf("# constructed: full chi2 %.15g (57/32 + 1/4), ndf %d, coverage %.6f\n", c.chi2, c.ndf,
         c.coverage);
  assert_int_equal(c.full_cov, 1);
  assert_int_equal(c.ndf, 4);
  assert_int_equal(c.zero_sigma, 1);
  assert_int_equal(c.infinite, 0);
  assert_close(c.chi2, 57.0 / 32 + 0.25, 1e-13);
  assert_close(c.coverage, 3.0 / 4, 1e-15);
  assert_close(pulls[0], 0.5, 1e-15);
  assert_close(pulls[1], 4.0 / 3, 1e-15);
  assert_close(pulls[2], -0.5, 1e-15);
  assert_close(pulls[3], 0.0, 0);
  assert_close(pulls[4], -19.4, 1e-13);
  /* a sigma that is a part of the uncertainty, 0.4 x sqrt(diag cov): the
   * covariance gives the correlation, sigma the scale, so chi2 / 0.16;
   * |d| = 1, 4, 0.5 against 0.8, 1.2, 0.4: only bin 3 (on the truth) covered */
  double half[5];
  for (int i = 0; i < 5; i++) half[i] = 0.4 * ex_sigma[i];
  ef_closure h;
  assert_int_equal(ef_stats_closure(ctx, ex_mean, ex_cov, half, ex_truth, ex_mask, 5, 10, &h, NULL),
                   EF_OK);
  assert_int_equal(h.full_cov, 1);
  assert_close(h.chi2, (57.0 / 32 + 0.25) / 0.16, 1e-12);
  assert_close(h.coverage, 1.0 / 4, 1e-15);
  /* R - 1 = 3 <= 3 used bins: diagonal, as documented; R = 5 is full again */
  assert_int_equal(
      ef_stats_closure(ctx, ex_mean, ex_cov, ex_sigma, ex_truth, ex_mask, 5, 4, &c, NULL), EF_OK);
  printf("# constructed: diagonal chi2 %.15g (1/4 + 16/9 + 1/4)\n", c.chi2);
  assert_int_equal(c.full_cov, 0);
  assert_close(c.chi2, 0.25 + 16.0 / 9 + 0.25, 1e-13);
  assert_close(c.coverage, 3.0 / 4, 1e-15);
  assert_int_equal(
      ef_stats_closure(ctx, ex_mean, ex_cov, ex_sigma, ex_truth, ex_mask, 5, 5, &c, NULL), EF_OK);
  assert_int_equal(c.full_cov, 1);
  /* no covariance given: diagonal */
  assert_int_equal(
      ef_stats_closure(ctx, ex_mean, NULL, ex_sigma, ex_truth, ex_mask, 5, 100, &c, NULL), EF_OK);
  assert_int_equal(c.full_cov, 0);
  /* truth equal to the mean: chi2 0 on both paths, full coverage */
  for (size_t R = 4; R <= 10; R += 6) {
    assert_int_equal(
        ef_stats_closure(ctx, ex_mean, ex_cov, ex_sigma, ex_mean, ex_mask, 5, R, &c, pulls), EF_OK);
    assert_int_equal(c.full_cov, R == 10);
    assert_close(c.chi2, 0.0, 0);
    assert_close(c.coverage, 1.0, 0);
    assert_close(pulls[4], 0.0, 0);
    assert_close(pulls[3], 0.0, 0);
  }
  /* a bin with sigma 0 off the truth (IBU drives a bin without data to 0
   * in every replica) is an infinite pull, never a dropped bin: chi2 inf,
   * counted in ndf, not covered, flagged */
  const double off_mean[5] = {11, 24, 9.5, 0, 3};
  for (size_t R = 4; R <= 10; R += 6) {
    assert_int_equal(
        ef_stats_closure(ctx, off_mean, ex_cov, ex_sigma, ex_truth, ex_mask, 5, R, &c, pulls), EF_OK);
    assert_int_equal(c.ndf, 4);
    assert_int_equal(c.zero_sigma, 1);
    assert_int_equal(c.infinite, 1);
    assert_true(isinf(c.chi2) && c.chi2 > 0);
    assert_close(c.coverage, 2.0 / 4, 1e-15);
    assert_true(isinf(pulls[3]) && pulls[3] < 0);
  }
  /* a band edge counts as covered: |d| = sigma */
  const double edge_mean[5] = {12, 23, 9, 7, 3};
  assert_int_equal(
      ef_stats_closure(ctx, edge_mean, NULL, ex_sigma, ex_truth, ex_mask, 5, 10, &c, NULL), EF_OK);
  assert_close(c.coverage, 1.0, 0);
  /* nothing used */
  const unsigned char none[5] = {0, 0, 0, 0, 0};
  assert_int_equal(
      ef_stats_closure(ctx, ex_mean, ex_cov, ex_sigma, ex_truth, none, 5, 10, &c, NULL), EF_OK);
  assert_int_equal(c.ndf, 0);
  assert_true(isnan(c.coverage));
}

/* A singular or badly conditioned covariance falls back to the diagonal. */
static void test_closure_singular(void **state) {
  (void)state;
  const double mean[2] = {1, 1}, truth[2] = {0, 0}, sigma[2] = {2, 3};
  /* correlation exactly 1: Cholesky's second pivot is 1 - 1 = 0 */
  const double sing[4] = {4, 6, 6, 9};
  ef_closure c;
  assert_int_equal(ef_stats_closure(ctx, mean, sing, sigma, truth, NULL, 2, 50, &c, NULL), EF_OK);
  assert_int_equal(c.full_cov, 0);
  assert_close(c.chi2, 0.25 + 1.0 / 9, 1e-15);
  /* correlation 1 - 1e-14: positive definite, condition number ~2e14 */
  double rho = 1 - 1e-14;
  const double near[4] = {4, 6 * rho, 6 * rho, 9};
  assert_int_equal(ef_stats_closure(ctx, mean, near, sigma, truth, NULL, 2, 50, &c, NULL), EF_OK);
  assert_int_equal(c.full_cov, 0);
  /* correlation 1 - 1e-6 (condition ~2e6): full; the exact chi2 is
   * z^T C^-1 z with z = (1/2, 1/3), C = [[1, rho], [rho, 1]]:
   * (z0^2 + z1^2 - 2 rho z0 z1) / (1 - rho^2) */
  rho = 1 - 1e-6;
  const double ok[4] = {4, 6 * rho, 6 * rho, 9};
  assert_int_equal(ef_stats_closure(ctx, mean, ok, sigma, truth, NULL, 2, 50, &c, NULL), EF_OK);
  assert_int_equal(c.full_cov, 1);
  double z0 = 0.5, z1 = 1.0 / 3, ref = (z0 * z0 + z1 * z1 - 2 * rho * z0 * z1) / (1 - rho * rho);
  printf("# near-singular rho = 1 - 1e-6: chi2 %.10g, exact %.10g\n", c.chi2, ref);
  assert_close(c.chi2, ref, 1e-6 * ref);
}

/* Full path on 150 correlated bins against an independent solve (Gaussian
 * elimination with partial pivoting on the covariance itself). */
static void test_closure_full_random(void **state) {
  (void)state;
  enum { N = 150, R = 400 };
  double *x = malloc((size_t)R * N * sizeof *x), *cov = malloc((size_t)N * N * sizeof *cov);
  double *a = malloc((size_t)N * (N + 1) * sizeof *a);
  double mean[N], sigma[N], truth[N], pulls[N];
  assert_true(x && cov && a);
  ef_rng r;
  ef_rng_init(&r, 31337, EF_RNG_TEST, 5);
  for (int q = 0; q < R; q++) { /* AR(1) with rho = 0.6, scales 1..5 */
    double prev = ef_rng_normal(&r);
    for (int i = 0; i < N; i++) {
      double v = i == 0 ? prev : 0.6 * prev + 0.8 * ef_rng_normal(&r);
      prev = v;
      x[q * N + i] = 50 + (1 + i % 5) * v;
    }
  }
  assert_int_equal(ef_stats_replicas(ctx, x, R, N, mean, cov, sigma, NULL), EF_OK);
  for (int i = 0; i < N; i++) truth[i] = 50 + 0.3 * sigma[i] * sin(i);
  ef_closure c;
  assert_int_equal(ef_stats_closure(ctx, mean, cov, sigma, truth, NULL, N, R, &c, pulls), EF_OK);
  assert_int_equal(c.full_cov, 1);
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < N; j++) a[i * (N + 1) + j] = cov[i * N + j];
    a[i * (N + 1) + N] = mean[i] - truth[i];
  }
  for (int k = 0; k < N; k++) {
    int piv = k;
    for (int i = k + 1; i < N; i++)
      if (fabs(a[i * (N + 1) + k]) > fabs(a[piv * (N + 1) + k])) piv = i;
    for (int j = 0; j <= N; j++) {
      double t = a[k * (N + 1) + j];
      a[k * (N + 1) + j] = a[piv * (N + 1) + j];
      a[piv * (N + 1) + j] = t;
    }
    for (int i = k + 1; i < N; i++) {
      double f = a[i * (N + 1) + k] / a[k * (N + 1) + k];
      for (int j = k; j <= N; j++) a[i * (N + 1) + j] -= f * a[k * (N + 1) + j];
    }
  }
  double sol[N], ref = 0;
  for (int i = N - 1; i >= 0; i--) {
    double s = a[i * (N + 1) + N];
    for (int j = i + 1; j < N; j++) s -= a[i * (N + 1) + j] * sol[j];
    sol[i] = s / a[i * (N + 1) + i];
  }
  for (int i = 0; i < N; i++) ref += (mean[i] - truth[i]) * sol[i];
  printf("# %d correlated bins, %d replicas: full chi2 %.12g, elimination %.12g, coverage %.3f\n",
         N, R, c.chi2, ref, c.coverage);
  assert_close(c.chi2, ref, 1e-9 * ref);
  free(x);
  free(cov);
  free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hand_example),     cmocka_unit_test(test_multivariate_normal),
      cmocka_unit_test(test_many_bins),        cmocka_unit_test(test_closure_constructed),
      cmocka_unit_test(test_closure_singular), cmocka_unit_test(test_closure_full_random),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
