/* Weight files: one HDF5 group per network (layout in nn_io.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/nn_io.h"

#define FORMAT_TAG "ensfold-mlp-1"
#define ACTS_MAX 4096 /* "a;b;c" list of the activations */
#define MAX_LAYERS 256

static int write_attr(ef_ctx *ctx, hid_t obj, const char *name, hid_t type,
                      int rank, hsize_t len, const void *buf) {
  int rc = EF_OK;
  hid_t sp = -1, at = -1;
  EF_GOTO_H5(ctx, rc, sp = rank ? H5Screate_simple(1, &len, NULL) : H5Screate(H5S_SCALAR), done);
  EF_GOTO_H5(ctx, rc, at = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT), done);
  EF_GOTO_H5(ctx, rc, H5Awrite(at, type, buf), done);
done:
  if (at >= 0) H5Aclose(at);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

static int write_str_attr(ef_ctx *ctx, hid_t obj, const char *name, const char *s) {
  int rc = EF_OK;
  hid_t ty = -1;
  EF_GOTO_H5(ctx, rc, ty = H5Tcopy(H5T_C_S1), done);
  EF_GOTO_H5(ctx, rc, H5Tset_size(ty, strlen(s) + 1), done);
  rc = write_attr(ctx, obj, name, ty, 0, 0, s);
done:
  if (ty >= 0) H5Tclose(ty);
  return rc;
}

/* Read a fixed-length string attribute into buf (cap bytes). */
static int read_str_attr(ef_ctx *ctx, hid_t obj, const char *name, char *buf, size_t cap) {
  int rc = EF_OK;
  hid_t at = -1, ft = -1, mt = -1;
  EF_GOTO_H5(ctx, rc, at = H5Aopen(obj, name, H5P_DEFAULT), done);
  EF_GOTO_H5(ctx, rc, ft = H5Aget_type(at), done);
  if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) != 0 ||
      H5Tget_size(ft) >= cap) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "attribute '%s' is not a short fixed-length string", name);
    goto done;
  }
  EF_GOTO_H5(ctx, rc, mt = H5Tcopy(H5T_C_S1), done);
  EF_GOTO_H5(ctx, rc, H5Tset_size(mt, cap), done);
  memset(buf, 0, cap);
  EF_GOTO_H5(ctx, rc, H5Aread(at, mt, buf), done);
  buf[cap - 1] = '\0';
done:
  if (mt >= 0) H5Tclose(mt);
  if (ft >= 0) H5Tclose(ft);
  if (at >= 0) H5Aclose(at);
  return rc;
}

/* Read an int array attribute of exactly n elements (n = 1: a scalar). */
static int read_int_attr(ef_ctx *ctx, hid_t obj, const char *name, int *v, int n) {
  int rc = EF_OK;
  hid_t at = -1, sp = -1;
  EF_GOTO_H5(ctx, rc, at = H5Aopen(obj, name, H5P_DEFAULT), done);
  EF_GOTO_H5(ctx, rc, sp = H5Aget_space(at), done);
  hssize_t np;
  EF_GOTO_H5(ctx, rc, np = H5Sget_simple_extent_npoints(sp), done);
  if (np != n) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "attribute '%s' has %lld values, expected %d", name,
                      (long long)np, n);
    goto done;
  }
  EF_GOTO_H5(ctx, rc, H5Aread(at, H5T_NATIVE_INT, v), done);
done:
  if (sp >= 0) H5Sclose(sp);
  if (at >= 0) H5Aclose(at);
  return rc;
}

static int write_dataset(ef_ctx *ctx, hid_t loc, const char *name, int rank,
                         const hsize_t *dims, const float *data, const char *act) {
  int rc = EF_OK;
  hid_t sp = -1, ds = -1;
  EF_GOTO_H5(ctx, rc, sp = H5Screate_simple(rank, dims, NULL), done);
  /* stored as little-endian IEEE float32: the bits of the float in memory */
  EF_GOTO_H5(ctx, rc, ds = H5Dcreate2(loc, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT,
                                       H5P_DEFAULT, H5P_DEFAULT), done);
  EF_GOTO_H5(ctx, rc, H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), done);
  if (act) EF_GOTO(rc, write_str_attr(ctx, ds, "act", act), done);
done:
  /* the close of a dataset just written can still fail to write it */
  if (ds >= 0 && H5Dclose(ds) < 0 && rc == EF_OK)
    rc = ef_error_hdf5(ctx, "H5Dclose", __FILE__, __LINE__);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

static int acts_string(const ef_mlp *m, char *buf, size_t cap) {
  buf[0] = '\0';
  size_t len = 0;
  for (int l = 0; l < ef_mlp_n_layers(m); l++) {
    int w = snprintf(buf + len, cap - len, "%s%s", l ? ";" : "", ef_nn_act_name(ef_mlp_act(m, l)));
    if (w < 0 || (size_t)w >= cap - len) return -1;
    len += (size_t)w;
  }
  return 0;
}

