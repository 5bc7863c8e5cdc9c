/* The per-topology detector surrogate: an efficiency classifier eps(v) =
 * P(T0..T3 | v) and one conditional smearing GAN S_t per measured topology
 * T1..T3 (include/ensfold/surrogate.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/nn_loss.h"
#include "surrogate_impl.h"

typedef struct {
  ef_surrogate base;
  ef_mlp *eff;            /* SG_NF -> logits of P(T0..T3 | v) */
  ef_adam *adam_eff;
  ef_mlp *smear[3];       /* S_t: (SG_NF + k) -> residual / sig */
  ef_adam *adam_smear;    /* shared: reset before each S_t's training */
  float sig[3][2];        /* residual scales (c, f) of S_t */
  float *xs[3];           /* (rows, nin) S_t's inputs, kept for the backward */
  float *rsgn;            /* (3, rows) slopes of the reco fold */
  float *dfeat;           /* (rows, nin) gradient wrt S_t's inputs */
} topo;

static void topo_destroy(ef_surrogate *s) {
  topo *p = (topo *)s;
  ef_mlp_destroy(p->eff);
  ef_adam_destroy(p->adam_eff);
  for (int t = 0; t < 3; t++) {
    ef_mlp_destroy(p->smear[t]);
    free(p->xs[t]);
  }
  ef_adam_destroy(p->adam_smear);
  free(p->rsgn);
  free(p->dfeat);
  sg_base_free(s);
  free(p);
}

/* Streams: stream + 0 the classifier, + 1..3 S_1..S_3. */
static int topo_train(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, uint64_t seed,
                      uint32_t stream) {
  topo *p = (topo *)s;
  EF_CHECK(sg_train_classifier(ctx, s, p->eff, p->adam_eff, mc, seed, stream));
  for (int t = 1; t <= 3; t++) {
    uint32_t st = stream + (uint32_t)t;
    const int32_t *idx = s->order + s->off[t];
    size_t n = s->off[t + 1] - s->off[t];
    char what[64];
    snprintf(what, sizeof what, "smearing network S_%d", t);
    if (n == 0) {
      /* a topology the MC never produces: the data cannot have it either
       * in any quantity; its weight eps_t is ~0, so any S_t will do */
      ef_mlp_init(p->smear[t - 1], seed, st);
      p->sig[t - 1][0] = p->sig[t - 1][1] = 1e-4f;
      continue;
    }
    sg_residual_scale(mc, idx, n, p->sig[t - 1]);
    sg_cgan g = {p->smear[t - 1], p->adam_smear, NULL, 2, 1, idx, n, p->sig[t - 1],
                 &s->p.smearing, NULL, 0.0, NULL, s->p.smearing.batch, what};
    EF_CHECK(sg_train_cgan(ctx, s, mc, &g, seed, st));
  }
  return EF_OK;
}

static void topo_forward(ef_surrogate *s, const float *v, const float *feat, int n, ef_rng *r,
                         float *prob, float *reco) {
  topo *p = (topo *)s;
  int k = s->k, nin = s->nin;
  const float *lg = ef_mlp_forward(p->eff, feat, n);
  for (int i = 0; i < n; i++) sg_softmax4(lg + 4 * i, prob + 4 * i);
  if (!reco) return;
  for (int t = 0; t < 3; t++) {
    float *x = p->xs[t];
    for (int i = 0; i < n; i++) {
      memcpy(x + (size_t)i * nin, feat + (size_t)i * SG_NF, SG_NF * sizeof(float));
      ef_nn_fill_normal(r, x + (size_t)i * nin + SG_NF, (size_t)k);
    }
    const float *o = ef_mlp_forward(p->smear[t], x, n);
    for (int i = 0; i < n; i++)
      sg_reco(v[2 * i], v[2 * i + 1], p->sig[t], o + 2 * i, reco + ((size_t)t * n + i) * 2,
              &p->rsgn[t * n + i]);
  }
}

/* reco_t = fold(v + sig_t o_t): the identity to v, sig_t to S_t's output. */
static void topo_backward(ef_surrogate *s, int n, const float *dreco, float *dv, float *dfeat) {
  topo *p = (topo *)s;
  int nin = s->nin;
  float *dout = s->dout; /* (n, 2) per S_t in turn */
  for (int t = 0; t < 3; t++) {
    for (int i = 0; i < n; i++) {
      const float *d = dreco + ((size_t)t * n + i) * 2;
      float dc = d[0] * p->rsgn[t * n + i], df = d[1];
      dv[2 * i] += dc;
      dv[2 * i + 1] += df;
      dout[2 * i] = p->sig[t][0] * dc;
      dout[2 * i + 1] = p->sig[t][1] * df;
    }
    ef_mlp_backward(p->smear[t], dout, p->dfeat, 0); /* (n, nin) */
    for (int i = 0; i < n; i++)
      for (int j = 0; j < SG_NF; j++) dfeat[(size_t)i * SG_NF + j] += p->dfeat[(size_t)i * nin + j];
  }
}

static const sg_ops topo_ops = {topo_destroy, topo_train, topo_forward, topo_backward, 1};

int sg_topo_create(ef_ctx *ctx, ef_surrogate **out, const ef_surrogate_params *sp, int rows,
                   size_t n_mc) {
  topo *p = calloc(1, sizeof *p);
  if (!p) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a detector surrogate");
  ef_surrogate *s = &p->base;
  s->ops = &topo_ops;
  int rc = EF_OK, nin = SG_NF + sp->noise;
  const ef_net_params *e = &sp->efficiency, *m = &sp->smearing;
  EF_GOTO(rc, ef_mlp_create_plain(ctx, &p->eff, SG_NF, e->hidden, e->layers, 4, rows), fail);
  EF_GOTO(rc, ef_adam_create_lr(ctx, &p->adam_eff, ef_mlp_n_params(p->eff), e->lr, 0.9f), fail);
  for (int t = 0; t < 3; t++)
    EF_GOTO(rc, ef_mlp_create_plain(ctx, &p->smear[t], nin, m->hidden, m->layers, 2, rows),
            fail);
  EF_GOTO(rc, ef_adam_create_lr(ctx, &p->adam_smear, ef_mlp_n_params(p->smear[0]), m->lr, 0.5f),
          fail);
  ef_surrogate_params tp = *sp;
  tp.per_topology = 0; /* S_t is per topology already: its critic needs no one-hot */
  EF_GOTO(rc, sg_base_init(ctx, s, &topo_ops, &tp, rows, n_mc, ef_mlp_n_params(p->eff)), fail);
  for (int t = 0; t < 3; t++) p->xs[t] = malloc((size_t)rows * nin * sizeof(float));
  p->rsgn = malloc(3 * (size_t)rows * sizeof(float));
  p->dfeat = malloc((size_t)rows * nin * sizeof(float));
  if (!p->xs[0] || !p->xs[1] || !p->xs[2] || !p->rsgn || !p->dfeat) {
    rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a detector surrogate");
    goto fail;
  }
  *out = s;
  return EF_OK;
fail:
  topo_destroy(s);
  return rc;
}
