/* D'Agostini iterative Bayesian unfolding with a sparse response.
 *
 * The response is stored by vertex column (compressed sparse columns): both
 * IBU steps walk the columns, the fold nu = R p scattering into detector
 * bins and the update n_i = p_i / eps_i sum_j R_ji d_j / nu_j gathering
 * from them, so one layout serves both and memory is ~ the filled (j, i)
 * pairs. The build sorts the MC entries by (vertex bin, detector bin) with
 * two stable counting sorts, so equal pairs are summed in event order and
 * the response is bit-reproducible.
 *
 * The MC events whose vertex lies outside the vertex binning are in columns
 * of their own: n_vertex + k holds those whose nearest bin is the border bin
 * k (the vertex clamped into the binning's box), the "twin" of k. Their
 * reconstructions are in the data too, so IBU unfolds the twins that hold
 * enough data (ef_ibu_choose_twins) like bins and does not push those
 * events into the binned range. A twin's prior is its MC weight times (the
 * prior's sum / the MC's weight inside the binning): the same start for
 * every fill model. Without MC outside the binning the twins are empty and
 * nothing changes. */
#include "ensfold/ibu.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ef_response {
  int n_vertex, n_detector;
  size_t nnz;        /* entries of the n_vertex binned columns */
  size_t *col_ptr;   /* (2 n_vertex + 1): column i is entries col_ptr[i] .. col_ptr[i+1];
                        columns n_vertex.. are the twins */
  int *row;          /* (col_ptr[2 n_vertex]) detector bin j, increasing within a column */
  double *val;       /* (same) R_ji = P(detector bin j | vertex bin i) */
  double *eps;       /* (2 n_vertex) sum_j R_ji */
  double *w_twin;    /* (n_vertex) MC weight per twin (outside the binning, nearest bin k) */
  double w_outside;  /* MC weight with a vertex outside the vertex binning */
  double w_inside;   /* MC weight with a vertex inside it */
};

/* copies: the seen categories (one copy of the detector binning each). */
static int binning_ok(const ef_binning *b, int copies) {
  return copies >= 1 && ef_binning_count(b) <= INT32_MAX / copies;
}

/* Global detector bin of an event of category cat, or -1 (a blind
 * category, NaN reco). */
static int detector_bin(const ef_binning *det, int n_det, const ef_space *sp, int cat,
                        const double *reco) {
  int s = ef_space_seen_index(sp, cat);
  if (s < 0) return -1;
  int k = ef_binning_index(det, reco);
  return k < 0 ? -1 : s * n_det + k;
}

int ef_ibu_detector_bin(const ef_binning *detector, const ef_space *space, int category,
                        const double *reco) {
  return detector_bin(detector, ef_binning_count(detector), space, category, reco);
}

/* The MC's events binned once (ef_response_bin): the parts of a response
 * that do not depend on the weights. */
struct ef_response_events {
  int n_vertex, n_detector;
  size_t n, m;
  int32_t *col;   /* (n) column of event e: its vertex bin, n_vertex + k for the twin of bin
                     k, -1 for none (outside, no nearest bin) */
  int32_t *det;   /* (n) its detector bin, -1 for none (blind, reco outside) */
  int32_t *order; /* (m) the events with both, in (column, detector bin, event) order */
};

const int32_t *ef_response_events_columns(const ef_response_events *ev) { return ev->col; }

void ef_response_events_free(ef_response_events *ev) {
  if (!ev) return;
  free(ev->col);
  free(ev->det);
  free(ev->order);
  free(ev);
}

/* The bin nearest to v, a point outside the binning's box (v clamped into
 * it; the last bin of an axis holds its upper end). A periodic or clamping
 * axis is never outside: its value goes as it is, wrapped or clamped by
 * ef_binning_index. */
static int border_bin(const ef_binning *b, const double *v) {
  double c[EF_SPACE_MAX_DIM];
  for (int a = 0; a < ef_binning_dim(b); a++) {
    const ef_bin_axis *ax = ef_binning_axis(b, a);
    c[a] = ax->periodic || ax->clamp ? v[a]
           : v[a] < ax->lo           ? ax->lo
           : v[a] > ax->hi           ? ax->hi
                                     : v[a];
  }
  return ef_binning_index(b, c);
}

