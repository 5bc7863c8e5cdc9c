/* Event samples and HDF5 event files: alloc, validate, write, read. */
#include "ensfold/events.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ensfold_version.h"
#include "space_h5.h"

const char *ef_event_kind_name(ef_event_kind kind) {
  return kind == EF_KIND_MC ? "mc" : "data";
}

void ef_events_lost(const ef_events *ev, const int32_t *idx, size_t n, unsigned char *lost,
                    double *val) {
  const int D = ev->space.dim, K = ev->space.n_cat;
  size_t count[EF_SPACE_MAX_CAT] = {0};
  double x0[EF_SPACE_MAX_CAT * EF_SPACE_MAX_DIM] = {0}; /* (K, D) first listed value */
  for (int i = 0; i < K * D; i++) lost[i] = 1;
  for (size_t q = 0; q < n; q++) {
    size_t e = idx ? (size_t)idx[q] : q;
    if (!ef_events_measured(ev, e)) continue;
    int c = ev->topology[e];
    const double *x = ev->reco + (size_t)D * e;
    for (int j = 0; j < D; j++) {
      if (count[c] == 0) x0[c * D + j] = x[j];
      else if (x[j] != x0[c * D + j]) lost[c * D + j] = 0;
    }
    count[c]++;
  }
  for (int c = 0; c < K; c++)
    for (int j = 0; j < D; j++) {
      lost[c * D + j] &= count[c] >= 2;
      if (val) val[c * D + j] = x0[c * D + j];
    }
}

int ef_events_alloc(ef_ctx *ctx, ef_events *ev, const ef_space *space, size_t n,
                    ef_event_kind kind, unsigned what) {
  memset(ev, 0, sizeof *ev);
  ev->n = n;
  ev->kind = kind;
  ev->space = *space;
  ev->beam_energy = NAN;
  size_t m = n ? n : 1, D = (size_t)space->dim, K = (size_t)space->n_cat;
  ev->topology = malloc(m * sizeof *ev->topology);
  ev->reco = malloc(D * m * sizeof *ev->reco);
  if (what & EF_EVENTS_VERTEX) ev->vertex = malloc(D * m * sizeof *ev->vertex);
  if (what & EF_EVENTS_PROB) ev->prob = malloc(K * m * sizeof *ev->prob);
  if (what & EF_EVENTS_WEIGHT) ev->weight = malloc(m * sizeof *ev->weight);
  if (!ev->topology || !ev->reco || ((what & EF_EVENTS_VERTEX) && !ev->vertex) ||
      ((what & EF_EVENTS_PROB) && !ev->prob) || ((what & EF_EVENTS_WEIGHT) && !ev->weight)) {
    ef_events_free(ev);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for %zu events", n);
  }
  return EF_OK;
}

void ef_events_free(ef_events *ev) {
  if (!ev) return;
  free(ev->topology);
  free(ev->reco);
  free(ev->vertex);
  free(ev->prob);
  free(ev->weight);
  memset(ev, 0, sizeof *ev);
}

/* ---- validation ------------------------------------------------------- */

/* The first value of x (D) that axis rules refuse, or -1. */
static int bad_value(const ef_space *sp, const double *x) {
  for (int d = 0; d < sp->dim; d++)
    if (!ef_axis_value_ok(&sp->axis[d], x[d])) return d;
  return -1;
}

/* "(v0, v1, ...)" of x (D) for messages. */
static void fmt_row(const double *x, int D, char *buf, size_t len) {
  size_t used = (size_t)snprintf(buf, len, "(");
  for (int d = 0; d < D && used + 32 < len; d++)
    used += (size_t)snprintf(buf + used, len - used, "%s%g", d ? ", " : "", x[d]);
  snprintf(buf + used, len - used, ")");
}

/* "T1, T2, T3": the names of the blind (blind 1) or seen categories. */
static const char *cat_list(const ef_space *sp, int blind, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (int k = 0; k < sp->n_cat && used < len; k++)
    if (sp->cat[k].blind == blind)
      used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", sp->cat[k].name);
  return buf;
}

/* Rules on the whole sample, after the row rules: a sample whose weights
 * sum to 0 or overflow, or with nothing measured, passes every row rule yet
 * makes every unfolding of it fail. */
static int check_unfoldable(ef_ctx *ctx, const ef_events *ev, const char *name) {
  char names[EF_SPACE_MAX_CAT * (EF_SPACE_NAME_LEN + 2)];
  double sum = 0.0, measured = 0.0, wmax = 0.0;
  size_t n_meas = 0;
  for (size_t i = 0; i < ev->n; i++) {
    double w = ev->weight ? ev->weight[i] : 1.0;
    sum += w;
    if (w > wmax) wmax = w;
    if (!ev->space.cat[ev->topology[i]].blind) {
      measured += w;
      n_meas++;
    }
  }
  if (ev->weight && !(sum > 0.0))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: /events/weight: every one of the %zu weights is 0, so the sample "
                        "is empty (allowed: weights summing to a finite value > 0)", name, ev->n);
  if (!isfinite(sum))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: /events/weight: the weights sum to %g, not a finite number in "
                        "float64 (largest weight %g); rescale them (allowed: weights summing to "
                        "a finite value > 0)", name, sum, wmax);
  if (!(measured > 0.0))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: /events/topology: nothing measured: %s (%s), so there is nothing "
                        "to unfold (need at least one event in a seen category%s)", name,
                        n_meas == 0 ? "every event is in a blind category"
                                    : "every event of a seen category has weight 0",
                        cat_list(&ev->space, n_meas == 0, names, sizeof names),
                        ev->weight ? " with weight > 0" : "");
  return EF_OK;
}

