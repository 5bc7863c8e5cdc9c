/* ensfold summary's closure of the 1-D marginals of a product binning
 * (issue 19: a D-dimensional result closes in every marginal). */
#include "marginals.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/error.h"
#include "ensfold/space.h"

#define MAX_COV_BINS 4096 /* the (V, V) covariance read whole: 128 MiB */

void ef_summary_attr_text(hid_t loc, const char *obj, const char *name, char *buf, size_t len) {
  buf[0] = '\0';
  if ((strcmp(obj, ".") && H5Lexists(loc, obj, H5P_DEFAULT) <= 0) ||
      H5Aexists_by_name(loc, obj, name, H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT), ty = H5Tcopy(H5T_C_S1);
  char *v = NULL;
  if (a >= 0 && ty >= 0 && H5Tset_size(ty, H5T_VARIABLE) >= 0 &&
      H5Tset_cset(ty, H5T_CSET_UTF8) >= 0 && H5Aread(a, ty, &v) >= 0 && v) {
    snprintf(buf, len, "%s", v);
    H5free_memory(v);
  }
  if (ty >= 0) H5Tclose(ty);
  if (a >= 0) H5Aclose(a);
}

/* Elements of the 1- or 2-D dataset name (0 when absent). */
static hsize_t n_elements(hid_t loc, const char *name) {
  if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return 0;
  hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT), sp = ds >= 0 ? H5Dget_space(ds) : -1;
  hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : 0;
  if (sp >= 0) H5Sclose(sp);
  if (ds >= 0) H5Dclose(ds);
  return n > 0 ? (hsize_t)n : 0;
}

static int read_all(hid_t loc, const char *name, double *buf, hsize_t n) {
  if (n_elements(loc, name) != n) return -1;
  hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
  int ok = ds >= 0 && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
  if (ds >= 0) H5Dclose(ds);
  return ok ? 0 : -1;
}

typedef struct {
  int dim, n[EF_SPACE_MAX_DIM];
  char name[EF_SPACE_MAX_DIM][EF_SPACE_NAME_LEN];
  hsize_t V;
} layout;

/* The product binning's observables and bins per axis; 0 when the file has none. */
static int read_layout(hid_t file, layout *l) {
  char names[EF_SPACE_MAX_DIM * (EF_SPACE_NAME_LEN + 1)], scheme[32];
  hid_t g = H5Lexists(file, "binning_vertex", H5P_DEFAULT) > 0
                ? H5Gopen2(file, "binning_vertex", H5P_DEFAULT) : -1;
  if (g < 0) return 0;
  ef_summary_attr_text(g, ".", "scheme", scheme, sizeof scheme);
  ef_summary_attr_text(g, ".", "observables", names, sizeof names);
  l->dim = 0;
  l->V = 1;
  for (char *tok = strtok(names, ","); strcmp(scheme, "product") == 0 && tok &&
                                       l->dim < EF_SPACE_MAX_DIM; tok = strtok(NULL, ",")) {
    char ds[EF_SPACE_NAME_LEN + 8];
    snprintf(ds, sizeof ds, "edges_%s", tok);
    hsize_t e = n_elements(g, ds);
    if (e < 2) break;
    snprintf(l->name[l->dim], EF_SPACE_NAME_LEN, "%s", tok);
    l->n[l->dim++] = (int)(e - 1);
    l->V *= e - 1;
  }
  H5Gclose(g);
  return l->dim;
}

/* Bin k's index along axis a. */
static int axis_ix(const layout *l, int a, hsize_t k) {
  hsize_t stride = 1;
  for (int q = a + 1; q < l->dim; q++) stride *= (hsize_t)l->n[q];
  return (int)((k / stride) % (hsize_t)l->n[a]);
}

/* The projection on axis a (c < 0) or on the pair (a, c): pix (V) the
 * projected bin of every bin; returns the number of projected bins. */
