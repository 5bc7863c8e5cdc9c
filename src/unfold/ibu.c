/* D'Agostini iterative Bayesian unfolding with a sparse response.
 *
 * The response is stored by vertex column (compressed sparse columns): both
 * IBU steps walk the columns, the fold nu = R p scattering into detector
 * bins and the update n_i = p_i / eps_i sum_j R_ji d_j / nu_j gathering
 * from them, so one layout serves both and memory is ~ the filled (j, i)
 * pairs. The build sorts the MC entries by (vertex bin, detector bin) with
 * two stable counting sorts, so equal pairs are summed in event order and
 * the response is bit-reproducible. */
#include "ensfold/ibu.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ef_response {
  ef_binning vertex, detector;
  int n_vertex, n_detector;
  size_t nnz;
  size_t *col_ptr; /* (n_vertex + 1): column i is entries col_ptr[i] .. col_ptr[i+1] */
  int *row;        /* (nnz) detector bin j, increasing within a column */
  double *val;     /* (nnz) R_ji = P(detector bin j | vertex bin i) */
  double *eps;     /* (n_vertex) sum_j R_ji */
};

static int binning_ok(const ef_binning *b) {
  return b->n_polar > 0 && b->n_phi > 0 &&
         (b->scheme == EF_BIN_THETA_PHI || b->scheme == EF_BIN_COS_PHI) &&
         (long long)b->n_polar * b->n_phi <= INT32_MAX / 3;
}

/* Global detector bin of event e, or -1 (T0, NaN reco). */
static int detector_bin(const ef_binning *det, int n_det, int8_t topo, const double *reco) {
  if (topo < 1 || topo > 3) return -1;
  int k = ef_binning_index(det, reco[0], reco[1]);
  return k < 0 ? -1 : (topo - 1) * n_det + k;
}

int ef_ibu_detector_bin(const ef_binning *detector, int8_t topology, const double *reco) {
  return detector_bin(detector, ef_binning_count(detector), topology, reco);
}

