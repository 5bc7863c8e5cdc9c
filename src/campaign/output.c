/* Group statistics and the parallel-HDF5 result file. */
#include "ensfold/output.h"

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "ensfold/model.h"
#include "ensfold/stats.h"
#include "ensfold/unit.h"
#include "ensfold_version.h"

/* ---- statistics (rank 0) --------------------------------------------- */

/* Efficiency closure thresholds: cells (topology, vertex bin) are compared
 * where the exact total efficiency 1 - P(T0) is at least EFF_MIN_TOTAL (the
 * blind bins carry no information on the detector), and a cell counts as off
 * when |eff_unit - eff_exact| > EFF_TOLERANCE. */
#define EFF_MIN_TOTAL EF_OUTPUT_EFF_MIN_TOTAL
#define EFF_TOLERANCE EF_OUTPUT_EFF_TOLERANCE

typedef struct {
  double max_abs, mean_abs, above; /* above: cells off per unit (mean over the units) */
  int n_units;                     /* units compared (ok ones) */
} eff_closure;

typedef struct {
  int method, fill, n_rep;   /* replicas used (r >= 1, every member ok) */
  double *mean, *sigma, *cov, *corr, *pulls; /* (n), (n), (n, n), (n, n), (n) */
  ef_closure meas, unmeas;
  eff_closure eff[2];        /* [0] replica 0, [1] replicas >= 1; NaN without exact maps */
} group_stats;

typedef struct {
  int method, fa, fb, n_rep;
  double *mean, *sigma, *cov, *signif;
} diff_stats;

/* Replica r of group (method, fill): the mean over its members, or 0 if
 * any member failed. */
static int replica_vector(const ef_output_data *d, int method, int fill, int r, int n,
                          double *out) {
  int members = ef_plan_n_members(d->plan, method);
  memset(out, 0, (size_t)n * sizeof *out);
  for (int k = 0; k < members; k++) {
    int32_t id = ef_plan_unit_id(d->plan, method, fill, r, k);
    if (id < 0 || d->status[id] != EF_OK) return 0;
    const double *x = d->results + (size_t)id * d->result_len; /* its histogram part */
    for (int i = 0; i < n; i++) out[i] += x[i] / members;
  }
  return 1;
}

static void free_group(group_stats *g) {
  free(g->mean);
  free(g->sigma);
  free(g->cov);
  free(g->corr);
  free(g->pulls);
}

static void free_diff(diff_stats *s) {
  free(s->mean);
  free(s->sigma);
  free(s->cov);
  free(s->signif);
}

static int alloc_vectors(ef_ctx *ctx, int n, double **a, double **b, double **c, double **e) {
  size_t nn = (size_t)n * (size_t)n;
  *a = calloc((size_t)n, sizeof(double));
  *b = calloc((size_t)n, sizeof(double));
  *c = calloc(nn, sizeof(double));
  *e = calloc(e == NULL ? 1 : nn, sizeof(double));
  if (!*a || !*b || !*c || !*e) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for statistics");
  return EF_OK;
}

static int group_compute(ef_ctx *ctx, const ef_output_data *d, const unsigned char *measured,
                         group_stats *g) {
  int n = ef_binning_count(ef_inputs_vertex_binning(d->in));
  int R = ef_plan_n_replicas(d->plan) - 1;
  EF_CHECK(alloc_vectors(ctx, n, &g->mean, &g->sigma, &g->cov, &g->corr));
  g->pulls = malloc((size_t)n * sizeof(double));
  double *x = malloc(((size_t)(R > 0 ? R : 1)) * (size_t)n * sizeof(double));
  if (!g->pulls || !x) {
    free(x);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for statistics");
  }
  g->n_rep = 0;
  for (int r = 1; r <= R; r++)
    g->n_rep += replica_vector(d, g->method, g->fill, r, n, x + (size_t)g->n_rep * (size_t)n);
  int rc = EF_OK;
  g->meas = g->unmeas = (ef_closure){NAN, 0, 0, NAN, 0, 0};
  for (int i = 0; i < n; i++) g->pulls[i] = NAN;
  if (g->n_rep >= 2) {
    rc = ef_stats_replicas(ctx, x, (size_t)g->n_rep, (size_t)n, g->mean, g->cov, g->sigma, g->corr);
    const double *truth = ef_inputs_truth(d->in);
    if (rc == EF_OK && truth) {
      unsigned char *unmeas = malloc((size_t)n);
      if (!unmeas) rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
      for (int i = 0; rc == EF_OK && i < n; i++) unmeas[i] = !measured[i];
      if (rc == EF_OK)
        rc = ef_stats_closure(ctx, g->mean, g->cov, g->sigma, truth, measured, (size_t)n,
                              (size_t)g->n_rep, &g->meas, g->pulls);
      if (rc == EF_OK)
        rc = ef_stats_closure(ctx, g->mean, g->cov, g->sigma, truth, unmeas, (size_t)n,
                              (size_t)g->n_rep, &g->unmeas, NULL);
      free(unmeas);
    }
  } else {
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) g->cov[i] = g->corr[i] = NAN;
    for (int i = 0; i < n; i++) g->mean[i] = g->sigma[i] = NAN;
  }
  free(x);
  return rc;
}

/* |eff_unit - eff_exact| of the group's ok units, replica 0 into e[0] and
 * replicas >= 1 into e[1], over the n_cells cells of cell (4 x nv, 1 =
 * compared). exact: (4, nv); a unit's map is its row's [nv, 5 nv). */
