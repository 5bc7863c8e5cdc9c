/* Detector surrogates: the interface, the part the implementations share,
 * and the conditional smearing GAN both train (include/ensfold/surrogate.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/nn_loss.h"
#include "surrogate_impl.h"


/* Room for an MC bootstrap replica of n events: the sum of n Poisson(1)
 * multiplicities stays below n + 8 sqrt(n) + 64 but for a chance under
 * 1e-15 (a larger sum is refused with its number). */
static size_t pool_cap(size_t n) { return n + (size_t)(8.0 * sqrt((double)n)) + 64; }

int ef_surrogate_create(ef_ctx *ctx, ef_surrogate **out, ef_surrogate_kind kind,
                        const ef_surrogate_params *sp, const ef_featmap *fm, int max_rows,
                        size_t n_mc) {
  *out = NULL;
  /* the buffers also hold the surrogate's own training batches */
  int rows = max_rows;
  if (sp->efficiency.batch > rows) rows = sp->efficiency.batch;
  if (sp->smearing.batch > rows) rows = sp->smearing.batch;
  if (kind == EF_SURROGATE_TOPO) return sg_topo_create(ctx, out, sp, fm, rows, n_mc);
  if (kind == EF_SURROGATE_MIXED) return sg_mixed_create(ctx, out, sp, fm, rows, n_mc);
  return ef_error_set(ctx, EF_ERR_INTERNAL, "detector surrogate: unknown kind %d", (int)kind);
}

void ef_surrogate_destroy(ef_surrogate *s) {
  if (!s) return;
  s->ops->destroy(s); /* frees s's own part, then calls sg_base_free and free(s) */
}

/* The shared part's plain buffers into out (room for 19); their number.
 * One list for the allocation check and for freeing. */
static size_t base_buffers(const ef_surrogate *s, void **out) {
  void *b[] = {s->order, s->xin,  s->xd,  s->ddx,  s->dlogit, s->dout,  s->tgt,
               s->lg,    s->dlg,  s->w,   s->pavg, s->idx,    s->arow,  s->mv,
               s->mfeat, s->mprob, s->full, s->dreco, s->pool,  s->jac};
  memcpy(out, b, sizeof b);
  return sizeof b / sizeof b[0];
}

int sg_base_init(ef_ctx *ctx, ef_surrogate *s, const sg_ops *ops, const ef_surrogate_params *sp,
                 const ef_featmap *fm, int rows, size_t n_mc, size_t n_avg) {
  s->ops = ops;
  s->p = *sp;
  s->fm = fm;
  s->D = ef_featmap_dim(fm);
  s->K = ef_featmap_n_cat(fm);
  s->ns = ef_featmap_n_seen(fm);
  s->nf = ef_featmap_n_feat(fm);
  s->P = sg_head_width(sp);
  s->max_out = s->D * s->ns * s->P + s->K;
  s->k = sp->noise;
  s->nin = s->nf + s->k;
  s->rows = rows;
  s->n_mc = n_mc;
  s->cap = pool_cap(n_mc);
  s->key = INT64_MIN;
  size_t r = (size_t)rows, nin = (size_t)s->nin;
  s->crit_w = s->nf + s->D + (sp->per_topology ? s->ns : 0);
  EF_CHECK(ef_mlp_create_plain(ctx, &s->critic, s->crit_w, sp->smearing.hidden,
                               sp->smearing.layers, 1, 2 * rows));
  EF_CHECK(ef_adam_create_lr(ctx, &s->adam_critic, ef_mlp_n_params(s->critic), sp->smearing.lr,
                             0.5f));
  s->pool = malloc(s->cap * sizeof *s->pool);
  s->order = malloc(s->cap * sizeof *s->order);
  s->xin = malloc(r * nin * sizeof(float));
  s->xd = malloc(2 * r * (size_t)s->crit_w * sizeof(float));
  s->ddx = malloc(r * (size_t)s->crit_w * sizeof(float));
  s->dlogit = malloc(2 * r * sizeof(float));
  size_t D = (size_t)s->D, K = (size_t)s->K;
  s->dout = malloc(r * (size_t)s->max_out * sizeof(float));
  s->tgt = malloc(r * K * sizeof(float));
  s->lg = malloc(r * K * sizeof(float));
  s->dlg = malloc(r * K * sizeof(float));
  s->w = malloc(r * sizeof(float));
  s->pavg = malloc((n_avg ? n_avg : 1) * sizeof(float));
  s->idx = malloc(r * sizeof(int32_t));
  s->arow = malloc(r * sizeof(int32_t));
  s->mv = malloc(r * D * sizeof(float));
  s->mfeat = malloc(r * (size_t)s->nf * sizeof(float));
  s->mprob = malloc(r * K * sizeof(float));
  s->full = malloc(s->cap * sizeof *s->full);
  s->dreco = malloc((size_t)s->ns * r * D * sizeof(float));
  s->jac = s->P > 1 ? malloc((size_t)s->ns * r * D * (size_t)s->P * sizeof(float)) : NULL;
  void *bufs[20]; /* jac, the last, is NULL without the mixture head */
  for (size_t i = 0, n = base_buffers(s, bufs) - (s->P == 1); i < n; i++)
    if (!bufs[i]) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a detector surrogate");
  return EF_OK;
}

