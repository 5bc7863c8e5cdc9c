/* A small GAN learns a 2D ring (radius 1, radial width 0.05) in a few
 * seconds. G 4->64->64->2, D 2->64->64->1, LeakyReLU(0.2), BCE / the
 * non-saturating loss, Adam(1e-3, 0.5/0.999), batch 256, 4000 steps.
 *
 * Stated tolerances, on 4096 samples of the trained G:
 *  - mean radius within 0.05 of 1; radial spread (sd) below 0.12;
 *  - centre of mass within 0.05 of the origin;
 *  - each of the 8 octants holds 12.5% +- 4% of the samples (no mode
 *    collapse onto an arc);
 *  - MMD^2 to the target (kernels sigma 0.1/0.25/0.5/1) below half the MMD^2
 *    between the target and the same ring at radius 0.9: G must be closer
 *    to the target than a ring 10% too small is. The untrained G's MMD^2 is
 *    checked to exceed that reference, so the criterion is not vacuous. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "ef_test.h"
#include "nn_test_gan.h"

#define NS 4096 /* evaluation samples */
#define B 256

static const float sigmas[4] = {0.1f, 0.25f, 0.5f, 1.0f};

static void sample_g(tgan *t, float *out) {
  for (int i = 0; i < NS; i += B) memcpy(out + 2 * i, tgan_sample(t), 2 * B * sizeof(float));
}

static void test_gan_learns_ring(void **state) {
  (void)state;
  ef_ctx *ctx = NULL;
  tgan t;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  assert_int_equal(ef_nn_set_threads(ctx, 1), EF_OK);
  assert_int_equal(tgan_create(ctx, &t, B, 4, 64, 2024, 1e-3f), EF_OK);
  float *gen = malloc(2 * NS * sizeof(float)), *target = malloc(2 * NS * sizeof(float));
  float *small = malloc(2 * NS * sizeof(float));
  ef_rng r;
  ef_rng_init(&r, 77, EF_RNG_TEST, 0);
  tgan_ring(&r, target, NS);
  tgan_ring(&r, small, NS);
  for (int i = 0; i < 2 * NS; i++) small[i] *= 0.9f;
  /* MMD on 2048 points each: O(n^2) and enough to resolve these gaps */
  const int nm = 2048;
  double ref = ef_loss_mmd(nm, nm, 2, small, target, 4, sigmas, NULL);
  sample_g(&t, gen);
  double before = ef_loss_mmd(nm, nm, 2, gen, target, 4, sigmas, NULL);
  assert_true(before > ref);

  for (int s = 0; s < 4000; s++) tgan_step(&t);
  sample_g(&t, gen);
  double mr = 0, mr2 = 0, mx = 0, my = 0;
  int oct[8] = {0};
  for (int i = 0; i < NS; i++) {
    double x = gen[2 * i], y = gen[2 * i + 1], rad = sqrt(x * x + y * y);
    mr += rad;
    mr2 += rad * rad;
    mx += x;
    my += y;
    int o = (int)floor((atan2(y, x) + M_PI) / (M_PI / 4));
    oct[o < 0 ? 0 : o > 7 ? 7 : o]++;
  }
  mr /= NS;
  double sd = sqrt(mr2 / NS - mr * mr);
  mx /= NS;
  my /= NS;
  double after = ef_loss_mmd(nm, nm, 2, gen, target, 4, sigmas, NULL);
  printf("# ring: mean radius %.4f sd %.4f centre (%.4f, %.4f) MMD^2 %.3g (untrained %.3g, "
         "radius-0.9 ring %.3g)\n# octants:", mr, sd, mx, my, after, before, ref);
  for (int o = 0; o < 8; o++) printf(" %.3f", (double)oct[o] / NS);
  printf("\n");
  assert_close(mr, 1.0, 0.05);
  assert_true(sd < 0.12);
  assert_close(mx, 0.0, 0.05);
  assert_close(my, 0.0, 0.05);
  for (int o = 0; o < 8; o++) assert_close((double)oct[o] / NS, 0.125, 0.04);
  assert_true(after < 0.5 * ref);
  free(gen);
  free(target);
  free(small);
  tgan_destroy(&t);
  ef_ctx_destroy(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_gan_learns_ring)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
