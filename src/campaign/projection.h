/* Projections of a vertex binning's histograms and covariances: the 1-D
 * marginal on each observable and, when asked (binning.pairs), the 2-D
 * projection on each pair of observables. Internal to src/campaign (the
 * result file's /units/proj_*, /units/pair_* and the groups' projections:
 * docs/formats.md). Pure functions: nothing is collective. */
#ifndef ENSFOLD_PROJECTION_H
#define ENSFOLD_PROJECTION_H

#include <stddef.h>

#include "ensfold/binning.h"
#include "ensfold/ctx.h"
#include "ensfold/space.h"

/* Projections of b: its D marginals, then (pairs) the D (D - 1) / 2 pairs
 * (a < c, a the slower index). */
int ef_proj_count(const ef_binning *b, int pairs);

/* Projection p of b: its dataset name (pi0: proj_polar, proj_phi; else
 * proj_<name>, pair_<a>_<c>) into name and its number of bins. */
int ef_proj_describe(const ef_binning *b, const ef_space *sp, int p, char *name, size_t len);

/* idx (n_bins of b): the projected bin of every vertex bin. */
void ef_proj_index(const ef_binning *b, int p, int *idx);

/* out (m) = the projection of h (nv) by idx (idx[k] < 0: bin k left out;
 * ef_proj_share uses that); out (m, m) = of the covariance
 * cov (nv, nv), with tmp (nv, m) as work. */
void ef_proj_vec(int nv, const int *idx, int m, const double *h, double *out);
void ef_proj_cov(int nv, const int *idx, int m, const double *cov, double *tmp, double *out);

/* The training share phi of a projection (docs/methods.md, "The training
 * share of a projection"): ef_stats_training_fraction of the members xm
 * (R, M, nv) and their replica means x (R, nv), both projected by idx
 * (nv -> m bins; idx[k] < 0 leaves vertex bin k out). Training noise moves
 * events between neighbouring bins and partly cancels in a projected sum,
 * so a projection's phi is its own, not its bins'. work: (R (M + 1) + 3) m
 * doubles. *phi: NaN when no projected bin spreads over the replicas. */
int ef_proj_share(ef_ctx *ctx, const double *xm, const double *x, size_t R, size_t M, int nv,
                  const int *idx, int m, double *work, double *phi);

#endif
