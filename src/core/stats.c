/* Incomplete gamma by series (x < a + 1) or continued fraction (Numerical
 * Recipes' split), accurate to ~1e-14 relative. */
#include "ensfold/stats.h"

#include <float.h>
#include <math.h>

static double gamma_p_series(double a, double x) {
  double sum = 1.0 / a, term = sum, ap = a;
  for (int n = 0; n < 1000; n++) {
    ap += 1.0;
    term *= x / ap;
    sum += term;
    if (fabs(term) < fabs(sum) * 1e-16) break;
  }
  return sum * exp(-x + a * log(x) - lgamma(a));
}

static double gamma_q_contfrac(double a, double x) {
  const double tiny = DBL_MIN / DBL_EPSILON;
  double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 1000; i++) {
    double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    double del = d * c;
    h *= del;
    if (fabs(del - 1.0) < 1e-16) break;
  }
  return exp(-x + a * log(x) - lgamma(a)) * h;
}

double ef_gamma_q(double a, double x) {
  if (x <= 0.0) return 1.0;
  if (x < a + 1.0) return 1.0 - gamma_p_series(a, x);
  return gamma_q_contfrac(a, x);
}

double ef_chi2_sf(double chi2, double ndf) {
  return ef_gamma_q(0.5 * ndf, 0.5 * chi2);
}