/* Row i's category and reconstructed observables. */
static int check_reco(ef_ctx *ctx, const ef_events *ev, size_t i, const char *name) {
  const ef_space *sp = &ev->space;
  int t = ev->topology[i], D = sp->dim;
  if (t < 0 || t >= sp->n_cat)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: /events/topology row %zu: %d is not a category (allowed 0..%d)",
                        name, i, t, sp->n_cat - 1);
  const double *x = ev->reco + (size_t)D * i;
  char row[512], allowed[96];
  if (sp->cat[t].blind) {
    for (int d = 0; d < D; d++)
      if (!isnan(x[d])) {
        fmt_row(x, D, row, sizeof row);
        return ef_error_set(ctx, EF_ERR_INPUT,
                            "%s: /events/reco row %zu: a %s event (a blind category) must "
                            "have NaN in every observable, got %s", name, i, sp->cat[t].name,
                            row);
      }
    return EF_OK;
  }
  int d = bad_value(sp, x);
  if (d < 0) return EF_OK;
  fmt_row(x, D, row, sizeof row);
  ef_axis_describe(&sp->axis[d], allowed, sizeof allowed);
  return ef_error_set(ctx, EF_ERR_INPUT, "%s: /events/reco row %zu: %s for category %s; "
                      "allowed %s", name, i, row, sp->cat[t].name, allowed);
}

/* Row i's MC truth: vertex and probability vector. */
static int check_truth(ef_ctx *ctx, const ef_events *ev, size_t i, const char *name) {
  const ef_space *sp = &ev->space;
  int D = sp->dim, K = sp->n_cat, t = ev->topology[i];
  int d = ev->vertex ? bad_value(sp, ev->vertex + (size_t)D * i) : -1;
  if (d >= 0) {
    char row[512], allowed[96];
    fmt_row(ev->vertex + (size_t)D * i, D, row, sizeof row);
    ef_axis_describe(&sp->axis[d], allowed, sizeof allowed);
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: /events/vertex row %zu: %s; allowed %s", name,
                        i, row, allowed);
  }
  if (!ev->prob) return EF_OK;
  const float *p = ev->prob + (size_t)K * i;
  double sum = 0.0;
  for (int k = 0; k < K; k++) {
    if (!(p[k] >= 0.0f && p[k] <= 1.0f))
      return ef_error_set(ctx, EF_ERR_INPUT, "%s: /events/prob row %zu: P(%s) = %g is not a "
                          "probability", name, i, sp->cat[k].name, (double)p[k]);
    sum += p[k];
  }
  if (fabs(sum - 1.0) > 1e-4)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: /events/prob row %zu: probabilities sum to %.7g, not 1", name, i,
                        sum);
  if (p[t] <= 0.0f)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: /events/prob row %zu: the event is %s but "
                        "P(%s) = 0", name, i, sp->cat[t].name, sp->cat[t].name);
  return EF_OK;
}

int ef_events_validate(ef_ctx *ctx, const ef_events *ev, const char *name) {
  if (ev->n == 0) return ef_error_set(ctx, EF_ERR_INPUT, "%s: no events", name);
  if (ev->kind == EF_KIND_MC && (!ev->vertex || !ev->prob))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: an MC file needs datasets /events/vertex and /events/prob",
                        name);
  for (size_t i = 0; i < ev->n; i++) {
    EF_CHECK(check_reco(ctx, ev, i, name));
    EF_CHECK(check_truth(ctx, ev, i, name));
    if (ev->weight && !(isfinite(ev->weight[i]) && ev->weight[i] >= 0.0))
      return ef_error_set(ctx, EF_ERR_INPUT,
                          "%s: /events/weight row %zu: %g (allowed: finite, >= 0)", name, i,
                          ev->weight[i]);
  }
  return check_unfoldable(ctx, ev, name);
}

/* ---- writing ---------------------------------------------------------- */

static int write_dataset(ef_ctx *ctx, hid_t grp, const char *name, hid_t file_type,
                         hid_t mem_type, int rank, hsize_t n, hsize_t cols,
                         const void *data) {
  hsize_t dims[2] = {n, cols};
  int rc = EF_OK;
  hid_t space = -1, dset = -1;
  EF_GOTO_H5(ctx, rc, space = H5Screate_simple(rank, dims, NULL), done);
  EF_GOTO_H5(ctx, rc,
             dset = H5Dcreate2(grp, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT,
                               H5P_DEFAULT),
             done);
  EF_GOTO_H5(ctx, rc, H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), done);
done:
  if (dset >= 0 && H5Dclose(dset) < 0 && rc == EF_OK)
    rc = ef_error_hdf5(ctx, "H5Dclose", __FILE__, __LINE__);
  if (space >= 0) H5Sclose(space);
  if (rc != EF_OK) ef_error_wrap(ctx, "writing /events/%s: ", name);
  return rc;
}