int ef_response_build(ef_ctx *ctx, ef_response **out, const ef_binning *vertex,
                      const ef_binning *detector, const ef_events *mc, const double *weights) {
  *out = NULL;
  if (!binning_ok(vertex) || !binning_ok(detector))
    return ef_error_set(
        ctx, EF_ERR_INPUT,
        "response: binning sizes must be positive (vertex %d x %d, detector %d x %d)",
        vertex->n_polar, vertex->n_phi, detector->n_polar, detector->n_phi);
  if (mc->n > 0 && mc->vertex == NULL)
    return ef_error_set(ctx, EF_ERR_INPUT, "response: the MC sample has no vertex truth");
  if (mc->n > (size_t)INT32_MAX)
    return ef_error_set(ctx, EF_ERR_INPUT, "response: %zu MC events exceed the supported %d", mc->n,
                        INT32_MAX);
  int nv = ef_binning_count(vertex), nd1 = ef_binning_count(detector), nd = 3 * nd1;
  size_t n = mc->n, n1 = n ? n : 1;
  int rc = EF_OK;
  ef_response *r = calloc(1, sizeof *r);
  double *denom =
      calloc((size_t)nv, sizeof *denom); /* (nv) weight of all MC events per vertex bin */
  /* (m) per kept event: vertex bin, detector bin, weight; then the sort */
  int32_t *ev_i = malloc(n1 * sizeof *ev_i), *ev_j = malloc(n1 * sizeof *ev_j);
  double *ev_w = malloc(n1 * sizeof *ev_w);
  int32_t *by_j = malloc(n1 * sizeof *by_j), *order = malloc(n1 * sizeof *order);
  size_t nb = (size_t)(nd > nv ? nd : nv) + 1;
  size_t *cnt = malloc(nb * sizeof *cnt); /* counting-sort buckets */
  EF_GOTO_ALLOC(ctx, rc, r, "response", fail);
  EF_GOTO_ALLOC(ctx, rc, denom, "response denominators", fail);
  EF_GOTO_ALLOC(ctx, rc, ev_i, "response entries", fail);
  EF_GOTO_ALLOC(ctx, rc, ev_j, "response entries", fail);
  EF_GOTO_ALLOC(ctx, rc, ev_w, "response entries", fail);
  EF_GOTO_ALLOC(ctx, rc, by_j, "response sort", fail);
  EF_GOTO_ALLOC(ctx, rc, order, "response sort", fail);
  EF_GOTO_ALLOC(ctx, rc, cnt, "response sort", fail);
  r->vertex = *vertex;
  r->detector = *detector;
  r->n_vertex = nv;
  r->n_detector = nd;

  /* Vertex and detector bin per event; denominators over every event
   * (T0 included: eps is the probability to land in any detector bin). */
  size_t m = 0;
  for (size_t e = 0; e < n; e++) {
    double w = weights ? weights[e] : 1.0;
    if (!(w >= 0.0) || isinf(w)) {
      rc = ef_error_set(ctx, EF_ERR_INPUT,
                        "response: MC weight %g of event %zu is not finite and >= 0", w, e);
      goto fail;
    }
    int8_t t = mc->topology[e];
    if (t < 0 || t > 3) {
      rc = ef_error_set(ctx, EF_ERR_INPUT, "response: MC event %zu has topology %d (0..3 allowed)",
                        e, t);
      goto fail;
    }
    int i = ef_binning_index(vertex, mc->vertex[2 * e], mc->vertex[2 * e + 1]);
    if (i < 0) {
      rc = ef_error_set(ctx, EF_ERR_INPUT, "response: MC event %zu has a NaN vertex", e);
      goto fail;
    }
    denom[i] += w;
    int j = detector_bin(detector, nd1, t, mc->reco + 2 * e);
    if (j < 0 || w == 0.0) continue;
    ev_i[m] = i;
    ev_j[m] = j;
    ev_w[m] = w;
    m++;
  }

  /* Stable counting sort by j, then by i: order[] lists the kept events in
   * (i, j, event number) order. */
  memset(cnt, 0, nb * sizeof *cnt);
  for (size_t q = 0; q < m; q++) cnt[ev_j[q] + 1]++;
  for (size_t k = 0; k + 1 < nb; k++) cnt[k + 1] += cnt[k];
  for (size_t q = 0; q < m; q++) by_j[cnt[ev_j[q]]++] = (int32_t)q;
  memset(cnt, 0, nb * sizeof *cnt);
  for (size_t q = 0; q < m; q++) cnt[ev_i[q] + 1]++;
  for (size_t k = 0; k + 1 < nb; k++) cnt[k + 1] += cnt[k];
  for (size_t q = 0; q < m; q++) order[cnt[ev_i[by_j[q]]]++] = by_j[q];

  size_t nnz = 0;
  for (size_t q = 0; q < m; q++)
    if (q == 0 || ev_i[order[q]] != ev_i[order[q - 1]] || ev_j[order[q]] != ev_j[order[q - 1]])
      nnz++;
  r->col_ptr = calloc((size_t)nv + 1, sizeof *r->col_ptr);
  r->row = malloc((nnz ? nnz : 1) * sizeof *r->row);
  r->val = malloc((nnz ? nnz : 1) * sizeof *r->val);
  r->eps = calloc((size_t)nv, sizeof *r->eps);
  EF_GOTO_ALLOC(ctx, rc, r->col_ptr, "response columns", fail);
  EF_GOTO_ALLOC(ctx, rc, r->row, "response rows", fail);
  EF_GOTO_ALLOC(ctx, rc, r->val, "response values", fail);
  EF_GOTO_ALLOC(ctx, rc, r->eps, "efficiencies", fail);
  size_t z = 0;
  for (size_t q = 0; q < m; q++) {
    int32_t p = order[q];
    if (q == 0 || ev_i[p] != ev_i[order[q - 1]] || ev_j[p] != ev_j[order[q - 1]]) {
      if (q > 0) z++;
      r->row[z] = ev_j[p];
      r->val[z] = 0.0;
      r->col_ptr[ev_i[p] + 1]++;
    }
    r->val[z] += ev_w[p];
  }
  r->nnz = nnz;
  for (int i = 0; i < nv; i++) r->col_ptr[i + 1] += r->col_ptr[i];
  for (int i = 0; i < nv; i++) {
    double s = 0.0;
    for (size_t q = r->col_ptr[i]; q < r->col_ptr[i + 1]; q++) {
      r->val[q] /= denom[i]; /* > 0: the column holds a weight > 0 */
      s += r->val[q];
    }
    r->eps[i] = s;
  }
  *out = r;
  r = NULL;

fail:
  ef_response_destroy(r);
  free(denom);
  free(cnt);
  free(ev_i);
  free(ev_j);
  free(ev_w);
  free(by_j);
  free(order);
  return rc;
}

