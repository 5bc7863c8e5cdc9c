/* Detector surrogates: the interface, the part the implementations share,
 * and the conditional smearing GAN both train (include/ensfold/surrogate.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/nn_loss.h"
#include "surrogate_impl.h"

#define GRID 8 /* efficiency-map grid per vertex bin, per axis */

int ef_surrogate_create(ef_ctx *ctx, ef_surrogate **out, ef_surrogate_kind kind,
                        const ef_surrogate_params *sp, int max_rows, size_t n_mc) {
  *out = NULL;
  /* the buffers also hold the surrogate's own training batches */
  int rows = max_rows;
  if (sp->efficiency.batch > rows) rows = sp->efficiency.batch;
  if (sp->smearing.batch > rows) rows = sp->smearing.batch;
  if (kind == EF_SURROGATE_TOPO) return sg_topo_create(ctx, out, sp, rows, n_mc);
  if (kind == EF_SURROGATE_MIXED) return sg_mixed_create(ctx, out, sp, rows, n_mc);
  return ef_error_set(ctx, EF_ERR_INTERNAL, "detector surrogate: unknown kind %d", (int)kind);
}

void ef_surrogate_destroy(ef_surrogate *s) {
  if (!s) return;
  s->ops->destroy(s); /* frees s's own part, then calls sg_base_free and free(s) */
}

/* The shared part's plain buffers into out (room for 16); their number.
 * One list for the allocation check and for freeing. */
static size_t base_buffers(const ef_surrogate *s, void **out) {
  void *b[] = {s->order, s->xin, s->xd,  s->ddx, s->dlogit, s->dout, s->tgt,   s->lg,
               s->dlg,   s->w,   s->pavg, s->idx, s->arow,  s->mv,   s->mfeat, s->mprob};
  memcpy(out, b, sizeof b);
  return sizeof b / sizeof b[0];
}

int sg_base_init(ef_ctx *ctx, ef_surrogate *s, const sg_ops *ops, const ef_surrogate_params *sp,
                 int rows, size_t n_mc, size_t n_avg) {
  s->ops = ops;
  s->p = *sp;
  s->k = sp->noise;
  s->nin = SG_NF + s->k;
  s->rows = rows;
  s->n_mc = n_mc;
  s->key = INT64_MIN;
  size_t r = (size_t)rows, nin = (size_t)s->nin;
  s->crit_w = SG_NF + 2 + (sp->per_topology ? 3 : 0);
  EF_CHECK(ef_mlp_create_plain(ctx, &s->critic, s->crit_w, sp->smearing.hidden,
                               sp->smearing.layers, 1, 2 * rows));
  EF_CHECK(ef_adam_create_lr(ctx, &s->adam_critic, ef_mlp_n_params(s->critic), sp->smearing.lr,
                             0.5f));
  s->order = malloc((n_mc ? n_mc : 1) * sizeof *s->order);
  s->xin = malloc(r * nin * sizeof(float));
  s->xd = malloc(2 * r * (size_t)s->crit_w * sizeof(float));
  s->ddx = malloc(r * (size_t)s->crit_w * sizeof(float));
  s->dlogit = malloc(2 * r * sizeof(float));
  s->dout = malloc(r * SG_MAX_OUT * sizeof(float));
  s->tgt = malloc(r * 4 * sizeof(float));
  s->lg = malloc(r * 4 * sizeof(float));
  s->dlg = malloc(r * 4 * sizeof(float));
  s->w = malloc(r * sizeof(float));
  s->pavg = malloc((n_avg ? n_avg : 1) * sizeof(float));
  s->idx = malloc(r * sizeof(int32_t));
  s->arow = malloc(r * sizeof(int32_t));
  s->mv = malloc(r * 2 * sizeof(float));
  s->mfeat = malloc(r * SG_NF * sizeof(float));
  s->mprob = malloc(r * 4 * sizeof(float));
  void *bufs[16];
  for (size_t i = 0, n = base_buffers(s, bufs); i < n; i++)
    if (!bufs[i]) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a detector surrogate");
  return EF_OK;
}