static int write_attr(ef_ctx *ctx, hid_t obj, const char *name, hid_t type,
                      const void *value) {
  int rc = EF_OK;
  hid_t space = -1, attr = -1;
  EF_GOTO_H5(ctx, rc, space = H5Screate(H5S_SCALAR), done);
  EF_GOTO_H5(ctx, rc, attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT),
             done);
  EF_GOTO_H5(ctx, rc, H5Awrite(attr, type, value), done);
done:
  if (attr >= 0) H5Aclose(attr);
  if (space >= 0) H5Sclose(space);
  return rc;
}

/* Variable-length UTF-8 string attribute (h5py reads it as str). */
static int write_str_attr(ef_ctx *ctx, hid_t obj, const char *name, const char *value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  if (type < 0) return ef_error_hdf5(ctx, "H5Tcopy", __FILE__, __LINE__);
  int rc = EF_OK;
  EF_GOTO_H5(ctx, rc, H5Tset_size(type, H5T_VARIABLE), done);
  EF_GOTO_H5(ctx, rc, H5Tset_cset(type, H5T_CSET_UTF8), done);
  rc = write_attr(ctx, obj, name, type, &value);
done:
  H5Tclose(type);
  return rc;
}

int ef_events_write(ef_ctx *ctx, const ef_events *ev, const char *path) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 64);
  if (!tmp) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  snprintf(tmp, plen + 64, "%s.tmp.%ld", path, (long)getpid());
  int rc = EF_OK;
  hid_t file = -1, grp = -1;
  errno = 0;
  file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) {
    int err = errno;
    H5Eclear2(H5E_DEFAULT);
    free(tmp);
    return ef_error_set(ctx, EF_ERR_IO, "%s: cannot create the output file: %s", path,
                        err ? strerror(err) : "HDF5 refused to create it");
  }
  EF_GOTO_H5(ctx, rc, grp = H5Gcreate2(file, "events", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             done);
  hsize_t n = ev->n;
  EF_GOTO(rc, write_dataset(ctx, grp, "topology", H5T_STD_I8LE, H5T_NATIVE_INT8, 1, n, 1,
                            ev->topology), done);
  hsize_t D = (hsize_t)ev->space.dim, K = (hsize_t)ev->space.n_cat;
  EF_GOTO(rc, write_dataset(ctx, grp, "reco", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, n, D,
                            ev->reco), done);
  if (ev->vertex)
    EF_GOTO(rc, write_dataset(ctx, grp, "vertex", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, n, D,
                              ev->vertex), done);
  if (ev->prob)
    EF_GOTO(rc, write_dataset(ctx, grp, "prob", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, n, K,
                              ev->prob), done);
  if (ev->weight)
    EF_GOTO(rc, write_dataset(ctx, grp, "weight", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, n, 1,
                              ev->weight), done);
  EF_GOTO(rc, write_str_attr(ctx, grp, "kind", ef_event_kind_name(ev->kind)), done);
  EF_GOTO(rc, write_str_attr(ctx, grp, "model", ev->model), done);
  EF_GOTO(rc, write_str_attr(ctx, grp, "ensfold_version", EF_VERSION), done);
  EF_GOTO(rc, write_attr(ctx, grp, "beam_energy", H5T_NATIVE_DOUBLE, &ev->beam_energy), done);
  if (ev->has_seed)
    EF_GOTO(rc, write_attr(ctx, grp, "seed", H5T_NATIVE_UINT64, &ev->seed), done);
  EF_GOTO(rc, ef_space_write_h5(ctx, grp, &ev->space), done);
done:
  if (grp >= 0) H5Gclose(grp);
  if (file >= 0 && H5Fclose(file) < 0 && rc == EF_OK)
    rc = ef_error_hdf5(ctx, "H5Fclose", __FILE__, __LINE__);
  if (rc == EF_OK && rename(tmp, path) != 0)
    rc = ef_error_set(ctx, EF_ERR_IO, "%s: cannot move the finished file into place: %s",
                      path, strerror(errno));
  if (rc != EF_OK) {
    unlink(tmp);
    if (ef_error_code(ctx) != EF_ERR_IO) ef_error_wrap(ctx, "%s: ", path);
  }
  free(tmp);
  return rc;
}

/* ---- reading ---------------------------------------------------------- */

/* The datasets of /events, in the order they are opened and reported. */
enum { D_TOPOLOGY, D_RECO, D_VERTEX, D_PROB, D_WEIGHT, N_DSETS };
static const struct {
  const char *name;
  H5T_class_t cls;
  int rank;
  int width;        /* columns: 1, or 'D' observables / 'K' categories */
  size_t elem;      /* bytes per value in ef_events */
} dset_spec[N_DSETS] = {
    {"topology", H5T_INTEGER, 1, 1, sizeof(int8_t)},
    {"reco", H5T_FLOAT, 2, 'D', sizeof(double)},
    {"vertex", H5T_FLOAT, 2, 'D', sizeof(double)},
    {"prob", H5T_FLOAT, 2, 'K', sizeof(float)},
    {"weight", H5T_FLOAT, 1, 1, sizeof(double)},
};

