/* Adam against a 3-step sequence worked out by hand, and gradient clipping.
 *
 * Two parameters p = (1, -0.5), lr 0.1, betas 0.9/0.999, eps 1e-8, gradients
 * g1 = (0.5, -1), g2 = (-0.2, 0.4), g3 = (0.1, 2). With bias corrections
 * bc1 = 1 - 0.9^t, bc2 = 1 - 0.999^t:
 *  t=1: m = 0.1 g1, v = 0.001 g1^2 -> m_hat = g1, v_hat = g1^2, so each
 *       parameter moves by lr * sign(g) (up to eps): p = (0.9, -0.4).
 *  t=2: p0: m = 0.9*0.05 + 0.1*(-0.2) = 0.025, m_hat = 0.025/0.19 = 0.131578947;
 *       v = 0.999*0.00025 + 0.001*0.04 = 0.00028975, v_hat = v/0.001999 =
 *       0.144947474, sqrt = 0.380719692; step 0.1*0.131578947/0.380719692 =
 *       0.0345605819 -> p0 = 0.8654394181. p1: m = -0.05, m_hat = -0.263157895,
 *       v = 0.001159, v_hat = 0.579789895, sqrt = 0.761439357, step
 *       -0.0345605833 -> p1 = -0.3654394167.
 *  t=3: p0: m = 0.0325, m_hat = 0.0325/0.271 = 0.119926199; v = 0.00029946025,
 *       v_hat = v/0.002997001 = 0.09991997, sqrt = 0.316101 -> step 0.0379392
 *       -> p0 = 0.8275002408. p1: m = 0.155, m_hat = 0.571955720, v =
 *       0.005157841, v_hat = 1.72100076, sqrt = 1.311869 -> step 0.0435985
 *       -> p1 = -0.4090379493.
 * With weight decay 0.1: L2 (torch.optim.Adam) adds 0.1 p to g before the
 * moments: t=1 g = (0.6, -1.05) -> p = (0.9, -0.4); t=2 g = (-0.11, 0.36):
 * m = (0.043, -0.0585), v = (0.00037174, 0.0012309975) -> p = (0.8475190630,
 * -0.3607644215); t=3 -> (0.7901621834, -0.4014778980). Decoupled (AdamW)
 * first scales p by 1 - lr wd = 0.99, then takes the plain Adam step:
 * t=1 p = (0.99 - 0.1, -0.495 + 0.1) = (0.89, -0.395); t=2 (0.8465394181,
 * -0.3564894167); t=3 (0.8001348466, -0.3965230551).
 * Parameters are float32: tolerance 2e-6 absolute. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "ef_test.h"
#include "ensfold/nn_adam.h"

static const float grads[3][2] = {{0.5f, -1.0f}, {-0.2f, 0.4f}, {0.1f, 2.0f}};

static void run3(float wd, int decoupled, const double expect[3][2]) {
  ef_ctx *ctx = NULL;
  ef_adam *a = NULL;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  ef_adam_cfg cfg = ef_adam_defaults();
  cfg.lr = 0.1f;
  cfg.weight_decay = wd;
  cfg.decoupled = decoupled;
  assert_int_equal(ef_adam_create(ctx, &a, 2, &cfg), EF_OK);
  float p[2] = {1.0f, -0.5f};
  for (int t = 0; t < 3; t++) {
    ef_adam_step(a, p, grads[t]);
    assert_int_equal(ef_adam_steps(a), t + 1);
    assert_close(p[0], expect[t][0], 2e-6);
    assert_close(p[1], expect[t][1], 2e-6);
  }
  /* reset: the same sequence again gives the same numbers */
  ef_adam_reset(a);
  p[0] = 1.0f;
  p[1] = -0.5f;
  for (int t = 0; t < 3; t++) ef_adam_step(a, p, grads[t]);
  assert_close(p[0], expect[2][0], 2e-6);
  ef_adam_destroy(a);
  ef_ctx_destroy(ctx);
}

static void test_adam_three_steps(void **state) {
  (void)state;
  static const double plain[3][2] = {
      {0.9, -0.4}, {0.8654394181, -0.3654394167}, {0.8275002408, -0.4090379493}};
  run3(0.0f, 0, plain);
}

static void test_adam_weight_decay(void **state) {
  (void)state;
  static const double l2[3][2] = {
      {0.9, -0.4}, {0.8475190630, -0.3607644215}, {0.7901621834, -0.4014778980}};
  static const double adamw[3][2] = {
      {0.89, -0.395}, {0.8465394181, -0.3564894167}, {0.8001348466, -0.3965230551}};
  run3(0.1f, 0, l2);
  run3(0.1f, 1, adamw);
}

static void test_adam_refuses_bad_settings(void **state) {
  (void)state;
  ef_ctx *ctx = NULL;
  ef_adam *a = NULL;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  ef_adam_cfg cfg = ef_adam_defaults();
  cfg.beta2 = 1.0f;
  assert_int_equal(ef_adam_create(ctx, &a, 4, &cfg), EF_ERR_INPUT);
  assert_null(a);
  cfg = ef_adam_defaults();
  cfg.lr = -1.0f;
  assert_int_equal(ef_adam_create(ctx, &a, 4, &cfg), EF_ERR_INPUT);
  ef_adam_destroy(NULL);
  ef_ctx_destroy(ctx);
}

static void test_clip_grad_norm(void **state) {
  (void)state;
  float g[2] = {3.0f, 4.0f};
  /* norm 5 clipped to 1: (0.6, 0.8) (torch's factor max/(norm + 1e-6)) */
  assert_close(ef_nn_clip_grad_norm(g, 2, 1.0f), 5.0, 1e-6);
  assert_close(g[0], 0.6, 1e-6);
  assert_close(g[1], 0.8, 1e-6);
  /* under the limit: untouched */
  assert_close(ef_nn_clip_grad_norm(g, 2, 10.0f), 1.0, 1e-6);
  assert_close(g[0], 0.6, 1e-7);
  /* max_norm <= 0: only measures */
  float h[3] = {2.0f, 2.0f, 1.0f};
  assert_close(ef_nn_clip_grad_norm(h, 3, 0.0f), 3.0, 1e-6);
  assert_close(h[0], 2.0, 0.0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_adam_three_steps),
      cmocka_unit_test(test_adam_weight_decay),
      cmocka_unit_test(test_adam_refuses_bad_settings),
      cmocka_unit_test(test_clip_grad_norm),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
