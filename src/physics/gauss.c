/* The built-in gauss process (docs/physics.md, "The gauss process"): D
 * observables x1..xD (unbounded), each model a Gaussian with its means,
 * widths and one correlation between every pair (rho >= 0: x_i = mu_i +
 * sd_i (sqrt(rho) z + sqrt(1 - rho) e_i) with z, e_i standard normal),
 * Gaussian smearing, and an acceptance with exact probabilities:
 *   full       one category "seen": every event reconstructed
 *   standard   "blind", "partial", "full": seen with probability
 *              s(x1) = eff_max / (1 + exp(-(x1 - eff_centre) / eff_width))
 *              when xD < edge and never above it (a blind region); a seen
 *              event is partial with probability `partial` and then loses
 *              xD (reconstructed as 0, no information), else full. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/error.h"
#include "process_impl.h"

typedef struct {
  ef_gauss_params p;
  int dim, n_cat;
  double mean[EF_GAUSS_N_MODELS][EF_GAUSS_MAX_DIM], sd[EF_GAUSS_N_MODELS][EF_GAUSS_MAX_DIM];
  double rho[EF_GAUSS_N_MODELS];
  double res[EF_GAUSS_MAX_DIM];
  ef_space space;
} gauss_state;

static void gauss_space(const ef_gauss_params *p, ef_space *s) {
  memset(s, 0, sizeof *s);
  s->dim = p->dim;
  for (int i = 0; i < p->dim; i++) {
    snprintf(s->axis[i].name, EF_SPACE_NAME_LEN, "x%d", i + 1);
    s->axis[i].kind = EF_AXIS_UNBOUNDED;
    s->axis[i].lo = -INFINITY;
    s->axis[i].hi = INFINITY;
  }
  static const char *names[3] = {"blind", "partial", "full"};
  if (p->acceptance == EF_GAUSS_FULL) {
    s->n_cat = 1;
    snprintf(s->cat[0].name, EF_SPACE_NAME_LEN, "seen");
    return;
  }
  s->n_cat = 3;
  for (int k = 0; k < 3; k++) {
    snprintf(s->cat[k].name, EF_SPACE_NAME_LEN, "%s", names[k]);
    s->cat[k].blind = k == 0;
  }
}

static int gauss_create(ef_ctx *ctx, void **state, const ef_config *cfg, const ef_events *mc,
                        ef_space *space) {
  (void)mc;
  gauss_state *s = calloc(1, sizeof *s);
  if (!s) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the gauss process");
  s->p = cfg->gauss;
  s->dim = s->p.dim;
  for (int m = 0; m < EF_GAUSS_N_MODELS; m++) {
    s->rho[m] = s->p.model[m].correlation;
    for (int i = 0; i < s->dim; i++) {
      s->mean[m][i] = ef_real_vec_at(&s->p.model[m].mean, i);
      s->sd[m][i] = ef_real_vec_at(&s->p.model[m].width, i);
    }
  }
  for (int i = 0; i < s->dim; i++) s->res[i] = ef_real_vec_at(&s->p.resolution, i);
  gauss_space(&s->p, &s->space);
  int rc = ef_space_check(ctx, &s->space, "process gauss");
  if (rc != EF_OK) {
    free(s);
    return rc;
  }
  s->n_cat = s->space.n_cat;
  *space = s->space;
  *state = s;
  return EF_OK;
}

static int gauss_build_detector(ef_ctx *ctx, void *state) {
  (void)ctx;
  (void)state; /* the acceptance and smearing are formulas */
  return EF_OK;
}

static void gauss_destroy(void *state) { free(state); }

static const char *gauss_model_name(int model) {
  static const char *names[EF_GAUSS_N_MODELS] = {"data", "mc", "alt"};
  return names[model];
}

static double seen_prob(const gauss_state *s, const double *v) {
  if (!(v[s->dim - 1] < s->p.edge)) return 0.0;
  return s->p.eff_max / (1.0 + exp(-(v[0] - s->p.eff_centre) / s->p.eff_width));
}

