/* `ensfold summary`: the group table of a result file, read back with
 * serial HDF5, and what each figure means. */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ensfold/model.h"
#include "ensfold/output.h"
#include "ensfold/plan.h"

#define EFF_MIN_TOTAL EF_OUTPUT_EFF_MIN_TOTAL
#define EFF_TOLERANCE EF_OUTPUT_EFF_TOLERANCE

static int read_col(ef_ctx *ctx, hid_t file, const char *name, hid_t mtype, void *buf,
                    hsize_t n, const char *path) {
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  if (ds < 0) {
    H5Eclear2(H5E_DEFAULT);
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: no dataset %s (not an ensfold result file?)",
                        path, name);
  }
  hid_t sp = H5Dget_space(ds);
  hsize_t dims[2] = {0, 0};
  int ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
           H5Sget_simple_extent_dims(sp, dims, NULL) == 1 && dims[0] == n;
  if (sp >= 0) H5Sclose(sp);
  if (!ok || H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    H5Dclose(ds);
    H5Eclear2(H5E_DEFAULT);
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: cannot read %s", path, name);
  }
  H5Dclose(ds);
  return EF_OK;
}

/* Length of the 1-D dataset name, or 0 if it is absent or not 1-D. */
static hsize_t col_len(hid_t file, const char *name) {
  hsize_t n = 0;
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return 0;
  }
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
  if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &n, NULL) != 1)
    n = 0;
  if (sp >= 0) H5Sclose(sp);
  if (ds >= 0) H5Dclose(ds);
  H5Eclear2(H5E_DEFAULT);
  return n;
}

/* Mean /units/wall_s of each group's units that ran (status != -1) into
 * wall (n groups, NaN when none ran or the file has no unit table). */
static int group_wall(ef_ctx *ctx, hid_t file, const char *path, hsize_t n, const int32_t *method,
                      const int32_t *fill, double *wall) {
  for (hsize_t i = 0; i < n; i++) wall[i] = NAN;
  hsize_t nu = col_len(file, "units/wall_s");
  if (nu == 0) return EF_OK;
  int32_t *ic = malloc(3 * nu * sizeof *ic);
  double *w = malloc(nu * sizeof *w), *sum = calloc(n + 1, sizeof *sum);
  size_t *cnt = calloc(n + 1, sizeof *cnt);
  int rc = EF_OK;
  if (!ic || !w || !sum || !cnt) rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  if (rc == EF_OK) rc = read_col(ctx, file, "units/wall_s", H5T_NATIVE_DOUBLE, w, nu, path);
  if (rc == EF_OK) rc = read_col(ctx, file, "units/method", H5T_NATIVE_INT32, ic, nu, path);
  if (rc == EF_OK)
    rc = read_col(ctx, file, "units/fill_model", H5T_NATIVE_INT32, ic + nu, nu, path);
  if (rc == EF_OK)
    rc = read_col(ctx, file, "units/status", H5T_NATIVE_INT32, ic + 2 * nu, nu, path);
  for (hsize_t u = 0; rc == EF_OK && u < nu; u++) {
    if (ic[2 * nu + u] == -1 || !isfinite(w[u])) continue;
    for (hsize_t g = 0; g < n; g++)
      if (method[g] == ic[u] && fill[g] == ic[nu + u]) {
        sum[g] += w[u];
        cnt[g]++;
        break;
      }
  }
  for (hsize_t g = 0; rc == EF_OK && g < n; g++)
    if (cnt[g]) wall[g] = sum[g] / (double)cnt[g];
  free(ic);
  free(w);
  free(sum);
  free(cnt);
  return rc;
}

/* Scalar attribute name of loc into value when it is there and readable;
 * value keeps what the caller put there otherwise. */
static void attr_or_default(hid_t loc, const char *name, hid_t mtype, void *value) {
  if (H5Aexists(loc, name) <= 0) return;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return;
  unsigned char tmp[16];
  if (H5Tget_size(mtype) <= sizeof tmp && H5Aread(a, mtype, tmp) >= 0)
    memcpy(value, tmp, H5Tget_size(mtype));
  H5Aclose(a);
}

static void fmt_num(char *buf, size_t len, const char *f, double v) {
  if (isfinite(v)) snprintf(buf, len, f, v);
  else snprintf(buf, len, "-");
}

