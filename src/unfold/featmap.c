/* The networks' view of an event space (include/ensfold/featmap.h). */
#include "ensfold/featmap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/error.h"
#include "ensfold/features.h"
#include "ensfold/kinematics.h"

#define MMD_MAX 64 /* widest MMD point (ef_loss_mmd_grad_grouped's limit) */

struct ef_featmap {
  ef_space space;
  int pi0;                       /* the pi0 space: features.h's physics features */
  ef_kin kin;                    /* pi0: the lab angles' kinematics */
  int D, K, n_seen, seen[EF_SPACE_MAX_CAT];
  int nf, ne, nr, ng, nm;        /* widths (featmap.h) */
  double mu[EF_SPACE_MAX_DIM];   /* unbounded: the frame's mean, sd (the data's reconstructed
                                  * observable where given, else the MC's vertices) */
  double sd[EF_SPACE_MAX_DIM];
  double w[EF_SPACE_MAX_DIM];    /* periodic: 2 pi / period */
  ef_axis gbox[EF_SPACE_MAX_DIM]; /* unbounded: the MC vertices' range, where G's output is
                                  * folded (bounded [-inf, inf] when there is no MC) */
};

/* ---- one observable ------------------------------------------------------ */

/* Fold any real into [-1, 1] (a triangle wave of period 4); *sgn = slope. */
static float fold_unit(float a, float *sgn) {
  float u = fmodf(a + 1.0f, 4.0f);
  if (u < 0) u += 4.0f;
  if (u <= 2.0f) {
    *sgn = 1.0f;
    return u - 1.0f;
  }
  *sgn = -1.0f;
  return 3.0f - u;
}

static float wrap_pi_f(float f) {
  float t = fmodf(f + (float)M_PI, 2.0f * (float)M_PI);
  if (t <= 0) t += 2.0f * (float)M_PI;
  return t - (float)M_PI;
}

/* x into (lo, hi] of a periodic axis. */
static double wrap_into(const ef_axis *a, double x) {
  double p = a->hi - a->lo, t = fmod(x - a->lo, p);
  if (t <= 0) t += p;
  return a->lo + t;
}

static double to_s(const ef_axis *a, double x) { return (2.0 * x - a->lo - a->hi) / (a->hi - a->lo); }
static double from_s(const ef_axis *a, double s) { return (s * (a->hi - a->lo) + a->lo + a->hi) / 2.0; }

/* Features of observable j at x into out (their number); d out / dx into
 * d when not NULL. Bounded: s, 2 s^2 - 1; periodic: cos, sin of a, 2a;
 * unbounded: z. */
static int axis_feats(const ef_featmap *fm, int j, double x, float *out, double *d) {
  const ef_axis *a = &fm->space.axis[j];
  if (a->kind == EF_AXIS_BOUNDED) {
    double s = to_s(a, x), ds = 2.0 / (a->hi - a->lo);
    out[0] = (float)s;
    out[1] = (float)(2 * s * s - 1);
    if (d) {
      d[0] = ds;
      d[1] = 4 * s * ds;
    }
    return 2;
  }
  if (a->kind == EF_AXIS_PERIODIC) {
    double w = fm->w[j], an = w * x;
    double v[4] = {cos(an), sin(an), cos(2 * an), sin(2 * an)};
    double dv[4] = {-w * v[1], w * v[0], -2 * w * v[3], 2 * w * v[2]};
    for (int k = 0; k < 4; k++) {
      out[k] = (float)v[k];
      if (d) d[k] = dv[k];
    }
    return 4;
  }
  out[0] = (float)((x - fm->mu[j]) / fm->sd[j]);
  if (d) d[0] = 1.0 / fm->sd[j];
  return 1;
}

static int axis_width(ef_axis_kind k) {
  return k == EF_AXIS_BOUNDED ? 2 : k == EF_AXIS_PERIODIC ? 4 : 1;
}

