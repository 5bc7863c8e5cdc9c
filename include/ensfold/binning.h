/* Two-dimensional angular binnings over (theta* or cos theta*) x phi*, used
 * for the vertex level and, per measured topology, the detector level.
 * Bin index = i_polar * n_phi + i_phi; i_polar counts from theta* = 0
 * (cos theta* = 1) in the theta scheme and from cos theta* = -1 in the cos
 * scheme; phi* bins run from -pi to pi. */
#ifndef ENSFOLD_BINNING_H
#define ENSFOLD_BINNING_H

typedef enum { EF_BIN_THETA_PHI = 0, EF_BIN_COS_PHI = 1 } ef_bin_scheme;

typedef struct {
  ef_bin_scheme scheme;
  int n_polar; /* bins in theta* (uniform in degrees) or in cos theta* */
  int n_phi;   /* bins in phi* over (-pi, pi] */
} ef_binning;

/* A binning as the config gives it (the binning.vertex / binning.detector keys). */
typedef struct {
  int scheme;  /* ef_bin_scheme: 0 theta-phi, 1 cos-phi */
  int n_polar, n_phi;
} ef_binning_params;

static inline int ef_binning_count(const ef_binning *b) { return b->n_polar * b->n_phi; }

/* Bin of (cos theta*, phi*), or -1 for NaN angles. Values on the upper edge
 * (cos = 1 in the cos scheme, phi = pi) go to the last bin. */
int ef_binning_index(const ef_binning *b, double cos_t, double phi);

/* Edges of bin k: polar range as cos theta* [c_lo, c_hi] and phi [f_lo, f_hi]. */
void ef_binning_bounds(const ef_binning *b, int k, double *c_lo, double *c_hi,
                       double *f_lo, double *f_hi);

/* Integral over bin k of density(arg, cos_t, phi) d(cos theta*) d(phi*),
 * 8 x 8 Gauss-Legendre in theta* (smooth for densities with a cusp in cos
 * at the poles) and in phi*. */
double ef_binning_integrate(const ef_binning *b, int k,
                            double (*density)(const void *arg, double cos_t, double phi),
                            const void *arg);

/* Centre of bin k (theta* in degrees and phi* in degrees), for plots. */
void ef_binning_centre_deg(const ef_binning *b, int k, double *theta_deg, double *phi_deg);

/* Classes of the unmeasured bins (measured: n bins, 1 = measured):
 *   EF_CLASS_MEASURED  a measured bin
 *   EF_CLASS_HOLE      an interior hole: in a run of unmeasured bins of one
 *                      polar row with measured bins of that row on both
 *                      sides in phi*, the run at most a quarter of the row
 *                      (90 deg) wide: the coil gaps, filled by interpolation
 *   EF_CLASS_OPEN      the rest: rows without measured bins (the polar
 *                      caps) and wider runs, reached only by extrapolation */
enum { EF_CLASS_MEASURED = 0, EF_CLASS_HOLE = 1, EF_CLASS_OPEN = 2 };
void ef_binning_classify(const ef_binning *b, const unsigned char *measured, unsigned char *cls);

#endif
