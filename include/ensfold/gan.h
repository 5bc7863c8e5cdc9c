/* GAN unfolding: the outer GAN of the gan-topo and gan-mixed methods
 * (docs/methods.md).
 *
 * A unit trains (or reuses) its detector surrogate (surrogate.h), then an
 * outer generator G(z) -> v (the event space's D observables; pi0:
 * (cos theta*, phi*)) against a discriminator that sees, per seen
 * category t, the data (bootstrap-weighted) against G folded
 * through the detector networks and weighted by their P(t | v), and, only in
 * the blind vertex bins, the fill model against G (only with
 * gan.fill_weight > 0). The result is a histogram of many samples of G in
 * the measured bins (with gan.partly_blind fill: their seen part and the
 * fill model's share beside it) and the fill model's shape in the blind
 * bins, scaled so
 * that G itself, folded with its efficiency, predicts the data: with the
 * fill out of training, the measured bins do not depend on the fill model.
 *
 *   gan-topo:  an efficiency classifier eps(v) over the K categories and one
 *              conditional smearing GAN S_t(v, noise) per seen category.
 *   gan-mixed: one detector-simulation GAN DS(v, noise) -> (reco, P(category))
 *              trained on MC events that carry their probability vectors.
 * The networks' inputs and G's output map come from the space's feature
 * map (featmap.h). 
 *
 * Nothing here is collective. A workspace is made once per rank and holds
 * every network and buffer: a unit allocates nothing. */
#ifndef ENSFOLD_GAN_H
#define ENSFOLD_GAN_H

#include <stdint.h>

#include "ensfold/binning.h"
#include "ensfold/events.h"
#include "ensfold/model.h"
#include "ensfold/omnifold.h"
#include "ensfold/refine.h"
#include "ensfold/surrogate.h"


/* The outer GAN's settings and its detector surrogates' (the gan.* keys). */
typedef struct {
  ef_net_params outer;      /* generator G and its discriminator */
  int latent;               /* dimension of G's input noise z */
  double lr_final;          /* learning rate at the last step, as a fraction of lr */
  double average;           /* last fraction of the training whose snapshots are pooled */
  int snapshots;            /* snapshots of G pooled into the result */
  int samples;              /* G samples histogrammed per unit */
  double blind_efficiency;  /* vertex bins below this efficiency follow the fill model */
  double fill_weight;       /* weight of the blind (fill) channel in D's loss */
  double mmd_weight;        /* weight of the MMD term in G's loss (0 = none) */
  double instance_noise;    /* sigma of the noise on D's input coordinates at step 0 */
  ef_surrogate_params detector; /* the detector surrogates (gan.efficiency.*, gan.smearing.*) */
  int share_detector;       /* keep detector networks for the fills of a member */
  int bias_correction;      /* a second training on pseudo-data from the MC reweighted to
                             * the first's answer measures the bias; the result is corrected */
  ef_refine_params refine;  /* classifier refinement of G's samples (gan.refine.*) */
  int polish;               /* OmniFold iterations of G's answer through the MC's response
                             * (polish.h; 0 = none) */
  int partly_blind;         /* the blind part of a measured bin: EF_GAN_PARTLY_GENERATOR
                             * (G's samples there) or EF_GAN_PARTLY_FILL (the fill model's
                             * share of the bin beside G's seen part) */
} ef_gan_params;

/* gan.partly_blind, in the config's order. */
enum { EF_GAN_PARTLY_GENERATOR = 0, EF_GAN_PARTLY_FILL = 1 };

/* What one GAN unit unfolds. */
typedef struct {
  ef_surrogate_kind detector;  /* gan-topo: EF_SURROGATE_TOPO, gan-mixed: EF_SURROGATE_MIXED */
  const ef_events *data;       /* measured events: category, reco (weight optional) */
  const double *data_weights;  /* (n_data) bootstrap weights, NULL = all 1 */
  const ef_events *mc;         /* MC with vertex and prob */
  const double *mc_weights;    /* (n_mc) the MC's bootstrap multiplicities (non-negative
                                * integers; campaign.bootstrap_mc): the detector networks
                                * train on that replica of the MC. NULL = each event once.
                                * det_key must differ where they do. */
  const ef_binning *vtx;       /* vertex bins of the result */
  const double *efficiency;    /* (n_vertex) total efficiency per bin (the response's) */
  const double *fill_prior;    /* (n_vertex) the fill model's probability per bin */
  /* the fill model, to sample the blind region: fill_sample(fill_arg,
   * fill_model, r, v) draws one vertex v (D) (campaign: ef_inputs_fill_sample) */
  void (*fill_sample)(const void *fill_arg, int fill_model, ef_rng *r, double *v);
  const void *fill_arg;
  int fill_model;
  /* Random streams: the detector networks' from det_seed (trained once for
   * every unit with the same det_key >= 0: gan.share_detector), the outer GAN's
   * from seed; attempt > 0 gives fresh streams for a retry. */
  uint64_t det_seed, seed;
  int64_t det_key;
  int attempt;
} ef_gan_problem;

typedef struct ef_gan_ws ef_gan_ws;

/* Sized for gp, up to n_vertex vertex bins, the data's events and the MC
 * sample mc (its space is the units'; its vertices' range bounds G's
 * unbounded outputs, the data's measured reconstructions set the unbounded
 * observables' frame: featmap.h; beam_energy, GeV, the pi0 space's lab
 * angles), with the detector surrogates whose ef_surrogate_kind bits are set
 * in `detectors`; with gp->polish > 0 the polish runs OmniFold as `polish`
 * configures it (its iterations gp->polish; NULL allowed without). */
int ef_gan_ws_create(ef_ctx *ctx, ef_gan_ws **out, const ef_gan_params *gp,
                     const ef_omnifold_params *polish, unsigned detectors, const ef_events *mc,
                     const ef_events *data, double beam_energy, int n_vertex);
void ef_gan_ws_destroy(ef_gan_ws *ws); /* accepts NULL */
/* Outer GAN trainings this workspace has run. A unit whose seed, attempt,
 * detector kind, detector key, data weights and settings equal the previous
 * unit's, with the fill not entering training (gan.fill_weight 0), reuses
 * that training: only the fill's part of the result (the blind bins) is
 * made again (common random numbers: docs/methods.md). */
long ef_gan_ws_outer_trainings(const ef_gan_ws *ws);

/* Run one GAN unit. Writes
 *   hist (n_vertex)         unfolded events per vertex bin: G's in the bins
 *                           it sees, the fill model's shape in blind bins
 *   own (n_vertex)          G's own answer in every bin, blind ones included
 *                           (the same as hist outside the blind bins)
 *   eff (K, n_vertex)       the unit's P(category | vertex bin), averaged on
 *                           a grid in each bin (ef_surrogate_map; gan-mixed:
 *                           and over 16 noise draws per point)
 *   loss_d, loss_g (n_loss) the discriminator and generator losses, each
 *                           point the mean over steps / n_loss steps
 *   ux (n_unb, D), uw (n_unb) n_unb of G's pooled samples (spread over the
 *                           pool) with weights that histogram to own (the
 *                           refinement's weight times own's scale); none
 *                           when n_unb is 0.
 * A training whose loss turns non-finite, or that collapses (docs/methods.md
 * states the criterion), returns EF_ERR_NUMERIC for the caller to retry. */
int ef_gan_unit_run(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                    ef_gan_ws *ws, double *hist, double *own, double *eff, int n_loss,
                    double *loss_d, double *loss_g, int n_unb, double *ux, double *uw);

#endif
