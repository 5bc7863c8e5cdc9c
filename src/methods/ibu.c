/* IBU as a campaign method (include/ensfold/method.h): the replica's data
 * histogram, the response (bootstrapped with campaign.bootstrap_mc), the
 * fill model's prior, then ef_ibu_unfold over the bins the detector sees
 * (ef_inputs_iterated). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/ibu.h"
#include "ensfold/model.h"
#include "ensfold/rng.h"
#include "ensfold/unit.h"
#include "ensfold/method.h"

typedef struct {
  double *data;   /* (n_detector) the replica's data histogram */
  double *work;   /* ef_ibu_work_size doubles */
  double *mc_w;   /* ibu.reweight: (n_mc) the reweighted MC's weights */
  double *rw_work; /* ibu.reweight: ef_ibu_reweight_work_size doubles */
  ef_response_events *events; /* ibu.reweight or campaign.bootstrap_mc: the MC binned once */
} ibu_ws;

static void ibu_ws_destroy(void *p) {
  ibu_ws *ws = p;
  if (!ws) return;
  free(ws->data);
  free(ws->work);
  free(ws->mc_w);
  free(ws->rw_work);
  ef_response_events_free(ws->events);
  free(ws);
}

static int ibu_ws_create(ef_ctx *ctx, void **out, const ef_config *cfg, const ef_inputs *in) {
  const ef_response *r = ef_inputs_response(in);
  ibu_ws *ws = calloc(1, sizeof *ws);
  int rw_ok = 1;
  if (ws) {
    ws->data = malloc((size_t)ef_response_n_detector(r) * sizeof(double));
    ws->work = malloc((ef_ibu_work_size(r) + 1) * sizeof(double));
    if (cfg->ibu.reweight > 0) {
      ws->mc_w = malloc((ef_inputs_mc(in)->n + 1) * sizeof(double));
      ws->rw_work =
          malloc(ef_ibu_reweight_work_size(ef_inputs_vertex_binning(in)) * sizeof(double));
      rw_ok = ws->mc_w && ws->rw_work;
    }
  }
  if (!ws || !ws->data || !ws->work || !rw_ok) {
    ibu_ws_destroy(ws);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the IBU workspace");
  }
  if (cfg->ibu.reweight > 0 || cfg->campaign.bootstrap_mc) {
    int rc = ef_response_bin(ctx, &ws->events, ef_inputs_vertex_binning(in),
                             ef_inputs_detector_binning(in), ef_inputs_mc(in));
    if (rc != EF_OK) {
      ibu_ws_destroy(ws);
      return rc;
    }
  }
  *out = ws;
  return EF_OK;
}

/* Rule 4 of the normalisation (docs/methods.md): the bins outside the
 * measured set report the fill model's shape at the measured region's
 * normalisation, n_i = p0_i sum_meas n / sum_meas p0. IBU iterates the seen
 * bins with few events too, so that their fold follows the data rather than
 * the fill's shape, but their own values rest on a few events (a bin whose
 * detector bins are empty goes to 0 in every replica): the result keeps the
 * fill there, as in the blind bins. */
static void fill_unmeasured(const double *prior, const unsigned char *measured, int nv,
                            double *hist) {
  double n = 0.0, p = 0.0;
  for (int i = 0; i < nv; i++)
    if (measured[i]) {
      n += hist[i];
      p += prior[i];
    }
  if (!(p > 0.0)) return;
  for (int i = 0; i < nv; i++)
    if (!measured[i]) hist[i] = prior[i] * n / p;
}

/* ws->data (n_detector): the replica's data histogram. */
static void replica_data(const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
                         ibu_ws *ws, double *weights) {
  const ef_events *data = ef_inputs_data(in);
  const int *bins = ef_inputs_data_bins(in);
  memset(ws->data, 0, (size_t)ef_response_n_detector(ef_inputs_response(in)) * sizeof(double));
  if (u->replica > 0) ef_bootstrap_weights(cfg->seed, EF_RNG_BOOTSTRAP, u->replica, data->n, weights);
  for (size_t i = 0; i < data->n; i++) {
    if (bins[i] < 0) continue;
    double w = u->replica > 0 ? weights[i] : 1.0;
    if (data->weight) w *= data->weight[i];
    ws->data[bins[i]] += w;
  }
}

