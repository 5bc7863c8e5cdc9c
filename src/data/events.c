/* Event samples and HDF5 event files: alloc, validate, write, read. */
#include "ensfold/events.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ensfold_version.h"

const char *ef_event_kind_name(ef_event_kind kind) {
  return kind == EF_KIND_MC ? "mc" : "data";
}

int ef_events_alloc(ef_ctx *ctx, ef_events *ev, size_t n, ef_event_kind kind,
                    unsigned what) {
  memset(ev, 0, sizeof *ev);
  ev->n = n;
  ev->kind = kind;
  ev->beam_energy = NAN;
  size_t m = n ? n : 1;
  ev->topology = malloc(m * sizeof *ev->topology);
  ev->reco = malloc(2 * m * sizeof *ev->reco);
  if (what & EF_EVENTS_VERTEX) ev->vertex = malloc(2 * m * sizeof *ev->vertex);
  if (what & EF_EVENTS_PROB) ev->prob = malloc(4 * m * sizeof *ev->prob);
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

static int angle_ok(double c, double phi) {
  return isfinite(c) && isfinite(phi) && c >= -1.0 && c <= 1.0 && phi > -M_PI &&
         phi <= M_PI;
}

int ef_events_validate(ef_ctx *ctx, const ef_events *ev, const char *name) {
  if (ev->n == 0) return ef_error_set(ctx, EF_ERR_INPUT, "%s: no events", name);
  if (ev->kind == EF_KIND_MC && (!ev->vertex || !ev->prob))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: an MC file needs datasets /events/vertex and /events/prob",
                        name);
  for (size_t i = 0; i < ev->n; i++) {
    int t = ev->topology[i];
    if (t < 0 || t > 3)
      return ef_error_set(ctx, EF_ERR_INPUT,
                          "%s: /events/topology row %zu: %d is not a topology (allowed 0..3)",
                          name, i, t);
    double c = ev->reco[2 * i], f = ev->reco[2 * i + 1];
    if (t == 0) {
      if (!isnan(c) || !isnan(f))
        return ef_error_set(ctx, EF_ERR_INPUT,
                            "%s: /events/reco row %zu: a T0 event must have NaN angles, got "
                            "(%g, %g)", name, i, c, f);
    } else if (!angle_ok(c, f)) {
      return ef_error_set(ctx, EF_ERR_INPUT,
                          "%s: /events/reco row %zu: (%g, %g) for topology T%d; allowed cos "
                          "theta in [-1, 1] and phi in (-pi, pi] radians", name, i, c, f, t);
    }
    if (ev->vertex && !angle_ok(ev->vertex[2 * i], ev->vertex[2 * i + 1]))
      return ef_error_set(ctx, EF_ERR_INPUT,
                          "%s: /events/vertex row %zu: (%g, %g); allowed cos theta in "
                          "[-1, 1] and phi in (-pi, pi] radians", name, i,
                          ev->vertex[2 * i], ev->vertex[2 * i + 1]);
    if (ev->prob) {
      const float *p = ev->prob + 4 * i;
      double sum = 0.0;
      for (int k = 0; k < 4; k++) {
        if (!(p[k] >= 0.0f && p[k] <= 1.0f))
          return ef_error_set(ctx, EF_ERR_INPUT,
                              "%s: /events/prob row %zu: P(T%d) = %g is not a probability",
                              name, i, k, (double)p[k]);
        sum += p[k];
      }
      if (fabs(sum - 1.0) > 1e-4)
        return ef_error_set(ctx, EF_ERR_INPUT,
                            "%s: /events/prob row %zu: probabilities sum to %.7g, not 1",
                            name, i, sum);
      if (p[t] <= 0.0f)
        return ef_error_set(ctx, EF_ERR_INPUT,
                            "%s: /events/prob row %zu: the event is T%d but P(T%d) = 0",
                            name, i, t, t);
    }
    if (ev->weight && !(isfinite(ev->weight[i]) && ev->weight[i] >= 0.0))
      return ef_error_set(ctx, EF_ERR_INPUT,
                          "%s: /events/weight row %zu: %g (allowed: finite, >= 0)", name, i,
                          ev->weight[i]);
  }
  return EF_OK;
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
  EF_GOTO(rc, write_dataset(ctx, grp, "reco", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, n, 2,
                            ev->reco), done);
  if (ev->vertex)
    EF_GOTO(rc, write_dataset(ctx, grp, "vertex", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, n, 2,
                              ev->vertex), done);
  if (ev->prob)
    EF_GOTO(rc, write_dataset(ctx, grp, "prob", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, n, 4,
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
    if (r > 0 && r <= 8) H5Sget_simple_extent_dims(space, dims, NULL);
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

static int read_dataset(ef_ctx *ctx, const char *path, const char *name, hid_t d,
                        hid_t mem_type, void *buf) {
  herr_t st = H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  H5Dclose(d);
  if (st < 0) {
    /* copy the HDF5 message out first: ef_error_set writes into the same buffer */
    char why[512];
    ef_error_hdf5(ctx, "H5Dread", __FILE__, __LINE__);
    snprintf(why, sizeof why, "%s", ef_error_message(ctx));
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: cannot read /events/%s (corrupt file?): %s",
                        path, name, why);
  }
  return EF_OK;
}

/* String attribute, fixed or variable length; *found = 0 if absent. */
static int read_str_attr(ef_ctx *ctx, const char *path, hid_t obj, const char *name,
                         char *out, size_t len, int *found) {
  *found = 0;
  out[0] = '\0';
  htri_t ex = H5Aexists(obj, name);
  if (ex <= 0) return EF_OK;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t ft = a >= 0 ? H5Aget_type(a) : -1;
  int rc = EF_OK;
  if (ft < 0 || H5Tget_class(ft) != H5T_STRING) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: attribute /events@%s must be a string", path, name);
  } else if (H5Tis_variable_str(ft) > 0) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ft));
    char *s = NULL;
    if (H5Aread(a, mt, &s) < 0) rc = ef_error_hdf5(ctx, "H5Aread", __FILE__, __LINE__);
    else if (s) snprintf(out, len, "%s", s);
    if (s) H5free_memory(s);
    H5Tclose(mt);
  } else {
    size_t sz = H5Tget_size(ft);
    char *buf = calloc(sz + 1, 1);
    hid_t mt = H5Tcopy(ft);
    if (!buf) rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
    else if (H5Aread(a, mt, buf) < 0) rc = ef_error_hdf5(ctx, "H5Aread", __FILE__, __LINE__);
    else snprintf(out, len, "%s", buf);
    free(buf);
    H5Tclose(mt);
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

int ef_events_read(ef_ctx *ctx, const char *path, ef_events *out) {
  memset(out, 0, sizeof *out);
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
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) {
    H5Eclear2(H5E_DEFAULT);
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: cannot open as HDF5 (truncated or corrupt?)",
                        path);
  }
  int rc = EF_OK;
  hid_t grp = -1, dt = -1, dr = -1, dv = -1, dp = -1, dw = -1;
  int has_t, has_r, has_v, has_p, has_w;
  hsize_t n = 0;
  htri_t ex = H5Lexists(file, "events", H5P_DEFAULT);
  if (ex <= 0 || (grp = H5Gopen2(file, "events", H5P_DEFAULT)) < 0) {
    H5Eclear2(H5E_DEFAULT);
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: no group /events (see docs/formats.md)", path);
    goto done;
  }
  EF_GOTO(rc, open_dataset(ctx, path, grp, "topology", H5T_INTEGER, 1, 1, &n, &dt, &has_t), done);
  if (!has_t) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: missing dataset /events/topology (int8, N)", path);
    goto done;
  }
  /* n == 0 would let the next dataset set n (open_dataset) and the empty
   * topology be read into a larger buffer: refuse it here. */
  if (n == 0) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: /events/topology is empty (no events)", path);
    goto done;
  }
  EF_GOTO(rc, open_dataset(ctx, path, grp, "reco", H5T_FLOAT, 2, 2, &n, &dr, &has_r), done);
  if (!has_r) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: missing dataset /events/reco (float64, N x 2)",
                      path);
    goto done;
  }
  EF_GOTO(rc, open_dataset(ctx, path, grp, "vertex", H5T_FLOAT, 2, 2, &n, &dv, &has_v), done);
  EF_GOTO(rc, open_dataset(ctx, path, grp, "prob", H5T_FLOAT, 2, 4, &n, &dp, &has_p), done);
  EF_GOTO(rc, open_dataset(ctx, path, grp, "weight", H5T_FLOAT, 1, 1, &n, &dw, &has_w), done);
  char kind[32];
  int found;
  EF_GOTO(rc, read_str_attr(ctx, path, grp, "kind", kind, sizeof kind, &found), done);
  ef_event_kind k = (has_v && has_p) ? EF_KIND_MC : EF_KIND_DATA;
  if (found) {
    if (!strcmp(kind, "mc")) k = EF_KIND_MC;
    else if (!strcmp(kind, "data")) k = EF_KIND_DATA;
    else {
      rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: attribute /events@kind is '%s' (allowed: data, mc)",
                        path, kind);
      goto done;
    }
  }
  if (n == 0) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: /events/topology is empty (no events)", path);
    goto done;
  }
  if (n > ((hsize_t)1 << 40)) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: %llu events is more than ensfold can hold", path,
                      (unsigned long long)n);
    goto done;
  }
  EF_GOTO(rc, ef_events_alloc(ctx, out, (size_t)n, k,
                              (has_v ? EF_EVENTS_VERTEX : 0) | (has_p ? EF_EVENTS_PROB : 0) |
                                  (has_w ? EF_EVENTS_WEIGHT : 0)), done);
  {
    /* topology through int64 so out-of-range values are seen, not clamped */
    long long *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) {
      rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory reading %s", path);
      goto done;
    }
    rc = read_dataset(ctx, path, "topology", dt, H5T_NATIVE_LLONG, tmp);
    dt = -1;
    for (hsize_t i = 0; rc == EF_OK && i < n; i++) {
      if (tmp[i] < 0 || tmp[i] > 3)
        rc = ef_error_set(ctx, EF_ERR_INPUT,
                          "%s: /events/topology row %llu: %lld is not a topology (allowed 0..3)",
                          path, (unsigned long long)i, tmp[i]);
      else
        out->topology[i] = (int8_t)tmp[i];
    }
    free(tmp);
    if (rc != EF_OK) goto done;
  }
  rc = read_dataset(ctx, path, "reco", dr, H5T_NATIVE_DOUBLE, out->reco);
  dr = -1;
  if (rc == EF_OK && has_v) rc = read_dataset(ctx, path, "vertex", dv, H5T_NATIVE_DOUBLE, out->vertex);
  dv = -1;
  if (rc == EF_OK && has_p) rc = read_dataset(ctx, path, "prob", dp, H5T_NATIVE_FLOAT, out->prob);
  dp = -1;
  if (rc == EF_OK && has_w) rc = read_dataset(ctx, path, "weight", dw, H5T_NATIVE_DOUBLE, out->weight);
  dw = -1;
  if (rc != EF_OK) goto done;
  EF_GOTO(rc, read_str_attr(ctx, path, grp, "model", out->model, sizeof out->model, &found), done);
  out->beam_energy = NAN;
  read_num_attr(grp, "beam_energy", H5T_NATIVE_DOUBLE, &out->beam_energy);
  out->has_seed = read_num_attr(grp, "seed", H5T_NATIVE_UINT64, &out->seed);
  H5Eclear2(H5E_DEFAULT);
  /* -pi and pi are the same azimuth: store pi, as the format says (-pi, pi]. */
  for (size_t i = 0; i < out->n; i++) {
    if (out->reco[2 * i + 1] == -M_PI) out->reco[2 * i + 1] = M_PI;
    if (out->vertex && out->vertex[2 * i + 1] == -M_PI) out->vertex[2 * i + 1] = M_PI;
  }
  rc = ef_events_validate(ctx, out, path);
done:
  if (dt >= 0) H5Dclose(dt);
  if (dr >= 0) H5Dclose(dr);
  if (dv >= 0) H5Dclose(dv);
  if (dp >= 0) H5Dclose(dp);
  if (dw >= 0) H5Dclose(dw);
  if (grp >= 0) H5Gclose(grp);
  H5Fclose(file);
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
