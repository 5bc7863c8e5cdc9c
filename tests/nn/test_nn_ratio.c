/* A classifier recovers a known density ratio.
 *
 * p = N((0, 0), I) (label 1) and q = N((0.8, -0.4), I) (label 0) in 2D. A
 * classifier D trained with BCE on equal numbers of each converges to
 * s(logit) = p / (p + q), so exp(logit) estimates r = p/q, whose truth is
 * log r(x) = -x.mu + |mu|^2 / 2. Net 2->32->32->1 (tanh), Adam with lr 3e-3
 * decaying to 1e-4, 1024 fresh events of each class per step, 3000 steps.
 *
 * Stated tolerance: max |r_hat / r - 1| < 5% over the bulk, a grid of
 * spacing 0.05 over the disc of radius 1.5 around the midpoint mu/2 (about
 * two thirds of the mixture's mass; the true ratio varies by a factor 15
 * across it).
 *
 * The same ratio from ef_classifier (nn_classifier.h) with weighted rows, as
 * a reweighting method uses it: both classes are q's events, class 1
 * weighted by the true p / q, class 0 by 1, each class's weights summing
 * to 1 per step; leaky-ReLU 2 x 32, its default schedule and averaging.
 * Same tolerance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ensfold/nn.h"
#include "ensfold/nn_adam.h"
#include "ensfold/nn_classifier.h"
#include "ensfold/nn_loss.h"
#include "ensfold/rng.h"

#define NB 1024
#define STEPS 3000

static const double mu[2] = {0.8, -0.4};

static void test_density_ratio(void **state) {
  (void)state;
  ef_ctx *ctx = NULL;
  ef_mlp *d = NULL;
  ef_adam *opt = NULL;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  assert_int_equal(ef_nn_set_threads(ctx, 1), EF_OK);
  const int w[4] = {2, 32, 32, 1};
  const ef_nn_act a[3] = {EF_ACT_TANH, EF_ACT_TANH, EF_ACT_LINEAR};
  ef_mlp_spec spec = {3, w, a, 0.0f, 2 * NB};
  assert_int_equal(ef_mlp_create(ctx, &d, &spec), EF_OK);
  ef_mlp_init(d, 31, 0);
  ef_adam_cfg cfg = ef_adam_defaults();
  cfg.lr = 3e-3f;
  assert_int_equal(ef_adam_create(ctx, &opt, ef_mlp_n_params(d), &cfg), EF_OK);
  float *x = malloc(2 * NB * 2 * sizeof(float)), *dl = malloc(2 * NB * sizeof(float));
  ef_rng r;
  ef_rng_init(&r, 31, EF_RNG_NN_TRAIN, 0);
  for (int s = 0; s < STEPS; s++) {
    /* lr from 3e-3 down to 1e-4, geometric: the late small steps average
     * away the minibatch noise the ratio would otherwise carry */
    ef_adam_set_lr(opt, (float)(3e-3 * pow(1e-4 / 3e-3, (double)s / STEPS)));
    ef_nn_fill_normal(&r, x, 2 * NB * 2);
    for (int i = NB; i < 2 * NB; i++) {
      x[2 * i] += (float)mu[0];
      x[2 * i + 1] += (float)mu[1];
    }
    const float *logit = ef_mlp_forward(d, x, 2 * NB);
    ef_loss_bce_logits(NB, logit, NULL, 1.0f, NULL, dl);
    ef_loss_bce_logits(NB, logit + NB, NULL, 0.0f, NULL, dl + NB);
    ef_mlp_backward(d, dl, NULL, EF_MLP_GRAD_PARAMS);
    ef_adam_step(opt, ef_mlp_params(d), ef_mlp_grads(d));
  }
  /* evaluate on the bulk grid */
  double worst = 0.0, sum = 0.0, rmin = 1e30, rmax = 0;
  int n = 0;
  float pt[2];
  for (double gx = -1.5; gx <= 1.5 + 1e-9; gx += 0.05)
    for (double gy = -1.5; gy <= 1.5 + 1e-9; gy += 0.05) {
      if (gx * gx + gy * gy > 1.5 * 1.5) continue;
      pt[0] = (float)(mu[0] / 2 + gx);
      pt[1] = (float)(mu[1] / 2 + gy);
      double truth = exp(-(pt[0] * mu[0] + pt[1] * mu[1]) + 0.5 * (mu[0] * mu[0] + mu[1] * mu[1]));
      double est = exp((double)ef_mlp_forward(d, pt, 1)[0]);
      double rel = fabs(est / truth - 1.0);
      worst = rel > worst ? rel : worst;
      sum += rel;
      rmin = truth < rmin ? truth : rmin;
      rmax = truth > rmax ? truth : rmax;
      n++;
    }
  printf("# density ratio over %d bulk points (true r in [%.3f, %.3f]): max rel. error %.4f, "
         "mean %.4f\n", n, rmin, rmax, worst, sum / n);
  assert_true(worst < 0.05);
  free(x);
  free(dl);
  ef_adam_destroy(opt);
  ef_mlp_destroy(d);
  ef_ctx_destroy(ctx);
}

