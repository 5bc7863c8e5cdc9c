/* Classifier refinement of a generator's samples (include/ensfold/refine.h). */
#include "ensfold/refine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/error.h"
#include "ensfold/nn_classifier.h"

#define HB 36       /* polar bands of the loss weight h (pi0: 5 deg of theta*) */
#define H_MAX 30.0  /* h is at most this multiple of its value at the mean share */

struct ef_refine {
  ef_refine_params rp;
  const ef_featmap *fm;     /* the space's network view (the caller's) */
  int D, K, NT, NR, IN1;    /* observables, categories, seen categories (T), refinement
                             * features, step 1's input: the category one-hot, then the
                             * features */
  int chunk, rows;          /* surrogate chunk; classifier rows (NT + 1) batch */
  ef_classifier *c1, *c2;   /* step 1 (detector level), step 2 (vertex level) */
  /* the training samples, up to rp.samples of them */
  float *tv;   /* (samples, D) vertices */
  float *te;   /* (samples) efficiency */
  float *tnu;  /* (samples) current weights */
  float *tw;   /* (samples) pulled weights */
  float *tp;   /* (samples, NT) P(seen category | v) */
  float *tr;   /* (samples, NT, D) a reconstructed point per seen category */
  /* scratch */
  float *feat; /* (chunk, n_feat) */
  float *prob; /* (chunk, K) */
  float *reco; /* (NT, chunk, D) */
  float *x;    /* (rows, IN1) classifier rows */
  float *w;    /* (rows) their weights */
  float *lg;   /* (rows) logits */
  float h[HB]; /* loss weight per polar band: 1 / the samples' share there */
  int bands;   /* the space has polar bands (else h = 1) */
};

void ef_refine_destroy(ef_refine *rf) {
  if (!rf) return;
  ef_classifier_destroy(rf->c1);
  ef_classifier_destroy(rf->c2);
  float *bufs[] = {rf->tv, rf->te, rf->tnu, rf->tw, rf->tp, rf->tr,
                   rf->feat, rf->prob, rf->reco, rf->x, rf->w, rf->lg};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
  free(rf);
}

int ef_refine_create(ef_ctx *ctx, ef_refine **out, const ef_refine_params *rp,
                     const ef_featmap *fm, int chunk) {
  *out = NULL;
  if (rp->samples < 1 || rp->net.batch < 1 || chunk < 1 || !(rp->clip > 1))
    return ef_error_set(ctx, EF_ERR_INPUT, "refinement: samples %d, batch %d, chunk %d must be "
                        ">= 1 and clip %g > 1", rp->samples, rp->net.batch, chunk, rp->clip);
  ef_refine *rf = calloc(1, sizeof *rf);
  if (!rf) return ef_error_set(ctx, EF_ERR_NOMEM, "refinement: out of memory");
  rf->rp = *rp;
  rf->fm = fm;
  rf->D = ef_featmap_dim(fm);
  rf->K = ef_featmap_n_cat(fm);
  rf->NT = ef_featmap_n_seen(fm);
  rf->NR = ef_featmap_n_refine(fm);
  rf->IN1 = rf->NT + rf->NR;
  rf->bands = ef_featmap_has_bands(fm);
  rf->chunk = chunk;
  rf->rows = (rf->NT + 1) * rp->net.batch;
  size_t S = (size_t)rp->samples, R = (size_t)rf->rows, C = (size_t)chunk, D = (size_t)rf->D,
         NT = (size_t)rf->NT;
  struct { float **p; size_t n; } bufs[] = {
      {&rf->tv, D * S}, {&rf->te, S}, {&rf->tnu, S}, {&rf->tw, S}, {&rf->tp, NT * S},
      {&rf->tr, D * NT * S}, {&rf->feat, (size_t)ef_featmap_n_feat(fm) * C},
      {&rf->prob, (size_t)rf->K * C}, {&rf->reco, D * NT * C}, {&rf->x, (size_t)rf->IN1 * R},
      {&rf->w, R}, {&rf->lg, R}};
  int rc = EF_OK;
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs && rc == EF_OK; i++)
    if (!(*bufs[i].p = malloc(bufs[i].n * sizeof(float))))
      rc = ef_error_set(ctx, EF_ERR_NOMEM, "refinement: out of memory (%zu samples)", S);
  if (rc == EF_OK)
    rc = ef_classifier_create(ctx, &rf->c1, rf->IN1, &rp->net, 0.1, 0.25, rf->rows);
  if (rc == EF_OK) rc = ef_classifier_create(ctx, &rf->c2, rf->NR, &rp->net, 0.1, 0.25, rf->rows);
  if (rc != EF_OK) {
    ef_refine_destroy(rf);
    return rc;
  }
  *out = rf;
  return EF_OK;
}