void sg_base_free(ef_surrogate *s) {
  ef_mlp_destroy(s->critic);
  ef_adam_destroy(s->adam_critic);
  void *bufs[20];
  for (size_t i = 0, n = base_buffers(s, bufs); i < n; i++) free(bufs[i]);
}

/* An MC event's group: 0 not measured, 1 + j measured in seen category j. */
static int mc_group(const ef_events *mc, size_t i) {
  return ef_events_measured(mc, i) ? 1 + ef_space_seen_index(&mc->space, mc->topology[i]) : 0;
}

/* The lost observables (surrogate_impl.h) of the indexed MC's measured
 * events, and the events of the categories that lose nothing. */
static void find_lost(ef_surrogate *s, const ef_events *mc) {
  const int D = s->D;
  unsigned char lost[EF_SPACE_MAX_CAT * EF_SPACE_MAX_DIM];
  double val[EF_SPACE_MAX_CAT * EF_SPACE_MAX_DIM];
  ef_events_lost(mc, s->order + s->off[1], s->off[1 + s->ns] - s->off[1], lost, val);
  int keep[EF_SPACE_MAX_CAT], n_keep = 0;
  s->any_lost = 0;
  for (int c = 0; c < mc->space.n_cat; c++) {
    int j = ef_space_seen_index(&mc->space, c), loses = 0;
    if (j < 0) continue;
    for (int a = 0; a < D; a++) {
      s->lost[j * D + a] = lost[c * D + a];
      s->lost_val[j * D + a] = (float)val[c * D + a];
      loses |= lost[c * D + a];
    }
    s->any_lost |= loses;
    s->skip[j] = (unsigned char)loses;
    if (!loses) keep[n_keep++] = j;
  }
  if (n_keep == 0) /* every category loses something: all of them */
    for (int j = 0; j < s->ns; j++) keep[n_keep++] = j, s->skip[j] = 0;
  s->n_full = 0;
  for (int q = 0; q < n_keep; q++) {
    size_t n;
    const int32_t *idx = sg_group(s, 1 + keep[q], &n);
    memcpy(s->full + s->n_full, idx, n * sizeof *idx);
    s->n_full += n;
  }
}

/* The pool a training draws from (event i w_i times; once each without
 * weights) and its grouping by mc_group, ascending within a group. */
static int mc_index(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, const double *w) {
  size_t n = 0;
  for (size_t i = 0; i < mc->n; i++) {
    double m = w ? w[i] : 1.0;
    if (!(m >= 0.0 && m == floor(m)))
      return ef_error_set(ctx, EF_ERR_INTERNAL, "detector surrogate: MC event %zu has "
                          "multiplicity %g (a non-negative integer expected)", i, m);
    if (m > (double)(s->cap - n))
      return ef_error_set(ctx, EF_ERR_INTERNAL, "detector surrogate: the MC's multiplicities "
                          "add up to more than its room (%zu for %zu events)", s->cap, mc->n);
    for (size_t k = 0; k < (size_t)m; k++) s->pool[n++] = (int32_t)i;
  }
  if (n == 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "detector surrogate: the MC replica has no events "
                        "(every multiplicity 0)");
  s->n_pool = n;
  int G = 1 + s->ns;
  size_t count[EF_SPACE_MAX_CAT + 1] = {0}, pos[EF_SPACE_MAX_CAT + 1];
  for (size_t q = 0; q < n; q++) count[mc_group(mc, (size_t)s->pool[q])]++;
  s->off[0] = 0;
  for (int g = 0; g < G; g++) s->off[g + 1] = s->off[g] + count[g];
  for (int g = 0; g < G; g++) pos[g] = s->off[g];
  for (size_t q = 0; q < n; q++) s->order[pos[mc_group(mc, (size_t)s->pool[q])]++] = s->pool[q];
  find_lost(s, mc);
  return EF_OK;
}