static double true_log_ratio(double x, double y) {
  return -(x * mu[0] + y * mu[1]) + 0.5 * (mu[0] * mu[0] + mu[1] * mu[1]);
}

static void test_weighted_classifier(void **state) {
  (void)state;
  ef_ctx *ctx = NULL;
  ef_classifier *c = NULL;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  assert_int_equal(ef_nn_set_threads(ctx, 1), EF_OK);
  ef_net_params np = {32, 2, STEPS, NB, 3e-3};
  assert_int_equal(ef_classifier_create(ctx, &c, 2, &np, 0.03, 0.25, 2 * NB), EF_OK);
  ef_classifier_init(c, 32, 0);
  float *x = malloc(2 * NB * 2 * sizeof(float)), *w = malloc(2 * NB * sizeof(float));
  ef_rng r;
  ef_rng_init(&r, 32, EF_RNG_NN_TRAIN, 0);
  for (int s = 0; s < STEPS; s++) {
    ef_nn_fill_normal(&r, x, NB * 2); /* q's events, twice */
    double s1 = 0.0;
    for (int i = 0; i < NB; i++) {
      x[2 * i] += (float)mu[0];
      x[2 * i + 1] += (float)mu[1];
      x[2 * (NB + i)] = x[2 * i];
      x[2 * (NB + i) + 1] = x[2 * i + 1];
      s1 += w[i] = (float)exp(true_log_ratio(x[2 * i], x[2 * i + 1]));
      w[NB + i] = 1.0f / NB;
    }
    for (int i = 0; i < NB; i++) w[i] = (float)(w[i] / s1);
    double loss;
    assert_int_equal(ef_classifier_step(ctx, c, x, NB, 2 * NB, w, s, "test", &loss), EF_OK);
  }
  double worst = 0.0;
  int n = 0;
  float pt[2], lg;
  for (double gx = -1.5; gx <= 1.5 + 1e-9; gx += 0.05)
    for (double gy = -1.5; gy <= 1.5 + 1e-9; gy += 0.05) {
      if (gx * gx + gy * gy > 1.5 * 1.5) continue;
      pt[0] = (float)(mu[0] / 2 + gx);
      pt[1] = (float)(mu[1] / 2 + gy);
      ef_classifier_logits(c, pt, 1, &lg);
      double rel = fabs(exp((double)lg - true_log_ratio(pt[0], pt[1])) - 1.0);
      worst = rel > worst ? rel : worst;
      n++;
    }
  printf("# weighted classifier over %d bulk points: max rel. error of the ratio %.4f\n", n,
         worst);
  assert_true(worst < 0.05);
  /* a row count beyond what it was made for is refused */
  double loss;
  assert_int_equal(ef_classifier_step(ctx, c, x, 1, 2 * NB + 1, w, 0, "test", &loss),
                   EF_ERR_INTERNAL);
  free(x);
  free(w);
  ef_classifier_destroy(c);
  ef_ctx_destroy(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_density_ratio),
                                     cmocka_unit_test(test_weighted_classifier)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
