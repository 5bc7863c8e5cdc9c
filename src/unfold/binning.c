/* Angular binnings. The index is found by arithmetic and then corrected
 * against the very edges ef_binning_bounds reports, so a point always lies
 * inside the bounds of the bin it is given (no rounding disagreement at the
 * edges, in particular for the theta scheme whose cos edges are cos(k pi/n)). */
#include "ensfold/binning.h"

#include <math.h>
#include <stddef.h>

/* Edge k = 0..n_polar of the polar axis as cos theta*, in index order:
 * decreasing from 1 in the theta scheme, increasing from -1 in the cos
 * scheme. The end edges are exact. */
static double polar_edge(const ef_binning *b, int k) {
  int n = b->n_polar;
  if (b->scheme == EF_BIN_THETA_PHI) {
    if (k <= 0) return 1.0;
    if (k >= n) return -1.0;
    return cos(M_PI * k / n);
  }
  if (k <= 0) return -1.0;
  if (k >= n) return 1.0;
  return -1.0 + 2.0 * k / n;
}

/* Edge k = 0..n_phi of phi*, from -pi to pi (end edges exact). */
static double phi_edge(const ef_binning *b, int k) {
  if (k <= 0) return -M_PI;
  if (k >= b->n_phi) return M_PI;
  return -M_PI + 2.0 * M_PI * k / b->n_phi;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Polar bin of c in [-1, 1]. Theta scheme: bin i holds
 * edge(i + 1) < c <= edge(i) (theta in [lo, hi)), the last bin also c = -1.
 * Cos scheme: edge(i) <= c < edge(i + 1), the last bin also c = 1. */
static int polar_index(const ef_binning *b, double c) {
  int n = b->n_polar;
  if (b->scheme == EF_BIN_THETA_PHI) {
    int i = clampi((int)floor(acos(c) / M_PI * n), 0, n - 1);
    while (i > 0 && c > polar_edge(b, i)) i--;
    while (i < n - 1 && c <= polar_edge(b, i + 1)) i++;
    return i;
  }
  int i = clampi((int)floor((c + 1.0) * 0.5 * n), 0, n - 1);
  while (i > 0 && c < polar_edge(b, i)) i--;
  while (i < n - 1 && c >= polar_edge(b, i + 1)) i++;
  return i;
}

static int phi_index(const ef_binning *b, double f) {
  int n = b->n_phi;
  int j = clampi((int)floor((f + M_PI) / (2.0 * M_PI) * n), 0, n - 1);
  while (j > 0 && f < phi_edge(b, j)) j--;
  while (j < n - 1 && f >= phi_edge(b, j + 1)) j++;
  return j;
}

int ef_binning_index(const ef_binning *b, double cos_t, double phi) {
  if (isnan(cos_t) || isnan(phi)) return -1;
  /* Rounding may push a reconstructed cos a hair outside [-1, 1]; phi
   * outside [-pi, pi] is wrapped (it is an angle). */
  if (cos_t > 1.0) cos_t = 1.0;
  if (cos_t < -1.0) cos_t = -1.0;
  if (phi > M_PI || phi < -M_PI) {
    phi = remainder(phi, 2.0 * M_PI); /* [-pi, pi] */
    if (isnan(phi)) return -1;        /* infinite input */
  }
  return polar_index(b, cos_t) * b->n_phi + phi_index(b, phi);
}

void ef_binning_bounds(const ef_binning *b, int k, double *c_lo, double *c_hi, double *f_lo,
                       double *f_hi) {
  int i = k / b->n_phi, j = k % b->n_phi;
  double e0 = polar_edge(b, i), e1 = polar_edge(b, i + 1);
  *c_lo = e0 < e1 ? e0 : e1;
  *c_hi = e0 < e1 ? e1 : e0;
  *f_lo = phi_edge(b, j);
  *f_hi = phi_edge(b, j + 1);
}

/* 8-point Gauss-Legendre nodes and weights on [-1, 1]. */
static const double gl_x[8] = {-0.9602898564975363, -0.7966664774136267, -0.5255324099163290,
                               -0.1834346424956498, 0.1834346424956498,  0.5255324099163290,
                               0.7966664774136267,  0.9602898564975363};
static const double gl_w[8] = {0.1012285362903763, 0.2223810344533745, 0.3137066458778873,
                               0.3626837833783620, 0.3626837833783620, 0.3137066458778873,
                               0.2223810344533745, 0.1012285362903763};

double ef_binning_integrate(const ef_binning *b, int k,
                            double (*density)(const void *arg, double cos_t, double phi),
                            const void *arg) {
  double c_lo, c_hi, f_lo, f_hi;
  ef_binning_bounds(b, k, &c_lo, &c_hi, &f_lo, &f_hi);
  /* d(cos t) = sin t dt over t in [acos(c_hi), acos(c_lo)]; in the theta
   * scheme take the theta edges directly (no acos(cos()) round trip). */
  double t0, t1;
  if (b->scheme == EF_BIN_THETA_PHI) {
    int i = k / b->n_phi;
    t0 = M_PI * i / b->n_polar;
    t1 = M_PI * (i + 1) / b->n_polar;
  } else {
    t0 = acos(c_hi);
    t1 = acos(c_lo);
  }
  double tm = 0.5 * (t0 + t1), th = 0.5 * (t1 - t0);
  double fm = 0.5 * (f_lo + f_hi), fh = 0.5 * (f_hi - f_lo);
  double s = 0.0;
  for (int a = 0; a < 8; a++) {
    double t = tm + th * gl_x[a], ct = cos(t), st = sin(t), row = 0.0;
    for (int c = 0; c < 8; c++) row += gl_w[c] * density(arg, ct, fm + fh * gl_x[c]);
    s += gl_w[a] * st * row;
  }
  return s * th * fh;
}

void ef_binning_centre_deg(const ef_binning *b, int k, double *theta_deg, double *phi_deg) {
  int i = k / b->n_phi, j = k % b->n_phi;
  if (b->scheme == EF_BIN_THETA_PHI) {
    *theta_deg = (i + 0.5) * 180.0 / b->n_polar;
  } else {
    double c = -1.0 + (2.0 * i + 1.0) / b->n_polar;
    *theta_deg = acos(c) * 180.0 / M_PI;
  }
  *phi_deg = -180.0 + (j + 0.5) * 360.0 / b->n_phi;
}

/* Runs are cyclic in phi*: start from a measured bin of the row, walk once
 * round, and classify each run of unmeasured bins by its length. */
void ef_binning_classify(const ef_binning *b, const unsigned char *measured, unsigned char *cls) {
  int np = b->n_phi;
  for (int r = 0; r < b->n_polar; r++) {
    const unsigned char *m = measured + (size_t)r * np;
    unsigned char *c = cls + (size_t)r * np;
    int start = -1;
    for (int j = 0; j < np && start < 0; j++)
      if (m[j]) start = j;
    for (int j = 0; j < np; j++) c[j] = m[j] ? EF_CLASS_MEASURED : EF_CLASS_OPEN;
    if (start < 0) continue; /* no measured bin in the row */
    for (int q = 1; q <= np;) {
      int j = (start + q) % np;
      if (m[j]) {
        q++;
        continue;
      }
      int len = 0;
      while (!m[(start + q + len) % np]) len++;
      if (4 * len <= np)
        for (int k = 0; k < len; k++) c[(start + q + k) % np] = EF_CLASS_HOLE;
      q += len;
    }
  }
}
