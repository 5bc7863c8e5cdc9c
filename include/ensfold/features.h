/* Feature maps of a vertex v = (c, f) = (cos theta*, phi*) for the networks
 * of the ML methods, each with its Jacobian so that gradients flow back to v
 * (docs/methods.md, "Network inputs").
 *
 *   kinematic (EF_FEAT_KIN): what detector networks see: c, sin theta*,
 *     harmonics of phi* for the sectors and the coils, and the proton's and
 *     the pi0's lab polar angles (linear and log-stretched).
 *   embedding (EF_FEAT_EMBED): what a discriminator sees of a point: c,
 *     2c^2 - 1 and phi* harmonics 1, 2 and 6.
 *   refinement (EF_FEAT_REFINE): what the density-ratio classifiers see:
 *     c, theta* (linear, so that the rows next to the poles are as wide to
 *     a network as any other), the unit vector's transverse part and phi*
 *     harmonics 1, 2 and 6 (no Jacobian: nothing flows back through it).
 *   sphere: a generator's raw output u (3) -> the direction of u as (c, f):
 *     a sphere has no edges, so a generator needs no folding or wrapping and
 *     a finite density at the poles is natural.
 * Pure functions: nothing allocates, nothing is collective. */
#ifndef ENSFOLD_FEATURES_H
#define ENSFOLD_FEATURES_H

#include "ensfold/kinematics.h"

#define EF_FEAT_KIN 12  /* kinematic features */
#define EF_FEAT_EMBED 8 /* embedding features */
#define EF_FEAT_REFINE 16 /* refinement features */

/* Kinematic features of (c, f): out (EF_FEAT_KIN); jac (EF_FEAT_KIN, 2) =
 * d out / d (c, f), or NULL. */
void ef_features_kin(const ef_kin *k, double c, double f, float *out, float *jac);

/* Embedding of (c, f) into e (EF_FEAT_EMBED). */
void ef_features_embed(float *e, float c, float f);
/* Gradient wrt (c, f) of a loss, from its gradient de (EF_FEAT_EMBED) wrt
 * the embedding of (c, f). */
void ef_features_embed_back(const float *de, float c, float f, float *dc, float *df);

/* Refinement features of (c, f) into e (EF_FEAT_REFINE); c outside
 * [-1, 1] counts as its end. */
void ef_features_refine(float *e, float c, float f);

/* (c, f) of the direction of u (3); c clipped to [-1, 1]. */
void ef_features_sphere(const float *u, float *c, float *f);
/* du (3) from the gradients gc, gf wrt (c, f) of the direction of u. */
void ef_features_sphere_back(const float *u, float gc, float gf, float *du);

#endif
