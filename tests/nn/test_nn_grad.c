/* Finite-difference gradient checks of every layer, activation and loss.
 *
 * Each check compares the analytic gradient with a central difference
 * (f(p + h) - f(p - h)) / 2h of the same float32 code, the loss summed in
 * double. Tolerance: |analytic - numeric| <= 1e-2 * max(|numeric|, 0.05) +
 * 5e-4, i.e. 1% where gradients are sizeable; the absolute term covers the
 * float rounding of the forward pass (~1e-6 in the loss, divided by 2h). A
 * wrong factor, sign, transpose or missing term misses by O(1).
 * (Leaky) ReLU networks: a difference whose +h or -h pass flips the sign of
 * some (leaky) ReLU input straddles a kink and measures nothing; such
 * entries are skipped, counted, and the count is bounded (<= 10%) so the
 * check cannot go vacuous. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ef_test.h"
#include "ensfold/nn.h"
#include "ensfold/nn_loss.h"
#include "ensfold/rng.h"

#ifndef H_STEP
#define H_STEP 1e-3f
#endif

static void check_grad(const char *what, int i, double analytic, double numeric) {
  double tol = 1e-2 * fmax(fabs(numeric), 0.05) + 5e-4;
  if (!(fabs(analytic - numeric) <= tol))
    fail_msg("%s[%d]: analytic %.8g, finite difference %.8g (tolerance %.3g)", what, i, analytic,
             numeric, tol);
}

static void fill_uniform(ef_rng *r, float *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * ef_rng_uniform(r));
}

/* L = sum_ij r_ij out_ij (double) for the current parameters; *sig gets a
 * hash of the sign pattern of every (leaky) ReLU layer's outputs. */
static double proj_loss(ef_mlp *m, const float *x, int B, const float *r, uint64_t *sig) {
  const float *out = ef_mlp_forward(m, x, B);
  int n = ef_mlp_n_layers(m), no = ef_mlp_width(m, n);
  double s = 0.0;
  for (int i = 0; i < B * no; i++) s += (double)r[i] * out[i];
  uint64_t h = 1469598103934665603ull;
  for (int l = 0; l < n; l++) {
    if (ef_mlp_act(m, l) != EF_ACT_RELU && ef_mlp_act(m, l) != EF_ACT_LEAKY_RELU) continue;
    const float *a = ef_mlp_layer_output(m, l);
    for (int i = 0; i < B * ef_mlp_width(m, l + 1); i++) h = (h ^ (a[i] > 0.0f)) * 1099511628211ull;
  }
  *sig = h;
  return s;
}

