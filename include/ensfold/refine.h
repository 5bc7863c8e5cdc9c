/* Classifier refinement of a generator's samples (docs/methods.md, "GAN
 * refinement"): one or more iterations of OmniFold's two steps with the
 * generator's pooled samples as the simulation.
 *
 *   step 1, detector level: a classifier between the data's measured events
 *     (their weights) and the samples folded through the detector surrogate
 *     (row weight: the current weight times P(T_t | v)), inputs the
 *     seen category's one-hot and ef_featmap_refine of the reconstructed
 *     point; each sample's pulled weight is its current weight times the
 *     mean of the ratio exp(logit) over its seen categories, weighted by
 *     P(T_t | v).
 *   step 2, vertex level: a classifier between the samples with their
 *     pulled weights and with their current weights, both times their
 *     efficiency (so blind samples do not anchor it), inputs
 *     ef_featmap_refine(v); the new weight is the current one times
 *     exp(logit): a smooth function of v that interpolates across interior
 *     holes and extrapolates into open blind regions.
 * Every ratio is clipped to [1 / clip, clip].
 *
 * Nothing is collective; a workspace is made once per rank and a run
 * allocates nothing. */
#ifndef ENSFOLD_REFINE_H
#define ENSFOLD_REFINE_H

#include <stddef.h>
#include <stdint.h>

#include "ensfold/ctx.h"
#include "ensfold/events.h"
#include "ensfold/featmap.h"
#include "ensfold/nn.h"
#include "ensfold/rng.h"
#include "ensfold/surrogate.h"

/* The gan.refine.* keys. */
typedef struct {
  int iterations;   /* OmniFold iterations; 0 = no refinement */
  ef_net_params net; /* both classifiers: hidden, layers, steps, batch, lr */
  int samples;      /* pooled samples the classifiers train on (at most) */
  double clip;      /* each ratio is clipped to [1 / clip, clip] */
} ef_refine_params;

typedef struct ef_refine ef_refine;

/* For rp in fm's space (fm must outlive it), folding through a surrogate
 * in chunks of at most `chunk` rows. */
int ef_refine_create(ef_ctx *ctx, ef_refine **out, const ef_refine_params *rp,
                     const ef_featmap *fm, int chunk);
void ef_refine_destroy(ef_refine *rf); /* accepts NULL */

/* What one refinement runs on. */
typedef struct {
  const ef_events *data;  /* measured events: category, reco */
  const int32_t *meas;    /* (n_meas) indices of the data events it draws */
  const double *cdf;      /* (n_meas) running sums of their weights */
  size_t n_meas;
  ef_surrogate *det;      /* trained detector surrogate (the same feature map) */
  uint64_t seed;          /* the classifiers' initial weights: (seed, EF_RNG_NN_INIT, unit) */
  uint32_t unit;          /* and unit + 1 */
} ef_refine_problem;

/* Weights nu (n) for the samples v (n, D) whose probability of being
 * blind (pi0: P(T0 | v)) is p0 (n);
 * draws from r. Returns EF_ERR_NUMERIC when a classifier's loss turns
 * non-finite. */
int ef_refine_run(ef_ctx *ctx, ef_refine *rf, const ef_refine_problem *pb, const float *v,
                  const float *p0, int n, ef_rng *r, float *nu);

#endif