int ef_surrogate_train(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, const double *mc_weights,
                       uint64_t seed, uint32_t stream, int64_t key) {
  if (!mc->vertex || !mc->prob)
    return ef_error_set(ctx, EF_ERR_INPUT, "detector surrogate: the MC needs vertex and prob");
  if (mc->n == 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "detector surrogate: the MC has no events");
  if (mc->n > s->n_mc)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "detector surrogate: made for %zu MC events, "
                        "given %zu", s->n_mc, mc->n);
  if (!ef_space_same(&mc->space, ef_featmap_space(s->fm)))
    return ef_error_set(ctx, EF_ERR_INTERNAL, "detector surrogate: the MC's event space is not "
                        "the one it was made for");
  if (s->have && s->key == key && key >= 0) return EF_OK;
  s->have = 0;
  EF_CHECK(mc_index(ctx, s, mc, mc_weights));
  EF_CHECK(s->ops->train(ctx, s, mc, seed, stream));
  s->have = 1;
  s->key = key;
  return EF_OK;
}

void ef_surrogate_forward(ef_surrogate *s, const float *v, const float *feat, int n, ef_rng *r,
                          float *prob, float *reco) {
  s->ops->forward(s, v, feat, n, r, prob, reco);
  if (!reco || !s->any_lost) return;
  const int D = s->D;
  for (int j = 0; j < s->ns; j++) /* a lost observable is the category's constant */
    for (int a = 0; a < D; a++)
      if (s->lost[j * D + a])
        for (int i = 0; i < n; i++) reco[((size_t)j * n + i) * D + a] = s->lost_val[j * D + a];
}

void ef_surrogate_backward(ef_surrogate *s, int n, const float *dreco, float *dv, float *dfeat) {
  if (s->any_lost) { /* a constant has no gradient */
    const int D = s->D;
    memcpy(s->dreco, dreco, (size_t)s->ns * n * D * sizeof *dreco);
    for (int j = 0; j < s->ns; j++)
      for (int a = 0; a < D; a++)
        if (s->lost[j * D + a])
          for (int i = 0; i < n; i++) s->dreco[((size_t)j * n + i) * D + a] = 0.0f;
    dreco = s->dreco;
  }
  s->ops->backward(s, n, dreco, dv, dfeat);
}

void ef_surrogate_map(ef_surrogate *s, const ef_binning *vtx, ef_rng *r, int chunk,
                      double *eff) {
  const int D = s->D, K = s->K, side = ef_binning_map_side(D); /* binning.h */
  int nv = ef_binning_count(vtx), per = 1, draws = s->ops->map_draws;
  for (int j = 0; j < D; j++) per *= side;
  double norm = (double)per * draws; /* grid points x draws per bin */
  if (chunk > s->rows) chunk = s->rows;
  memset(eff, 0, (size_t)K * (size_t)nv * sizeof *eff);
  /* points in order (bin, grid point), `chunk` at a time */
  int total = nv * per, done = 0;
  while (done < total) {
    int n = total - done < chunk ? total - done : chunk;
    for (int q = 0; q < n; q++) {
      int p = done + q;
      double x[EF_SPACE_MAX_DIM];
      ef_binning_map_point(vtx, p / per, p % per, side, x);
      for (int j = 0; j < D; j++) s->mv[(size_t)D * q + j] = (float)x[j];
      ef_featmap_feat(s->fm, x, s->mfeat + (size_t)q * s->nf, NULL);
    }
    for (int d = 0; d < draws; d++) {
      ef_surrogate_forward(s, s->mv, s->mfeat, n, r, s->mprob, NULL);
      for (int q = 0; q < n; q++) {
        int kb = (done + q) / per;
        for (int t = 0; t < K; t++) eff[(size_t)t * nv + kb] += s->mprob[K * q + t] / norm;
      }
    }
    done += n;
  }
}

/* ---- helpers ------------------------------------------------------------ */

/* Residual of event i's reco against its vertex: r (D). */
void sg_residual(const ef_surrogate *s, const ef_events *mc, size_t i, double *r) {
  size_t D = (size_t)s->D;
  ef_featmap_residual(s->fm, mc->reco + D * i, mc->vertex + D * i, r);
}

void sg_residual_scale(const ef_surrogate *s, const ef_events *mc, const int32_t *idx, size_t n,
                       float *sig) {
  double acc[EF_SPACE_MAX_DIM] = {0}, r[EF_SPACE_MAX_DIM];
  for (size_t k = 0; k < n; k++) {
    sg_residual(s, mc, (size_t)idx[k], r);
    for (int j = 0; j < s->D; j++) acc[j] += r[j] * r[j];
  }
  for (int j = 0; j < s->D; j++)
    sig[j] = (float)fmax(n ? sqrt(acc[j] / (double)n) : 0.0, 1e-4);
}

void sg_softmax(const float *x, int K, float *p) {
  float mx = x[0];
  for (int j = 1; j < K; j++) mx = x[j] > mx ? x[j] : mx;
  float z = 0;
  for (int j = 0; j < K; j++) z += (p[j] = expf(x[j] - mx));
  for (int j = 0; j < K; j++) p[j] /= z;
}

/* The efficiency classifier: softmax over the K categories trained with soft targets
 * (the MC's exact probability vectors) on features of the MC vertices. */
