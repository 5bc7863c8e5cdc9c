/* Shared test helpers. cmocka 1.1's assert_float_equal compares in single
 * precision, so double-precision checks go through assert_close. */
#ifndef EF_TEST_H
#define EF_TEST_H

#include <math.h>

#define assert_close(a, b, tol)                                                   \
  do {                                                                            \
    double ef_a_ = (double)(a), ef_b_ = (double)(b), ef_t_ = (double)(tol);       \
    if (!(fabs(ef_a_ - ef_b_) <= ef_t_))                                          \
      fail_msg("%s = %.17g, expected %s = %.17g within %g (off by %.3g)", #a,     \
               ef_a_, #b, ef_b_, ef_t_, fabs(ef_a_ - ef_b_));                     \
  } while (0)

#endif
