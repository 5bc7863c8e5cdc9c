/* Refolding: a group's mean against the data at detector level (refold.h). */
#include "refold.h"

#include <math.h>
#include <stdlib.h>

#include "ensfold/error.h"

/* The MC's seen weight per detector bin, all (tot) and from vertices inside
 * the vertex binning (in). */
static void mc_inbox(const ef_inputs *in, double *tot, double *inside) {
  const ef_events *mc = ef_inputs_mc(in);
  const ef_binning *det = ef_inputs_detector_binning(in), *vtx = ef_inputs_vertex_binning(in);
  size_t D = (size_t)mc->space.dim;
  for (size_t e = 0; e < mc->n; e++) {
    if (!ef_events_measured(mc, e)) continue;
    int j = ef_ibu_detector_bin(det, &mc->space, mc->topology[e], mc->reco + D * e);
    if (j < 0) continue;
    double w = mc->weight ? mc->weight[e] : 1.0;
    tot[j] += w;
    if (ef_binning_index(vtx, mc->vertex + D * e) >= 0) inside[j] += w;
  }
}

/* Does detector bin k (of one category's binning) lie inside the vertex
 * binning's range on every axis that neither wraps nor clamps there? */
static int inside_box(const ef_binning *det, const ef_binning *vtx, int k) {
  for (int a = ef_binning_dim(det) - 1; a >= 0; a--) { /* row-major: the last axis fastest */
    const ef_bin_axis *ax = ef_binning_axis(det, a), *vx = ef_binning_axis(vtx, a);
    int i = k % ax->n;
    k /= ax->n;
    if (vx->periodic || vx->clamp) continue;
    double e0 = ef_binning_edge(det, a, i), e1 = ef_binning_edge(det, a, i + 1);
    double tol = 1e-9 * (vx->hi - vx->lo); /* edges computed two ways: rounding */
    if (fmin(e0, e1) < vx->lo - tol || fmax(e0, e1) > vx->hi + tol) return 0;
  }
  return 1;
}

int ef_refold_setup(ef_ctx *ctx, const ef_inputs *in, ef_refold *rf) {
  *rf = (ef_refold){0};
  int nd = rf->nd = ef_response_n_detector(ef_inputs_response(in));
  rf->data = calloc((size_t)nd, sizeof *rf->data);
  rf->fold = calloc((size_t)nd, sizeof *rf->fold);
  rf->use = calloc((size_t)nd, 1);
  double *tot = calloc(2 * (size_t)nd, sizeof *tot);
  if (!rf->data || !rf->fold || !rf->use || !tot) {
    free(tot);
    ef_refold_free(rf);
    return ef_error_set(ctx, EF_ERR_NOMEM, "refolding: out of memory (%d detector bins)", nd);
  }
  const ef_events *data = ef_inputs_data(in);
  ef_ibu_data_histogram(ef_inputs_detector_binning(in), data, data->weight, rf->data);
  mc_inbox(in, tot, tot + nd);
  const ef_binning *det = ef_inputs_detector_binning(in), *vtx = ef_inputs_vertex_binning(in);
  int n_det = ef_binning_count(det);
  for (int j = 0; j < nd; j++) {
    rf->use[j] = rf->data[j] >= EF_REFOLD_MIN_DATA && tot[j] > 0 &&
                 tot[nd + j] >= EF_REFOLD_MIN_INBOX * tot[j] && inside_box(det, vtx, j % n_det);
    rf->ndf += rf->use[j];
  }
  free(tot);
  return EF_OK;
}

double ef_refold_chi2(ef_refold *rf, const ef_inputs *in, const double *mean) {
  if (rf->ndf == 0) return NAN;
  ef_response_fold(ef_inputs_response(in), mean, rf->fold);
  double chi2 = 0.0;
  for (int j = 0; j < rf->nd; j++)
    if (rf->use[j]) {
      double d = rf->fold[j] - rf->data[j];
      chi2 += d * d / rf->data[j];
    }
  return isfinite(chi2) ? chi2 : NAN;
}

void ef_refold_free(ef_refold *rf) {
  free(rf->data);
  free(rf->use);
  free(rf->fold);
  *rf = (ef_refold){0};
}