void sg_base_free(ef_surrogate *s) {
  ef_mlp_destroy(s->critic);
  ef_adam_destroy(s->adam_critic);
  void *bufs[16];
  for (size_t i = 0, n = base_buffers(s, bufs); i < n; i++) free(bufs[i]);
}

/* Group the MC's indices by topology (measured ones by theirs, the rest as
 * T0); once per MC sample (the campaign's never changes). */
static void mc_index(ef_surrogate *s, const ef_events *mc) {
  if (s->indexed_mc == mc && s->indexed_n == mc->n) return;
  size_t count[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < mc->n; i++) count[ef_events_measured(mc, i) ? mc->topology[i] : 0]++;
  s->off[0] = 0;
  for (int t = 0; t < 4; t++) s->off[t + 1] = s->off[t] + count[t];
  size_t pos[4] = {s->off[0], s->off[1], s->off[2], s->off[3]};
  for (size_t i = 0; i < mc->n; i++)
    s->order[pos[ef_events_measured(mc, i) ? mc->topology[i] : 0]++] = (int32_t)i;
  s->indexed_mc = mc;
  s->indexed_n = mc->n;
}

int ef_surrogate_train(ef_ctx *ctx, ef_surrogate *s, const ef_kin *kin, const ef_events *mc,
                       uint64_t seed, uint32_t stream, int64_t key) {
  if (!mc->vertex || !mc->prob)
    return ef_error_set(ctx, EF_ERR_INPUT, "detector surrogate: the MC needs vertex and prob");
  if (mc->n == 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "detector surrogate: the MC has no events");
  if (mc->n > s->n_mc)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "detector surrogate: made for %zu MC events, "
                        "given %zu", s->n_mc, mc->n);
  mc_index(s, mc);
  if (s->have && s->key == key && key >= 0) return EF_OK;
  s->have = 0;
  s->kin = *kin;
  EF_CHECK(s->ops->train(ctx, s, mc, seed, stream));
  s->have = 1;
  s->key = key;
  return EF_OK;
}

void ef_surrogate_forward(ef_surrogate *s, const float *v, const float *feat, int n, ef_rng *r,
                          float *prob, float *reco) {
  s->ops->forward(s, v, feat, n, r, prob, reco);
}

void ef_surrogate_backward(ef_surrogate *s, int n, const float *dreco, float *dv, float *dfeat) {
  s->ops->backward(s, n, dreco, dv, dfeat);
}

void ef_surrogate_map(ef_surrogate *s, const ef_kin *kin, const ef_binning *vtx, ef_rng *r,
                      int chunk, double *eff) {
  int nv = ef_binning_count(vtx), per = GRID * GRID, draws = s->ops->map_draws;
  double norm = (double)per * draws; /* grid points x draws per bin */
  if (chunk > s->rows) chunk = s->rows;
  memset(eff, 0, 4 * (size_t)nv * sizeof *eff);
  /* points in order (bin, grid point), `chunk` at a time */
  int total = nv * per, done = 0;
  while (done < total) {
    int n = total - done < chunk ? total - done : chunk;
    for (int q = 0; q < n; q++) {
      int p = done + q, kb = p / per, g = p % per;
      double lo[2], hi[2];
      ef_binning_range(vtx, kb, lo, hi);
      double c_lo = lo[0], c_hi = hi[0], f_lo = lo[1], f_hi = hi[1];
      double c = c_lo + ((g / GRID) + 0.5) * (c_hi - c_lo) / GRID;
      double f = f_lo + ((g % GRID) + 0.5) * (f_hi - f_lo) / GRID;
      s->mv[2 * q] = (float)c;
      s->mv[2 * q + 1] = (float)f;
      ef_features_kin(kin, c, f, s->mfeat + (size_t)q * SG_NF, NULL);
    }
    for (int d = 0; d < draws; d++) {
      ef_surrogate_forward(s, s->mv, s->mfeat, n, r, s->mprob, NULL);
      for (int q = 0; q < n; q++) {
        int kb = (done + q) / per;
        for (int t = 0; t < 4; t++) eff[(size_t)t * nv + kb] += s->mprob[4 * q + t] / norm;
      }
    }
    done += n;
  }
}

/* ---- helpers ------------------------------------------------------------ */

