/* The per-category detector surrogate: an efficiency classifier eps(v) =
 * P(category | v) and one conditional smearing GAN S_j per seen category
 * (pi0: T1..T3) (include/ensfold/surrogate.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/nn_loss.h"
#include "surrogate_impl.h"

typedef struct {
  ef_surrogate base;
  ef_mlp *eff;                       /* nf -> logits of P(category | v) */
  ef_adam *adam_eff;
  ef_mlp *smear[EF_SPACE_MAX_CAT];   /* S_j: (nf + k) -> residual head (D P), j < ns */
  ef_adam *adam_smear;               /* shared: reset before each S_j's training */
  float sig[EF_SPACE_MAX_CAT][EF_SPACE_MAX_DIM]; /* residual scales of S_j */
  float *xs[EF_SPACE_MAX_CAT];       /* (rows, nin) S_j's inputs, kept for the backward */
  float *rsgn;                       /* (ns, rows, D) slopes of the reco fold */
  float *res;                        /* (ns, rows, D) residuals / sig of the last forward */
  float *gres;                       /* (rows, D) gradient wrt one S_j's residuals */
  float *dfeat;                      /* (rows, nin) gradient wrt S_j's inputs */
} topo;

static void topo_destroy(ef_surrogate *s) {
  topo *p = (topo *)s;
  ef_mlp_destroy(p->eff);
  ef_adam_destroy(p->adam_eff);
  for (int t = 0; t < EF_SPACE_MAX_CAT; t++) {
    ef_mlp_destroy(p->smear[t]);
    free(p->xs[t]);
  }
  ef_adam_destroy(p->adam_smear);
  free(p->rsgn);
  free(p->res);
  free(p->gres);
  free(p->dfeat);
  sg_base_free(s);
  free(p);
}

/* S_j's stream: stream + 1 + j for the first three (pi0's T1..T3 always
 * drew these), stream + 256 + j beyond (clear of the mixed surrogate's
 * stream + 4 and of later attempts' roles). */
static uint32_t smear_stream(uint32_t stream, int j) {
  return j < 3 ? stream + 1u + (uint32_t)j : stream + 256u + (uint32_t)j;
}

/* Streams: stream + 0 the classifier, smear_stream for S_j. */
static int topo_train(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, uint64_t seed,
                      uint32_t stream) {
  topo *p = (topo *)s;
  EF_CHECK(sg_train_classifier(ctx, s, p->eff, p->adam_eff, mc, seed, stream));
  for (int j = 0; j < s->ns; j++) {
    uint32_t st = smear_stream(stream, j);
    size_t n;
    const int32_t *idx = sg_group(s, 1 + j, &n);
    char what[96];
    snprintf(what, sizeof what, "smearing network S_%d (category %s)", j + 1,
             mc->space.cat[ef_featmap_seen(s->fm, j)].name);
    if (n == 0) {
      /* a category the MC never produces: the data cannot have it either
       * in any quantity; its weight eps_j is ~0, so any S_j will do */
      ef_mlp_init(p->smear[j], seed, st);
      for (int d = 0; d < s->D; d++) p->sig[j][d] = 1e-4f;
      continue;
    }
    sg_residual_scale(s, mc, idx, n, p->sig[j]);
    sg_cgan g = {p->smear[j], p->adam_smear, NULL, s->D * s->P, 1, 0, idx, n, p->sig[j],
                 &s->p.smearing, NULL, 0.0, NULL, s->p.smearing.batch, what};
    EF_CHECK(sg_train_cgan(ctx, s, mc, &g, seed, st));
  }
  return EF_OK;
}

static void topo_forward(ef_surrogate *s, const float *v, const float *feat, int n, ef_rng *r,
                         float *prob, float *reco) {
  topo *p = (topo *)s;
  const int D = s->D, K = s->K, nf = s->nf;
  int k = s->k, nin = s->nin;
  const float *lg = ef_mlp_forward(p->eff, feat, n);
  for (int i = 0; i < n; i++) sg_softmax(lg + (size_t)K * i, K, prob + (size_t)K * i);
  if (!reco) return;
  for (int t = 0; t < s->ns; t++) {
    float *x = p->xs[t];
    for (int i = 0; i < n; i++) {
      memcpy(x + (size_t)i * nin, feat + (size_t)i * nf, (size_t)nf * sizeof(float));
      sg_noise(s, r, x + (size_t)i * nin + nf, k);
    }
    const float *o = ef_mlp_forward(p->smear[t], x, n);
    float *res = p->res + (size_t)t * s->rows * D;
    sg_head_forward(s, o, D * s->P, 0, n, t, r, res);
    for (int i = 0; i < n; i++) {
      size_t row = (size_t)t * n + i;
      ef_featmap_smear(s->fm, v + (size_t)D * i, p->sig[t], res + (size_t)D * i,
                       reco + row * D, p->rsgn + row * D);
    }
  }
}

