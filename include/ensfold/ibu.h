/* Iterative Bayesian unfolding (D'Agostini) with a sparse response matrix.
 *
 * Detector bins: for each seen category (pi0: the measured topologies T1,
 * T2, T3) a copy of the detector binning, global detector bin j = (the
 * category's index among the seen ones) * n_det + reco bin
 * (ef_space_seen_index; pi0: (t - 1) * n_det + reco bin).
 * The response R[j][i] = P(detector bin j | vertex bin i) is estimated from
 * MC events (weighted), stored sparse (memory ~ number of filled (j, i)
 * pairs, never bins^2 dense and never bins^4). eps[i] = sum_j R[j][i]. */
#ifndef ENSFOLD_IBU_H
#define ENSFOLD_IBU_H

#include <stddef.h>
#include <stdint.h>

#include "ensfold/binning.h"
#include "ensfold/ctx.h"
#include "ensfold/events.h"

/* IBU's settings (the ibu.* keys; docs/methods.md). */
typedef struct {
  int iterations;
  double min_efficiency; /* vertex bins below keep the scaled prior */
  double min_expected;   /* events: so do bins with less data attributed */
  double min_mc;         /* events: and bins whose response rests on fewer seen MC events */
  int reweight;          /* passes with the MC reweighted inside the bins (ef_ibu_reweight) */
} ef_ibu_params;

typedef struct ef_response ef_response;

/* Build R from MC events (vertex, topology, reco). weights may be NULL
 * (all 1) or hold one non-negative weight per event (bootstrapped MC);
 * mc->weight is not read (a caller with weighted MC passes the product).
 * R_ji = (weight of events in vertex bin i reconstructed in j) / (weight of
 * all events in vertex bin i, T0 included); vertex bins without MC get
 * eps = 0. The MC events with a vertex outside the vertex binning go to
 * the twin of the bin nearest to them (the vertex clamped into the box):
 * n_vertex more columns, used only inside ef_ibu_attribute,
 * ef_ibu_choose_twins and ef_ibu_unfold (the data hold their
 * reconstructions too; nnz, the triplets and the dense copy are the bins'
 * alone). Events are summed in event order (bit-reproducible). Not
 * collective. EF_ERR_INPUT for a missing or NaN vertex, a category outside
 * 0..K-1, a negative / non-finite weight, or more than INT32_MAX / 2
 * vertex bins (with their twins, twice as many columns). */
int ef_response_build(ef_ctx *ctx, ef_response **out, const ef_binning *vertex,
                      const ef_binning *detector, const ef_events *mc,
                      const double *weights);
void ef_response_destroy(ef_response *r);

/* The MC's events binned for responses of many weightings (campaign.bootstrap_mc,
 * ibu.reweight): each event's column and detector bin, and their order.
 * ef_response_build_binned(ev, weights) gives the same response, bit for
 * bit, as ef_response_build(vertex, detector, mc, weights) without binning
 * the events again. The same checks (binnings, categories, vertices) in
 * ef_response_bin, the weights' in ef_response_build_binned. Memory: 12
 * bytes per MC event. ef_response_build is the two in one. */
typedef struct ef_response_events ef_response_events;
int ef_response_bin(ef_ctx *ctx, ef_response_events **out, const ef_binning *vertex,
                    const ef_binning *detector, const ef_events *mc);
int ef_response_build_binned(ef_ctx *ctx, ef_response **out, const ef_response_events *ev,
                             const double *weights);
void ef_response_events_free(ef_response_events *ev);
/* (n events) each event's column: its vertex bin (0..n_vertex-1), n_vertex
 * + k for the twin of bin k, -1 for none. */
const int32_t *ef_response_events_columns(const ef_response_events *ev);

int ef_response_n_vertex(const ef_response *r);
int ef_response_n_detector(const ef_response *r); /* seen categories x detector bins */
const double *ef_response_efficiency(const ef_response *r); /* (n_vertex) */
/* Dense copy of R into out (n_detector, n_vertex), row-major, for storage
 * of replica 0 only. */
void ef_response_dense(const ef_response *r, double *out);
/* Filled (j, i) pairs, and the bytes the response holds (~ 12 per pair). */
size_t ef_response_nnz(const ef_response *r);
/* The nonzero entries as triplets (nnz each), column by column: detector
 * bin, vertex bin, R value. For storage of replica 0. */
void ef_response_triplets(const ef_response *r, int32_t *det, int32_t *vtx, double *val);
size_t ef_response_bytes(const ef_response *r);
/* out (n_detector) = R x, x (n_vertex): the detector-level prediction. */
void ef_response_fold(const ef_response *r, const double *x, double *out);

/* Global detector bin of an event (category of space, reco (D)): its seen
 * index x detector bins + its reco bin, or -1 for a blind category or a
 * reco outside the binning. */
int ef_ibu_detector_bin(const ef_binning *detector, const ef_space *space, int category,
                        const double *reco);

/* Histogram of events in detector bins (n_detector), T0 events skipped.
 * weights may be NULL (all 1); data->weight is not read. */