/* Residual of reco against vertex, (dc, df) with df wrapped. */
static void residual(const ef_events *mc, size_t i, double *dc, double *df) {
  *dc = mc->reco[2 * i] - mc->vertex[2 * i];
  *df = ef_wrap_pi(mc->reco[2 * i + 1] - mc->vertex[2 * i + 1]);
}

void sg_residual_scale(const ef_events *mc, const int32_t *idx, size_t n, float sig[2]) {
  double s[2] = {0, 0};
  for (size_t k = 0; k < n; k++) {
    double dc, df;
    residual(mc, (size_t)idx[k], &dc, &df);
    s[0] += dc * dc;
    s[1] += df * df;
  }
  for (int j = 0; j < 2; j++) sig[j] = (float)fmax(n ? sqrt(s[j] / (double)n) : 0.0, 1e-4);
}

/* Fold any real into [-1, 1] (a triangle wave of period 4); *sgn = slope. */
static float fold_unit(float a, float *sgn) {
  float u = fmodf(a + 1.0f, 4.0f);
  if (u < 0) u += 4.0f;
  if (u <= 2.0f) {
    *sgn = 1.0f;
    return u - 1.0f;
  }
  *sgn = -1.0f;
  return 3.0f - u;
}

static float wrap_pi(float f) {
  float t = fmodf(f + (float)M_PI, 2.0f * (float)M_PI);
  if (t <= 0) t += 2.0f * (float)M_PI;
  return t - (float)M_PI;
}

void sg_reco(float c, float f, const float sig[2], const float *o, float *rc, float *sgn) {
  rc[0] = fold_unit(c + sig[0] * o[0], sgn);
  rc[1] = wrap_pi(f + sig[1] * o[1]);
}

void sg_softmax4(const float *x, float *p) {
  float mx = x[0];
  for (int j = 1; j < 4; j++) mx = x[j] > mx ? x[j] : mx;
  float z = 0;
  for (int j = 0; j < 4; j++) z += (p[j] = expf(x[j] - mx));
  for (int j = 0; j < 4; j++) p[j] /= z;
}


/* The efficiency classifier: softmax over T0..T3 trained with soft targets
 * (the MC's exact probability vectors) on features of the MC vertices. */