static void eff_closure_compute(const ef_output_data *d, int method, int fill,
                                const double *exact, const unsigned char *cell, int n_cells,
                                eff_closure e[2]) {
  size_t nv = (size_t)ef_binning_count(ef_inputs_vertex_binning(d->in));
  double sum[2] = {0, 0};
  for (int s = 0; s < 2; s++) e[s] = (eff_closure){NAN, NAN, NAN, 0};
  if (!exact || n_cells == 0) return;
  double mx[2] = {0, 0}, above[2] = {0, 0};
  int members = ef_plan_n_members(d->plan, method);
  for (int r = 0; r < ef_plan_n_replicas(d->plan); r++)
    for (int k = 0; k < members; k++) {
      int32_t id = ef_plan_unit_id(d->plan, method, fill, r, k);
      if (id < 0 || d->status[id] != EF_OK) continue;
      const double *eff = d->results + (size_t)id * d->result_len + nv; /* (4, nv) */
      int s = r > 0;
      for (size_t c = 0; c < 4 * nv; c++) {
        if (!cell[c]) continue;
        double a = fabs(eff[c] - exact[c]);
        sum[s] += a;
        if (a > mx[s]) mx[s] = a;
        above[s] += a > EFF_TOLERANCE;
      }
      e[s].n_units++;
    }
  for (int s = 0; s < 2; s++)
    if (e[s].n_units > 0) {
      e[s].max_abs = mx[s];
      e[s].mean_abs = sum[s] / ((double)e[s].n_units * n_cells);
      e[s].above = above[s] / e[s].n_units;
    }
}

static int diff_compute(ef_ctx *ctx, const ef_output_data *d, diff_stats *s) {
  int n = ef_binning_count(ef_inputs_vertex_binning(d->in));
  int R = ef_plan_n_replicas(d->plan) - 1;
  EF_CHECK(alloc_vectors(ctx, n, &s->mean, &s->sigma, &s->cov, &s->signif));
  double *x = malloc(((size_t)(R > 0 ? R : 1)) * (size_t)n * sizeof(double));
  double *b = malloc((size_t)n * sizeof(double));
  if (!x || !b) {
    free(x);
    free(b);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for statistics");
  }
  s->n_rep = 0;
  for (int r = 1; r <= R; r++) {
    double *a = x + (size_t)s->n_rep * (size_t)n;
    if (!replica_vector(d, s->method, s->fa, r, n, a) ||
        !replica_vector(d, s->method, s->fb, r, n, b))
      continue;
    for (int i = 0; i < n; i++) a[i] -= b[i];
    s->n_rep++;
  }
  int rc = EF_OK;
  if (s->n_rep >= 2) {
    rc = ef_stats_replicas(ctx, x, (size_t)s->n_rep, (size_t)n, s->mean, s->cov, s->sigma, NULL);
    for (int i = 0; i < n; i++) s->signif[i] = s->sigma[i] > 0 ? s->mean[i] / s->sigma[i] : NAN;
  } else {
    for (int i = 0; i < n; i++) s->mean[i] = s->sigma[i] = s->signif[i] = NAN;
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) s->cov[i] = NAN;
  }
  free(x);
  free(b);
  return rc;
}

/* ---- HDF5 writing ----------------------------------------------------- */

/* A campaign with fewer than 2 bootstrap replicas has no statistics: its
 * groups and differences hold this attribute instead of datasets. */
#define NO_STATISTICS "none: campaign.replicas < 2 (a sigma needs at least 2 bootstrap " \
                      "replicas); the nominal unfolding is /units/hist of replica 0"

typedef struct {
  ef_ctx *ctx;
  int root; /* this rank writes raw data */
  MPI_Comm comm; /* MPI_COMM_NULL when serial */
} writer;

/* Create a dataset of rank 1..3 and shape dims (collective) and, on the
 * root rank, write data. row_len = 0: data holds the dataset contiguously.
 * row_len > 0: data is (dims[0], row_len) and row i of the dataset is the
 * dims[1] x dims[2] values from column col0 of data's row i (a part of each
 * unit result row, written without a copy). */
static int put_rows(writer *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                    const hsize_t *dims, const void *data, hsize_t row_len, hsize_t col0) {
  int rc = EF_OK;
  hid_t space = -1, ds = -1, mspace = H5S_ALL;
  hsize_t n = 1;
  for (int i = 0; i < rank; i++) n *= dims[i];
  EF_GOTO_H5(w->ctx, rc, space = H5Screate_simple(rank, dims, NULL), done);
  EF_GOTO_H5(w->ctx, rc, ds = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), done);
  if (w->root && data && n > 0) {
    if (row_len > 0) {
      hsize_t mdims[2] = {dims[0], row_len}, start[2] = {0, col0};
      hsize_t count[2] = {dims[0], n / dims[0]};
      EF_GOTO_H5(w->ctx, rc, mspace = H5Screate_simple(2, mdims, NULL), done);
      EF_GOTO_H5(w->ctx, rc, H5Sselect_hyperslab(mspace, H5S_SELECT_SET, start, NULL, count, NULL),
                 done);
    }
    EF_GOTO_H5(w->ctx, rc, H5Dwrite(ds, mtype, mspace, H5S_ALL, H5P_DEFAULT, data), done);
  }
