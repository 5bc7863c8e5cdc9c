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
#include "marginals.h"
#include "ensfold/plan.h"
#include "ensfold/unit.h"

#define EFF_MIN_TOTAL EF_OUTPUT_EFF_MIN_TOTAL
#define EFF_TOLERANCE EF_OUTPUT_EFF_TOLERANCE
#define N_PARTS_COLS 11 /* /summary/training_fraction_* (3), then the parts (2 x 4) */

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

/* A chi2 figure: 2 decimals, or 3 significant digits from 10^5 on (a fill's
 * bins with next to no spread give chi2 of 10^15: the columns stay aligned). */
static void fmt_chi2(char *buf, size_t len, double v) {
  snprintf(buf, len, fabs(v) < 1e5 ? "%.2f" : "%.3g", v);
}

/* The /summary table of a result file, one entry per group. */
typedef struct {
  hsize_t n;
  int32_t *ic;  /* (8, n): method, fill model, replicas used, full covariance (measured),
                 * bins with sigma 0 and of them infinite pulls, measured and unmeasured
                 * (-1 / 0 where an older file lacks the column) */
  double *dc;   /* (13, n): the 6 closure columns, the 6 efficiency closure columns
                 * (NaN in older files), the mean wall time per unit (s) */
  double *parts; /* (11, n): training fraction measured, holes, open; median relative
                  * stat, training, central, model sigma in measured, then unmeasured
                  * bins (NaN in older files) */
  int32_t *members; /* (n) ensemble members per replica (0 in older files) */
  double *cls;      /* (16, n): the unmeasured classes' columns (ef_output_class_cols; NaN in older
                     * files) */
  double *refold;   /* (2, n): refold chi2 and its bins (NaN in older files) */
  int any_eff;  /* some efficiency closure figure is there */
  int truth;    /* the file has /truth/hist (pseudo-data) */
  double emin, etol;
  int32_t cells;
  char models[8][64]; /* the fill models' names by slot (the file's model_names; pi0's) */
  int fw;             /* the fill column's width: 5, or the longest name */
  int pi0;            /* the pi0 process (the root attribute process; files before it) */
} table;

static const char *model_name(const table *t, int32_t slot) {
  return slot >= 0 && slot < 8 && t->models[slot][0] ? t->models[slot] : "?";
}

/* The process (the root attribute process; pi0 for files before it) and
 * /summary's attribute model_names ("0=M1 1=PS 2=M2"; pi0's where absent). */
static void read_model_names(hid_t file, table *t) {
  char v[640];
  ef_summary_attr_text(file, ".", "process", v, sizeof v);
  t->pi0 = !v[0] || strcmp(v, "pi0") == 0;
  ef_summary_attr_text(file, "summary", "model_names", v, sizeof v);
  if (!v[0]) snprintf(v, sizeof v, "0=M1 1=PS 2=M2");
  memset(t->models, 0, sizeof t->models);
  for (char *tok = strtok(v, " "); tok; tok = strtok(NULL, " ")) {
    int m = atoi(tok);
    const char *eq = strchr(tok, '=');
    if (eq && m >= 0 && m < 8) snprintf(t->models[m], sizeof t->models[m], "%s", eq + 1);
  }
  t->fw = 5;
  for (int m = 0; m < 8; m++)
    if ((int)strlen(t->models[m]) > t->fw) t->fw = (int)strlen(t->models[m]);
}

/* The uncertainty parts' columns, NaN / 0 where an older file lacks them. */
/* Double columns /summary/<names[c]> into out (k, n), NaN where a file
 * (an older one) lacks a column. */
static int read_optional(ef_ctx *ctx, hid_t file, const char *path, const char *const *names,
                         int k, hsize_t n, double *out) {
  for (int c = 0; c < k; c++) {
    char name[96];
    snprintf(name, sizeof name, "summary/%s", names[c]);
    if (col_len(file, name) != n) {
      for (hsize_t i = 0; i < n; i++) out[c * n + i] = NAN;
      continue;
    }
    EF_CHECK(read_col(ctx, file, name, H5T_NATIVE_DOUBLE, out + c * n, n, path));
  }
  return EF_OK;
}