/* The MC's weights of the replica's response (n_mc, NULL: all 1): with
 * campaign.bootstrap_mc the replica's resampling (into weights) times the
 * MC's own weights, else the MC's own weights. */
static const double *replica_mc_weights(const ef_config *cfg, const ef_inputs *in,
                                        const ef_unit *u, double *weights) {
  const ef_events *mc = ef_inputs_mc(in);
  if (!(cfg->campaign.bootstrap_mc && u->replica > 0)) return mc->weight;
  ef_bootstrap_weights(cfg->seed, EF_RNG_BOOTSTRAP_MC, u->replica, mc->n, weights);
  if (mc->weight)
    for (size_t i = 0; i < mc->n; i++) weights[i] *= mc->weight[i];
  return weights;
}

/* ibu.reweight passes: the response rebuilt from the MC reweighted inside
 * the measured bins towards out->hist (ef_ibu_reweight), then unfolded
 * again from the fill's prior. *boot holds the last response built. */
static int reweight_passes(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in,
                           const double *mc_w, const double *prior, ibu_ws *ws,
                           ef_response **boot, double *hist) {
  const ef_binning *vb = ef_inputs_vertex_binning(in);
  for (int pass = 0; pass < cfg->ibu.reweight; pass++) {
    ef_ibu_reweight(vb, ef_inputs_mc(in), mc_w, hist, ef_inputs_unfolded(in),
                    ef_response_events_columns(ws->events), ws->rw_work, ws->mc_w);
    ef_response_destroy(*boot);
    *boot = NULL;
    EF_CHECK(ef_response_build_binned(ctx, boot, ws->events, ws->mc_w));
    EF_CHECK(ef_ibu_unfold(ctx, *boot, ws->data, prior, cfg->ibu.iterations,
                           ef_inputs_iterated(in), ef_inputs_unfolded_twins(in), ws->work, hist));
  }
  return EF_OK;
}

static int ibu_run(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
                   int attempt, void *p, double *weights, ef_unit_parts *out) {
  (void)attempt;
  ibu_ws *ws = p;
  const ef_response *resp = ef_inputs_response(in);
  ef_response *boot = NULL;
  int nv = ef_binning_count(ef_inputs_vertex_binning(in));
  memcpy(out->eff, ef_inputs_mc_efficiency(in), (size_t)ef_inputs_n_cat(in) * nv * sizeof(double));
  replica_data(cfg, in, u, ws, weights);
  const double *mc_w = replica_mc_weights(cfg, in, u, weights);
  if (mc_w == weights) {
    EF_CHECK(ef_response_build_binned(ctx, &boot, ws->events, weights));
    resp = boot;
  }
  const double *prior = ef_inputs_prior(in, u->fill);
  int rc = ef_ibu_unfold(ctx, resp, ws->data, prior, cfg->ibu.iterations, ef_inputs_iterated(in),
                         ef_inputs_unfolded_twins(in), ws->work, out->hist);
  if (rc == EF_OK) rc = reweight_passes(ctx, cfg, in, mc_w, prior, ws, &boot, out->hist);
  if (rc == EF_OK) fill_unmeasured(prior, ef_inputs_unfolded(in), nv, out->hist);
  ef_response_destroy(boot);
  return rc;
}

/* IBU scales its start to the data the response reaches: some measured
 * data event must lie in a detector bin the MC reaches from a vertex bin
 * the fill model's prior covers. Bootstrap replicas only reweight the
 * nominal samples, so the nominal decides. */
