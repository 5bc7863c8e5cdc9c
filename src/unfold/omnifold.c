/* OmniFold on the MC's events (include/ensfold/omnifold.h). */
#include "ensfold/omnifold.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/error.h"
#include "ensfold/featmap.h"
#include "ensfold/nn_classifier.h"
#include "ensfold/rng.h"

#define STREAM_TRAIN (1u << 24) /* the unit's minibatch stream, above the classifiers' */

struct ef_omnifold_ws {
  ef_omnifold_params op;
  ef_featmap *fm;
  int D, NS, NR, IN1;       /* observables, seen categories, features, step 1's input */
  int rows;                 /* classifier rows: 2 batch (and the evaluation chunk) */
  ef_classifier *c1, *c2;   /* step 1 (detector level), step 2 (vertex level) */
  const ef_events *mc;      /* the MC the index below is of */
  size_t n_data, n_mc;
  int32_t *vbin;            /* (n_mc) vertex bin of each MC event (-1: outside) */
  int32_t *mmeas;           /* (n_mc) the measured MC events; n_mmeas of them */
  size_t n_mmeas;
  int32_t *dmeas;           /* (n_data) the measured data events with weight > 0 */
  double *dcdf;             /* (n_data) their running weight */
  double *w, *wpull;        /* (n_mc) current and pulled weights */
  size_t n_vertex;          /* vertex bins of the result */
  double *bsum;             /* (2, n_vertex) step 1b: pulled, current weight of a bin's
                             * measured events */
  int32_t *tidx;            /* (n_mc) step 2's training events (not EF_OF_KEEP: none in
                             * blind bins; EF_OF_INTERPOLATE: measured ones); n_tidx */
  size_t n_tidx;
  double *isum;             /* (iterations, n_vertex) the current weights' sum per vertex
                             * bin after each iteration (unscaled) */
  double *imeas, *iess;     /* (iterations) the MC's measured weight; effective size */
  int have;                 /* the iterations above are of the problem keyed below */
  uint64_t key[7];          /* problem_key's */
  double *cdf0, *cdf1;      /* (n_mc) running sums for drawing by weight */
  float *x, *rw, *lg;       /* (rows, IN1), (rows), (rows) classifier rows, weights, logits */
};

void ef_omnifold_ws_destroy(ef_omnifold_ws *ws) {
  if (!ws) return;
  ef_classifier_destroy(ws->c1);
  ef_classifier_destroy(ws->c2);
  ef_featmap_destroy(ws->fm);
  void *b[] = {ws->vbin, ws->mmeas, ws->dmeas, ws->dcdf, ws->w, ws->wpull, ws->bsum, ws->tidx,
               ws->cdf0, ws->cdf1, ws->x, ws->rw, ws->lg, ws->isum, ws->imeas, ws->iess};
  for (size_t i = 0; i < sizeof b / sizeof *b; i++) free(b[i]);
  free(ws);
}

static int alloc_buffers(ef_ctx *ctx, ef_omnifold_ws *ws) {
  size_t nm = ws->n_mc ? ws->n_mc : 1, nd = ws->n_data ? ws->n_data : 1, R = (size_t)ws->rows;
  ws->vbin = malloc(nm * sizeof *ws->vbin);
  ws->mmeas = malloc(nm * sizeof *ws->mmeas);
  ws->dmeas = malloc(nd * sizeof *ws->dmeas);
  ws->dcdf = malloc(nd * sizeof *ws->dcdf);
  ws->w = malloc(nm * sizeof *ws->w);
  ws->wpull = malloc(nm * sizeof *ws->wpull);
  ws->bsum = malloc(2 * (ws->n_vertex ? ws->n_vertex : 1) * sizeof *ws->bsum);
  ws->tidx = malloc(nm * sizeof *ws->tidx);
  ws->cdf0 = malloc(nm * sizeof *ws->cdf0);
  ws->cdf1 = malloc(nm * sizeof *ws->cdf1);
  ws->x = malloc(R * (size_t)ws->IN1 * sizeof *ws->x);
  ws->rw = malloc(R * sizeof *ws->rw);
  ws->lg = malloc(R * sizeof *ws->lg);
  size_t I = (size_t)ws->op.iterations;
  ws->isum = malloc(I * (ws->n_vertex ? ws->n_vertex : 1) * sizeof *ws->isum);
  ws->imeas = malloc(I * sizeof *ws->imeas);
  ws->iess = malloc(I * sizeof *ws->iess);
  if (!ws->vbin || !ws->mmeas || !ws->dmeas || !ws->dcdf || !ws->w || !ws->wpull ||
      !ws->bsum || !ws->tidx || !ws->cdf0 || !ws->cdf1 || !ws->x || !ws->rw || !ws->lg ||
      !ws->isum || !ws->imeas || !ws->iess)
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the OmniFold workspace "
                        "(%zu MC events)", ws->n_mc);
  return EF_OK;
}