int sg_train_classifier(ef_ctx *ctx, ef_surrogate *s, ef_mlp *m, ef_adam *adam,
                        const ef_events *mc, uint64_t seed, uint32_t stream) {
  const ef_net_params *np = &s->p.efficiency;
  int first = ef_mlp_average_first(s->p.efficiency_average, np->steps), B = np->batch;
  ef_mlp_init(m, seed, stream);
  ef_adam_reset(adam);
  ef_rng r;
  ef_rng_init(&r, seed, EF_RNG_NN_TRAIN, stream);
  float *feat = s->mfeat; /* (B, SG_NF) */
  for (int step = 0; step < np->steps; step++) {
    for (int i = 0; i < B; i++) {
      size_t e = ef_rng_below(&r, (uint32_t)mc->n);
      ef_features_kin(&s->kin, mc->vertex[2 * e], mc->vertex[2 * e + 1], feat + i * SG_NF, NULL);
      for (int t = 0; t < 4; t++) s->tgt[4 * i + t] = mc->prob[4 * e + t];
      s->w[i] = mc->weight ? (float)mc->weight[e] : 1.0f;
    }
    const float *lg = ef_mlp_forward(m, feat, B);
    float loss = ef_loss_softmax_xent(B, 4, lg, s->tgt, mc->weight ? s->w : NULL, s->dlg);
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
 * g->net (SG_NF + k -> outw) maps (features(v), noise) to the residual
 * (reco - v) / sig in its outputs 0..1; the critic sees (features(v),
 * residual / sig). Batches are drawn from the MC events g->idx; only
 * measured ones (T1..T3) enter the adversarial part. With outw 6 (the
 * DS-GAN) the outputs 2..5 are also trained as logits of P(T0..T3 | v)
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
 * measured rows into s->arow. Returns their number. */
static int cgan_batch(ef_surrogate *s, const ef_events *mc, const sg_cgan *g, ef_rng *r) {
  int m = 0, nin = s->nin;
  for (int i = 0; i < g->batch; i++) {
    size_t e = (size_t)g->idx[ef_rng_below(r, (uint32_t)g->n)];
    s->idx[i] = (int32_t)e;
    ef_features_kin(&s->kin, mc->vertex[2 * e], mc->vertex[2 * e + 1], s->xin + (size_t)i * nin,
                    NULL);
    if (ef_events_measured(mc, e)) s->arow[m++] = i;
  }
  for (int i = 0; i < g->batch; i++)
    ef_nn_fill_normal(r, s->xin + (size_t)i * nin + SG_NF, (size_t)s->k);
  return m;
}

/* The critic's step on m real and m fake rows, then the generator's
 * adversarial gradient through the updated critic into s->dout (B, outw). */
static int cgan_adversarial(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, const sg_cgan *g,
                            const float *o, int m, float lr, int step) {
  const int W = s->crit_w, R = W - 2; /* the residual's place in a critic row */
  int nin = s->nin, outw = g->outw;
  for (int j = 0; j < m; j++) {
    int i = s->arow[j];
    size_t e = (size_t)s->idx[i];
    int q = g->n_res > 1 ? mc->topology[e] - 1 : 0; /* the residual pair of the event */
    float *rr = s->xd + (size_t)j * W, *rf = s->xd + (size_t)(m + j) * W;
    memcpy(rr, s->xin + (size_t)i * nin, SG_NF * sizeof(float));
    memcpy(rf, s->xin + (size_t)i * nin, SG_NF * sizeof(float));
    for (int t = SG_NF; t < R; t++) rr[t] = rf[t] = t - SG_NF == q ? 1.0f : 0.0f;
    double dc, df;
    residual(mc, e, &dc, &df);
    rr[R] = (float)(dc / g->sig[2 * q]);
    rr[R + 1] = (float)(df / g->sig[2 * q + 1]);
    rf[R] = o[(size_t)i * outw + 2 * q];
    rf[R + 1] = o[(size_t)i * outw + 2 * q + 1];
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
    int q = g->n_res > 1 ? mc->topology[s->idx[i]] - 1 : 0;
    s->dout[(size_t)i * outw + 2 * q] = s->ddx[(size_t)j * W + R];
    s->dout[(size_t)i * outw + 2 * q + 1] = s->ddx[(size_t)j * W + R + 1];
  }
  return EF_OK;
}

/* The P head's cross-entropy step at the parameters the adversarial
 * gradient (already in net's gradients) was taken at: that gradient is set
 * aside in g->gsave for the adversarial step. */
static int cgan_p_head(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, const sg_cgan *g,
                       const float *o, int step) {
  int B = g->batch, W = g->outw, L = 2 * g->n_res; /* the logits' place */
  size_t np_ = ef_mlp_n_params(g->net);
  memcpy(g->gsave, ef_mlp_grads(g->net), np_ * sizeof(float));
  for (int i = 0; i < B; i++) {
    size_t e = (size_t)s->idx[i];
    for (int t = 0; t < 4; t++) {
      s->lg[4 * i + t] = o[(size_t)i * W + L + t];
      s->tgt[4 * i + t] = mc->prob[4 * e + t];
    }
  }
  float lx = ef_loss_softmax_xent(B, 4, s->lg, s->tgt, NULL, s->dlg);
  EF_CHECK(ef_loss_check(ctx, lx, g->what, step));
  memset(s->dout, 0, (size_t)B * W * sizeof(float));
  for (int i = 0; i < B; i++)
    for (int t = 0; t < 4; t++) s->dout[(size_t)i * W + L + t] = s->dlg[4 * i + t];
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
    if (m > 0) EF_CHECK(cgan_adversarial(ctx, s, mc, g, o, m, lr, step));
    ef_mlp_zero_grad(g->net);
    ef_mlp_backward(g->net, s->dout, NULL, EF_MLP_GRAD_PARAMS);
    if (g->adam_p) EF_CHECK(cgan_p_head(ctx, s, mc, g, o, step));
    ef_adam_set_lr(g->adam, lr);
    ef_adam_step(g->adam, ef_mlp_params(g->net), g->adam_p ? g->gsave : ef_mlp_grads(g->net));
    ef_mlp_average_step(g->net, s->pavg, step, first, np->steps);
  }
  return EF_OK;
}
