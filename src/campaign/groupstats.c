/* Group statistics and closure policy (groupstats.h). */
#include "groupstats.h"
#include "projection.h"
#include "refold.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/model.h"
#include "ensfold/process.h"
#include "ensfold/unit.h"

/* The members of replica r of group (method, fill) into out (members, n),
 * each the part of the unit's result row from column col0 (0: the
 * histogram), or 0 if any member failed. */
static int replica_members(const ef_output_data *d, int method, int fill, int r, int n,
                           size_t col0, double *out) {
  int members = ef_plan_n_members(d->plan, method);
  for (int k = 0; k < members; k++) {
    int32_t id = ef_plan_unit_id(d->plan, method, fill, r, k);
    if (id < 0 || d->status[id] != EF_OK) return 0;
    memcpy(out + (size_t)k * (size_t)n, d->results + (size_t)id * d->result_len + col0,
           (size_t)n * sizeof *out); /* the row's part from column col0 */
  }
  return 1;
}

/* Replica value: the mean over its members (members, n) into out (n). */
static void replica_mean(const double *x, int members, int n, double *out) {
  memset(out, 0, (size_t)n * sizeof *out);
  for (int k = 0; k < members; k++)
    for (int i = 0; i < n; i++) out[i] += x[(size_t)k * (size_t)n + i] / members;
}

/* The replicas r >= 1 of group g whose members all succeeded: their members
 * (from row column col0) into xm (R, M, n), their means into x (R, n).
 * Returns how many. */
static int gather_replicas(const ef_output_data *d, const group_stats *g, int n, size_t col0,
                           double *xm, double *x) {
  int M = g->members, R = 0;
  for (int r = 1; r < ef_plan_n_replicas(d->plan); r++) {
    double *m = xm + (size_t)R * (size_t)M * (size_t)n;
    if (!replica_members(d, g->method, g->fill, r, n, col0, m)) continue;
    replica_mean(m, M, n, x + (size_t)R * (size_t)n);
    R++;
  }
  return R;
}

/* Replica r of group (method, fill): the mean over its members, or 0 if
 * any member failed. scratch: (members, n). */
static int replica_vector(const ef_output_data *d, int method, int fill, int r, int n,
                          double *scratch, double *out) {
  if (!replica_members(d, method, fill, r, n, 0, scratch)) return 0;
  replica_mean(scratch, ef_plan_n_members(d->plan, method), n, out);
  return 1;
}

