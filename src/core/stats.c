/* Incomplete gamma by series (x < a + 1) or continued fraction (Numerical
 * Recipes' split), accurate to ~1e-14 relative. Replica statistics with
 * plain loops in a fixed order (bit-reproducible whatever BLAS threading),
 * and a hand-written Cholesky (no LAPACK dependency) for the closure. */
#include "ensfold/stats.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

int ef_stats_replicas(ef_ctx *ctx, const double *x, size_t R, size_t n, double *mean, double *cov,
                      double *sigma, double *corr) {
  if (R < 2)
    return ef_error_set(ctx, EF_ERR_INPUT, "replica statistics need R >= 2 replicas, got %zu", R);
  if (n == 0) return EF_OK;
  int rc = EF_OK;
  double *mu = mean ? mean : malloc(n * sizeof *mu);
  /* the upper triangle accumulates in c (n, n); without cov or corr only
   * the diagonal is needed */
  int full = cov != NULL || corr != NULL;
  double *c = cov ? cov : (corr ? corr : NULL);
  double *var = NULL; /* (n) diagonal-only path */
  EF_GOTO_ALLOC(ctx, rc, mu, "replica mean", done);
  for (size_t i = 0; i < n; i++) mu[i] = 0.0;
  for (size_t r = 0; r < R; r++)
    for (size_t i = 0; i < n; i++) mu[i] += x[r * n + i];
  for (size_t i = 0; i < n; i++) mu[i] /= (double)R;

  double norm = 1.0 / (double)(R - 1);
  if (full) {
    memset(c, 0, n * n * sizeof *c);
    /* One rank-1 update per replica: each element sums in replica order. */
    for (size_t r = 0; r < R; r++) {
      const double *xr = x + r * n;
      for (size_t i = 0; i < n; i++) {
        double di = xr[i] - mu[i];
        double *ci = c + i * n;
        for (size_t j = i; j < n; j++) ci[j] += di * (xr[j] - mu[j]);
      }
    }
    for (size_t i = 0; i < n; i++)
      for (size_t j = i; j < n; j++) {
        c[i * n + j] *= norm;
        c[j * n + i] = c[i * n + j];
      }
    if (sigma)
      for (size_t i = 0; i < n; i++) sigma[i] = sqrt(c[i * n + i]);
    if (corr) {
      if (cov) memcpy(corr, cov, n * n * sizeof *corr);
      /* corr holds the covariance now; scale in place (diagonal last) */
      for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
          if (i == j) continue;
          double si = sqrt(corr[i * n + i]), sj = sqrt(corr[j * n + j]);
          corr[i * n + j] = si > 0.0 && sj > 0.0 ? corr[i * n + j] / (si * sj) : 0.0;
        }
      for (size_t i = 0; i < n; i++) corr[i * n + i] = 1.0;
    }
  } else if (sigma) {
    var = calloc(n, sizeof *var);
    EF_GOTO_ALLOC(ctx, rc, var, "replica variances", done);
    for (size_t r = 0; r < R; r++)
      for (size_t i = 0; i < n; i++) {
        double d = x[r * n + i] - mu[i];
        var[i] += d * d;
      }
    for (size_t i = 0; i < n; i++) sigma[i] = sqrt(var[i] * norm);
  }
done:
  if (mu != mean) free(mu);
  free(var);
  return rc;
}

int ef_stats_within(ef_ctx *ctx, const double *x, size_t R, size_t M, size_t n, double *w) {
  if (R < 1 || M < 2)
    return ef_error_set(ctx, EF_ERR_INPUT, "within-replica variance needs R >= 1 replicas and "
                        "M >= 2 members, got %zu and %zu", R, M);
  for (size_t i = 0; i < n; i++) w[i] = 0.0;
  for (size_t r = 0; r < R; r++) {
    const double *xr = x + r * M * n; /* (M, n) */
    for (size_t i = 0; i < n; i++) {
      double mu = 0.0, ss = 0.0;
      for (size_t k = 0; k < M; k++) mu += xr[k * n + i];
      mu /= (double)M;
      for (size_t k = 0; k < M; k++) ss += (xr[k * n + i] - mu) * (xr[k * n + i] - mu);
      w[i] += ss / (double)(M - 1);
    }
  }
  for (size_t i = 0; i < n; i++) w[i] /= (double)R;
  return EF_OK;
}

