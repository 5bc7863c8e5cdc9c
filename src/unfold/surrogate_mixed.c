/* The mixed detector surrogate: one detector-simulation GAN DS(v, noise) ->
 * (reco residual / sig, logits of P(category | v)), trained on every MC
 * event with its probability vector (include/ensfold/surrogate.h). The
 * residual is one for every seen category, or with per_topology one per
 * seen category (the critic then told the event's category). */
#include <stdlib.h>
#include <string.h>

#include "surrogate_impl.h"

#define MAP_DRAWS 16 /* noise draws per efficiency-map point */

typedef struct {
  ef_surrogate base;
  ef_mlp *ds;            /* (nf + k) -> (residual head D n_res P, logits K; no logits
                          * with own_trunk) */
  ef_mlp *pnet;          /* own_trunk: nf -> logits K, else NULL */
  ef_adam *adam_pnet;
  ef_adam *adam_ds;      /* adversarial loss */
  ef_adam *adam_p;       /* the P head's cross-entropy */
  int n_res;             /* residuals: 1, or ns (per seen category) */
  float sig[EF_SPACE_MAX_CAT * EF_SPACE_MAX_DIM]; /* (n_res, D) residual scales */
  float *gsave;          /* (n_params of ds) the adversarial gradient */
  float *x;              /* (rows, nin) DS's inputs, kept for the backward */
  float *rsgn;           /* (ns, rows, D) slopes of the reco fold per seen category */
  float *res;            /* (n_res, rows, D) residuals / sig of the last forward */
  float *gres;           /* (n_res, rows, D) the loss's gradient wrt them */
  float *dfeat;          /* (rows, nin) gradient wrt DS's inputs */
} mixed;

static void mixed_destroy(ef_surrogate *s) {
  mixed *p = (mixed *)s;
  ef_mlp_destroy(p->ds);
  ef_mlp_destroy(p->pnet);
  ef_adam_destroy(p->adam_pnet);
  ef_adam_destroy(p->adam_ds);
  ef_adam_destroy(p->adam_p);
  free(p->gsave);
  free(p->x);
  free(p->rsgn);
  free(p->res);
  free(p->gres);
  free(p->dfeat);
  sg_base_free(s);
  free(p);
}

/* Stream: stream + 4 (the streams before it are the per-topology
 * surrogate's roles, so both kinds draw what they always drew). */
static int mixed_train(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, uint64_t seed,
                       uint32_t stream) {
  mixed *p = (mixed *)s;
  /* the DS-GAN draws from every MC event: its P head must learn the blind
   * region too; the residual scale comes from the measured ones */
  size_t n_meas;
  const int32_t *shared = sg_shared(s, &n_meas); /* every measured one unless some lose */
  if (p->n_res == 1) sg_residual_scale(s, mc, shared, n_meas, p->sig);
  for (int j = 0; p->n_res > 1 && j < s->ns; j++) {
    size_t n;
    const int32_t *idx = sg_group(s, 1 + j, &n);
    sg_residual_scale(s, mc, idx, n, p->sig + (size_t)s->D * j);
  }
  /* its P head needs what the efficiency classifier needs: as many steps
   * and its batch; its learning rate goes in as pp (the adversarial part
   * keeps the smearing networks' rate) */
  if (p->pnet) {
    /* two trunks: the classifier's training for P (streams as gan-topo's
     * classifier), the residual adversarially on the measured events alone,
     * not averaged (as gan-topo's smearing networks) */
    EF_CHECK(sg_train_classifier(ctx, s, p->pnet, p->adam_pnet, mc, seed, stream));
    sg_cgan g = {p->ds, p->adam_ds, NULL, s->D * p->n_res * s->P, p->n_res, p->n_res == 1,
                 p->n_res == 1 ? shared : s->order + s->off[1],
                 p->n_res == 1 ? n_meas : s->off[1 + s->ns] - s->off[1], p->sig, &s->p.smearing, NULL, 0.0, NULL,
                 s->p.smearing.batch, "DS-GAN residual"};
    return sg_train_cgan(ctx, s, mc, &g, seed, stream + 4);
  }
  ef_net_params np = s->p.smearing;
  if (np.steps < s->p.efficiency.steps) np.steps = s->p.efficiency.steps;
  sg_cgan g = {p->ds, p->adam_ds, p->adam_p, s->D * p->n_res * s->P + s->K, p->n_res,
               p->n_res == 1,
               s->order,
               s->off[1 + s->ns], p->sig, &np,
               &s->p.efficiency, s->p.efficiency_average, p->gsave, s->p.efficiency.batch,
               "DS-GAN"};
  return sg_train_cgan(ctx, s, mc, &g, seed, stream + 4);
}

static void mixed_forward(ef_surrogate *s, const float *v, const float *feat, int n, ef_rng *r,
                          float *prob, float *reco) {
  mixed *p = (mixed *)s;
  const int D = s->D, K = s->K, nf = s->nf;
  int k = s->k, nin = s->nin;
  for (int i = 0; i < n; i++) {
    memcpy(p->x + (size_t)i * nin, feat + (size_t)i * nf, (size_t)nf * sizeof(float));
    sg_noise(s, r, p->x + (size_t)i * nin + nf, k);
  }
  int R = D * p->n_res * s->P, W = R + (p->pnet ? 0 : K); /* residual head, row width */
  const float *o = ef_mlp_forward(p->ds, p->x, n); /* (n, W) */
  const float *lg = p->pnet ? ef_mlp_forward(p->pnet, feat, n) : o + R;
  int lw = p->pnet ? K : W; /* the logits' row stride */
  for (int i = 0; i < n; i++) sg_softmax(lg + (size_t)lw * i, K, prob + (size_t)K * i);
  if (!reco) return;
  for (int q = 0; q < p->n_res; q++)
    sg_head_forward(s, o, W, D * q * s->P, n, q, r, p->res + (size_t)q * s->rows * D);
  for (int t = 0; t < s->ns; t++) {
    int q = p->n_res > 1 ? t : 0; /* the residual seen category t is smeared with */
    const float *res = p->res + (size_t)q * s->rows * D;
    for (int i = 0; i < n; i++) {
      size_t row = (size_t)t * n + i;
      ef_featmap_smear(s->fm, v + (size_t)D * i, p->sig + D * q, res + (size_t)D * i,
                       reco + row * D, p->rsgn + row * D);
    }
  }
}

