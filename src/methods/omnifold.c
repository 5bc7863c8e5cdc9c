/* OmniFold as a campaign method (include/ensfold/method.h): the replica's
 * bootstrap weights and the unit's seed into an ef_omnifold_problem, then
 * ef_omnifold_run (src/unfold/omnifold.c). Its per-event weights are its
 * unbinned output (campaign.unbinned). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/ibu.h"
#include "ensfold/method.h"
#include "ensfold/omnifold.h"
#include "ensfold/rng.h"
#include "ensfold/unit.h"

typedef struct {
  ef_omnifold_ws *of;
  double *mcw;     /* (n_mc) the replica's MC bootstrap weights (campaign.bootstrap_mc) */
  double *weights; /* (n_mc) every MC event's final weight */
  unsigned char *seen; /* (n_vertex) the bins the detector sees (omnifold.blind_efficiency) */
} of_ws;

static void of_ws_destroy(void *p) {
  of_ws *ws = p;
  if (!ws) return;
  ef_omnifold_ws_destroy(ws->of);
  free(ws->mcw);
  free(ws->weights);
  free(ws->seen);
  free(ws);
}

static int of_ws_create(ef_ctx *ctx, void **out, const ef_config *cfg, const ef_inputs *in) {
  const ef_events *mc = ef_inputs_mc(in);
  of_ws *ws = calloc(1, sizeof *ws);
  if (!ws) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the OmniFold workspace");
  size_t nv = (size_t)ef_binning_count(ef_inputs_vertex_binning(in));
  int rc = ef_omnifold_ws_create(ctx, &ws->of, &cfg->omnifold, mc, cfg->physics.beam_energy,
                                 ef_inputs_data(in)->n, nv);
  if (rc == EF_OK) {
    ws->mcw = malloc((mc->n ? mc->n : 1) * sizeof *ws->mcw);
    ws->weights = malloc((mc->n ? mc->n : 1) * sizeof *ws->weights);
    ws->seen = malloc(nv ? nv : 1);
    if (ws->seen)
      ef_ibu_mask_efficiency(ef_inputs_response(in), cfg->omnifold.blind_efficiency, ws->seen);
    if (!ws->mcw || !ws->weights || !ws->seen)
      rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the OmniFold weights");
  }
  if (rc != EF_OK) {
    of_ws_destroy(ws);
    return rc;
  }
  *out = ws;
  return EF_OK;
}

static int of_run(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
                  int attempt, void *p, double *weights, ef_unit_parts *out) {
  of_ws *ws = p;
  if (!ws) return ef_error_set(ctx, EF_ERR_INTERNAL, "unit %d: no OmniFold workspace", u->id);
  const ef_events *data = ef_inputs_data(in), *mc = ef_inputs_mc(in);
  int nv = ef_binning_count(ef_inputs_vertex_binning(in));
  ef_omnifold_problem pb = {.data = data, .mc = mc, .vtx = ef_inputs_vertex_binning(in),
                            .fill_prior = ef_inputs_prior(in, u->fill), .seen = ws->seen,
                            .seed = u->seed,
                            .attempt = attempt, .iter_hist = out->iter_hist,
                            .iter_ess = out->iter_ess};
  if (u->replica > 0) {
    ef_bootstrap_weights(cfg->seed, EF_RNG_BOOTSTRAP, u->replica, data->n, weights);
    pb.data_weights = weights;
    if (cfg->campaign.bootstrap_mc) {
      ef_bootstrap_weights(cfg->seed, EF_RNG_BOOTSTRAP_MC, u->replica, mc->n, ws->mcw);
      pb.mc_weights = ws->mcw;
    }
  }
  EF_CHECK(ef_omnifold_run(ctx, &cfg->omnifold, &pb, ws->of, out->hist, ws->weights));
  memcpy(out->eff, ef_inputs_mc_efficiency(in), (size_t)ef_inputs_n_cat(in) * nv * sizeof(double));
  /* unbinned: N MC events spread over the sample with their own weights
   * (times n_mc / N: they histogram to hist up to the subsample) */
  size_t N = (size_t)out->n_unbinned, D = (size_t)mc->space.dim;
  for (size_t j = 0; j < N; j++) {
    size_t e = (size_t)((unsigned long long)j * mc->n / N);
    memcpy(out->ux + D * j, mc->vertex + D * e, D * sizeof(double));
    out->uw[j] = ws->weights[e] * (double)mc->n / (double)N;
  }
  if (out->n_events) memcpy(out->ew, ws->weights, mc->n * sizeof *out->ew);
  return EF_OK;
}

static void of_describe(const ef_config *cfg, char *buf, size_t len) {
  const ef_omnifold_params *o = &cfg->omnifold;
  snprintf(buf, len, "omnifold.iterations %d; both classifiers: hidden %d, layers %d, steps %d, "
           "batch %d, lr %g; ratios clipped to [1/%g, %g]; unreconstructed events: %s; the "
           "prior: the MC itself; bins with MC efficiency below omnifold.blind_efficiency "
           "(%g) take the fill model's shape, scaled to the unfolded seen bins by the fill's "
           "own ratio; classifier seeds from /units/seed (docs/methods.md)",
           o->iterations, o->net.hidden, o->net.layers, o->net.steps, o->net.batch, o->net.lr,
           o->clip, o->clip,
           o->unreconstructed == EF_OF_AVERAGE
               ? "the mean pull of their vertex bin's measured events; blind bins out of step 2"
           : o->unreconstructed == EF_OF_INTERPOLATE
               ? "step 2's ratio, learnt from the measured events alone; blind bins out of "
                 "step 2"
               : "their current weight through step 1",
           o->blind_efficiency);
}

static int of_iterations(const ef_config *cfg) { return cfg->omnifold.iterations; }

const ef_method ef_method_omnifold = {
    .name = "omnifold", .deterministic = 0, .has_own = 0, .has_curves = 0,
    .has_samples = 1, .event_weights = 1, .shares_training = 1, .learns_efficiency = 0, .cost = 500.0,
    .ws_create = of_ws_create, .ws_destroy = of_ws_destroy, .run = of_run,
    .describe = of_describe, .n_iterations = of_iterations};