/* Column and detector bin per event; m counts the events with both. */
static int bin_events(ef_ctx *ctx, const ef_binning *vertex, const ef_binning *detector,
                      const ef_events *mc, ef_response_events *ev) {
  int nd1 = ef_binning_count(detector), nv = ev->n_vertex, D = mc->space.dim;
  ev->m = 0;
  for (size_t e = 0; e < mc->n; e++) {
    int8_t t = mc->topology[e];
    if (t < 0 || t >= mc->space.n_cat)
      return ef_error_set(ctx, EF_ERR_INPUT,
                          "response: MC event %zu has category %d (0..%d allowed)", e, t,
                          mc->space.n_cat - 1);
    const double *v = mc->vertex + (size_t)D * e;
    int i = ef_binning_index(vertex, v);
    if (i < 0) {
      for (int d = 0; d < D; d++)
        if (isnan(v[d]))
          return ef_error_set(ctx, EF_ERR_INPUT, "response: MC event %zu has a NaN vertex", e);
      int k = border_bin(vertex, v); /* outside the binning: the nearest bin's twin */
      i = k < 0 ? -1 : nv + k;
    }
    ev->col[e] = i;
    ev->det[e] = i < 0 ? -1 : detector_bin(detector, nd1, &mc->space, t, mc->reco + (size_t)D * e);
    if (ev->det[e] >= 0) ev->m++;
  }
  return EF_OK;
}

/* Stable counting sort of the events with a column and a detector bin by
 * detector bin, then by column: ev->order in (column, detector bin, event)
 * order. */
static int sort_events(ef_ctx *ctx, ef_response_events *ev) {
  size_t nb = (size_t)(ev->n_detector > 2 * ev->n_vertex ? ev->n_detector : 2 * ev->n_vertex) + 1;
  size_t *cnt = malloc(nb * sizeof *cnt);
  int32_t *by_j = malloc((ev->m ? ev->m : 1) * sizeof *by_j);
  ev->order = malloc((ev->m ? ev->m : 1) * sizeof *ev->order);
  if (!cnt || !by_j || !ev->order) {
    free(cnt);
    free(by_j);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the response");
  }
  memset(cnt, 0, nb * sizeof *cnt);
  for (size_t e = 0; e < ev->n; e++)
    if (ev->det[e] >= 0) cnt[ev->det[e] + 1]++;
  for (size_t k = 0; k + 1 < nb; k++) cnt[k + 1] += cnt[k];
  for (size_t e = 0; e < ev->n; e++)
    if (ev->det[e] >= 0) by_j[cnt[ev->det[e]]++] = (int32_t)e;
  memset(cnt, 0, nb * sizeof *cnt);
  for (size_t q = 0; q < ev->m; q++) cnt[ev->col[by_j[q]] + 1]++;
  for (size_t k = 0; k + 1 < nb; k++) cnt[k + 1] += cnt[k];
  for (size_t q = 0; q < ev->m; q++) ev->order[cnt[ev->col[by_j[q]]]++] = by_j[q];
  free(cnt);
  free(by_j);
  return EF_OK;
}

int ef_response_bin(ef_ctx *ctx, ef_response_events **out, const ef_binning *vertex,
                    const ef_binning *detector, const ef_events *mc) {
  *out = NULL;
  int seen = ef_space_n_seen(&mc->space);
  if (ef_binning_dim(vertex) != mc->space.dim || ef_binning_dim(detector) != mc->space.dim)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "response: binnings of %d and %d axes for %d observables",
                        ef_binning_dim(vertex), ef_binning_dim(detector), mc->space.dim);
  if (!binning_ok(vertex, 2))
    return ef_error_set(ctx, EF_ERR_INPUT, "response: %d vertex bins exceed %d (half the "
                        "columns are the bins' twins outside the binning)",
                        ef_binning_count(vertex), INT32_MAX / 2);
  if (!binning_ok(detector, seen)) {
    char dd[96];
    ef_binning_describe(detector, dd, sizeof dd);
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "response: %d seen categories x %s detector bins exceed %d bins", seen, dd,
                        INT32_MAX);
  }
  if (mc->n > 0 && mc->vertex == NULL)
    return ef_error_set(ctx, EF_ERR_INPUT, "response: the MC sample has no vertex truth");
  if (mc->n > (size_t)INT32_MAX)
    return ef_error_set(ctx, EF_ERR_INPUT, "response: %zu MC events exceed the supported %d", mc->n,
                        INT32_MAX);
  ef_response_events *ev = calloc(1, sizeof *ev);
  size_t n1 = mc->n ? mc->n : 1;
  if (ev) {
    ev->n_vertex = ef_binning_count(vertex);
    ev->n_detector = seen * ef_binning_count(detector);
    ev->n = mc->n;
    ev->col = malloc(n1 * sizeof *ev->col);
    ev->det = malloc(n1 * sizeof *ev->det);
  }
  int rc = ev && ev->col && ev->det ? bin_events(ctx, vertex, detector, mc, ev)
                                    : ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the response");
  if (rc == EF_OK) rc = sort_events(ctx, ev);
  if (rc != EF_OK) {
    ef_response_events_free(ev);
    return rc;
  }
  *out = ev;
  return EF_OK;
}