void ef_response_destroy(ef_response *r) {
  if (!r) return;
  free(r->col_ptr);
  free(r->row);
  free(r->val);
  free(r->eps);
  free(r);
}

int ef_response_n_vertex(const ef_response *r) { return r->n_vertex; }
int ef_response_n_detector(const ef_response *r) { return r->n_detector; }
const double *ef_response_efficiency(const ef_response *r) { return r->eps; }
size_t ef_response_nnz(const ef_response *r) { return r->nnz; }

size_t ef_response_bytes(const ef_response *r) {
  return sizeof *r + ((size_t)r->n_vertex + 1) * sizeof *r->col_ptr +
         r->nnz * (sizeof *r->row + sizeof *r->val) + (size_t)r->n_vertex * sizeof *r->eps;
}

void ef_response_dense(const ef_response *r, double *out) {
  size_t nv = (size_t)r->n_vertex;
  memset(out, 0, (size_t)r->n_detector * nv * sizeof *out);
  for (size_t i = 0; i < nv; i++)
    for (size_t q = r->col_ptr[i]; q < r->col_ptr[i + 1]; q++)
      out[(size_t)r->row[q] * nv + i] = r->val[q];
}

void ef_response_fold(const ef_response *r, const double *x, double *out) {
  memset(out, 0, (size_t)r->n_detector * sizeof *out);
  for (int i = 0; i < r->n_vertex; i++)
    for (size_t q = r->col_ptr[i]; q < r->col_ptr[i + 1]; q++) out[r->row[q]] += r->val[q] * x[i];
}

void ef_ibu_data_histogram(const ef_binning *detector, const ef_events *data, const double *weights,
                           double *out) {
  int nd1 = ef_binning_count(detector);
  memset(out, 0, 3 * (size_t)nd1 * sizeof *out);
  for (size_t e = 0; e < data->n; e++) {
    int j = detector_bin(detector, nd1, data->topology[e], data->reco + 2 * e);
    if (j >= 0) out[j] += weights ? weights[e] : 1.0;
  }
}

size_t ef_ibu_work_size(const ef_response *r) {
  return (size_t)r->n_detector + (size_t)r->n_vertex;
}

/* Bin i is unfolded (not kept at the scaled prior): chosen, and reached
 * by this response (a bootstrapped response can lose a bin's last event). */
static int measured(const ef_response *r, int i, const unsigned char *unfold) {
  return unfold[i] && r->eps[i] > 0.0;
}

void ef_ibu_mask_efficiency(const ef_response *r, double eps_min, unsigned char *unfold) {
  for (int i = 0; i < r->n_vertex; i++) unfold[i] = r->eps[i] > 0.0 && r->eps[i] >= eps_min;
}

void ef_ibu_attribute(const ef_response *r, const double *data, const double *prior, double *work,
                      double *out) {
  double *q = work; /* (nd) d_j / nu_j */
  ef_response_fold(r, prior, q);
  for (int j = 0; j < r->n_detector; j++) q[j] = q[j] > 0.0 ? data[j] / q[j] : 0.0;
  for (int i = 0; i < r->n_vertex; i++) {
    double s = 0.0;
    for (size_t k = r->col_ptr[i]; k < r->col_ptr[i + 1]; k++) s += r->val[k] * q[r->row[k]];
    out[i] = prior[i] * s;
  }
}