static void free_group(group_stats *g) {
  free(g->proj_phi);
  ef_parts_free(&g->parts);
  ef_parts_free(&g->own_parts);
  free(g->own_mean);
  free(g->own_model);
  free(g->model);
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

/* Closure of the group's mean against the truth, measured and unmeasured
 * bins apart, at the sigma of the central value. */
static int group_closure(ef_ctx *ctx, const ef_output_data *d, const unsigned char *measured,
                         group_stats *g) {
  int n = ef_binning_count(ef_inputs_vertex_binning(d->in));
  const double *truth = ef_inputs_truth(d->in);
  if (!truth) return EF_OK;
  unsigned char *unmeas = malloc((size_t)n);
  if (!unmeas) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  for (int i = 0; i < n; i++) unmeas[i] = !measured[i];
  const double *sig = g->parts.central;
  int rc = ef_stats_closure(ctx, g->mean, g->cov, sig, truth, measured, (size_t)n,
                            (size_t)g->n_rep, &g->meas, g->pulls);
  if (rc == EF_OK)
    rc = ef_stats_closure(ctx, g->mean, g->cov, sig, truth, unmeas, (size_t)n, (size_t)g->n_rep,
                          &g->unmeas, NULL);
  free(unmeas);
  return rc;
}

/* g->proj_phi (groupstats.h) from the members xm (R, M, n) and replica
 * means x (R, n) of group g's n_rep replicas. */
static int projection_shares(ef_ctx *ctx, const ef_output_data *d, const unsigned char *measured,
                             const double *xm, const double *x, group_stats *g) {
  const ef_binning *b = ef_inputs_vertex_binning(d->in);
  const ef_space *sp = ef_process_space(ef_inputs_process(d->in));
  g->n_proj = ef_space_is_pi0(sp) ? 0 : ef_proj_count(b, d->cfg->vertex_pairs);
  g->proj_phi = malloc(((size_t)g->n_proj * 2 + 1) * sizeof *g->proj_phi);
  if (!g->proj_phi) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for projections");
  int det = ef_method_deterministic(g->method), nv = ef_binning_count(b), mmax = 0;
  for (int i = 0; i < 2 * g->n_proj; i++) g->proj_phi[i] = det ? 0.0 : NAN;
  if (det || g->members < 2 || g->n_rep < 2 || g->n_proj == 0) return EF_OK;
  char name[2 * EF_SPACE_NAME_LEN + 8];
  for (int p = 0; p < g->n_proj; p++) {
    int m = ef_proj_describe(b, sp, p, name, sizeof name);
    mmax = m > mmax ? m : mmax;
  }
  size_t R = (size_t)g->n_rep, M = (size_t)g->members;
  int *idx = malloc((size_t)nv * sizeof *idx);
  double *work = malloc((R * (M + 1) + 3) * (size_t)mmax * sizeof *work);
  int rc = idx && work ? EF_OK : ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for projections");
  for (int p = 0; rc == EF_OK && p < g->n_proj; p++) {
    int m = ef_proj_describe(b, sp, p, name, sizeof name);
    ef_proj_index(b, p, idx);
    rc = ef_proj_share(ctx, xm, x, R, M, nv, idx, m, work, &g->proj_phi[2 * p]);
    for (int k = 0; k < nv; k++) idx[k] = measured[k] ? idx[k] : -1;
    if (rc == EF_OK) rc = ef_proj_share(ctx, xm, x, R, M, nv, idx, m, work, &g->proj_phi[2 * p + 1]);
  }
  free(idx);
  free(work);
  return rc;
}

static int group_compute(ef_ctx *ctx, const ef_output_data *d, const unsigned char *measured,
                         const unsigned char *cls, group_stats *g) {
  int n = ef_binning_count(ef_inputs_vertex_binning(d->in));
  int R = ef_plan_n_replicas(d->plan) - 1, M = g->members = ef_plan_n_members(d->plan, g->method);
  EF_CHECK(alloc_vectors(ctx, n, &g->mean, &g->sigma, &g->cov, &g->corr));
  g->pulls = malloc((size_t)n * sizeof(double));
  g->model = malloc((size_t)n * sizeof(double));
  size_t rows = (size_t)(R > 0 ? R : 1);
  double *x = malloc(rows * (size_t)n * sizeof(double));                /* (R, n) */
  double *xm = malloc(rows * (size_t)M * (size_t)n * sizeof(double));   /* (R, M, n) */
  if (!g->pulls || !g->model || !x || !xm) {
    free(x);
    free(xm);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for statistics");
  }
  g->n_rep = gather_replicas(d, g, n, 0, xm, x);
  int rc = EF_OK;
  g->meas = g->unmeas = (ef_closure){NAN, 0, 0, NAN, 0, 0};
  for (int i = 0; i < n; i++) g->pulls[i] = g->model[i] = NAN;
  if (g->n_rep >= 2) {
    rc = ef_stats_replicas(ctx, x, (size_t)g->n_rep, (size_t)n, g->mean, g->cov, g->sigma, g->corr);
    if (rc == EF_OK)
      rc = ef_parts_compute(ctx, xm, (size_t)g->n_rep, (size_t)M, (size_t)n,
                            ef_method_deterministic(g->method), g->mean, g->sigma, cls,
                            &g->parts);
    if (rc == EF_OK) rc = group_closure(ctx, d, measured, g);
    if (rc == EF_OK) rc = projection_shares(ctx, d, measured, xm, x, g);
  } else {
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) g->cov[i] = g->corr[i] = NAN;
    for (int i = 0; i < n; i++) g->mean[i] = g->sigma[i] = NAN;
  }
  free(x);
  free(xm);
  return rc;
}

