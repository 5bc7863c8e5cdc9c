/* Losses: value and gradient in one pass, no scratch. */
#include <math.h>
#include <stddef.h>

#include "ensfold/nn_loss.h"

#include "ensfold/error.h"

/* log(1 + exp(-|x|)) + max(x, 0) = softplus(x), without overflow. */
static double softplus(double x) { return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))); }
static double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

int ef_loss_check(ef_ctx *ctx, double loss, const char *what, int step) {
  if (isfinite(loss)) return EF_OK;
  return ef_error_set(ctx, EF_ERR_NUMERIC, "%s: loss not finite at step %d", what, step);
}

float ef_loss_bce_logits(int n, const float *x, const float *y, float y0,
                         const float *w, float *dx) {
  double sum = 0.0, inv_n = 1.0 / n;
  for (int i = 0; i < n; i++) {
    double xi = x[i], yi = y ? y[i] : y0, wi = w ? w[i] : 1.0;
    /* -[y log s(x) + (1-y) log(1-s(x))] = softplus(x) - y x */
    sum += wi * (softplus(xi) - yi * xi);
    if (dx) dx[i] = (float)(wi * (sigmoid(xi) - yi) * inv_n);
  }
  return (float)(sum * inv_n);
}

float ef_loss_gen_nonsat(int n, const float *x, const float *w, float *dx) {
  return ef_loss_bce_logits(n, x, NULL, 1.0f, w, dx);
}

float ef_loss_softmax_xent(int n, int k, const float *x, const float *p,
                           const float *w, float *dx) {
  double sum = 0.0, inv_n = 1.0 / n;
  for (int i = 0; i < n; i++) {
    const float *xi = x + (size_t)i * k, *pi = p + (size_t)i * k; /* (k) */
    double mx = xi[0], z = 0.0, psum = 0.0, dot = 0.0;
    for (int j = 1; j < k; j++) mx = xi[j] > mx ? xi[j] : mx;
    for (int j = 0; j < k; j++) {
      z += exp(xi[j] - mx);
      psum += pi[j];
      dot += pi[j] * (xi[j] - mx);
    }
    double lse = log(z), wi = w ? w[i] : 1.0;
    /* -sum_j p_j (x_j - mx - lse); gradient (psum softmax_j - p_j): targets
     * need not sum to exactly 1 (float rounding in soft labels) */
    sum += wi * (psum * lse - dot);
    if (dx)
      for (int j = 0; j < k; j++)
        dx[(size_t)i * k + j] = (float)(wi * inv_n * (psum * exp(xi[j] - mx - lse) - pi[j]));
  }
  return (float)(sum * inv_n);
}

float ef_loss_mse(int n, int k, const float *x, const float *y,
                  const float *w, float *dx) {
  double sum = 0.0, scale = 1.0 / ((double)n * k);
  for (int i = 0; i < n; i++) {
    double wi = w ? w[i] : 1.0;
    for (int j = 0; j < k; j++) {
      size_t t = (size_t)i * k + j;
      double d = (double)x[t] - y[t];
      sum += wi * d * d;
      if (dx) dx[t] = (float)(2.0 * wi * d * scale);
    }
  }
  return (float)(sum * scale);
}

/* sum_s exp(-r2 / (2 s^2)) and its derivative with respect to r2 */
static double kernel(double r2, int n_sigma, const float *sigmas, double *dk_dr2) {
  double k = 0.0, dk = 0.0;
  for (int s = 0; s < n_sigma; s++) {
    double c = 0.5 / ((double)sigmas[s] * sigmas[s]);
    double e = exp(-c * r2);
    k += e;
    dk -= c * e;
  }
  if (dk_dr2) *dk_dr2 = dk;
  return k;
}

static double dist2(int d, const float *a, const float *b) {
  double r2 = 0.0;
  for (int t = 0; t < d; t++) {
    double u = (double)a[t] - b[t];
    r2 += u * u;
  }
  return r2;
}

float ef_loss_mmd(int n, int m, int d, const float *x, const float *y,
                  int n_sigma, const float *sigmas, float *dx) {
  double kxx = 0.0, kyy = 0.0, kxy = 0.0;
  double cxx = 1.0 / ((double)n * n), cyy = 1.0 / ((double)m * m), cxy = 2.0 / ((double)n * m);
  for (int i = 0; i < n; i++) {
    const float *xi = x + (size_t)i * d;
    double *gi = NULL, gacc[16];
    /* per-row gradient accumulated in double; rows wider than 16 go
     * straight to dx in float */
    if (dx) {
      if (d <= 16) {
        gi = gacc;
        for (int t = 0; t < d; t++) gi[t] = 0.0;
      } else {
        for (int t = 0; t < d; t++) dx[(size_t)i * d + t] = 0.0f;
      }
    }
    for (int j = 0; j < n; j++) {
      const float *xj = x + (size_t)j * d;
      double dk, k = kernel(dist2(d, xi, xj), n_sigma, sigmas, &dk);
      kxx += k;
      if (!dx || j == i) continue;
      /* d/dx_i of k(x_i, x_j) appears twice (pairs (i,j) and (j,i)):
       * 2 dk/dr2 * 2 (x_i - x_j) */
      for (int t = 0; t < d; t++) {
        double gt = cxx * 4.0 * dk * ((double)xi[t] - xj[t]);
        if (gi) gi[t] += gt;
        else dx[(size_t)i * d + t] += (float)gt;
      }
    }
    for (int j = 0; j < m; j++) {
      const float *yj = y + (size_t)j * d;
      double dk, k = kernel(dist2(d, xi, yj), n_sigma, sigmas, &dk);
      kxy += k;
      if (!dx) continue;
      for (int t = 0; t < d; t++) {
        double gt = -cxy * dk * 2.0 * ((double)xi[t] - yj[t]);
        if (gi) gi[t] += gt;
        else dx[(size_t)i * d + t] += (float)gt;
      }
    }
    if (gi)
      for (int t = 0; t < d; t++) dx[(size_t)i * d + t] = (float)gi[t];
  }
  for (int i = 0; i < m; i++)
    for (int j = 0; j < m; j++)
      kyy += kernel(dist2(d, y + (size_t)i * d, y + (size_t)j * d), n_sigma, sigmas, NULL);
  return (float)(cxx * kxx + cyy * kyy - cxy * kxy);
}

