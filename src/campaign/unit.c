/* One unit: its method from the registry, into a result row. */
#include "ensfold/unit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/rng.h"

struct ef_unit_ws {
  double *weights;                       /* (max(n_data, n_mc)) */
  void *ws[EF_N_METHODS];                /* each method's workspace (shared by methods
                                          * with the same ws_create), NULL if none */
  unsigned char owner[EF_N_METHODS];     /* 1: method m created ws[m] (and destroys it) */
};

size_t ef_unit_loss_offset(const ef_inputs *in) {
  size_t nv = (size_t)ef_binning_count(ef_inputs_vertex_binning(in));
  return (1 + (size_t)ef_inputs_n_cat(in)) * nv;
}

size_t ef_unit_result_len(const ef_inputs *in) {
  size_t nv = (size_t)ef_binning_count(ef_inputs_vertex_binning(in));
  return ef_unit_loss_offset(in) + 2 * EF_UNIT_LOSS_POINTS + nv;
}

ef_unit_parts ef_unit_row_parts(double *row, int n_vertex, int n_cat) {
  size_t nv = (size_t)n_vertex;
  double *loss = row + (1 + (size_t)n_cat) * nv;
  return (ef_unit_parts){.hist = row, .eff = row + nv, .loss_d = loss,
                         .loss_g = loss + EF_UNIT_LOSS_POINTS,
                         .own = loss + 2 * EF_UNIT_LOSS_POINTS};
}

int ef_method_deterministic(int method) {
  const ef_method *m = ef_method_get(method);
  return m ? m->deterministic : 0;
}

size_t ef_unit_finite_len(const ef_unit *u, const ef_inputs *in) {
  const ef_method *m = ef_method_get(u->method);
  return m && m->has_own ? ef_unit_result_len(in)
                         : ef_unit_loss_offset(in) + 2 * EF_UNIT_LOSS_POINTS;
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
  ws->weights = malloc((n ? n : 1) * sizeof(double));
  if (!ws->weights) {
    ef_unit_ws_destroy(ws);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a unit workspace");
  }
  for (int id = 0; id < ef_method_count() && id < EF_N_METHODS; id++) {
    const ef_method *m = ef_method_get(id);
    if (!(cfg->campaign.methods & (1u << id)) || !m->ws_create) continue;
    for (int o = 0; o < id && !ws->ws[id]; o++) /* a workspace of the same kind: share it */
      if (ws->owner[o] && ef_method_get(o)->ws_create == m->ws_create) ws->ws[id] = ws->ws[o];
    if (ws->ws[id]) continue;
    int rc = m->ws_create(ctx, &ws->ws[id], cfg, in);
    if (rc != EF_OK) {
      ef_unit_ws_destroy(ws);
      return rc;
    }
    ws->owner[id] = 1;
  }
  *out = ws;
  return EF_OK;
}

void ef_unit_ws_destroy(ef_unit_ws *ws) {
  if (!ws) return;
  for (int id = 0; id < EF_N_METHODS; id++)
    if (ws->owner[id]) ef_method_get(id)->ws_destroy(ws->ws[id]);
  free(ws->weights);
  free(ws);
}

int ef_unit_retry_differs(const ef_unit *u) { return !ef_method_deterministic(u->method); }

int ef_unit_run(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
                int attempt, ef_unit_ws *ws, double *result) {
  const ef_method *m = ef_method_get(u->method);
  if (!m || u->method >= EF_N_METHODS)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "unit %d: unknown method %d", u->id, u->method);
  int nv = ef_binning_count(ef_inputs_vertex_binning(in));
  ef_unit_parts parts = ef_unit_row_parts(result, nv, ef_inputs_n_cat(in));
  if (!m->has_own)
    for (int i = 0; i < nv; i++) parts.own[i] = NAN; /* no answer of its own where unmeasured */
  if (!m->has_curves) memset(parts.loss_d, 0, 2 * EF_UNIT_LOSS_POINTS * sizeof(double));
  return m->run(ctx, cfg, in, u, attempt, ws->ws[u->method], ws->weights, &parts);
}
