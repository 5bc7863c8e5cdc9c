/* The networks' view of an event space (docs/methods.md, "Network inputs"):
 * what the ML methods feed their networks for a point of D observables, how
 * a generator's raw output becomes a point inside the observables' ranges,
 * and how a detector network's residual becomes a reconstructed point.
 *
 * The pi0 space keeps its physics features (features.h: lab polar angles,
 * sector and coil harmonics, a generator on the sphere). Any other space
 * gets features from its observables' declared kinds, each observable x:
 *   bounded [lo, hi]  s = (2 x - lo - hi) / (hi - lo) in [-1, 1]; network
 *                     inputs s and 2 s^2 - 1; a raw output or a smeared
 *                     point is folded back into the range (a triangle
 *                     wave: no clipping, no pile-up)
 *   periodic          a = 2 pi x / (hi - lo); inputs cos a, sin a, cos 2a,
 *                     sin 2a; a raw output is a pair whose direction is a;
 *                     smeared points wrap
 *   unbounded         z = (x - mu) / sd, the frame: the data's measured
 *                     reconstructions' mean and standard deviation where
 *                     the data are given (the GAN methods), else the MC
 *                     vertices'; input z; a raw output is z, folded into
 *                     the MC vertices' range (the detector networks know
 *                     nothing beyond it).
 * Categories: the space's seen ones in order are the networks' measured
 * channels (pi0: T1..T3); the blind ones' probabilities add up to the
 * probability of not being seen.
 *
 * Points are float (n, D) in the observables' own units unless said.
 * Pure functions after creation: nothing allocates, nothing is collective. */
#ifndef ENSFOLD_FEATMAP_H
#define ENSFOLD_FEATMAP_H

#include "ensfold/ctx.h"
#include "ensfold/events.h"
#include "ensfold/space.h"

typedef struct ef_featmap ef_featmap;

/* For space s; mc (its vertices: the range G's unbounded outputs are folded
 * into, and the unbounded observables' frame, mean and sd; NULL: no range,
 * mean 0, sd 1), data (may be NULL: their measured reconstructions give the
 * frame instead, the categories that lose an observable left out) and
 * beam_energy (GeV: the pi0 space's lab angles). */
int ef_featmap_create(ef_ctx *ctx, ef_featmap **out, const ef_space *s, const ef_events *mc,
                      const ef_events *data, double beam_energy);
void ef_featmap_destroy(ef_featmap *fm); /* accepts NULL */

const ef_space *ef_featmap_space(const ef_featmap *fm);
int ef_featmap_dim(const ef_featmap *fm);
int ef_featmap_n_cat(const ef_featmap *fm);
/* The seen categories: their number, and the j-th one's category index. */
int ef_featmap_n_seen(const ef_featmap *fm);
int ef_featmap_seen(const ef_featmap *fm, int j);
/* Is category t blind? */
int ef_featmap_blind(const ef_featmap *fm, int t);

/* Widths: detector-network features, discriminator embedding,
 * refinement-classifier features, a generator's raw output, an MMD point's
 * coordinates (0: no MMD term for this space: wider than 64). */
int ef_featmap_n_feat(const ef_featmap *fm);
int ef_featmap_n_embed(const ef_featmap *fm);
int ef_featmap_n_refine(const ef_featmap *fm);
int ef_featmap_n_gen(const ef_featmap *fm);
int ef_featmap_n_mmd(const ef_featmap *fm);

/* Detector-network features of a vertex v (D, double: the MC's own
 * values): out (n_feat); jac (n_feat, D) = d out / d v, or NULL. */
void ef_featmap_feat(const ef_featmap *fm, const double *v, float *out, float *jac);
/* Discriminator embedding of v into e (n_embed); dv (D) from a loss's
 * gradient de (n_embed) wrt the embedding. */
void ef_featmap_embed(const ef_featmap *fm, const float *v, float *e);
void ef_featmap_embed_back(const ef_featmap *fm, const float *de, const float *v, float *dv);
/* Refinement-classifier features of v into e (n_refine). */
void ef_featmap_refine(const ef_featmap *fm, const float *v, float *e);
/* A generator's raw output u (n_gen) -> v (D) inside the ranges; du
 * (n_gen) from the gradient gv (D) wrt v. */
void ef_featmap_gen(const ef_featmap *fm, const float *u, float *v);
void ef_featmap_gen_back(const ef_featmap *fm, const float *u, const float *gv, float *du);
/* An MMD point of v into p (n_mmd): per observable s, (cos a, sin a), or
 * z / 3 (every coordinate spans about [-1, 1], as pi0's do); gv (D) from
 * the gradient gp wrt p. */
void ef_featmap_mmd(const ef_featmap *fm, const float *v, float *p);
void ef_featmap_mmd_back(const ef_featmap *fm, const float *v, const float *gp, float *gv);
/* The kernel widths' factor for MMD points of this space (1 for the pi0
 * space's 3 coordinates; sqrt(n_mmd / 3) otherwise: distances grow with
 * the number of coordinates). */
float ef_featmap_mmd_scale(const ef_featmap *fm);

/* Residual reco - vertex (D), periodic observables wrapped to half a
 * period. */
void ef_featmap_residual(const ef_featmap *fm, const double *reco, const double *vertex,
                         double *r);
/* rc = v + sig o (each D) brought into the ranges (folded or wrapped);
 * sgn (D) = d rc / d (v + sig o) (+-1). */
void ef_featmap_smear(const ef_featmap *fm, const float *v, const float *sig, const float *o,
                      float *rc, float *sgn);
/* The unit of observable j in which noise and spreads are measured: half
 * the range (bounded), a radian (periodic), sd (unbounded). pi0: 1, 1. */
double ef_featmap_unit(const ef_featmap *fm, int j);
/* Observable j of x in the network's coordinate: s (bounded), z
 * (unbounded), a (periodic). */
double ef_featmap_scaled(const ef_featmap *fm, int j, double x);

/* Polar bands: does this space weigh its refinement rows by polar band
 * (the pi0 sphere's poles hold little of the events), and v's band among
 * n_bands. */
int ef_featmap_has_bands(const ef_featmap *fm);
int ef_featmap_band(const ef_featmap *fm, const float *v, int n_bands);

#endif
