/* Projections of histograms and covariances (projection.h). */
#include "projection.h"

#include <stdio.h>
#include <string.h>

#include "ensfold/stats.h"

/* The pair (a, c) of pair number q among D observables. */
static void pair_of(int D, int q, int *a, int *c) {
  *c = D - 1; /* (q past the last pair: the last) */
  for (*a = 0; *a < D; (*a)++) {
    int n = D - 1 - *a; /* pairs (a, a+1 .. D-1) */
    if (q < n) {
      *c = *a + 1 + q;
      return;
    }
    q -= n;
  }
}

int ef_proj_count(const ef_binning *b, int pairs) {
  int D = ef_binning_dim(b);
  return D + (pairs ? D * (D - 1) / 2 : 0);
}

int ef_proj_describe(const ef_binning *b, const ef_space *sp, int p, char *name, size_t len) {
  int D = ef_binning_dim(b);
  if (p < D) {
    if (ef_space_is_pi0(sp)) snprintf(name, len, "%s", p == 0 ? "proj_polar" : "proj_phi");
    else snprintf(name, len, "proj_%s", sp->axis[p].name);
    return ef_binning_axis(b, p)->n;
  }
  int a, c;
  pair_of(D, p - D, &a, &c);
  snprintf(name, len, "pair_%s_%s", sp->axis[a].name, sp->axis[c].name);
  return ef_binning_axis(b, a)->n * ef_binning_axis(b, c)->n;
}

void ef_proj_index(const ef_binning *b, int p, int *idx) {
  int D = ef_binning_dim(b), nv = ef_binning_count(b);
  if (p < D) {
    for (int k = 0; k < nv; k++) idx[k] = ef_binning_axis_index(b, k, p);
    return;
  }
  int a, c;
  pair_of(D, p - D, &a, &c);
  int nc = ef_binning_axis(b, c)->n;
  for (int k = 0; k < nv; k++)
    idx[k] = ef_binning_axis_index(b, k, a) * nc + ef_binning_axis_index(b, k, c);
}

void ef_proj_vec(int nv, const int *idx, int m, const double *h, double *out) {
  memset(out, 0, (size_t)m * sizeof *out);
  for (int k = 0; k < nv; k++)
    if (idx[k] >= 0) out[idx[k]] += h[k];
}

void ef_proj_cov(int nv, const int *idx, int m, const double *cov, double *tmp, double *out) {
  /* tmp (nv, m): each row of cov projected; then the rows summed by idx */
  for (int k = 0; k < nv; k++) ef_proj_vec(nv, idx, m, cov + (size_t)k * nv, tmp + (size_t)k * m);
  memset(out, 0, (size_t)m * m * sizeof *out);
  for (int k = 0; k < nv; k++)
    for (int j = 0; j < m; j++) out[(size_t)idx[k] * m + j] += tmp[(size_t)k * m + j];
}

int ef_proj_share(ef_ctx *ctx, const double *xm, const double *x, size_t R, size_t M, int nv,
                  const int *idx, int m, double *work, double *phi) {
  double *pm = work;                      /* (R, M, m) the members projected */
  double *px = pm + R * M * (size_t)m;    /* (R, m) the replica means projected */
  double *w = px + R * (size_t)m;         /* (m) within-replica variance */
  double *mean = w + m, *s2 = mean + m;   /* (m) each */
  for (size_t r = 0; r < R * M; r++) ef_proj_vec(nv, idx, m, xm + r * nv, pm + r * m);
  for (size_t r = 0; r < R; r++) ef_proj_vec(nv, idx, m, x + r * nv, px + r * m);
  int rc = ef_stats_within(ctx, pm, R, M, (size_t)m, w);
  if (rc == EF_OK) rc = ef_stats_replicas(ctx, px, R, (size_t)m, mean, NULL, s2, NULL);
  if (rc != EF_OK) return rc;
  for (int i = 0; i < m; i++) s2[i] *= s2[i]; /* sigma -> variance */
  *phi = ef_stats_training_fraction(w, M, s2, mean, NULL, (size_t)m);
  return EF_OK;
}
