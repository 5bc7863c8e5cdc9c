/* Product binnings. An axis's index is found by arithmetic and then
 * corrected against the very edges ef_binning_edge reports, so a point
 * always lies inside the range of the bin it is given (no rounding
 * disagreement at the edges, in particular for ACOS axes whose edges are
 * cos(k pi / n)). */
#include "ensfold/binning.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/error.h"
#include "ensfold/space.h"

struct ef_binning {
  int dim, count;
  ef_bin_axis ax[EF_SPACE_MAX_DIM];
  size_t n_store;
  double store[]; /* (sum of n + 1 over the EDGES axes) their edges, axis by axis */
};

static int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

static double axis_edge(const ef_bin_axis *x, int k) {
  int n = x->n;
  switch (x->scale) {
  case EF_BIN_ACOS:
    if (k <= 0) return 1.0;
    if (k >= n) return -1.0;
    return cos(M_PI * k / n);
  case EF_BIN_EDGES:
    return x->edges[clampi(k, 0, n)];
  default:
    if (k <= 0) return x->lo;
    if (k >= n) return x->hi;
    return x->lo + (x->hi - x->lo) * k / n;
  }
}

double ef_binning_edge(const ef_binning *b, int a, int k) { return axis_edge(&b->ax[a], k); }

/* First guess of the bin of v (in range), before the correction. */
static int axis_guess(const ef_bin_axis *x, double v) {
  int n = x->n;
  if (x->scale == EF_BIN_ACOS) return clampi((int)floor(acos(v) / M_PI * n), 0, n - 1);
  if (x->scale == EF_BIN_LINEAR)
    return clampi((int)floor((v - x->lo) / (x->hi - x->lo) * n), 0, n - 1);
  int lo = 0, hi = n; /* EDGES: edges[lo] <= v < edges[hi] */
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    if (v >= x->edges[mid]) lo = mid;
    else hi = mid;
  }
  return lo;
}

/* Bin of v along axis x, or -1. ACOS: bin i holds edge(i + 1) < v <=
 * edge(i) (theta in [lo, hi)), the last bin also v = -1. Else edge(i) <= v
 * < edge(i + 1), the last bin also v = hi. */
static int axis_index(const ef_bin_axis *x, double v) {
  if (isnan(v)) return -1;
  if (x->periodic && (v > x->hi || v < x->lo)) {
    double c = 0.5 * (x->lo + x->hi);
    v = remainder(v - c, x->hi - x->lo) + c; /* [lo, hi], up to rounding */
    if (isnan(v)) return -1;                 /* infinite input */
    v = v < x->lo ? x->lo : (v > x->hi ? x->hi : v);
  }
  if (v > x->hi || v < x->lo) {
    if (!x->clamp) return -1;
    v = v > x->hi ? x->hi : x->lo;
  }
  int n = x->n, i = axis_guess(x, v);
  if (x->scale == EF_BIN_ACOS) {
    while (i > 0 && v > axis_edge(x, i)) i--;
    while (i < n - 1 && v <= axis_edge(x, i + 1)) i++;
    return i;
  }
  while (i > 0 && v < axis_edge(x, i)) i--;
  while (i < n - 1 && v >= axis_edge(x, i + 1)) i++;
  return i;
}

int ef_binning_index(const ef_binning *b, const double *x) {
  for (int a = 0; a < b->dim; a++)
    if (isnan(x[a])) return -1;
  int k = 0;
  for (int a = 0; a < b->dim; a++) {
    int i = axis_index(&b->ax[a], x[a]);
    if (i < 0) return -1;
    k = k * b->ax[a].n + i;
  }
  return k;
}

int ef_binning_index_f(const ef_binning *b, const float *x) {
  double v[EF_SPACE_MAX_DIM];
  for (int a = 0; a < b->dim; a++) v[a] = x[a];
  return ef_binning_index(b, v);
}

int ef_binning_axis_index(const ef_binning *b, int k, int a) {
  for (int q = b->dim - 1; q > a; q--) k /= b->ax[q].n;
  return k % b->ax[a].n;
}

void ef_binning_range(const ef_binning *b, int k, double *lo, double *hi) {
  for (int a = b->dim - 1; a >= 0; a--) {
    int n = b->ax[a].n, i = k % n;
    k /= n;
    double e0 = axis_edge(&b->ax[a], i), e1 = axis_edge(&b->ax[a], i + 1);
    lo[a] = e0 < e1 ? e0 : e1;
    hi[a] = e0 < e1 ? e1 : e0;
  }
}

