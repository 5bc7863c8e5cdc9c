/* Reference p-values from scipy.stats.chi2.sf (SciPy 1.10.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"

#include "ensfold/stats.h"

static void test_chi2_sf(void **state) {
  (void)state;
  assert_close(ef_chi2_sf(3.84145882069412, 1), 0.05, 1e-10);
  assert_close(ef_chi2_sf(359.0, 359), 0.49007410084295355, 1e-10);
  assert_close(ef_chi2_sf(10.0, 2), 0.006737946999085467, 1e-12);
  assert_close(ef_chi2_sf(0.0, 5), 1.0, 0);
  assert_close(ef_chi2_sf(450.0, 359), 0.0007630186393720992, 1e-12);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_chi2_sf)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
