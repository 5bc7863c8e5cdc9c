/* Small statistics: chi-square p-values, and the replica statistics of a
 * campaign (mean, covariance, correlation, closure metrics). */
#ifndef ENSFOLD_STATS_H
#define ENSFOLD_STATS_H

#include <stddef.h>

#include "ensfold/ctx.h"

/* Regularised upper incomplete gamma Q(a, x) = Gamma(a, x) / Gamma(a). */
double ef_gamma_q(double a, double x);
/* P(chi2_ndf >= chi2): the p-value of a chi-square statistic. */
double ef_chi2_sf(double chi2, double ndf);

/* Mean, covariance (1/(R-1)), per-bin sigma and correlation over R >= 2
 * replicas x[r * n + i]. Summation in replica order (bit-reproducible).
 * corr[i][j] = cov / (sigma_i sigma_j), 0 where a sigma is 0 (1 on the
 * diagonal). cov and corr are (n, n); any output may be NULL. */
int ef_stats_replicas(ef_ctx *ctx, const double *x, size_t R, size_t n, double *mean,
                      double *cov, double *sigma, double *corr);

typedef struct {
  double chi2;      /* +inf when a bin has sigma 0 and a non-zero residual */
  int ndf;          /* bins used: every bin of the mask, sigma 0 included */
  int full_cov;     /* 1: full covariance inverse (Cholesky); 0: diagonal */
  double coverage;  /* fraction of used bins with |mean - truth| <= sigma */
  int zero_sigma;   /* bins of the mask with sigma 0 */
  int infinite;     /* ... of them off the truth: infinite pulls */
} ef_closure;

/* Closure of mean against truth over the bins with mask[i] != 0. A bin
 * with sigma 0 is not dropped: it counts in ndf and coverage, covered when
 * its mean equals the truth, otherwise an infinite pull that makes chi2
 * +inf (zero_sigma and infinite count them). Over the bins with sigma > 0
 * the covariance restricted to them is used in full when it is invertible
 * (R - 1 > those bins and Cholesky succeeds with a condition number below
 * 1e12); otherwise the diagonal (sigma^2) is used and full_cov = 0. pulls
 * (n, may be NULL) gets (mean - truth) / sigma: 0 where both are 0, +-inf
 * where only sigma is. mask NULL: every bin; cov NULL: the diagonal.
 * The condition number is that of the restricted covariance scaled to
 * correlation form, C = cov_ij / (sigma_i sigma_j) (chi2 is invariant under
 * that scaling; the raw cov's condition number mostly measures how bin
 * sizes differ), in the 1-norm, with ||C^-1||_1 estimated as LAPACK's
 * dpocon does (Hager-Higham, a few solves). coverage is NaN and chi2 0 when
 * no bin is used. Memory: (bins used)^2 doubles on the full path. Not
 * collective. */
int ef_stats_closure(ef_ctx *ctx, const double *mean, const double *cov,
                     const double *sigma, const double *truth, const unsigned char *mask,
                     size_t n, size_t R, ef_closure *out, double *pulls);

#endif