int ef_binning_map_side(int dim) {
  int g = 1;
  for (;;) {
    long long p = 1;
    for (int j = 0; j < dim; j++) p *= g + 1;
    if (p > EF_MAP_POINTS) return g;
    g++;
  }
}

void ef_binning_map_point(const ef_binning *b, int k, int gi, int side, double *x) {
  double lo[EF_SPACE_MAX_DIM], hi[EF_SPACE_MAX_DIM];
  ef_binning_range(b, k, lo, hi);
  for (int j = b->dim - 1; j >= 0; j--) {
    x[j] = lo[j] + ((gi % side) + 0.5) * (hi[j] - lo[j]) / side;
    gi /= side;
  }
}

int ef_binning_dim(const ef_binning *b) { return b->dim; }
int ef_binning_count(const ef_binning *b) { return b->count; }
const ef_bin_axis *ef_binning_axis(const ef_binning *b, int a) { return &b->ax[a]; }

int ef_binning_is_theta_phi(const ef_binning *b) {
  return b->dim == 2 && b->ax[0].scale == EF_BIN_ACOS && b->ax[1].periodic;
}

static int axis_check(ef_ctx *ctx, const ef_bin_axis *x, int a, const char *what) {
  if (x->n < 1)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: axis %d has %d bins (at least 1)", what, a, x->n);
  if (x->scale == EF_BIN_EDGES) {
    if (!x->edges)
      return ef_error_set(ctx, EF_ERR_INPUT, "%s: axis %d has no edges", what, a);
    for (int k = 0; k <= x->n; k++)
      if (!isfinite(x->edges[k]) || (k > 0 && !(x->edges[k] > x->edges[k - 1])))
        return ef_error_set(ctx, EF_ERR_INPUT,
                            "%s: axis %d's edges must be finite and increasing (edge %d is %g)",
                            what, a, k, x->edges[k]);
    if (x->lo != x->edges[0] || x->hi != x->edges[x->n])
      return ef_error_set(ctx, EF_ERR_INTERNAL, "%s: axis %d's range is not its end edges",
                          what, a);
    return EF_OK;
  }
  if (!(isfinite(x->lo) && isfinite(x->hi) && x->lo < x->hi))
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: axis %d's range [%g, %g] is not finite and lo < hi",
                        what, a, x->lo, x->hi);
  if (x->scale == EF_BIN_ACOS && (x->lo != -1.0 || x->hi != 1.0))
    return ef_error_set(ctx, EF_ERR_INTERNAL, "%s: axis %d is binned in acos but not on [-1, 1]",
                        what, a);
  return EF_OK;
}

int ef_binning_make(ef_ctx *ctx, ef_binning **out, int dim, const ef_bin_axis *axes,
                    const char *what) {
  *out = NULL;
  if (dim < 1 || dim > EF_SPACE_MAX_DIM)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: %d axes (1 to %d)", what, dim, EF_SPACE_MAX_DIM);
  size_t n_store = 0;
  long long count = 1;
  for (int a = 0; a < dim; a++) {
    EF_CHECK(axis_check(ctx, &axes[a], a, what));
    if (axes[a].scale == EF_BIN_EDGES) n_store += (size_t)axes[a].n + 1;
    count *= axes[a].n;
    if (count > INT32_MAX)
      return ef_error_set(ctx, EF_ERR_INPUT, "%s: more than %d bins in all (axes 0..%d)", what,
                          INT32_MAX, a);
  }
  ef_binning *b = calloc(1, sizeof *b + n_store * sizeof(double));
  if (!b) return ef_error_set(ctx, EF_ERR_NOMEM, "%s: out of memory", what);
  b->dim = dim;
  b->count = (int)count;
  b->n_store = n_store;
  size_t off = 0;
  for (int a = 0; a < dim; a++) {
    b->ax[a] = axes[a];
    if (axes[a].scale != EF_BIN_EDGES) {
      b->ax[a].edges = NULL;
      continue;
    }
    memcpy(b->store + off, axes[a].edges, ((size_t)axes[a].n + 1) * sizeof(double));
    b->ax[a].edges = b->store + off;
    off += (size_t)axes[a].n + 1;
  }
  *out = b;
  return EF_OK;
}