/* Check dW, db and dx of an MLP against finite differences. */
static void check_mlp(int n_layers, const int *widths, const ef_nn_act *acts, float slope,
                      int B, uint32_t seed) {
  ef_ctx *ctx = NULL;
  ef_mlp *m = NULL;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  ef_mlp_spec spec = {n_layers, widths, acts, slope, B};
  assert_int_equal(ef_mlp_create(ctx, &m, &spec), EF_OK);
  ef_mlp_init(m, seed, 0);
  int ni = widths[0], no = widths[n_layers];
  ef_rng r;
  ef_rng_init(&r, seed, EF_RNG_TEST, 1);
  float *x = malloc(sizeof(float) * B * ni), *proj = malloc(sizeof(float) * B * no);
  float *dx = malloc(sizeof(float) * B * ni);
  fill_uniform(&r, x, (size_t)B * ni, -1.5, 1.5);
  fill_uniform(&r, proj, (size_t)B * no, -1.0, 1.0);
  size_t np = ef_mlp_n_params(m);
  float *p = ef_mlp_params(m);
  /* biases away from zero so that the kinks of (leaky) ReLU are rarely
   * within H_STEP of a pre-activation */
  for (int l = 0; l < n_layers; l++)
    for (int j = 0; j < widths[l + 1]; j++) p[ef_mlp_bias_offset(m, l) + j] += 0.05f;
  float *grads = malloc(sizeof(float) * np);
  ef_mlp_forward(m, x, B);
  ef_mlp_backward(m, proj, dx, EF_MLP_GRAD_PARAMS);
  memcpy(grads, ef_mlp_grads(m), sizeof(float) * np);
  uint64_t s0, sp, sm;
  int skipped = 0, total = 0;
  proj_loss(m, x, B, proj, &s0);
  for (size_t k = 0; k < np + (size_t)B * ni; k++) {
    float *v = k < np ? &p[k] : &x[k - np];
    float save = *v;
    *v = save + H_STEP;
    double lp = proj_loss(m, x, B, proj, &sp);
    *v = save - H_STEP;
    double lm = proj_loss(m, x, B, proj, &sm);
    *v = save;
    total++;
    if (sp != s0 || sm != s0) {
      skipped++;
      continue;
    }
    if (k < np) check_grad("dparam", (int)k, grads[k], (lp - lm) / (2.0 * H_STEP));
    else check_grad("dx", (int)(k - np), dx[k - np], (lp - lm) / (2.0 * H_STEP));
  }
  if (skipped * 10 > total) fail_msg("%d of %d differences straddle a kink", skipped, total);
  free(x);
  free(proj);
  free(dx);
  free(grads);
  ef_mlp_destroy(m);
  ef_ctx_destroy(ctx);
}

static void test_dense_each_activation(void **state) {
  (void)state;
  /* one dense layer with each activation: W, b and input gradients */
  for (int a = 0; a < EF_NN_N_ACT; a++) {
    const int widths[2] = {5, 4};
    const ef_nn_act acts[1] = {(ef_nn_act)a};
    check_mlp(1, widths, acts, 0.2f, 3, 11u + (uint32_t)a);
  }
}

static void test_mlp_deep(void **state) {
  (void)state;
  const int widths[5] = {3, 7, 6, 5, 2};
  const ef_nn_act a1[4] = {EF_ACT_LEAKY_RELU, EF_ACT_TANH, EF_ACT_SIGMOID, EF_ACT_LINEAR};
  check_mlp(4, widths, a1, 0.2f, 4, 21);
  const ef_nn_act a2[4] = {EF_ACT_RELU, EF_ACT_LEAKY_RELU, EF_ACT_TANH, EF_ACT_SOFTMAX};
  check_mlp(4, widths, a2, 0.1f, 4, 22);
  /* widths that are not multiples of the SIMD width, larger batch */
  const int w3[4] = {6, 13, 9, 1};
  const ef_nn_act a3[3] = {EF_ACT_LEAKY_RELU, EF_ACT_LEAKY_RELU, EF_ACT_LINEAR};
  check_mlp(3, w3, a3, 0.2f, 7, 23);
  /* a single row: the products become matrix-vector calls */
  check_mlp(3, w3, a3, 0.2f, 1, 24);
}

static void test_activation_kernels(void **state) {
  (void)state;
  /* ef_nn_act_backward against differences of ef_nn_act_forward,
   * with L = sum r * act(x) */
  enum { R = 3, C = 6 };
  ef_rng r;
  ef_rng_init(&r, 5, EF_RNG_TEST, 2);
  for (int a = 0; a < EF_NN_N_ACT; a++) {
    float x[R * C], y[R * C], proj[R * C], dx[R * C], yp[R * C], ym[R * C];
    fill_uniform(&r, x, R * C, -2.0, 2.0);
    fill_uniform(&r, proj, R * C, -1.0, 1.0);
    for (int i = 0; i < R * C; i++)
      if (fabsf(x[i]) < 0.01f) x[i] = 0.3f; /* away from the ReLU kink */
    ef_nn_act_forward((ef_nn_act)a, 0.2f, R, C, x, y);
    ef_nn_act_backward((ef_nn_act)a, 0.2f, R, C, y, proj, dx);
    for (int k = 0; k < R * C; k++) {
      float save = x[k];
      x[k] = save + H_STEP;
      ef_nn_act_forward((ef_nn_act)a, 0.2f, R, C, x, yp);
      x[k] = save - H_STEP;
      ef_nn_act_forward((ef_nn_act)a, 0.2f, R, C, x, ym);
      x[k] = save;
      double num = 0.0;
      for (int i = 0; i < R * C; i++) num += (double)proj[i] * ((double)yp[i] - ym[i]);
      check_grad(ef_nn_act_name((ef_nn_act)a), k, dx[k], num / (2.0 * H_STEP));
    }
  }
}