/* reco_j = fold(v + sig_j res_j): the identity to v, sig_j to the residual
 * head of S_j. */
static void topo_backward(ef_surrogate *s, int n, const float *dreco, float *dv, float *dfeat) {
  topo *p = (topo *)s;
  const int D = s->D, nf = s->nf, W = D * s->P;
  int nin = s->nin;
  float *dout = s->dout, *gres = p->gres; /* (n, W), (n, D): per S_j in turn */
  for (int t = 0; t < s->ns; t++) {
    for (int i = 0; i < n; i++) {
      size_t row = (size_t)t * n + i;
      for (int d = 0; d < D; d++) {
        float g = dreco[row * D + d] * p->rsgn[row * D + d];
        dv[(size_t)D * i + d] += g;
        gres[(size_t)D * i + d] = p->sig[t][d] * g;
      }
    }
    memset(dout, 0, (size_t)n * W * sizeof(float));
    sg_head_backward(s, gres, n, t, dout, W, 0);
    ef_mlp_backward(p->smear[t], dout, p->dfeat, 0); /* (n, nin) */
    for (int i = 0; i < n; i++)
      for (int j = 0; j < nf; j++) dfeat[(size_t)i * nf + j] += p->dfeat[(size_t)i * nin + j];
  }
}

static const sg_ops topo_ops = {topo_destroy, topo_train, topo_forward, topo_backward, 1};

int sg_topo_create(ef_ctx *ctx, ef_surrogate **out, const ef_surrogate_params *sp,
                   const ef_featmap *fm, int rows, size_t n_mc) {
  topo *p = calloc(1, sizeof *p);
  if (!p) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a detector surrogate");
  ef_surrogate *s = &p->base;
  s->ops = &topo_ops;
  const int D = ef_featmap_dim(fm), K = ef_featmap_n_cat(fm), ns = ef_featmap_n_seen(fm);
  int rc = EF_OK, nf = ef_featmap_n_feat(fm), nin = nf + sp->noise;
  const ef_net_params *e = &sp->efficiency, *m = &sp->smearing;
  EF_GOTO(rc, ef_mlp_create_plain(ctx, &p->eff, nf, e->hidden, e->layers, K, rows), fail);
  EF_GOTO(rc, ef_adam_create_lr(ctx, &p->adam_eff, ef_mlp_n_params(p->eff), e->lr, 0.9f), fail);
  for (int t = 0; t < ns; t++)
    EF_GOTO(rc, ef_mlp_create_plain(ctx, &p->smear[t], nin, m->hidden, m->layers,
                                    D * sg_head_width(sp), rows),
            fail);
  EF_GOTO(rc, ef_adam_create_lr(ctx, &p->adam_smear, ef_mlp_n_params(p->smear[0]), m->lr, 0.5f),
          fail);
  ef_surrogate_params tp = *sp;
  tp.per_topology = 0; /* S_j is per category already: its critic needs no one-hot */
  EF_GOTO(rc, sg_base_init(ctx, s, &topo_ops, &tp, fm, rows, n_mc, ef_mlp_n_params(p->eff)),
          fail);
  int ok = 1;
  for (int t = 0; t < ns; t++) ok &= (p->xs[t] = malloc((size_t)rows * nin * sizeof(float))) != NULL;
  p->rsgn = malloc((size_t)ns * rows * D * sizeof(float));
  p->res = malloc((size_t)ns * rows * D * sizeof(float));
  p->gres = malloc((size_t)rows * D * sizeof(float));
  p->dfeat = malloc((size_t)rows * nin * sizeof(float));
  if (!ok || !p->rsgn || !p->res || !p->gres || !p->dfeat) {
    rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a detector surrogate");
    goto fail;
  }
  *out = s;
  return EF_OK;
fail:
  topo_destroy(s);
  return rc;
}