int sg_train_classifier(ef_ctx *ctx, ef_surrogate *s, ef_mlp *m, ef_adam *adam,
                        const ef_events *mc, uint64_t seed, uint32_t stream) {
  const ef_net_params *np = &s->p.efficiency;
  int first = ef_mlp_average_first(s->p.efficiency_average, np->steps), B = np->batch;
  ef_mlp_init(m, seed, stream);
  ef_adam_reset(adam);
  ef_rng r;
  ef_rng_init(&r, seed, EF_RNG_NN_TRAIN, stream);
  const int D = s->D, K = s->K, nf = s->nf;
  float *feat = s->mfeat; /* (B, nf) */
  for (int step = 0; step < np->steps; step++) {
    for (int i = 0; i < B; i++) {
      size_t e = (size_t)s->pool[ef_rng_below(&r, (uint32_t)s->n_pool)];
      ef_featmap_feat(s->fm, mc->vertex + (size_t)D * e, feat + (size_t)i * nf, NULL);
      for (int t = 0; t < K; t++) s->tgt[K * i + t] = mc->prob[(size_t)K * e + t];
      s->w[i] = mc->weight ? (float)mc->weight[e] : 1.0f;
    }
    const float *lg = ef_mlp_forward(m, feat, B);
    float loss = ef_loss_softmax_xent(B, K, lg, s->tgt, mc->weight ? s->w : NULL, s->dlg);
    EF_CHECK(ef_loss_check(ctx, loss, "efficiency classifier", step));
    ef_mlp_zero_grad(m);
    ef_mlp_backward(m, s->dlg, NULL, EF_MLP_GRAD_PARAMS);
    ef_adam_set_lr(adam, ef_adam_lr_linear(np->lr, 0.05, step, np->steps));
    ef_adam_step(adam, ef_mlp_params(m), ef_mlp_grads(m));
    ef_mlp_average_step(m, s->pavg, step, first, np->steps);
  }
  return EF_OK;
}

/* ---- the conditional smearing GAN ----------------------------------------
 *
 * g->net (nf + k -> outw) maps (features(v), noise) to the residual
 * (reco - v) / sig in its outputs 0..D-1 (or one such block per seen
 * category); the critic sees (features(v), [the category's one-hot,]
 * residual / sig). Batches are drawn from the MC events g->idx; only
 * measured ones enter the adversarial part (for a residual shared by every
 * category, not those of a category that loses observables), and a lost
 * observable's residual is 0 for the critic, real and fake alike (a
 * constant's "residual" -v is no smearing and nothing to learn). With a
 * P head (the one-trunk
 * DS-GAN) the outputs after the residuals are also trained as logits of
 * P(category | v)
 * with the soft-target cross-entropy on every event of the batch (the
 * blind region included). The two losses share the hidden layers but not
 * the optimizer: both gradients are taken at the same parameters, the
 * adversarial one stepped by g->adam at np's learning rate (betas 0.5, as
 * every detector GAN), the cross-entropy by g->adam_p at pp's (the
 * classifier's, betas 0.9). With one optimizer at the classifier's rate the
 * adversarial noise stayed in the probabilities (efficiency-map errors up
 * to 0.06-0.08 per bin); at the smearing rate the P head learnt too
 * slowly. */

/* Draw a batch: features and noise into s->xin, events into s->idx, the
 * measured rows into s->arow. With the energy loss rows 2j and 2j + 1 hold
 * the same event (two draws of its residual). Returns their number. */
static int cgan_batch(ef_surrogate *s, const ef_events *mc, const sg_cgan *g, ef_rng *r) {
  int m = 0, nin = s->nin, pairs = s->p.loss == EF_SMEAR_ENERGY;
  for (int i = 0; i < g->batch; i++) {
    size_t e = pairs && (i & 1) ? (size_t)s->idx[i - 1]
                                : (size_t)g->idx[ef_rng_below(r, (uint32_t)g->n)];
    s->idx[i] = (int32_t)e;
    ef_featmap_feat(s->fm, mc->vertex + (size_t)s->D * e, s->xin + (size_t)i * nin, NULL);
    if (ef_events_measured(mc, e) &&
        (!g->shared || !s->skip[ef_space_seen_index(&mc->space, mc->topology[e])]))
      s->arow[m++] = i; /* a shared residual: not from a category that loses observables */
  }
  for (int i = 0; i < g->batch; i++) sg_noise(s, r, s->xin + (size_t)i * nin + s->nf, s->k);
  return m;
}


