/* Same seed and thread count -> bit-identical weights after N steps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nn_test_gan.h"

#define STEPS 60

/* Train STEPS steps; copy G's and D's parameters and D's Adam moments. */
static void train(uint64_t seed, int threads, float *out, size_t *n_out) {
  ef_ctx *ctx = NULL;
  tgan t;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  assert_int_equal(ef_nn_set_threads(ctx, threads), EF_OK);
  assert_int_equal(tgan_create(ctx, &t, 512, 4, 96, seed, 1e-3f), EF_OK);
  for (int i = 0; i < STEPS; i++) tgan_step(&t);
  size_t ng = ef_mlp_n_params(t.g), nd = ef_mlp_n_params(t.d);
  memcpy(out, ef_mlp_params(t.g), ng * sizeof(float));
  memcpy(out + ng, ef_mlp_params(t.d), nd * sizeof(float));
  memcpy(out + ng + nd, ef_adam_m(t.od), nd * sizeof(float));
  memcpy(out + ng + 2 * nd, ef_adam_v(t.od), nd * sizeof(float));
  *n_out = ng + 3 * nd;
  tgan_destroy(&t);
  ef_ctx_destroy(ctx);
}

#define CAP (1 << 16)

static void test_same_seed_same_bits(void **state) {
  (void)state;
  float *a = malloc(CAP * sizeof(float)), *b = malloc(CAP * sizeof(float));
  size_t na, nb;
  train(42, 1, a, &na);
  train(42, 1, b, &nb);
  assert_int_equal(na, nb);
  assert_true(na < CAP);
  assert_memory_equal(a, b, na * sizeof(float));
  /* and the weights did move: a different seed gives different bits */
  train(43, 1, b, &nb);
  assert_memory_not_equal(a, b, na * sizeof(float));
  free(a);
  free(b);
}

static void test_two_threads_repeatable(void **state) {
  (void)state;
  /* with 2 OpenBLAS threads, two runs again agree bit for bit */
  float *a = malloc(CAP * sizeof(float)), *b = malloc(CAP * sizeof(float));
  size_t na, nb;
  train(42, 2, a, &na);
  train(42, 2, b, &nb);
  assert_memory_equal(a, b, na * sizeof(float));
  free(a);
  free(b);
  ef_ctx *ctx = NULL;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  assert_int_equal(ef_nn_set_threads(ctx, 0), EF_ERR_INPUT);
  assert_int_equal(ef_nn_set_threads(ctx, 1), EF_OK);
  assert_int_equal(ef_nn_threads(), 1);
  ef_ctx_destroy(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_seed_same_bits),
      cmocka_unit_test(test_two_threads_repeatable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
