/* Refolding (docs/methods.md, "Refolding"): a group's mean folded through
 * the nominal MC response against the data's seen events per detector bin,
 * chi2 = sum over the bins used of (fold_j - data_j)^2 / data_j. It needs
 * no truth: on real data it says whether an answer describes the data it
 * was unfolded from. A bin is used where the data hold at least
 * EF_REFOLD_MIN_DATA (weighted) events, the bin lies inside the vertex
 * binning's range (on the axes that neither wrap nor clamp) and at least
 * EF_REFOLD_MIN_INBOX of the MC's seen weight there comes from vertices
 * inside the vertex binning: a result covers the binning only, the data
 * hold every vertex's reconstructions, and a truth that reaches further
 * than the MC's puts events into the bins beyond the range. Internal to
 * src/campaign; rank 0. */
#ifndef ENSFOLD_REFOLD_H
#define ENSFOLD_REFOLD_H

#include "ensfold/inputs.h"

#define EF_REFOLD_MIN_DATA 10.0
#define EF_REFOLD_MIN_INBOX 0.99

typedef struct {
  int nd, ndf;         /* detector bins (seen categories x detector binning), bins used */
  double *data;        /* (nd) the data's seen events (file weights) */
  unsigned char *use;  /* (nd) 1: the bin enters chi2 */
  double *fold;        /* (nd) scratch: the folded mean */
} ef_refold;

int ef_refold_setup(ef_ctx *ctx, const ef_inputs *in, ef_refold *rf);
/* chi2 of mean (n vertex bins) folded through in's response, over the used
 * bins; NaN when no bin is used or the fold is not finite in one. */
double ef_refold_chi2(ef_refold *rf, const ef_inputs *in, const double *mean);
void ef_refold_free(ef_refold *rf);

#endif
