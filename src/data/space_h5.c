/* The event space as /events attributes (src/data/space_h5.h). */
#include "space_h5.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/error.h"

/* ---- writing ------------------------------------------------------------ */

/* A 1-D (or (n, 2) when two) numeric attribute. */
static int put_num(ef_ctx *ctx, hid_t obj, const char *name, hid_t type, hsize_t n, int two,
                   const void *v) {
  hsize_t dims[2] = {n, 2};
  int rc = EF_OK;
  hid_t sp = -1, a = -1;
  EF_GOTO_H5(ctx, rc, sp = H5Screate_simple(two ? 2 : 1, dims, NULL), done);
  EF_GOTO_H5(ctx, rc, a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT), done);
  EF_GOTO_H5(ctx, rc, H5Awrite(a, type, v), done);
done:
  if (a >= 0) H5Aclose(a);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

/* An array of n variable-length UTF-8 strings (h5py reads a list of str). */
static int put_strs(ef_ctx *ctx, hid_t obj, const char *name, const char **v, hsize_t n) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return ef_error_hdf5(ctx, "H5Tcopy", __FILE__, __LINE__);
  int rc = EF_OK;
  hid_t sp = -1, a = -1;
  EF_GOTO_H5(ctx, rc, H5Tset_size(t, H5T_VARIABLE), done);
  EF_GOTO_H5(ctx, rc, H5Tset_cset(t, H5T_CSET_UTF8), done);
  EF_GOTO_H5(ctx, rc, sp = H5Screate_simple(1, &n, NULL), done);
  EF_GOTO_H5(ctx, rc, a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT), done);
  EF_GOTO_H5(ctx, rc, H5Awrite(a, t, v), done);
done:
  if (a >= 0) H5Aclose(a);
  if (sp >= 0) H5Sclose(sp);
  H5Tclose(t);
  return rc;
}

int ef_space_write_h5(ef_ctx *ctx, hid_t grp, const ef_space *s) {
  const char *names[EF_SPACE_MAX_DIM], *kinds[EF_SPACE_MAX_DIM], *cats[EF_SPACE_MAX_CAT];
  double range[2 * EF_SPACE_MAX_DIM];
  int8_t blind[EF_SPACE_MAX_CAT];
  int32_t version = EF_EVENTS_FORMAT_VERSION;
  for (int d = 0; d < s->dim; d++) {
    names[d] = s->axis[d].name;
    kinds[d] = ef_axis_kind_name(s->axis[d].kind);
    range[2 * d] = s->axis[d].lo;
    range[2 * d + 1] = s->axis[d].hi;
  }
  for (int k = 0; k < s->n_cat; k++) {
    cats[k] = s->cat[k].name;
    blind[k] = (int8_t)s->cat[k].blind;
  }
  hsize_t D = (hsize_t)s->dim, K = (hsize_t)s->n_cat;
  EF_CHECK(put_num(ctx, grp, "format_version", H5T_NATIVE_INT32, 1, 0, &version));
  EF_CHECK(put_strs(ctx, grp, "observables", names, D));
  EF_CHECK(put_strs(ctx, grp, "observable_kinds", kinds, D));
  EF_CHECK(put_num(ctx, grp, "observable_range", H5T_NATIVE_DOUBLE, D, 1, range));
  EF_CHECK(put_strs(ctx, grp, "categories", cats, K));
  return put_num(ctx, grp, "blind", H5T_NATIVE_INT8, K, 0, blind);
}

/* ---- reading ------------------------------------------------------------ */

static const char *class_name(H5T_class_t c) {
  return c == H5T_INTEGER ? "integer" : c == H5T_FLOAT ? "float" : c == H5T_STRING ? "string"
                                                                                  : "other";
}

/* Open attribute name of grp with `want` elements of class cls (want 0:
 * any count, returned in *n); a message names what is wrong. */