/* ---- creation ------------------------------------------------------------ */

/* The unbounded observables' frame from the data's measured events (their
 * file weights), the categories that lose an observable left out of its
 * sums: the data's reconstructed mean and sd, so that the networks centre
 * where the answer lies, whatever the MC. An observable with less than two
 * such events keeps the MC's frame. */
static void data_frame(ef_featmap *fm, const ef_events *data) {
  const int D = fm->D;
  unsigned char lost[EF_SPACE_MAX_CAT * EF_SPACE_MAX_DIM];
  ef_events_lost(data, NULL, data->n, lost, NULL);
  for (int j = 0; j < D; j++) {
    if (fm->space.axis[j].kind != EF_AXIS_UNBOUNDED) continue;
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, n = 0.0;
    for (size_t e = 0; e < data->n; e++) {
      if (!ef_events_measured(data, e) || lost[data->topology[e] * D + j]) continue;
      double w = data->weight ? data->weight[e] : 1.0, x = data->reco[(size_t)D * e + (size_t)j];
      s0 += w;
      s1 += w * x;
      s2 += w * x * x;
      n += 1.0;
    }
    if (n < 2 || !(s0 > 0)) continue;
    double m = s1 / s0, var = s2 / s0 - m * m;
    if (!(var > 1e-24)) continue;
    fm->mu[j] = m;
    fm->sd[j] = sqrt(var);
  }
}

/* The unbounded observables' mean and sd over the MC's vertices, and the
 * MC vertices' range (G's box); then the data's frame where given. */
static void scales(ef_featmap *fm, const ef_events *mc, const ef_events *data) {
  for (int j = 0; j < fm->D; j++) {
    const ef_axis *a = &fm->space.axis[j];
    fm->mu[j] = 0.0;
    fm->sd[j] = 1.0;
    fm->w[j] = a->kind == EF_AXIS_PERIODIC ? 2.0 * M_PI / (a->hi - a->lo) : 1.0;
    fm->gbox[j] = (ef_axis){"", EF_AXIS_BOUNDED, -INFINITY, INFINITY};
    if (a->kind != EF_AXIS_UNBOUNDED || !mc || !mc->vertex) continue;
    double s1 = 0.0, s2 = 0.0, n = 0.0, lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < mc->n; i++) {
      double x = mc->vertex[(size_t)fm->D * i + (size_t)j];
      if (!isfinite(x)) continue;
      s1 += x;
      s2 += x * x;
      n += 1.0;
      lo = fmin(lo, x);
      hi = fmax(hi, x);
    }
    if (n < 2) continue;
    double m = s1 / n, var = s2 / n - m * m;
    fm->mu[j] = m;
    if (var > 1e-24) fm->sd[j] = sqrt(var);
    if (hi > lo) fm->gbox[j] = (ef_axis){"", EF_AXIS_BOUNDED, lo, hi};
  }
  if (data && !fm->pi0) data_frame(fm, data);
}

static void widths(ef_featmap *fm) {
  if (fm->pi0) {
    fm->nf = EF_FEAT_KIN;
    fm->ne = EF_FEAT_EMBED;
    fm->nr = EF_FEAT_REFINE;
    fm->ng = 3;
    fm->nm = 3;
    return;
  }
  int nf = 0, ng = 0, nm = 0;
  for (int j = 0; j < fm->D; j++) {
    ef_axis_kind k = fm->space.axis[j].kind;
    nf += axis_width(k);
    ng += k == EF_AXIS_PERIODIC ? 2 : 1;
    nm += k == EF_AXIS_PERIODIC ? 2 : 1;
  }
  fm->nf = fm->ne = fm->nr = nf;
  fm->ng = ng;
  fm->nm = nm <= MMD_MAX ? nm : 0;
}

