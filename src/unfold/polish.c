/* The polish of a generator's answer through the MC's own response
 * (include/ensfold/polish.h). */
#include "ensfold/polish.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/error.h"

struct ef_polish {
  ef_omnifold_params op; /* OmniFold's settings, iterations the polish's */
  int nv;                /* vertex bins */
  size_t n_mc;
  ef_mcweight *mw;       /* the MC reweighted to the answer */
  ef_omnifold_ws *of;
  double *w;             /* (n_mc) the reweighted MC: multiplicity x file weight x ratio */
  double *prior;         /* (n_mc) OmniFold's extra weights: w over the file weight */
  double *flat;          /* (nv) a flat fill shape (OmniFold's blind bins; unused here) */
  double *hist;          /* (nv) OmniFold's answer */
  double *pbin;          /* (nv) the prior's sum per bin */
  int *bin;              /* (n_mc) each MC event's vertex bin, -1 outside */
  unsigned char *seen;   /* (nv) 1 - blind */
};

void ef_polish_destroy(ef_polish *pl) {
  if (!pl) return;
  ef_mcweight_destroy(pl->mw);
  ef_omnifold_ws_destroy(pl->of);
  free(pl->w);
  free(pl->prior);
  free(pl->flat);
  free(pl->hist);
  free(pl->pbin);
  free(pl->seen);
  free(pl->bin);
  free(pl);
}

int ef_polish_create(ef_ctx *ctx, ef_polish **out, const ef_omnifold_params *op,
                     const ef_refine_params *rw, const ef_featmap *fm, const ef_events *mc,
                     double beam_energy, size_t n_data, int n_vertex) {
  *out = NULL;
  if (op->iterations < 1 || n_vertex < 1 || !mc->vertex)
    return ef_error_set(ctx, EF_ERR_INPUT, "polish: %d iterations, %d vertex bins, MC %s",
                        op->iterations, n_vertex, mc->vertex ? "with vertices" : "without "
                        "vertices");
  ef_polish *pl = calloc(1, sizeof *pl);
  if (!pl) return ef_error_set(ctx, EF_ERR_NOMEM, "polish: out of memory");
  pl->op = *op;
  pl->nv = n_vertex;
  pl->n_mc = mc->n;
  size_t nm = mc->n ? mc->n : 1, nv = (size_t)n_vertex;
  int rc = ef_mcweight_create(ctx, &pl->mw, rw, fm);
  if (rc == EF_OK)
    rc = ef_omnifold_ws_create(ctx, &pl->of, op, mc, beam_energy, n_data, nv);
  if (rc == EF_OK) {
    pl->w = malloc(nm * sizeof(double));
    pl->prior = malloc(nm * sizeof(double));
    pl->flat = malloc(nv * sizeof(double));
    pl->hist = malloc(nv * sizeof(double));
    pl->pbin = malloc(nv * sizeof(double));
    pl->seen = malloc(nv);
    pl->bin = malloc(nm * sizeof(int));
    if (!pl->w || !pl->prior || !pl->flat || !pl->hist || !pl->pbin || !pl->seen || !pl->bin)
      rc = ef_error_set(ctx, EF_ERR_NOMEM, "polish: out of memory (%zu MC events)", mc->n);
  }
  if (rc != EF_OK) {
    ef_polish_destroy(pl);
    return rc;
  }
  for (size_t k = 0; k < nv; k++) pl->flat[k] = 1.0 / (double)nv;
  *out = pl;
  return EF_OK;
}

/* Does bin k take a factor: seen, with prior, OmniFold's answer finite? */
static int corrected(const ef_polish *pl, int k) {
  return pl->seen[k] && pl->pbin[k] > 0 && isfinite(pl->hist[k]);
}

/* corr from OmniFold's answer (pl->hist) over its prior (pl->pbin) in the
 * corrected bins; scaled to keep the answer's folded sum there. */