static int proj_ix(const layout *l, int a, int c, int *pix) {
  for (hsize_t k = 0; k < l->V; k++)
    pix[k] = c < 0 ? axis_ix(l, a, k) : axis_ix(l, a, k) * l->n[c] + axis_ix(l, c, k);
  return c < 0 ? l->n[a] : l->n[a] * l->n[c];
}

/* Closure of a projection (pix, n bins) over the bins with use[k] (all, or
 * the measured ones): chi2, ndf and coverage of the projected mean against
 * the projected truth with the projected covariance's diagonal times scale. */
static void marginal(const layout *l, const int *pix, int n, const double *mean,
                     const double *truth, const double *cov, double scale, const int *use,
                     double *chi2, int *ndf, double *cover, double *w, int *ix) {
  double *pm = w, *pt = w + n, *var = w + 2 * n;
  memset(w, 0, 3 * (size_t)n * sizeof *w);
  for (hsize_t k = 0; k < l->V; k++) /* (V) projected bin, -1 where not used */
    ix[k] = use[k] ? pix[k] : -1;
  for (hsize_t k = 0; k < l->V; k++) {
    int i = ix[k];
    if (i < 0) continue;
    pm[i] += mean[k];
    pt[i] += truth[k];
    const double *row = cov + k * l->V;
    for (hsize_t m = 0; m < l->V; m++)
      if (ix[m] == i) var[i] += row[m];
  }
  *chi2 = 0.0, *ndf = 0, *cover = 0.0;
  for (int i = 0; i < n; i++) {
    if (!(var[i] > 0)) continue;
    double p = (pm[i] - pt[i]) / sqrt(scale * var[i]);
    *chi2 += p * p;
    *cover += fabs(p) <= 1.0;
    (*ndf)++;
  }
  if (*ndf) *cover /= *ndf;
}

/* The covariance of the central value, the per-bin closure's sigma: the
 * replica covariance (V, V) scaled by c_i c_j, c = sigma_central / sigma per
 * bin (1 where either is missing or sigma is 0; a file without
 * sigma_central keeps the replica covariance). c: scratch of 2 V doubles. */
static void central_cov(hid_t g, const layout *l, double *cov, double *c) {
  if (read_all(g, "sigma_central", c, l->V) == 0 && read_all(g, "sigma", c + l->V, l->V) == 0) {
    for (hsize_t k = 0; k < l->V; k++) {
      double s = c[l->V + k];
      c[k] = s > 0 && isfinite(c[k]) ? c[k] / s : 1.0;
    }
    for (hsize_t k = 0; k < l->V; k++)
      for (hsize_t m = 0; m < l->V; m++) cov[k * l->V + m] *= c[k] * c[m];
  }
}

/* A projection's variance factors of the central value over every vertex
 * bin [0] and over the measured ones [1]: 1 - phi + phi / R at its own
 * training share (1 where phi is unknown), and whether phi is at its clamp
 * (1: sigma_central a lower bound, docs/methods.md). */
typedef struct {
  double f[2];
  int clamped[2];
} scales;

/* The scales of projection (a, c) of group g from its training_fraction and
 * replicas. Returns 0 when the file has none (written before the
 * projections had their own phi; s is then left as it is). */
static int own_scales(hid_t g, const layout *l, int a, int c, scales *s) {
  char name[2 * EF_SPACE_NAME_LEN + 8];
  if (c < 0) snprintf(name, sizeof name, "proj_%s", l->name[a]);
  else snprintf(name, sizeof name, "pair_%s_%s", l->name[a], l->name[c]);
  if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return 0;
  hid_t pg = H5Gopen2(g, name, H5P_DEFAULT);
  double phi[2], R = 0.0;
  int ok = pg >= 0 && read_all(pg, "training_fraction", phi, 2) == 0 &&
           read_all(pg, "replicas", &R, 1) == 0 && R >= 1.0;
  if (pg >= 0) H5Gclose(pg);
  for (int q = 0; ok && q < 2; q++) {
    s->f[q] = isnan(phi[q]) ? 1.0 : 1.0 - phi[q] + phi[q] / R;
    s->clamped[q] = phi[q] >= 1.0;
  }
  return ok;
}