double ef_stats_training_fraction(const double *w, size_t M, const double *s2,
                                  const double *mean, const unsigned char *mask, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; i++) {
    if ((mask && !mask[i]) || !(s2[i] > 0.0)) continue;
    double mu = fabs(mean[i]) > 1.0 ? fabs(mean[i]) : 1.0;
    num += w[i] / (double)M / mu;
    den += s2[i] / mu;
  }
  if (!(den > 0.0)) return NAN;
  double phi = num / den;
  return phi < 0.0 ? 0.0 : phi > 1.0 ? 1.0 : phi;
}

/* In-place Cholesky A = L L^T of the (m, m) row-major matrix a (lower
 * triangle used and overwritten with L). Row-oriented (Cholesky-
 * Banachiewicz): every inner product runs over two contiguous rows, with
 * four accumulators in a fixed order. Returns 0, or -1 if a pivot is not
 * positive. */
static double dot4(const double *u, const double *v, size_t k) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  size_t q = 0;
  for (; q + 4 <= k; q += 4) {
    s0 += u[q] * v[q];
    s1 += u[q + 1] * v[q + 1];
    s2 += u[q + 2] * v[q + 2];
    s3 += u[q + 3] * v[q + 3];
  }
  for (; q < k; q++) s0 += u[q] * v[q];
  return (s0 + s1) + (s2 + s3);
}

static int cholesky(double *a, size_t m) {
  for (size_t i = 0; i < m; i++) {
    double *li = a + i * m;
    for (size_t j = 0; j < i; j++) {
      const double *lj = a + j * m;
      li[j] = (li[j] - dot4(li, lj, j)) / lj[j];
    }
    double d = li[i] - dot4(li, li, i);
    if (!(d > 0.0)) return -1;
    li[i] = sqrt(d);
  }
  return 0;
}

/* Solve L L^T x = b in place (b -> x). */
static void chol_solve(const double *l, size_t m, double *b) {
  for (size_t i = 0; i < m; i++) b[i] = (b[i] - dot4(l + i * m, b, i)) / l[i * m + i];
  for (size_t i = m; i-- > 0;) {
    double s = b[i];
    for (size_t k = i + 1; k < m; k++) s -= l[k * m + i] * b[k];
    b[i] = s / l[i * m + i];
  }
}

/* Hager-Higham estimate of ||A^-1||_1 for SPD A = L L^T (the LAPACK
 * dpocon/dlacon scheme: a few solves, never the inverse). x, y: (m). */
static double inv_norm1_estimate(const double *l, size_t m, double *x, double *y) {
  double est = 0.0;
  for (size_t i = 0; i < m; i++) x[i] = 1.0 / (double)m;
  for (int it = 0; it < 5; it++) {
    memcpy(y, x, m * sizeof *y);
    chol_solve(l, m, y); /* y = A^-1 x */
    double ny = 0.0;
    for (size_t i = 0; i < m; i++) ny += fabs(y[i]);
    if (it > 0 && ny <= est) break;
    est = ny;
    for (size_t i = 0; i < m; i++) y[i] = y[i] >= 0.0 ? 1.0 : -1.0;
    chol_solve(l, m, y); /* z = A^-T sign(y) */
    size_t jmax = 0;
    double zx = 0.0;
    for (size_t i = 0; i < m; i++) {
      zx += y[i] * x[i];
      if (fabs(y[i]) > fabs(y[jmax])) jmax = i;
    }
    if (fabs(y[jmax]) <= zx) break;
    memset(x, 0, m * sizeof *x);
    x[jmax] = 1.0;
  }
  /* Higham's alternating vector guards against the estimate's blind spots. */
  for (size_t i = 0; i < m; i++)
    x[i] = (i % 2 ? -1.0 : 1.0) * (1.0 + (m > 1 ? (double)i / (double)(m - 1) : 0.0));
  chol_solve(l, m, x);
  double alt = 0.0;
  for (size_t i = 0; i < m; i++) alt += fabs(x[i]);
  alt *= 2.0 / (3.0 * (double)m);
  return alt > est ? alt : est;
}

/* Bins in the mask with sigma 0 still count (issue 17): one whose mean
 * equals the truth is a zero residual, covered; one off the truth is an
 * infinite pull, not covered, and makes chi2 infinite. */
