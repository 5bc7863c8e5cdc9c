/* The parts of a group's uncertainty (src/campaign/uncertainty.c): the
 * within-replica (training) variance of ensemble members, its pooled share
 * of the replica variance, the statistical and central sigma derived from
 * it, a projection's own share, the model part over fill models, and the
 * class medians. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ensfold/binning.h"
#include "ensfold/rng.h"
#include "ensfold/stats.h"
#include "ensfold/uncertainty.h"
#include "src/campaign/projection.h"

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

/* R = 2 replicas of M = 2 members, one bin: (1, 3) and (5, 9).
 * Within: var(1, 3) = 2, var(5, 9) = 8, w = 5. Replica values 2 and 7:
 * s2 = 12.5. phi = (5 / 2) / 12.5 = 0.2 (one bin: the weight cancels).
 * stat = sqrt(0.8) s, central = sqrt(0.8 + 0.2 / 2) s, training sqrt(5). */
static void test_hand(void **state) {
  (void)state;
  const double x[4] = {1, 3, 5, 9};
  double w;
  assert_int_equal(ef_stats_within(ctx, x, 2, 2, 1, &w), EF_OK);
  assert_close(w, 5.0, 1e-15);
  double y[2] = {2, 7}, mean, s;
  assert_int_equal(ef_stats_replicas(ctx, y, 2, 1, &mean, NULL, &s, NULL), EF_OK);
  assert_close(s * s, 12.5, 1e-13);
  const unsigned char meas = EF_CLASS_MEASURED;
  ef_parts p;
  assert_int_equal(ef_parts_compute(ctx, x, 2, 2, 1, 0, &mean, &s, &meas, &p), EF_OK);
  assert_int_equal(p.known, 1);
  assert_close(p.phi[0], 0.2, 1e-14);
  assert_true(isnan(p.phi[EF_CLASS_HOLE]) && isnan(p.phi[EF_CLASS_OPEN])); /* no such bin */
  assert_close(p.training[0], sqrt(5.0), 1e-14);
  assert_close(p.stat[0], sqrt(0.8) * s, 1e-14);
  assert_close(p.central[0], sqrt(0.9) * s, 1e-14);
  ef_parts_free(&p);
  /* M = 1: not separable, flagged; a deterministic method: no training */
  assert_int_equal(ef_parts_compute(ctx, y, 2, 1, 1, 0, &mean, &s, &meas, &p), EF_OK);
  assert_int_equal(p.known, 0);
  assert_true(isnan(p.phi[0]) && isnan(p.stat[0]) && isnan(p.training[0]));
  assert_close(p.central[0], s, 0);
  ef_parts_free(&p);
  assert_int_equal(ef_parts_compute(ctx, y, 2, 1, 1, 1, &mean, &s, &meas, &p), EF_OK);
  assert_int_equal(p.known, 1);
  assert_close(p.phi[0], 0.0, 0);
  assert_close(p.training[0], 0.0, 0);
  assert_close(p.stat[0], s, 0);
  ef_parts_free(&p);
  assert_int_equal(ef_stats_within(ctx, x, 2, 1, 1, &w), EF_ERR_INPUT);
}

/* Simulated members x = mu + stat_i a_r + train_i b_rk with train = 3 stat
 * in the measured bins, train = stat in the holes and 2 stat in the open
 * bins: phi = (t^2/M)/(1 + t^2/M) per class, each pooled over its own
 * bins. 400 replicas pin it to ~1 %. */