static void test_param_grad_modes(void **state) {
  (void)state;
  ef_ctx *ctx = NULL;
  ef_mlp *m = NULL;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  const int widths[3] = {4, 8, 2};
  const ef_nn_act acts[2] = {EF_ACT_LEAKY_RELU, EF_ACT_LINEAR};
  ef_mlp_spec spec = {2, widths, acts, 0.2f, 5};
  assert_int_equal(ef_mlp_create(ctx, &m, &spec), EF_OK);
  ef_mlp_init(m, 3, 0);
  float x[5 * 4], d[5 * 2], dx1[5 * 4], dx2[5 * 4];
  ef_rng r;
  ef_rng_init(&r, 3, EF_RNG_TEST, 3);
  fill_uniform(&r, x, 20, -1, 1);
  fill_uniform(&r, d, 10, -1, 1);
  size_t np = ef_mlp_n_params(m);
  float *g1 = malloc(np * sizeof(float));
  ef_mlp_forward(m, x, 5);
  ef_mlp_backward(m, d, dx1, EF_MLP_GRAD_PARAMS);
  memcpy(g1, ef_mlp_grads(m), np * sizeof(float));
  /* without EF_MLP_GRAD_PARAMS the gradients stay as they were, dx agrees */
  ef_mlp_forward(m, x, 5);
  ef_mlp_backward(m, d, dx2, 0);
  assert_memory_equal(g1, ef_mlp_grads(m), np * sizeof(float));
  assert_memory_equal(dx1, dx2, sizeof dx1);
  /* EF_MLP_GRAD_ACCUM adds: twice the same backward gives twice the gradient */
  ef_mlp_backward(m, d, NULL, EF_MLP_GRAD_PARAMS | EF_MLP_GRAD_ACCUM);
  for (size_t k = 0; k < np; k++) assert_close(ef_mlp_grads(m)[k], 2.0 * g1[k], 1e-6 + 1e-6 * fabs(g1[k]));
  ef_mlp_zero_grad(m);
  for (size_t k = 0; k < np; k++) assert_true(ef_mlp_grads(m)[k] == 0.0f);
  free(g1);
  ef_mlp_destroy(m);
  ef_ctx_destroy(ctx);
}

/* ---- losses: loss(x) and dloss/dx, with weights and soft targets ---- */

typedef double (*loss_fn)(const float *x, float *dx, const void *aux);

static void check_loss(const char *what, loss_fn f, float *x, int n, const void *aux) {
  float *dx = malloc(sizeof(float) * n), *dummy = malloc(sizeof(float) * n);
  f(x, dx, aux);
  for (int k = 0; k < n; k++) {
    float save = x[k];
    x[k] = save + H_STEP;
    double lp = f(x, dummy, aux);
    x[k] = save - H_STEP;
    double lm = f(x, dummy, aux);
    x[k] = save;
    check_grad(what, k, dx[k], (lp - lm) / (2.0 * H_STEP));
  }
  free(dx);
  free(dummy);
}

enum { NL = 6, KL = 4 };
typedef struct {
  float y[NL * KL], w[NL];
  float sig[3];
  int m, d;
} loss_aux;