done:
  if (ds >= 0 && H5Dclose(ds) < 0 && rc == EF_OK)
    rc = ef_error_hdf5(w->ctx, "H5Dclose", __FILE__, __LINE__);
  if (mspace >= 0 && mspace != H5S_ALL) H5Sclose(mspace);
  if (space >= 0) H5Sclose(space);
  if (rc != EF_OK) ef_error_wrap(w->ctx, "writing dataset %s: ", name);
  /* only the root writes data: everyone must learn if it failed, or the
   * next collective call (a create, the close) would wait forever */
  if (w->comm != MPI_COMM_NULL) {
    int bad = rc != EF_OK, any = 0;
    int mrc = MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, w->comm);
    if (mrc != MPI_SUCCESS) return ef_error_mpi(w->ctx, mrc, "MPI_Allreduce", __FILE__, __LINE__);
    if (any && rc == EF_OK)
      rc = ef_error_set(w->ctx, EF_ERR_IO, "writing dataset %s failed on another rank", name);
  }
  return rc;
}

/* A contiguous (d0) or (d0, d1) dataset. */
static int put(writer *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
               hsize_t d0, hsize_t d1, const void *data) {
  hsize_t dims[2] = {d0, d1};
  return put_rows(w, loc, name, ftype, mtype, rank, dims, data, 0, 0);
}

#define PUT_D(w, loc, name, n0, n1, rank, data) \
  put(w, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, rank, n0, n1, data)
#define PUT_I(w, loc, name, n0, data) put(w, loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, n0, 1, data)
#define PUT_ROWS(w, loc, name, rank, dims, rows, row_len, col0) \
  put_rows(w, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, rank, dims, rows, row_len, col0)

/* Does the plan have a GAN method (units with loss curves)? */
static int has_gan(const ef_plan *p) {
  for (int g = 0; g < ef_plan_n_groups(p); g++) {
    int m, f;
    ef_plan_group(p, g, &m, &f);
    if (m != EF_METHOD_IBU) return 1;
  }
  return 0;
}

static int attr(writer *w, hid_t loc, const char *name, hid_t type, const void *value) {
  int rc = EF_OK;
  hid_t space = -1, a = -1;
  EF_GOTO_H5(w->ctx, rc, space = H5Screate(H5S_SCALAR), done);
  EF_GOTO_H5(w->ctx, rc, a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT), done);
  EF_GOTO_H5(w->ctx, rc, H5Awrite(a, type, value), done);
done:
  if (a >= 0) H5Aclose(a);
  if (space >= 0) H5Sclose(space);
  return rc;
}

static int attr_str(writer *w, hid_t loc, const char *name, const char *value) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return ef_error_hdf5(w->ctx, "H5Tcopy", __FILE__, __LINE__);
  int rc = EF_OK;
  EF_GOTO_H5(w->ctx, rc, H5Tset_size(t, H5T_VARIABLE), done);
  EF_GOTO_H5(w->ctx, rc, H5Tset_cset(t, H5T_CSET_UTF8), done);
  rc = attr(w, loc, name, t, &value);
done:
  H5Tclose(t);
  return rc;
}

static int group(writer *w, hid_t loc, const char *name, hid_t *out) {
  *out = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (*out < 0) return ef_error_hdf5(w->ctx, "H5Gcreate2", __FILE__, __LINE__);
  return EF_OK;
}