static int factors(ef_ctx *ctx, const ef_polish *pl, const double *esum, double *corr) {
  double before = 0.0, after = 0.0;
  for (int k = 0; k < pl->nv; k++) {
    corr[k] = corrected(pl, k) ? pl->hist[k] / pl->pbin[k] : 1.0;
    if (!corrected(pl, k)) continue;
    before += esum[k];
    after += esum[k] * corr[k];
  }
  if (!(before > 0 && after > 0))
    return ef_error_set(ctx, EF_ERR_NUMERIC, "polish: no seen vertex bin holds both the "
                        "answer and the MC (folded sums %g, %g)", before, after);
  for (int k = 0; k < pl->nv; k++)
    if (corrected(pl, k)) corr[k] *= before / after;
  return EF_OK;
}

/* The reweighted MC's sum per bin into pbin, each event's bin into bin
 * (-1 outside). */
static void bin_sums(ef_polish *pl, const ef_polish_problem *pb) {
  const ef_events *mc = pb->mc;
  const int D = mc->space.dim;
  memset(pl->pbin, 0, (size_t)pl->nv * sizeof(double));
  for (size_t e = 0; e < mc->n; e++) {
    pl->bin[e] = ef_binning_index(pb->vtx, mc->vertex + (size_t)D * e);
    if (pl->bin[e] >= 0) pl->pbin[pl->bin[e]] += pl->w[e];
  }
}

/* The reweighted MC scaled in each vertex bin to the answer's content
 * there (the classifier's ratio keeps the shape inside a bin and carries
 * the events outside the binning; a bin whose events all weigh 0, as a
 * bootstrap replica's multiplicities can make them, stays empty);
 * OmniFold's extra weights, prior: w over the file weight (OmniFold
 * multiplies by it). */
static void to_answer(ef_polish *pl, const ef_polish_problem *pb) {
  const ef_events *mc = pb->mc;
  bin_sums(pl, pb);
  double sa = 0.0, sp = 0.0;
  for (int k = 0; k < pl->nv; k++)
    if (pl->pbin[k] > 0) sa += pb->answer[k], sp += pl->pbin[k];
  for (size_t e = 0; e < mc->n; e++) {
    int k = pl->bin[e];
    if (k >= 0 && sa > 0 && pl->pbin[k] > 0) pl->w[e] *= pb->answer[k] / sa / (pl->pbin[k] / sp);
    double fw = mc->weight ? mc->weight[e] : 1.0;
    pl->prior[e] = fw > 0 ? pl->w[e] / fw : 0.0;
  }
  for (int k = 0; k < pl->nv; k++)
    if (pl->pbin[k] > 0 && sa > 0) pl->pbin[k] = pb->answer[k] / sa * sp;
}

int ef_polish_run(ef_ctx *ctx, ef_polish *pl, const ef_polish_problem *pb, ef_rng *r,
                  double *corr) {
  const ef_events *mc = pb->mc;
  if (mc->n != pl->n_mc || ef_binning_count(pb->vtx) != pl->nv)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "polish: workspace not made for this problem");
  EF_CHECK(ef_mcweight_fit(ctx, pl->mw, pb->draw, pb->arg, mc, pb->mc_weights, pb->seed,
                           pb->unit, r, pl->w));
  to_answer(pl, pb);
  for (int k = 0; k < pl->nv; k++) pl->seen[k] = !pb->blind[k];
  ef_omnifold_problem op = {.data = pb->data, .data_weights = pb->data_weights, .mc = mc,
                            .mc_weights = pl->prior, .vtx = pb->vtx, .fill_prior = pl->flat,
                            .seen = pl->seen, .seed = pb->seed, .attempt = pb->attempt};
  EF_CHECK(ef_omnifold_run(ctx, &pl->op, &op, pl->of, pl->hist, NULL));
  return factors(ctx, pl, pb->esum, corr);
}