static double f_bce(const float *x, float *dx, const void *v) {
  const loss_aux *a = v;
  return ef_loss_bce_logits(NL, x, a->y, 0.0f, a->w, dx);
}
static double f_bce_const(const float *x, float *dx, const void *v) {
  (void)v;
  return ef_loss_bce_logits(NL, x, NULL, 0.0f, NULL, dx);
}
static double f_gen(const float *x, float *dx, const void *v) {
  const loss_aux *a = v;
  return ef_loss_gen_nonsat(NL, x, a->w, dx);
}
static double f_xent(const float *x, float *dx, const void *v) {
  const loss_aux *a = v;
  return ef_loss_softmax_xent(NL, KL, x, a->y, a->w, dx);
}
static double f_mse(const float *x, float *dx, const void *v) {
  const loss_aux *a = v;
  return ef_loss_mse(NL, KL, x, a->y, a->w, dx);
}
static double f_mmd(const float *x, float *dx, const void *v) {
  const loss_aux *a = v;
  return ef_loss_mmd(NL, a->m, a->d, x, a->y, 3, a->sig, dx);
}

static double f_bce_sum(const float *x, float *dx, const void *v) {
  const loss_aux *a = v;
  return ef_loss_bce_sum(NL, NL / 2, x, a->w, dx); /* first half real, the rest fake */
}
static double f_gen_sum(const float *x, float *dx, const void *v) {
  const loss_aux *a = v;
  return ef_loss_gen_sum(NL, x, a->w, dx);
}

static void test_losses(void **state) {
  (void)state;
  ef_rng r;
  ef_rng_init(&r, 9, EF_RNG_TEST, 4);
  loss_aux a;
  float x[NL * KL];
  fill_uniform(&r, a.w, NL, 0.2, 2.0);
  /* BCE: soft targets in [0, 1], weights, logits of both signs and large */
  fill_uniform(&r, a.y, NL, 0.0, 1.0);
  fill_uniform(&r, x, NL, -4.0, 4.0);
  x[0] = 30.0f; /* saturated: the stable form must not overflow */
  check_loss("bce", f_bce, x, NL, &a);
  check_loss("bce_const", f_bce_const, x, NL, &a);
  check_loss("gen_nonsat", f_gen, x, NL, &a);
  check_loss("bce_sum", f_bce_sum, x, NL, &a);
  check_loss("gen_sum", f_gen_sum, x, NL, &a);
  /* soft-target cross-entropy: rows are probability vectors */
  for (int i = 0; i < NL; i++) {
    double s = 0.0;
    for (int j = 0; j < KL; j++) s += a.y[i * KL + j] = (float)ef_rng_uniform(&r);
    for (int j = 0; j < KL; j++) a.y[i * KL + j] = (float)(a.y[i * KL + j] / s);
  }
  fill_uniform(&r, x, NL * KL, -3.0, 3.0);
  check_loss("softmax_xent", f_xent, x, NL * KL, &a);
  fill_uniform(&r, a.y, NL * KL, -1.0, 1.0);
  check_loss("mse", f_mse, x, NL * KL, &a);
  /* MMD: 6 points in 2D against 5 target points, kernels 0.3/1/3 */
  a.m = 5;
  a.d = 2;
  a.sig[0] = 0.3f;
  a.sig[1] = 1.0f;
  a.sig[2] = 3.0f;
  fill_uniform(&r, a.y, 10, -1.0, 1.0);
  fill_uniform(&r, x, NL * 2, -1.0, 1.0);
  check_loss("mmd", f_mmd, x, NL * 2, &a);
}