int ef_mlp_save(ef_ctx *ctx, const ef_mlp *m, hid_t loc, const char *name) {
  int rc = EF_OK, n = ef_mlp_n_layers(m);
  hid_t grp = -1, lg = -1;
  int widths[MAX_LAYERS + 1];
  char acts[ACTS_MAX];
  if (n > MAX_LAYERS)
    return ef_error_set(ctx, EF_ERR_INPUT, "save %s: %d layers, at most %d", name, n, MAX_LAYERS);
  const float *params = ef_mlp_params((ef_mlp *)m);
  for (int l = 0; l <= n; l++) widths[l] = ef_mlp_width(m, l);
  if (acts_string(m, acts, sizeof acts))
    return ef_error_set(ctx, EF_ERR_INPUT, "save %s: too many layers to list", name);
  EF_GOTO_H5(ctx, rc, grp = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), done);
  EF_GOTO(rc, write_str_attr(ctx, grp, "format", FORMAT_TAG), done);
  EF_GOTO(rc, write_attr(ctx, grp, "n_layers", H5T_NATIVE_INT, 0, 0, &n), done);
  EF_GOTO(rc, write_attr(ctx, grp, "widths", H5T_NATIVE_INT, 1, (hsize_t)n + 1, widths), done);
  EF_GOTO(rc, write_str_attr(ctx, grp, "activations", acts), done);
  float slope = ef_mlp_leaky_slope(m);
  EF_GOTO(rc, write_attr(ctx, grp, "leaky_slope", H5T_NATIVE_FLOAT, 0, 0, &slope), done);
  for (int l = 0; l < n; l++) {
    char lname[32];
    snprintf(lname, sizeof lname, "layer_%d", l);
    EF_GOTO_H5(ctx, rc, lg = H5Gcreate2(grp, lname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), done);
    hsize_t wd[2] = {(hsize_t)widths[l + 1], (hsize_t)widths[l]}, bd[1] = {(hsize_t)widths[l + 1]};
    EF_GOTO(rc, write_dataset(ctx, lg, "W", 2, wd, params + ef_mlp_weight_offset(m, l),
                              ef_nn_act_name(ef_mlp_act(m, l))), done);
    EF_GOTO(rc, write_dataset(ctx, lg, "b", 1, bd, params + ef_mlp_bias_offset(m, l), NULL), done);
    EF_GOTO_H5(ctx, rc, H5Gclose(lg), done);
    lg = -1;
  }
done:
  if (lg >= 0) H5Gclose(lg);
  if (grp >= 0) H5Gclose(grp);
  if (rc != EF_OK) ef_error_wrap(ctx, "saving network '%s': ", name);
  return rc;
}

/* Read the group's shape attributes: n_layers, widths (cap entries),
 * activations and slope. */
static int read_header(ef_ctx *ctx, hid_t grp, int *n, int *widths, int cap,
                       ef_nn_act *acts, float *slope) {
  char fmt[64], list[ACTS_MAX];
  EF_CHECK(read_str_attr(ctx, grp, "format", fmt, sizeof fmt));
  if (strcmp(fmt, FORMAT_TAG))
    return ef_error_set(ctx, EF_ERR_INPUT, "format '%s', expected '%s'", fmt, FORMAT_TAG);
  EF_CHECK(read_int_attr(ctx, grp, "n_layers", n, 1));
  if (*n < 1 || *n + 1 > cap)
    return ef_error_set(ctx, EF_ERR_INPUT, "n_layers %d outside [1, %d]", *n, cap - 1);
  EF_CHECK(read_int_attr(ctx, grp, "widths", widths, *n + 1));
  EF_CHECK(read_str_attr(ctx, grp, "activations", list, sizeof list));
  char *save = NULL, *tok = strtok_r(list, ";", &save);
  for (int l = 0; l < *n; l++, tok = strtok_r(NULL, ";", &save))
    if (!tok || ef_nn_act_parse(tok, &acts[l]))
      return ef_error_set(ctx, EF_ERR_INPUT, "activation %d: '%s' is not known", l,
                          tok ? tok : "(missing)");
  if (tok) return ef_error_set(ctx, EF_ERR_INPUT, "more activations than layers");
  hid_t at = -1;
  EF_CHECK_H5(ctx, at = H5Aopen(grp, "leaky_slope", H5P_DEFAULT));
  int rc = EF_OK;
  /* the message first: the H5Aclose would clear HDF5's error stack */
  if (H5Aread(at, H5T_NATIVE_FLOAT, slope) < 0)
    rc = ef_error_hdf5(ctx, "H5Aread(leaky_slope)", __FILE__, __LINE__);
  H5Aclose(at);
  return rc;
}

