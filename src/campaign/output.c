/* The parallel-HDF5 result file (the statistics it stores: groupstats.c). */
#include "ensfold/output.h"

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "ensfold/process.h"
#include "ensfold/stats.h"
#include "ensfold/unit.h"
#include "groupstats.h"
#include "projection.h"
#include "ensfold_version.h"

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

/* Does the plan have a method with loss curves (own: with an own answer;
 * method.h)? */
static int plan_has(const ef_plan *p, int own) {
  for (int g = 0; g < ef_plan_n_groups(p); g++) {
    int m, f;
    ef_plan_group(p, g, &m, &f);
    if (own ? ef_method_get(m)->has_own : ef_method_get(m)->has_curves) return 1;
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

/* The pi0 binnings (ef_binning_is_theta_phi or cos-phi): the polar edges
 * in theta* degrees or in cos theta*, the phi* edges in degrees. */
static int write_binning_pi0(writer *w, hid_t g, const ef_binning *b) {
  int np = ef_binning_axis(b, 0)->n, nf = ef_binning_axis(b, 1)->n;
  int theta = ef_binning_is_theta_phi(b);
  double *pe = malloc((size_t)(np + 1) * sizeof(double));
  double *fe = malloc((size_t)(nf + 1) * sizeof(double));
  int rc = EF_OK;
  if (!pe || !fe) {
    rc = ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (int i = 0; i <= np; i++)
    pe[i] = theta ? acos(ef_binning_edge(b, 0, i)) * 180.0 / M_PI : ef_binning_edge(b, 0, i);
  for (int j = 0; j <= nf; j++) fe[j] = ef_binning_edge(b, 1, j) * 180.0 / M_PI;
  EF_GOTO(rc, attr_str(w, g, "scheme", theta ? "theta-phi" : "cos-phi"), done);
  EF_GOTO(rc, PUT_D(w, g, theta ? "theta_edges_deg" : "cos_theta_edges", (hsize_t)np + 1, 1, 1,
                    pe), done);
  EF_GOTO(rc, PUT_D(w, g, "phi_edges_deg", (hsize_t)nf + 1, 1, 1, fe), done);
done:
  free(pe);
  free(fe);
  return rc;
}

/* Any other space: scheme "product", the observables' names and one edges
 * dataset per observable, edges_<name> (n + 1). */
static int write_binning_product(writer *w, hid_t g, const ef_binning *b, const ef_space *sp) {
  char names[EF_SPACE_MAX_DIM * (EF_SPACE_NAME_LEN + 1)] = "";
  size_t u = 0;
  for (int a = 0; a < sp->dim; a++)
    u += (size_t)snprintf(names + u, sizeof names - u, "%s%s", a ? "," : "", sp->axis[a].name);
  EF_CHECK(attr_str(w, g, "scheme", "product"));
  EF_CHECK(attr_str(w, g, "observables", names));
  for (int a = 0; a < sp->dim; a++) {
    int n = ef_binning_axis(b, a)->n;
    double *e = malloc((size_t)(n + 1) * sizeof *e);
    if (!e) return ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
    for (int k = 0; k <= n; k++) e[k] = ef_binning_edge(b, a, k);
    char dn[EF_SPACE_NAME_LEN + 8];
    snprintf(dn, sizeof dn, "edges_%s", sp->axis[a].name);
    int rc = PUT_D(w, g, dn, (hsize_t)n + 1, 1, 1, e);
    free(e);
    EF_CHECK(rc);
  }
  return EF_OK;
}

static int write_binning(writer *w, hid_t file, const ef_binning *b, const ef_space *sp,
                         const char *name) {
  hid_t g;
  EF_CHECK(group(w, file, name, &g));
  int rc = ef_space_is_pi0(sp) ? write_binning_pi0(w, g, b) : write_binning_product(w, g, b, sp);
  H5Gclose(g);
  return rc;
}

/* Per unit the projections of its histogram (projection.h; nu, m each):
 * the 1-D marginals (pi0 proj_polar and proj_phi, else proj_<observable>)
 * and, with binning.pairs, pair_<a>_<c>. */
static int write_projections(writer *w, hid_t g, const ef_output_data *d) {
  const ef_binning *b = ef_inputs_vertex_binning(d->in);
  const ef_space *sp = ef_process_space(ef_inputs_process(d->in));
  hsize_t nu = ef_plan_n_units(d->plan);
  int nv = ef_binning_count(b), np = ef_proj_count(b, d->cfg->vertex_pairs && !ef_space_is_pi0(sp));
  for (int p = 0; p < np; p++) {
    char dn[2 * EF_SPACE_NAME_LEN + 8];
    int m = ef_proj_describe(b, sp, p, dn, sizeof dn);
    double *pr = NULL;
    int *idx = NULL;
    if (w->root) {
      pr = calloc(nu * (hsize_t)m + 1, sizeof *pr);
      idx = malloc((size_t)nv * sizeof *idx + 1);
      if (!pr || !idx) {
        free(pr);
        free(idx);
        return ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
      }
      ef_proj_index(b, p, idx);
      for (hsize_t u = 0; u < nu; u++) /* the histogram part of each result row */
        ef_proj_vec(nv, idx, m, d->results + u * (hsize_t)d->result_len, pr + u * (hsize_t)m);
    }
    int rc = PUT_D(w, g, dn, nu, (hsize_t)m, 2, pr);
    free(pr);
    free(idx);
    EF_CHECK(rc);
  }
  return EF_OK;
}

/* Projection p's sigma parts at its own training share (groupstats.h):
 * stat and central (m) from its replica sigma sig (m), as ef_parts_compute
 * splits a bin's; phi2[2] the share over every vertex bin and the measured. */
static void projection_parts(const group_stats *x, int p, int m, const double *sig,
                             double *stat, double *central, double *phi2) {
  phi2[0] = x->proj_phi && p < x->n_proj ? x->proj_phi[2 * p] : NAN;
  phi2[1] = x->proj_phi && p < x->n_proj ? x->proj_phi[2 * p + 1] : NAN;
  int known = ef_method_deterministic(x->method) || (x->members >= 2 && x->n_rep >= 2);
  double phi = isnan(phi2[0]) ? 0.0 : phi2[0]; /* no spread at all: nothing to split */
  for (int i = 0; i < m; i++) {
    stat[i] = known ? sqrt(1.0 - phi) * sig[i] : NAN;
    central[i] = known ? sqrt(1.0 - phi + phi / (double)x->n_rep) * sig[i] : sig[i];
  }
}

/* A group's projections (product binnings; projection.h): per projection
 * a subgroup with mean (m), sigma (m) and cov (m, m) from the group's
 * mean and covariance, sigma_stat and sigma_central (m) at the
 * projection's own training share, training_fraction (2) and replicas (1)
 * (collective; data on the root only). */
static int write_group_projections(writer *w, hid_t g, const ef_output_data *d,
                                   const group_stats *x) {
  const ef_binning *b = ef_inputs_vertex_binning(d->in);
  const ef_space *sp = ef_process_space(ef_inputs_process(d->in));
  int nv = ef_binning_count(b), np = ef_proj_count(b, d->cfg->vertex_pairs);
  for (int p = 0; p < np; p++) {
    char dn[2 * EF_SPACE_NAME_LEN + 8];
    int m = ef_proj_describe(b, sp, p, dn, sizeof dn), rc = EF_OK;
    double *buf = NULL, *mean = NULL, *sig = NULL, *cov = NULL, phi2[2] = {NAN, NAN};
    if (w->root) {
      int *idx = malloc((size_t)nv * sizeof *idx);
      buf = malloc(((size_t)4 * m + (size_t)m * m + (size_t)nv * m) * sizeof *buf);
      if (!idx || !buf) rc = ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
      if (rc == EF_OK) { /* buf: mean, sigma, cov, (tmp | stat, central) */
        mean = buf, sig = buf + m, cov = buf + 2 * m;
        ef_proj_index(b, p, idx);
        ef_proj_vec(nv, idx, m, x->mean, mean);
        ef_proj_cov(nv, idx, m, x->cov, cov + (size_t)m * m, cov);
        for (int i = 0; i < m; i++) sig[i] = sqrt(fmax(cov[(size_t)i * m + i], 0.0));
        double *stat = cov + (size_t)m * m;
        projection_parts(x, p, m, sig, stat, stat + m, phi2);
      }
      free(idx);
    }
    double *stat = cov ? cov + (size_t)m * m : NULL, *central = stat ? stat + m : NULL;
    hid_t pg;
    if (rc == EF_OK) rc = group(w, g, dn, &pg);
    if (rc == EF_OK) {
      rc = PUT_D(w, pg, "mean", (hsize_t)m, 1, 1, mean);
      if (rc == EF_OK) rc = PUT_D(w, pg, "sigma", (hsize_t)m, 1, 1, sig);
      if (rc == EF_OK) rc = PUT_D(w, pg, "cov", (hsize_t)m, (hsize_t)m, 2, cov);
      if (rc == EF_OK) rc = PUT_D(w, pg, "sigma_stat", (hsize_t)m, 1, 1, stat);
      if (rc == EF_OK) rc = PUT_D(w, pg, "sigma_central", (hsize_t)m, 1, 1, central);
      if (rc == EF_OK) rc = PUT_D(w, pg, "training_fraction", 2, 1, 1, phi2);
      if (rc == EF_OK) rc = PUT_I(w, pg, "replicas", 1, &x->n_rep);
      H5Gclose(pg);
    }
    free(buf);
    EF_CHECK(rc);
  }
  return EF_OK;
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
  if (w->root) {
    col = malloc(5 * nu * sizeof *col + 1);
    seeds = malloc(nu * sizeof *seeds + 1);
    if (!col || !seeds) {
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
    hsize_t E = (hsize_t)ef_unit_loss_offset(d->in), K = (hsize_t)ef_inputs_n_cat(d->in);
    hsize_t hist[2] = {nu, (hsize_t)nv}, eff[3] = {nu, K, (hsize_t)nv}, loss[2] = {nu, L};
    EF_GOTO(rc, PUT_ROWS(w, g, "hist", 2, hist, d->results, row, 0), done);
    EF_GOTO(rc, PUT_ROWS(w, g, "efficiency", 3, eff, d->results, row, (hsize_t)nv), done);
    if (plan_has(p, 0)) {
      EF_GOTO(rc, PUT_ROWS(w, g, "loss_d", 2, loss, d->results, row, E), done);
      EF_GOTO(rc, PUT_ROWS(w, g, "loss_g", 2, loss, d->results, row, E + L), done);
    }
    if (plan_has(p, 1))
      EF_GOTO(rc, PUT_ROWS(w, g, "own", 2, hist, d->results, row, E + 2 * L), done);
    hsize_t N = (hsize_t)ef_inputs_n_unbinned(d->in), D = (hsize_t)ef_inputs_data(d->in)->space.dim;
    if (N > 0) { /* float32: the points and weights need no more */
      hsize_t X = E + 2 * L + (hsize_t)nv, ux[3] = {nu, N, D}, uw[2] = {nu, N};
      EF_GOTO(rc, put_rows(w, g, "unbinned_x", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, 3, ux,
                           d->results, row, X), done);
      EF_GOTO(rc, put_rows(w, g, "unbinned_w", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, 2, uw,
                           d->results, row, X + N * D), done);
    }
    hsize_t I = (hsize_t)ef_inputs_n_iterations(d->in);
    if (I > 0) { /* after the event weights (unit.h) */
      hsize_t Z = E + 2 * L + (hsize_t)nv + N * (D + 1) + ef_inputs_n_event_weights(d->in);
      hsize_t ih[3] = {nu, I, (hsize_t)nv}, ie[2] = {nu, I};
      EF_GOTO(rc, PUT_ROWS(w, g, "iteration_hist", 3, ih, d->results, row, Z), done);
      EF_GOTO(rc, PUT_ROWS(w, g, "iteration_effective_mc", 2, ie, d->results, row,
                           Z + I * (hsize_t)nv), done);
    }
  }
  EF_GOTO(rc, write_projections(w, g, d), done);
done:
  free(col);
  free(seeds);
  H5Gclose(g);
  return rc;
}

/* The rows of the units with per-event weights (method.h, event_weights):
 * their /units indices into rows (nu); returns how many. */
static hsize_t weight_rows(const ef_plan *p, int32_t *rows) {
  hsize_t n = 0;
  for (hsize_t u = 0; u < ef_plan_n_units(p); u++) {
    const ef_method *m = ef_method_get(ef_plan_unit(p, u)->method);
    if (m->event_weights || !m->has_samples) rows[n++] = (int32_t)u;
  }
  return n;
}

/* /event_weights/weights (nw, n_mc) float32: row i the weights of unit
 * rows[i], read from its result row at column col0 (collective; the root
 * writes). */
static int put_weights(writer *w, hid_t g, const ef_output_data *d, const int32_t *rows,
                       hsize_t nw, hsize_t ne, hsize_t col0) {
  int rc = EF_OK;
  hid_t space = -1, ds = -1, mspace = -1;
  hsize_t dims[2] = {nw, ne}, chunk[2] = {1, ne < 1048576 ? ne : 1048576};
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE); /* a chunk per unit's row (or 2^20 of it) */
  EF_GOTO_H5(w->ctx, rc, dcpl, done);
  EF_GOTO_H5(w->ctx, rc, H5Pset_chunk(dcpl, 2, chunk), done);
  EF_GOTO_H5(w->ctx, rc, space = H5Screate_simple(2, dims, NULL), done);
  EF_GOTO_H5(w->ctx, rc, ds = H5Dcreate2(g, "weights", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl,
                                         H5P_DEFAULT), done);
  if (w->root && d->results) {
    hsize_t mdims[2] = {ef_plan_n_units(d->plan), d->result_len}, count[2] = {1, ne};
    EF_GOTO_H5(w->ctx, rc, mspace = H5Screate_simple(2, mdims, NULL), done);
    for (hsize_t i = 0; i < nw; i++) {
      hsize_t start[2] = {(hsize_t)rows[i], col0};
      EF_GOTO_H5(w->ctx, rc, H5Sselect_hyperslab(mspace, i ? H5S_SELECT_OR : H5S_SELECT_SET,
                                                 start, NULL, count, NULL), done);
    }
    EF_GOTO_H5(w->ctx, rc, H5Dwrite(ds, H5T_NATIVE_DOUBLE, mspace, H5S_ALL, H5P_DEFAULT,
                                    d->results), done);
  }
done:
  if (ds >= 0 && H5Dclose(ds) < 0 && rc == EF_OK)
    rc = ef_error_hdf5(w->ctx, "H5Dclose", __FILE__, __LINE__);
  if (mspace >= 0) H5Sclose(mspace);
  if (space >= 0) H5Sclose(space);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (rc != EF_OK) ef_error_wrap(w->ctx, "writing /event_weights/weights: ");
  if (w->comm != MPI_COMM_NULL) { /* as put_rows: every rank learns the root's outcome */
    int bad = rc != EF_OK, any = 0;
    int mrc = MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, w->comm);
    if (mrc != MPI_SUCCESS) return ef_error_mpi(w->ctx, mrc, "MPI_Allreduce", __FILE__, __LINE__);
    if (any && rc == EF_OK)
      rc = ef_error_set(w->ctx, EF_ERR_IO, "writing /event_weights/weights failed on another rank");
  }
  return rc;
}

/* What /event_weights holds, and each method's settings beside it. */
static int event_weights_attrs(writer *w, hid_t g, const ef_output_data *d) {
  EF_CHECK(attr_str(w, g, "meaning", "weights[i, e]: MC event e's weight in the result of unit "
                    "unit[i] (its /units row: method, fill_model, replica, member, seed); a "
                    "histogram of vertex weighted by weights[i] in the campaign's vertex "
                    "binning is /units/hist[unit[i]]; any other binning of any observable "
                    "likewise. Replica 0 is the nominal unfolding, replicas 1.. the bootstrap "
                    "replicas, member the ensemble member (docs/formats.md)"));
  EF_CHECK(attr_str(w, g, "normalisation", "events: the weights of a unit sum to its unfolded "
                    "events (MC events outside the vertex binning keep theirs but are in no "
                    "bin; OmniFold: a blind bin's events share the fill model's content by "
                    "their weights); they include mc_weight, the MC file's own weights"));
  for (int id = 0; id < ef_method_count(); id++) {
    const ef_method *m = ef_method_get(id);
    if (!(d->cfg->campaign.methods >> id & 1u) || !m->describe) continue;
    char name[64], text[512];
    snprintf(name, sizeof name, "settings_%s", m->name);
    m->describe(d->cfg, text, sizeof text);
    EF_CHECK(attr_str(w, g, name, text));
  }
  return EF_OK;
}

/* /event_weights (campaign.event_weights): the MC's vertices once and a
 * float32 weight row per unit of a method that has them. */
static int write_event_weights(writer *w, hid_t file, const ef_output_data *d) {
  hsize_t ne = ef_inputs_n_event_weights(d->in), nu = ef_plan_n_units(d->plan);
  if (ne == 0) return EF_OK;
  const ef_events *mc = ef_inputs_mc(d->in);
  int32_t *rows = malloc(nu * sizeof *rows + 1);
  if (!rows) return ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
  hsize_t nw = weight_rows(d->plan, rows), D = (hsize_t)mc->space.dim;
  hsize_t X = ef_unit_loss_offset(d->in) + 2 * EF_UNIT_LOSS_POINTS +
              (hsize_t)ef_binning_count(ef_inputs_vertex_binning(d->in));
  hsize_t col0 = X + (hsize_t)ef_inputs_n_unbinned(d->in) * (D + 1);
  hid_t g;
  int rc = group(w, file, "event_weights", &g);
  if (rc != EF_OK) {
    free(rows);
    return rc;
  }
  EF_GOTO(rc, event_weights_attrs(w, g, d), done);
  EF_GOTO(rc, PUT_D(w, g, "vertex", ne, D, 2, mc->vertex), done);
  if (mc->weight) EF_GOTO(rc, PUT_D(w, g, "mc_weight", ne, 1, 1, mc->weight), done);
  EF_GOTO(rc, PUT_I(w, g, "unit", nw, rows), done);
  EF_GOTO(rc, put_weights(w, g, d, rows, nw, ne, col0), done);
done:
  H5Gclose(g);
  free(rows);
  return rc;
}

/* The twins IBU unfolds (ibu.h: ef_ibu_choose_twins), 0 / 1 per vertex bin. */
static int write_twins(writer *w, hid_t g, int nv, const unsigned char *twins) {
  int32_t *mi = malloc((size_t)nv * sizeof *mi + 1);
  if (!mi) return ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
  for (int i = 0; i < nv; i++) mi[i] = twins[i];
  int rc = PUT_I(w, g, "unfolded_twins", (hsize_t)nv, mi);
  free(mi);
  return rc;
}

/* /inputs: what every method unfolds from (the response, efficiency, data
 * histogram, attributed data, the fill models' priors) and the thresholds
 * that chose /measured. Files written before this group had its name kept
 * it under /ibu; readers fall back to that (docs/formats.md). Collective. */
static int write_inputs(writer *w, hid_t file, const ef_output_data *d, const ef_group_set *set) {
  const ef_response *r = ef_inputs_response(d->in);
  int nv = ef_response_n_vertex(r), nd = ef_response_n_detector(r);
  hid_t g, gp;
  EF_CHECK(group(w, file, "inputs", &g));
  int rc = EF_OK;
  double *rval = NULL; /* rval: (nnz) response values */
  gp = -1;
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
  /* the data's seen events per detector bin, binned once (groupstats.h) */
  EF_GOTO(rc, PUT_D(w, g, "data_hist", (hsize_t)nd, 1, 1, set->data_hist), done);
  EF_GOTO(rc, PUT_D(w, g, "attributed", (hsize_t)nv, 1, 1, ef_inputs_attributed(d->in)), done);
  EF_GOTO(rc, write_twins(w, g, nv, ef_inputs_unfolded_twins(d->in)), done);
  EF_GOTO(rc, group(w, g, "prior", &gp), done);
  for (int f = 0; f < EF_N_FILLS; f++)
    if (ef_inputs_prior(d->in, f))
      EF_GOTO(rc, PUT_D(w, gp, ef_inputs_fill_name(d->in, f), (hsize_t)nv, 1, 1,
                        ef_inputs_prior(d->in, f)), done);
  {
    int it = d->cfg->ibu.iterations;
    double me = d->cfg->ibu.min_efficiency;
    EF_GOTO(rc, attr(w, g, "iterations", H5T_NATIVE_INT, &it), done);
    EF_GOTO(rc, attr(w, g, "min_efficiency", H5T_NATIVE_DOUBLE, &me), done);
    me = d->cfg->ibu.min_expected;
    EF_GOTO(rc, attr(w, g, "min_expected", H5T_NATIVE_DOUBLE, &me), done);
    me = d->cfg->ibu.min_mc;
    EF_GOTO(rc, attr(w, g, "min_mc", H5T_NATIVE_DOUBLE, &me), done);
  }
done:
  free(rval);
  if (gp >= 0) H5Gclose(gp);
  H5Gclose(g);
  return rc;
}

/* A group's uncertainty parts (include/ensfold/uncertainty.h): datasets
 * sigma_stat, sigma_training, sigma_central, sigma_model (V each) and what
 * the training part rests on (attribute "training"; the fractions are in
 * /summary). Collective: the text depends on the plan alone, which every
 * rank knows. */
static int write_parts(writer *w, hid_t g, int nv, const group_stats *s) {
  const ef_parts *p = &s->parts;
  EF_CHECK(PUT_D(w, g, "sigma_stat", (hsize_t)nv, 1, 1, p->stat));
  EF_CHECK(PUT_D(w, g, "sigma_training", (hsize_t)nv, 1, 1, p->training));
  EF_CHECK(PUT_D(w, g, "sigma_central", (hsize_t)nv, 1, 1, p->central));
  EF_CHECK(PUT_D(w, g, "sigma_model", (hsize_t)nv, 1, 1, s->model));
  char text[256];
  if (ef_method_deterministic(s->method))
    snprintf(text, sizeof text, "none: the method is deterministic (sigma_stat = sigma)");
  else if (s->members >= 2)
    snprintf(text, sizeof text, "from %d ensemble members per replica (the members' spread), "
             "pooled per bin class", s->members);
  else
    snprintf(text, sizeof text, "unknown: campaign.ensemble is 1, so statistics and training "
             "noise are not separated; sigma_central is the replica spread");
  return attr_str(w, g, "training", text);
}

/* A generative method's own answer: own_mean, own_sigma_central,
 * own_sigma_model (V each; NaN when the group has none). Collective. */
static int write_own(writer *w, hid_t g, int nv, const group_stats *s) {
  EF_CHECK(PUT_D(w, g, "own_mean", (hsize_t)nv, 1, 1, s->own_mean));
  /* without an own answer (never on rank 0 for a group with statistics)
   * own_model holds NaN and stands in for the sigma */
  EF_CHECK(PUT_D(w, g, "own_sigma_central", (hsize_t)nv, 1, 1,
                 s->has_own ? s->own_parts.central : s->own_model));
  return PUT_D(w, g, "own_sigma_model", (hsize_t)nv, 1, 1, s->own_model);
}

/* The /summary columns of the unmeasured classes: for the result, then
 * the method's own answer (own_*), per class (hole, open): chi2, ndf,
 * coverage, median relative spread over fill models. */
#define N_CLS_COLS EF_OUTPUT_N_CLASS_COLS
#define CLS_COLS ef_output_class_cols
const char *const ef_output_class_cols[EF_OUTPUT_N_CLASS_COLS] = {
    "chi2_hole", "ndf_hole", "coverage_hole", "model_rel_hole",
    "chi2_open", "ndf_open", "coverage_open", "model_rel_open",
    "own_chi2_hole", "own_ndf_hole", "own_coverage_hole", "own_model_rel_hole",
    "own_chi2_open", "own_ndf_open", "own_coverage_open", "own_model_rel_open"};

/* Group s's values of CLS_COLS into col[k * stride]. */
static void class_columns(const group_stats *s, double *col, int stride) {
  for (int a = 0; a < 2; a++)
    for (int c = 0; c < 2; c++) {
      const ef_closure *x = &s->cls[a][c];
      double *o = col + (size_t)(8 * a + 4 * c) * (size_t)stride;
      int ok = (a == 0 || s->has_own) && x->ndf > 0;
      o[0] = ok ? x->chi2 : NAN;
      o[stride] = ok ? x->ndf : 0;
      o[2 * stride] = ok ? x->coverage : NAN;
      o[3 * stride] = s->cls_model[a][c];
    }
}

/* One group's datasets (collective; data on the root only). */
static int write_group(writer *w, hid_t top, const ef_output_data *d, const group_stats *x,
                       int stats) {
  int nv = ef_binning_count(ef_inputs_vertex_binning(d->in));
  char name[160];
  snprintf(name, sizeof name, "%s_%s", ef_method_name(x->method),
           ef_inputs_fill_name(d->in, x->fill));
  hid_t g;
  EF_CHECK(group(w, top, name, &g));
  int rc;
  if (!stats) {
    rc = attr_str(w, g, "statistics", NO_STATISTICS);
    H5Gclose(g);
    return rc;
  }
  rc = PUT_D(w, g, "mean", (hsize_t)nv, 1, 1, x->mean);
  if (rc == EF_OK) rc = PUT_D(w, g, "sigma", (hsize_t)nv, 1, 1, x->sigma);
  if (rc == EF_OK) rc = PUT_D(w, g, "cov", (hsize_t)nv, (hsize_t)nv, 2, x->cov);
  if (rc == EF_OK) rc = PUT_D(w, g, "corr", (hsize_t)nv, (hsize_t)nv, 2, x->corr);
  if (rc == EF_OK) rc = write_parts(w, g, nv, x);
  if (rc == EF_OK && ef_method_get(x->method)->has_own) rc = write_own(w, g, nv, x);
  if (rc == EF_OK && ef_inputs_truth(d->in)) rc = PUT_D(w, g, "pulls", (hsize_t)nv, 1, 1, x->pulls);
  if (rc == EF_OK && !ef_space_is_pi0(ef_process_space(ef_inputs_process(d->in))))
    rc = write_group_projections(w, g, d, x);
  H5Gclose(g);
  return rc;
}

/* One fill pair's paired difference (collective). */
static int write_difference(writer *w, hid_t top, const ef_output_data *d, const diff_stats *x,
                            int stats) {
  int nv = ef_binning_count(ef_inputs_vertex_binning(d->in));
  char name[160];
  snprintf(name, sizeof name, "%s_%s-%s", ef_method_name(x->method),
           ef_inputs_fill_name(d->in, x->fa), ef_inputs_fill_name(d->in, x->fb));
  hid_t g;
  EF_CHECK(group(w, top, name, &g));
  int rc;
  if (!stats) {
    rc = attr_str(w, g, "statistics", NO_STATISTICS);
    H5Gclose(g);
    return rc;
  }
  rc = PUT_D(w, g, "mean", (hsize_t)nv, 1, 1, x->mean);
  if (rc == EF_OK) rc = PUT_D(w, g, "sigma", (hsize_t)nv, 1, 1, x->sigma);
  if (rc == EF_OK) rc = PUT_D(w, g, "cov", (hsize_t)nv, (hsize_t)nv, 2, x->cov);
  if (rc == EF_OK) rc = PUT_D(w, g, "significance", (hsize_t)nv, 1, 1, x->signif);
  if (rc == EF_OK) rc = PUT_I(w, g, "replicas", 1, &x->n_rep);
  H5Gclose(g);
  return rc;
}

/* The /summary columns, one row per group: ic (10, ng) integers in the order
 * of SUM_ICOLS, dc (N_SUM_DCOLS, ng) doubles in the order of SUM_DCOLS. */
#define N_PHI_COLS EF_PARTS_N_CLASSES
#define N_SUM_NAMED (12 + N_PHI_COLS + 2 * N_PARTS) /* SUM_DCOLS, then CLS_COLS */
#define N_REFOLD_COLS 2 /* after CLS_COLS */
#define N_SUM_DCOLS (N_SUM_NAMED + N_CLS_COLS + N_REFOLD_COLS)
static const char *const REFOLD_COLS[N_REFOLD_COLS] = {"refold_chi2", "refold_ndf"};
static const char *const SUM_ICOLS[10] = {
    "method", "fill_model", "replicas", "full_cov_measured", "full_cov_unmeasured",
    "zero_sigma_measured", "infinite_pulls_measured", "zero_sigma_unmeasured",
    "infinite_pulls_unmeasured", "members"};
static const char *const SUM_DCOLS[N_SUM_NAMED] = {
    "chi2_measured", "ndf_measured", "chi2_unmeasured", "ndf_unmeasured",
    "coverage_measured", "coverage_unmeasured", "efficiency_max_nominal",
    "efficiency_mean_nominal", "efficiency_above_nominal", "efficiency_max_replicas",
    "efficiency_mean_replicas", "efficiency_above_replicas", "training_fraction_measured",
    "training_fraction_hole", "training_fraction_open", "stat_rel_measured", "training_rel_measured",
    "central_rel_measured", "model_rel_measured", "stat_rel_unmeasured",
    "training_rel_unmeasured", "central_rel_unmeasured", "model_rel_unmeasured"};

static void summary_columns(const group_stats *gs, int ng, int32_t *ic, double *dc) {
  for (int i = 0; i < ng; i++) {
    const group_stats *x = &gs[i];
    const int32_t iv[10] = {x->method, x->fill, x->n_rep, x->meas.full_cov, x->unmeas.full_cov,
                            x->meas.zero_sigma, x->meas.infinite, x->unmeas.zero_sigma,
                            x->unmeas.infinite, x->members};
    for (int k = 0; k < 10; k++) ic[k * ng + i] = iv[k];
    dc[i] = x->meas.ndf ? x->meas.chi2 : NAN;
    dc[ng + i] = x->meas.ndf;
    dc[2 * ng + i] = x->unmeas.ndf ? x->unmeas.chi2 : NAN;
    dc[3 * ng + i] = x->unmeas.ndf;
    dc[4 * ng + i] = x->meas.coverage;
    dc[5 * ng + i] = x->unmeas.coverage;
    for (int k = 0; k < 2; k++) {
      dc[(6 + 3 * k) * ng + i] = x->eff[k].max_abs;
      dc[(7 + 3 * k) * ng + i] = x->eff[k].mean_abs;
      dc[(8 + 3 * k) * ng + i] = x->eff[k].above;
    }
    for (int c = 0; c < N_PHI_COLS; c++)
      dc[(12 + c) * ng + i] = x->n_rep >= 2 ? x->parts.phi[c] : NAN;
    for (int c = 0; c < 2; c++)
      for (int k = 0; k < N_PARTS; k++)
        dc[(12 + N_PHI_COLS + c * N_PARTS + k) * ng + i] = x->rel[c][k];
    class_columns(x, dc + N_SUM_NAMED * ng + i, ng);
    dc[(N_SUM_NAMED + N_CLS_COLS) * ng + i] = x->refold_chi2;
    dc[(N_SUM_NAMED + N_CLS_COLS + 1) * ng + i] = x->refold_ndf;
  }
}

/* The /summary table and its attributes (collective). */
static int write_summary(writer *w, hid_t file, const ef_inputs *in, const group_stats *gs,
                         int ng, int n_eff_cells) {
  hid_t s;
  EF_CHECK(group(w, file, "summary", &s));
  int32_t *ic = calloc(10 * (size_t)ng + 1, sizeof *ic);
  double *dc = calloc(N_SUM_DCOLS * (size_t)ng + 1, sizeof *dc);
  int rc = EF_OK;
  if (!ic || !dc) rc = ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
  if (rc == EF_OK) summary_columns(gs, ng, ic, dc);
  hsize_t n = (hsize_t)ng;
  for (int k = 0; rc == EF_OK && k < 10; k++) rc = PUT_I(w, s, SUM_ICOLS[k], n, ic + k * ng);
  for (int k = 0; rc == EF_OK && k < N_SUM_DCOLS; k++)
    rc = PUT_D(w, s,
               k < N_SUM_NAMED                ? SUM_DCOLS[k]
               : k < N_SUM_NAMED + N_CLS_COLS ? CLS_COLS[k - N_SUM_NAMED]
                                              : REFOLD_COLS[k - N_SUM_NAMED - N_CLS_COLS],
               n, 1, 1, dc + k * ng);
  double eff_min = EFF_MIN_TOTAL, eff_tol = EFF_TOLERANCE;
  int32_t cells = n_eff_cells;
  if (rc == EF_OK) rc = attr(w, s, "efficiency_min_total", H5T_NATIVE_DOUBLE, &eff_min);
  if (rc == EF_OK) rc = attr(w, s, "efficiency_tolerance", H5T_NATIVE_DOUBLE, &eff_tol);
  if (rc == EF_OK) rc = attr(w, s, "efficiency_cells", H5T_NATIVE_INT32, &cells);
  char names[EF_N_FILLS * 72] = "";
  for (int m = 0; m < ef_method_count(); m++)
    snprintf(names + strlen(names), sizeof names - strlen(names), "%s%d=%s", m ? " " : "", m,
             ef_method_name(m));
  if (rc == EF_OK) rc = attr_str(w, s, "method_names", names);
  names[0] = '\0';
  for (int m = 0; m < EF_N_FILLS; m++) /* the process's models, then the fill files */
    if (m < ef_process_n_models(ef_inputs_process(in)) || ef_inputs_prior(in, m))
      snprintf(names + strlen(names), sizeof names - strlen(names), "%s%d=%s", m ? " " : "", m,
               ef_inputs_fill_name(in, m));
  if (rc == EF_OK) rc = attr_str(w, s, "model_names", names);
  free(ic);
  free(dc);
  H5Gclose(s);
  return rc;
}

static int write_groups(writer *w, hid_t file, const ef_output_data *d, const group_stats *gs,
                        int ng, const diff_stats *ds, int ndiff, int n_eff_cells) {
  /* known on every rank (the datasets are created collectively) */
  int stats = ef_plan_n_replicas(d->plan) - 1 >= 2;
  hid_t top;
  EF_CHECK(group(w, file, "groups", &top));
  int rc = EF_OK;
  for (int i = 0; rc == EF_OK && i < ng; i++) rc = write_group(w, top, d, &gs[i], stats);
  H5Gclose(top);
  if (rc == EF_OK) rc = group(w, file, "differences", &top);
  if (rc != EF_OK) return rc;
  for (int i = 0; rc == EF_OK && i < ndiff; i++) rc = write_difference(w, top, d, &ds[i], stats);
  H5Gclose(top);
  return rc == EF_OK ? write_summary(w, file, d->in, gs, ng, n_eff_cells) : rc;
}

/* /refold_bins (n_detector): 1 where a detector bin enters the groups'
 * refold chi2 (refold.h; the data on the root). Collective. */
static int write_refold_bins(writer *w, hid_t file, const ef_output_data *d,
                             const ef_group_set *set) {
  int nd = ef_response_n_detector(ef_inputs_response(d->in));
  int32_t *b = calloc((size_t)nd + 1, sizeof *b);
  if (!b) return ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
  for (int j = 0; set->refold && j < nd && j < set->nd; j++) b[j] = set->refold[j];
  int rc = PUT_I(w, file, "refold_bins", (hsize_t)nd, b);
  free(b);
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
  double marg = 0; /* the 1-D projections' bins */
  for (int a = 0; a < ef_binning_dim(b); a++) marg += ef_binning_axis(b, a)->n;
  double bytes = U * ((double)d->result_len + marg) * 8
                 + U * 8 * 8 /* unit table */
                 + G * (2 * V * V + 10 * V) * 8 + ndiff * (V * V + 3 * V) * 8
                 + (double)ef_response_nnz(r) * 16 + ef_response_n_detector(r) * 8.0
                 + V * 8 * (EF_N_FILLS + 3 + ef_inputs_n_cat(d->in)) + G * 12 * 8 + (double)strlen(d->config_text);
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
  if (is > 0 && file < 0) {
    /* an HDF5 file that will not open (locked, damaged) is not one without
     * an identity: say why */
    ef_error_hdf5(ctx, "H5Fopen", __FILE__, __LINE__);
    return ef_error_wrap(ctx, "%s is an HDF5 file but cannot be opened: ", path);
  }
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

/* Everything in the result file but the file itself: root attributes,
 * binnings, units, the shared inputs, the measured classes, the truth and the
 * statistics of set. Collective. */
static int write_file(writer *w, hid_t file, const ef_output_data *d, const ef_group_set *set) {
  const ef_plan *p = d->plan;
  int nv = ef_binning_count(ef_inputs_vertex_binning(d->in)), rc = EF_OK;
  const unsigned char *measured = set->measured, *cls = set->cls;
  const double *exact = ef_inputs_exact_efficiency(d->in);
  int32_t nranks = ef_ctx_size(w->ctx);
  uint64_t seed = d->cfg->seed, nunits = ef_plan_n_units(p);
  EF_CHECK(attr_str(w, file, "ensfold_version", EF_VERSION));
  EF_CHECK(attr_str(w, file, "config", d->config_text));
  EF_CHECK(attr_str(w, file, "process", ef_process_name(ef_inputs_process(d->in))));
  EF_CHECK(attr(w, file, "seed", H5T_NATIVE_UINT64, &seed));
  EF_CHECK(attr(w, file, "n_ranks", H5T_NATIVE_INT32, &nranks));
  EF_CHECK(attr(w, file, "n_units", H5T_NATIVE_UINT64, &nunits));
  EF_CHECK(write_identity(w, file, d->identity));
  const ef_space *sp = ef_process_space(ef_inputs_process(d->in));
  EF_CHECK(write_binning(w, file, ef_inputs_vertex_binning(d->in), sp, "binning_vertex"));
  EF_CHECK(write_binning(w, file, ef_inputs_detector_binning(d->in), sp, "binning_detector"));
  EF_CHECK(write_units(w, file, d));
  EF_CHECK(write_event_weights(w, file, d));
  EF_CHECK(write_inputs(w, file, d, set));
  {
    int32_t *mi = malloc((size_t)nv * sizeof *mi);
    if (!mi) return ef_error_set(w->ctx, EF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < nv; i++) mi[i] = measured[i];
    rc = PUT_I(w, file, "measured", (hsize_t)nv, mi);
    for (int i = 0; i < nv; i++) mi[i] = cls[i];
    if (rc == EF_OK) rc = PUT_I(w, file, "unmeasured_class", (hsize_t)nv, mi);
    free(mi);
    if (rc != EF_OK) return rc;
  }
  EF_CHECK(write_refold_bins(w, file, d, set));
  if (ef_inputs_truth(d->in) || exact) {
    hid_t t;
    EF_CHECK(group(w, file, "truth", &t));
    if (ef_inputs_truth(d->in)) {
      rc = PUT_D(w, t, "hist", (hsize_t)nv, 1, 1, ef_inputs_truth(d->in));
      if (rc == EF_OK)
        rc = attr_str(w, t, "model", ef_process_model_name(ef_inputs_process(d->in), d->cfg->data.model));
    }
    if (rc == EF_OK && exact)
      rc = PUT_D(w, t, "efficiency", (hsize_t)ef_inputs_n_cat(d->in), (hsize_t)nv, 2, exact);
    H5Gclose(t);
    if (rc != EF_OK) return rc;
  }
  EF_CHECK(write_groups(w, file, d, set->gs, set->ng, set->ds, set->ndiff, set->n_cells));
  return EF_OK;
}

/* The measured data events, weighted by their file weights. */
static double measured_data(const ef_events *data) {
  double n = 0.0;
  for (size_t i = 0; i < data->n; i++)
    if (ef_events_measured(data, i)) n += data->weight ? data->weight[i] : 1.0;
  return n;
}

/* A group of a reweighting method whose MC weights, after the last
 * iteration, are worth fewer events than the data's measured ones in most
 * of its units: the MC's own statistics are not negligible (the replicas
 * leave them out unless campaign.bootstrap_mc), and where the effective
 * size is a small part of the MC, the MC does not cover the data well
 * enough to be reweighted to it. One warning per such group; rank 0. */
static void warn_effective_mc(ef_ctx *ctx, const ef_output_data *d) {
  size_t I = (size_t)ef_inputs_n_iterations(d->in), row = d->result_len;
  if (I == 0) return;
  double nd = measured_data(ef_inputs_data(d->in));
  const ef_plan *p = d->plan;
  for (int g = 0; g < ef_plan_n_groups(p); g++) {
    int method, fill;
    ef_plan_group(p, g, &method, &fill);
    double least = INFINITY;
    size_t n = 0, below = 0;
    for (size_t u = 0; u < ef_plan_n_units(p); u++) {
      const ef_unit *x = ef_plan_unit(p, u);
      if (x->method != method || x->fill != fill || d->status[u] != 0) continue;
      /* read only: the row's named parts (unit.h's layout) */
      const double *ess = ef_unit_row_parts((double *)(d->results + u * row), d->in).iter_ess;
      size_t k = I;
      while (k > 0 && !isfinite(ess[k - 1])) k--;
      if (k == 0) continue;
      n++;
      below += ess[k - 1] < nd;
      least = ess[k - 1] < least ? ess[k - 1] : least;
    }
    if (2 * below > n)
      ef_log(ctx, EF_LOG_WARN,
             "%s, fill %s: the reweighted MC is worth fewer events than the %.0f measured "
             "data events in %zu of %zu units (effective size down to %.0f of %zu MC events), "
             "so its own statistics are not negligible%s; an effective size far below the MC's "
             "events means the MC does not cover the data (docs/methods.md, \"When the MC does "
             "not cover the data\"; /units/iteration_effective_mc)",
             ef_method_name(method), ef_process_model_name(ef_inputs_process(d->in), fill), nd,
             below, n, least, ef_inputs_mc(d->in)->n,
             d->cfg->campaign.bootstrap_mc ? "" : " and sigma leaves them out (campaign.bootstrap_mc "
                                                  "puts them in)");
  }
}

int ef_output_write(ef_ctx *ctx, const char *path, const ef_output_data *d) {
  MPI_Comm comm = ef_ctx_comm(ctx);
  writer w = {ctx, ef_ctx_rank(ctx) == 0, comm};
  ef_group_set set;
  int rc = ef_groupstats_compute(ctx, d, w.root, &set);
  if (w.root && rc == EF_OK) rc = check_space(ctx, path, estimate_bytes(d, set.ndiff));
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
    EF_GOTO(rc, write_file(&w, file, d, &set), done);
  }
done:
  if (file >= 0 && H5Fclose(file) < 0 && rc == EF_OK)
    rc = ef_error_hdf5(ctx, "H5Fclose", __FILE__, __LINE__);
  if (fapl >= 0) H5Pclose(fapl);
  ef_groupstats_free(&set);
  /* rank 0 moves the finished file into place; everyone learns the outcome */
  if (w.root) {
    if (rc == EF_OK && rename(tmp, path) != 0)
      rc = ef_error_set(ctx, EF_ERR_IO, "%s: cannot move the result into place: %s", path,
                        strerror(errno));
    if (rc != EF_OK && tmp[0]) unlink(tmp);
    if (rc == EF_OK) warn_effective_mc(ctx, d);
  }
  if (comm != MPI_COMM_NULL) {
    int mine = rc, r0 = rc;
    int mrc = MPI_Bcast(&r0, 1, MPI_INT, 0, comm);
    if (mrc != MPI_SUCCESS) return ef_error_mpi(ctx, mrc, "MPI_Bcast", __FILE__, __LINE__);
    if (mine == EF_OK && r0 != EF_OK) rc = ef_error_set(ctx, r0, "rank 0 could not write %s", path);
  }
  return rc;
}