/* P(category | v): (n_cat) */
static void probs(const gauss_state *s, const double *v, double *p) {
  if (s->p.acceptance == EF_GAUSS_FULL) {
    p[0] = 1.0;
    return;
  }
  double e = seen_prob(s, v);
  p[0] = 1.0 - e;
  p[1] = e * s->p.partial;
  p[2] = e * (1.0 - s->p.partial);
}

static void gauss_efficiency_at(const void *state, const double *v, double *eff) {
  probs(state, v, eff);
}

static void gauss_sample(const void *state, int model, ef_rng *r, double *v) {
  const gauss_state *s = state;
  double a = sqrt(s->rho[model]), b = sqrt(1.0 - s->rho[model]);
  double z = ef_rng_normal(r);
  for (int i = 0; i < s->dim; i++)
    v[i] = s->mean[model][i] + s->sd[model][i] * (a * z + b * ef_rng_normal(r));
}

/* Event i: vertex, probabilities, category, reconstruction. */
static void one_event(const gauss_state *s, int model, ef_rng *r, ef_events *ev, size_t i) {
  int D = s->dim, K = s->n_cat;
  double v[EF_GAUSS_MAX_DIM], p[3];
  gauss_sample(s, model, r, v);
  probs(s, v, p);
  double u = ef_rng_uniform(r), acc = 0.0;
  int t = K - 1;
  for (int k = 0; k < K; k++) {
    acc += p[k];
    if (u < acc) {
      t = k;
      break;
    }
  }
  ev->topology[i] = (int8_t)t;
  double *reco = ev->reco + (size_t)D * i;
  for (int j = 0; j < D; j++) reco[j] = v[j] + s->res[j] * ef_rng_normal(r);
  if (s->space.cat[t].blind)
    for (int j = 0; j < D; j++) reco[j] = NAN;
  else if (s->p.acceptance == EF_GAUSS_STANDARD && t == 1)
    reco[D - 1] = 0.0; /* partial: xD lost */
  if (ev->vertex) memcpy(ev->vertex + (size_t)D * i, v, (size_t)D * sizeof *v);
  if (ev->prob)
    for (int k = 0; k < K; k++) ev->prob[(size_t)K * i + (size_t)k] = (float)p[k];
}

static int gauss_generate(ef_ctx *ctx, const void *state, int model, ef_rng *r, size_t n,
                          ef_event_kind kind, unsigned what, ef_process_progress_fn progress,
                          void *progress_arg, ef_events *out) {
  const gauss_state *s = state;
  if (kind == EF_KIND_MC) what |= EF_EVENTS_VERTEX | EF_EVENTS_PROB;
  EF_CHECK(ef_events_alloc(ctx, out, &s->space, n, kind, what));
  snprintf(out->model, sizeof out->model, "%s", gauss_model_name(model));
  for (size_t i = 0; i < n; i++) {
    one_event(s, model, r, out, i);
    if (progress && ((i + 1) % 65536 == 0 || i + 1 == n)) progress(progress_arg, i + 1, n);
  }
  return EF_OK;
}

static double Phi(double x) { return 0.5 * erfc(-x / M_SQRT2); }

/* P(a_i <= x_i <= b_i for all i | z) for the standardised box (a, b). */
static double box_given(const double *a, const double *b, int D, double c, double q, double z) {
  double prod = 1.0;
  for (int i = 0; i < D; i++) prod *= Phi((b[i] - c * z) / q) - Phi((a[i] - c * z) / q);
  return prod;
}

/* The model's probability of bin k: the product of Phi differences without
 * correlation; with it, the one-dimensional integral over the common z
 * (40 panels of 8-point Gauss-Legendre over |z| <= 10). */
