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

/* Training noise from ensemble members: x[(r M + k) n + i] holds member k
 * of replica r (R >= 1 replicas, M >= 2 members). w[i] = the mean over the
 * replicas of the members' sample variance (1/(M-1)) in bin i: an estimate
 * of one training's variance there. Fixed summation order. */
int ef_stats_within(ef_ctx *ctx, const double *x, size_t R, size_t M, size_t n, double *w);

/* The share of the replica variance s2 (n) that is training noise, pooled
 * over the bins with mask[i] != 0 (mask NULL: all): replica values are means
 * of M members, so their variance is stat + w/M and
 *   phi = sum_i (w_i / M) / mu_i  /  sum_i s2_i / mu_i,  mu_i = max(|mean_i|, 1),
 * every bin weighted by its content as Poisson terms are (so each counts
 * about equally, as in a chi2). Clamped to [0, 1]; NaN when no bin has
 * s2 > 0. */
double ef_stats_training_fraction(const double *w, size_t M, const double *s2,
                                  const double *mean, const unsigned char *mask, size_t n);

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
 * cov gives the correlation, sigma the scale: the chi2 uses sigma_i
 * sigma_j cov_ij / sqrt(cov_ii cov_jj), so a sigma that is the covariance's
 * own diagonal, or a multiple of it (a part of the uncertainty), both work.
 * The condition number is that of the restricted covariance scaled to
 * correlation form, C = cov_ij / sqrt(cov_ii cov_jj) (chi2 is invariant under
 * that scaling; the raw cov's condition number mostly measures how bin
 * sizes differ), in the 1-norm, with ||C^-1||_1 estimated as LAPACK's
 * dpocon does (Hager-Higham, a few solves). coverage is NaN and chi2 0 when
 * no bin is used. Memory: (bins used)^2 doubles on the full path. Not
 * collective. */
int ef_stats_closure(ef_ctx *ctx, const double *mean, const double *cov,
                     const double *sigma, const double *truth, const unsigned char *mask,
                     size_t n, size_t R, ef_closure *out, double *pulls);

#endif