static int check_reach(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in) {
  const ef_response *r = ef_inputs_response(in);
  const ef_events *data = ef_inputs_data(in);
  const int *bins = ef_inputs_data_bins(in);
  int nd = ef_response_n_detector(r);
  double *hist = calloc(2 * (size_t)nd, sizeof *hist); /* (nd) data, then (nd) folded prior */
  if (!hist) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory checking the inputs");
  double *nu = hist + nd;
  size_t n_meas = 0;
  for (size_t i = 0; i < data->n; i++) {
    double w = data->weight ? data->weight[i] : 1.0;
    if (bins[i] < 0 || !(w > 0.0)) continue;
    hist[bins[i]] += w;
    n_meas++;
  }
  int bad = -1;
  for (int f = 0; bad < 0 && f < EF_N_FILLS; f++) {
    if (!(cfg->campaign.fill_models & (1u << f))) continue;
    ef_response_fold(r, ef_inputs_prior(in, f), nu);
    double seen = 0.0;
    for (int j = 0; j < nd; j++)
      if (nu[j] > 0.0) seen += hist[j];
    if (!(seen > 0.0)) bad = f;
  }
  free(hist);
  if (bad < 0) return EF_OK;
  char dname[2 * EF_PATH_MAX + 16], mname[2 * EF_PATH_MAX + 16];
  ef_inputs_name(cfg, 0, dname, sizeof dname);
  ef_inputs_name(cfg, 1, mname, sizeof mname);
  return ef_error_set(ctx, EF_ERR_INPUT,
                      "%s: /events/reco: none of the %zu measured data events (T1..T3, weight > "
                      "0, inside binning.detector) lies in a detector bin that the MC (%s) "
                      "reaches, so every ibu unit would fail: are the data and the MC of the "
                      "same detector?", dname, n_meas, mname);
}

/* Some bin must be unfolded (ef_inputs_unfolded: ibu.min_efficiency,
 * ibu.min_expected and ibu.min_mc), whatever the inputs' source. */
static int check_unfolded(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in) {
  int nv = ef_binning_count(ef_inputs_vertex_binning(in));
  const unsigned char *unfolded = ef_inputs_unfolded(in);
  const double *eps = ef_response_efficiency(ef_inputs_response(in));
  const double *attributed = ef_inputs_attributed(in), *mc = ef_inputs_mc_seen(in);
  double best = 0.0, best_mc = 0.0; /* the most data (MC) of a bin passing min_efficiency */
  for (int k = 0; k < nv; k++) {
    if (unfolded[k]) return EF_OK;
    if (!(eps[k] > 0.0 && eps[k] >= cfg->ibu.min_efficiency)) continue;
    if (attributed[k] > best) best = attributed[k];
    if (attributed[k] >= cfg->ibu.min_expected && mc[k] > best_mc) best_mc = mc[k];
  }
  if (best >= cfg->ibu.min_expected)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "ibu.min_mc = %g: no vertex bin with efficiency >= ibu.min_efficiency and "
                        "ibu.min_expected data events rests on that many seen MC events (the most "
                        "is %.3g), so every ibu unit would fail; use more MC, lower ibu.min_mc or "
                        "use coarser binning.vertex", cfg->ibu.min_mc, best_mc);
  return ef_error_set(ctx, EF_ERR_INPUT,
                      "ibu.min_expected = %g: no vertex bin with efficiency >= ibu.min_efficiency "
                      "has that many measured data events attributed to it (the most is %.3g), "
                      "so every ibu unit would fail; lower ibu.min_expected or use coarser "
                      "binning.vertex", cfg->ibu.min_expected, best);
}

static int ibu_check_inputs(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in,
                            unsigned files) {
  if (files & 2u)
    EF_CHECK(ef_inputs_check_efficiency(ctx, cfg, in, "ibu.min_efficiency",
                                        cfg->ibu.min_efficiency, "ibu"));
  if (files) EF_CHECK(check_reach(ctx, cfg, in));
  return check_unfolded(ctx, cfg, in);
}

static void ibu_describe(const ef_config *cfg, char *buf, size_t len) {
  snprintf(buf, len, "ibu.iterations %d (min_efficiency %g, min_expected %g, min_mc %g, "
           "reweight %d): a vertex bin's result spread over its MC events by their MC weights",
           cfg->ibu.iterations, cfg->ibu.min_efficiency, cfg->ibu.min_expected, cfg->ibu.min_mc,
           cfg->ibu.reweight);
}

const ef_method ef_method_ibu = {
    .name = "ibu", .deterministic = 1, .has_own = 0, .has_curves = 0, .shares_training = 0,
    .learns_efficiency = 0,
    .cost = 1.0, .ws_create = ibu_ws_create, .ws_destroy = ibu_ws_destroy,
    .check_inputs = ibu_check_inputs, .run = ibu_run, .describe = ibu_describe};
