/* One unit: replica weights -> data histogram -> method -> result. */
#include "ensfold/unit.h"

#include <stdlib.h>
#include <string.h>

#include "ensfold/rng.h"

struct ef_unit_ws {
  double *weights;  /* (max(n_data, n_mc)) */
  double *data;     /* (n_detector) */
  double *ibu_work; /* ef_ibu_work_size doubles */
};

void ef_bootstrap_weights(uint64_t seed, uint32_t purpose, int replica, size_t n, double *w) {
  ef_rng r;
  ef_rng_init(&r, seed, purpose, (uint32_t)replica);
  for (size_t i = 0; i < n; i++) w[i] = (double)ef_rng_poisson(&r, 1.0);
}

int ef_unit_ws_create(ef_ctx *ctx, ef_unit_ws **out, const ef_inputs *in) {
  *out = NULL;
  ef_unit_ws *ws = calloc(1, sizeof *ws);
  if (!ws) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a unit workspace");
  size_t nd = ef_inputs_data(in)->n, nm = ef_inputs_mc(in)->n;
  size_t n = nd > nm ? nd : nm;
  const ef_response *r = ef_inputs_response(in);
  ws->weights = malloc((n ? n : 1) * sizeof(double));
  ws->data = malloc((size_t)ef_response_n_detector(r) * sizeof(double));
  ws->ibu_work = malloc((ef_ibu_work_size(r) + 1) * sizeof(double));
  if (!ws->weights || !ws->data || !ws->ibu_work) {
    ef_unit_ws_destroy(ws);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a unit workspace");
  }
  *out = ws;
  return EF_OK;
}

void ef_unit_ws_destroy(ef_unit_ws *ws) {
  if (!ws) return;
  free(ws->weights);
  free(ws->data);
  free(ws->ibu_work);
  free(ws);
}

static int run_ibu(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
                   ef_unit_ws *ws, double *result) {
  const ef_events *data = ef_inputs_data(in), *mc = ef_inputs_mc(in);
  const int *bins = ef_inputs_data_bins(in);
  const ef_response *resp = ef_inputs_response(in);
  ef_response *boot = NULL;
  int nd = ef_response_n_detector(resp);
  memset(ws->data, 0, (size_t)nd * sizeof(double));
  if (u->replica > 0)
    ef_bootstrap_weights(cfg->seed, EF_RNG_BOOTSTRAP, u->replica, data->n, ws->weights);
  for (size_t i = 0; i < data->n; i++) {
    if (bins[i] < 0) continue;
    double w = u->replica > 0 ? ws->weights[i] : 1.0;
    if (data->weight) w *= data->weight[i];
    ws->data[bins[i]] += w;
  }
  if (cfg->campaign.bootstrap_mc && u->replica > 0) {
    ef_bootstrap_weights(cfg->seed, EF_RNG_BOOTSTRAP_MC, u->replica, mc->n, ws->weights);
    if (mc->weight)
      for (size_t i = 0; i < mc->n; i++) ws->weights[i] *= mc->weight[i];
    EF_CHECK(ef_response_build(ctx, &boot, ef_inputs_vertex_binning(in),
                               ef_inputs_detector_binning(in), mc, ws->weights));
    resp = boot;
  }
  int rc = ef_ibu_unfold(ctx, resp, ws->data, ef_inputs_prior(in, u->fill), cfg->ibu.iterations,
                         cfg->ibu.min_efficiency, ws->ibu_work, result);
  ef_response_destroy(boot);
  return rc;
}

int ef_unit_run(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
                ef_unit_ws *ws, double *result) {
  switch (u->method) {
  case EF_METHOD_IBU: return run_ibu(ctx, cfg, in, u, ws, result);
  }
  return ef_error_set(ctx, EF_ERR_INTERNAL, "unit %d: unknown method %d", u->id, u->method);
}
