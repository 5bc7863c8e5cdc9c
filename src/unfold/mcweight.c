/* The MC reweighted to a generator's answer (include/ensfold/mcweight.h). */
#include "ensfold/mcweight.h"

#include <stdlib.h>

#include "ensfold/error.h"
#include "ensfold/nn_classifier.h"

struct ef_mcweight {
  ef_refine_params rp;  /* the classifier's settings (net) and the ratio's clip */
  const ef_featmap *fm; /* the caller's */
  int D, NR, B;         /* observables, input features, rows per class and step */
  ef_classifier *c;
  float *x;  /* (2 B, NR) rows: B samples, then B MC vertices */
  float *w;  /* (2 B) row weights */
  float *lg; /* (2 B) logits */
  float v[EF_SPACE_MAX_DIM];
};

void ef_mcweight_destroy(ef_mcweight *mw) {
  if (!mw) return;
  ef_classifier_destroy(mw->c);
  free(mw->x);
  free(mw->w);
  free(mw->lg);
  free(mw);
}

int ef_mcweight_create(ef_ctx *ctx, ef_mcweight **out, const ef_refine_params *rp,
                       const ef_featmap *fm) {
  *out = NULL;
  if (rp->net.batch < 1 || !(rp->clip > 1))
    return ef_error_set(ctx, EF_ERR_INPUT, "MC reweighting: batch %d must be >= 1 and clip %g "
                        "> 1", rp->net.batch, rp->clip);
  ef_mcweight *mw = calloc(1, sizeof *mw);
  if (!mw) return ef_error_set(ctx, EF_ERR_NOMEM, "MC reweighting: out of memory");
  mw->rp = *rp;
  mw->fm = fm;
  mw->D = ef_featmap_dim(fm);
  mw->NR = ef_featmap_n_refine(fm);
  mw->B = rp->net.batch;
  size_t rows = 2 * (size_t)mw->B;
  mw->x = malloc(rows * (size_t)mw->NR * sizeof(float));
  mw->w = malloc(rows * sizeof(float));
  mw->lg = malloc(rows * sizeof(float));
  int rc = mw->x && mw->w && mw->lg
               ? ef_classifier_create(ctx, &mw->c, mw->NR, &rp->net, 0.1, 0.25, (int)rows)
               : ef_error_set(ctx, EF_ERR_NOMEM, "MC reweighting: out of memory");
  if (rc != EF_OK) {
    ef_mcweight_destroy(mw);
    return rc;
  }
  *out = mw;
  return EF_OK;
}

/* MC event e's vertex as the classifier's input row x (NR). */
static void mc_row(ef_mcweight *mw, const ef_events *mc, size_t e, float *x) {
  for (int d = 0; d < mw->D; d++) mw->v[d] = (float)mc->vertex[(size_t)mw->D * e + d];
  ef_featmap_refine(mw->fm, mw->v, x);
}

/* MC event e's weight: its multiplicity times its file weight. */
static double event_weight(const ef_events *mc, const double *mult, size_t e) {
  return (mult ? mult[e] : 1.0) * (mc->weight ? mc->weight[e] : 1.0);
}

/* One step's rows: B samples (1 / B each), B MC events drawn uniformly,
 * each weighing its multiplicity over the drawn ones' sum. */
static void batch(ef_mcweight *mw, ef_mcweight_draw draw, void *arg, const ef_events *mc,
                  const double *mult, ef_rng *r) {
  const int B = mw->B, NR = mw->NR;
  double msum = 0.0;
  for (int i = 0; i < B; i++) {
    draw(arg, r, mw->v);
    ef_featmap_refine(mw->fm, mw->v, mw->x + (size_t)i * NR);
    mw->w[i] = 1.0f / B;
  }
  for (int i = 0; i < B; i++) {
    size_t e = ef_rng_below(r, (uint32_t)mc->n);
    mc_row(mw, mc, e, mw->x + (size_t)(B + i) * NR);
    mw->w[B + i] = (float)event_weight(mc, mult, e);
    msum += mw->w[B + i];
  }
  for (int i = 0; i < B; i++) mw->w[B + i] = msum > 0 ? (float)(mw->w[B + i] / msum) : 0.0f;
}

int ef_mcweight_fit(ef_ctx *ctx, ef_mcweight *mw, ef_mcweight_draw draw, void *arg,
                    const ef_events *mc, const double *mult, uint64_t seed, uint32_t unit,
                    ef_rng *r, double *w) {
  if (mc->n == 0 || !mc->vertex)
    return ef_error_set(ctx, EF_ERR_INPUT, "MC reweighting: the MC has no vertices");
  ef_classifier_init(mw->c, seed, unit);
  for (int step = 0; step < mw->rp.net.steps; step++) {
    double loss;
    batch(mw, draw, arg, mc, mult, r);
    EF_CHECK(ef_classifier_step(ctx, mw->c, mw->x, mw->B, 2 * mw->B, mw->w, step,
                                "the MC reweighting classifier", &loss));
  }
  size_t rows = 2 * (size_t)mw->B;
  for (size_t e0 = 0; e0 < mc->n; e0 += rows) {
    int m = mc->n - e0 < rows ? (int)(mc->n - e0) : (int)rows;
    for (int s = 0; s < m; s++) mc_row(mw, mc, e0 + (size_t)s, mw->x + (size_t)s * mw->NR);
    ef_classifier_logits(mw->c, mw->x, m, mw->lg);
    for (int s = 0; s < m; s++) {
      size_t e = e0 + (size_t)s;
      w[e] = event_weight(mc, mult, e) * ef_classifier_ratio(mw->lg[s], mw->rp.clip);
    }
  }
  return EF_OK;
}