/* An event file while it is read: handles are -1 when closed or absent. */
typedef struct {
  const char *path;
  long long size; /* bytes on disk */
  hid_t file, grp, d[N_DSETS];
  hsize_t n;
  ef_space space; /* what /events declares (version 1: pi0) */
} ev_file;

/* Columns of dataset k in this file's space. */
static hsize_t n_cols(const ev_file *f, int k) {
  int w = dset_spec[k].width;
  return (hsize_t)(w == 'D' ? f->space.dim : w == 'K' ? f->space.n_cat : w);
}

/* Open /events/<name>; *present = 0 if it does not exist. Checks the class
 * and shape (rank, dims[0] == n or sets n if *n == 0, dims[1] == cols). */
static int open_dataset(ef_ctx *ctx, const char *path, hid_t grp, const char *name,
                        H5T_class_t cls, int rank, hsize_t cols, hsize_t *n,
                        hid_t *out, int *present) {
  *out = -1;
  *present = 0;
  htri_t ex = H5Lexists(grp, name, H5P_DEFAULT);
  if (ex < 0) return ef_error_hdf5(ctx, "H5Lexists", __FILE__, __LINE__);
  if (!ex) return EF_OK;
  H5O_info_t info;
  if (H5Oget_info_by_name(grp, name, &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_DATASET)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: /events/%s is not a dataset", path, name);
  hid_t d = H5Dopen2(grp, name, H5P_DEFAULT);
  if (d < 0) return ef_error_set(ctx, EF_ERR_INPUT, "%s: cannot open /events/%s", path, name);
  hid_t type = H5Dget_type(d), space = H5Dget_space(d);
  int rc = EF_OK;
  const char *want = cls == H5T_INTEGER ? "integer" : "floating-point";
  char shape[64];
  if (rank == 1) snprintf(shape, sizeof shape, "(N)");
  else snprintf(shape, sizeof shape, "(N, %llu)", (unsigned long long)cols);
  if (type < 0 || space < 0) {
    rc = ef_error_hdf5(ctx, "H5Dget_type/space", __FILE__, __LINE__);
  } else if (H5Tget_class(type) != cls) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: /events/%s has the wrong type: expected %s %s",
                      path, name, want, shape);
  } else {
    int r = H5Sget_simple_extent_ndims(space);
    hsize_t dims[8] = {0};
    if (r > 0 && r <= 8 && H5Sget_simple_extent_dims(space, dims, NULL) != r) r = -1;
    if (r != rank || (rank == 2 && dims[1] != cols)) {
      char got[96] = "a scalar";
      if (r == 1) snprintf(got, sizeof got, "(%llu)", (unsigned long long)dims[0]);
      else if (r == 2)
        snprintf(got, sizeof got, "(%llu, %llu)", (unsigned long long)dims[0],
                 (unsigned long long)dims[1]);
      else if (r > 2) snprintf(got, sizeof got, "rank %d", r);
      rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: /events/%s has shape %s; expected %s", path,
                        name, got, shape);
    } else if (*n && dims[0] != *n) {
      rc = ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: /events/%s has %llu rows but /events/topology has %llu", path,
                        name, (unsigned long long)dims[0], (unsigned long long)*n);
    } else {
      *n = dims[0];
    }
  }
  if (type >= 0) H5Tclose(type);
  if (space >= 0) H5Sclose(space);
  if (rc != EF_OK) {
    H5Dclose(d);
    return rc;
  }
  *out = d;
  *present = 1;
  return EF_OK;
}

/* Every dataset of /events in spec order; topology and reco are required. */
static int open_datasets(ef_ctx *ctx, ev_file *f) {
  for (int k = 0; k < N_DSETS; k++) {
    int has;
    EF_CHECK(open_dataset(ctx, f->path, f->grp, dset_spec[k].name, dset_spec[k].cls,
                          dset_spec[k].rank, n_cols(f, k), &f->n, &f->d[k], &has));
    if (k == D_TOPOLOGY && !has)
      return ef_error_set(ctx, EF_ERR_INPUT, "%s: missing dataset /events/topology (int8, N)",
                          f->path);
    /* n == 0 would let the next dataset set n (open_dataset) and the empty
     * topology be read into a larger buffer: refuse it here. */
    if (k == D_TOPOLOGY && f->n == 0)
      return ef_error_set(ctx, EF_ERR_INPUT, "%s: /events/topology is empty (no events)",
                          f->path);
    if (k == D_RECO && !has)
      return ef_error_set(ctx, EF_ERR_INPUT, "%s: missing dataset /events/reco (float64, N x %d)",
                          f->path, f->space.dim);
  }
  return EF_OK;
}

/* Well-known dynamically loaded filters (HDF Group's registered filter list). */
static const char *filter_name(H5Z_filter_t id, const char *stored) {
  static const struct { int id; const char *name; } known[] = {
      {307, "bzip2"}, {32000, "LZF"}, {32001, "Blosc"}, {32004, "LZ4"},
      {32008, "bitshuffle"}, {32013, "zfp"}, {32015, "Zstandard"}};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (known[i].id == (int)id) return known[i].name;
  return stored[0] ? stored : "unknown";
}