/* The batch matches below (moments, covariance, trend) each compare a
 * statistic of the batch's generated residuals with that of its MC
 * residuals. A squared difference over one batch is biased: its mean holds
 * the fake statistic's own variance, which a narrower fold makes smaller,
 * so it pulls the fold narrow by O(1 / rows) (gauss D = 6, 512 rows: widths
 * 0.98-0.99 of the MC's, a low-efficiency bin then 8-15 % high). So the
 * measured rows are split in two halves (row j in half j & 1) and the loss
 * is the product of the halves' differences, w Delta_0 Delta_1: independent
 * halves, so its mean is w (E Delta)^2 exactly, and a row of half h gets
 * w Delta_{1-h} d Delta_h / d f (the same scale as the squared difference's
 * gradient over the whole batch). */

/* The moment match (weight w): per residual block q and kept observable d,
 * Delta = (mean_f - mean_r, var_f - var_r) over a half's rows of the block
 * (real r in s->xd rows 0..m-1, fake f in rows m..2m-1, the residual at
 * column R); its gradient wrt f is added to s->dout. The true smearing
 * matches both moments in expectation, so the term pins the fold's width and
 * offset without favouring anything else. */
static void cgan_moments(ef_surrogate *s, const ef_events *mc, const sg_cgan *g, int m, int W,
                         int R, double w) {
  enum { MAXB = EF_SPACE_MAX_CAT * EF_SPACE_MAX_DIM };
  const int D = s->D, outw = g->outw;
  double n[2][EF_SPACE_MAX_CAT] = {{0}}; /* [half][block] */
  double s1[2][2][MAXB] = {{{0}}}, s2[2][2][MAXB] = {{{0}}}; /* [half][real|fake][q D + d] */
  for (int j = 0; j < m; j++) {
    int h = j & 1, q = sg_residual_block(mc, g, (size_t)s->idx[s->arow[j]]);
    n[h][q]++;
    for (int d = 0; d < D; d++)
      for (int k = 0; k < 2; k++) {
        double x = s->xd[(size_t)(k * m + j) * W + R + d];
        s1[h][k][q * D + d] += x, s2[h][k][q * D + d] += x * x;
      }
  }
  for (int j = 0; j < m; j++) {
    int i = s->arow[j], h = j & 1, o = h ^ 1, q = sg_residual_block(mc, g, (size_t)s->idx[i]);
    if (n[h][q] < 1 || n[o][q] < 1) continue;
    for (int d = 0; d < D; d++) {
      int b = q * D + d;
      double mr = s1[o][0][b] / n[o][q], mf = s1[o][1][b] / n[o][q];
      double dv = (s2[o][1][b] / n[o][q] - mf * mf) - (s2[o][0][b] / n[o][q] - mr * mr);
      double f = s->xd[(size_t)(m + j) * W + R + d], mh = s1[h][1][b] / n[h][q];
      double gr = w * ((mf - mr) + 2.0 * dv * (f - mh)) / n[h][q];
      s->dout[(size_t)i * outw + b] += (float)gr; /* a lost observable: 0 (r = f = 0) */
    }
  }
}

/* The covariance match (weight w): per residual block q and pair of
 * observables d < e, Delta = cov_f(d, e) - cov_r(d, e) over a half's
 * measured rows of the block. The moment match pins each observable's
 * residual alone; a network that draws D residuals from a few noise inputs
 * correlates them (gauss D = 6: correlations to -0.96 where the MC's are 0),
 * which folds the generator with the wrong correlations. Its gradient wrt f
 * is added to s->dout (a lost observable: 0). */
static void cgan_covariance(ef_surrogate *s, const ef_events *mc, const sg_cgan *g, int m, int W,
                            int R, double w) {
  enum { DM = EF_SPACE_MAX_DIM };
  const int D = s->D, outw = g->outw;
  for (int q = 0; q < g->n_res; q++) {
    double n[2] = {0}, mu[2][2][DM] = {{{0}}}, c[2][2][DM][DM] = {{{{0}}}}; /* [half][real|fake] */
    for (int j = 0; j < m; j++) {
      if (sg_residual_block(mc, g, (size_t)s->idx[s->arow[j]]) != q) continue;
      int h = j & 1;
      n[h]++;
      for (int k = 0; k < 2; k++) {
        const float *x = s->xd + (size_t)(k * m + j) * W + R;
        for (int d = 0; d < D; d++) {
          mu[h][k][d] += x[d];
          for (int e = d + 1; e < D; e++) c[h][k][d][e] += (double)x[d] * x[e];
        }
      }
    }
    if (n[0] < 2 || n[1] < 2) continue;
    double delta[2][DM][DM] = {{{0}}};
    for (int h = 0; h < 2; h++) {
      for (int k = 0; k < 2; k++)
        for (int d = 0; d < D; d++) mu[h][k][d] /= n[h];
      for (int d = 0; d < D; d++)
        for (int e = d + 1; e < D; e++)
          delta[h][d][e] = delta[h][e][d] =
              (c[h][1][d][e] / n[h] - mu[h][1][d] * mu[h][1][e]) -
              (c[h][0][d][e] / n[h] - mu[h][0][d] * mu[h][0][e]);
    }
    for (int j = 0; j < m; j++) {
      if (sg_residual_block(mc, g, (size_t)s->idx[s->arow[j]]) != q) continue;
      int h = j & 1, o = h ^ 1;
      const float *f = s->xd + (size_t)(m + j) * W + R;
      for (int d = 0; d < D; d++) {
        double gr = 0.0;
        for (int e = 0; e < D; e++) gr += delta[o][d][e] * (f[e] - mu[h][1][e]); /* [d][d] = 0 */
        s->dout[(size_t)s->arow[j] * outw + q * D + d] += (float)(w * gr / n[h]);
      }
    }
  }
}