static void test_simulated(void **state) {
  (void)state;
  enum { R = 400, M = 3, N = 60 };
  double *x = malloc((size_t)R * M * N * sizeof *x), *y = malloc((size_t)R * N * sizeof *y);
  double mu[N], st[N], tr[N], mean[N], s[N];
  unsigned char cls[N];
  assert_true(x && y);
  for (int i = 0; i < N; i++) {
    mu[i] = 100.0 + 10.0 * i;
    st[i] = sqrt(mu[i]);
    cls[i] = i < 40 ? EF_CLASS_MEASURED : i < 50 ? EF_CLASS_HOLE : EF_CLASS_OPEN;
    tr[i] = (cls[i] == EF_CLASS_MEASURED ? 3.0 : cls[i] == EF_CLASS_HOLE ? 1.0 : 2.0) * st[i];
  }
  ef_rng r;
  ef_rng_init(&r, 4242, EF_RNG_TEST, 9);
  for (int q = 0; q < R; q++) {
    double a[N];
    for (int i = 0; i < N; i++) a[i] = ef_rng_normal(&r);
    for (int i = 0; i < N; i++) y[q * N + i] = 0.0;
    for (int k = 0; k < M; k++)
      for (int i = 0; i < N; i++) {
        double v = mu[i] + st[i] * a[i] + tr[i] * ef_rng_normal(&r);
        x[((size_t)q * M + k) * N + i] = v;
        y[q * N + i] += v / M;
      }
  }
  assert_int_equal(ef_stats_replicas(ctx, y, R, N, mean, NULL, s, NULL), EF_OK);
  ef_parts p;
  assert_int_equal(ef_parts_compute(ctx, x, R, M, N, 0, mean, s, cls, &p), EF_OK);
  const double want[3] = {3.0 / (1.0 + 3.0), (1.0 / 3.0) / (1.0 + 1.0 / 3.0),
                          (4.0 / 3.0) / (1.0 + 4.0 / 3.0)};
  printf("# simulated: phi measured %.4f (true %.4f), holes %.4f (true %.4f), open %.4f (true "
         "%.4f)\n", p.phi[0], want[0], p.phi[1], want[1], p.phi[2], want[2]);
  assert_true(fabs(p.phi[0] - want[0]) < 0.02);
  assert_true(fabs(p.phi[1] - want[1]) < 0.03);
  assert_true(fabs(p.phi[2] - want[2]) < 0.03);
  double rs = 0, rt = 0;
  for (int i = 0; i < N; i++) {
    rs += p.stat[i] / st[i] / N;
    rt += p.training[i] / tr[i] / N;
    double phi = p.phi[cls[i]];
    assert_close(p.central[i], sqrt(1 - phi + phi / R) * s[i], 1e-12 * s[i]);
  }
  printf("# simulated: mean sigma_stat / true %.4f, sigma_training / true %.4f\n", rs, rt);
  assert_true(fabs(rs - 1) < 0.05);
  assert_true(fabs(rt - 1) < 0.05);
  ef_parts_free(&p);
  free(x);
  free(y);
}

/* A projection's own training share (ef_proj_share): 4 x 2 bins (k = 2 a +
 * c) of mean 100, each with statistics of sd 10 common to a replica's
 * members, and per member a training noise of sd 20 that moves events from
 * (a, 0) to (a, 1). Each bin: phi = (400 / 2) / (100 + 400 / 2) = 2/3. The
 * marginal on a sums the pair, so the noise cancels: phi 0. The marginal on
 * c sums four independent noises: phi = (4 400 / 2) / (4 100 + 4 400 / 2)
 * = 2/3 again. idx = identity gives ef_stats_training_fraction of the bins
 * themselves; idx < 0 leaves bins out as a smaller input would. */