/* Closure of mean at sigma (cov may be NULL) per unmeasured class. */
static int class_closure(ef_ctx *ctx, const double *mean, const double *cov, const double *sigma,
                         const double *truth, const unsigned char *cls, int n, int R,
                         ef_closure out[2]) {
  unsigned char *mask = malloc((size_t)n);
  if (!mask) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  int rc = EF_OK;
  for (int c = 0; rc == EF_OK && c < 2; c++) {
    for (int i = 0; i < n; i++) mask[i] = cls[i] == (c == 0 ? EF_CLASS_HOLE : EF_CLASS_OPEN);
    rc = ef_stats_closure(ctx, mean, cov, sigma, truth, mask, (size_t)n, (size_t)R, &out[c], NULL);
  }
  free(mask);
  return rc;
}

/* The method's own answer (the rows' last part: its answer in every bin)
 * of a group with statistics: its mean over replicas and members, its
 * sigma parts, and the closure per unmeasured class of it and of the
 * result. A method without one (NaN rows) gets has_own 0. */
static int own_compute(ef_ctx *ctx, const ef_output_data *d, const unsigned char *cls,
                       group_stats *g) {
  int n = ef_binning_count(ef_inputs_vertex_binning(d->in)), M = g->members;
  size_t col0 = ef_unit_loss_offset(d->in) + 2 * EF_UNIT_LOSS_POINTS;
  const double *truth = ef_inputs_truth(d->in);
  for (int a = 0; a < 2; a++)
    for (int c = 0; c < 2; c++) g->cls[a][c] = (ef_closure){NAN, 0, 0, NAN, 0, 0};
  if (g->n_rep < 2) return EF_OK;
  if (truth) EF_CHECK(class_closure(ctx, g->mean, g->cov, g->parts.central, truth, cls, n,
                                    g->n_rep, g->cls[0]));
  g->own_mean = malloc((size_t)n * sizeof(double));
  g->own_model = malloc((size_t)n * sizeof(double));
  double *x = malloc((size_t)g->n_rep * (size_t)n * sizeof(double));              /* (R, n) */
  double *xm = malloc((size_t)g->n_rep * (size_t)M * (size_t)n * sizeof(double)); /* (R, M, n) */
  double *s = malloc((size_t)n * sizeof(double));
  int rc = EF_OK, R = 0;
  if (!g->own_mean || !g->own_model || !x || !xm || !s)
    rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for statistics");
  if (rc == EF_OK) R = gather_replicas(d, g, n, col0, xm, x);
  g->has_own = rc == EF_OK && R >= 2 && !isnan(x[0]);
  for (int i = 0; rc == EF_OK && !g->has_own && i < n; i++) g->own_mean[i] = g->own_model[i] = NAN;
  if (g->has_own) rc = ef_stats_replicas(ctx, x, (size_t)R, (size_t)n, g->own_mean, NULL, s, NULL);
  if (g->has_own && rc == EF_OK)
    rc = ef_parts_compute(ctx, xm, (size_t)R, (size_t)M, (size_t)n,
                          ef_method_deterministic(g->method), g->own_mean, s, cls,
                          &g->own_parts);
  if (g->has_own && rc == EF_OK && truth)
    rc = class_closure(ctx, g->own_mean, NULL, g->own_parts.central, truth, cls, n, R, g->cls[1]);
  free(x);
  free(xm);
  free(s);
  return rc;
}

/* Group g's spread over fill models per unmeasured class, of the result
 * and of the method's own answer (sum of model / sum of |mean|). */
static void class_model(group_stats *gs, int ng, int g, int n, const unsigned char *cls) {
  for (int a = 0; a < 2; a++)
    for (int c = 0; c < 2; c++) gs[g].cls_model[a][c] = NAN;
  const double *means[EF_N_FILLS];
  int F = 0;
  for (int h = 0; h < ng; h++)
    if (gs[h].method == gs[g].method && gs[h].has_own && F < EF_N_FILLS)
      means[F++] = gs[h].own_mean;
  if (gs[g].has_own) ef_parts_model(means, F, (size_t)n, gs[g].own_model);
  for (int c = 0; c < 2; c++) {
    unsigned char want = c == 0 ? EF_CLASS_HOLE : EF_CLASS_OPEN;
    gs[g].cls_model[0][c] = ef_parts_sum_rel(gs[g].model, gs[g].mean, cls, want, (size_t)n);
    if (gs[g].has_own)
      gs[g].cls_model[1][c] = ef_parts_sum_rel(gs[g].own_model, gs[g].own_mean, cls, want,
                                               (size_t)n);
  }
}