int ef_omnifold_ws_create(ef_ctx *ctx, ef_omnifold_ws **out, const ef_omnifold_params *op,
                          const ef_events *mc, double beam_energy, size_t n_data,
                          size_t n_vertex) {
  *out = NULL;
  if (op->iterations < 1 || op->net.batch < 1 || !(op->clip > 1))
    return ef_error_set(ctx, EF_ERR_INPUT, "omnifold: iterations %d and batch %d must be >= 1 "
                        "and clip %g > 1", op->iterations, op->net.batch, op->clip);
  ef_omnifold_ws *ws = calloc(1, sizeof *ws);
  if (!ws) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the OmniFold workspace");
  ws->op = *op;
  ws->n_data = n_data;
  ws->n_mc = mc->n;
  ws->n_vertex = n_vertex;
  ws->rows = 2 * op->net.batch;
  int rc = ef_featmap_create(ctx, &ws->fm, &mc->space, mc, NULL, beam_energy);
  if (rc == EF_OK) {
    ws->D = ef_featmap_dim(ws->fm);
    ws->NS = ef_featmap_n_seen(ws->fm);
    ws->NR = ef_featmap_n_refine(ws->fm);
    ws->IN1 = ws->NS + ws->NR;
    rc = alloc_buffers(ctx, ws);
  }
  if (rc == EF_OK)
    rc = ef_classifier_create(ctx, &ws->c1, ws->IN1, &op->net, 0.1, 0.25, ws->rows);
  if (rc == EF_OK) rc = ef_classifier_create(ctx, &ws->c2, ws->NR, &op->net, 0.1, 0.25, ws->rows);
  if (rc != EF_OK) {
    ef_omnifold_ws_destroy(ws);
    return rc;
  }
  *out = ws;
  return EF_OK;
}

/* ---- rows ----------------------------------------------------------------- */

static float ratio(const ef_omnifold_ws *ws, float logit) {
  return ef_classifier_ratio(logit, ws->op.clip);
}

/* Step 1's row of event e of ev: its seen category's one-hot, then the
 * features of its reconstructed point. */
static void row1(const ef_omnifold_ws *ws, const ef_events *ev, size_t e, float *x) {
  float v[EF_SPACE_MAX_DIM];
  for (int d = 0; d < ws->D; d++) v[d] = (float)ev->reco[(size_t)ws->D * e + d];
  int t = ef_space_seen_index(&ev->space, ev->topology[e]);
  for (int i = 0; i < ws->NS; i++) x[i] = i == t ? 1.0f : 0.0f;
  ef_featmap_refine(ws->fm, v, x + ws->NS);
}

/* Step 2's row of MC event e: the features of its vertex. */
static void row2(const ef_omnifold_ws *ws, size_t e, float *x) {
  float v[EF_SPACE_MAX_DIM];
  for (int d = 0; d < ws->D; d++) v[d] = (float)ws->mc->vertex[(size_t)ws->D * e + d];
  ef_featmap_refine(ws->fm, v, x);
}

