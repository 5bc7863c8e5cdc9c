/* Detector surrogates: networks that learn a detector's response from MC
 * events that carry their vertex, reconstruction, topology and exact
 * topology probabilities, so that a method can fold generated vertices
 * through the detector and take gradients back through it
 * (docs/methods.md, "Detector networks").
 *
 *   EF_SURROGATE_TOPO   an efficiency classifier P(category | v) (softmax,
 *                       soft targets) and one conditional smearing GAN
 *                       S_j(v, noise) per seen category (pi0: T1..T3).
 *   EF_SURROGATE_MIXED  one detector-simulation GAN DS(v, noise) -> (reco
 *                       residual, logits of P(category | v)) trained on
 *                       every MC event with its probability vector.
 *
 * Everything is in the event space of a feature map (featmap.h: D
 * observables, K categories, ns of them seen): the networks see its
 * detector features of v and detector noise; the reconstructed point is v
 * plus a learnt residual, brought into the observables' ranges (folded or
 * wrapped: ef_featmap_smear). A surrogate is made once per rank with every
 * buffer it needs: training, forward and backward allocate nothing.
 * Nothing here is collective. */
#ifndef ENSFOLD_SURROGATE_H
#define ENSFOLD_SURROGATE_H

#include <stddef.h>
#include <stdint.h>

#include "ensfold/binning.h"
#include "ensfold/ctx.h"
#include "ensfold/events.h"
#include "ensfold/featmap.h"
#include "ensfold/nn.h"
#include "ensfold/rng.h"

/* A surrogate's settings (the gan.efficiency, gan.smearing,
 * gan.efficiency_average and gan.detector_noise keys). */
typedef struct {
  ef_net_params efficiency;  /* the efficiency classifier (topo) */
  double efficiency_average; /* last fraction of the classifier's / DS-GAN's training averaged */
  ef_net_params smearing;    /* S_t (topo) and the DS-GAN (mixed) */
  int noise;                 /* noise inputs of the smearing networks */
  int per_topology;          /* mixed: the DS-GAN's residual per seen category (its
                              * critic told the category), else one for all */
  int own_trunk;             /* mixed: the P head a network of its own (the classifier's
                              * training) beside the residual's, else one shared trunk */
  double moments;            /* weight of the residual moment match in the smearing
                              * networks' loss (0: adversarial alone) */
  double trend;              /* weight of the trend match (the residual's mean and
                              * spread against each vertex coordinate; 0: off) */
  double covariance;         /* weight of the covariance match (the residuals' covariance
                              * between observables; 0: off) */
  int loss;                  /* EF_SMEAR_ADVERSARIAL: a critic (and the matches above);
                              * EF_SMEAR_ENERGY: the energy score, no critic;
                              * EF_SMEAR_MIXTURE: a Gaussian mixture per observable, by
                              * likelihood */
  int components;            /* the mixture's components (EF_SMEAR_MIXTURE) */
} ef_surrogate_params;

/* How the smearing networks learn (gan.smearing.loss). */
enum { EF_SMEAR_ADVERSARIAL = 0, EF_SMEAR_ENERGY = 1, EF_SMEAR_MIXTURE = 2 };
#define EF_SMEAR_MAX_COMP 16 /* gan.smearing.components at most */

typedef enum { EF_SURROGATE_TOPO = 0, EF_SURROGATE_MIXED = 1 } ef_surrogate_kind;

typedef struct ef_surrogate ef_surrogate;

/* A surrogate of `kind` in fm's space (fm must outlive it) for batches of
 * up to max_rows vertices (its own training batches, sp's, are sized in as
 * well) and MC samples of up to n_mc events. */
int ef_surrogate_create(ef_ctx *ctx, ef_surrogate **out, ef_surrogate_kind kind,
                        const ef_surrogate_params *sp, const ef_featmap *fm, int max_rows,
                        size_t n_mc);
void ef_surrogate_destroy(ef_surrogate *s); /* accepts NULL */

/* Train on mc (vertex, reco, topology, prob; the feature map's space), from
 * seed and the streams stream .. stream + 4 (beyond three seen categories
 * also stream + 256 + j; critics: + 100). mc_weights (n_mc), NULL = each
 * event once, are multiplicities (non-negative integers: a bootstrap
 * replica of the MC, campaign.bootstrap_mc): every batch is drawn from the
 * sample in which event i appears mc_weights[i] times, so the networks
 * learn that replica's detector. A key >= 0 equal to the key of the last
 * training keeps the networks as they are (units that share a detector:
 * the caller's key must differ where mc or mc_weights do); a negative key
 * always trains. A loss that turns non-finite returns EF_ERR_NUMERIC. */
int ef_surrogate_train(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, const double *mc_weights,
                       uint64_t seed, uint32_t stream, int64_t key);

/* The response of n <= max_rows vertices v (n, D) with detector features
 * feat (n, n_feat): prob (n, K) = P(category | v) and, with reco not NULL,
 * the reconstructed point per seen category into reco (ns, n, D). Detector
 * noise is drawn from r. The networks keep their activations for one
 * ef_surrogate_backward. */
void ef_surrogate_forward(ef_surrogate *s, const float *v, const float *feat, int n, ef_rng *r,
                          float *prob, float *reco);

/* Backward of the last forward with reco: dreco (ns, n, D) is a loss's
 * gradient wrt reco; adds its gradient wrt v to dv (n, D) and wrt the
 * features to dfeat (n, n_feat). The probabilities count as constants. */
void ef_surrogate_backward(ef_surrogate *s, int n, const float *dreco, float *dv, float *dfeat);

/* The efficiency map eff (K, n_bins of vtx): P(category | v) averaged on
 * a grid of g^D <= 64 points in each vertex bin (D = 2: 8 x 8; the mixed
 * surrogate: and over 16 noise draws per point: with one draw the map's
 * own sampling noise reached 0.01 in single cells). Points go through in
 * chunks of `chunk` rows. */
void ef_surrogate_map(ef_surrogate *s, const ef_binning *vtx, ef_rng *r, int chunk,
                      double *eff);

#endif