int ef_output_summary(ef_ctx *ctx, const char *path, FILE *out) {
  if (access(path, R_OK) != 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: cannot read: %s", path, strerror(errno));
  if (H5Fis_hdf5(path) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: not an HDF5 file", path);
  }
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) {
    H5Eclear2(H5E_DEFAULT);
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: cannot open", path);
  }
  int rc = EF_OK;
  hid_t ds = H5Dopen2(file, "summary/method", H5P_DEFAULT);
  hsize_t n = 0;
  if (ds < 0) {
    H5Eclear2(H5E_DEFAULT);
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: no /summary (not an ensfold result file?)", path);
  } else {
    hid_t sp = H5Dget_space(ds);
    H5Sget_simple_extent_dims(sp, &n, NULL);
    H5Sclose(sp);
    H5Dclose(ds);
  }
  /* dc: the 6 closure columns, the 6 efficiency closure columns (older
   * files lack them: NaN), then the mean wall time per unit */
  int32_t *ic = rc == EF_OK ? malloc(3 * n * sizeof *ic + 1) : NULL;
  double *dc = rc == EF_OK ? malloc(13 * n * sizeof *dc + 1) : NULL;
  if (rc == EF_OK && (!ic || !dc)) rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  static const char *icols[3] = {"summary/method", "summary/fill_model", "summary/replicas"};
  static const char *dcols[12] = {"summary/chi2_measured", "summary/ndf_measured",
                                  "summary/chi2_unmeasured", "summary/ndf_unmeasured",
                                  "summary/coverage_measured", "summary/coverage_unmeasured",
                                  "summary/efficiency_max_nominal",
                                  "summary/efficiency_mean_nominal",
                                  "summary/efficiency_above_nominal",
                                  "summary/efficiency_max_replicas",
                                  "summary/efficiency_mean_replicas",
                                  "summary/efficiency_above_replicas"};
  for (int c = 0; rc == EF_OK && c < 3; c++)
    rc = read_col(ctx, file, icols[c], H5T_NATIVE_INT32, ic + c * n, n, path);
  int any_eff = 0;
  for (int c = 0; rc == EF_OK && c < 12; c++) {
    if (c >= 6 && col_len(file, dcols[c]) != n) {
      for (hsize_t i = 0; i < n; i++) dc[c * n + i] = NAN;
      continue;
    }
    rc = read_col(ctx, file, dcols[c], H5T_NATIVE_DOUBLE, dc + c * n, n, path);
    for (hsize_t i = 0; rc == EF_OK && c >= 6 && i < n; i++) any_eff |= isfinite(dc[c * n + i]);
  }
  if (rc == EF_OK) rc = group_wall(ctx, file, path, n, ic, ic + n, dc + 12 * n);
  if (rc == EF_OK) {
    int few = 0;
    fprintf(out, "%-10s %-5s %8s %22s %22s %9s %9s %11s\n", "method", "fill", "replicas",
            "chi2/ndf measured", "chi2/ndf unmeasured", "cov meas", "cov unm", "s/unit");
    for (hsize_t i = 0; i < n; i++) {
      char a[32], b[32], w[32];
      double cm = dc[i], nm = dc[n + i], cu = dc[2 * n + i], nu = dc[3 * n + i];
      if (nm > 0 && isfinite(cm)) snprintf(a, sizeof a, "%.2f (%.0f/%.0f)", cm / nm, cm, nm);
      else snprintf(a, sizeof a, "-");
      if (nu > 0 && isfinite(cu)) snprintf(b, sizeof b, "%.2f (%.0f/%.0f)", cu / nu, cu, nu);
      else snprintf(b, sizeof b, "-");
      char cm_s[16], cu_s[16];
      fmt_num(w, sizeof w, "%.3g", dc[12 * n + i]);
      fmt_num(cm_s, sizeof cm_s, "%.3f", dc[4 * n + i]);
      fmt_num(cu_s, sizeof cu_s, "%.3f", dc[5 * n + i]);
      fprintf(out, "%-10s %-5s %8d %22s %22s %9s %9s %11s\n", ef_method_name(ic[i]),
              ef_model_name((ef_model_id)ic[n + i]), ic[2 * n + i], a, b, cm_s, cu_s, w);
      few += ic[2 * n + i] < 2;
    }
    if (few)
      fprintf(out, "no statistics ('-') for %d group(s) with fewer than 2 usable bootstrap "
              "replicas: a sigma, chi2 or coverage needs at least 2; the nominal unfolding "
              "is /units/hist of replica 0\n", few);
  }
  if (rc == EF_OK && any_eff) {
    double emin = EFF_MIN_TOTAL, etol = EFF_TOLERANCE;
    int32_t cells = -1;
    hid_t s = H5Gopen2(file, "summary", H5P_DEFAULT);
    if (s >= 0) {
      attr_or_default(s, "efficiency_min_total", H5T_NATIVE_DOUBLE, &emin);
      attr_or_default(s, "efficiency_tolerance", H5T_NATIVE_DOUBLE, &etol);
      attr_or_default(s, "efficiency_cells", H5T_NATIVE_INT32, &cells);
      H5Gclose(s);
    }
    H5Eclear2(H5E_DEFAULT);
    fprintf(out, "\nefficiency closure: |P(T0..T3 | bin) of the units - exact| over ");
    if (cells >= 0) fprintf(out, "%d cells", (int)cells);
    else fprintf(out, "the cells");
    fprintf(out, " (topology, bin) with exact efficiency >= %g;\n"
                 "off: cells per unit with |diff| > %g (mean over the units)\n", emin, etol);
    fprintf(out, "%-10s %-5s %27s %27s\n", "method", "fill", "replica 0: max  mean   off",
            "replicas: max  mean   off");
    for (hsize_t i = 0; i < n; i++) {
      char c[6][32];
      for (int k = 0; k < 6; k++)
        fmt_num(c[k], sizeof c[k], k % 3 == 2 ? "%.1f" : "%.4f", dc[(6 + k) * n + i]);
      fprintf(out, "%-10s %-5s %13s %7s %5s %13s %7s %5s\n", ef_method_name(ic[i]),
              ef_model_name((ef_model_id)ic[n + i]), c[0], c[1], c[2], c[3], c[4], c[5]);
    }
  }
  free(ic);
  free(dc);
  H5Fclose(file);
  return rc;
}
