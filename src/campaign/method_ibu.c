/* IBU as a campaign method (include/ensfold/method.h): the replica's data
 * histogram, the response (bootstrapped with campaign.bootstrap_mc), the
 * fill model's prior, then ef_ibu_unfold over the unfolded bins. */
#include <stdlib.h>
#include <string.h>

#include "ensfold/ibu.h"
#include "ensfold/rng.h"
#include "ensfold/unit.h"
#include "methods.h"

typedef struct {
  double *data; /* (n_detector) the replica's data histogram */
  double *work; /* ef_ibu_work_size doubles */
} ibu_ws;

static void ibu_ws_destroy(void *p) {
  ibu_ws *ws = p;
  if (!ws) return;
  free(ws->data);
  free(ws->work);
  free(ws);
}

static int ibu_ws_create(ef_ctx *ctx, void **out, const ef_config *cfg, const ef_inputs *in) {
  (void)cfg;
  const ef_response *r = ef_inputs_response(in);
  ibu_ws *ws = calloc(1, sizeof *ws);
  if (ws) {
    ws->data = malloc((size_t)ef_response_n_detector(r) * sizeof(double));
    ws->work = malloc((ef_ibu_work_size(r) + 1) * sizeof(double));
  }
  if (!ws || !ws->data || !ws->work) {
    ibu_ws_destroy(ws);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the IBU workspace");
  }
  *out = ws;
  return EF_OK;
}

static int ibu_run(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
                   int attempt, void *p, double *weights, ef_unit_parts *out) {
  (void)attempt;
  ibu_ws *ws = p;
  const ef_events *data = ef_inputs_data(in), *mc = ef_inputs_mc(in);
  const int *bins = ef_inputs_data_bins(in);
  const ef_response *resp = ef_inputs_response(in);
  ef_response *boot = NULL;
  int nv = ef_binning_count(ef_inputs_vertex_binning(in)), nd = ef_response_n_detector(resp);
  memcpy(out->eff, ef_inputs_mc_efficiency(in), 4 * (size_t)nv * sizeof(double));
  memset(ws->data, 0, (size_t)nd * sizeof(double));
  if (u->replica > 0) ef_bootstrap_weights(cfg->seed, EF_RNG_BOOTSTRAP, u->replica, data->n, weights);
  for (size_t i = 0; i < data->n; i++) {
    if (bins[i] < 0) continue;
    double w = u->replica > 0 ? weights[i] : 1.0;
    if (data->weight) w *= data->weight[i];
    ws->data[bins[i]] += w;
  }
  if (cfg->campaign.bootstrap_mc && u->replica > 0) {
    ef_bootstrap_weights(cfg->seed, EF_RNG_BOOTSTRAP_MC, u->replica, mc->n, weights);
    if (mc->weight)
      for (size_t i = 0; i < mc->n; i++) weights[i] *= mc->weight[i];
    EF_CHECK(ef_response_build(ctx, &boot, ef_inputs_vertex_binning(in),
                               ef_inputs_detector_binning(in), mc, weights));
    resp = boot;
  }
  int rc = ef_ibu_unfold(ctx, resp, ws->data, ef_inputs_prior(in, u->fill), cfg->ibu.iterations,
                         ef_inputs_unfolded(in), ws->work, out->hist);
  ef_response_destroy(boot);
  return rc;
}

const ef_method ef_method_ibu = {
    .name = "ibu", .deterministic = 1, .has_own = 0, .has_curves = 0, .shares_detector = 0,
    .learns_efficiency = 0,
    .cost = 1.0, .ws_create = ibu_ws_create, .ws_destroy = ibu_ws_destroy, .run = ibu_run};
