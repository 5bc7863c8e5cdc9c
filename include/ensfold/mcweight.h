/* The MC reweighted to a generator's answer: a classifier between samples
 * of a distribution (class 1) and the MC's vertices (class 0) gives each
 * MC event the density ratio at its vertex, so that the MC's events,
 * weighted, follow the samples' distribution at vertex level and the
 * detector's own response at detector level (gan.bias_correction's
 * pseudo-data, docs/methods.md). Inputs: the feature map's refinement
 * features (featmap.h); the classifier's settings are the refinement's
 * (gan.refine.hidden, layers, steps, batch, lr, clip). */
#ifndef ENSFOLD_MCWEIGHT_H
#define ENSFOLD_MCWEIGHT_H

#include <stdint.h>

#include "ensfold/events.h"
#include "ensfold/featmap.h"
#include "ensfold/refine.h"
#include "ensfold/rng.h"

typedef struct ef_mcweight ef_mcweight;

int ef_mcweight_create(ef_ctx *ctx, ef_mcweight **out, const ef_refine_params *rp,
                       const ef_featmap *fm);
void ef_mcweight_destroy(ef_mcweight *mw); /* accepts NULL */

/* Draws one sample of the distribution into v (D). */
typedef void (*ef_mcweight_draw)(void *arg, ef_rng *r, float *v);

/* Train from (seed, unit) on samples from draw against mc's vertices (each
 * event weighing its multiplicity mult[i] (NULL: 1) times its file weight),
 * then w (n_mc) = that weight times the clipped ratio at event i's vertex.
 * Allocates nothing. */
int ef_mcweight_fit(ef_ctx *ctx, ef_mcweight *mw, ef_mcweight_draw draw, void *arg,
                    const ef_events *mc, const double *mult, uint64_t seed, uint32_t unit,
                    ef_rng *r, double *w);

#endif
