/* The GAN methods as campaign methods (include/ensfold/method.h): the
 * replica's bootstrap weights (the data's, and the MC's with
 * campaign.bootstrap_mc) and the unit's seeds into an ef_gan_problem, then
 * ef_gan_unit_run (src/unfold/gan.c). gan-topo and gan-mixed share one
 * workspace per rank. */
#include <stdlib.h>

#include "ensfold/gan.h"
#include "ensfold/rng.h"
#include "ensfold/unit.h"
#include "ensfold/method.h"

typedef struct {
  ef_gan_ws *gan;
  double *mcw; /* (n_mc) the replica's MC multiplicities (campaign.bootstrap_mc), else NULL */
} gan_ws;

/* The detector surrogate each method folds through. */
static ef_surrogate_kind detector_of(int method) {
  return method == EF_METHOD_GAN_MIXED ? EF_SURROGATE_MIXED : EF_SURROGATE_TOPO;
}

static void gan_ws_destroy(void *p) {
  gan_ws *ws = p;
  if (!ws) return;
  ef_gan_ws_destroy(ws->gan);
  free(ws->mcw);
  free(ws);
}

/* With gan.bias_correction or gan.polish the result carries the MC's
 * statistics (the pseudo-truth is a sum over its events; the polish moves
 * G's answer through the MC's response): without campaign.bootstrap_mc
 * sigma leaves them out. Said once, by rank 0, where the one workspace both
 * GAN methods share is made. */
static void warn_mc_statistics(ef_ctx *ctx, const ef_config *cfg) {
  if (cfg->campaign.bootstrap_mc || ef_ctx_rank(ctx) != 0) return;
  if (cfg->gan.bias_correction)
    ef_log(ctx, EF_LOG_WARN, "gan.bias_correction: the result carries the MC's statistics (its "
           "pseudo-truth is a sum over the MC's events, reweighted), and sigma leaves them out "
           "unless campaign.bootstrap_mc is true (docs/methods.md, \"Bias correction\")");
  if (cfg->gan.polish > 0)
    ef_log(ctx, EF_LOG_WARN, "gan.polish: the result carries the MC's statistics (OmniFold "
           "moves G's answer through the MC's response), and sigma leaves them out unless "
           "campaign.bootstrap_mc is true (docs/methods.md, \"The polish\")");
}

static int gan_ws_create(ef_ctx *ctx, void **out, const ef_config *cfg, const ef_inputs *in) {
  const ef_events *mc = ef_inputs_mc(in);
  warn_mc_statistics(ctx, cfg);
  unsigned detectors = 0;
  for (int m = EF_METHOD_GAN_TOPO; m <= EF_METHOD_GAN_MIXED; m++)
    if (cfg->campaign.methods >> m & 1u) detectors |= 1u << detector_of(m);
  gan_ws *ws = calloc(1, sizeof *ws);
  if (!ws) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the GAN workspace");
  int rc = ef_gan_ws_create(ctx, &ws->gan, &cfg->gan, &cfg->omnifold, detectors, mc,
                            ef_inputs_data(in), cfg->physics.beam_energy,
                            ef_binning_count(ef_inputs_vertex_binning(in)));
  if (rc == EF_OK && cfg->campaign.bootstrap_mc &&
      !(ws->mcw = malloc((mc->n ? mc->n : 1) * sizeof *ws->mcw)))
    rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the MC's bootstrap weights");
  if (rc != EF_OK) {
    gan_ws_destroy(ws);
    return rc;
  }
  *out = ws;
  return EF_OK;
}

static int gan_run(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
                   int attempt, void *p, double *weights, ef_unit_parts *out) {
  gan_ws *ws = p;
  if (!ws) return ef_error_set(ctx, EF_ERR_INTERNAL, "unit %d: no GAN workspace", u->id);
  ef_gan_problem pb = {
      .detector = detector_of(u->method), .data = ef_inputs_data(in), .mc = ef_inputs_mc(in),
      .vtx = ef_inputs_vertex_binning(in),
      .efficiency = ef_response_efficiency(ef_inputs_response(in)),
      .fill_prior = ef_inputs_prior(in, u->fill), .fill_sample = ef_inputs_fill_sample,
      .fill_arg = in, .fill_model = u->fill, .seed = u->seed,
      .attempt = attempt};
  if (u->replica > 0) {
    ef_bootstrap_weights(cfg->seed, EF_RNG_BOOTSTRAP, u->replica, pb.data->n, weights);
    pb.data_weights = weights;
    if (ws->mcw) { /* the stream every method draws the MC replica from */
      ef_bootstrap_weights(cfg->seed, EF_RNG_BOOTSTRAP_MC, u->replica, pb.mc->n, ws->mcw);
      pb.mc_weights = ws->mcw;
    }
  }
  /* detector networks: one stream per (method, replica, member), the
   * unit's common-random-number seed, so every fill model of a member sees
   * the same networks and members differ in them (their training noise is
   * training noise, not statistics); shared: trained once and kept (the
   * key is per replica, so it also follows the MC's replica) */
  pb.det_seed = ef_plan_detector_seed(u->seed, u->method);
  pb.det_key = cfg->gan.share_detector ? u->affinity : -1 - (int64_t)u->id;
  return ef_gan_unit_run(ctx, &cfg->gan, &pb, ws->gan, out->hist, out->own, out->eff,
                         EF_UNIT_LOSS_POINTS, out->loss_d, out->loss_g, out->n_unbinned, out->ux,
                         out->uw);
}

/* Some vertex bin must reach gan.blind_efficiency, else every bin is blind
 * (checked when the MC is a file; generated MC keeps the unit's message).
 * Any event space: the networks see it through its feature map (featmap.h). */
static int gan_check_inputs(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in,
                            unsigned files) {
  if (!(files & 2u)) return EF_OK;
  return ef_inputs_check_efficiency(ctx, cfg, in, "gan.blind_efficiency",
                                    cfg->gan.blind_efficiency, "gan-topo / gan-mixed");
}

const ef_method ef_method_gan_topo = {
    .name = "gan-topo", .deterministic = 0, .has_own = 1, .has_curves = 1,
    .shares_training = 1, .learns_efficiency = 1, .has_samples = 1, .cost = 1000.0,
    .ws_create = gan_ws_create, .ws_destroy = gan_ws_destroy, .check_inputs = gan_check_inputs,
    .run = gan_run};

const ef_method ef_method_gan_mixed = {
    .name = "gan-mixed", .deterministic = 0, .has_own = 1, .has_curves = 1,
    .shares_training = 1, .learns_efficiency = 1, .has_samples = 1, .cost = 1000.0,
    .ws_create = gan_ws_create, .ws_destroy = gan_ws_destroy, .check_inputs = gan_check_inputs,
    .run = gan_run};