static int open_attr(ef_ctx *ctx, hid_t grp, const char *path, const char *name,
                     H5T_class_t cls, hsize_t per, hsize_t *n, hid_t *out) {
  *out = -1;
  htri_t ex = H5Aexists(grp, name);
  if (ex < 0) return ef_error_hdf5(ctx, "H5Aexists", __FILE__, __LINE__);
  if (!ex)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: format version 2 needs the attribute /events@%s "
                        "(docs/formats.md)", path, name);
  hid_t a = H5Aopen(grp, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1;
  hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
  hssize_t cnt = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  int rc = EF_OK;
  if (t < 0 || cnt < 0) rc = ef_error_hdf5(ctx, "H5Aopen/H5Aget_type", __FILE__, __LINE__);
  else if (H5Tget_class(t) != cls || cnt % (hssize_t)per != 0 || cnt == 0)
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: attribute /events@%s must be %s%s (it holds %lld "
                      "%s value(s))", path, name,
                      cls == H5T_STRING ? "an array of strings"
                                        : cls == H5T_INTEGER ? "an array of integers"
                                                             : "an array of numbers",
                      per == 2 ? " of shape (D, 2)" : "", (long long)cnt, class_name(H5Tget_class(t)));
  else if (*n && (hsize_t)cnt != *n * per)
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: attribute /events@%s has %lld values; expected %llu",
                      path, name, (long long)cnt, (unsigned long long)(*n * per));
  else *n = (hsize_t)cnt / per;
  if (t >= 0) H5Tclose(t);
  if (sp >= 0) H5Sclose(sp);
  if (rc != EF_OK) {
    if (a >= 0) H5Aclose(a);
    return rc;
  }
  *out = a;
  return EF_OK;
}

/* Up to max strings into out (each EF_SPACE_NAME_LEN); *n the count. */
static int get_strs(ef_ctx *ctx, hid_t grp, const char *path, const char *name, int max,
                    char (*out)[EF_SPACE_NAME_LEN], hsize_t *n) {
  hid_t a;
  EF_CHECK(open_attr(ctx, grp, path, name, H5T_STRING, 1, n, &a));
  if (*n > (hsize_t)max) {
    H5Aclose(a);
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: attribute /events@%s has %llu entries (at most "
                        "%d)", path, name, (unsigned long long)*n, max);
  }
  char *v[EF_SPACE_MAX_DIM > EF_SPACE_MAX_CAT ? EF_SPACE_MAX_DIM : EF_SPACE_MAX_CAT] = {NULL};
  hid_t mt = H5Tcopy(H5T_C_S1);
  int rc = EF_OK;
  if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5T_CSET_UTF8) < 0)
    rc = ef_error_hdf5(ctx, "H5Tcopy/H5Tset_size", __FILE__, __LINE__);
  else if (H5Aread(a, mt, v) < 0)
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: attribute /events@%s: cannot read it as "
                      "variable-length strings (write it with h5py from a list of str)", path,
                      name);
  for (hsize_t i = 0; i < *n; i++) {
    if (rc == EF_OK && (!v[i] || strlen(v[i]) >= EF_SPACE_NAME_LEN))
      rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: attribute /events@%s entry %llu is %s (allowed: "
                        "1-%d characters)", path, name, (unsigned long long)i,
                        v[i] ? "too long" : "missing", EF_SPACE_NAME_LEN - 1);
    if (rc == EF_OK) snprintf(out[i], EF_SPACE_NAME_LEN, "%s", v[i]);
  }
  hid_t sp = H5Aget_space(a);
  if (sp >= 0 && mt >= 0) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v); /* the NULLs of a failed read too */
  if (sp >= 0) H5Sclose(sp);
  if (mt >= 0) H5Tclose(mt);
  H5Aclose(a);
  H5Eclear2(H5E_DEFAULT);
  return rc;
}

static int get_num(ef_ctx *ctx, hid_t grp, const char *path, const char *name, H5T_class_t cls,
                   hsize_t per, hsize_t n, hid_t mem, void *out) {
  hid_t a;
  EF_CHECK(open_attr(ctx, grp, path, name, cls, per, &n, &a));
  int rc = H5Aread(a, mem, out) < 0 ? ef_error_hdf5(ctx, "H5Aread", __FILE__, __LINE__) : EF_OK;
  H5Aclose(a);
  return rc;
}