/* denom (2 nv): the weight of every event per column (T0 included: eps is
 * the probability to land in any detector bin); EF_ERR_INPUT for a weight
 * that is negative or not finite. */
static int column_weights(ef_ctx *ctx, const ef_response_events *ev, const double *w,
                          double *denom) {
  for (size_t e = 0; e < ev->n; e++) {
    double x = w ? w[e] : 1.0;
    if (!(x >= 0.0) || isinf(x))
      return ef_error_set(ctx, EF_ERR_INPUT,
                          "response: MC weight %g of event %zu is not finite and >= 0", x, e);
    if (ev->col[e] >= 0) denom[ev->col[e]] += x;
  }
  return EF_OK;
}

/* The events in order with weight > 0, summed per (column, detector bin)
 * into r's columns (the twins after the bins), divided by the column's
 * weight; eps_i the column sums. */
static int fill_columns(ef_ctx *ctx, ef_response *r, const ef_response_events *ev,
                        const double *w, const double *denom) {
  int nv = 2 * r->n_vertex;
  size_t nnz = 0;
  int32_t pi = -1, pj = -1; /* the last kept event's (column, detector bin) */
  for (size_t q = 0; q < ev->m; q++) {
    int32_t e = ev->order[q];
    if (w && w[e] == 0.0) continue;
    if (ev->col[e] != pi || ev->det[e] != pj) nnz++;
    pi = ev->col[e];
    pj = ev->det[e];
  }
  r->col_ptr = calloc((size_t)nv + 1, sizeof *r->col_ptr);
  r->row = malloc((nnz ? nnz : 1) * sizeof *r->row);
  r->val = malloc((nnz ? nnz : 1) * sizeof *r->val);
  r->eps = calloc((size_t)nv, sizeof *r->eps);
  r->w_twin = malloc((size_t)r->n_vertex * sizeof *r->w_twin);
  if (!r->col_ptr || !r->row || !r->val || !r->eps || !r->w_twin)
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the response");
  size_t z = 0;
  pi = pj = -1;
  for (size_t q = 0; q < ev->m; q++) {
    int32_t e = ev->order[q];
    double x = w ? w[e] : 1.0;
    if (x == 0.0) continue;
    if (ev->col[e] != pi || ev->det[e] != pj) {
      if (pi >= 0) z++;
      r->row[z] = ev->det[e];
      r->val[z] = 0.0;
      r->col_ptr[ev->col[e] + 1]++;
      pi = ev->col[e];
      pj = ev->det[e];
    }
    r->val[z] += x;
  }
  for (int i = 0; i < nv; i++) r->col_ptr[i + 1] += r->col_ptr[i];
  r->nnz = r->col_ptr[r->n_vertex];
  r->w_outside = r->w_inside = 0.0;
  for (int i = 0; i < r->n_vertex; i++) {
    r->w_twin[i] = denom[r->n_vertex + i];
    r->w_inside += denom[i];
    r->w_outside += r->w_twin[i];
  }
  for (int i = 0; i < nv; i++) {
    double s = 0.0;
    for (size_t q = r->col_ptr[i]; q < r->col_ptr[i + 1]; q++) {
      r->val[q] /= denom[i]; /* > 0: the column holds a weight > 0 */
      s += r->val[q];
    }
    r->eps[i] = s;
  }
  return EF_OK;
}

int ef_response_build_binned(ef_ctx *ctx, ef_response **out, const ef_response_events *ev,
                             const double *weights) {
  *out = NULL;
  ef_response *r = calloc(1, sizeof *r);
  double *denom = calloc(2 * (size_t)ev->n_vertex, sizeof *denom);
  int rc = r && denom ? EF_OK : ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the response");
  if (rc == EF_OK) {
    r->n_vertex = ev->n_vertex;
    r->n_detector = ev->n_detector;
    rc = column_weights(ctx, ev, weights, denom);
  }
  if (rc == EF_OK) rc = fill_columns(ctx, r, ev, weights, denom);
  free(denom);
  if (rc != EF_OK) {
    ef_response_destroy(r);
    return rc;
  }
  *out = r;
  return EF_OK;
}

