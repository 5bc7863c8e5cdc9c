/* Product binnings over the D observables of an event space: each axis is
 * cut into bins, and bin k of the product is row-major over the axes (the
 * last axis runs fastest): k = (..((i_0 n_1 + i_1) n_2 + i_2)..). Used for
 * the vertex level and, per seen category, the detector level.
 *
 * The pi0 binnings of the config (binning.vertex / binning.detector) are
 * (cos theta*, phi*): the theta-phi scheme cuts cos theta* uniformly in
 * theta* and counts from theta* = 0 (cos theta* = 1), the cos-phi scheme
 * uniformly in cos theta* from -1; phi* bins run over (-pi, pi]. The
 * index of the pi0 binnings is i_polar * n_phi + i_phi. */
#ifndef ENSFOLD_BINNING_H
#define ENSFOLD_BINNING_H

#include <stddef.h>

#include "ensfold/ctx.h"
#include "ensfold/params.h"
#include "ensfold/space.h"

/* theta-phi and cos-phi: the pi0 observables; product: any observables;
 * auto: theta-phi for the pi0 space, product otherwise. */
typedef enum {
  EF_BIN_THETA_PHI = 0,
  EF_BIN_COS_PHI = 1,
  EF_BIN_PRODUCT = 2,
  EF_BIN_AUTO = 3
} ef_bin_scheme;

/* A binning as the config gives it (the binning.vertex / binning.detector keys). */
typedef struct {
  int scheme;         /* ef_bin_scheme */
  int n_polar, n_phi; /* theta-phi, cos-phi */
  ef_real_vec bins;   /* product: bins per observable (or one count for all) */
  ef_real_vec lo, hi; /* product: the range per observable (n = 0: the observable's own) */
} ef_binning_params;

/* How an axis cuts its observable x. */
typedef enum {
  EF_BIN_LINEAR = 0, /* n equal bins of x over [lo, hi], counted from lo */
  EF_BIN_ACOS = 1,   /* n equal bins of acos(x) over [0, pi] (x = cos theta in [-1, 1]),
                        counted from x = 1 (theta = 0) */
  EF_BIN_EDGES = 2,  /* n bins between n + 1 increasing edges, counted from the first */
} ef_bin_scale;

/* One axis. A bin holds its lower edge (ACOS: its theta lower edge) and the
 * last bin also the upper end. periodic: x is wrapped into [lo, hi] first
 * (period hi - lo); clamp: x outside [lo, hi] goes to the end bin (a
 * bounded observable's rounding); otherwise x outside [lo, hi] is in no bin. */
typedef struct {
  ef_bin_scale scale;
  int n;               /* bins, >= 1 */
  double lo, hi;       /* the range of x (ACOS: -1, 1; EDGES: the end edges) */
  int periodic, clamp; /* 0 or 1 */
  const double *edges; /* EDGES: n + 1 increasing values (copied by make); else NULL */
} ef_bin_axis;

typedef struct ef_binning ef_binning;

/* A binning of dim axes (1 <= dim <= EF_SPACE_MAX_DIM). Refused with a
 * message naming what (e.g. "binning.vertex"): n < 1, lo >= hi, edges not
 * increasing, ACOS not on [-1, 1], more than INT32_MAX bins in all. */
int ef_binning_make(ef_ctx *ctx, ef_binning **out, int dim, const ef_bin_axis *axes,
                    const char *what);
/* The binning p gives for the observables of space sp: theta-phi and
 * cos-phi (n_polar x n_phi) for the pi0 space only; product: bins[i]
 * equal bins over [lo[i], hi[i]] per observable (the observable's own
 * range when lo / hi are not given; required for unbounded ones), periodic
 * observables wrapped, bounded ones clamped. Refused with a message naming
 * what (e.g. "binning.vertex") and the key. */
int ef_binning_from_params(ef_ctx *ctx, ef_binning **out, const ef_binning_params *p,
                           const ef_space *sp, const char *what);
int ef_binning_clone(ef_ctx *ctx, ef_binning **out, const ef_binning *b);
void ef_binning_free(ef_binning *b);

int ef_binning_dim(const ef_binning *b);
int ef_binning_count(const ef_binning *b);
/* Axis a (its edges pointer points into b). */
const ef_bin_axis *ef_binning_axis(const ef_binning *b, int a);
/* The same axes, scales, ranges and edges? */
int ef_binning_same(const ef_binning *x, const ef_binning *y);
/* "18 x 36 (theta-phi)": the bins per axis, for messages. */
void ef_binning_describe(const ef_binning *b, char *buf, size_t len);
/* Is b a pi0 binning of the theta-phi scheme (axis 0 ACOS, axis 1 phi*)? */
int ef_binning_is_theta_phi(const ef_binning *b);

/* Edge k = 0..n of axis a in index order (ACOS: decreasing from 1); the end
 * edges are exact. */
double ef_binning_edge(const ef_binning *b, int a, int k);
/* Bin of the point x (dim values), or -1 for a NaN value or one outside an
 * axis that neither wraps nor clamps. */
int ef_binning_index(const ef_binning *b, const double *x);
int ef_binning_index_f(const ef_binning *b, const float *x);
/* Index along axis a of bin k. */
int ef_binning_axis_index(const ef_binning *b, int k, int a);
/* The range of bin k per axis: lo[a] < hi[a] (dim values each). */
void ef_binning_range(const ef_binning *b, int k, double *lo, double *hi);

/* The efficiency maps' grid in a vertex bin (a GAN unit's learned map,
 * and the exact map compared with it where the process knows P(T | v)):
 * side^D points, side the largest g with g^D <= EF_MAP_POINTS (D = 1: 64,
 * D = 2: 8 x 8, D = 3: 4^3, D = 4..6: 2^D, D >= 7: the bin's centre), at
 * the centres of a regular subdivision of the bin. Point gi (axis 0 the
 * slowest) of bin k into x (dim). */
#define EF_MAP_POINTS 64
int ef_binning_map_side(int dim);
void ef_binning_map_point(const ef_binning *b, int k, int gi, int side, double *x);

/* 8-point Gauss-Legendre nodes and weights on [-1, 1] (the bin integrals
 * here and in the processes). */
extern const double ef_gl8_x[8], ef_gl8_w[8];

/* pi0 binnings (dim 2: cos theta*, phi*) only, for the built-in models:
 * the integral over bin k of density(arg, cos_t, phi) d(cos theta*)
 * d(phi*), 8 x 8 Gauss-Legendre in theta* (smooth for densities with a cusp
 * in cos at the poles) and in phi*; and the centre of bin k in degrees. */
double ef_binning_integrate(const ef_binning *b, int k,
                            double (*density)(const void *arg, double cos_t, double phi),
                            const void *arg);
void ef_binning_centre_deg(const ef_binning *b, int k, double *theta_deg, double *phi_deg);

/* Classes of the unmeasured bins (measured: count bins, 1 = measured):
 *   EF_CLASS_MEASURED  a measured bin
 *   EF_CLASS_HOLE      an interior hole: along a periodic axis (the other
 *                      indices fixed), in a run of unmeasured bins with
 *                      measured bins of that line on both sides, the run
 *                      at most a quarter of the line wide (pi0: the coil
 *                      gaps in a polar row), filled by interpolation
 *   EF_CLASS_OPEN      the rest: lines without measured bins (the polar
 *                      caps) and wider runs, reached only by extrapolation */
enum { EF_CLASS_MEASURED = 0, EF_CLASS_HOLE = 1, EF_CLASS_OPEN = 2 };
void ef_binning_classify(const ef_binning *b, const unsigned char *measured, unsigned char *cls);

#endif
