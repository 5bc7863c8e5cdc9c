/* Philox4x32-10 known answers: the three "philox4x32 10" lines of Random123's
 * kat_vectors file (counter[4] key[2] -> output[4]). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"
#include <math.h>

#include "ensfold/rng.h"

static void test_kat(void **state) {
  (void)state;
  static const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
       0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
       0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
  };
  for (int i = 0; i < 3; i++) {
    uint32_t out[4];
    ef_philox4x32_10(&kat[i][0], &kat[i][4], out);
    for (int j = 0; j < 4; j++) assert_int_equal(out[j], kat[i][6 + j]);
  }
}

static void test_stream_layout(void **state) {
  (void)state;
  /* The stream (seed, purpose, unit) starts at counter (0, 0, unit, purpose)
   * with key (seed lo, seed hi): the first word is the block's first word. */
  ef_rng r;
  uint64_t seed = 0x299f31d0a4093822ull;
  ef_rng_init(&r, seed, 0x03707344u, 0x13198a2eu);
  uint32_t ctr[4] = {0, 0, 0x13198a2eu, 0x03707344u};
  uint32_t key[2] = {0xa4093822u, 0x299f31d0u}, out[4];
  ef_philox4x32_10(ctr, key, out);
  for (int j = 0; j < 4; j++) assert_int_equal(ef_rng_u32(&r), out[j]);
  ctr[0] = 1;
  ef_philox4x32_10(ctr, key, out);
  assert_int_equal(ef_rng_u32(&r), out[0]);
  /* seek back to block 1 reproduces it */
  ef_rng_seek(&r, 1);
  assert_int_equal(ef_rng_u32(&r), out[0]);
}

static void test_streams_independent(void **state) {
  (void)state;
  ef_rng a, b, c;
  ef_rng_init(&a, 42, EF_RNG_BOOTSTRAP, 1);
  ef_rng_init(&b, 42, EF_RNG_BOOTSTRAP, 2);
  ef_rng_init(&c, 42, EF_RNG_GEN_MC, 1);
  int same_ab = 0, same_ac = 0;
  for (int i = 0; i < 1000; i++) {
    uint32_t x = ef_rng_u32(&a);
    same_ab += x == ef_rng_u32(&b);
    same_ac += x == ef_rng_u32(&c);
  }
  assert_true(same_ab < 3);
  assert_true(same_ac < 3);
  /* same key -> same stream */
  ef_rng_init(&a, 42, EF_RNG_BOOTSTRAP, 1);
  ef_rng_init(&b, 42, EF_RNG_BOOTSTRAP, 1);
  for (int i = 0; i < 100; i++) assert_int_equal(ef_rng_u32(&a), ef_rng_u32(&b));
}

static void test_distributions(void **state) {
  (void)state;
  ef_rng r;
  ef_rng_init(&r, 7, EF_RNG_TEST, 0);
  const int n = 400000;
  double su = 0, su2 = 0, sn = 0, sn2 = 0, sp = 0, sp2 = 0;
  int p0 = 0;
  for (int i = 0; i < n; i++) {
    double u = ef_rng_uniform(&r);
    assert_true(u > 0.0 && u < 1.0);
    su += u;
    su2 += u * u;
    double g = ef_rng_normal(&r);
    sn += g;
    sn2 += g * g;
    unsigned k = ef_rng_poisson(&r, 1.0);
    sp += k;
    sp2 += (double)k * k;
    p0 += k == 0;
  }
  /* Tolerances: 5 standard errors of each estimate at n = 4e5. */
  assert_close(su / n, 0.5, 5 * sqrt(1.0 / 12 / n));
  assert_close(su2 / n - (su / n) * (su / n), 1.0 / 12, 5 * 0.0745 / sqrt(n) * 0.1);
  assert_close(sn / n, 0.0, 5 / sqrt(n));
  assert_close(sn2 / n, 1.0, 5 * sqrt(2.0 / n));
  assert_close(sp / n, 1.0, 5 / sqrt(n));
  assert_close(sp2 / n - (sp / n) * (sp / n), 1.0, 5 * sqrt(3.0 / n));
  assert_close((double)p0 / n, exp(-1.0), 5 * sqrt(0.2325 / n));
  for (int i = 0; i < 1000; i++) assert_true(ef_rng_below(&r, 7) < 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kat),
      cmocka_unit_test(test_stream_layout),
      cmocka_unit_test(test_streams_independent),
      cmocka_unit_test(test_distributions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