typedef struct {
  char names[64][64];
  int n;
} group_list;

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info, void *arg) {
  (void)g, (void)info;
  group_list *gl = arg;
  if (gl->n < 64) snprintf(gl->names[gl->n++], 64, "%s", name);
  return 0;
}

/* /measured into meas (V); every bin measured where the file has none
 * (or it cannot be read). */
static void read_measured(hid_t file, const layout *l, int *meas) {
  for (hsize_t k = 0; k < l->V; k++) meas[k] = 1;
  if (n_elements(file, "measured") != l->V) return;
  hid_t ds = H5Dopen2(file, "measured", H5P_DEFAULT);
  if (ds < 0 || H5Dread(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, meas) < 0)
    for (hsize_t k = 0; k < l->V; k++) meas[k] = 1;
  if (ds >= 0) H5Dclose(ds);
}

/* One row of the table: group `name`'s marginal of observable a (c < 0) or
 * pair (a, c), over every bin (sel[0]) and the measured ones (sel[1]);
 * v: mean, truth, cov; sc: the factors of cov for the central value over
 * each selection (own_scales), a figure at a clamped phi marked '^';
 * w, ix, pix: scratch. Returns whether it marked one. */
static int marginal_row(const layout *l, int a, int c, const char *name, const double *v[3],
                        const scales *sc, const int *sel[2], double *w, int *ix, int *pix,
                        FILE *out) {
  char label[2 * EF_SPACE_NAME_LEN + 2];
  snprintf(label, sizeof label, c < 0 ? "%s" : "%s:%s", l->name[a], c < 0 ? "" : l->name[c]);
  int n = proj_ix(l, a, c, pix);
  fprintf(out, "%-22s %-12s", name, label);
  int marked = 0;
  for (int which = 0; which < 2; which++) {
    double chi2, cover;
    int ndf;
    marginal(l, pix, n, v[0], v[1], v[2], sc->f[which], sel[which], &chi2, &ndf, &cover, w, ix);
    char t[48];
    snprintf(t, sizeof t, "%.2f (%.0f/%d)%s", ndf ? chi2 / ndf : NAN, chi2, ndf,
             sc->clamped[which] ? "^" : "");
    fprintf(out, " %20s %8.3f", t, cover);
    marked |= sc->clamped[which];
  }
  fputc('\n', out);
  return marked;
}

