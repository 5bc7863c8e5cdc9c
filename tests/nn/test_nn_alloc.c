/* No allocation inside a training step, counted.
 *
 * This executable defines malloc, calloc, realloc, aligned_alloc,
 * posix_memalign and memalign itself (forwarding to glibc's __libc_*
 * entry points), so EVERY allocation in the process goes through a counter:
 * the engine's, OpenBLAS's and libc's. The test checks the counter sees the
 * engine's allocations (one per network, one per optimizer), then runs
 * training steps (forward, backward, losses, Adam, clipping, noise) and
 * requires the counter not to move. glibc only; elsewhere the test skips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>

#include "nn_test_gan.h"

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) /* ASan owns malloc */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t s);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t a, size_t n);
extern void __libc_free(void *p);

static volatile long n_alloc;

void *malloc(size_t n) {
  n_alloc++;
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t s) {
  n_alloc++;
  return __libc_calloc(n, s);
}
void *realloc(void *p, size_t n) {
  n_alloc++;
  return __libc_realloc(p, n);
}
void *aligned_alloc(size_t a, size_t n) {
  n_alloc++;
  return __libc_memalign(a, n);
}
void *memalign(size_t a, size_t n);
void *memalign(size_t a, size_t n) {
  n_alloc++;
  return __libc_memalign(a, n);
}
int posix_memalign(void **p, size_t a, size_t n) {
  n_alloc++;
  *p = __libc_memalign(a, n);
  return *p ? 0 : ENOMEM;
}
void free(void *p) { __libc_free(p); }

static void test_one_allocation_per_object(void **state) {
  (void)state;
  ef_ctx *ctx = NULL;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  const int w[5] = {8, 64, 64, 64, 2};
  const ef_nn_act a[4] = {EF_ACT_LEAKY_RELU, EF_ACT_TANH, EF_ACT_RELU, EF_ACT_LINEAR};
  ef_mlp_spec spec = {4, w, a, 0.2f, 256};
  ef_mlp *m = NULL;
  ef_adam *opt = NULL;
  long before = n_alloc;
  assert_int_equal(ef_mlp_create(ctx, &m, &spec), EF_OK);
  assert_int_equal(n_alloc - before, 1); /* struct, tables, params, grads, activations */
  ef_adam_cfg cfg = ef_adam_defaults();
  before = n_alloc;
  assert_int_equal(ef_adam_create(ctx, &opt, ef_mlp_n_params(m), &cfg), EF_OK);
  assert_int_equal(n_alloc - before, 1); /* m and v */
  ef_adam_destroy(opt);
  ef_mlp_destroy(m);
  ef_ctx_destroy(ctx);
}

static void test_no_allocation_in_training_steps(void **state) {
  (void)state;
  ef_ctx *ctx = NULL;
  tgan t;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  assert_int_equal(ef_nn_set_threads(ctx, 1), EF_OK);
  assert_int_equal(tgan_create(ctx, &t, 256, 4, 64, 5, 1e-3f), EF_OK);
  /* first steps may let OpenBLAS set up its buffers; then nothing */
  for (int i = 0; i < 3; i++) tgan_step(&t);
  long before = n_alloc;
  for (int i = 0; i < 20; i++) {
    tgan_step(&t);
    ef_nn_clip_grad_norm(ef_mlp_grads(t.g), ef_mlp_n_params(t.g), 1.0f);
  }
  /* other losses and batch sizes below max_batch */
  float x[8] = {0}, y[8] = {0}, dx[8], sig[2] = {0.5f, 1.0f};
  ef_loss_softmax_xent(2, 4, x, y, NULL, dx);
  ef_loss_mse(2, 4, x, y, NULL, dx);
  ef_loss_mmd(4, 4, 2, x, y, 2, sig, dx);
  ef_mlp_forward(t.g, t.z, 17);
  long during = n_alloc - before;
  if (during != 0) fail_msg("%ld allocations during 20 training steps", during);
  tgan_destroy(&t);
  ef_ctx_destroy(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_allocation_per_object),
      cmocka_unit_test(test_no_allocation_in_training_steps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
int main(void) { return 77; } /* skipped: needs glibc's __libc_malloc, not under ASan */
#endif