/* The model part of every group with statistics: its method's spread over
 * the fill models (the same vector for each fill of a method), then the
 * median relative parts per bin class. scratch: (n). */
static void groups_model(group_stats *gs, int ng, int n, const unsigned char *measured,
                         const unsigned char *cls, double *scratch) {
  for (int g = 0; g < ng; g++) {
    const double *means[EF_N_FILLS];
    int F = 0;
    for (int h = 0; h < ng; h++)
      if (gs[h].method == gs[g].method && gs[h].n_rep >= 2 && F < EF_N_FILLS)
        means[F++] = gs[h].mean;
    if (gs[g].n_rep >= 2) ef_parts_model(means, F, (size_t)n, gs[g].model);
    for (int c = 0; c < 4; c++) gs[g].cls_model[c / 2][c % 2] = NAN;
    for (int c = 0; c < 2; c++)
      for (int k = 0; k < N_PARTS; k++) gs[g].rel[c][k] = NAN;
    if (gs[g].n_rep < 2) continue;
    const double *part[N_PARTS] = {gs[g].parts.stat, gs[g].parts.training, gs[g].parts.central,
                                   gs[g].model};
    for (int c = 0; c < 2; c++)
      for (int k = 0; k < N_PARTS; k++)
        gs[g].rel[c][k] = k == PART_MODEL
                              ? ef_parts_sum_rel(part[k], gs[g].mean, measured, c == 0, (size_t)n)
                              : ef_parts_median_rel(part[k], gs[g].mean, measured, c == 0,
                                                    (size_t)n, scratch);
    class_model(gs, ng, g, n, cls);
  }
}

/* |eff_unit - eff_exact| of the group's ok units, replica 0 into e[0] and
 * replicas >= 1 into e[1], over the n_cells cells of cell (4 x nv, 1 =
 * compared). exact: (K, nv); a unit's map is its row's [nv, (1 + K) nv). */