int ef_featmap_create(ef_ctx *ctx, ef_featmap **out, const ef_space *s, const ef_events *mc,
                      const ef_events *data, double beam_energy) {
  *out = NULL;
  ef_featmap *fm = calloc(1, sizeof *fm);
  if (!fm) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a feature map");
  fm->space = *s;
  fm->pi0 = ef_space_is_pi0(s);
  fm->D = s->dim;
  fm->K = s->n_cat;
  for (int t = 0; t < s->n_cat; t++)
    if (!s->cat[t].blind) fm->seen[fm->n_seen++] = t;
  if (fm->pi0) {
    if (!(beam_energy > 0)) {
      free(fm);
      return ef_error_set(ctx, EF_ERR_INPUT, "the pi0 space's network features need a beam "
                          "energy > 0 GeV, got %g", beam_energy);
    }
    ef_kin_init(&fm->kin, beam_energy);
  }
  scales(fm, mc, data);
  widths(fm);
  *out = fm;
  return EF_OK;
}

void ef_featmap_destroy(ef_featmap *fm) { free(fm); }

const ef_space *ef_featmap_space(const ef_featmap *fm) { return &fm->space; }
int ef_featmap_dim(const ef_featmap *fm) { return fm->D; }
int ef_featmap_n_cat(const ef_featmap *fm) { return fm->K; }
int ef_featmap_n_seen(const ef_featmap *fm) { return fm->n_seen; }
int ef_featmap_seen(const ef_featmap *fm, int j) { return fm->seen[j]; }
int ef_featmap_blind(const ef_featmap *fm, int t) { return fm->space.cat[t].blind; }
int ef_featmap_n_feat(const ef_featmap *fm) { return fm->nf; }
int ef_featmap_n_embed(const ef_featmap *fm) { return fm->ne; }
int ef_featmap_n_refine(const ef_featmap *fm) { return fm->nr; }
int ef_featmap_n_gen(const ef_featmap *fm) { return fm->ng; }
int ef_featmap_n_mmd(const ef_featmap *fm) { return fm->nm; }

/* ---- features ------------------------------------------------------------ */

void ef_featmap_feat(const ef_featmap *fm, const double *v, float *out, float *jac) {
  if (fm->pi0) {
    ef_features_kin(&fm->kin, v[0], v[1], out, jac);
    return;
  }
  const int D = fm->D;
  if (jac) memset(jac, 0, (size_t)fm->nf * (size_t)D * sizeof *jac);
  double d[4];
  for (int j = 0, o = 0; j < D; j++) {
    int n = axis_feats(fm, j, v[j], out + o, jac ? d : NULL);
    for (int k = 0; jac && k < n; k++) jac[(size_t)(o + k) * (size_t)D + (size_t)j] = (float)d[k];
    o += n;
  }
}

void ef_featmap_embed(const ef_featmap *fm, const float *v, float *e) {
  if (fm->pi0) {
    ef_features_embed(e, v[0], v[1]);
    return;
  }
  for (int j = 0, o = 0; j < fm->D; j++) o += axis_feats(fm, j, v[j], e + o, NULL);
}

void ef_featmap_embed_back(const ef_featmap *fm, const float *de, const float *v, float *dv) {
  if (fm->pi0) {
    ef_features_embed_back(de, v[0], v[1], &dv[0], &dv[1]);
    return;
  }
  float tmp[4];
  double d[4];
  for (int j = 0, o = 0; j < fm->D; j++) {
    int n = axis_feats(fm, j, v[j], tmp, d);
    double g = 0.0;
    for (int k = 0; k < n; k++) g += de[o + k] * d[k];
    dv[j] = (float)g;
    o += n;
  }
}

void ef_featmap_refine(const ef_featmap *fm, const float *v, float *e) {
  if (fm->pi0) {
    ef_features_refine(e, v[0], v[1]);
    return;
  }
  ef_featmap_embed(fm, v, e);
}

/* ---- the generator's output ---------------------------------------------- */