/* Called when a read failed: a filter this libhdf5 lacks (h5py's LZF,
 * Blosc, ...) fails the read with a message about a chunk; name it, and the
 * way out. Not checked before reading: h5py marks LZF optional, and chunks
 * a writer stored without an optional filter read fine without it. */
static int check_filters(ef_ctx *ctx, const char *path, const char *name, hid_t d) {
  hid_t dcpl = H5Dget_create_plist(d);
  if (dcpl < 0) return ef_error_hdf5(ctx, "H5Dget_create_plist", __FILE__, __LINE__);
  int nf = H5Pget_nfilters(dcpl), rc = EF_OK;
  if (nf < 0) rc = ef_error_hdf5(ctx, "H5Pget_nfilters", __FILE__, __LINE__);
  for (int i = 0; rc == EF_OK && i < nf; i++) {
    unsigned flags = 0, conf = 0, cd[16];
    size_t n_cd = sizeof cd / sizeof cd[0];
    char stored[64] = "";
    H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &n_cd, cd, sizeof stored,
                                     stored, &conf);
    if (id < 0) {
      rc = ef_error_hdf5(ctx, "H5Pget_filter2", __FILE__, __LINE__);
      break;
    }
    htri_t avail = H5Zfilter_avail(id); /* also looks on HDF5_PLUGIN_PATH */
    H5Eclear2(H5E_DEFAULT);
    if (avail > 0) continue;
    rc = ef_error_set(ctx, EF_ERR_INPUT,
                      "%s: /events/%s is compressed with HDF5 filter %d (%s), which this HDF5 "
                      "library does not have: rewrite the file with gzip or no compression "
                      "where the filter is available (h5py: create_dataset(..., "
                      "compression='gzip'); h5repack -f GZIP=4 or -f NONE with the filter's "
                      "plugin on HDF5_PLUGIN_PATH), or install that plugin",
                      path, name, (int)id, filter_name(id, stored));
  }
  H5Pclose(dcpl);
  return rc;
}

/* Chunked: every chunk of the declared extent must be stored (h5py and
 * HDF5 write no chunk that was never written to). */
static int check_chunks(ef_ctx *ctx, const ev_file *f, int k, hid_t dcpl, hsize_t bytes) {
  hid_t d = f->d[k];
  const char *name = dset_spec[k].name;
  hsize_t dims[2] = {f->n, n_cols(f, k)}, chunk[2] = {1, 1}, total = 1, stored = 0;
  int r = H5Pget_chunk(dcpl, 2, chunk);
  if (r != dset_spec[k].rank) return ef_error_hdf5(ctx, "H5Pget_chunk", __FILE__, __LINE__);
  for (int i = 0; i < r; i++)
    total *= chunk[i] ? dims[i] / chunk[i] + (dims[i] % chunk[i] != 0) : 0;
  hid_t space = H5Dget_space(d); /* 1.10 takes no H5S_ALL here */
  herr_t st = space >= 0 ? H5Dget_num_chunks(d, space, &stored) : -1;
  if (space >= 0) H5Sclose(space);
  if (st < 0) return ef_error_hdf5(ctx, "H5Dget_num_chunks", __FILE__, __LINE__);
  if (stored >= total) return EF_OK;
  char held[96];
  if (stored == 0) snprintf(held, sizeof held, "none of its %llu chunks",
                            (unsigned long long)total);
  else snprintf(held, sizeof held, "only %llu of its %llu chunks", (unsigned long long)stored,
                (unsigned long long)total);
  return ef_error_set(ctx, EF_ERR_INPUT,
                      "%s: /events/%s declares %llu rows (%llu bytes) but the file holds %s "
                      "(%llu bytes stored, file size %lld bytes): the rows were never written "
                      "(an unfinished or damaged file)", f->path, name,
                      (unsigned long long)f->n, (unsigned long long)bytes, held,
                      (unsigned long long)H5Dget_storage_size(d), f->size);
}

/* Contiguous: the storage must exist and lie inside the file. */
static int check_contiguous(ef_ctx *ctx, const ev_file *f, int k, hsize_t bytes) {
  hid_t d = f->d[k];
  H5D_space_status_t status;
  if (H5Dget_space_status(d, &status) < 0)
    return ef_error_hdf5(ctx, "H5Dget_space_status", __FILE__, __LINE__);
  haddr_t off = H5Dget_offset(d); /* HADDR_UNDEF when not allocated */
  H5Eclear2(H5E_DEFAULT);
  if (status == H5D_SPACE_STATUS_NOT_ALLOCATED || off == HADDR_UNDEF)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: /events/%s declares %llu rows (%llu bytes) but the file holds none "
                        "of them (its storage was never written; file size %lld bytes)",
                        f->path, dset_spec[k].name, (unsigned long long)f->n,
                        (unsigned long long)bytes, f->size);
  if (off > (haddr_t)f->size || bytes > (hsize_t)f->size - off)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: /events/%s declares %llu rows (%llu bytes from byte %llu) but the "
                        "file is only %lld bytes long", f->path, dset_spec[k].name,
                        (unsigned long long)f->n, (unsigned long long)bytes,
                        (unsigned long long)off, f->size);
  return EF_OK;
}

