/* The campaign's inputs, identical on every rank: data and MC samples
 * (generated, or read from event files on rank 0 and broadcast), binnings,
 * fill-model priors, the nominal response and, for generated pseudo-data,
 * the expected truth. */
#ifndef ENSFOLD_INPUTS_H
#define ENSFOLD_INPUTS_H

#include "ensfold/binning.h"
#include "ensfold/config.h"
#include "ensfold/events.h"
#include "ensfold/ibu.h"
#include "ensfold/process.h"

typedef struct ef_inputs ef_inputs;

/* Collective over ef_ctx_comm(ctx) (serial if MPI_COMM_NULL). A bad input
 * file gives EF_ERR_INPUT on every rank, with rank 0's message. */
int ef_inputs_create(ef_ctx *ctx, ef_inputs **out, const ef_config *cfg);
void ef_inputs_destroy(ef_inputs *in);
/* Serial, not collective: read each input file of cfg (data.file,
 * mc.file; relative paths against the config file's directory) and check it
 * as a campaign does before it builds anything (docs/formats.md); the
 * message names the key and the file. For `ensfold validate`. */
int ef_inputs_check_files(ef_ctx *ctx, const ef_config *cfg);
/* Where the data (mc = 0) or the MC (mc = 1) come from: 1 and the resolved
 * path of data.file / mc.file in path, or 0 (path "") when generated. */
int ef_inputs_source(const ef_config *cfg, int mc, char *path, size_t len);

const ef_events *ef_inputs_data(const ef_inputs *in);
/* K: the categories of the inputs' event space (4 for pi0). */
int ef_inputs_n_cat(const ef_inputs *in);
/* campaign.unbinned: events per unit stored unbinned (unit.h). */
int ef_inputs_n_unbinned(const ef_inputs *in);
/* campaign.event_weights: the MC's events when set, else 0 (unit.h). */
size_t ef_inputs_n_event_weights(const ef_inputs *in);
/* The most iterations a method of the campaign records results after
 * (method.h, n_iterations); 0 for none. */
int ef_inputs_n_iterations(const ef_inputs *in);
const ef_events *ef_inputs_mc(const ef_inputs *in);
/* The process behind the events (process.h). */
const ef_process *ef_inputs_process(const ef_inputs *in);
const ef_binning *ef_inputs_vertex_binning(const ef_inputs *in);
const ef_binning *ef_inputs_detector_binning(const ef_inputs *in);
/* Fill model's probability per vertex bin (n_vertex), sums to 1. */
const double *ef_inputs_prior(const ef_inputs *in, int fill_model);
/* A fill slot's name: the process's model, or a fill file's ("alt-gen" for
 * alt-gen.h5). */
const char *ef_inputs_fill_name(const ef_inputs *in, int fill_model);
/* One vertex v (dim) of fill slot fill_model from stream r: the process's
 * model, or a fill file's event drawn by weight. inputs: an ef_inputs (the
 * GAN's fill sampler, gan.h). */
void ef_inputs_fill_sample(const void *inputs, int fill_model, ef_rng *r, double *v);
/* Expected truth per vertex bin (events), NULL when the data came from a
 * file (truth unknown). */
const double *ef_inputs_truth(const ef_inputs *in);
const ef_response *ef_inputs_response(const ef_inputs *in);
/* P(category | vertex bin) as the MC sees it (K, n_vertex): the mean
 * probability vector of the MC events in each bin (0 in empty bins). */
const double *ef_inputs_mc_efficiency(const ef_inputs *in);
/* The exact P(T0..T3 | vertex bin) of the configured detector (4, n_vertex),
 * averaged over an 8 x 8 grid uniform in cos theta* and phi* in each bin;
 * NULL when no sample was generated (the detector then may not be the
 * files'). */
const double *ef_inputs_exact_efficiency(const ef_inputs *in);
/* The "measured" bins of every method's closure (n_vertex, 1 = measured):
 * efficiency >= ibu.min_efficiency, at least ibu.min_expected measured
 * data events attributed (ef_inputs_attributed) and at least ibu.min_mc
 * seen MC events (ef_inputs_mc_seen). */
const unsigned char *ef_inputs_unfolded(const ef_inputs *in);
/* The vertex bins IBU iterates (n_vertex, 1 = iterated): efficiency >=
 * ibu.min_efficiency, the bins the detector sees; the others keep the fill
 * model's shape (docs/methods.md, "Fill models and normalisation"). */
const unsigned char *ef_inputs_iterated(const ef_inputs *in);
/* Measured data events attributed to each vertex bin by one Bayes step with
 * the MC's vertex distribution as prior (n_vertex; ef_ibu_attribute). */
const double *ef_inputs_attributed(const ef_inputs *in);
/* The seen MC events in each vertex bin, Kish's effective number
 * (sum w)^2 / sum w^2 of the MC events the response counts as measured
 * (n_vertex). */
const double *ef_inputs_mc_seen(const ef_inputs *in);
/* The twins outside the vertex binning that IBU unfolds (n_vertex; the same
 * rule, ef_ibu_choose_twins). */
const unsigned char *ef_inputs_unfolded_twins(const ef_inputs *in);
/* "data.file: PATH" / "mc.file: PATH", or "generated data" / "generated
 * MC": how messages name a sample. */
void ef_inputs_name(const ef_config *cfg, int mc, char *out, size_t len);
/* For a method's check_inputs: EF_ERR_INPUT, naming the MC, key (the
 * config key of the threshold need) and method, when no vertex bin's MC
 * efficiency is > 0 and >= need, so every unit of the method would fail. */
int ef_inputs_check_efficiency(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in,
                               const char *key, double need, const char *method);
/* Detector bin of each data event (n_data), -1 for T0 / outside. */
const int *ef_inputs_data_bins(const ef_inputs *in);

#endif