/* x into (lo, hi] of a periodic axis, as a float: a value that rounds to
 * the float of lo is the seam, stored as hi (space.h). */
static float wrap_f(const ef_axis *a, double x) {
  float f = (float)wrap_into(a, x);
  return f <= (float)a->lo ? (float)a->hi : f;
}

/* An unbounded observable j from G's raw output u: mu + sd u, folded into
 * the MC vertices' range (the detector networks know nothing beyond it, and
 * a generator that went there would fold through their extrapolation);
 * *sgn the fold's slope. */
static double gen_unbounded(const ef_featmap *fm, int j, float u, float *sgn) {
  const ef_axis *b = &fm->gbox[j];
  double x = fm->mu[j] + fm->sd[j] * u;
  *sgn = 1.0f;
  if (!isfinite(b->lo)) return x;
  return from_s(b, fold_unit((float)to_s(b, x), sgn));
}

void ef_featmap_gen(const ef_featmap *fm, const float *u, float *v) {
  if (fm->pi0) {
    ef_features_sphere(u, &v[0], &v[1]);
    return;
  }
  for (int j = 0, o = 0; j < fm->D; j++) {
    const ef_axis *a = &fm->space.axis[j];
    if (a->kind == EF_AXIS_BOUNDED) {
      float sg;
      v[j] = (float)from_s(a, fold_unit(u[o++], &sg));
    } else if (a->kind == EF_AXIS_PERIODIC) {
      v[j] = wrap_f(a, atan2(u[o + 1], u[o]) / fm->w[j]);
      o += 2;
    } else {
      float sg;
      v[j] = (float)gen_unbounded(fm, j, u[o++], &sg);
    }
  }
}

void ef_featmap_gen_back(const ef_featmap *fm, const float *u, const float *gv, float *du) {
  if (fm->pi0) {
    ef_features_sphere_back(u, gv[0], gv[1], du);
    return;
  }
  for (int j = 0, o = 0; j < fm->D; j++) {
    const ef_axis *a = &fm->space.axis[j];
    if (a->kind == EF_AXIS_BOUNDED) {
      float sg;
      fold_unit(u[o], &sg);
      du[o++] = (float)(gv[j] * sg * (a->hi - a->lo) / 2.0);
    } else if (a->kind == EF_AXIS_PERIODIC) {
      /* a = atan2(u1, u0); the radius floored so that a point near the
       * origin gives a finite gradient */
      double x = u[o], y = u[o + 1], r2 = x * x + y * y, g = gv[j] / fm->w[j];
      if (r2 < 1e-4) r2 = 1e-4;
      du[o] = (float)(-g * y / r2);
      du[o + 1] = (float)(g * x / r2);
      o += 2;
    } else {
      float sg;
      gen_unbounded(fm, j, u[o], &sg);
      du[o++] = (float)(gv[j] * fm->sd[j] * sg);
    }
  }
}

/* ---- MMD points ---------------------------------------------------------- */

/* An MMD coordinate's divisor: every coordinate spans about [-1, 1] (the
 * kernel widths are the pi0 sphere's): s and cos, sin as they are, z / 3. */
static double mmd_span(const ef_axis *a) { return a->kind == EF_AXIS_UNBOUNDED ? 3.0 : 1.0; }

void ef_featmap_mmd(const ef_featmap *fm, const float *v, float *p) {
  if (fm->pi0) {
    p[0] = v[0];
    p[1] = cosf(v[1]);
    p[2] = sinf(v[1]);
    return;
  }
  for (int j = 0, o = 0; j < fm->D && fm->nm > 0; j++) {
    const ef_axis *a = &fm->space.axis[j];
    if (a->kind == EF_AXIS_PERIODIC) {
      double an = fm->w[j] * v[j];
      p[o++] = (float)cos(an);
      p[o++] = (float)sin(an);
    } else {
      p[o++] = (float)(ef_featmap_scaled(fm, j, v[j]) / mmd_span(a));
    }
  }
}