/* Axis i of a product binning: bins[i] over the observable's range or lo / hi. */
static int product_axis(ef_ctx *ctx, const ef_binning_params *p, const ef_axis *o, int i,
                        const char *what, ef_bin_axis *ax) {
  double n = ef_real_vec_at(&p->bins, i);
  if (n != floor(n) || n < 1)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s.bins: %g bins for observable %s (a whole number >= 1)",
                        what, n, o->name);
  double lo = p->lo.n ? ef_real_vec_at(&p->lo, i) : o->lo;
  double hi = p->hi.n ? ef_real_vec_at(&p->hi, i) : o->hi;
  if (!isfinite(lo) || !isfinite(hi))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s.lo / %s.hi: observable %s is %s: give its binning range (one number "
                        "or one per observable each)", what, what, o->name,
                        ef_axis_kind_name(o->kind));
  if (!(lo < hi))
    return ef_error_set(ctx, EF_ERR_INPUT, "%s.lo / %s.hi: [%g, %g] for observable %s (lo < hi)",
                        what, what, lo, hi, o->name);
  int own = lo == o->lo && hi == o->hi;
  *ax = (ef_bin_axis){EF_BIN_LINEAR, (int)n, lo, hi, o->kind == EF_AXIS_PERIODIC && own,
                      o->kind == EF_AXIS_BOUNDED && own, NULL};
  return EF_OK;
}

static int product(ef_ctx *ctx, ef_binning **out, const ef_binning_params *p, const ef_space *sp,
                   const char *what) {
  const ef_real_vec *v[3] = {&p->bins, &p->lo, &p->hi};
  static const char *key[3] = {"bins", "lo", "hi"};
  for (int q = 0; q < 3; q++)
    if (v[q]->n > 1 && v[q]->n != sp->dim)
      return ef_error_set(ctx, EF_ERR_INPUT,
                          "%s.%s: %d numbers for %d observables (give one, or one per observable)",
                          what, key[q], v[q]->n, sp->dim);
  if (p->bins.n < 1)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s.bins: not given", what);
  ef_bin_axis ax[EF_SPACE_MAX_DIM];
  for (int i = 0; i < sp->dim; i++) EF_CHECK(product_axis(ctx, p, &sp->axis[i], i, what, &ax[i]));
  return ef_binning_make(ctx, out, sp->dim, ax, what);
}

int ef_binning_from_params(ef_ctx *ctx, ef_binning **out, const ef_binning_params *p,
                           const ef_space *sp, const char *what) {
  *out = NULL;
  int pi0 = ef_space_is_pi0(sp), scheme = p->scheme;
  if (scheme == EF_BIN_AUTO) scheme = pi0 ? EF_BIN_THETA_PHI : EF_BIN_PRODUCT;
  if (scheme == EF_BIN_PRODUCT) return product(ctx, out, p, sp, what);
  if (scheme != EF_BIN_THETA_PHI && scheme != EF_BIN_COS_PHI)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s.scheme: %d is no scheme", what, p->scheme);
  if (!pi0)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s.scheme: %s bins the pi0 observables (cos theta*, phi*); these events "
                        "have %d observables (%s, ...): use scheme product (or auto)", what,
                        scheme == EF_BIN_THETA_PHI ? "theta-phi" : "cos-phi", sp->dim,
                        sp->axis[0].name);
  ef_bin_axis ax[2] = {
      {scheme == EF_BIN_THETA_PHI ? EF_BIN_ACOS : EF_BIN_LINEAR, p->n_polar, -1.0, 1.0, 0, 1,
       NULL},
      {EF_BIN_LINEAR, p->n_phi, -M_PI, M_PI, 1, 0, NULL},
  };
  return ef_binning_make(ctx, out, 2, ax, what);
}

int ef_binning_clone(ef_ctx *ctx, ef_binning **out, const ef_binning *b) {
  return ef_binning_make(ctx, out, b->dim, b->ax, "binning copy");
}

void ef_binning_free(ef_binning *b) { free(b); }

int ef_binning_same(const ef_binning *x, const ef_binning *y) {
  if (x->dim != y->dim) return 0;
  for (int a = 0; a < x->dim; a++) {
    const ef_bin_axis *p = &x->ax[a], *q = &y->ax[a];
    if (p->scale != q->scale || p->n != q->n || p->lo != q->lo || p->hi != q->hi ||
        p->periodic != q->periodic || p->clamp != q->clamp)
      return 0;
    for (int k = 0; p->scale == EF_BIN_EDGES && k <= p->n; k++)
      if (p->edges[k] != q->edges[k]) return 0;
  }
  return 1;
}