/* ---- the unit's setup ----------------------------------------------------- */

/* The measured data events with weight > 0 as a cumulative distribution;
 * their total weight. */
static double data_setup(ef_omnifold_ws *ws, const ef_omnifold_problem *pb, size_t *n) {
  const ef_events *d = pb->data;
  double acc = 0.0;
  *n = 0;
  for (size_t i = 0; i < d->n; i++) {
    double wi = (pb->data_weights ? pb->data_weights[i] : 1.0) * (d->weight ? d->weight[i] : 1.0);
    if (!ef_events_measured(d, i) || !(wi > 0)) continue;
    ws->dmeas[*n] = (int32_t)i;
    ws->dcdf[(*n)++] = acc += wi;
  }
  return acc;
}

/* The MC index (once per sample: vertex bins, measured events) and the
 * prior weights: the MC as it is, its file (and bootstrap) weights. */
static void mc_setup(ef_omnifold_ws *ws, const ef_omnifold_problem *pb) {
  const ef_events *mc = pb->mc;
  if (ws->mc != mc) {
    ws->n_mmeas = 0;
    for (size_t e = 0; e < mc->n; e++) {
      ws->vbin[e] = ef_binning_index(pb->vtx, mc->vertex + (size_t)ws->D * e);
      if (ef_events_measured(mc, e)) ws->mmeas[ws->n_mmeas++] = (int32_t)e;
    }
    ws->mc = mc;
  }
  for (size_t e = 0; e < mc->n; e++)
    ws->w[e] = (mc->weight ? mc->weight[e] : 1.0) * (pb->mc_weights ? pb->mc_weights[e] : 1.0);
  ws->n_tidx = 0;
  int interp = ws->op.unreconstructed == EF_OF_INTERPOLATE;
  if (ws->op.unreconstructed != EF_OF_KEEP)
    for (size_t e = 0; e < mc->n; e++)
      if ((ws->vbin[e] < 0 || pb->seen[ws->vbin[e]]) && (!interp || ef_events_measured(mc, e)))
        ws->tidx[ws->n_tidx++] = (int32_t)e;
}

/* cdf (n) = running sums of w over idx (NULL: every event). */
static void running(const double *w, const int32_t *idx, size_t n, double *cdf) {
  double acc = 0.0;
  for (size_t j = 0; j < n; j++) cdf[j] = acc += w[idx ? (size_t)idx[j] : j];
}

/* ---- the two steps -------------------------------------------------------- */

/* Step 1b (EF_OF_AVERAGE): an MC event with no reconstruction whose vertex
 * bin the detector sees gets the mean pull of that bin's measured events,
 * sum(pulled) / sum(current) over them (IBU's update of the bin); in the
 * other bins, and outside the binning, it keeps its weight. */
static void pull_unreconstructed(ef_omnifold_ws *ws, const ef_omnifold_problem *pb) {
  size_t nv = ws->n_vertex;
  memset(ws->bsum, 0, 2 * nv * sizeof *ws->bsum);
  for (size_t j = 0; j < ws->n_mmeas; j++) {
    int32_t e = ws->mmeas[j], k = ws->vbin[e];
    if (k >= 0) ws->bsum[k] += ws->wpull[e], ws->bsum[nv + (size_t)k] += ws->w[e];
  }
  for (size_t e = 0; e < pb->mc->n; e++) {
    int32_t k = ws->vbin[e];
    if (k < 0 || !pb->seen[k] || ef_events_measured(pb->mc, e) || !(ws->bsum[nv + (size_t)k] > 0))
      continue;
    ws->wpull[e] = ws->w[e] * ws->bsum[k] / ws->bsum[nv + (size_t)k];
  }
}

/* Step 1: train (data against the MC's measured events at the current
 * weights), then the pulled weights. */