/* Does the file hold the rows each dataset declares? Checked before any
 * allocation sized from the declaration. Compact data lives in the object
 * header; external and virtual storage is left to the read. */
static int check_holds(ef_ctx *ctx, const ev_file *f) {
  int rc = EF_OK;
  for (int k = 0; rc == EF_OK && k < N_DSETS; k++) {
    if (f->d[k] < 0) continue;
    hid_t type = H5Dget_type(f->d[k]), dcpl = H5Dget_create_plist(f->d[k]);
    H5D_layout_t layout = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
    int n_ext = dcpl >= 0 ? H5Pget_external_count(dcpl) : -1;
    size_t tsize = type >= 0 ? H5Tget_size(type) : 0;
    if (type < 0 || dcpl < 0 || layout < 0 || n_ext < 0 || tsize == 0)
      rc = ef_error_hdf5(ctx, "H5Dget_type/create_plist", __FILE__, __LINE__);
    hsize_t row = n_cols(f, k) * tsize, bytes = f->n > (hsize_t)-1 / row ? (hsize_t)-1
                                                                             : f->n * row;
    if (rc == EF_OK && layout == H5D_CHUNKED) rc = check_chunks(ctx, f, k, dcpl, bytes);
    else if (rc == EF_OK && layout == H5D_CONTIGUOUS && n_ext == 0)
      rc = check_contiguous(ctx, f, k, bytes);
    if (type >= 0) H5Tclose(type);
    if (dcpl >= 0) H5Pclose(dcpl);
  }
  return rc;
}

/* The most bytes one file's events may take once read (docs/formats.md):
 * a quarter of the memory this process may use, the smaller of the
 * physical memory (sysconf) and RLIMIT_AS / RLIMIT_DATA. A quarter, because
 * every rank of a campaign keeps both samples and builds per-event working
 * arrays (response, bins, bootstrap weights) beside them. */
static double memory_limit(const char **what) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  double lim = pages > 0 && page > 0 ? (double)pages * (double)page : 0.0;
  *what = "physical memory";
  const int res[2] = {RLIMIT_AS, RLIMIT_DATA};
  const char *names[2] = {"RLIMIT_AS (ulimit -v)", "RLIMIT_DATA (ulimit -d)"};
  for (int i = 0; i < 2; i++) {
    struct rlimit rl;
    if (getrlimit(res[i], &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (lim <= 0.0 || (double)rl.rlim_cur < lim)) {
      lim = (double)rl.rlim_cur;
      *what = names[i];
    }
  }
  return lim / 4.0;
}

/* Refuse a declared size ensfold cannot hold before allocating for it. */
static int check_limit(ef_ctx *ctx, const ev_file *f) {
  if (f->n > EF_EVENTS_MAX)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: /events/topology declares %llu rows (events); ensfold reads at "
                        "most %llu events per file (events are indexed with int32); the file "
                        "is %lld bytes", f->path, (unsigned long long)f->n,
                        (unsigned long long)EF_EVENTS_MAX, f->size);
  double per_event = sizeof(long long); /* topology is read through int64 */
  for (int k = 0; k < N_DSETS; k++)
    if (f->d[k] >= 0) per_event += (double)(n_cols(f, k) * dset_spec[k].elem);
  const char *what;
  double need = per_event * (double)f->n, lim = memory_limit(&what);
  if (lim > 0.0 && need > lim)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: /events/topology declares %llu rows (events); reading them needs "
                        "%.3g GiB, more than the limit of %.3g GiB (a quarter of the %s, %.3g "
                        "GiB); the file is %lld bytes", f->path, (unsigned long long)f->n,
                        need / 1073741824.0, lim / 1073741824.0, what,
                        4.0 * lim / 1073741824.0, f->size);
  return EF_OK;
}

/* Read dataset k into buf and close it (f->d[k] = -1 afterwards). */
static int read_dataset(ef_ctx *ctx, ev_file *f, int k, hid_t mem_type, void *buf) {
  herr_t st = H5Dread(f->d[k], mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  int rc = EF_OK;
  if (st < 0) {
    /* the HDF5 message first (H5Dclose clears the stack), then copied out:
     * ef_error_set writes into the same buffer */
    char why[512];
    ef_error_hdf5(ctx, "H5Dread", __FILE__, __LINE__);
    snprintf(why, sizeof why, "%s", ef_error_message(ctx));
    rc = check_filters(ctx, f->path, dset_spec[k].name, f->d[k]);
    if (rc != EF_ERR_INPUT)
      rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: cannot read /events/%s (corrupt file?): %s",
                        f->path, dset_spec[k].name, why);
  }
  H5Dclose(f->d[k]);
  f->d[k] = -1;
  return rc;
}

/* topology through int64 so out-of-range values are seen, not clamped */
static int read_topology(ef_ctx *ctx, ev_file *f, ef_events *out) {
  long long *tmp = malloc((size_t)f->n * sizeof *tmp);
  if (!tmp) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory reading %s", f->path);
  int rc = read_dataset(ctx, f, D_TOPOLOGY, H5T_NATIVE_LLONG, tmp);
  for (hsize_t i = 0; rc == EF_OK && i < f->n; i++) {
    if (tmp[i] < 0 || tmp[i] >= f->space.n_cat)
      rc = ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: /events/topology row %llu: %lld is not a category (allowed 0..%d)",
                        f->path, (unsigned long long)i, tmp[i], f->space.n_cat - 1);
    else
      out->topology[i] = (int8_t)tmp[i];
  }
  free(tmp);
  return rc;
}

