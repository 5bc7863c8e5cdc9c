/* The files process: the user's own events (docs/user-guide.md, "Your own
 * data"). Its space is the one the MC file declares (format version 2;
 * data.file must declare the same); it has no generator and no detector:
 * the events are the files'. Its models, the fills and priors:
 *   mc     the MC's own vertex distribution (its weights included; events
 *          outside the binned range count in the total), binned
 *   flat   uniform over each binning's range (bin volume / range volume)
 * Single vertices (the GAN's fill samples) are drawn from the MC's
 * vertices, uniformly per event. */
#include <math.h>
#include <stdlib.h>

#include "ensfold/error.h"
#include "process_impl.h"

/* The histogram of the MC's vertices in the binning last asked for. */
typedef struct {
  ef_binning *binning; /* a copy of it */
  double *hist;        /* (count) fractions of the MC's total weight */
} mc_cache;

typedef struct {
  const ef_events *mc;
  mc_cache *cache; /* mutable behind the const state */
} files_state;

static int files_create(ef_ctx *ctx, void **state, const ef_config *cfg, const ef_events *mc,
                        ef_space *space) {
  (void)cfg;
  if (!mc || !mc->vertex)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "process: files takes its observables and its models from the MC file: "
                        "set mc.source: file and mc.file (and data.source: file)");
  files_state *s = calloc(1, sizeof *s);
  mc_cache *c = calloc(1, sizeof *c);
  if (!s || !c) {
    free(s);
    free(c);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the files process");
  }
  s->mc = mc;
  s->cache = c;
  *space = mc->space;
  *state = s;
  return EF_OK;
}

static int files_build_detector(ef_ctx *ctx, void *state) {
  (void)state;
  return ef_error_set(ctx, EF_ERR_INPUT,
                      "process: files has no generator or detector (its events are the files'): "
                      "data.source and mc.source must be file");
}

static void files_destroy(void *state) {
  files_state *s = state;
  if (!s) return;
  free(s->cache->hist);
  ef_binning_free(s->cache->binning);
  free(s->cache);
  free(s);
}

static const char *files_model_name(int model) { return model == 0 ? "mc" : "flat"; }

static int files_generate(ef_ctx *ctx, const void *state, int model, ef_rng *r, size_t n,
                          ef_event_kind kind, unsigned what, ef_process_progress_fn progress,
                          void *progress_arg, ef_events *out) {
  (void)model, (void)r, (void)n, (void)kind, (void)what, (void)progress, (void)progress_arg,
      (void)out;
  return files_build_detector(ctx, (void *)state);
}

/* The MC histogram of b (recomputed for another binning; NULL without memory). */
static const double *mc_hist(const files_state *s, const ef_binning *b) {
  mc_cache *c = s->cache;
  if (c->hist && ef_binning_same(c->binning, b)) return c->hist;
  double *h = calloc((size_t)ef_binning_count(b), sizeof *h);
  ef_binning *copy = NULL;
  if (!h || ef_binning_clone(NULL, &copy, b) != EF_OK) {
    free(h);
    return NULL;
  }
  const ef_events *mc = s->mc;
  double tot = 0.0;
  for (size_t e = 0; e < mc->n; e++) {
    double w = mc->weight ? mc->weight[e] : 1.0;
    int k = ef_binning_index(b, mc->vertex + (size_t)mc->space.dim * e);
    if (k >= 0) h[k] += w;
    tot += w;
  }
  for (int k = 0; k < ef_binning_count(b); k++) h[k] = tot > 0 ? h[k] / tot : 0.0;
  free(c->hist);
  ef_binning_free(c->binning);
  c->hist = h;
  c->binning = copy;
  return h;
}

static double files_bin_probability(const void *state, int model, const ef_binning *b, int k) {
  const files_state *s = state;
  if (model == 0) {
    const double *h = mc_hist(s, b);
    return h ? h[k] : NAN;
  }
  double lo[EF_SPACE_MAX_DIM], hi[EF_SPACE_MAX_DIM], p = 1.0;
  ef_binning_range(b, k, lo, hi);
  for (int a = 0; a < ef_binning_dim(b); a++) {
    const ef_bin_axis *ax = ef_binning_axis(b, a);
    p *= (hi[a] - lo[a]) / (ax->hi - ax->lo);
  }
  return p;
}

static void files_bin_efficiency(const void *state, const ef_binning *b, int k, double *eff) {
  (void)b, (void)k;
  const files_state *s = state;
  for (int t = 0; t < s->mc->space.n_cat; t++) eff[t] = NAN; /* no exact efficiency */
}

static void files_sample(const void *state, int model, ef_rng *r, double *v) {
  (void)model;
  const files_state *s = state;
  size_t e = (size_t)(ef_rng_uniform(r) * (double)s->mc->n);
  if (e >= s->mc->n) e = s->mc->n - 1;
  for (int d = 0; d < s->mc->space.dim; d++) v[d] = s->mc->vertex[(size_t)s->mc->space.dim * e + (size_t)d];
}

static int files_check_events(ef_ctx *ctx, const void *state, const ef_events *ev,
                              const char *path, const char *key) {
  const files_state *s = state;
  if (ef_space_same(&ev->space, &s->mc->space)) return EF_OK;
  return ef_error_set(ctx, EF_ERR_INPUT,
                      "%s (%s): declares %d observables (first '%s') and %d categories; the MC "
                      "file declares %d (first '%s') and %d: process files needs the same "
                      "observables and categories in both (docs/formats.md)", path, key,
                      ev->space.dim, ev->space.axis[0].name, ev->space.n_cat, s->mc->space.dim,
                      s->mc->space.axis[0].name, s->mc->space.n_cat);
}

const ef_process_ops ef_process_files = {
    .name = "files", .create = files_create, .build_detector = files_build_detector,
    .destroy = files_destroy, .n_models = 2, .default_fills = 3u,
    .model_name = files_model_name, .generate = files_generate,
    .bin_probability = files_bin_probability, .bin_efficiency = files_bin_efficiency,
    .sample = files_sample, .check_events = files_check_events};