/* The trend match (weight w): per residual block q, kept observable d and
 * vertex coordinate k, Delta = (A_f - A_r, B_f - B_r) with A the mean of
 * r_d u_k and B that of r_d^2 u_k over a half's rows of the block, u_k the
 * vertex coordinate k standardised over the block's rows. Real and fake rows
 * share their vertices, so the true smearing matches A and B in expectation
 * whatever its dependence on v: the term pins the first-order trend of the
 * residual's mean and spread with v, which the moment match leaves to the
 * critic. Its gradient wrt f is added to s->dout. */
static void cgan_trend(ef_surrogate *s, const ef_events *mc, const sg_cgan *g, int m, int W,
                       int R, double w) {
  enum { DM = EF_SPACE_MAX_DIM };
  const int D = s->D, outw = g->outw;
  for (int q = 0; q < g->n_res; q++) {
    double n[2] = {0}, mu[DM] = {0}, inv[DM] = {0};
    double a[2][2][DM][DM] = {{{{0}}}}, b[2][2][DM][DM] = {{{{0}}}}; /* [half][real|fake][d][k] */
    for (int j = 0; j < m; j++) {
      const double *v = mc->vertex + (size_t)s->idx[s->arow[j]] * D;
      if (sg_residual_block(mc, g, (size_t)s->idx[s->arow[j]]) != q) continue;
      n[j & 1]++;
      for (int k = 0; k < D; k++) mu[k] += v[k], inv[k] += v[k] * v[k];
    }
    if (n[0] < 1 || n[1] < 1) continue;
    for (int k = 0; k < D; k++) {
      mu[k] /= n[0] + n[1];
      double var = inv[k] / (n[0] + n[1]) - mu[k] * mu[k];
      inv[k] = var > 1e-12 ? 1.0 / sqrt(var) : 0.0; /* a constant coordinate: no trend */
    }
    for (int pass = 0; pass < 2; pass++) /* 0: the halves' A and B; 1: the gradient */
      for (int j = 0; j < m; j++) {
        const double *v = mc->vertex + (size_t)s->idx[s->arow[j]] * D;
        if (sg_residual_block(mc, g, (size_t)s->idx[s->arow[j]]) != q) continue;
        int h = j & 1, o = h ^ 1;
        double u[DM];
        for (int k = 0; k < D; k++) u[k] = (v[k] - mu[k]) * inv[k];
        for (int d = 0; d < D; d++) {
          double r = s->xd[(size_t)j * W + R + d], f = s->xd[(size_t)(m + j) * W + R + d], gr = 0;
          for (int k = 0; k < D && pass == 0; k++) {
            a[h][0][d][k] += r * u[k] / n[h], b[h][0][d][k] += r * r * u[k] / n[h];
            a[h][1][d][k] += f * u[k] / n[h], b[h][1][d][k] += f * f * u[k] / n[h];
          }
          for (int k = 0; k < D && pass == 1; k++)
            gr += ((a[o][1][d][k] - a[o][0][d][k]) + 2.0 * (b[o][1][d][k] - b[o][0][d][k]) * f) *
                  u[k];
          if (pass == 1) /* a lost observable: 0 (r = f = 0) */
            s->dout[(size_t)s->arow[j] * outw + q * D + d] += (float)(w * gr / n[h]);
        }
      }
  }
}

/* The critic's step on m real and m fake rows, then the generator's
 * adversarial gradient through the updated critic into s->dout (B, outw). */