static int read_arrays(ef_ctx *ctx, ev_file *f, ef_events *out) {
  EF_CHECK(read_topology(ctx, f, out));
  EF_CHECK(read_dataset(ctx, f, D_RECO, H5T_NATIVE_DOUBLE, out->reco));
  if (f->d[D_VERTEX] >= 0)
    EF_CHECK(read_dataset(ctx, f, D_VERTEX, H5T_NATIVE_DOUBLE, out->vertex));
  if (f->d[D_PROB] >= 0) EF_CHECK(read_dataset(ctx, f, D_PROB, H5T_NATIVE_FLOAT, out->prob));
  if (f->d[D_WEIGHT] >= 0)
    EF_CHECK(read_dataset(ctx, f, D_WEIGHT, H5T_NATIVE_DOUBLE, out->weight));
  /* a periodic observable's lo and hi are the same point (-pi and pi are
   * the same azimuth): store hi, as the format says (lo, hi] */
  const ef_space *sp = &out->space;
  for (int d = 0; d < sp->dim; d++) {
    if (sp->axis[d].kind != EF_AXIS_PERIODIC) continue;
    double lo = sp->axis[d].lo, hi = sp->axis[d].hi;
    for (size_t i = 0; i < out->n; i++) {
      double *r = out->reco + (size_t)sp->dim * i + d;
      if (*r == lo) *r = hi;
      if (out->vertex && out->vertex[(size_t)sp->dim * i + d] == lo)
        out->vertex[(size_t)sp->dim * i + d] = hi;
    }
  }
  return EF_OK;
}

/* String attribute, fixed or variable length; *found = 0 if absent. */
static int read_str_attr(ef_ctx *ctx, const char *path, hid_t obj, const char *name,
                         char *out, size_t len, int *found) {
  *found = 0;
  out[0] = '\0';
  htri_t ex = H5Aexists(obj, name);
  if (ex < 0) return ef_error_hdf5(ctx, "H5Aexists", __FILE__, __LINE__);
  if (ex == 0) return EF_OK;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t ft = a >= 0 ? H5Aget_type(a) : -1;
  int rc = EF_OK;
  if (ft < 0) {
    rc = ef_error_hdf5(ctx, a < 0 ? "H5Aopen" : "H5Aget_type", __FILE__, __LINE__);
  } else if (H5Tget_class(ft) != H5T_STRING) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: attribute /events@%s must be a string", path, name);
  } else if (H5Tis_variable_str(ft) > 0) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5T_cset_t cset = H5Tget_cset(ft);
    char *s = NULL;
    if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || cset < 0 || H5Tset_cset(mt, cset) < 0)
      rc = ef_error_hdf5(ctx, "H5Tcopy/H5Tset_size/H5Tset_cset", __FILE__, __LINE__);
    else if (H5Aread(a, mt, &s) < 0) rc = ef_error_hdf5(ctx, "H5Aread", __FILE__, __LINE__);
    else if (s) snprintf(out, len, "%s", s);
    if (s) H5free_memory(s);
    if (mt >= 0) H5Tclose(mt);
  } else {
    size_t sz = H5Tget_size(ft);
    char *buf = calloc(sz + 1, 1);
    hid_t mt = H5Tcopy(ft);
    if (!buf) rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
    else if (sz == 0 || mt < 0)
      rc = ef_error_hdf5(ctx, sz == 0 ? "H5Tget_size" : "H5Tcopy", __FILE__, __LINE__);
    else if (H5Aread(a, mt, buf) < 0) rc = ef_error_hdf5(ctx, "H5Aread", __FILE__, __LINE__);
    else snprintf(out, len, "%s", buf);
    free(buf);
    if (mt >= 0) H5Tclose(mt);
  }
  if (ft >= 0) H5Tclose(ft);
  if (a >= 0) H5Aclose(a);
  *found = rc == EF_OK;
  return rc;
}

static int read_num_attr(hid_t obj, const char *name, hid_t mem_type, void *out) {
  if (H5Aexists(obj, name) <= 0) return 0;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return 0;
  int ok = H5Aread(a, mem_type, out) >= 0;
  H5Aclose(a);
  return ok;
}

/* kind from the attribute, else from the datasets present. */
static int read_kind(ef_ctx *ctx, const ev_file *f, ef_event_kind *k) {
  char kind[32];
  int found;
  EF_CHECK(read_str_attr(ctx, f->path, f->grp, "kind", kind, sizeof kind, &found));
  *k = (f->d[D_VERTEX] >= 0 && f->d[D_PROB] >= 0) ? EF_KIND_MC : EF_KIND_DATA;
  if (!found) return EF_OK;
  if (!strcmp(kind, "mc")) *k = EF_KIND_MC;
  else if (!strcmp(kind, "data")) *k = EF_KIND_DATA;
  else
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: attribute /events@kind is '%s' (allowed: data, mc)",
                        f->path, kind);
  return EF_OK;
}

