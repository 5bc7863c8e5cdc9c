/* Kinematics against the regression table of physics.md section 1, and
 * vertex -> lab -> reconstructed round trips with smearing off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"
#include <math.h>

#include "ensfold/kinematics.h"
#include "ensfold/rng.h"

static void check_row(double e, double w, double pi, double pf, double beta, double gamma) {
  ef_kin k;
  ef_kin_init(&k, e);
  /* The table is printed to 5 decimals: 1e-5 absolute (plus rounding). */
  assert_close(k.w, w, 1e-5);
  assert_close(k.p_i, pi, 1e-5);
  assert_close(k.p_f, pf, 1e-5);
  assert_close(k.beta, beta, 1e-5);
  assert_close(k.gamma, gamma, 1e-4); /* printed to 4 decimals */
}

static void test_regression_table(void **state) {
  (void)state;
  check_row(0.34, 1.23223, 0.25889, 0.22954, 0.26598, 1.0374);
  check_row(1.10, 1.71597, 0.60147, 0.59157, 0.53967, 1.1878);
}

/* Proton lab momentum range and maximum lab angle (physics.md 1). */
static void test_proton_range(void **state) {
  (void)state;
  const double e[2] = {0.34, 1.10}, pmin[2] = {0.028, 0.008}, pmax[2] = {0.505, 1.414};
  const double thmax[2] = {62.5, 79.6};
  for (int j = 0; j < 2; j++) {
    ef_kin k;
    ef_kin_init(&k, e[j]);
    double lo = 1e9, hi = 0, th = 0, pi[4], p[4];
    for (int i = 0; i <= 200000; i++) {
      double c = -1.0 + 2.0 * i / 200000.0;
      ef_kin_vertex_to_lab(&k, c, 0.3, pi, p);
      double pm = sqrt(p[1] * p[1] + p[2] * p[2] + p[3] * p[3]);
      lo = fmin(lo, pm);
      hi = fmax(hi, pm);
      th = fmax(th, atan2(hypot(p[1], p[2]), p[3]) * 180.0 / M_PI);
      /* energy-momentum conservation in the lab */
      assert_close(pi[0] + p[0], e[j] + EF_M_PROTON, 1e-12);
      assert_close(pi[3] + p[3], e[j], 1e-12);
      assert_close(pi[1] + p[1], 0.0, 1e-15);
    }
    assert_close(lo, pmin[j], 1e-3);
    assert_close(hi, pmax[j], 1e-3);
    assert_close(th, thmax[j], 0.1);
  }
}

static void test_reco_roundtrip(void **state) {
  (void)state;
  ef_rng r;
  ef_rng_init(&r, 5, EF_RNG_TEST, 1);
  ef_kin k;
  ef_kin_init(&k, 1.1);
  double worst = 0;
  for (int i = 0; i < 100000; i++) {
    double c = 2 * ef_rng_uniform(&r) - 1, f = M_PI * (2 * ef_rng_uniform(&r) - 1);
    if (fabs(c) > 0.999999) continue; /* phi undefined on the axis */
    double pi[4], p[4], c1, f1, c2, f2;
    ef_kin_vertex_to_lab(&k, c, f, pi, p);
    ef_kin_reco_from_pi0(&k, pi + 1, &c1, &f1);
    ef_kin_reco_from_proton(&k, p + 1, &c2, &f2);
    double d = fmax(fmax(fabs(c1 - c), fabs(ef_wrap_pi(f1 - f))),
                    fmax(fabs(c2 - c), fabs(ef_wrap_pi(f2 - f))));
    worst = fmax(worst, d);
    assert_true(f1 > -M_PI && f1 <= M_PI && f2 > -M_PI && f2 <= M_PI);
    /* through the photons: the sum of the two decay photons is the pi0 */
    double g1[4], g2[4], dir[3] = {0.6, 0.0, 0.8}, m[3];
    ef_kin_pi0_decay(pi, dir, g1, g2);
    for (int j = 0; j < 3; j++) m[j] = g1[j + 1] + g2[j + 1];
    ef_kin_reco_from_pi0(&k, m, &c1, &f1);
    worst = fmax(worst, fmax(fabs(c1 - c), fabs(ef_wrap_pi(f1 - f))));
    /* photons are massless */
    assert_close(g1[0] * g1[0], g1[1] * g1[1] + g1[2] * g1[2] + g1[3] * g1[3], 1e-12);
  }
  assert_true(worst < 1e-9);
}

static void test_wrap(void **state) {
  (void)state;
  assert_close(ef_wrap_pi(-M_PI), M_PI, 0);
  assert_close(ef_wrap_pi(3 * M_PI), M_PI, 1e-12);
  assert_close(ef_wrap_pi(0.5), 0.5, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_regression_table),
      cmocka_unit_test(test_proton_range),
      cmocka_unit_test(test_reco_roundtrip),
      cmocka_unit_test(test_wrap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