int ef_summary_marginals(ef_ctx *ctx, hid_t file, const char *path, FILE *out) {
  layout l;
  if (!read_layout(file, &l) || n_elements(file, "truth/hist") != l.V) return EF_OK;
  if (l.V > MAX_COV_BINS) {
    fprintf(out, "\n1-D marginals: %llu vertex bins, more than the %d whose covariance summary "
            "reads whole; project /groups/*/cov yourself\n", (unsigned long long)l.V, MAX_COV_BINS);
    return EF_OK;
  }
  int nmax = 0, pairs = n_elements(file, "units/id") > 0 && l.dim >= 2 &&
                        H5Lexists(file, "units", H5P_DEFAULT) > 0; /* pairs: binning.pairs */
  char p0[2 * EF_SPACE_NAME_LEN + 16];
  snprintf(p0, sizeof p0, "units/pair_%s_%s", l.name[0], l.name[l.dim > 1 ? 1 : 0]);
  pairs = pairs && n_elements(file, p0) > 0;
  for (int a = 0; a < l.dim; a++)
    for (int c = pairs ? a : l.dim - 1; c < l.dim; c++) {
      int n = c > a ? l.n[a] * l.n[c] : l.n[a];
      nmax = n > nmax ? n : nmax;
    }
  if ((hsize_t)nmax < l.V) nmax = (int)l.V; /* w also serves central_cov (2 V) */
  double *truth = malloc(l.V * sizeof *truth), *mean = malloc(l.V * sizeof *mean);
  double *cov = malloc(l.V * l.V * sizeof *cov), *w = malloc(3 * (size_t)nmax * sizeof *w);
  int *ix = malloc(l.V * sizeof *ix), *all = malloc(l.V * sizeof *all);
  int *pix = malloc(l.V * sizeof *pix);
  int *meas = malloc(l.V * sizeof *meas);
  group_list *gl = calloc(1, sizeof *gl);
  int rc = EF_OK;
  if (!truth || !mean || !cov || !w || !ix || !all || !meas || !gl || !pix) {
    rc = ef_error_set(ctx, EF_ERR_NOMEM, "%s: out of memory for the marginals", path);
    goto done;
  }
  if (read_all(file, "truth/hist", truth, l.V) != 0) goto done;
  for (hsize_t k = 0; k < l.V; k++) all[k] = 1;
  read_measured(file, &l, meas);
  hid_t groups = H5Gopen2(file, "groups", H5P_DEFAULT);
  if (groups < 0) goto done;
  H5Literate(groups, H5_INDEX_NAME, H5_ITER_INC, NULL, collect, gl);
  fprintf(out, "\n1-D marginals (product binning): chi2/ndf of each observable's projection of the "
          "group mean against the truth's,\nwith the variance of the projected central value: "
          "the projected replica variance times 1 - phi + phi / R\nat the projection's own "
          "training share phi (docs/methods.md; a file written before projections had\ntheir "
          "own phi: the replica covariance scaled per bin by sigma_central / sigma), and the +-1 "
          "sigma\ncoverage; over every bin (the unmeasured ones are the fill's) and over the "
          "measured bins only%s:\n"
          "%-22s %-12s %20s %8s %20s %8s\n",
          pairs ? "; then the 2-D pairs (a:b, binning.pairs)" : "", "group", "observable",
          "all: chi2/ndf", "cov", "measured: chi2/ndf", "cov");
  int marked = 0; /* a figure at a clamped phi shown */
  for (int i = 0; i < gl->n; i++) {
    hid_t g = H5Gopen2(groups, gl->names[i], H5P_DEFAULT);
    int ok = g >= 0 && read_all(g, "mean", mean, l.V) == 0 && read_all(g, "cov", cov, l.V * l.V) == 0;
    scales sc = {{1.0, 1.0}, {0, 0}};
    int own = ok && own_scales(g, &l, 0, -1, &sc);
    if (ok && !own) central_cov(g, &l, cov, w); /* an older file: the product bins' phi */
    /* the marginals, then the pairs (a, c > a) */
    for (int q = 0; ok && q < l.dim * (pairs ? l.dim + 1 : 1); q++) {
      int a = q < l.dim ? q : (q - l.dim) / l.dim, c = q < l.dim ? -1 : (q - l.dim) % l.dim;
      if (q >= l.dim && c <= a) continue;
      if (own && !own_scales(g, &l, a, c, &sc)) sc = (scales){{1.0, 1.0}, {0, 0}};
      marked |= marginal_row(&l, a, c, gl->names[i], (const double *[]){mean, truth, cov}, &sc,
                             (const int *[]){all, meas}, w, ix, pix, out);
    }
    if (g >= 0) H5Gclose(g);
  }
  H5Gclose(groups);
  if (marked)
    fprintf(out, "  ^ the projection's training share at its clamp (phi = 1): the members' spread "
            "takes all of\n    the replica spread, so sigma_central (s / sqrt(R)) is a lower bound "
            "and this chi2/ndf an upper one\n    (docs/methods.md, \"phi at its clamp\")\n");
done:
  H5Eclear2(H5E_DEFAULT);
  free(truth);
  free(mean);
  free(cov);
  free(w);
  free(ix);
  free(all);
  free(meas);
  free(pix);
  free(gl);
  return rc;
}
