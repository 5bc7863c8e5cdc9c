/* One unit: replica weights -> data histogram -> method -> result. */
#include "ensfold/unit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/gan.h"
#include "ensfold/model.h"
#include "ensfold/rng.h"

struct ef_unit_ws {
  double *weights;  /* (max(n_data, n_mc)) */
  double *data;     /* (n_detector) */
  double *ibu_work; /* ef_ibu_work_size doubles */
  ef_gan_ws *gan;   /* NULL when the campaign has no GAN method */
};

size_t ef_unit_result_len(const ef_inputs *in) {
  size_t nv = (size_t)ef_binning_count(ef_inputs_vertex_binning(in));
  return 6 * nv + 2 * EF_UNIT_LOSS_POINTS;
}

size_t ef_unit_finite_len(const ef_unit *u, const ef_inputs *in) {
  size_t nv = (size_t)ef_binning_count(ef_inputs_vertex_binning(in));
  return ef_method_deterministic(u->method) ? 5 * nv + 2 * EF_UNIT_LOSS_POINTS
                                            : ef_unit_result_len(in);
}

void ef_bootstrap_weights(uint64_t seed, uint32_t purpose, int replica, size_t n, double *w) {
  ef_rng r;
  ef_rng_init(&r, seed, purpose, (uint32_t)replica);
  for (size_t i = 0; i < n; i++) w[i] = (double)ef_rng_poisson(&r, 1.0);
}

int ef_unit_ws_create(ef_ctx *ctx, ef_unit_ws **out, const ef_config *cfg, const ef_inputs *in) {
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
  if (cfg->campaign.methods & ~(1u << EF_METHOD_IBU)) {
    int rc = ef_gan_ws_create(ctx, &ws->gan, cfg, nd, nm);
    if (rc != EF_OK) {
      ef_unit_ws_destroy(ws);
      return rc;
    }
  }
  *out = ws;
  return EF_OK;
}

void ef_unit_ws_destroy(ef_unit_ws *ws) {
  if (!ws) return;
  free(ws->weights);
  free(ws->data);
  free(ws->ibu_work);
  ef_gan_ws_destroy(ws->gan);
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
                         ef_inputs_unfolded(in), ws->ibu_work, result);
  ef_response_destroy(boot);
  return rc;
}

int ef_method_deterministic(int method) { return method == EF_METHOD_IBU; }

int ef_unit_retry_differs(const ef_unit *u) { return !ef_method_deterministic(u->method); }

int ef_unit_run(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
                int attempt, ef_unit_ws *ws, double *result) {
  size_t nv = (size_t)ef_binning_count(ef_inputs_vertex_binning(in));
  double *eff = result + nv, *loss_d = result + 5 * nv, *loss_g = loss_d + EF_UNIT_LOSS_POINTS;
  double *own = loss_g + EF_UNIT_LOSS_POINTS;
  switch (u->method) {
  case EF_METHOD_IBU:
    for (size_t i = 0; i < nv; i++) own[i] = NAN; /* no answer of its own where unmeasured */
    memcpy(eff, ef_inputs_mc_efficiency(in), 4 * nv * sizeof *eff);
    memset(loss_d, 0, 2 * EF_UNIT_LOSS_POINTS * sizeof *loss_d);
    return run_ibu(ctx, cfg, in, u, ws, result);
  case EF_METHOD_GAN_TOPO:
  case EF_METHOD_GAN_MIXED: {
    if (!ws->gan)
      return ef_error_set(ctx, EF_ERR_INTERNAL, "unit %d: no GAN workspace", u->id);
    ef_gan_problem pb = {
        .method = u->method, .data = ef_inputs_data(in), .mc = ef_inputs_mc(in),
        .vtx = ef_inputs_vertex_binning(in),
        .efficiency = ef_response_efficiency(ef_inputs_response(in)),
        .fill_prior = ef_inputs_prior(in, u->fill), .beam_energy = cfg->physics.beam_energy,
        .seed = u->seed, .attempt = attempt};
    ef_model_init(&pb.fill, (ef_model_id)u->fill, &cfg->physics);
    if (u->replica > 0) {
      ef_bootstrap_weights(cfg->seed, EF_RNG_BOOTSTRAP, u->replica, pb.data->n, ws->weights);
      pb.data_weights = ws->weights;
    }
    /* detector networks: one stream per (method, replica) when shared, so
     * every fill model and member of a replica sees the same networks */
    if (cfg->gan.share_detector) {
      pb.det_key = u->affinity;
      pb.det_seed = ef_plan_detector_seed(cfg->seed, u->method, u->replica);
    } else {
      pb.det_key = -1 - (int64_t)u->id;
      pb.det_seed = u->seed ^ 0x6465746563746f72ull;
    }
    return ef_gan_unit_run(ctx, &cfg->gan, &pb, ws->gan, result, own, eff,
                           EF_UNIT_LOSS_POINTS, loss_d, loss_g);
  }
  }
  return ef_error_set(ctx, EF_ERR_INTERNAL, "unit %d: unknown method %d", u->id, u->method);
}