void ef_featmap_mmd_back(const ef_featmap *fm, const float *v, const float *gp, float *gv) {
  if (fm->pi0) {
    gv[0] = gp[0];
    gv[1] = -sinf(v[1]) * gp[1] + cosf(v[1]) * gp[2];
    return;
  }
  for (int j = 0, o = 0; j < fm->D && fm->nm > 0; j++) {
    const ef_axis *a = &fm->space.axis[j];
    if (a->kind == EF_AXIS_PERIODIC) {
      double w = fm->w[j], an = w * v[j];
      gv[j] = (float)(w * (-sin(an) * gp[o] + cos(an) * gp[o + 1]));
      o += 2;
    } else {
      gv[j] = (float)(gp[o++] / (ef_featmap_unit(fm, j) * mmd_span(a)));
    }
  }
}

float ef_featmap_mmd_scale(const ef_featmap *fm) {
  return fm->pi0 ? 1.0f : (float)sqrt(fm->nm / 3.0);
}

/* ---- residuals and smearing ---------------------------------------------- */

void ef_featmap_residual(const ef_featmap *fm, const double *reco, const double *vertex,
                         double *r) {
  if (fm->pi0) {
    r[0] = reco[0] - vertex[0];
    r[1] = ef_wrap_pi(reco[1] - vertex[1]);
    return;
  }
  for (int j = 0; j < fm->D; j++) {
    const ef_axis *a = &fm->space.axis[j];
    double d = reco[j] - vertex[j];
    if (a->kind == EF_AXIS_PERIODIC) {
      double p = a->hi - a->lo, t = fmod(d + p / 2, p);
      if (t <= 0) t += p;
      d = t - p / 2;
    }
    r[j] = d;
  }
}

void ef_featmap_smear(const ef_featmap *fm, const float *v, const float *sig, const float *o,
                      float *rc, float *sgn) {
  if (fm->pi0) {
    rc[0] = fold_unit(v[0] + sig[0] * o[0], &sgn[0]);
    rc[1] = wrap_pi_f(v[1] + sig[1] * o[1]);
    sgn[1] = 1.0f;
    return;
  }
  for (int j = 0; j < fm->D; j++) {
    const ef_axis *a = &fm->space.axis[j];
    float y = v[j] + sig[j] * o[j];
    sgn[j] = 1.0f;
    if (a->kind == EF_AXIS_BOUNDED) rc[j] = (float)from_s(a, fold_unit((float)to_s(a, y), &sgn[j]));
    else if (a->kind == EF_AXIS_PERIODIC) rc[j] = wrap_f(a, y);
    else rc[j] = y;
  }
}

double ef_featmap_unit(const ef_featmap *fm, int j) {
  if (fm->pi0) return 1.0;
  const ef_axis *a = &fm->space.axis[j];
  return a->kind == EF_AXIS_BOUNDED    ? (a->hi - a->lo) / 2.0
         : a->kind == EF_AXIS_PERIODIC ? 1.0 / fm->w[j]
                                       : fm->sd[j];
}

double ef_featmap_scaled(const ef_featmap *fm, int j, double x) {
  const ef_axis *a = &fm->space.axis[j];
  return a->kind == EF_AXIS_BOUNDED    ? to_s(a, x)
         : a->kind == EF_AXIS_PERIODIC ? fm->w[j] * x
                                       : (x - fm->mu[j]) / fm->sd[j];
}

/* ---- polar bands --------------------------------------------------------- */

int ef_featmap_has_bands(const ef_featmap *fm) { return fm->pi0; }

int ef_featmap_band(const ef_featmap *fm, const float *v, int n_bands) {
  if (!fm->pi0) return 0;
  int b = (int)(acos(fmin(1.0, fmax(-1.0, (double)v[0]))) / M_PI * n_bands);
  return b < n_bands ? b : n_bands - 1;
}
