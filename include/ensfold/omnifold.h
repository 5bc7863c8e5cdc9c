/* OmniFold (Andreassen, Komiske, Metodiev, Nachman, Thaler, PRL 124 (2020)
 * 182001) on the MC's events: iterative classifier reweighting, unbinned,
 * all observables at once (docs/methods.md, "OmniFold").
 *
 * The MC's per-event weights start at the prior, the MC as it is (its file
 * weights; the OmniFold papers' prior). Each iteration:
 *   step 1, detector level: a classifier between the data's measured
 *     events (their weights) and the MC's measured events (current
 *     weights), inputs the seen category's one-hot and the reconstructed
 *     point's features (featmap.h); a measured MC event's pulled weight is
 *     its current one times the ratio exp(logit). An MC event with no
 *     reconstruction: with omnifold.unreconstructed average (the default)
 *     it gets the mean pull of its vertex bin's measured events if the
 *     detector sees the bin (MC efficiency >= blind_efficiency: IBU's
 *     update for it), else it keeps its weight; with keep it always keeps
 *     its current weight, which dilutes step 2's ratio by the efficiency
 *     (slow convergence where the efficiency is low);
 *   step 2, vertex level: a classifier between the MC's vertices with the
 *     pulled and with the current weights; an event's new weight is its
 *     current one times exp(logit): smooth in the vertex, it carries the
 *     measured region's information across holes and into open blind
 *     regions as far as the classifier interpolates. With average (and
 *     interpolate) the events of bins the detector does not see (pb->seen)
 *     keep their weight.
 * Every ratio is clipped to [1 / clip, clip]. Both classes of a step are
 * drawn by weight (rows of equal weight). The result is the MC's vertex
 * histogram with the final weights, scaled so that its measured events
 * match the data's, in the bins the detector sees; the blind bins take the
 * fill model's shape, scaled so that blind / seen is the fill's own ratio
 * (as IBU's and the GAN methods' blind bins). The fill enters nowhere
 * else: a workspace keeps its last iterations, and a unit that differs
 * from the last only by the fill model reuses them.
 *
 * Nothing is collective; a workspace is made once per rank and a unit
 * allocates nothing. */
#ifndef ENSFOLD_OMNIFOLD_H
#define ENSFOLD_OMNIFOLD_H

#include <stddef.h>
#include <stdint.h>

#include "ensfold/binning.h"
#include "ensfold/ctx.h"
#include "ensfold/events.h"
#include "ensfold/nn.h"

/* The pulled weight of an MC event step 1 cannot see (no reconstruction):
 * omnifold.unreconstructed. AVERAGE: its vertex bin's mean pull; KEEP: its
 * current weight; INTERPOLATE: none, step 2 learns the pull at vertex level
 * from the measured events alone and applies it to every event. AVERAGE
 * and INTERPOLATE leave the blind bins (pb->seen) out of step 2. */
enum { EF_OF_AVERAGE = 0, EF_OF_KEEP = 1, EF_OF_INTERPOLATE = 2 };

/* The omnifold.* keys. */
typedef struct {
  int iterations;    /* OmniFold iterations */
  ef_net_params net; /* both classifiers: hidden, layers, steps, batch, lr */
  double clip;       /* each ratio is clipped to [1 / clip, clip] */
  int unreconstructed;     /* EF_OF_AVERAGE, EF_OF_KEEP or EF_OF_INTERPOLATE (above) */
  double blind_efficiency; /* vertex bins below are blind (the caller's pb->seen) */
} ef_omnifold_params;

typedef struct ef_omnifold_ws ef_omnifold_ws;

/* For the MC sample mc (its space; beam_energy, GeV, for the pi0 space's
 * features), up to n_data data events and n_vertex vertex bins. */
int ef_omnifold_ws_create(ef_ctx *ctx, ef_omnifold_ws **out, const ef_omnifold_params *op,
                          const ef_events *mc, double beam_energy, size_t n_data,
                          size_t n_vertex);
void ef_omnifold_ws_destroy(ef_omnifold_ws *ws); /* accepts NULL */

/* What one unit unfolds. */
typedef struct {
  const ef_events *data;       /* measured events: category, reco */
  const double *data_weights;  /* (n_data) bootstrap weights, NULL = all 1 */
  const ef_events *mc;         /* MC with vertex (the workspace's) */
  const double *mc_weights;    /* (n_mc) extra MC weights (bootstrap), NULL = all 1 */
  const ef_binning *vtx;       /* vertex bins of the result */
  const double *fill_prior;    /* (n_vertex) the fill model's probability per bin: the
                                * result's shape in the blind bins */
  const unsigned char *seen;   /* (n_vertex) 1 where the detector sees the bin (MC efficiency
                                * >= blind_efficiency), 0 blind; NULL (EF_OF_KEEP only):
                                * every bin seen */
  uint64_t seed;               /* the classifiers' initial weights and minibatches */
  int attempt;                 /* > 0: fresh streams for a retry */
  double *iter_hist;           /* (iterations, n_vertex) the result after each iteration,
                                * at its own scale (the last is hist); NULL: not wanted */
  double *iter_ess;            /* (iterations) the MC weights' effective size after each
                                * iteration, (sum w)^2 / sum w^2 over the MC events in the
                                * vertex binning (Kish; events); NULL: not wanted */
} ef_omnifold_problem;

/* Run the iterations (or reuse the workspace's last ones when only
 * fill_prior differs): hist (n_vertex) the unfolded events per vertex bin;
 * weights, when not NULL, (n_mc) every MC event's final weight at the
 * result's scale (its histogram is hist; the events of a blind bin share
 * its content by their weights). EF_ERR_NUMERIC when a loss turns
 * non-finite; EF_ERR_INPUT when there is nothing to train on. */
int ef_omnifold_run(ef_ctx *ctx, const ef_omnifold_params *op, const ef_omnifold_problem *pb,
                    ef_omnifold_ws *ws, double *hist, double *weights);

#endif