static int load_parts(ef_ctx *ctx, hid_t file, const char *path, table *t) {
  static const char *const cols[N_PARTS_COLS] = {
      "training_fraction_measured", "training_fraction_hole", "training_fraction_open",
      "stat_rel_measured",
      "training_rel_measured", "central_rel_measured", "model_rel_measured",
      "stat_rel_unmeasured", "training_rel_unmeasured", "central_rel_unmeasured",
      "model_rel_unmeasured"};
  hsize_t n = t->n;
  t->parts = malloc(N_PARTS_COLS * n * sizeof *t->parts);
  t->members = calloc(n, sizeof *t->members);
  t->cls = malloc(EF_OUTPUT_N_CLASS_COLS * n * sizeof *t->cls);
  if (!t->parts || !t->members || !t->cls) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  EF_CHECK(read_optional(ctx, file, path, cols, N_PARTS_COLS, n, t->parts));
  EF_CHECK(read_optional(ctx, file, path, ef_output_class_cols, EF_OUTPUT_N_CLASS_COLS, n, t->cls));
  static const char *const rcols[2] = {"refold_chi2", "refold_ndf"};
  t->refold = malloc(2 * n * sizeof *t->refold);
  if (!t->refold) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  EF_CHECK(read_optional(ctx, file, path, rcols, 2, n, t->refold));
  if (col_len(file, "summary/members") == n)
    EF_CHECK(read_col(ctx, file, "summary/members", H5T_NATIVE_INT32, t->members, n, path));
  return EF_OK;
}