/* format_version: 1 when absent; otherwise 1 or 2. */
static int get_version(ef_ctx *ctx, hid_t grp, const char *path, int *version) {
  *version = 1;
  htri_t ex = H5Aexists(grp, "format_version");
  if (ex < 0) return ef_error_hdf5(ctx, "H5Aexists", __FILE__, __LINE__);
  if (!ex) return EF_OK;
  long long v = 0;
  hsize_t one = 1;
  EF_CHECK(get_num(ctx, grp, path, "format_version", H5T_INTEGER, 1, one, H5T_NATIVE_LLONG, &v));
  if (v != 1 && v != 2)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: /events@format_version is %lld (this ensfold "
                        "reads versions 1 and 2)", path, v);
  *version = (int)v;
  return EF_OK;
}

static int get_axes(ef_ctx *ctx, hid_t grp, const char *path, ef_space *s) {
  char names[EF_SPACE_MAX_DIM][EF_SPACE_NAME_LEN], kinds[EF_SPACE_MAX_DIM][EF_SPACE_NAME_LEN];
  double range[2 * EF_SPACE_MAX_DIM];
  hsize_t D = 0;
  EF_CHECK(get_strs(ctx, grp, path, "observables", EF_SPACE_MAX_DIM, names, &D));
  EF_CHECK(get_strs(ctx, grp, path, "observable_kinds", EF_SPACE_MAX_DIM, kinds, &D));
  EF_CHECK(get_num(ctx, grp, path, "observable_range", H5T_FLOAT, 2, D, H5T_NATIVE_DOUBLE,
                   range));
  s->dim = (int)D;
  for (int d = 0; d < s->dim; d++) {
    ef_axis *x = &s->axis[d];
    memcpy(x->name, names[d], sizeof x->name); /* both EF_SPACE_NAME_LEN, NUL-terminated */
    if (ef_axis_kind_parse(kinds[d], &x->kind) != 0)
      return ef_error_set(ctx, EF_ERR_INPUT, "%s: /events@observable_kinds entry %d is '%s' "
                          "(allowed: bounded, periodic, unbounded)", path, d, kinds[d]);
    x->lo = range[2 * d];
    x->hi = range[2 * d + 1];
  }
  return EF_OK;
}

static int get_categories(ef_ctx *ctx, hid_t grp, const char *path, ef_space *s) {
  char names[EF_SPACE_MAX_CAT][EF_SPACE_NAME_LEN];
  long long blind[EF_SPACE_MAX_CAT];
  hsize_t K = 0;
  EF_CHECK(get_strs(ctx, grp, path, "categories", EF_SPACE_MAX_CAT, names, &K));
  EF_CHECK(get_num(ctx, grp, path, "blind", H5T_INTEGER, 1, K, H5T_NATIVE_LLONG, blind));
  s->n_cat = (int)K;
  for (int k = 0; k < s->n_cat; k++) {
    memcpy(s->cat[k].name, names[k], sizeof s->cat[k].name);
    if (blind[k] != 0 && blind[k] != 1)
      return ef_error_set(ctx, EF_ERR_INPUT, "%s: /events@blind entry %d is %lld (allowed: 0 "
                          "seen, 1 blind)", path, k, blind[k]);
    s->cat[k].blind = (int)blind[k];
  }
  return EF_OK;
}

int ef_space_read_h5(ef_ctx *ctx, hid_t grp, const char *path, ef_space *s) {
  int version;
  ef_space_pi0(s);
  EF_CHECK(get_version(ctx, grp, path, &version));
  if (version == 1) return EF_OK;
  memset(s, 0, sizeof *s);
  EF_CHECK(get_axes(ctx, grp, path, s));
  EF_CHECK(get_categories(ctx, grp, path, s));
  char where[1100];
  snprintf(where, sizeof where, "%s: /events (format version 2)", path);
  return ef_space_check(ctx, s, where);
}