static int step1(ef_ctx *ctx, ef_omnifold_ws *ws, const ef_omnifold_problem *pb, size_t n_dm,
                 ef_rng *r) {
  const int B = ws->op.net.batch, IN1 = ws->IN1;
  running(ws->w, ws->mmeas, ws->n_mmeas, ws->cdf0);
  for (int i = 0; i < 2 * B; i++) ws->rw[i] = 1.0f / B;
  double loss;
  for (int step = 0; step < ws->op.net.steps; step++) {
    for (int i = 0; i < B; i++) {
      row1(ws, pb->data, (size_t)ws->dmeas[ef_rng_pick(r, ws->dcdf, n_dm)], ws->x + (size_t)i * IN1);
      size_t e = (size_t)ws->mmeas[ef_rng_pick(r, ws->cdf0, ws->n_mmeas)];
      row1(ws, pb->mc, e, ws->x + (size_t)(B + i) * IN1);
    }
    EF_CHECK(ef_classifier_step(ctx, ws->c1, ws->x, B, 2 * B, ws->rw, step, "OmniFold step 1",
                                &loss));
  }
  memcpy(ws->wpull, ws->w, pb->mc->n * sizeof *ws->w); /* blind events keep theirs */
  for (size_t j0 = 0; j0 < ws->n_mmeas; j0 += (size_t)ws->rows) {
    int m = ws->n_mmeas - j0 < (size_t)ws->rows ? (int)(ws->n_mmeas - j0) : ws->rows;
    for (int s = 0; s < m; s++) row1(ws, pb->mc, (size_t)ws->mmeas[j0 + s], ws->x + (size_t)s * IN1);
    ef_classifier_logits(ws->c1, ws->x, m, ws->lg);
    for (int s = 0; s < m; s++) ws->wpull[ws->mmeas[j0 + s]] *= ratio(ws, ws->lg[s]);
  }
  if (ws->op.unreconstructed == EF_OF_AVERAGE) pull_unreconstructed(ws, pb);
  return EF_OK;
}

/* Step 2: train (the MC's vertices at the pulled against the current
 * weights; not EF_OF_KEEP: the events ws->tidx), then the new weights (not
 * EF_OF_KEEP: not in blind bins). */
static int step2(ef_ctx *ctx, ef_omnifold_ws *ws, const ef_omnifold_problem *pb, ef_rng *r) {
  const int B = ws->op.net.batch, NR = ws->NR, blind = ws->op.unreconstructed != EF_OF_KEEP;
  const int32_t *idx = blind ? ws->tidx : NULL; /* blind bins out of training */
  size_t n = pb->mc->n, nt = blind ? ws->n_tidx : n;
  running(ws->wpull, idx, nt, ws->cdf1);
  running(ws->w, idx, nt, ws->cdf0);
  for (int i = 0; i < 2 * B; i++) ws->rw[i] = 1.0f / B;
  double loss;
  for (int step = 0; step < ws->op.net.steps; step++) {
    for (int i = 0; i < B; i++) {
      size_t a = ef_rng_pick(r, ws->cdf1, nt), b = ef_rng_pick(r, ws->cdf0, nt);
      row2(ws, idx ? (size_t)idx[a] : a, ws->x + (size_t)i * NR);
      row2(ws, idx ? (size_t)idx[b] : b, ws->x + (size_t)(B + i) * NR);
    }
    EF_CHECK(ef_classifier_step(ctx, ws->c2, ws->x, B, 2 * B, ws->rw, step, "OmniFold step 2",
                                &loss));
  }
  for (size_t j0 = 0; j0 < n; j0 += (size_t)ws->rows) {
    int m = n - j0 < (size_t)ws->rows ? (int)(n - j0) : ws->rows;
    for (int s = 0; s < m; s++) row2(ws, j0 + s, ws->x + (size_t)s * NR);
    ef_classifier_logits(ws->c2, ws->x, m, ws->lg);
    for (int s = 0; s < m; s++) {
      int k = ws->vbin[j0 + s];
      if (!blind || k < 0 || pb->seen[k]) ws->w[j0 + s] *= ratio(ws, ws->lg[s]);
    }
  }
  return EF_OK;
}