static int load_table(ef_ctx *ctx, hid_t file, const char *path, table *t) {
  static const char *icols[8] = {"summary/method", "summary/fill_model", "summary/replicas",
                                 "summary/full_cov_measured", "summary/zero_sigma_measured",
                                 "summary/infinite_pulls_measured",
                                 "summary/zero_sigma_unmeasured",
                                 "summary/infinite_pulls_unmeasured"};
  static const char *dcols[12] = {"summary/chi2_measured", "summary/ndf_measured",
                                  "summary/chi2_unmeasured", "summary/ndf_unmeasured",
                                  "summary/coverage_measured", "summary/coverage_unmeasured",
                                  "summary/efficiency_max_nominal",
                                  "summary/efficiency_mean_nominal",
                                  "summary/efficiency_above_nominal",
                                  "summary/efficiency_max_replicas",
                                  "summary/efficiency_mean_replicas",
                                  "summary/efficiency_above_replicas"};
  hsize_t n = t->n = col_len(file, "summary/method");
  if (n == 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: no /summary (not an ensfold result file?)", path);
  t->ic = malloc(8 * n * sizeof *t->ic);
  t->dc = malloc(13 * n * sizeof *t->dc);
  if (!t->ic || !t->dc) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  for (int c = 0; c < 8; c++) {
    if (c >= 3 && col_len(file, icols[c]) != n) {
      for (hsize_t i = 0; i < n; i++) t->ic[c * n + i] = c == 3 ? -1 : 0;
      continue;
    }
    EF_CHECK(read_col(ctx, file, icols[c], H5T_NATIVE_INT32, t->ic + c * n, n, path));
  }
  for (int c = 0; c < 12; c++) {
    if (c >= 6 && col_len(file, dcols[c]) != n) {
      for (hsize_t i = 0; i < n; i++) t->dc[c * n + i] = NAN;
      continue;
    }
    EF_CHECK(read_col(ctx, file, dcols[c], H5T_NATIVE_DOUBLE, t->dc + c * n, n, path));
    for (hsize_t i = 0; c >= 6 && i < n; i++) t->any_eff |= isfinite(t->dc[c * n + i]);
  }
  EF_CHECK(load_parts(ctx, file, path, t));
  t->truth = H5Lexists(file, "truth", H5P_DEFAULT) > 0 &&
             H5Lexists(file, "truth/hist", H5P_DEFAULT) > 0;
  t->emin = EFF_MIN_TOTAL, t->etol = EFF_TOLERANCE, t->cells = -1;
  hid_t s = H5Gopen2(file, "summary", H5P_DEFAULT);
  if (s >= 0) {
    attr_or_default(s, "efficiency_min_total", H5T_NATIVE_DOUBLE, &t->emin);
    attr_or_default(s, "efficiency_tolerance", H5T_NATIVE_DOUBLE, &t->etol);
    attr_or_default(s, "efficiency_cells", H5T_NATIVE_INT32, &t->cells);
    H5Gclose(s);
  }
  H5Eclear2(H5E_DEFAULT);
  return group_wall(ctx, file, path, n, t->ic, t->ic + n, t->dc + 12 * n);
}

static const char *group_name(const table *t, hsize_t i, char *buf, size_t len) {
  snprintf(buf, len, "%s %s", ef_method_name(t->ic[i]), model_name(t, t->ic[t->n + i]));
  return buf;
}

/* "chi2/ndf (chi2/ndf)", "chi2/ndf (ndf N)" from chi2 10^7 on, "inf (K sigma 0)"
 * for infinite pulls, or "-". */
static void chi2_cell(char *buf, size_t len, double chi2, double ndf, int infinite) {
  if (ndf > 0 && isinf(chi2) && infinite > 0) snprintf(buf, len, "inf (%d sigma 0)", infinite);
  else if (ndf > 0 && isfinite(chi2) && chi2 < 1e7)
    snprintf(buf, len, "%.2f (%.0f/%.0f)", chi2 / ndf, chi2, ndf);
  else if (ndf > 0 && isfinite(chi2)) { /* too wide for the sum: chi2/ndf and ndf */
    char r[16];
    fmt_chi2(r, sizeof r, chi2 / ndf);
    snprintf(buf, len, "%s (ndf %.0f)", r, ndf);
  } else snprintf(buf, len, "-");
}

static void print_table(const table *t, FILE *out) {
  hsize_t n = t->n;
  const double *dc = t->dc;
  int few = 0;
  fprintf(out, "%-10s %-*s %8s %22s %22s %9s %9s %11s\n", "method", t->fw, "fill", "replicas",
          "chi2/ndf measured", "chi2/ndf unmeasured", "cov meas", "cov unm", "s/unit");
  for (hsize_t i = 0; i < n; i++) {
    char a[32], b[32], w[32], cm_s[16], cu_s[16];
    double cm = dc[i], nm = dc[n + i], cu = dc[2 * n + i], nu = dc[3 * n + i];
    chi2_cell(a, sizeof a, cm, nm, t->ic[5 * n + i]);
    chi2_cell(b, sizeof b, cu, nu, t->ic[7 * n + i]);
    fmt_num(w, sizeof w, "%.3g", dc[12 * n + i]);
    fmt_num(cm_s, sizeof cm_s, "%.3f", dc[4 * n + i]);
    fmt_num(cu_s, sizeof cu_s, "%.3f", dc[5 * n + i]);
    fprintf(out, "%-10s %-*s %8d %22s %22s %9s %9s %11s\n", ef_method_name(t->ic[i]),
            t->fw, model_name(t, t->ic[n + i]), t->ic[2 * n + i], a, b, cm_s, cu_s, w);
    few += t->ic[2 * n + i] < 2;
  }
  if (few)
    fprintf(out, "no statistics ('-') for %d group(s) with fewer than 2 usable bootstrap "
            "replicas: a sigma, chi2 or coverage needs at least 2; the nominal unfolding "
            "is /units/hist of replica 0\n", few);
}

/* P(|t| <= a) for Student's t with k degrees of freedom (Simpson). */
static double t_within(int k, double a) {
  const int m = 200;
  double c = exp(lgamma((k + 1) / 2.0) - lgamma(k / 2.0)) / sqrt(k * M_PI), sum = 0.0;
  for (int j = 0; j <= m; j++) {
    double x = a * j / m, f = c * pow(1.0 + x * x / k, -(k + 1) / 2.0);
    sum += f * (j == 0 || j == m ? 1 : j % 2 ? 4 : 2);
  }
  return 2.0 * a * sum / (3.0 * m);
}

/* What chi2/ndf and coverage should be, for independent bins, when the
 * result is unbiased: the group mean (of R replicas, each spread by sigma
 * around the data's own estimate, which is off the truth by sigma) is off
 * by sigma sqrt(f), f = 1 + 1/R, and sigma is estimated with k = R - 1
 * degrees of freedom. Diagonal chi2: each term f z^2 k / chi2_k has mean
 * f k/(k-2) and variance f^2 (3k^2/((k-2)(k-4)) - (k/(k-2))^2); full
 * covariance (Hotelling): mean f k/(k-p-1) for p bins. Coverage:
 * P(|t_k| <= 1/sqrt(f)). Returns expected values and 3-sigma half-widths. */
static void expectation(int R, double ndf, int full, double phi, double *chi_mu, double *chi_w,
                        double *cov_mu, double *cov_w) {
  /* with a training share phi of the replica variance s2 separated, sigma^2
   * is (1 - phi + phi/R) s2 and the mean is off by (1 - phi + 1/R) s2 */
  double k = R - 1, f = 1.0 + 1.0 / R;
  if (phi > 0.0 && phi < 1.0) f = (1.0 - phi + 1.0 / R) / (1.0 - phi + phi / R);
  *chi_mu = *chi_w = *cov_mu = *cov_w = NAN;
  if (k > 4 && ndf > 0) {
    if (full == 1 && k > ndf + 1) {
      *chi_mu = f * k / (k - ndf - 1);
      *chi_w = 3.0 * *chi_mu * sqrt(2.0 / ndf);
    } else {
      double mu = k / (k - 2), var = 3 * k * k / ((k - 2) * (k - 4)) - mu * mu;
      *chi_mu = f * mu;
      *chi_w = 3.0 * f * sqrt(var / ndf);
    }
  }
  if (k >= 1 && ndf > 0) {
    *cov_mu = t_within((int)k, 1.0 / sqrt(f));
    *cov_w = 3.0 * sqrt(*cov_mu * (1 - *cov_mu) / ndf);
  }
}

/* The verdicts on the measured bins, two lines per group. */
static void print_verdicts(const table *t, FILE *out) {
  hsize_t n = t->n;
  for (hsize_t i = 0; i < n; i++) {
    char name[48];
    double ndf = t->dc[n + i], x = t->dc[i] / ndf, c = t->dc[4 * n + i];
    double cm, cw, vm, vw;
    expectation(t->ic[2 * n + i], ndf, t->ic[3 * n + i], t->parts[i], &cm, &cw, &vm, &vw);
    group_name(t, i, name, sizeof name);
    if (!ef_method_deterministic(t->ic[i]) && t->members[i] == 1 && isnan(t->parts[i])) {
      fprintf(out, "    %-14s chi2/ndf %.2f, coverage %.3f: sigma is the replica spread, "
              "statistics and one training's noise\n%19s together (campaign.ensemble 1); "
              "chi2/ndf below 1 and coverage above 0.68 are expected:\n%19s set "
              "campaign.ensemble >= 2 to separate them\n", name, x, c, "", "");
      continue;
    }
    if (t->ic[4 * n + i] > 0)
      fprintf(out, "    %-14s %d bin(s) with sigma 0, %d of them off the truth (infinite pulls: "
              "a value every replica repeats%s)\n", name, t->ic[4 * n + i], t->ic[5 * n + i],
              t->ic[5 * n + i] ? "; chi2 is inf: OUTSIDE" : ", equal to the truth: no pull");
    if (ndf > 0 && isfinite(x) && isfinite(cm))
      fprintf(out, "    %-14s chi2/ndf %.2f (expected %.2f +- %.2f): %s\n", name, x, cm, cw,
              fabs(x - cm) <= cw ? "inside"
              : x > cm ? "OUTSIDE, too large: a bias, or a sigma too small"
                       : "OUTSIDE, too small: a sigma too large");
    if (isfinite(c) && isfinite(vm))
      fprintf(out, "    %-14s coverage %.3f (expected %.3f +- %.3f): %s\n", "", c, vm, vw,
              fabs(c - vm) <= vw ? "inside"
              : c < vm ? "OUTSIDE, too low: a bias, or a sigma too small"
                       : "OUTSIDE, too high: a sigma too large");
  }
}

/* What the closure figures mean and whether each is where it should be. */
static void print_meaning(const table *t, FILE *out) {
  hsize_t n = t->n;
  if (!t->truth) {
    fprintf(out, "\nchi2 and coverage compare with the true distribution: this file has none "
                 "(your own data), so they are '-'.\n");
    return;
  }
  int diag = 0, R = 0;
  double ndf = 0, ndfu = 0;
  for (hsize_t i = 0; i < n; i++) {
    diag |= t->ic[3 * n + i] == 0;
    if (t->ic[2 * n + i] > R) R = t->ic[2 * n + i];
    if (t->dc[n + i] > ndf) ndf = t->dc[n + i];
    if (t->dc[3 * n + i] > ndfu) ndfu = t->dc[3 * n + i];
  }
  fprintf(out, "\nWhat the figures mean (pseudo-data: /truth holds the distribution the data "
               "were drawn from):\n"
               "  measured bins (%.0f): the bins the detector sees. If the result is unbiased "
               "and sigma is the\n"
               "    statistics of the mean, chi2/ndf is about 1 and +-1 sigma covers the truth "
               "in about 68%% of the bins\n"
               "    (exactly: a sigma estimated from R replicas, a mean of R replicas; bands "
               "of 3 sigma for independent\n"
               "    bins, which correlated bins widen; docs/methods.md):\n", ndf);
  print_verdicts(t, out);
  if (diag)
    fprintf(out, "  note: chi2 uses each bin's sigma only (the diagonal): %d replicas give a "
                 "covariance of rank %d,\n"
                 "    fewer than the %.0f bins, which cannot be inverted (user guide section 7: "
                 "R - 1 > bins for the full one).\n", R, R > 0 ? R - 1 : 0, ndf);
  if (ndfu > 0)
    fprintf(out, "  unmeasured bins (%.0f): the detector does not see them; they are filled from "
                 "the fill model, not\n"
                 "    measured. Against the truth a large chi2/ndf and a low coverage are "
                 "expected there: they show how\n"
                 "    far the fill model is from the truth (model dependence), not a failure.\n",
            ndfu);
}

/* "m|h|o": the training share phi of group i per bin class, '-' for a
 * class without bins (NaN from a class that has bins shows as nan). */
static void phi_cell(const table *t, hsize_t i, char *buf, size_t len) {
  char a[3][12];
  for (int c = 0; c < 3; c++) fmt_num(a[c], sizeof a[c], "%.2f", t->parts[c * t->n + i]);
  snprintf(buf, len, "%s|%s|%s", a[0], a[1], a[2]);
}

/* The three parts of each group's uncertainty, medians over bin classes. */
static void print_parts(const table *t, FILE *out) {
  hsize_t n = t->n;
  int any = 0, clamped = 0;
  for (hsize_t i = 0; i < 2 * n; i++) any |= !isnan(t->parts[3 * n + i]);
  if (!any) return;
  fprintf(out, "\nuncertainty of the central value (the mean over replicas and members), in "
               "parts: median over the\nbins of sigma / |mean|, measured | unmeasured bins; "
               "the training share phi pooled over\nmeasured | holes | open bins "
               "(docs/methods.md, \"Uncertainty parts\"):\n");
  fprintf(out, "%-10s %-*s %7s %15s %15s %15s %15s %15s\n", "method", t->fw, "fill", "members",
          "train share", "statistical", "1 training", "central", "model");
  for (hsize_t i = 0; i < n; i++) {
    char c[5][40];
    phi_cell(t, i, c[0], sizeof c[0]);
    for (int k = 1; k < 5; k++) {
      char a[16], b[16];
      double x = t->parts[(2 + k) * n + i], y = t->parts[(6 + k) * n + i];
      fmt_num(a, sizeof a, "%.4f", x);
      fmt_num(b, sizeof b, "%.4f", y);
      int det = ef_method_deterministic(t->ic[i]);
      if (k == 1 && isnan(x) && !det) snprintf(a, sizeof a, "unknown");
      if (k == 1 && isnan(y) && !det) snprintf(b, sizeof b, "unknown");
      /* phi at its clamp: the members' spread takes all of the replica spread */
      if (k == 1 && !det && t->parts[i] >= 1.0) snprintf(a, sizeof a, "unres");
      clamped |= !det && t->parts[i] >= 1.0;
      snprintf(c[k], sizeof c[k], "%s|%s", a, b);
    }
    fprintf(out, "%-10s %-*s %7d %15s %15s %15s %15s %15s\n", ef_method_name(t->ic[i]),
            t->fw, model_name(t, t->ic[n + i]), t->members[i], c[0], c[1], c[2], c[3], c[4]);
  }
  if (clamped)
    fprintf(out, "  unres (unresolved): in the measured bins the members' spread within "
                 "replicas is as large\n"
                 "  as the spread of the replica means (phi reached 1): the statistical part is "
                 "below what these\n"
                 "  replicas and members resolve, and central (the training noise left in the "
                 "mean) is a lower\n"
                 "  bound; a closure that fails with it shows a bias the uncertainty does not "
                 "cover.\n");
  fprintf(out, "  statistical: the data's fluctuation; 1 training: the spread of one unit's "
               "training (members of a\n"
               "  replica); central: statistical and the training noise left in the mean, the "
               "sigma of the closure;\n"
               "  model: the spread over fill models. 'unknown': one member per replica "
               "(campaign.ensemble 1).\n");
}

/* "chi2/ndf cover model%" of one (answer, class) of group i, '-' where none. */
static void class_cell(const table *t, hsize_t i, int a, int c, char *buf, size_t len) {
  hsize_t n = t->n;
  const double *x = t->cls + (size_t)(8 * a + 4 * c) * n + i;
  char chi[24], cov[16], mod[16];
  if (x[n] > 0 && isfinite(x[0])) fmt_chi2(chi, sizeof chi, x[0] / x[n]);
  else if (x[n] > 0 && isinf(x[0])) snprintf(chi, sizeof chi, "inf");
  else snprintf(chi, sizeof chi, "-");
  fmt_num(cov, sizeof cov, "%.2f", x[2 * n]);
  fmt_num(mod, sizeof mod, "%.1f%%", 100.0 * x[3 * n]);
  snprintf(buf, len, "%s %s %s", chi, cov, mod);
}

/* The unmeasured bins by class: the result (fill-filled) and the method's
 * own answer (a generative method's), closure and spread over fill models. */
static void print_classes(const table *t, FILE *out) {
  hsize_t n = t->n;
  double nh = 0, no = 0;
  for (hsize_t i = 0; i < n; i++) {
    nh = fmax(nh, t->cls[n + i] > 0 ? t->cls[n + i] : t->cls[9 * n + i]);
    no = fmax(no, t->cls[5 * n + i] > 0 ? t->cls[5 * n + i] : t->cls[13 * n + i]);
  }
  if (!(nh > 0 || no > 0)) return;
  if (t->pi0)
    fprintf(out, "\nunmeasured bins by class: %.0f interior holes (measured bins on both sides in "
                 "phi*: the coil gaps),\n%.0f open (the polar caps, wider regions)", nh, no);
  else
    fprintf(out, "\nunmeasured bins by class: %.0f interior holes (measured bins on both sides "
                 "along a periodic observable),\n%.0f open (the rest)", nh, no);
  fprintf(out, "; each cell 'chi2/ndf coverage model', model = the spread over\nfill models "
               "relative to the content; 'own' is the method's own answer (a generative "
               "method's), '-' for none:\n");
  fprintf(out, "%-10s %-*s %22s %22s %22s %22s\n", "method", t->fw, "fill", "holes: result",
          "holes: own", "open: result", "open: own");
  for (hsize_t i = 0; i < n; i++) {
    char c[4][64];
    for (int k = 0; k < 4; k++) class_cell(t, i, k % 2, k / 2, c[k], sizeof c[k]);
    fprintf(out, "%-10s %-*s %22s %22s %22s %22s\n", ef_method_name(t->ic[i]),
            t->fw, model_name(t, t->ic[n + i]), c[0], c[1], c[2], c[3]);
  }
  fprintf(out, "  The result fills unmeasured bins from the fill model: there its closure "
               "measures the model, and\n"
               "  its spread over fills is the model dependence. The own answer is data-driven "
               "where it closes\n"
               "  (chi2/ndf <= 2 at its sigma) and shows no spread over fills; where it does not "
               "close it is\n"
               "  the method's extrapolation, no better than a model.\n");
}

static void print_efficiency(const table *t, FILE *out) {
  hsize_t n = t->n;
  fprintf(out, "\nefficiency closure: |P(T0..T3 | bin) of the units - exact| over ");
  if (t->cells >= 0) fprintf(out, "%d cells", (int)t->cells);
  else fprintf(out, "the cells");
  fprintf(out, " (topology, bin) with exact efficiency >= %g;\n"
               "off: cells per unit with |diff| > %g (mean over the units)\n", t->emin, t->etol);
  fprintf(out, "%-10s %-*s %27s %27s\n", "method", t->fw, "fill", "replica 0: max  mean   off",
          "replicas: max  mean   off");
  for (hsize_t i = 0; i < n; i++) {
    char c[6][32];
    for (int k = 0; k < 6; k++)
      fmt_num(c[k], sizeof c[k], k % 3 == 2 ? "%.1f" : "%.4f", t->dc[(6 + k) * n + i]);
    fprintf(out, "%-10s %-*s %13s %7s %5s %13s %7s %5s\n", ef_method_name(t->ic[i]),
            t->fw, model_name(t, t->ic[n + i]), c[0], c[1], c[2], c[3], c[4], c[5]);
  }
  fprintf(out, "  A method that learns P(T | vertex) with its own networks should be within "
               "%g of the exact\n"
               "  maps in every cell (max <= %g). A method whose map is the MC's mean probability "
               "per bin is shown\n"
               "  for comparison: it differs from the exact value by MC statistics and the shape "
               "inside a bin.\n", t->etol, t->etol);
  for (hsize_t i = 0; i < n; i++) {
    double mx = fmax(t->dc[6 * n + i], t->dc[9 * n + i]);
    char name[48];
    const ef_method *m = ef_method_get(t->ic[i]);
    if (!m || !m->learns_efficiency || !isfinite(mx)) continue;
    fprintf(out, "    %-14s max %.4f: %s\n", group_name(t, i, name, sizeof name), mx,
            mx <= t->etol ? "inside" : "OUTSIDE");
  }
}

/* The groups' means against the data at detector level (refold.h): needs
 * no truth. Files before the columns print nothing. */
static void print_refold(const table *t, FILE *out) {
  int any = 0;
  for (hsize_t i = 0; i < t->n; i++) any |= t->refold[t->n + i] > 0;
  if (!any) return;
  fprintf(out, "\nrefold: each group's mean folded through the MC's response against the data's "
               "seen events (chi2 / detector bins, Poisson sigma; needs no truth):\n");
  for (hsize_t i = 0; i < t->n; i++) {
    char name[160], cell[64];
    double c = t->refold[i], ndf = t->refold[t->n + i];
    if (ndf > 0 && isfinite(c)) snprintf(cell, sizeof cell, "%.2f (%.0f/%.0f)", c / ndf, c, ndf);
    else snprintf(cell, sizeof cell, "-");
    fprintf(out, "    %-24s %s\n", group_name(t, i, name, sizeof name), cell);
  }
  fprintf(out, "  about 1 or below: the answer describes its data (one fitted to them absorbs part "
               "of their fluctuation, so IBU's can be far below 1); far above 1: it misses what "
               "the detector saw, by more than the binned response's own error "
               "(docs/methods.md, \"Refolding\")\n");
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
  table t = {0};
  read_model_names(file, &t);
  int rc = load_table(ctx, file, path, &t);
  if (rc == EF_OK) {
    print_table(&t, out);
    print_parts(&t, out);
    print_meaning(&t, out);
    print_classes(&t, out);
    print_refold(&t, out);
    if (t.any_eff) print_efficiency(&t, out);
    rc = ef_summary_marginals(ctx, file, path, out);
  }
  free(t.ic);
  free(t.dc);
  free(t.parts);
  free(t.members);
  free(t.cls);
  free(t.refold);
  H5Fclose(file);
  return rc;
}