/* One reco per vertex and seen category (the same one for all with one
 * residual): the categories' gradients add up at DS's output. */
static void mixed_backward(ef_surrogate *s, int n, const float *dreco, float *dv, float *dfeat) {
  mixed *p = (mixed *)s;
  const int D = s->D, nf = s->nf;
  int nin = s->nin, W = D * p->n_res * s->P + (p->pnet ? 0 : s->K);
  float *dout = s->dout; /* (n, W) */
  size_t rd = (size_t)s->rows * D; /* one residual's block of gres */
  memset(dout, 0, (size_t)n * W * sizeof(float));
  memset(p->gres, 0, (size_t)p->n_res * rd * sizeof(float));
  for (int t = 0; t < s->ns; t++) {
    int q = p->n_res > 1 ? t : 0;
    for (int i = 0; i < n; i++) {
      size_t row = (size_t)t * n + i;
      for (int d = 0; d < D; d++) {
        float g = dreco[row * D + d] * p->rsgn[row * D + d];
        dv[(size_t)D * i + d] += g;
        p->gres[q * rd + (size_t)D * i + d] += p->sig[D * q + d] * g;
      }
    }
  }
  for (int q = 0; q < p->n_res; q++)
    sg_head_backward(s, p->gres + q * rd, n, q, dout, W, D * q * s->P);
  ef_mlp_backward(p->ds, dout, p->dfeat, 0); /* (n, nin) */
  for (int i = 0; i < n; i++)
    for (int j = 0; j < nf; j++) dfeat[(size_t)i * nf + j] += p->dfeat[(size_t)i * nin + j];
}

static const sg_ops mixed_ops = {mixed_destroy, mixed_train, mixed_forward, mixed_backward,
                                 MAP_DRAWS};

int sg_mixed_create(ef_ctx *ctx, ef_surrogate **out, const ef_surrogate_params *sp,
                    const ef_featmap *fm, int rows, size_t n_mc) {
  mixed *p = calloc(1, sizeof *p);
  if (!p) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a detector surrogate");
  ef_surrogate *s = &p->base;
  s->ops = &mixed_ops;
  const int D = ef_featmap_dim(fm), K = ef_featmap_n_cat(fm), ns = ef_featmap_n_seen(fm);
  int rc = EF_OK, nf = ef_featmap_n_feat(fm), nin = nf + sp->noise;
  /* the DS-GAN does the smearing networks' and the classifier's work: the
   * larger of the two sizes */
  ef_net_params np = sp->smearing;
  if (np.hidden < sp->efficiency.hidden) np.hidden = sp->efficiency.hidden;
  if (np.layers < sp->efficiency.layers) np.layers = sp->efficiency.layers;
  p->n_res = sp->per_topology ? ns : 1;
  if (sp->own_trunk) { /* each trunk its own size: the smearing's, the classifier's */
    np = sp->smearing;
    const ef_net_params *e = &sp->efficiency;
    EF_GOTO(rc, ef_mlp_create_plain(ctx, &p->pnet, nf, e->hidden, e->layers, K, rows), fail);
    EF_GOTO(rc, ef_adam_create_lr(ctx, &p->adam_pnet, ef_mlp_n_params(p->pnet), e->lr, 0.9f),
            fail);
  }
  EF_GOTO(rc, ef_mlp_create_plain(ctx, &p->ds, nin, np.hidden, np.layers,
                                  D * p->n_res * sg_head_width(sp) + (sp->own_trunk ? 0 : K),
                                  rows), fail);
  size_t n = ef_mlp_n_params(p->ds);
  size_t n_avg = p->pnet && ef_mlp_n_params(p->pnet) > n ? ef_mlp_n_params(p->pnet) : n;
  EF_GOTO(rc, ef_adam_create_lr(ctx, &p->adam_ds, n, sp->smearing.lr, 0.5f), fail);
  if (!sp->own_trunk) /* one trunk: the P head's optimizer and the set-aside gradient */
    EF_GOTO(rc, ef_adam_create_lr(ctx, &p->adam_p, n, sp->efficiency.lr, 0.9f), fail);
  EF_GOTO(rc, sg_base_init(ctx, s, &mixed_ops, sp, fm, rows, n_mc, n_avg), fail);
  p->gsave = sp->own_trunk ? NULL : malloc(n * sizeof(float));
  p->x = malloc((size_t)rows * nin * sizeof(float));
  p->rsgn = malloc((size_t)ns * rows * D * sizeof(float));
  p->res = malloc((size_t)p->n_res * rows * D * sizeof(float));
  p->gres = malloc((size_t)p->n_res * rows * D * sizeof(float));
  p->dfeat = malloc((size_t)rows * nin * sizeof(float));
  if ((!sp->own_trunk && !p->gsave) || !p->x || !p->rsgn || !p->res || !p->gres || !p->dfeat) {
    rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for a detector surrogate");
    goto fail;
  }
  *out = s;
  return EF_OK;
fail:
  mixed_destroy(s);
  return rc;
}