/* After iteration it: the current weights' sum per vertex bin, the MC's
 * measured weight (the result's scale) and the weights' effective size,
 * (sum w)^2 / sum w^2 over the MC events in the vertex binning (Kish: how
 * many unweighted events they are worth; an MC that does not cover the
 * data gives a few heavy events). */
static int record(ef_ctx *ctx, ef_omnifold_ws *ws, const ef_omnifold_problem *pb, int it) {
  double *bs = ws->isum + (size_t)it * ws->n_vertex, mtotal = 0.0, s1 = 0.0, s2 = 0.0;
  memset(bs, 0, ws->n_vertex * sizeof *bs);
  for (size_t j = 0; j < ws->n_mmeas; j++) mtotal += ws->w[ws->mmeas[j]];
  for (size_t e = 0; e < pb->mc->n; e++) {
    if (ws->vbin[e] < 0) continue;
    bs[ws->vbin[e]] += ws->w[e];
    s1 += ws->w[e], s2 += ws->w[e] * ws->w[e];
  }
  if (!(mtotal > 0))
    return ef_error_set(ctx, EF_ERR_NUMERIC, "omnifold: the MC's measured weight vanished");
  ws->imeas[it] = mtotal;
  ws->iess[it] = s2 > 0 ? s1 * s1 / s2 : 0.0;
  return EF_OK;
}

/* The result after iteration it, hist (n_vertex): the bins the detector
 * sees at the scale that makes the MC's measured events, weighted, the
 * data's (dtotal); the blind bins (pb->seen 0) that hold MC weight take the
 * fill model's shape, scaled so that blind / seen is the fill's own ratio
 * (as the GAN methods' and IBU's blind bins). */
static void assemble(const ef_omnifold_ws *ws, const ef_omnifold_problem *pb, int it,
                     double dtotal, double *hist) {
  const double *bs = ws->isum + (size_t)it * ws->n_vertex;
  double s = dtotal / ws->imeas[it], seen = 0.0, fill_seen = 0.0;
  for (size_t k = 0; k < ws->n_vertex; k++) {
    int blind = pb->seen && !pb->seen[k];
    hist[k] = blind ? 0.0 : s * bs[k];
    if (!blind) seen += hist[k], fill_seen += pb->fill_prior[k];
  }
  if (!pb->seen || !(fill_seen > 0)) return;
  for (size_t k = 0; k < ws->n_vertex; k++)
    if (!pb->seen[k] && bs[k] > 0) hist[k] = seen * pb->fill_prior[k] / fill_seen;
}

/* Every MC event's final weight (n_mc) at the scale of hist, the last
 * iteration's result: its histogram is hist (a blind bin's events share
 * the bin's content in proportion to their current weights). */
static void final_weights(const ef_omnifold_ws *ws, const ef_omnifold_problem *pb,
                          double dtotal, const double *hist, double *weights) {
  int last = ws->op.iterations - 1;
  const double *bs = ws->isum + (size_t)last * ws->n_vertex;
  double s = dtotal / ws->imeas[last];
  for (size_t e = 0; e < pb->mc->n; e++) {
    int32_t k = ws->vbin[e];
    weights[e] = k >= 0 && pb->seen && !pb->seen[k] ? (bs[k] > 0 ? hist[k] * ws->w[e] / bs[k] : 0.0)
                                                    : s * ws->w[e];
  }
}