int ef_response_build(ef_ctx *ctx, ef_response **out, const ef_binning *vertex,
                      const ef_binning *detector, const ef_events *mc, const double *weights) {
  ef_response_events *ev = NULL;
  *out = NULL;
  EF_CHECK(ef_response_bin(ctx, &ev, vertex, detector, mc));
  int rc = ef_response_build_binned(ctx, out, ev, weights);
  ef_response_events_free(ev);
  return rc;
}

void ef_response_destroy(ef_response *r) {
  if (!r) return;
  free(r->col_ptr);
  free(r->row);
  free(r->val);
  free(r->eps);
  free(r->w_twin);
  free(r);
}

int ef_response_n_vertex(const ef_response *r) { return r->n_vertex; }
int ef_response_n_detector(const ef_response *r) { return r->n_detector; }
const double *ef_response_efficiency(const ef_response *r) { return r->eps; }
size_t ef_response_nnz(const ef_response *r) { return r->nnz; }

size_t ef_response_bytes(const ef_response *r) {
  size_t nv = (size_t)r->n_vertex, entries = r->col_ptr[2 * nv];
  return sizeof *r + (2 * nv + 1) * sizeof *r->col_ptr +
         entries * (sizeof *r->row + sizeof *r->val) + 3 * nv * sizeof *r->eps;
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

/* out (n_detector) += the twins' columns x x_out (n_vertex); the empty
 * ones add nothing. */
static void fold_twins(const ef_response *r, const double *x_out, double *out) {
  int nv = r->n_vertex;
  if (!(r->w_outside > 0.0)) return;
  for (int k = 0; k < nv; k++)
    for (size_t q = r->col_ptr[nv + k]; q < r->col_ptr[nv + k + 1]; q++)
      out[r->row[q]] += r->val[q] * x_out[k];
}

/* The twins' prior is their MC weight times c = (the prior's sum / the
 * MC's weight inside the binning); x_out (n_vertex) gets it for the twins
 * marked in twins (NULL: every twin), 0 for the others. */
static double twin_scale(const ef_response *r, const double *prior) {
  double s = 0.0;
  for (int i = 0; i < r->n_vertex; i++) s += prior[i];
  return r->w_inside > 0.0 ? s / r->w_inside : 0.0;
}

static void twin_prior(const ef_response *r, const double *prior, const unsigned char *twins,
                       double *x_out) {
  double c = twin_scale(r, prior);
  for (int k = 0; k < r->n_vertex; k++) x_out[k] = !twins || twins[k] ? r->w_twin[k] * c : 0.0;
}

/* sum_j R_ji q_j over column i (i >= n_vertex: a twin). */
static double gather(const ef_response *r, int i, const double *q) {
  double s = 0.0;
  for (size_t k = r->col_ptr[i]; k < r->col_ptr[i + 1]; k++) s += r->val[k] * q[r->row[k]];
  return s;
}

void ef_ibu_data_histogram(const ef_binning *detector, const ef_events *data, const double *weights,
                           double *out) {
  int nd1 = ef_binning_count(detector), D = data->space.dim;
  memset(out, 0, (size_t)ef_space_n_seen(&data->space) * (size_t)nd1 * sizeof *out);
  for (size_t e = 0; e < data->n; e++) {
    int j = detector_bin(detector, nd1, &data->space, data->topology[e],
                         data->reco + (size_t)D * e);
    if (j >= 0) out[j] += weights ? weights[e] : 1.0;
  }
}

size_t ef_ibu_work_size(const ef_response *r) {
  return (size_t)r->n_detector + 2 * (size_t)r->n_vertex;
}

/* Bin i is unfolded (not kept at the scaled prior): chosen, and reached
 * by this response (a bootstrapped response can lose a bin's last event). */
static int measured(const ef_response *r, int i, const unsigned char *unfold) {
  return unfold[i] && r->eps[i] > 0.0;
}

void ef_ibu_mask_efficiency(const ef_response *r, double eps_min, unsigned char *unfold) {
  for (int i = 0; i < r->n_vertex; i++) unfold[i] = r->eps[i] > 0.0 && r->eps[i] >= eps_min;
}

/* work's first n_detector values = d_j / nu_j for the prior's fold with
 * its twins; the twins' prior follows them (n_vertex). */
static void bayes_ratio(const ef_response *r, const double *data, const double *prior,
                        double *work) {
  double *q = work, *x_out = work + r->n_detector;
  twin_prior(r, prior, NULL, x_out);
  ef_response_fold(r, prior, q);
  fold_twins(r, x_out, q);
  for (int j = 0; j < r->n_detector; j++) q[j] = q[j] > 0.0 ? data[j] / q[j] : 0.0;
}

void ef_ibu_attribute(const ef_response *r, const double *data, const double *prior, double *work,
                      double *out) {
  bayes_ratio(r, data, prior, work);
  for (int i = 0; i < r->n_vertex; i++) out[i] = prior[i] * gather(r, i, work);
}

void ef_ibu_choose_twins(const ef_response *r, const double *data, const double *prior,
                         double eps_min, double min_expected, double *work, unsigned char *twins) {
  int nv = r->n_vertex;
  bayes_ratio(r, data, prior, work);
  const double *x_out = work + r->n_detector;
  for (int k = 0; k < nv; k++) {
    double e = r->eps[nv + k];
    twins[k] = e > 0.0 && e >= eps_min && x_out[k] * gather(r, nv + k, work) >= min_expected;
  }
}

/* Validate the unfolding's inputs; *prior_meas = sum of the prior over the
 * unfolded bins. */
static int check_unfold_inputs(ef_ctx *ctx, const ef_response *r, const double *data,
                               const double *prior, int iterations, const unsigned char *unfold,
                               double *prior_meas) {
  int n_meas = 0;
  *prior_meas = 0.0;
  if (iterations < 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "ibu: iterations %d must be >= 0", iterations);
  for (int i = 0; i < r->n_vertex; i++) {
    if (!(prior[i] >= 0.0) || isinf(prior[i]))
      return ef_error_set(ctx, EF_ERR_INPUT, "ibu: prior[%d] = %g is not finite and >= 0", i,
                          prior[i]);
    if (measured(r, i, unfold)) {
      *prior_meas += prior[i];
      n_meas++;
    }
  }
  for (int j = 0; j < r->n_detector; j++)
    if (!(data[j] >= 0.0) || isinf(data[j]))
      return ef_error_set(ctx, EF_ERR_INPUT, "ibu: data[%d] = %g is not finite and >= 0", j,
                          data[j]);
  if (n_meas == 0)
    return ef_error_set(ctx, EF_ERR_NUMERIC,
                        "ibu: no vertex bin is unfolded (none chosen with efficiency > 0)");
  if (!(*prior_meas > 0.0))
    return ef_error_set(ctx, EF_ERR_NUMERIC, "ibu: the prior is zero in every unfolded bin");
  return EF_OK;
}

int ef_ibu_unfold(ef_ctx *ctx, const ef_response *r, const double *data, const double *prior,
                  int iterations, const unsigned char *unfold, const unsigned char *twins,
                  double *work, double *out) {
  int nv = r->n_vertex, nd = r->n_detector;
  double *nu = work;     /* (nd) folded prediction, then d_j / nu_j */
  double *p = work + nd; /* (2 nv) current estimate: the bins, then their twins */
  double prior_meas;
  EF_CHECK(check_unfold_inputs(ctx, r, data, prior, iterations, unfold, &prior_meas));
  if (twins)
    twin_prior(r, prior, twins, p + nv);
  else
    memset(p + nv, 0, (size_t)nv * sizeof *p);
  /* Scale the prior so that the fold predicts the data seen in the detector
   * bins the (prior-weighted) response reaches. */
  ef_response_fold(r, prior, nu);
  fold_twins(r, p + nv, nu);
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
  for (int k = 0; k < nv; k++) p[nv + k] *= scale;
  double ratio = scale; /* kept bins = prior * ratio */
  if (iterations == 0) {
    memcpy(out, p, (size_t)nv * sizeof *out);
    return EF_OK;
  }

  for (int it = 0; it < iterations; it++) {
    ef_response_fold(r, p, nu);
    fold_twins(r, p + nv, nu);
    for (int j = 0; j < nd; j++) nu[j] = nu[j] > 0.0 ? data[j] / nu[j] : 0.0;
    double sum_meas = 0.0;
    for (int i = 0; i < nv; i++) {
      if (!measured(r, i, unfold)) continue;
      out[i] = p[i] * gather(r, i, nu) / r->eps[i];
      sum_meas += out[i];
    }
    ratio = sum_meas / prior_meas;
    for (int k = 0; twins && r->w_outside > 0.0 && k < nv; k++)
      if (twins[k] && r->eps[nv + k] > 0.0)
        p[nv + k] = p[nv + k] * gather(r, nv + k, nu) / r->eps[nv + k];
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