static void closure_zero_sigma(const double *mean, const double *sigma, const double *truth,
                               const unsigned char *mask, size_t n, ef_closure *out,
                               size_t *covered) {
  for (size_t i = 0; i < n; i++) {
    if ((mask && !mask[i]) || sigma[i] > 0.0) continue;
    out->zero_sigma++;
    if (mean[i] == truth[i]) (*covered)++;
    else out->infinite++;
  }
}

int ef_stats_closure(ef_ctx *ctx, const double *mean, const double *cov, const double *sigma,
                     const double *truth, const unsigned char *mask, size_t n, size_t R,
                     ef_closure *out, double *pulls) {
  *out = (ef_closure){0.0, 0, 0, NAN, 0, 0};
  if (pulls)
    for (size_t i = 0; i < n; i++) {
      double d = mean[i] - truth[i];
      pulls[i] = sigma[i] > 0.0 ? d / sigma[i] : d == 0.0 ? 0.0 : d > 0 ? INFINITY : -INFINITY;
      if (isnan(d) || isnan(sigma[i])) pulls[i] = NAN;
    }
  size_t m = 0, covered = 0;
  double chi2_diag = 0.0;
  for (size_t i = 0; i < n; i++) {
    if ((mask && !mask[i]) || !(sigma[i] > 0.0)) continue;
    double d = mean[i] - truth[i];
    chi2_diag += (d / sigma[i]) * (d / sigma[i]);
    covered += fabs(d) <= sigma[i];
    m++;
  }
  closure_zero_sigma(mean, sigma, truth, mask, n, out, &covered);
  size_t all = m + (size_t)out->zero_sigma;
  if (all > (size_t)INT_MAX) return ef_error_set(ctx, EF_ERR_INPUT, "closure: %zu bins", all);
  out->ndf = (int)all;
  if (all == 0) return EF_OK;
  out->coverage = (double)covered / (double)all;
  out->chi2 = out->infinite ? INFINITY : chi2_diag;
  if (out->infinite || m == 0) return EF_OK;
  if (cov == NULL || R < 2 || R - 1 <= m) return EF_OK;

  /* Full covariance: the correlation-scaled matrix C = D^-1 cov D^-1
   * (D = diag sigma) has the same chi2, z^T C^-1 z with z = (mean - truth)
   * / sigma, and a condition number free of the bins' scale spread. */
  int rc = EF_OK;
  size_t *idx = malloc(m * sizeof *idx);
  double *a = malloc(m * m * sizeof *a), *z = malloc(m * sizeof *z), *w = malloc(m * sizeof *w);
  EF_GOTO_ALLOC(ctx, rc, idx, "closure index", done);
  EF_GOTO_ALLOC(ctx, rc, a, "closure covariance", done);
  EF_GOTO_ALLOC(ctx, rc, z, "closure residuals", done);
  EF_GOTO_ALLOC(ctx, rc, w, "closure scratch", done);
  for (size_t i = 0, k = 0; i < n; i++)
    if (!((mask && !mask[i]) || !(sigma[i] > 0.0))) idx[k++] = i;
  double anorm = 0.0; /* ||C||_1 (symmetric: max row sum) */
  for (size_t p = 0; p < m; p++) {
    double row = 0.0;
    for (size_t q = 0; q < m; q++) {
      double v = cov[idx[p] * n + idx[q]] /
                 (sqrt(cov[idx[p] * n + idx[p]]) * sqrt(cov[idx[q] * n + idx[q]]));
      a[p * m + q] = v;
      row += fabs(v);
    }
    if (row > anorm) anorm = row;
  }
  if (cholesky(a, m) != 0) goto done;
  double cond = anorm * inv_norm1_estimate(a, m, z, w);
  if (!(cond < 1e12)) goto done;
  for (size_t p = 0; p < m; p++) z[p] = (mean[idx[p]] - truth[idx[p]]) / sigma[idx[p]];
  for (size_t p = 0; p < m; p++) z[p] = (z[p] - dot4(a + p * m, z, p)) / a[p * m + p]; /* L y = z */
  out->chi2 = dot4(z, z, m);
  out->full_cov = 1;
done:
  free(idx);
  free(a);
  free(z);
  free(w);
  return rc;
}