/* A 64-bit hash of n doubles (NULL: none), for the key of the iterations. */
static uint64_t hash_doubles(const double *x, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  if (!x) return h;
  for (size_t i = 0; i < n; i++) {
    uint64_t b;
    memcpy(&b, &x[i], sizeof b);
    h = (h ^ b) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  return h;
}

/* What the iterations depend on: the seed and attempt (the classifiers'
 * streams), the data (its reconstructed points, weights and bootstrap
 * weights), the MC's weights (the MC itself is the workspace's), the blind
 * bins. Not the fill model: units that differ only by the fill (common
 * random numbers: the same seed) run them once on a rank and differ in
 * their blind bins alone. */
static void problem_key(const ef_omnifold_problem *pb, uint64_t key[7]) {
  const ef_events *d = pb->data;
  key[0] = pb->seed;
  key[1] = (uint64_t)pb->attempt;
  key[2] = hash_doubles(pb->data_weights, d->n);
  key[3] = hash_doubles(pb->mc_weights, pb->mc->n);
  key[4] = hash_doubles(d->reco, d->n * (size_t)d->space.dim) ^ hash_doubles(d->weight, d->n);
  key[5] = (uint64_t)(uintptr_t)d ^ ((uint64_t)d->n << 1);
  key[6] = (uint64_t)(uintptr_t)pb->seen;
}

static int iterate(ef_ctx *ctx, const ef_omnifold_params *op, const ef_omnifold_problem *pb,
                   ef_omnifold_ws *ws, size_t n_dm) {
  ef_rng r;
  ef_rng_init(&r, pb->seed, EF_RNG_NN_TRAIN, STREAM_TRAIN + (uint32_t)pb->attempt);
  for (int it = 0; it < op->iterations; it++) {
    uint32_t unit = (uint32_t)(pb->attempt * 2 * op->iterations + 2 * it);
    ef_classifier_init(ws->c1, pb->seed, unit);
    ef_classifier_init(ws->c2, pb->seed, unit + 1);
    EF_CHECK(step1(ctx, ws, pb, n_dm, &r));
    EF_CHECK(step2(ctx, ws, pb, &r));
    EF_CHECK(record(ctx, ws, pb, it));
  }
  return EF_OK;
}

int ef_omnifold_run(ef_ctx *ctx, const ef_omnifold_params *op, const ef_omnifold_problem *pb,
                    ef_omnifold_ws *ws, double *hist, double *weights) {
  if (pb->data->n > ws->n_data || pb->mc->n != ws->n_mc || !pb->mc->vertex ||
      (size_t)ef_binning_count(pb->vtx) != ws->n_vertex ||
      (op->unreconstructed != EF_OF_KEEP && !pb->seen) ||
      !ef_space_same(&pb->mc->space, ef_featmap_space(ws->fm)) ||
      memcmp(op, &ws->op, sizeof *op) != 0)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "OmniFold workspace not made for this problem");
  size_t n_dm;
  double dtotal = data_setup(ws, pb, &n_dm);
  uint64_t key[7];
  problem_key(pb, key);
  int reuse = ws->have && ws->mc == pb->mc && memcmp(key, ws->key, sizeof key) == 0;
  if (!reuse) ws->have = 0, mc_setup(ws, pb);
  if (n_dm == 0 || ws->n_mmeas == 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "omnifold: no measured %s events",
                        n_dm == 0 ? "data" : "MC");
  if (op->unreconstructed != EF_OF_KEEP && ws->n_tidx == 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "omnifold: no MC events outside the blind bins "
                        "(efficiency below omnifold.blind_efficiency %g) for step 2",
                        op->blind_efficiency);
  if (!reuse) {
    EF_CHECK(iterate(ctx, op, pb, ws, n_dm));
    memcpy(ws->key, key, sizeof key);
    ws->have = 1;
  }
  size_t nv = ws->n_vertex;
  for (int it = 0; it < op->iterations; it++) {
    if (pb->iter_ess) pb->iter_ess[it] = ws->iess[it];
    if (pb->iter_hist) assemble(ws, pb, it, dtotal, pb->iter_hist + (size_t)it * nv);
  }
  assemble(ws, pb, op->iterations - 1, dtotal, hist);
  if (weights) final_weights(ws, pb, dtotal, hist, weights);
  return EF_OK;
}