static int cgan_adversarial(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, const sg_cgan *g,
                            const float *o, int m, float lr, int step) {
  const int D = s->D, nf = s->nf, W = s->crit_w, R = W - D; /* the residual's place */
  int nin = s->nin, outw = g->outw;
  for (int j = 0; j < m; j++) {
    int i = s->arow[j];
    size_t e = (size_t)s->idx[i];
    int q = sg_residual_block(mc, g, e);
    float *rr = s->xd + (size_t)j * W, *rf = s->xd + (size_t)(m + j) * W;
    memcpy(rr, s->xin + (size_t)i * nin, (size_t)nf * sizeof(float));
    memcpy(rf, s->xin + (size_t)i * nin, (size_t)nf * sizeof(float));
    for (int t = nf; t < R; t++) rr[t] = rf[t] = t - nf == q ? 1.0f : 0.0f;
    double res[EF_SPACE_MAX_DIM];
    sg_residual(s, mc, e, res);
    const unsigned char *lost = s->lost + D * ef_space_seen_index(&mc->space, mc->topology[e]);
    for (int d = 0; d < D; d++) { /* a lost observable: nothing to learn, 0 for both */
      rr[R + d] = lost[d] ? 0.0f : (float)(res[d] / g->sig[D * q + d]);
      rf[R + d] = lost[d] ? 0.0f : o[(size_t)i * outw + D * q + d];
    }
  }
  /* critic update: real 1, fake 0 */
  ef_mlp *dd = s->critic;
  const float *x = ef_mlp_forward(dd, s->xd, 2 * m);
  float ld = ef_loss_bce_logits(m, x, NULL, 1.0f, NULL, s->dlogit) +
             ef_loss_bce_logits(m, x + m, NULL, 0.0f, NULL, s->dlogit + m);
  EF_CHECK(ef_loss_check(ctx, ld, g->what, step));
  ef_mlp_zero_grad(dd);
  ef_mlp_backward(dd, s->dlogit, NULL, EF_MLP_GRAD_PARAMS);
  ef_adam_set_lr(s->adam_critic, lr);
  ef_adam_step(s->adam_critic, ef_mlp_params(dd), ef_mlp_grads(dd));
  /* generator update through the updated critic */
  x = ef_mlp_forward(dd, s->xd + (size_t)m * W, m);
  float lg = ef_loss_gen_nonsat(m, x, NULL, s->dlogit);
  EF_CHECK(ef_loss_check(ctx, lg, g->what, step));
  ef_mlp_backward(dd, s->dlogit, s->ddx, 0);
  for (int j = 0; j < m; j++) {
    int i = s->arow[j];
    size_t e = (size_t)s->idx[i];
    int q = sg_residual_block(mc, g, e);
    const unsigned char *lost = s->lost + D * ef_space_seen_index(&mc->space, mc->topology[e]);
    for (int d = 0; d < D; d++)
      s->dout[(size_t)i * outw + D * q + d] = lost[d] ? 0.0f : s->ddx[(size_t)j * W + R + d];
  }
  if (s->p.moments > 0) cgan_moments(s, mc, g, m, W, R, s->p.moments);
  if (s->p.trend > 0) cgan_trend(s, mc, g, m, W, R, s->p.trend);
  if (s->p.covariance > 0) cgan_covariance(s, mc, g, m, W, R, s->p.covariance);
  return EF_OK;
}

/* The energy loss: for each measured event of the batch, drawn twice (rows
 * i, i + 1: generated residuals f1, f2, its residual y, all / sig, over
 * the observables it does not lose), the energy score
 * (|f1 - y| + |f2 - y|) / 2 - |f1 - f2| / 2 (Euclidean norms), averaged
 * over the pairs; its gradient into s->dout (B, outw). The score is
 * strictly proper: its expectation is least only when the generated
 * residuals have the MC's distribution at every v (Gneiting and Raftery,
 * JASA 102 (2007) 359; a generator trained on it: Shen and Meinshausen,
 * "Engression", arXiv:2307.00835), so no critic has to learn where they
 * differ. */
static int cgan_energy(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, const sg_cgan *g,
                       const float *o, int m, int step) {
  const int D = s->D, outw = g->outw;
  int np_ = 0;
  for (int j = 0; j + 1 < m; j++)
    np_ += (s->arow[j] & 1) == 0 && s->arow[j + 1] == s->arow[j] + 1;
  if (np_ == 0) return EF_OK;
  double loss = 0.0;
  for (int j = 0; j + 1 < m; j++) {
    int i = s->arow[j];
    if ((i & 1) || s->arow[j + 1] != i + 1) continue;
    size_t e = (size_t)s->idx[i];
    int q = sg_residual_block(mc, g, e);
    const unsigned char *lost = s->lost + D * ef_space_seen_index(&mc->space, mc->topology[e]);
    double y[EF_SPACE_MAX_DIM], a[EF_SPACE_MAX_DIM], b[EF_SPACE_MAX_DIM], c[EF_SPACE_MAX_DIM];
    double na = 0.0, nb = 0.0, nc = 0.0;
    sg_residual(s, mc, e, y);
    const float *f1 = o + (size_t)i * outw + D * q, *f2 = f1 + outw;
    for (int d = 0; d < D; d++) {
      double t = lost[d] ? 0.0 : y[d] / g->sig[D * q + d];
      a[d] = lost[d] ? 0.0 : f1[d] - t;
      b[d] = lost[d] ? 0.0 : f2[d] - t;
      c[d] = lost[d] ? 0.0 : (double)f1[d] - f2[d];
      na += a[d] * a[d], nb += b[d] * b[d], nc += c[d] * c[d];
    }
    na = sqrt(na), nb = sqrt(nb), nc = sqrt(nc);
    loss += 0.5 * (na + nb - nc);
    double ia = 0.5 / fmax(na, 1e-6) / np_, ib = 0.5 / fmax(nb, 1e-6) / np_,
           ic = 0.5 / fmax(nc, 1e-6) / np_;
    float *d1 = s->dout + (size_t)i * outw + D * q, *d2 = d1 + outw;
    for (int d = 0; d < D; d++) {
      d1[d] = (float)(ia * a[d] - ic * c[d]);
      d2[d] = (float)(ib * b[d] + ic * c[d]);
    }
  }
  return ef_loss_check(ctx, loss / np_, g->what, step);
}