double ef_loss_bce_sum(int n, int n_real, const float *x, const float *w, float *dx) {
  double l = 0.0;
  for (int i = 0; i < n; i++) {
    double xi = x[i];
    if (i < n_real) {
      l += w[i] * softplus(-xi);
      dx[i] = (float)(-w[i] * sigmoid(-xi));
    } else {
      l += w[i] * softplus(xi);
      dx[i] = (float)(w[i] * sigmoid(xi));
    }
  }
  return l;
}

double ef_loss_gen_sum(int n, const float *x, const float *w, float *dx) {
  double l = 0.0;
  for (int i = 0; i < n; i++) {
    double xi = x[i], wi = w[i];
    float row = (float)softplus(-xi);
    l += wi * row;
    dx[i] = (float)(-wi * sigmoid(-xi));
  }
  return l;
}

/* The grouped MMD gradient for d-dimensional points with d_cont continuous
 * coordinates (it runs on B x 2B pairs every training step). */
static void mmd_grouped(int n, int m, int d, int d_cont, const float *x, const float *y,
                        int n_sigma, const float *sigmas, float *dx) {
  enum { MAX_CONT = 64, MAX_SIGMA = 8 };
  float a[MAX_SIGMA];
  for (int k = 0; k < n_sigma; k++) a[k] = 1.0f / (2.0f * sigmas[k] * sigmas[k]);
  float cxx = 2.0f / ((float)n * n), cxy = 2.0f / ((float)n * m);
  for (int i = 0; i < n; i++) {
    const float *xi = x + (size_t)i * d;
    float g[MAX_CONT] = {0};
    for (int pass = 0; pass < 2; pass++) {
      const float *pts = pass ? y : x;
      int cnt = pass ? m : n;
      float coef = pass ? -cxy : cxx;
      for (int j = 0; j < cnt; j++) {
        const float *pj = pts + (size_t)j * d;
        int same = 1;
        for (int t = d_cont; t < d; t++) same &= pj[t] == xi[t];
        if (!same) continue;
        float dd[MAX_CONT], r2 = 0;
        for (int t = 0; t < d_cont; t++) {
          dd[t] = xi[t] - pj[t];
          r2 += dd[t] * dd[t];
        }
        /* dk/dxi = -sum_s 2 a_s exp(-a_s r2) (xi - pj); terms below e^-40
         * skipped (expf's underflow path is slow) */
        float wk = 0;
        for (int k = 0; k < n_sigma; k++)
          if (a[k] * r2 < 40.0f) wk += 2 * a[k] * expf(-a[k] * r2);
        wk *= -coef;
        for (int t = 0; t < d_cont; t++) g[t] += wk * dd[t];
      }
    }
    for (int t = 0; t < d_cont; t++) dx[(size_t)i * d + t] = g[t];
  }
}

/* The layout the outer GAN uses, written out: 3 coordinates, 3 labels, 3
 * kernels (the same arithmetic as mmd_grouped, in scalars: the compiler
 * keeps them in registers; measured 6 % faster on a whole small campaign). */
static void mmd_grouped_633(int n, int m, const float *x, const float *y, const float *sigmas,
                            float *dx) {
  float a[3];
  for (int k = 0; k < 3; k++) a[k] = 1.0f / (2.0f * sigmas[k] * sigmas[k]);
  float cxx = 2.0f / ((float)n * n), cxy = 2.0f / ((float)n * m);
  for (int i = 0; i < n; i++) {
    const float *xi = x + (size_t)i * 6;
    float g0 = 0, g1 = 0, g2 = 0;
    for (int pass = 0; pass < 2; pass++) {
      const float *pts = pass ? y : x;
      int cnt = pass ? m : n;
      float coef = pass ? -cxy : cxx;
      for (int j = 0; j < cnt; j++) {
        const float *pj = pts + (size_t)j * 6;
        if (pj[3] != xi[3] || pj[4] != xi[4] || pj[5] != xi[5]) continue;
        float d0 = xi[0] - pj[0], d1 = xi[1] - pj[1], d2 = xi[2] - pj[2];
        float r2 = d0 * d0 + d1 * d1 + d2 * d2;
        float w = 0;
        for (int k = 0; k < 3; k++)
          if (a[k] * r2 < 40.0f) w += 2 * a[k] * expf(-a[k] * r2);
        w *= -coef;
        g0 += w * d0;
        g1 += w * d1;
        g2 += w * d2;
      }
    }
    dx[(size_t)i * 6] = g0;
    dx[(size_t)i * 6 + 1] = g1;
    dx[(size_t)i * 6 + 2] = g2;
  }
}

int ef_loss_mmd_grad_grouped(int n, int m, int d, int d_cont, const float *x, const float *y,
                             int n_sigma, const float *sigmas, float *dx) {
  if (d_cont < 1 || d_cont > 64 || n_sigma < 1 || n_sigma > 8 || d < d_cont) return -1;
  if (d == 6 && d_cont == 3 && n_sigma == 3) mmd_grouped_633(n, m, x, y, sigmas, dx);
  else mmd_grouped(n, m, d, d_cont, x, y, n_sigma, sigmas, dx);
  return 0;
}