static void test_projection_share(void **state) {
  (void)state;
  enum { R = 4000, M = 2, NV = 8 }; /* phi per bin within ~0.01 (1 sd) of its value */
  double *x = malloc(sizeof(double) * R * M * NV), *y = malloc(sizeof(double) * R * NV);
  double *work = malloc(sizeof(double) * (R * (M + 1) + 3) * NV);
  assert_true(x && y && work);
  ef_rng r;
  ef_rng_init(&r, 77, EF_RNG_TEST, 3);
  for (int q = 0; q < R; q++) {
    double st[NV];
    for (int k = 0; k < NV; k++) st[k] = 10.0 * ef_rng_normal(&r), y[q * NV + k] = 0.0;
    for (int m = 0; m < M; m++)
      for (int a = 0; a < NV / 2; a++) {
        double t = 20.0 * ef_rng_normal(&r), *v = x + ((size_t)q * M + m) * NV + 2 * a;
        v[0] = 100.0 + st[2 * a] - t;
        v[1] = 100.0 + st[2 * a + 1] + t;
        y[q * NV + 2 * a] += v[0] / M, y[q * NV + 2 * a + 1] += v[1] / M;
      }
  }
  int ident[NV], on_a[NV], on_c[NV], part[NV];
  for (int k = 0; k < NV; k++) ident[k] = k, on_a[k] = k / 2, on_c[k] = k % 2;
  double phi_bins, phi_a, phi_c, phi_part, phi_sub;
  assert_int_equal(ef_proj_share(ctx, x, y, R, M, NV, ident, NV, work, &phi_bins), EF_OK);
  assert_int_equal(ef_proj_share(ctx, x, y, R, M, NV, on_a, NV / 2, work, &phi_a), EF_OK);
  assert_int_equal(ef_proj_share(ctx, x, y, R, M, NV, on_c, 2, work, &phi_c), EF_OK);
  printf("# projection share: bins %.4f (true 0.6667), marginal a %.2g (true 0), marginal c "
         "%.4f (true 0.6667)\n", phi_bins, phi_a, phi_c);
  assert_true(fabs(phi_bins - 2.0 / 3.0) < 0.03);
  assert_true(phi_a < 1e-9);
  assert_true(fabs(phi_c - 2.0 / 3.0) < 0.05);
  /* identity = the pooled share of the bins themselves */
  double w[NV], mean[NV], s2[NV];
  assert_int_equal(ef_stats_within(ctx, x, R, M, NV, w), EF_OK);
  assert_int_equal(ef_stats_replicas(ctx, y, R, NV, mean, NULL, s2, NULL), EF_OK);
  for (int k = 0; k < NV; k++) s2[k] *= s2[k];
  assert_close(phi_bins, ef_stats_training_fraction(w, M, s2, mean, NULL, NV), 1e-14);
  /* leaving out the bins (a, 1): the marginal on a keeps the noise of (a, 0) alone, the same
   * share as the bins (a, 0) by themselves */
  unsigned char even[NV];
  for (int k = 0; k < NV; k++) part[k] = k % 2 ? -1 : k / 2, even[k] = k % 2 == 0;
  assert_int_equal(ef_proj_share(ctx, x, y, R, M, NV, part, NV / 2, work, &phi_part), EF_OK);
  phi_sub = ef_stats_training_fraction(w, M, s2, mean, even, NV);
  assert_close(phi_part, phi_sub, 1e-14);
  assert_true(phi_part > 0.5);
  free(x);
  free(y);
  free(work);
}

/* Model part: the spread (1/F) over fills; class medians and sums. */
static void test_model_and_medians(void **state) {
  (void)state;
  const double a[4] = {10, 20, 30, 40}, b[4] = {14, 20, 24, 40};
  const double *means[2] = {a, b};
  double m[4], scratch[4];
  ef_parts_model(means, 2, 4, m);
  assert_close(m[0], 2.0, 1e-15);
  assert_close(m[1], 0.0, 0);
  assert_close(m[2], 3.0, 1e-15);
  ef_parts_model(means, 1, 4, m);
  assert_true(isnan(m[0]));
  const double part[4] = {1, 2, 3, 8};
  const unsigned char cls[4] = {1, 1, 2, 1};
  /* class 1: 1/10, 2/20, 8/40 -> median 0.1; sum 11 / 70 */
  assert_close(ef_parts_median_rel(part, a, cls, 1, 4, scratch), 0.1, 1e-15);
  assert_close(ef_parts_sum_rel(part, a, cls, 1, 4), 11.0 / 70.0, 1e-15);
  assert_close(ef_parts_median_rel(part, a, cls, 2, 4, scratch), 0.1, 1e-15);
  assert_true(isnan(ef_parts_median_rel(part, a, cls, 0, 4, scratch)));
  assert_true(isnan(ef_parts_sum_rel(part, a, cls, 0, 4)));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hand),
      cmocka_unit_test(test_simulated),
      cmocka_unit_test(test_projection_share),
      cmocka_unit_test(test_model_and_medians),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