int ef_ibu_unfold(ef_ctx *ctx, const ef_response *r, const double *data, const double *prior,
                  int iterations, const unsigned char *unfold, double *work, double *out) {
  int nv = r->n_vertex, nd = r->n_detector;
  double *nu = work;     /* (nd) folded prediction, then d_j / nu_j */
  double *p = work + nd; /* (nv) current estimate */
  if (iterations < 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "ibu: iterations %d must be >= 0", iterations);
  double prior_meas = 0.0; /* sum of the prior over the unfolded bins */
  int n_meas = 0;
  for (int i = 0; i < nv; i++) {
    if (!(prior[i] >= 0.0) || isinf(prior[i]))
      return ef_error_set(ctx, EF_ERR_INPUT, "ibu: prior[%d] = %g is not finite and >= 0", i,
                          prior[i]);
    if (measured(r, i, unfold)) {
      prior_meas += prior[i];
      n_meas++;
    }
  }
  for (int j = 0; j < nd; j++)
    if (!(data[j] >= 0.0) || isinf(data[j]))
      return ef_error_set(ctx, EF_ERR_INPUT, "ibu: data[%d] = %g is not finite and >= 0", j,
                          data[j]);
  if (n_meas == 0)
    return ef_error_set(ctx, EF_ERR_NUMERIC,
                        "ibu: no vertex bin is unfolded (none chosen with efficiency > 0)");
  if (!(prior_meas > 0.0))
    return ef_error_set(ctx, EF_ERR_NUMERIC, "ibu: the prior is zero in every unfolded bin");

  /* Scale the prior so that the fold predicts the data seen in the detector
   * bins the (prior-weighted) response reaches. */
  ef_response_fold(r, prior, nu);
  double folded = 0.0, seen = 0.0;
  for (int j = 0; j < nd; j++)
    if (nu[j] > 0.0) {
      folded += nu[j];
      seen += data[j];
    }
  if (!(seen > 0.0))
    return ef_error_set(ctx, EF_ERR_NUMERIC,
                        "ibu: no data event falls in a detector bin the response reaches");
  double scale = seen / folded;
  for (int i = 0; i < nv; i++) p[i] = prior[i] * scale;
  double ratio = scale; /* kept bins = prior * ratio */
  if (iterations == 0) {
    memcpy(out, p, (size_t)nv * sizeof *out);
    return EF_OK;
  }

  for (int it = 0; it < iterations; it++) {
    ef_response_fold(r, p, nu);
    for (int j = 0; j < nd; j++) nu[j] = nu[j] > 0.0 ? data[j] / nu[j] : 0.0;
    double sum_meas = 0.0;
    for (int i = 0; i < nv; i++) {
      if (!measured(r, i, unfold)) continue;
      double s = 0.0;
      for (size_t q = r->col_ptr[i]; q < r->col_ptr[i + 1]; q++) s += r->val[q] * nu[r->row[q]];
      out[i] = p[i] * s / r->eps[i];
      sum_meas += out[i];
    }
    ratio = sum_meas / prior_meas;
    for (int i = 0; i < nv; i++) {
      if (!measured(r, i, unfold)) out[i] = prior[i] * ratio;
      p[i] = out[i];
    }
  }
  if (!isfinite(ratio))
    return ef_error_set(ctx, EF_ERR_NUMERIC, "ibu: the unfolded normalisation is not finite");
  return EF_OK;
}

void ef_response_triplets(const ef_response *r, int32_t *det, int32_t *vtx, double *val) {
  for (int i = 0; i < r->n_vertex; i++)
    for (size_t k = r->col_ptr[i]; k < r->col_ptr[i + 1]; k++) {
      det[k] = r->row[k];
      vtx[k] = i;
      val[k] = r->val[k];
    }
}
