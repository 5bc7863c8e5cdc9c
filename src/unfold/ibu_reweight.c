/* The MC's shape inside a vertex bin, moved towards the unfolded answer
 * (ibu.reweight, docs/methods.md "IBU").
 *
 * A response column R_ji averages the detector over the MC's events in
 * vertex bin i, so it depends on how the MC falls inside the bin: where the
 * efficiency or the smearing changes across a bin that is not narrow
 * against the truth's slope, an MC of another shape gives another column.
 * A constant weight per bin cancels in R (columns are normalised), so only
 * the slope inside a bin matters. Per measured bin i and axis a, the slope
 * of log(unfolded / MC) in bin units from its measured neighbours (central
 * difference, one-sided at the edge of the measured region, 0 without
 * one); each MC event in bin i then gets exp(sum_a g_ia (f_a - 1/2)), f_a
 * its place inside the bin along axis a (0..1 in the axis's own scale),
 * normalised so that the bin keeps its MC weight. */
#include "ensfold/ibu.h"

#include <math.h>
#include <string.h>

/* Place of x inside bin i of axis ax, in the axis's own scale (ACOS:
 * theta, which grows as x falls), 0 at the bin's first edge in index
 * order, clamped to [0, 1]. */
static double place_in_bin(const ef_bin_axis *ax, double x, int i) {
  double f;
  if (ax->periodic) {
    double period = ax->hi - ax->lo;
    x = ax->lo + fmod(x - ax->lo, period);
    if (x < ax->lo) x += period;
  }
  switch (ax->scale) {
  case EF_BIN_ACOS:
    f = acos(x < -1.0 ? -1.0 : (x > 1.0 ? 1.0 : x)) * ax->n / M_PI - i;
    break;
  case EF_BIN_EDGES:
    f = (x - ax->edges[i]) / (ax->edges[i + 1] - ax->edges[i]);
    break;
  default:
    f = (x - ax->lo) / (ax->hi - ax->lo) * ax->n - i;
  }
  return f < 0.0 ? 0.0 : (f > 1.0 ? 1.0 : f);
}

/* The neighbour of bin k one step along axis a (stride: bins per step),
 * -1 past an end of an axis that does not wrap. */
static int neighbour(const ef_binning *b, int k, int a, int stride, int step) {
  const ef_bin_axis *ax = ef_binning_axis(b, a);
  int i = ef_binning_axis_index(b, k, a), j = i + step;
  if (j < 0 || j >= ax->n) {
    if (!ax->periodic || ax->n < 3) return -1;
    j = (j + ax->n) % ax->n;
  }
  return k + (j - i) * stride;
}

/* grad (nv, D): the slope of v (log unfolded / MC, NaN where not a node)
 * per bin unit, at the nodes only (0 elsewhere). */
static void slopes(const ef_binning *b, const double *v, double *grad) {
  int nv = ef_binning_count(b), dim = ef_binning_dim(b);
  memset(grad, 0, (size_t)nv * dim * sizeof *grad);
  int stride = 1;
  for (int a = dim - 1; a >= 0; a--) {
    for (int k = 0; k < nv; k++) {
      if (isnan(v[k])) continue;
      int lo = neighbour(b, k, a, stride, -1), hi = neighbour(b, k, a, stride, +1);
      int has_lo = lo >= 0 && !isnan(v[lo]), has_hi = hi >= 0 && !isnan(v[hi]);
      double g = 0.0;
      if (has_lo && has_hi) g = 0.5 * (v[hi] - v[lo]);
      else if (has_hi) g = v[hi] - v[k];
      else if (has_lo) g = v[k] - v[lo];
      grad[(size_t)k * dim + a] = g;
    }
    stride *= ef_binning_axis(b, a)->n;
  }
}

/* exp(sum_a g_a (f_a - 1/2)) for the vertex x in bin k; the exponent is
 * held to +-10 (a factor e^20 across a bin) so that no weight overflows. */
static double factor(const ef_binning *b, int k, const double *x, const double *g) {
  double s = 0.0;
  for (int a = ef_binning_dim(b) - 1; a >= 0; a--) {
    const ef_bin_axis *ax = ef_binning_axis(b, a);
    int i = k % ax->n;
    k /= ax->n;
    if (g[a] != 0.0) s += g[a] * (place_in_bin(ax, x[a], i) - 0.5);
  }
  return exp(s < -10.0 ? -10.0 : (s > 10.0 ? 10.0 : s));
}

size_t ef_ibu_reweight_work_size(const ef_binning *vertex) {
  size_t nv = (size_t)ef_binning_count(vertex), dim = (size_t)ef_binning_dim(vertex);
  return nv * (3 + dim);
}

void ef_ibu_reweight(const ef_binning *vertex, const ef_events *mc, const double *base,
                     const double *unfolded, const unsigned char *nodes, const int32_t *col,
                     double *work, double *out) {
  int nv = ef_binning_count(vertex), dim = ef_binning_dim(vertex);
  double *m = work;   /* (nv) the MC's base weight per vertex bin */
  double *s = m + nv; /* (nv) the same after the factors */
  double *v = s + nv; /* (nv) log(unfolded / m) at the nodes, NaN elsewhere */
  double *g = v + nv; /* (nv, dim) slopes per bin unit */
  memset(m, 0, 2 * (size_t)nv * sizeof *m);
  for (size_t e = 0; e < mc->n; e++)
    if (col[e] >= 0 && col[e] < nv) m[col[e]] += base ? base[e] : 1.0;
  for (int k = 0; k < nv; k++)
    v[k] = nodes[k] && m[k] > 0.0 && unfolded[k] > 0.0 ? log(unfolded[k] / m[k]) : NAN;
  slopes(vertex, v, g);
  for (size_t e = 0; e < mc->n; e++) {
    double w = base ? base[e] : 1.0;
    int k = col[e];
    if (k >= 0 && k < nv && w > 0.0 && !isnan(v[k])) {
      w *= factor(vertex, k, mc->vertex + e * dim, g + (size_t)k * dim);
      s[k] += w;
    }
    out[e] = w;
  }
  for (size_t e = 0; e < mc->n; e++) {
    int k = col[e];
    if (k >= 0 && k < nv && !isnan(v[k]) && s[k] > 0.0) out[e] *= m[k] / s[k];
  }
}
