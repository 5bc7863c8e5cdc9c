/* One unit: its method from the registry, into a result row. */
#include "ensfold/unit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/rng.h"

struct ef_unit_ws {
  double *weights;                       /* (max(n_data, n_mc)) */
  double *wsum;                          /* (nv) the unbinned MC events' weight per bin */
  void *ws[EF_N_METHODS];                /* each method's workspace (shared by methods
                                          * with the same ws_create), NULL if none */
  unsigned char owner[EF_N_METHODS];     /* 1: method m created ws[m] (and destroys it) */
};

size_t ef_unit_loss_offset(const ef_inputs *in) {
  size_t nv = (size_t)ef_binning_count(ef_inputs_vertex_binning(in));
  return (1 + (size_t)ef_inputs_n_cat(in)) * nv;
}

/* Observables of the space. */
static size_t dim_of(const ef_inputs *in) { return (size_t)ef_inputs_data(in)->space.dim; }

size_t ef_unit_result_len(const ef_inputs *in) {
  size_t nv = (size_t)ef_binning_count(ef_inputs_vertex_binning(in));
  size_t n = (size_t)ef_inputs_n_unbinned(in);
  return ef_unit_loss_offset(in) + 2 * EF_UNIT_LOSS_POINTS + nv + n * (dim_of(in) + 1) +
         ef_inputs_n_event_weights(in) + (size_t)ef_inputs_n_iterations(in) * (nv + 1);
}

ef_unit_parts ef_unit_row_parts(double *row, const ef_inputs *in) {
  size_t nv = (size_t)ef_binning_count(ef_inputs_vertex_binning(in));
  size_t n = (size_t)ef_inputs_n_unbinned(in);
  double *loss = row + (1 + (size_t)ef_inputs_n_cat(in)) * nv;
  double *ux = loss + 2 * EF_UNIT_LOSS_POINTS + nv, *ew = ux + n * (dim_of(in) + 1);
  size_t ne = ef_inputs_n_event_weights(in);
  int ni = ef_inputs_n_iterations(in);
  return (ef_unit_parts){.hist = row, .eff = row + nv, .loss_d = loss,
                         .loss_g = loss + EF_UNIT_LOSS_POINTS,
                         .own = loss + 2 * EF_UNIT_LOSS_POINTS, .n_unbinned = (int)n,
                         .ux = n ? ux : NULL, .uw = n ? ux + n * dim_of(in) : NULL,
                         .n_events = (int)ne, .ew = ne ? ew : NULL, .n_iter = ni,
                         .iter_hist = ni ? ew + ne : NULL,
                         .iter_ess = ni ? ew + ne + (size_t)ni * nv : NULL};
}

int ef_method_deterministic(int method) {
  const ef_method *m = ef_method_get(method);
  return m ? m->deterministic : 0;
}

size_t ef_unit_finite_len(const ef_unit *u, const ef_inputs *in) {
  const ef_method *m = ef_method_get(u->method);
  size_t nv = (size_t)ef_binning_count(ef_inputs_vertex_binning(in));
  size_t unbinned = (size_t)ef_inputs_n_unbinned(in) * (dim_of(in) + 1);
  return ef_unit_loss_offset(in) + 2 * EF_UNIT_LOSS_POINTS + (m && m->has_own ? nv + unbinned : 0);
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
  ws->wsum = malloc((size_t)ef_binning_count(ef_inputs_vertex_binning(in)) * sizeof(double));
  if (!ws->weights || !ws->wsum) {
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
  free(ws->wsum);
  free(ws);
}

/* The binned methods' unbinned output: N MC events spread over the sample
 * (event j * n_mc / N), each weighted by its MC weight times hist / (those
 * events' weight) in its vertex bin, so that they histogram to hist; 0
 * outside the binning. wsum (nv) is scratch. */
static void reweight_mc(const ef_inputs *in, ef_unit_parts *p, double *wsum) {
  const ef_events *mc = ef_inputs_mc(in);
  const ef_binning *b = ef_inputs_vertex_binning(in);
  size_t D = dim_of(in), N = (size_t)p->n_unbinned;
  int nv = ef_binning_count(b);
  memset(wsum, 0, (size_t)nv * sizeof *wsum);
  for (int pass = 0; pass < 2; pass++)
    for (size_t j = 0; j < N; j++) {
      size_t e = (size_t)((unsigned long long)j * mc->n / N);
      const double *x = mc->vertex + D * e;
      double w = mc->weight ? mc->weight[e] : 1.0;
      int k = ef_binning_index(b, x);
      if (pass == 0) {
        if (k >= 0) wsum[k] += w;
        continue;
      }
      memcpy(p->ux + D * j, x, D * sizeof *x);
      p->uw[j] = k >= 0 && wsum[k] > 0 ? w * p->hist[k] / wsum[k] : 0.0;
    }
}

/* campaign.event_weights for a method that does not fill them: a binned
 * method's hist spread over all the MC's events bin by bin (each its MC
 * weight times hist / the bin's MC weight; 0 outside the binning), NaN for
 * a method whose samples are its own (has_samples). wsum (nv) is scratch. */
static void spread_hist(const ef_inputs *in, const ef_method *m, ef_unit_parts *p,
                        double *wsum) {
  const ef_events *mc = ef_inputs_mc(in);
  const ef_binning *b = ef_inputs_vertex_binning(in);
  size_t D = dim_of(in), N = (size_t)p->n_events;
  if (m->has_samples) {
    for (size_t e = 0; e < N; e++) p->ew[e] = NAN;
    return;
  }
  memset(wsum, 0, (size_t)ef_binning_count(b) * sizeof *wsum);
  for (size_t e = 0; e < N; e++) { /* ew holds the bin index until the second pass */
    int k = ef_binning_index(b, mc->vertex + D * e);
    p->ew[e] = k;
    if (k >= 0) wsum[k] += mc->weight ? mc->weight[e] : 1.0;
  }
  for (size_t e = 0; e < N; e++) {
    int k = (int)p->ew[e];
    double w = mc->weight ? mc->weight[e] : 1.0;
    p->ew[e] = k >= 0 && wsum[k] > 0 ? w * p->hist[k] / wsum[k] : 0.0;
  }
}

int ef_unit_retry_differs(const ef_unit *u) { return !ef_method_deterministic(u->method); }

int ef_unit_run(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
                int attempt, ef_unit_ws *ws, double *result) {
  const ef_method *m = ef_method_get(u->method);
  if (!m || u->method >= EF_N_METHODS)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "unit %d: unknown method %d", u->id, u->method);
  int nv = ef_binning_count(ef_inputs_vertex_binning(in));
  ef_unit_parts parts = ef_unit_row_parts(result, in);
  if (!m->has_own)
    for (int i = 0; i < nv; i++) parts.own[i] = NAN; /* no answer of its own where unmeasured */
  if (!m->has_curves) memset(parts.loss_d, 0, 2 * EF_UNIT_LOSS_POINTS * sizeof(double));
  for (size_t i = 0; i < (size_t)parts.n_iter * (size_t)nv; i++) /* beyond its iterations */
    parts.iter_hist[i] = NAN;
  for (int i = 0; i < parts.n_iter; i++) parts.iter_ess[i] = NAN;
  EF_CHECK(m->run(ctx, cfg, in, u, attempt, ws->ws[u->method], ws->weights, &parts));
  if (parts.n_unbinned > 0 && !m->has_samples) reweight_mc(in, &parts, ws->wsum);
  if (parts.n_events > 0 && !m->event_weights) spread_hist(in, m, &parts, ws->wsum);
  return EF_OK;
}