static int read_dataset(ef_ctx *ctx, hid_t loc, const char *name, int rank,
                        const hsize_t *dims, float *data) {
  int rc = EF_OK;
  hid_t ds = -1, sp = -1;
  hsize_t got[2] = {0, 0};
  EF_GOTO_H5(ctx, rc, ds = H5Dopen2(loc, name, H5P_DEFAULT), done);
  EF_GOTO_H5(ctx, rc, sp = H5Dget_space(ds), done);
  int r;
  EF_GOTO_H5(ctx, rc, r = H5Sget_simple_extent_ndims(sp), done);
  if (r != rank) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "dataset %s has rank %d, expected %d", name, r, rank);
    goto done;
  }
  EF_GOTO_H5(ctx, rc, H5Sget_simple_extent_dims(sp, got, NULL), done);
  for (int i = 0; i < rank; i++)
    if (got[i] != dims[i]) {
      rc = ef_error_set(ctx, EF_ERR_INPUT, "dataset %s: dimension %d is %llu, expected %llu",
                        name, i, (unsigned long long)got[i], (unsigned long long)dims[i]);
      goto done;
    }
  EF_GOTO_H5(ctx, rc, H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), done);
done:
  if (sp >= 0) H5Sclose(sp);
  if (ds >= 0) H5Dclose(ds);
  return rc;
}

int ef_mlp_load(ef_ctx *ctx, ef_mlp *m, hid_t loc, const char *name) {
  int rc = EF_OK, n = 0, widths[MAX_LAYERS + 1];
  ef_nn_act acts[MAX_LAYERS];
  float slope = 0.0f;
  hid_t grp = -1, lg = -1;
  EF_GOTO_H5(ctx, rc, grp = H5Gopen2(loc, name, H5P_DEFAULT), done);
  EF_GOTO(rc, read_header(ctx, grp, &n, widths, MAX_LAYERS + 1, acts, &slope), done);
  if (n != ef_mlp_n_layers(m)) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "file has %d layers, the network %d", n,
                      ef_mlp_n_layers(m));
    goto done;
  }
  for (int l = 0; l <= n; l++)
    if (widths[l] != ef_mlp_width(m, l)) {
      rc = ef_error_set(ctx, EF_ERR_INPUT, "width %d is %d in the file, %d in the network", l,
                        widths[l], ef_mlp_width(m, l));
      goto done;
    }
  for (int l = 0; l < n; l++)
    if (acts[l] != ef_mlp_act(m, l)) {
      rc = ef_error_set(ctx, EF_ERR_INPUT, "layer %d activation is %s in the file, %s in the network",
                        l, ef_nn_act_name(acts[l]), ef_nn_act_name(ef_mlp_act(m, l)));
      goto done;
    }
  if (slope != ef_mlp_leaky_slope(m)) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "leaky_slope is %g in the file, %g in the network",
                      (double)slope, (double)ef_mlp_leaky_slope(m));
    goto done;
  }
  float *params = ef_mlp_params(m);
  for (int l = 0; l < n; l++) {
    char lname[32];
    snprintf(lname, sizeof lname, "layer_%d", l);
    EF_GOTO_H5(ctx, rc, lg = H5Gopen2(grp, lname, H5P_DEFAULT), done);
    hsize_t wd[2] = {(hsize_t)widths[l + 1], (hsize_t)widths[l]}, bd[1] = {(hsize_t)widths[l + 1]};
    EF_GOTO(rc, read_dataset(ctx, lg, "W", 2, wd, params + ef_mlp_weight_offset(m, l)), done);
    EF_GOTO(rc, read_dataset(ctx, lg, "b", 1, bd, params + ef_mlp_bias_offset(m, l)), done);
    EF_GOTO_H5(ctx, rc, H5Gclose(lg), done);
    lg = -1;
  }
done:
  if (lg >= 0) H5Gclose(lg);
  if (grp >= 0) H5Gclose(grp);
  if (rc != EF_OK) ef_error_wrap(ctx, "loading network '%s': ", name);
  return rc;
}

int ef_mlp_create_from_h5(ef_ctx *ctx, ef_mlp **out, hid_t loc, const char *name,
                          int max_batch) {
  *out = NULL;
  int rc = EF_OK, n = 0, widths[MAX_LAYERS + 1];
  ef_nn_act acts[MAX_LAYERS];
  float slope = 0.0f;
  hid_t grp = -1;
  ef_mlp *m = NULL;
  EF_GOTO_H5(ctx, rc, grp = H5Gopen2(loc, name, H5P_DEFAULT), done);
  EF_GOTO(rc, read_header(ctx, grp, &n, widths, MAX_LAYERS + 1, acts, &slope), done);
  H5Gclose(grp);
  grp = -1;
  ef_mlp_spec spec = {.n_layers = n, .widths = widths, .acts = acts, .leaky_slope = slope,
                      .max_batch = max_batch};
  EF_GOTO(rc, ef_mlp_create(ctx, &m, &spec), done);
  EF_GOTO(rc, ef_mlp_load(ctx, m, loc, name), cleanup);
  *out = m;
  return EF_OK;
done:
  if (grp >= 0) H5Gclose(grp);
  if (rc != EF_OK) ef_error_wrap(ctx, "loading network '%s': ", name);
cleanup:
  ef_mlp_destroy(m);
  return rc;
}