static float ratio(const ef_refine *rf, float logit) {
  return ef_classifier_ratio(logit, rf->rp.clip);
}

/* Fold the n1 training samples through the surrogate: tp, tr. */
static void fold(ef_refine *rf, const ef_refine_problem *pb, int n1, ef_rng *r) {
  const int D = rf->D, K = rf->K, NT = rf->NT, nf = ef_featmap_n_feat(rf->fm);
  for (int j0 = 0; j0 < n1; j0 += rf->chunk) {
    int m = n1 - j0 < rf->chunk ? n1 - j0 : rf->chunk;
    const float *v = rf->tv + (size_t)D * j0;
    for (int s = 0; s < m; s++) {
      double x[EF_SPACE_MAX_DIM];
      for (int d = 0; d < D; d++) x[d] = v[(size_t)D * s + d];
      ef_featmap_feat(rf->fm, x, rf->feat + (size_t)s * nf, NULL);
    }
    ef_surrogate_forward(pb->det, v, rf->feat, m, r, rf->prob, rf->reco);
    for (int s = 0; s < m; s++)
      for (int t = 0; t < NT; t++) {
        size_t j = (size_t)(j0 + s);
        rf->tp[NT * j + t] = rf->prob[(size_t)K * s + ef_featmap_seen(rf->fm, t)];
        memcpy(rf->tr + (size_t)D * (NT * j + t), rf->reco + (size_t)D * ((size_t)t * m + s),
               (size_t)D * sizeof(float));
      }
  }
}

/* A row's loss weight, the same for both classes (so the ratio the
 * classifier learns is unchanged): the inverse of the samples' share of its
 * polar band (pi0: of theta*), so that the rows next to the poles, where a
 * band holds 1 % of the events or less, weigh in the loss as much as any
 * other; 1 in a space without bands. */
static float hweight(const ef_refine *rf, const float *v) {
  return rf->bands ? rf->h[ef_featmap_band(rf->fm, v, HB)] : 1.0f;
}

static void set_hweights(ef_refine *rf, int n1) {
  double cnt[HB] = {0};
  for (int j = 0; j < n1; j++) cnt[ef_featmap_band(rf->fm, rf->tv + (size_t)rf->D * j, HB)] += 1.0;
  for (int b = 0; b < HB; b++) {
    double mean = (double)n1 / HB;
    rf->h[b] = (float)(mean / fmax(cnt[b], mean / H_MAX));
  }
}

static void row1(const ef_refine *rf, float *x, int t, const float *v) {
  for (int i = 0; i < rf->NT; i++) x[i] = i == t ? 1.0f : 0.0f;
  ef_featmap_refine(rf->fm, v, x + rf->NT);
}

/* Step 1's batch: B data rows (class 1, 1 / B each), then NT rows for each
 * of B drawn samples (class 0, weight nu P(T_t | v), summing to 1). */
static void batch1(ef_refine *rf, const ef_refine_problem *pb, int n1, ef_rng *r) {
  const int D = rf->D, NT = rf->NT, IN1 = rf->IN1;
  int B = rf->rp.net.batch;
  const ef_events *data = pb->data;
  for (int i = 0; i < B; i++) {
    size_t e = (size_t)pb->meas[ef_rng_pick(r, pb->cdf, pb->n_meas)];
    float v[EF_SPACE_MAX_DIM];
    for (int d = 0; d < D; d++) v[d] = (float)data->reco[(size_t)D * e + d];
    row1(rf, rf->x + (size_t)i * IN1, ef_space_seen_index(&data->space, data->topology[e]), v);
    rf->w[i] = hweight(rf, v) / B;
  }
  double sum = 0.0;
  for (int i = 0; i < B; i++) {
    size_t j = ef_rng_below(r, (uint32_t)n1);
    for (int t = 0; t < NT; t++) {
      size_t k = (size_t)B + (size_t)NT * i + t;
      const float *p = rf->tr + (size_t)D * (NT * j + t);
      row1(rf, rf->x + k * IN1, t, p);
      rf->w[k] = rf->tnu[j] * rf->tp[NT * j + t] * hweight(rf, p);
      sum += rf->w[k];
    }
  }
  /* the fake rows sum to what the data rows' h sums to on average: 1 */
  for (int k = B; k < rf->rows; k++) rf->w[k] = sum > 0 ? (float)(rf->w[k] / sum) : 0.0f;
}

