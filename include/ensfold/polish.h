/* The polish of a generator's answer through the MC's own response
 * (gan.polish, docs/methods.md "The polish"): OmniFold's iterations on the
 * MC's events with the generator's answer as their prior.
 *
 *   1. the MC reweighted to the answer (mcweight.h: a classifier between
 *      the answer's samples and the MC's vertices), then scaled in each
 *      vertex bin to the answer's content there (the classifier gives the
 *      shape inside a bin and the events outside the binning), so that the
 *      MC's events carry the answer at vertex level and the detector, as
 *      the MC simulates it, at detector level;
 *   2. OmniFold (omnifold.h) from those weights: step 1 against the data's
 *      measured events, step 2 at vertex level, as omnifold.* configures
 *      it, the given number of iterations;
 *   3. per vertex bin the factor by which OmniFold moved the bin's
 *      weighted MC events, corr[b] = omnifold[b] / prior[b], divided by
 *      one constant so that the answer's folded sum over the bins it
 *      corrects stays what it was (the answer's normalisation is its own).
 *      Blind bins and bins without MC events keep factor 1.
 * The factor multiplies the answer's own content of the bin, so the MC
 * sample's fluctuation in a bin, which prior and OmniFold share, cancels
 * in it; the data's information reaches the answer through the MC's
 * response instead of the generator's detector networks.
 *
 * Nothing is collective; a workspace is made once per rank and a run
 * allocates nothing. */
#ifndef ENSFOLD_POLISH_H
#define ENSFOLD_POLISH_H

#include <stddef.h>
#include <stdint.h>

#include "ensfold/binning.h"
#include "ensfold/events.h"
#include "ensfold/featmap.h"
#include "ensfold/mcweight.h"
#include "ensfold/omnifold.h"
#include "ensfold/refine.h"

typedef struct ef_polish ef_polish;

/* For the MC sample mc in fm's space (both must outlive it), up to n_data
 * data events and n_vertex vertex bins: OmniFold as op configures it with
 * op->iterations iterations, the reweighting classifier as rw. */
int ef_polish_create(ef_ctx *ctx, ef_polish **out, const ef_omnifold_params *op,
                     const ef_refine_params *rw, const ef_featmap *fm, const ef_events *mc,
                     double beam_energy, size_t n_data, int n_vertex);
void ef_polish_destroy(ef_polish *pl); /* accepts NULL */

/* What one polish runs on. */
typedef struct {
  const ef_events *data;       /* measured events: category, reco */
  const double *data_weights;  /* (n_data) bootstrap weights, NULL = all 1 */
  const ef_events *mc;         /* the workspace's MC */
  const double *mc_weights;    /* (n_mc) the MC's bootstrap multiplicities, NULL = all 1 */
  const ef_binning *vtx;       /* vertex bins */
  const unsigned char *blind;  /* (n_vertex) 1 where the bin is blind: factor 1 there */
  const double *answer;        /* (n_vertex) the answer per bin (any scale) */
  const double *esum;          /* (n_vertex) the answer's folded sum (events x efficiency)
                                * per bin: its total over the corrected bins is kept */
  ef_mcweight_draw draw;       /* one vertex of the answer */
  void *arg;                   /* draw's */
  uint64_t seed;               /* the classifiers' streams: (seed, unit) for the
                                * reweighting, OmniFold's own from (seed, attempt) */
  uint32_t unit;
  int attempt;
} ef_polish_problem;

/* corr (n_vertex): the factor per vertex bin (above); draws from r.
 * EF_ERR_NUMERIC when a classifier's loss turns non-finite or nothing
 * of the MC lies in a seen bin. */
int ef_polish_run(ef_ctx *ctx, ef_polish *pl, const ef_polish_problem *pb, ef_rng *r,
                  double *corr);

#endif