/* The P head's cross-entropy step at the parameters the adversarial
 * gradient (already in net's gradients) was taken at: that gradient is set
 * aside in g->gsave for the adversarial step. */
static int cgan_p_head(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, const sg_cgan *g,
                       const float *o, int step) {
  int B = g->batch, W = g->outw, K = s->K, L = s->D * g->n_res * s->P; /* the logits' place */
  size_t np_ = ef_mlp_n_params(g->net);
  memcpy(g->gsave, ef_mlp_grads(g->net), np_ * sizeof(float));
  for (int i = 0; i < B; i++) {
    size_t e = (size_t)s->idx[i];
    for (int t = 0; t < K; t++) {
      s->lg[K * i + t] = o[(size_t)i * W + L + t];
      s->tgt[K * i + t] = mc->prob[(size_t)K * e + t];
    }
  }
  float lx = ef_loss_softmax_xent(B, K, s->lg, s->tgt, NULL, s->dlg);
  EF_CHECK(ef_loss_check(ctx, lx, g->what, step));
  memset(s->dout, 0, (size_t)B * W * sizeof(float));
  for (int i = 0; i < B; i++)
    for (int t = 0; t < K; t++) s->dout[(size_t)i * W + L + t] = s->dlg[K * i + t];
  ef_mlp_zero_grad(g->net);
  ef_mlp_backward(g->net, s->dout, NULL, EF_MLP_GRAD_PARAMS);
  ef_adam_set_lr(g->adam_p, ef_adam_lr_linear(g->pp->lr, 0.05, step, g->np->steps));
  ef_adam_step(g->adam_p, ef_mlp_params(g->net), ef_mlp_grads(g->net));
  return EF_OK;
}

int sg_train_cgan(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, const sg_cgan *g,
                  uint64_t seed, uint32_t stream) {
  if (g->n == 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: no MC events to train on", g->what);
  const ef_net_params *np = g->np;
  int first = ef_mlp_average_first(g->avg_frac, np->steps), B = g->batch;
  ef_mlp_init(g->net, seed, stream);
  ef_mlp_init(s->critic, seed, stream + 100);
  ef_adam_reset(g->adam);
  if (g->adam_p) ef_adam_reset(g->adam_p);
  ef_adam_reset(s->adam_critic);
  ef_rng r;
  ef_rng_init(&r, seed, EF_RNG_NN_TRAIN, stream);
  for (int step = 0; step < np->steps; step++) {
    float lr = ef_adam_lr_linear(np->lr, 0.1, step, np->steps);
    int m = cgan_batch(s, mc, g, &r);
    const float *o = ef_mlp_forward(g->net, s->xin, B); /* (B, outw) */
    memset(s->dout, 0, (size_t)B * g->outw * sizeof(float));
    if (m > 0 && s->p.loss == EF_SMEAR_MIXTURE) EF_CHECK(sg_head_nll(ctx, s, mc, g, o, m, step));
    else if (m > 0 && s->p.loss == EF_SMEAR_ENERGY)
      EF_CHECK(cgan_energy(ctx, s, mc, g, o, m, step));
    else if (m > 0) EF_CHECK(cgan_adversarial(ctx, s, mc, g, o, m, lr, step));
    ef_mlp_zero_grad(g->net);
    ef_mlp_backward(g->net, s->dout, NULL, EF_MLP_GRAD_PARAMS);
    if (g->adam_p) EF_CHECK(cgan_p_head(ctx, s, mc, g, o, step));
    ef_adam_set_lr(g->adam, lr);
    ef_adam_step(g->adam, ef_mlp_params(g->net), g->adam_p ? g->gsave : ef_mlp_grads(g->net));
    ef_mlp_average_step(g->net, s->pavg, step, first, np->steps);
  }
  return EF_OK;
}