void ef_binning_describe(const ef_binning *b, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (int a = 0; a < b->dim && used < len; a++) {
    int w = snprintf(buf + used, len - used, "%s%d", a ? " x " : "", b->ax[a].n);
    if (w < 0) return;
    used += (size_t)w;
  }
  if (used < len && b->dim == 2 && b->ax[1].periodic)
    snprintf(buf + used, len - used, " (%s)",
             b->ax[0].scale == EF_BIN_ACOS ? "theta-phi" : "cos-phi");
}

/* 8-point Gauss-Legendre nodes and weights on [-1, 1]. */
const double ef_gl8_x[8] = {-0.9602898564975363, -0.7966664774136267, -0.5255324099163290,
                               -0.1834346424956498, 0.1834346424956498,  0.5255324099163290,
                               0.7966664774136267,  0.9602898564975363};
const double ef_gl8_w[8] = {0.1012285362903763, 0.2223810344533745, 0.3137066458778873,
                               0.3626837833783620, 0.3626837833783620, 0.3137066458778873,
                               0.2223810344533745, 0.1012285362903763};

double ef_binning_integrate(const ef_binning *b, int k,
                            double (*density)(const void *arg, double cos_t, double phi),
                            const void *arg) {
  double lo[2], hi[2];
  ef_binning_range(b, k, lo, hi);
  /* d(cos t) = sin t dt over t in [acos(c_hi), acos(c_lo)]; for an ACOS
   * axis take the theta edges directly (no acos(cos()) round trip). */
  double t0, t1;
  if (b->ax[0].scale == EF_BIN_ACOS) {
    int i = ef_binning_axis_index(b, k, 0);
    t0 = M_PI * i / b->ax[0].n;
    t1 = M_PI * (i + 1) / b->ax[0].n;
  } else {
    t0 = acos(hi[0]);
    t1 = acos(lo[0]);
  }
  double tm = 0.5 * (t0 + t1), th = 0.5 * (t1 - t0);
  double fm = 0.5 * (lo[1] + hi[1]), fh = 0.5 * (hi[1] - lo[1]);
  double s = 0.0;
  for (int a = 0; a < 8; a++) {
    double t = tm + th * ef_gl8_x[a], ct = cos(t), st = sin(t), row = 0.0;
    for (int c = 0; c < 8; c++) row += ef_gl8_w[c] * density(arg, ct, fm + fh * ef_gl8_x[c]);
    s += ef_gl8_w[a] * st * row;
  }
  return s * th * fh;
}

void ef_binning_centre_deg(const ef_binning *b, int k, double *theta_deg, double *phi_deg) {
  int i = ef_binning_axis_index(b, k, 0), j = ef_binning_axis_index(b, k, 1);
  if (b->ax[0].scale == EF_BIN_ACOS) {
    *theta_deg = (i + 0.5) * 180.0 / b->ax[0].n;
  } else {
    double c = -1.0 + (2.0 * i + 1.0) / b->ax[0].n;
    *theta_deg = acos(c) * 180.0 / M_PI;
  }
  *phi_deg = -180.0 + (j + 0.5) * 360.0 / b->ax[1].n;
}

/* One periodic line of n bins at k0, k0 + s, ...: start from a measured
 * bin, walk once round, and mark each run of unmeasured bins at most a
 * quarter of the line long a hole. */
static void classify_line(const unsigned char *m, unsigned char *c, size_t k0, size_t s, int n) {
  int start = -1;
  for (int j = 0; j < n && start < 0; j++)
    if (m[k0 + (size_t)j * s]) start = j;
  if (start < 0) return; /* no measured bin in the line */
  for (int q = 1; q <= n;) {
    if (m[k0 + (size_t)((start + q) % n) * s]) {
      q++;
      continue;
    }
    int len = 0;
    while (!m[k0 + (size_t)((start + q + len) % n) * s]) len++;
    if (4 * len <= n)
      for (int j = 0; j < len; j++) c[k0 + (size_t)((start + q + j) % n) * s] = EF_CLASS_HOLE;
    q += len;
  }
}

void ef_binning_classify(const ef_binning *b, const unsigned char *measured, unsigned char *cls) {
  for (int k = 0; k < b->count; k++) cls[k] = measured[k] ? EF_CLASS_MEASURED : EF_CLASS_OPEN;
  size_t s = (size_t)b->count;
  for (int a = 0; a < b->dim; a++) {
    int n = b->ax[a].n;
    s /= (size_t)n; /* the stride of axis a */
    if (!b->ax[a].periodic) continue;
    for (int k = 0; k < b->count; k++)
      if (ef_binning_axis_index(b, k, a) == 0) classify_line(measured, cls, (size_t)k, s, n);
  }
}