static int write_binning(writer *w, hid_t file, const ef_binning *b, const char *name) {
  hid_t g;
  EF_CHECK(group(w, file, name, &g));
  double *pe = malloc((size_t)(b->n_polar + 1) * sizeof(double));
  double *fe = malloc((size_t)(b->n_phi + 1) * sizeof(double));
  int rc = EF_OK;
  if (!pe || !fe) {
    rc = ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (int i = 0; i < b->n_polar; i++) {
    double c0, c1, f0, f1;
    ef_binning_bounds(b, i * b->n_phi, &c0, &c1, &f0, &f1);
    if (b->scheme == EF_BIN_THETA_PHI) {
      pe[i] = acos(c1) * 180.0 / M_PI;
      pe[i + 1] = acos(c0) * 180.0 / M_PI;
    } else {
      pe[i] = c0;
      pe[i + 1] = c1;
    }
  }
  for (int j = 0; j < b->n_phi; j++) {
    double c0, c1, f0, f1;
    ef_binning_bounds(b, j, &c0, &c1, &f0, &f1);
    fe[j] = f0 * 180.0 / M_PI;
    fe[j + 1] = f1 * 180.0 / M_PI;
  }
  EF_GOTO(rc, attr_str(w, g, "scheme", b->scheme == EF_BIN_THETA_PHI ? "theta-phi" : "cos-phi"), done);
  EF_GOTO(rc, PUT_D(w, g, b->scheme == EF_BIN_THETA_PHI ? "theta_edges_deg" : "cos_theta_edges",
                    (hsize_t)b->n_polar + 1, 1, 1, pe), done);
  EF_GOTO(rc, PUT_D(w, g, "phi_edges_deg", (hsize_t)b->n_phi + 1, 1, 1, fe), done);
done:
  free(pe);
  free(fe);
  H5Gclose(g);
  return rc;
}

static int write_units(writer *w, hid_t file, const ef_output_data *d) {
  const ef_plan *p = d->plan;
  const ef_binning *b = ef_inputs_vertex_binning(d->in);
  hsize_t nu = ef_plan_n_units(p);
  int nv = ef_binning_count(b);
  hid_t g;
  EF_CHECK(group(w, file, "units", &g));
  int rc = EF_OK;
  int32_t *col = NULL;
  uint64_t *seeds = NULL;
  double *pp = NULL, *pf = NULL;
  if (w->root) {
    col = malloc(5 * nu * sizeof *col + 1);
    seeds = malloc(nu * sizeof *seeds + 1);
    pp = calloc(nu * (size_t)b->n_polar + 1, sizeof *pp);
    pf = calloc(nu * (size_t)b->n_phi + 1, sizeof *pf);
    if (!col || !seeds || !pp || !pf) {
      rc = ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
      goto done;
    }
    for (hsize_t u = 0; u < nu; u++) {
      const ef_unit *x = ef_plan_unit(p, u);
      col[u] = x->id;
      col[nu + u] = x->method;
      col[2 * nu + u] = x->fill;
      col[3 * nu + u] = x->replica;
      col[4 * nu + u] = x->member;
      seeds[u] = x->seed;
      const double *h = d->results + u * (hsize_t)d->result_len; /* the histogram part */
      for (int k = 0; k < nv; k++) {
        pp[u * (hsize_t)b->n_polar + (hsize_t)(k / b->n_phi)] += h[k];
        pf[u * (hsize_t)b->n_phi + (hsize_t)(k % b->n_phi)] += h[k];
      }
    }
  }
  EF_GOTO(rc, PUT_I(w, g, "id", nu, col), done);
  EF_GOTO(rc, PUT_I(w, g, "method", nu, col ? col + nu : NULL), done);
  EF_GOTO(rc, PUT_I(w, g, "fill_model", nu, col ? col + 2 * nu : NULL), done);
  EF_GOTO(rc, PUT_I(w, g, "replica", nu, col ? col + 3 * nu : NULL), done);
  EF_GOTO(rc, PUT_I(w, g, "member", nu, col ? col + 4 * nu : NULL), done);
  EF_GOTO(rc, put(w, g, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, nu, 1, seeds), done);
  EF_GOTO(rc, PUT_I(w, g, "status", nu, d->status), done);
  EF_GOTO(rc, PUT_D(w, g, "wall_s", nu, 1, 1, d->wall_s), done);
  EF_GOTO(rc, PUT_I(w, g, "rank", nu, d->rank), done);
  EF_GOTO(rc, PUT_I(w, g, "attempts", nu, d->attempts), done);
  {
    /* the parts of the unit result rows (include/ensfold/unit.h) */
    hsize_t row = (hsize_t)d->result_len, L = EF_UNIT_LOSS_POINTS;
    hsize_t hist[2] = {nu, (hsize_t)nv}, eff[3] = {nu, 4, (hsize_t)nv}, loss[2] = {nu, L};
    EF_GOTO(rc, PUT_ROWS(w, g, "hist", 2, hist, d->results, row, 0), done);
    EF_GOTO(rc, PUT_ROWS(w, g, "efficiency", 3, eff, d->results, row, (hsize_t)nv), done);
    if (has_gan(p)) {
      EF_GOTO(rc, PUT_ROWS(w, g, "loss_d", 2, loss, d->results, row, 5 * (hsize_t)nv), done);
      EF_GOTO(rc, PUT_ROWS(w, g, "loss_g", 2, loss, d->results, row, 5 * (hsize_t)nv + L), done);
    }
  }
  EF_GOTO(rc, PUT_D(w, g, "proj_polar", nu, (hsize_t)b->n_polar, 2, pp), done);
  EF_GOTO(rc, PUT_D(w, g, "proj_phi", nu, (hsize_t)b->n_phi, 2, pf), done);
done:
  free(col);
  free(seeds);
  free(pp);
  free(pf);
  H5Gclose(g);
  return rc;
}

static int write_ibu(writer *w, hid_t file, const ef_output_data *d) {
  const ef_response *r = ef_inputs_response(d->in);
  int nv = ef_response_n_vertex(r), nd = ef_response_n_detector(r);
  hid_t g, gp;
  EF_CHECK(group(w, file, "ibu", &g));
  int rc = EF_OK;
  double *data = NULL, *rval = NULL; /* rval: (nnz) response values */
  gp = -1;
  if (w->root) {
    data = calloc((size_t)nd, sizeof *data);
    if (!data) {
      rc = ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
      goto done;
    }
    const ef_events *ev = ef_inputs_data(d->in);
    ef_ibu_data_histogram(ef_inputs_detector_binning(d->in), ev, ev->weight, data);
  }
  /* the response of replica 0 as sparse triplets (det bin, vertex bin, R) */
  hsize_t nnz = ef_response_nnz(r);
  int32_t *tdet = NULL, *tvtx = NULL;
  if (w->root) {
    tdet = malloc(nnz * sizeof *tdet + 1);
    tvtx = malloc(nnz * sizeof *tvtx + 1);
    rval = malloc(nnz * sizeof *rval + 1);
    if (!tdet || !tvtx || !rval) {
      free(tdet);
      free(tvtx);
      rc = ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
      goto done;
    }
    ef_response_triplets(r, tdet, tvtx, rval);
  }
  rc = PUT_I(w, g, "response_detector_bin", nnz, tdet);
  if (rc == EF_OK) rc = PUT_I(w, g, "response_vertex_bin", nnz, tvtx);
  if (rc == EF_OK) rc = PUT_D(w, g, "response_value", nnz, 1, 1, rval);
  free(tdet);
  free(tvtx);
  if (rc != EF_OK) goto done;
  EF_GOTO(rc, PUT_D(w, g, "efficiency", (hsize_t)nv, 1, 1, ef_response_efficiency(r)), done);
  EF_GOTO(rc, PUT_D(w, g, "data_hist", (hsize_t)nd, 1, 1, data), done);
  EF_GOTO(rc, group(w, g, "prior", &gp), done);
  for (int f = 0; f < EF_N_MODELS; f++)
    if (ef_inputs_prior(d->in, f))
      EF_GOTO(rc, PUT_D(w, gp, ef_model_name((ef_model_id)f), (hsize_t)nv, 1, 1,
                        ef_inputs_prior(d->in, f)), done);
  {
    int it = d->cfg->ibu.iterations;
    double me = d->cfg->ibu.min_efficiency;
    EF_GOTO(rc, attr(w, g, "iterations", H5T_NATIVE_INT, &it), done);
    EF_GOTO(rc, attr(w, g, "min_efficiency", H5T_NATIVE_DOUBLE, &me), done);
  }
done:
  free(data);
  free(rval);
  if (gp >= 0) H5Gclose(gp);
  H5Gclose(g);
  return rc;
}

static int write_groups(writer *w, hid_t file, const ef_output_data *d, group_stats *gs, int ng,
                        diff_stats *ds, int ndiff, int n_eff_cells) {
  int nv = ef_binning_count(ef_inputs_vertex_binning(d->in));
  /* known on every rank (the datasets are created collectively) */
  int stats = ef_plan_n_replicas(d->plan) - 1 >= 2;
  hid_t top, sum = -1;
  EF_CHECK(group(w, file, "groups", &top));
  int rc = EF_OK;
  for (int i = 0; rc == EF_OK && i < ng; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s_%s", ef_method_name(gs[i].method),
             ef_model_name((ef_model_id)gs[i].fill));
    hid_t g;
    EF_GOTO(rc, group(w, top, name, &g), out);
    if (!stats) {
      rc = attr_str(w, g, "statistics", NO_STATISTICS);
      H5Gclose(g);
      continue;
    }
    rc = PUT_D(w, g, "mean", (hsize_t)nv, 1, 1, gs[i].mean);
    if (rc == EF_OK) rc = PUT_D(w, g, "sigma", (hsize_t)nv, 1, 1, gs[i].sigma);
    if (rc == EF_OK) rc = PUT_D(w, g, "cov", (hsize_t)nv, (hsize_t)nv, 2, gs[i].cov);
    if (rc == EF_OK) rc = PUT_D(w, g, "corr", (hsize_t)nv, (hsize_t)nv, 2, gs[i].corr);
    if (rc == EF_OK && ef_inputs_truth(d->in))
      rc = PUT_D(w, g, "pulls", (hsize_t)nv, 1, 1, gs[i].pulls);
    H5Gclose(g);
  }
  if (rc == EF_OK) EF_GOTO(rc, group(w, file, "differences", &sum), out);
  for (int i = 0; rc == EF_OK && i < ndiff; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s_%s-%s", ef_method_name(ds[i].method),
             ef_model_name((ef_model_id)ds[i].fa), ef_model_name((ef_model_id)ds[i].fb));
    hid_t g;
    if ((rc = group(w, sum, name, &g)) != EF_OK) break;
    if (!stats) {
      rc = attr_str(w, g, "statistics", NO_STATISTICS);
      H5Gclose(g);
      continue;
    }
    rc = PUT_D(w, g, "mean", (hsize_t)nv, 1, 1, ds[i].mean);
    if (rc == EF_OK) rc = PUT_D(w, g, "sigma", (hsize_t)nv, 1, 1, ds[i].sigma);
    if (rc == EF_OK) rc = PUT_D(w, g, "cov", (hsize_t)nv, (hsize_t)nv, 2, ds[i].cov);
    if (rc == EF_OK) rc = PUT_D(w, g, "significance", (hsize_t)nv, 1, 1, ds[i].signif);
    if (rc == EF_OK) rc = PUT_I(w, g, "replicas", 1, &ds[i].n_rep);
    H5Gclose(g);
  }
  if (sum >= 0) H5Gclose(sum);
  /* the summary table: one row per group */
  if (rc == EF_OK) {
    hid_t s;
    EF_GOTO(rc, group(w, file, "summary", &s), out);
    int32_t *ic = calloc(9 * (size_t)ng + 1, sizeof *ic);
    double *dc = calloc(12 * (size_t)ng + 1, sizeof *dc);
    if (!ic || !dc) rc = ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
    for (int i = 0; rc == EF_OK && i < ng; i++) {
      ic[i] = gs[i].method;
      ic[ng + i] = gs[i].fill;
      ic[2 * ng + i] = gs[i].n_rep;
      ic[3 * ng + i] = gs[i].meas.full_cov;
      ic[4 * ng + i] = gs[i].unmeas.full_cov;
      ic[5 * ng + i] = gs[i].meas.zero_sigma;
      ic[6 * ng + i] = gs[i].meas.infinite;
      ic[7 * ng + i] = gs[i].unmeas.zero_sigma;
      ic[8 * ng + i] = gs[i].unmeas.infinite;
      dc[i] = gs[i].meas.ndf ? gs[i].meas.chi2 : NAN;
      dc[ng + i] = gs[i].meas.ndf;
      dc[2 * ng + i] = gs[i].unmeas.ndf ? gs[i].unmeas.chi2 : NAN;
      dc[3 * ng + i] = gs[i].unmeas.ndf;
      dc[4 * ng + i] = gs[i].meas.coverage;
      dc[5 * ng + i] = gs[i].unmeas.coverage;
      for (int k = 0; k < 2; k++) {
        dc[(6 + 3 * k) * ng + i] = gs[i].eff[k].max_abs;
        dc[(7 + 3 * k) * ng + i] = gs[i].eff[k].mean_abs;
        dc[(8 + 3 * k) * ng + i] = gs[i].eff[k].above;
      }
    }
    hsize_t n = (hsize_t)ng;
    if (rc == EF_OK) rc = PUT_I(w, s, "method", n, ic);
    if (rc == EF_OK) rc = PUT_I(w, s, "fill_model", n, ic + ng);
    if (rc == EF_OK) rc = PUT_I(w, s, "replicas", n, ic + 2 * ng);
    if (rc == EF_OK) rc = PUT_I(w, s, "full_cov_measured", n, ic + 3 * ng);
    if (rc == EF_OK) rc = PUT_I(w, s, "full_cov_unmeasured", n, ic + 4 * ng);
    static const char *zcols[4] = {"zero_sigma_measured", "infinite_pulls_measured",
                                   "zero_sigma_unmeasured", "infinite_pulls_unmeasured"};
    for (int k = 0; rc == EF_OK && k < 4; k++) rc = PUT_I(w, s, zcols[k], n, ic + (5 + k) * ng);
    if (rc == EF_OK) rc = PUT_D(w, s, "chi2_measured", n, 1, 1, dc);
    if (rc == EF_OK) rc = PUT_D(w, s, "ndf_measured", n, 1, 1, dc + ng);
    if (rc == EF_OK) rc = PUT_D(w, s, "chi2_unmeasured", n, 1, 1, dc + 2 * ng);
    if (rc == EF_OK) rc = PUT_D(w, s, "ndf_unmeasured", n, 1, 1, dc + 3 * ng);
    if (rc == EF_OK) rc = PUT_D(w, s, "coverage_measured", n, 1, 1, dc + 4 * ng);
    if (rc == EF_OK) rc = PUT_D(w, s, "coverage_unmeasured", n, 1, 1, dc + 5 * ng);
    static const char *eff_cols[6] = {"efficiency_max_nominal", "efficiency_mean_nominal",
                                      "efficiency_above_nominal", "efficiency_max_replicas",
                                      "efficiency_mean_replicas", "efficiency_above_replicas"};
    for (int k = 0; rc == EF_OK && k < 6; k++)
      rc = PUT_D(w, s, eff_cols[k], n, 1, 1, dc + (6 + k) * ng);
    double eff_min = EFF_MIN_TOTAL, eff_tol = EFF_TOLERANCE;
    int32_t cells = n_eff_cells;
    if (rc == EF_OK) rc = attr(w, s, "efficiency_min_total", H5T_NATIVE_DOUBLE, &eff_min);
    if (rc == EF_OK) rc = attr(w, s, "efficiency_tolerance", H5T_NATIVE_DOUBLE, &eff_tol);
    if (rc == EF_OK) rc = attr(w, s, "efficiency_cells", H5T_NATIVE_INT32, &cells);
    if (rc == EF_OK) rc = attr_str(w, s, "method_names", "0=ibu 1=gan-topo 2=gan-mixed");
    if (rc == EF_OK) rc = attr_str(w, s, "model_names", "0=M1 1=PS 2=M2");
    free(ic);
    free(dc);
    H5Gclose(s);
  }