/* Step 1: train, then the pulled weights tw of the n1 samples. */
static int step1(ef_ctx *ctx, ef_refine *rf, const ef_refine_problem *pb, int n1, ef_rng *r) {
  const int D = rf->D, NT = rf->NT, IN1 = rf->IN1;
  double loss;
  for (int step = 0; step < rf->rp.net.steps; step++) {
    batch1(rf, pb, n1, r);
    EF_CHECK(ef_classifier_step(ctx, rf->c1, rf->x, rf->rp.net.batch, rf->rows, rf->w, step,
                                "refinement step 1", &loss));
  }
  int per = rf->rows / NT; /* samples per evaluation */
  for (int j0 = 0; j0 < n1; j0 += per) {
    int m = n1 - j0 < per ? n1 - j0 : per;
    for (int s = 0; s < m; s++)
      for (int t = 0; t < NT; t++) {
        const float *p = rf->tr + (size_t)D * (NT * (size_t)(j0 + s) + t);
        row1(rf, rf->x + ((size_t)NT * s + t) * IN1, t, p);
      }
    ef_classifier_logits(rf->c1, rf->x, NT * m, rf->lg);
    for (int s = 0; s < m; s++) {
      size_t j = (size_t)(j0 + s);
      double num = 0.0, den = 0.0;
      for (int t = 0; t < NT; t++) {
        num += rf->tp[NT * j + t] * ratio(rf, rf->lg[NT * s + t]);
        den += rf->tp[NT * j + t];
      }
      rf->tw[j] = den > 1e-6 ? (float)(rf->tnu[j] * num / den) : rf->tnu[j];
    }
  }
  return EF_OK;
}

/* Step 2: train on the samples with pulled (class 1) against current
 * (class 0) weights, both times the efficiency; then nu (n) *= the ratio. */
static int step2(ef_ctx *ctx, ef_refine *rf, const float *v, int n, int n1, ef_rng *r,
                 float *nu) {
  const int D = rf->D, NR = rf->NR;
  int B = rf->rp.net.batch;
  double loss;
  for (int step = 0; step < rf->rp.net.steps; step++) {
    double s1 = 0.0, s0 = 0.0;
    for (int i = 0; i < B; i++) {
      size_t j = ef_rng_below(r, (uint32_t)n1);
      ef_featmap_refine(rf->fm, rf->tv + (size_t)D * j, rf->x + (size_t)i * NR);
      memcpy(rf->x + (size_t)(B + i) * NR, rf->x + (size_t)i * NR, (size_t)NR * sizeof(float));
      float h = hweight(rf, rf->tv + (size_t)D * j);
      s1 += rf->w[i] = h * rf->te[j] * rf->tw[j];
      s0 += rf->w[B + i] = h * rf->te[j] * rf->tnu[j];
    }
    for (int i = 0; i < B; i++) {
      rf->w[i] = s1 > 0 ? (float)(rf->w[i] / s1) : 0.0f;
      rf->w[B + i] = s0 > 0 ? (float)(rf->w[B + i] / s0) : 0.0f;
    }
    EF_CHECK(ef_classifier_step(ctx, rf->c2, rf->x, B, 2 * B, rf->w, step,
                                "refinement step 2", &loss));
  }
  for (int i0 = 0; i0 < n; i0 += rf->rows) {
    int m = n - i0 < rf->rows ? n - i0 : rf->rows;
    for (int s = 0; s < m; s++)
      ef_featmap_refine(rf->fm, v + (size_t)D * (size_t)(i0 + s), rf->x + (size_t)s * NR);
    ef_classifier_logits(rf->c2, rf->x, m, rf->lg);
    for (int s = 0; s < m; s++) nu[i0 + s] *= ratio(rf, rf->lg[s]);
  }
  return EF_OK;
}

int ef_refine_run(ef_ctx *ctx, ef_refine *rf, const ef_refine_problem *pb, const float *v,
                  const float *p0, int n, ef_rng *r, float *nu) {
  if (n < 1 || pb->n_meas < 1)
    return ef_error_set(ctx, EF_ERR_INPUT, "refinement: %d samples, %zu data events", n,
                        pb->n_meas);
  int n1 = n < rf->rp.samples ? n : rf->rp.samples;
  const int D = rf->D;
  for (int j = 0; j < n1; j++) { /* spread over the pool (its snapshots come in order) */
    size_t i = (size_t)((long long)j * n / n1);
    memcpy(rf->tv + (size_t)D * j, v + (size_t)D * i, (size_t)D * sizeof(float));
    rf->te[j] = 1.0f - p0[i];
  }
  for (int i = 0; i < n; i++) nu[i] = 1.0f;
  fold(rf, pb, n1, r);
  set_hweights(rf, n1);
  for (int it = 0; it < rf->rp.iterations; it++) {
    for (int j = 0; j < n1; j++) rf->tnu[j] = nu[(long long)j * n / n1];
    ef_classifier_init(rf->c1, pb->seed, pb->unit);
    ef_classifier_init(rf->c2, pb->seed, pb->unit + 1);
    EF_CHECK(step1(ctx, rf, pb, n1, r));
    EF_CHECK(step2(ctx, rf, v, n, n1, r, nu));
  }
  return EF_OK;
}