static void eff_closure_compute(const ef_output_data *d, int method, int fill,
                                const double *exact, const unsigned char *cell, int n_cells,
                                eff_closure e[2]) {
  size_t nv = (size_t)ef_binning_count(ef_inputs_vertex_binning(d->in));
  size_t n_cells_all = (size_t)ef_inputs_n_cat(d->in) * nv; /* (K, nv) */
  double sum[2] = {0, 0};
  for (int s = 0; s < 2; s++) e[s] = (eff_closure){NAN, NAN, NAN, 0};
  if (!exact || n_cells == 0) return;
  double mx[2] = {0, 0}, above[2] = {0, 0};
  int members = ef_plan_n_members(d->plan, method);
  for (int r = 0; r < ef_plan_n_replicas(d->plan); r++)
    for (int k = 0; k < members; k++) {
      int32_t id = ef_plan_unit_id(d->plan, method, fill, r, k);
      if (id < 0 || d->status[id] != EF_OK) continue;
      const double *eff = d->results + (size_t)id * d->result_len + nv; /* (K, nv) */
      int s = r > 0;
      for (size_t c = 0; c < n_cells_all; c++) {
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
  double *scratch = malloc((size_t)ef_plan_n_members(d->plan, s->method) * (size_t)n *
                           sizeof(double)); /* (members, n) */
  if (!x || !b || !scratch) {
    free(x);
    free(b);
    free(scratch);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for statistics");
  }
  s->n_rep = 0;
  for (int r = 1; r <= R; r++) {
    double *a = x + (size_t)s->n_rep * (size_t)n;
    if (!replica_vector(d, s->method, s->fa, r, n, scratch, a) ||
        !replica_vector(d, s->method, s->fb, r, n, scratch, b))
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
  free(scratch);
  return rc;
}

/* The groups (method, fill) and fill pairs of the plan, on every rank. */
static int set_layout(ef_ctx *ctx, const ef_output_data *d, ef_group_set *s) {
  const ef_plan *p = d->plan;
  int ng = s->ng = ef_plan_n_groups(p), nv = ef_binning_count(ef_inputs_vertex_binning(d->in));
  s->gs = calloc((size_t)ng + 1, sizeof *s->gs);
  s->ds = calloc((size_t)ng * (size_t)ng + 1, sizeof *s->ds);
  s->measured = malloc((size_t)nv);
  s->cls = malloc((size_t)nv);
  const ef_space *sp = &ef_inputs_data(d->in)->space;
  s->cell = calloc((size_t)sp->n_cat * (size_t)nv + 1, 1);
  if (!s->gs || !s->ds || !s->measured || !s->cls || !s->cell)
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  if (d->result_len < ef_unit_result_len(d->in))
    return ef_error_set(ctx, EF_ERR_INTERNAL, "result rows of %zu values, the layout needs %zu",
                        d->result_len, ef_unit_result_len(d->in));
  /* efficiency closure cells (K, nv): every category of the bins the
   * detector sees at all (1 - the blind categories' probability) */
  const double *exact = ef_inputs_exact_efficiency(d->in);
  for (int k = 0; exact && k < nv; k++) {
    double blind = 0.0;
    for (int t = 0; t < sp->n_cat; t++)
      if (sp->cat[t].blind) blind += exact[(size_t)t * (size_t)nv + (size_t)k];
    if (1.0 - blind >= EFF_MIN_TOTAL)
      for (int t = 0; t < sp->n_cat; t++, s->n_cells++)
        s->cell[(size_t)t * (size_t)nv + (size_t)k] = 1;
  }
  memcpy(s->measured, ef_inputs_unfolded(d->in), (size_t)nv);
  ef_binning_classify(ef_inputs_vertex_binning(d->in), s->measured, s->cls);
  for (int g = 0; g < ng; g++) {
    group_stats *x = &s->gs[g];
    ef_plan_group(p, g, &x->method, &x->fill);
    x->members = ef_plan_n_members(p, x->method);
    for (int h = 0; h < g; h++)
      if (s->gs[h].method == x->method)
        s->ds[s->ndiff++] = (diff_stats){.method = x->method, .fa = s->gs[h].fill, .fb = x->fill};
  }
  return EF_OK;
}

int ef_groupstats_compute(ef_ctx *ctx, const ef_output_data *d, int root, ef_group_set *s) {
  *s = (ef_group_set){0};
  int rc = set_layout(ctx, d, s);
  if (rc != EF_OK || !root) return rc;
  int nv = ef_binning_count(ef_inputs_vertex_binning(d->in));
  const double *exact = ef_inputs_exact_efficiency(d->in);
  ef_refold rf;
  rc = ef_refold_setup(ctx, d->in, &rf);
  for (int g = 0; rc == EF_OK && g < s->ng; g++) {
    group_stats *x = &s->gs[g];
    rc = group_compute(ctx, d, s->measured, s->cls, x);
    if (rc == EF_OK) rc = own_compute(ctx, d, s->cls, x);
    eff_closure_compute(d, x->method, x->fill, exact, s->cell, s->n_cells, x->eff);
    x->refold_chi2 = x->n_rep >= 2 ? ef_refold_chi2(&rf, d->in, x->mean) : NAN;
    x->refold_ndf = x->n_rep >= 2 ? rf.ndf : 0;
  }
  if (rc == EF_OK) { /* the bins used and the data, for the file (the rest of rf is freed here) */
    s->refold = rf.use, s->data_hist = rf.data, s->nd = rf.nd;
    rf.use = NULL, rf.data = NULL;
  }
  ef_refold_free(&rf);
  double *scratch = rc == EF_OK ? malloc((size_t)nv * sizeof *scratch) : NULL;
  if (rc == EF_OK && !scratch) rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  if (rc == EF_OK) groups_model(s->gs, s->ng, nv, s->measured, s->cls, scratch);
  free(scratch);
  for (int k = 0; rc == EF_OK && k < s->ndiff; k++) rc = diff_compute(ctx, d, &s->ds[k]);
  return rc;
}

void ef_groupstats_free(ef_group_set *s) {
  for (int g = 0; s->gs && g < s->ng; g++) free_group(&s->gs[g]);
  for (int k = 0; s->ds && k < s->ndiff; k++) free_diff(&s->ds[k]);
  free(s->gs);
  free(s->ds);
  free(s->measured);
  free(s->cls);
  free(s->cell);
  free(s->refold);
  free(s->data_hist);
  *s = (ef_group_set){0};
}