/* The path is a readable regular file with an HDF5 signature; *size its
 * length in bytes. */
static int check_path(ef_ctx *ctx, const char *path, long long *size) {
  struct stat st;
  if (stat(path, &st) != 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: cannot open event file: %s", path,
                        strerror(errno));
  if (S_ISDIR(st.st_mode))
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: is a directory, not an event file", path);
  if (!S_ISREG(st.st_mode)) /* a FIFO would hang HDF5's open */
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: not a regular file (a FIFO or device?), not an "
                        "event file", path);
  if (access(path, R_OK) != 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: cannot read event file: %s", path,
                        strerror(errno));
  if (H5Fis_hdf5(path) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: not an HDF5 file (or truncated/corrupt)", path);
  }
  *size = (long long)st.st_size;
  return EF_OK;
}

/* H5Ewalk callback: did a frame fail to take the file lock? */
static herr_t lock_cb(unsigned n, const H5E_error2_t *e, void *data) {
  (void)n;
  if (e && e->min_num == H5E_CANTLOCKFILE) *(int *)data = 1;
  return 0;
}

/* H5Fopen, telling a file locked by a writer (HDF5 1.10 file locking:
 * flock(2), EWOULDBLOCK) from a damaged one. */
static int open_file(ef_ctx *ctx, const char *path, hid_t *out) {
  errno = 0;
  *out = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (*out >= 0) return EF_OK;
  int err = errno, locked = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, lock_cb, &locked);
  H5Eclear2(H5E_DEFAULT);
  if (locked && (err == EWOULDBLOCK || err == EAGAIN))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: locked by another program that has it open for writing (HDF5 "
                        "file locking): wait until that program closes the file and run again; "
                        "if you know the file is complete and nobody is changing it, "
                        "HDF5_USE_FILE_LOCKING=FALSE in the environment skips the lock", path);
  if (locked)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: HDF5 cannot lock the file for reading (%s): the file system may "
                        "not support locks; HDF5_USE_FILE_LOCKING=BEST_EFFORT (or FALSE, if "
                        "nobody writes the file) in the environment skips the lock", path,
                        err ? strerror(err) : "no reason given");
  return ef_error_set(ctx, EF_ERR_INPUT, "%s: cannot open as HDF5 (truncated or corrupt?)",
                      path);
}

static void close_file(ev_file *f) {
  for (int k = 0; k < N_DSETS; k++)
    if (f->d[k] >= 0) H5Dclose(f->d[k]);
  if (f->grp >= 0) H5Gclose(f->grp);
  if (f->file >= 0) H5Fclose(f->file);
}

/* Everything after the open: structure, declared sizes, then the data. */
static int read_open_file(ef_ctx *ctx, ev_file *f, ef_events *out) {
  htri_t ex = H5Lexists(f->file, "events", H5P_DEFAULT);
  if (ex <= 0 || (f->grp = H5Gopen2(f->file, "events", H5P_DEFAULT)) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: no group /events (see docs/formats.md)", f->path);
  }
  EF_CHECK(ef_space_read_h5(ctx, f->grp, f->path, &f->space));
  EF_CHECK(open_datasets(ctx, f));
  ef_event_kind k;
  EF_CHECK(read_kind(ctx, f, &k));
  EF_CHECK(check_holds(ctx, f));
  EF_CHECK(check_limit(ctx, f));
  EF_CHECK(ef_events_alloc(ctx, out, &f->space, (size_t)f->n, k,
                           (f->d[D_VERTEX] >= 0 ? EF_EVENTS_VERTEX : 0) |
                               (f->d[D_PROB] >= 0 ? EF_EVENTS_PROB : 0) |
                               (f->d[D_WEIGHT] >= 0 ? EF_EVENTS_WEIGHT : 0)));
  EF_CHECK(read_arrays(ctx, f, out));
  int found;
  EF_CHECK(read_str_attr(ctx, f->path, f->grp, "model", out->model, sizeof out->model, &found));
  out->beam_energy = NAN;
  read_num_attr(f->grp, "beam_energy", H5T_NATIVE_DOUBLE, &out->beam_energy);
  out->has_seed = read_num_attr(f->grp, "seed", H5T_NATIVE_UINT64, &out->seed);
  H5Eclear2(H5E_DEFAULT);
  return ef_events_validate(ctx, out, f->path);
}

int ef_events_read(ef_ctx *ctx, const char *path, ef_events *out) {
  memset(out, 0, sizeof *out);
  ev_file f = {.path = path, .file = -1, .grp = -1, .d = {-1, -1, -1, -1, -1}};
  EF_CHECK(check_path(ctx, path, &f.size));
  EF_CHECK(open_file(ctx, path, &f.file));
  int rc = read_open_file(ctx, &f, out);
  close_file(&f);
  if (rc == EF_ERR_HDF5) {
    /* the library choked on the file's structure: a corrupt input, not an
     * internal error */
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ef_error_message(ctx));
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: corrupt or unreadable HDF5 structure (%s)", path, msg);
  }
  if (rc != EF_OK) ef_events_free(out);
  return rc;
}