static void test_loss_values(void **state) {
  (void)state;
  /* known values: BCE(0, y) = log 2 for any y; -log s(x) at x = 2 is
   * log(1 + e^-2) = 0.126928011; softmax_xent of equal logits over 4 = log 4;
   * MMD of a sample with itself = 0 */
  float x0[2] = {0.0f, 0.0f}, y[2] = {0.3f, 1.0f};
  assert_close(ef_loss_bce_logits(2, x0, y, 0.0f, NULL, NULL), log(2.0), 1e-6);
  float x2[1] = {2.0f};
  assert_close(ef_loss_gen_nonsat(1, x2, NULL, NULL), 0.126928011, 1e-6);
  float w2[1] = {3.0f};
  assert_close(ef_loss_gen_nonsat(1, x2, w2, NULL), 3 * 0.126928011, 3e-6);
  float l4[4] = {1, 1, 1, 1}, p4[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  assert_close(ef_loss_softmax_xent(1, 4, l4, p4, NULL, NULL), log(4.0), 1e-6);
  float pts[6] = {0, 0, 1, 0, 0, 2}, sig[1] = {1.0f};
  assert_close(ef_loss_mmd(3, 3, 2, pts, pts, 1, sig, NULL), 0.0, 1e-7);
  float a[2] = {1, 2}, b[2] = {0, 4}, w[1] = {2};
  /* (1 + 4)/2 per row with weight 2 */
  assert_close(ef_loss_mse(1, 2, a, b, w, NULL), 5.0, 1e-6);
}

/* The weighted sums against the mean losses they generalise: with weights
 * 1 / n, bce_sum over n real rows is bce_logits with target 1, over n fake
 * rows with target 0; gen_sum equals gen_nonsat (to the float rounding of
 * each row's term). */
static void test_loss_sums(void **state) {
  (void)state;
  float x[4] = {-3.0f, -0.5f, 0.7f, 4.0f}, w[4] = {0.25f, 0.25f, 0.25f, 0.25f};
  float d1[4], d2[4];
  double s1 = ef_loss_bce_sum(4, 4, x, w, d1);
  assert_close(s1, ef_loss_bce_logits(4, x, NULL, 1.0f, NULL, d2), 1e-6);
  for (int i = 0; i < 4; i++) assert_close(d1[i], d2[i], 1e-7);
  double s0 = ef_loss_bce_sum(4, 0, x, w, d1);
  assert_close(s0, ef_loss_bce_logits(4, x, NULL, 0.0f, NULL, d2), 1e-6);
  for (int i = 0; i < 4; i++) assert_close(d1[i], d2[i], 1e-7);
  assert_close(ef_loss_gen_sum(4, x, w, d1), ef_loss_gen_nonsat(4, x, NULL, d2), 1e-6);
  for (int i = 0; i < 4; i++) assert_close(d1[i], d2[i], 1e-7);
}

/* The grouped MMD gradient: with one group it is ef_loss_mmd's gradient
 * (float against double arithmetic: 1e-4 relative); points of another
 * group do not move it; its first d_cont columns only are written. D 5
 * takes the general code, D 6 (3 labels, 3 kernels) the written-out one. */
static void mmd_grouped_case(int D) {
  enum { N = 7, M = 9, DC = 3, DMAX = 6 };
  ef_rng r;
  ef_rng_init(&r, 21, EF_RNG_TEST, 5);
  float x[N * DMAX], y[M * DMAX], xc[N * DC], yc[M * DC], g[N * DMAX], ref[N * DC];
  float g2[N * DMAX], g3[N * DMAX], gxx[N * DMAX];
  float sig[3] = {0.2f, 0.6f, 1.5f};
  fill_uniform(&r, x, (size_t)N * D, -1.0, 1.0);
  fill_uniform(&r, y, (size_t)M * D, -1.0, 1.0);
  for (int i = 0; i < N; i++) {
    memcpy(xc + i * DC, x + i * D, DC * sizeof(float));
    for (int t = DC; t < D; t++) x[i * D + t] = t == DC ? 3.0f : 0.0f; /* group (3, 0, ..) */
  }
  for (int j = 0; j < M; j++) {
    memcpy(yc + j * DC, y + j * D, DC * sizeof(float));
    for (int t = DC; t < D; t++) y[j * D + t] = t == DC ? 3.0f : 0.0f;
  }
  for (int k = 0; k < N * D; k++) g[k] = g2[k] = -99.0f;
  assert_int_equal(ef_loss_mmd_grad_grouped(N, M, D, DC, x, y, 3, sig, g), 0);
  ef_loss_mmd(N, M, DC, xc, yc, 3, sig, ref);
  double scale = 0.0;
  for (int k = 0; k < N * DC; k++) scale = fmax(scale, fabs(ref[k]));
  assert_true(scale > 1e-3); /* a gradient worth comparing */
  for (int i = 0; i < N; i++) {
    for (int t = 0; t < DC; t++) assert_close(g[i * D + t], ref[i * DC + t], 1e-4 * scale);
    for (int t = DC; t < D; t++) assert_true(g[i * D + t] == -99.0f);
  }
  /* the last two targets move to another group: x's gradient is then the
   * one against the first M - 2 targets with the normalisation over M: the
   * xx part the same, the xy part scaled by (M - 2) / M */
  y[(M - 1) * D + 4] = y[(M - 2) * D + 4] = 3.0f;
  assert_int_equal(ef_loss_mmd_grad_grouped(N, M, D, DC, x, y, 3, sig, g2), 0);
  assert_int_equal(ef_loss_mmd_grad_grouped(N, M - 2, D, DC, x, y, 3, sig, g3), 0);
  assert_int_equal(ef_loss_mmd_grad_grouped(N, 0, D, DC, x, y, 3, sig, gxx), 0);
  for (int i = 0; i < N; i++)
    for (int t = 0; t < DC; t++) {
      int k = i * D + t;
      double want = gxx[k] + (double)(M - 2) / M * (g3[k] - gxx[k]);
      assert_close(g2[k], want, 1e-4 * scale);
    }
}

static void test_mmd_grouped(void **state) {
  (void)state;
  mmd_grouped_case(5);
  mmd_grouped_case(6);
  /* outside its limits it refuses and writes nothing */
  float p[65] = {0}, sg[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, out[65] = {-7};
  assert_int_equal(ef_loss_mmd_grad_grouped(1, 1, 65, 65, p, p, 1, sg, out), -1);
  assert_int_equal(ef_loss_mmd_grad_grouped(1, 1, 3, 3, p, p, 9, sg, out), -1);
  assert_int_equal(ef_loss_mmd_grad_grouped(1, 1, 2, 3, p, p, 1, sg, out), -1);
  assert_true(out[0] == -7.0f);
}

/* Parameter averaging: over the last half of 4 steps the parameters end as
 * the mean of the iterates after steps 2 and 3. */
static void test_average(void **state) {
  (void)state;
  ef_ctx *ctx = NULL;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  ef_mlp *m = NULL;
  assert_int_equal(ef_mlp_create_plain(ctx, &m, 2, 3, 1, 1, 4), EF_OK);
  size_t n = ef_mlp_n_params(m);
  float *p = ef_mlp_params(m), *avg = malloc(n * sizeof(float));
  int first = ef_mlp_average_first(0.5, 4);
  assert_int_equal(first, 2);
  assert_int_equal(ef_mlp_average_first(0.0, 4), 4);
  for (int step = 0; step < 4; step++) {
    for (size_t i = 0; i < n; i++) p[i] = (float)(step * 10 + i);
    ef_mlp_average_step(m, avg, step, first, 4);
  }
  for (size_t i = 0; i < n; i++) assert_close(p[i], 25.0 + i, 1e-5);
  free(avg);
  ef_mlp_destroy(m);
  ef_ctx_destroy(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dense_each_activation),
      cmocka_unit_test(test_mlp_deep),
      cmocka_unit_test(test_activation_kernels),
      cmocka_unit_test(test_param_grad_modes),
      cmocka_unit_test(test_losses),
      cmocka_unit_test(test_loss_values),
      cmocka_unit_test(test_loss_sums),
      cmocka_unit_test(test_mmd_grouped),
      cmocka_unit_test(test_average),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