out:
  H5Gclose(top);
  return rc;
}

/* Bytes the result file will take, generously: every dataset plus 1 MiB
 * of metadata, times 1.1. */
static double estimate_bytes(const ef_output_data *d, int ndiff) {
  const ef_binning *b = ef_inputs_vertex_binning(d->in);
  double V = ef_binning_count(b), U = (double)ef_plan_n_units(d->plan);
  double G = ef_plan_n_groups(d->plan);
  const ef_response *r = ef_inputs_response(d->in);
  /* hist, efficiency and the loss curves are the unit result rows */
  double bytes = U * ((double)d->result_len + b->n_polar + b->n_phi) * 8
                 + U * 8 * 8 /* unit table */
                 + G * (2 * V * V + 3 * V) * 8 + ndiff * (V * V + 3 * V) * 8
                 + (double)ef_response_nnz(r) * 16 + ef_response_n_detector(r) * 8.0
                 + V * 8 * (EF_N_MODELS + 3 + 4) + G * 12 * 8 + (double)strlen(d->config_text);
  return 1.1 * bytes + (1 << 20);
}

/* Parallel HDF5 cannot recover from a write error inside its collective
 * calls (ranks end up waiting in different barriers), so a result that
 * will not fit is refused before the file is created. */
static int check_space(ef_ctx *ctx, const char *path, double need) {
  char dir[2 * EF_PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = '\0';
  else *slash = '\0';
  struct statvfs sv;
  if (statvfs(dir, &sv) != 0) return EF_OK; /* cannot tell: let the write report it */
  double avail = (double)sv.f_bavail * (double)sv.f_frsize;
  if (avail < need)
    return ef_error_set(ctx, EF_ERR_IO,
                        "%s: not enough space for the result file: it needs about %.1f MiB, "
                        "%.1f MiB are free in %s (the journal keeps every finished unit: free "
                        "space and rerun with --resume)", path, need / 1048576.0,
                        avail / 1048576.0, dir);
  return EF_OK;
}

/* The campaign identity as three uint64 attributes of the root group. */
static const char *const IDENTITY_ATTR[3] = {"identity_config", "identity_data", "identity_mc"};

static int write_identity(writer *w, hid_t file, const ef_identity *id) {
  const uint64_t v[3] = {id->config, id->data, id->mc};
  for (int k = 0; k < 3; k++) EF_CHECK(attr(w, file, IDENTITY_ATTR[k], H5T_NATIVE_UINT64, &v[k]));
  return EF_OK;
}

int ef_output_identity(ef_ctx *ctx, const char *path, ef_identity *out) {
  htri_t is = H5Fis_hdf5(path);
  hid_t file = is > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
  uint64_t v[3];
  int found = 0;
  for (int k = 0; file >= 0 && k < 3; k++) {
    hid_t a = H5Aexists(file, IDENTITY_ATTR[k]) > 0 ? H5Aopen(file, IDENTITY_ATTR[k], H5P_DEFAULT) : -1;
    found += a >= 0 && H5Aread(a, H5T_NATIVE_UINT64, &v[k]) >= 0;
    if (a >= 0) H5Aclose(a);
  }
  if (file >= 0) H5Fclose(file);
  H5Eclear2(H5E_DEFAULT);
  if (is <= 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s exists and is not an HDF5 result file", path);
  if (found != 3)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s exists but records no campaign identity (not an ensfold result, "
                        "or written by an older ensfold)", path);
  *out = (ef_identity){v[0], v[1], v[2]};
  return EF_OK;
}

/* A temporary name unique to this run (host and pid of rank 0), agreed by
 * every rank: two runs never write the same temporary file. */
static int temp_name(ef_ctx *ctx, const char *path, char *tmp, size_t len) {
  if (ef_ctx_rank(ctx) == 0) {
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
      if (*c == '/' || *c == '.') *c = '_';
    snprintf(tmp, len, "%s.tmp.%s.%ld", path, host, (long)getpid());
  }
  if (ef_ctx_comm(ctx) != MPI_COMM_NULL)
    EF_CHECK_MPI(ctx, MPI_Bcast(tmp, (int)len, MPI_CHAR, 0, ef_ctx_comm(ctx)));
  return EF_OK;
}

int ef_output_remove_stale(ef_ctx *ctx, const char *path) {
  char dir[2 * EF_PATH_MAX], prefix[2 * EF_PATH_MAX];
  const char *slash = strrchr(path, '/');
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
  snprintf(prefix, sizeof prefix, "%s.tmp", slash ? slash + 1 : path);
  DIR *dp = opendir(dir);
  if (!dp) return EF_OK; /* nothing we can see, nothing to tidy */
  size_t n = strlen(prefix);
  for (struct dirent *e; (e = readdir(dp)) != NULL;) {
    if (strncmp(e->d_name, prefix, n) != 0 || (e->d_name[n] != '\0' && e->d_name[n] != '.'))
      continue;
    char full[4 * EF_PATH_MAX];
    snprintf(full, sizeof full, "%s/%s", slash ? dir : ".", e->d_name);
    if (unlink(full) == 0)
      ef_log(ctx, EF_LOG_INFO, "removed %s, left by an interrupted run", full);
  }
  closedir(dp);
  return EF_OK;
}

int ef_output_write(ef_ctx *ctx, const char *path, const ef_output_data *d) {
  MPI_Comm comm = ef_ctx_comm(ctx);
  writer w = {ctx, ef_ctx_rank(ctx) == 0, comm};
  const ef_plan *p = d->plan;
  int ng = ef_plan_n_groups(p), nv = ef_binning_count(ef_inputs_vertex_binning(d->in));
  group_stats *gs = calloc((size_t)ng + 1, sizeof *gs);
  diff_stats *ds = calloc((size_t)ng * (size_t)ng + 1, sizeof *ds);
  unsigned char *measured = malloc((size_t)nv);
  /* efficiency closure cells (4, nv): every topology of the bins the
   * detector sees at all */
  const double *exact = ef_inputs_exact_efficiency(d->in);
  unsigned char *cell = calloc(4 * (size_t)nv + 1, 1);
  int rc = EF_OK, ndiff = 0, n_cells = 0;
  if (!gs || !ds || !measured || !cell) rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  if (rc == EF_OK && d->result_len < ef_unit_result_len(d->in))
    rc = ef_error_set(ctx, EF_ERR_INTERNAL, "result rows of %zu values, the layout needs %zu",
                      d->result_len, ef_unit_result_len(d->in));
  for (int k = 0; rc == EF_OK && exact && k < nv; k++)
    if (1.0 - exact[k] >= EFF_MIN_TOTAL)
      for (int t = 0; t < 4; t++, n_cells++) cell[(size_t)t * (size_t)nv + (size_t)k] = 1;
  const double *eff = ef_inputs_response(d->in) ? ef_response_efficiency(ef_inputs_response(d->in)) : NULL;
  for (int i = 0; rc == EF_OK && i < nv; i++)
    measured[i] = eff[i] >= d->cfg->ibu.min_efficiency && eff[i] > 0;
  for (int g = 0; rc == EF_OK && g < ng; g++) {
    ef_plan_group(p, g, &gs[g].method, &gs[g].fill);
    for (int h = 0; h < g; h++)
      if (gs[h].method == gs[g].method)
        ds[ndiff++] = (diff_stats){.method = gs[g].method, .fa = gs[h].fill, .fb = gs[g].fill};
  }
  if (w.root) {
    for (int g = 0; rc == EF_OK && g < ng; g++) {
      rc = group_compute(ctx, d, measured, &gs[g]);
      eff_closure_compute(d, gs[g].method, gs[g].fill, exact, cell, n_cells, gs[g].eff);
    }
    for (int k = 0; rc == EF_OK && k < ndiff; k++) rc = diff_compute(ctx, d, &ds[k]);
  }
  if (w.root && rc == EF_OK) rc = check_space(ctx, path, estimate_bytes(d, ndiff));
  /* every rank must agree before the collective file operations */
  if (comm != MPI_COMM_NULL) {
    int bad = rc != EF_OK, any;
    int mrc = MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm);
    if (mrc != MPI_SUCCESS) rc = ef_error_mpi(ctx, mrc, "MPI_Allreduce", __FILE__, __LINE__);
    else if (any && rc == EF_OK) rc = ef_error_set(ctx, EF_ERR_IO, "rank 0 cannot write the result");
  }
  char tmp[2 * EF_PATH_MAX + 96] = "";
  if (rc == EF_OK) rc = temp_name(ctx, path, tmp, sizeof tmp);
  hid_t fapl = -1, file = -1;
  if (rc == EF_OK) {
    EF_GOTO_H5(ctx, rc, fapl = H5Pcreate(H5P_FILE_ACCESS), done);
    if (comm != MPI_COMM_NULL) EF_GOTO_H5(ctx, rc, H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL), done);
    file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (file < 0) {
      H5Eclear2(H5E_DEFAULT);
      rc = ef_error_set(ctx, EF_ERR_IO, "%s: cannot create the result file", tmp);
      goto done;
    }
    int32_t nranks = ef_ctx_size(ctx);
    uint64_t seed = d->cfg->seed, nunits = ef_plan_n_units(p);
    EF_GOTO(rc, attr_str(&w, file, "ensfold_version", EF_VERSION), done);
    EF_GOTO(rc, attr_str(&w, file, "config", d->config_text), done);
    EF_GOTO(rc, attr(&w, file, "seed", H5T_NATIVE_UINT64, &seed), done);
    EF_GOTO(rc, attr(&w, file, "n_ranks", H5T_NATIVE_INT32, &nranks), done);
    EF_GOTO(rc, attr(&w, file, "n_units", H5T_NATIVE_UINT64, &nunits), done);
    EF_GOTO(rc, write_identity(&w, file, d->identity), done);
    EF_GOTO(rc, write_binning(&w, file, ef_inputs_vertex_binning(d->in), "binning_vertex"), done);
    EF_GOTO(rc, write_binning(&w, file, ef_inputs_detector_binning(d->in), "binning_detector"), done);
    EF_GOTO(rc, write_units(&w, file, d), done);
    EF_GOTO(rc, write_ibu(&w, file, d), done);
    {
      int32_t *mi = malloc((size_t)nv * sizeof *mi);
      if (!mi) {
        rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
        goto done;
      }
      for (int i = 0; i < nv; i++) mi[i] = measured[i];
      rc = PUT_I(&w, file, "measured", (hsize_t)nv, mi);
      free(mi);
      if (rc != EF_OK) goto done;
    }
    if (ef_inputs_truth(d->in) || exact) {
      hid_t t;
      EF_GOTO(rc, group(&w, file, "truth", &t), done);
      if (ef_inputs_truth(d->in)) {
        rc = PUT_D(&w, t, "hist", (hsize_t)nv, 1, 1, ef_inputs_truth(d->in));
        if (rc == EF_OK)
          rc = attr_str(&w, t, "model", ef_model_name((ef_model_id)d->cfg->data.model));
      }
      if (rc == EF_OK && exact) rc = PUT_D(&w, t, "efficiency", 4, (hsize_t)nv, 2, exact);
      H5Gclose(t);
      if (rc != EF_OK) goto done;
    }
    EF_GOTO(rc, write_groups(&w, file, d, gs, ng, ds, ndiff, n_cells), done);
  }
done:
  if (file >= 0 && H5Fclose(file) < 0 && rc == EF_OK)
    rc = ef_error_hdf5(ctx, "H5Fclose", __FILE__, __LINE__);
  if (fapl >= 0) H5Pclose(fapl);
  for (int g = 0; gs && g < ng; g++) free_group(&gs[g]);
  for (int k = 0; ds && k < ndiff; k++) free_diff(&ds[k]);
  free(gs);
  free(ds);
  free(measured);
  free(cell);
  /* rank 0 moves the finished file into place; everyone learns the outcome */
  if (w.root) {
    if (rc == EF_OK && rename(tmp, path) != 0)
      rc = ef_error_set(ctx, EF_ERR_IO, "%s: cannot move the result into place: %s", path,
                        strerror(errno));
    if (rc != EF_OK && tmp[0]) unlink(tmp);
  }
  if (comm != MPI_COMM_NULL) {
    int mine = rc, r0 = rc;
    int mrc = MPI_Bcast(&r0, 1, MPI_INT, 0, comm);
    if (mrc != MPI_SUCCESS) return ef_error_mpi(ctx, mrc, "MPI_Bcast", __FILE__, __LINE__);
    if (mine == EF_OK && r0 != EF_OK) rc = ef_error_set(ctx, r0, "rank 0 could not write %s", path);
  }
  return rc;
}