void ef_ibu_data_histogram(const ef_binning *detector, const ef_events *data,
                           const double *weights, double *out);

/* The bins with efficiency eps_i > 0 and eps_i >= eps_min: unfold (n_vertex)
 * gets 1 there, 0 elsewhere. */
void ef_ibu_mask_efficiency(const ef_response *r, double eps_min, unsigned char *unfold);

/* One Bayes step: the data (n_detector) attributed to each vertex bin,
 * out_i = prior_i sum_j R_ji d_j / nu_j with nu = R prior plus every twin's
 * column times its prior (ef_ibu_unfold; detector bins with nu_j = 0
 * skipped). With the twins' share it sums to the data the response
 * reaches: out_i is the number of measured events that came from vertex
 * bin i if the prior has the right shape. work: ef_ibu_work_size doubles. Not collective. */
void ef_ibu_attribute(const ef_response *r, const double *data, const double *prior, double *work,
                      double *out);

/* The twins (outside the vertex binning, ef_response_build) to unfold:
 * twins (n_vertex) gets 1 for twin k if its efficiency is > 0 and >=
 * eps_min and one Bayes step with prior attributes >= min_expected data
 * events to it (the rule of the bins, ef_ibu_attribute), else 0. work:
 * ef_ibu_work_size doubles. */
void ef_ibu_choose_twins(const ef_response *r, const double *data, const double *prior,
                         double eps_min, double min_expected, double *work, unsigned char *twins);

/* Unfold data (n_detector) with prior shape prior (n_vertex, any
 * normalisation). The region outside the vertex binning enters as the
 * bins' twins (ef_response_build): folded with their columns, never
 * returned, so the data their vertices make are not unfolded into the
 * binned range. A twin's prior is its MC weight times (the sum of prior /
 * the MC's weight inside the binning), the same for every prior shape. The
 * twins marked in twins (n_vertex, ef_ibu_choose_twins; NULL: none) are
 * updated like unfolded bins; the others take no part (0), so the few data
 * events they would hold are unfolded into the binned range (kept at the
 * MC's share they could empty a border bin whose MC reaches far further
 * outside than the data). Without MC outside the binning the twins play no
 * part. The prior is first scaled so that folding it predicts the
 * observed number of events. Each iteration:
 *   nu_j = sum_i R_ji p_i (+ the chosen twins' columns x their p);
 *   n_i = (1/eps_i) sum_j R_ji p_i d_j / nu_j
 * for the unfolded bins (unfold[i] != 0 and eps_i > 0 in this response);
 * the others keep the prior, scaled by the ratio (sum of n over unfolded
 * bins) / (sum of prior over unfolded bins).
 * work: scratch of ef_ibu_work_size doubles (no allocation inside).
 * out: (n_vertex), must not overlap data, prior or work.
 * Details: the fold nu runs over all vertex bins (kept bins at their scaled
 * prior) and the chosen twins, in the scaling too; the observed number is
 * the data in detector bins where the folded prior is > 0 (data elsewhere
 * cannot be explained and is ignored); detector bins with nu_j = 0 are
 * skipped in the update. The ratio uses the
 * prior as passed, so kept bins end exactly at prior_i * (sum of out over
 * unfolded bins) / (sum of prior over unfolded bins). iterations = 0
 * returns the scaled prior. Returns EF_ERR_NUMERIC if no data event falls
 * in a bin the response reaches, if no bin is unfolded, or if the prior is
 * 0 on all of them; EF_ERR_INPUT for negative or non-finite data or prior,
 * or iterations < 0. Not collective. */
size_t ef_ibu_work_size(const ef_response *r);
int ef_ibu_unfold(ef_ctx *ctx, const ef_response *r, const double *data, const double *prior,
                  int iterations, const unsigned char *unfold, const unsigned char *twins,
                  double *work, double *out);

/* MC weights for a response that follows the unfolded answer inside the
 * vertex bins (ibu.reweight): out (mc->n) = base (NULL: 1) times, for an
 * event in a node bin k (nodes[k] != 0 with MC and unfolded[k] > 0),
 * exp(sum_a g_ka (f_a - 1/2)), g_ka the slope of log(unfolded / MC weight)
 * per bin along axis a from k's node neighbours (central difference,
 * one-sided where one is missing, 0 without), f_a the event's place in the
 * bin (0..1, the axis's own scale; periodic axes wrap), normalised so that
 * every node bin keeps its base weight. Events elsewhere keep base. The
 * exponent is held to +-10. unfolded (n_vertex) any normalisation; col
 * (mc->n): each event's column (ef_response_events_columns: its vertex bin,
 * other values outside); work: ef_ibu_reweight_work_size doubles. Not
 * collective. */
size_t ef_ibu_reweight_work_size(const ef_binning *vertex);
void ef_ibu_reweight(const ef_binning *vertex, const ef_events *mc, const double *base,
                     const double *unfolded, const unsigned char *nodes, const int32_t *col,
                     double *work, double *out);

#endif
