/* Bin-by-bin correction factors as a campaign method (include/ensfold/
 * method.h): in each vertex bin i, the replica's data reconstructed in the
 * same angular bin (all measured topologies) times the MC's ratio of true
 * to reconstructed events there, C_i = (MC weight with vertex in i) / (MC
 * weight reconstructed in i). A classical method some analyses still use:
 * exact when the MC has the data's shape, biased by the MC's shape
 * otherwise (no iteration). The bins outside ef_inputs_unfolded keep the
 * fill model's shape at the unfolded bins' normalisation, as IBU's do. It
 * needs the detector binning equal to the vertex binning. */
#include <stdlib.h>
#include <string.h>

#include "ensfold/rng.h"
#include "ensfold/unit.h"
#include "ensfold/method.h"

typedef struct {
  double *truth; /* (nv) MC weight with its vertex in bin i */
  double *reco;  /* (nv) MC weight reconstructed (T1..T3) in bin i */
  double *data;  /* (nv) the replica's data reconstructed in bin i */
} bbb_ws;

static void bbb_ws_destroy(void *p) {
  bbb_ws *ws = p;
  if (!ws) return;
  free(ws->truth);
  free(ws->reco);
  free(ws->data);
  free(ws);
}

static int bbb_ws_create(ef_ctx *ctx, void **out, const ef_config *cfg, const ef_inputs *in) {
  (void)cfg;
  size_t nv = (size_t)ef_binning_count(ef_inputs_vertex_binning(in));
  bbb_ws *ws = calloc(1, sizeof *ws);
  if (ws) {
    ws->truth = malloc(nv * sizeof(double));
    ws->reco = malloc(nv * sizeof(double));
    ws->data = malloc(nv * sizeof(double));
  }
  if (!ws || !ws->truth || !ws->reco || !ws->data) {
    bbb_ws_destroy(ws);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the bin-by-bin workspace");
  }
  *out = ws;
  return EF_OK;
}

/* The reconstructed bin of an event, -1 for a blind category or outside
 * the binning. */
static int reco_bin(const ef_binning *b, const ef_events *ev, size_t e) {
  if (ev->space.cat[ev->topology[e]].blind) return -1;
  return ef_binning_index(b, ev->reco + (size_t)ev->space.dim * e);
}

/* MC sums with weights w (NULL: the file's weights alone). */
static void mc_sums(const ef_inputs *in, const double *w, bbb_ws *ws) {
  const ef_binning *b = ef_inputs_vertex_binning(in);
  const ef_events *mc = ef_inputs_mc(in);
  size_t nv = (size_t)ef_binning_count(b);
  memset(ws->truth, 0, nv * sizeof(double));
  memset(ws->reco, 0, nv * sizeof(double));
  for (size_t e = 0; e < mc->n; e++) {
    double x = (w ? w[e] : 1.0) * (mc->weight ? mc->weight[e] : 1.0);
    int i = ef_binning_index(b, mc->vertex + (size_t)mc->space.dim * e);
    if (i >= 0) ws->truth[i] += x;
    int j = reco_bin(b, mc, e);
    if (j >= 0) ws->reco[j] += x;
  }
}

static int bbb_run(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
                   int attempt, void *p, double *weights, ef_unit_parts *out) {
  (void)attempt;
  bbb_ws *ws = p;
  const ef_binning *b = ef_inputs_vertex_binning(in);
  const ef_events *data = ef_inputs_data(in), *mc = ef_inputs_mc(in);
  int nv = ef_binning_count(b);
  memcpy(out->eff, ef_inputs_mc_efficiency(in), (size_t)ef_inputs_n_cat(in) * nv * sizeof(double));
  int boot_mc = cfg->campaign.bootstrap_mc && u->replica > 0;
  if (boot_mc) ef_bootstrap_weights(cfg->seed, EF_RNG_BOOTSTRAP_MC, u->replica, mc->n, weights);
  mc_sums(in, boot_mc ? weights : NULL, ws);
  memset(ws->data, 0, (size_t)nv * sizeof(double));
  if (u->replica > 0) ef_bootstrap_weights(cfg->seed, EF_RNG_BOOTSTRAP, u->replica, data->n, weights);
  for (size_t e = 0; e < data->n; e++) {
    int j = reco_bin(b, data, e);
    if (j >= 0)
      ws->data[j] += (u->replica > 0 ? weights[e] : 1.0) * (data->weight ? data->weight[e] : 1.0);
  }
  const unsigned char *unfolded = ef_inputs_unfolded(in);
  const double *prior = ef_inputs_prior(in, u->fill);
  double sum = 0.0, prior_sum = 0.0;
  for (int i = 0; i < nv; i++) {
    int use = unfolded[i] && ws->reco[i] > 0.0;
    out->hist[i] = use ? ws->data[i] * ws->truth[i] / ws->reco[i] : 0.0;
    if (use) {
      sum += out->hist[i];
      prior_sum += prior[i];
    }
  }
  if (!(prior_sum > 0.0))
    return ef_error_set(ctx, EF_ERR_NUMERIC, "bin-by-bin: no unfolded bin with reconstructed MC");
  for (int i = 0; i < nv; i++)
    if (!(unfolded[i] && ws->reco[i] > 0.0)) out->hist[i] = prior[i] * sum / prior_sum;
  return EF_OK;
}

/* The detector binning must be the vertex binning: a factor relates a
 * bin's reconstructed events to its true ones. */
static int bbb_check_inputs(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in,
                            unsigned files) {
  (void)cfg;
  (void)files;
  const ef_binning *v = ef_inputs_vertex_binning(in), *d = ef_inputs_detector_binning(in);
  if (ef_binning_same(v, d)) return EF_OK;
  char dv[96], dd[96];
  ef_binning_describe(v, dv, sizeof dv);
  ef_binning_describe(d, dd, sizeof dd);
  return ef_error_set(ctx, EF_ERR_INPUT,
                      "campaign.methods: bin-by-bin needs binning.detector equal to "
                      "binning.vertex (got %s and %s)", dd, dv);
}

const ef_method ef_method_bin_by_bin = {
    .name = "bin-by-bin", .deterministic = 1, .has_own = 0, .has_curves = 0,
    .shares_training = 0, .learns_efficiency = 0, .cost = 1.0, .ws_create = bbb_ws_create,
    .ws_destroy = bbb_ws_destroy, .check_inputs = bbb_check_inputs, .run = bbb_run};