static double gauss_bin_probability(const void *state, int model, const ef_binning *bins, int k) {
  const gauss_state *s = state;
  int D = s->dim;
  double lo[EF_GAUSS_MAX_DIM], hi[EF_GAUSS_MAX_DIM], a[EF_GAUSS_MAX_DIM], b[EF_GAUSS_MAX_DIM];
  ef_binning_range(bins, k, lo, hi);
  for (int i = 0; i < D; i++) {
    a[i] = (lo[i] - s->mean[model][i]) / s->sd[model][i];
    b[i] = (hi[i] - s->mean[model][i]) / s->sd[model][i];
  }
  double rho = s->rho[model];
  if (rho == 0.0) return box_given(a, b, D, 0.0, 1.0, 0.0);
  double c = sqrt(rho), q = sqrt(1.0 - rho), sum = 0.0;
  const int panels = 40;
  const double zmax = 10.0, h = 2.0 * zmax / panels;
  for (int j = 0; j < panels; j++) {
    double zm = -zmax + (j + 0.5) * h;
    for (int g = 0; g < 8; g++) {
      double z = zm + 0.5 * h * ef_gl8_x[g];
      sum += ef_gl8_w[g] * 0.5 * h * exp(-0.5 * z * z) / sqrt(2.0 * M_PI) * box_given(a, b, D, c, q, z);
    }
  }
  return sum;
}

/* softplus(t) = log(1 + e^t), without overflow */
static double softplus(double t) { return fmax(t, 0.0) + log1p(exp(-fabs(t))); }

/* Mean of s over the bin (uniform in the bin, as pi0's 8 x 8 grid): the
 * logistic's integral in x1 is analytic; the edge cuts xD. */
static void gauss_bin_efficiency(const void *state, const ef_binning *bins, int k, double *eff) {
  const gauss_state *s = state;
  if (s->p.acceptance == EF_GAUSS_FULL) {
    eff[0] = 1.0;
    return;
  }
  int D = s->dim;
  double lo[EF_GAUSS_MAX_DIM], hi[EF_GAUSS_MAX_DIM];
  ef_binning_range(bins, k, lo, hi);
  double edge = s->p.edge, w = s->p.eff_width, c = s->p.eff_centre;
  /* the x1 interval that counts, and the fraction of the xD interval below the edge */
  double x0 = lo[0], x1 = hi[0], frac = 1.0;
  if (D == 1) x1 = fmin(x1, edge);
  else frac = fmax(0.0, fmin(hi[D - 1], edge) - lo[D - 1]) / (hi[D - 1] - lo[D - 1]);
  double mean_s = 0.0;
  if (x1 > x0)
    mean_s = s->p.eff_max * w * (softplus((x1 - c) / w) - softplus((x0 - c) / w)) /
             (hi[0] - lo[0]);
  double e = mean_s * frac;
  eff[0] = 1.0 - e;
  eff[1] = e * s->p.partial;
  eff[2] = e * (1.0 - s->p.partial);
}

static int gauss_check_events(ef_ctx *ctx, const void *state, const ef_events *ev,
                              const char *path, const char *key) {
  const gauss_state *s = state;
  if (ef_space_same(&ev->space, &s->space)) return EF_OK;
  return ef_error_set(ctx, EF_ERR_INPUT,
                      "%s (%s): declares %d observables (first '%s') and %d categories; process "
                      "gauss (gauss.dim %d, gauss.acceptance %s) has observables x1..x%d "
                      "(unbounded) and %d categories (first '%s')", path, key, ev->space.dim,
                      ev->space.axis[0].name, ev->space.n_cat, s->dim,
                      s->p.acceptance == EF_GAUSS_FULL ? "full" : "standard", s->dim, s->n_cat,
                      s->space.cat[0].name);
}

const ef_process_ops ef_process_gauss = {
    .name = "gauss", .create = gauss_create, .build_detector = gauss_build_detector,
    .destroy = gauss_destroy, .n_models = EF_GAUSS_N_MODELS, .default_fills = 6u, .model_name = gauss_model_name,
    .generate = gauss_generate, .bin_probability = gauss_bin_probability,
    .bin_efficiency = gauss_bin_efficiency, .efficiency_at = gauss_efficiency_at,
    .sample = gauss_sample,
    .check_events = gauss_check_events};
