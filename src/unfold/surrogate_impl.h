/* Inside the detector surrogates (include/ensfold/surrogate.h): the table
 * an implementation fills, the part every implementation shares (MC index,
 * the conditional-GAN trainer with its critic and buffers), and helpers.
 * surrogate_topo.c and surrogate_mixed.c each embed ef_surrogate as their
 * first member and own the rest of their buffers. */
#ifndef ENSFOLD_SURROGATE_IMPL_H
#define ENSFOLD_SURROGATE_IMPL_H

#include "ensfold/featmap.h"
#include "ensfold/nn_adam.h"
#include "ensfold/surrogate.h"

typedef struct {
  void (*destroy)(ef_surrogate *s); /* the implementation's own part */
  int (*train)(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, uint64_t seed,
               uint32_t stream);
  void (*forward)(ef_surrogate *s, const float *v, const float *feat, int n, ef_rng *r,
                  float *prob, float *reco);
  void (*backward)(ef_surrogate *s, int n, const float *dreco, float *dv, float *dfeat);
  int map_draws; /* noise draws per efficiency-map point */
} sg_ops;

struct ef_surrogate {
  const sg_ops *ops;
  ef_surrogate_params p;
  const ef_featmap *fm; /* the space's network view (the caller's) */
  int D, K, ns, nf; /* observables, categories, seen categories, features */
  int k, nin, rows; /* noise inputs, network input width nf + k, max rows */
  int P;            /* network outputs per residual coordinate (sg_head_width) */
  int max_out;      /* widest network output: D ns P residual outputs + K logits */
  int64_t key;      /* the last training's key; meaningful when have */
  int have;
  /* The MC sample a training draws from, rebuilt by each training: event i
   * appears w_i times (its bootstrap multiplicity; once without weights) */
  int32_t *pool;    /* (cap) event indices, ascending (0 .. n-1 without weights) */
  size_t n_pool;
  int32_t *order;   /* (cap) pool grouped: not measured, then each seen category
                     * in order (pi0: T0, T1, T2, T3), ascending within a group */
  size_t off[EF_SPACE_MAX_CAT + 2]; /* group g is order[off[g] .. off[g + 1]) */
  size_t n_mc;      /* the most MC events */
  size_t cap;       /* room in pool, order and full: n_mc and its bootstrap's excess */
  /* Lost observables: in the MC, seen category j records observable a as
   * one constant (gauss's partial category: xD = 0): lost[j D + a] = 1 and
   * lost_val its value. A surrogate's reco there is that value, with no
   * gradient; a residual shared by every category learns from the
   * categories that lose nothing (full, n_full; all measured ones when
   * every category loses something). */
  unsigned char lost[EF_SPACE_MAX_CAT * EF_SPACE_MAX_DIM];
  float lost_val[EF_SPACE_MAX_CAT * EF_SPACE_MAX_DIM];
  int any_lost;
  unsigned char skip[EF_SPACE_MAX_CAT]; /* 1: seen category j is not in full */
  int32_t *full;    /* (cap) measured events of the categories that lose nothing */
  size_t n_full;
  float *dreco;     /* (ns, rows, D) the reco gradient with the lost entries zeroed */
  /* the conditional-GAN trainer: a critic and its batch buffers */
  ef_mlp *critic;   /* (features, [one-hot seen category,] residual / sig) -> logit */
  int crit_w;       /* its input width: nf + D, + ns with the one-hot */
  ef_adam *adam_critic;
  float *xin;       /* (rows, nin) generator input; also the map's features */
  float *xd;        /* (2 rows, crit_w) critic rows: real, then fake */
  float *ddx;       /* (rows, crit_w) gradient wrt critic inputs */
  float *dlogit;    /* (2 rows) */
  float *dout;      /* (rows, max_out) gradient wrt a network's output */
  float *tgt, *lg, *dlg; /* (rows, K) soft targets, logits, their gradient */
  float *w;         /* (rows) event weights */
  float *pavg;      /* (n_params of the largest averaged net) iterate average */
  int32_t *idx;     /* (rows) drawn MC events */
  int32_t *arow;    /* (rows) batch rows in the adversarial part */
  float *mv;        /* (rows, D) efficiency-map points */
  float *mfeat;     /* (rows, nf) their features */
  float *mprob;     /* (rows, K) efficiency-map probabilities */
  float *jac;       /* (ns, rows, D, P) d residual / d outputs of the last forward
                     * (mixture head only, else NULL) */
};

/* Set up the shared part; n_avg = parameters of the largest averaged net. */
int sg_base_init(ef_ctx *ctx, ef_surrogate *s, const sg_ops *ops, const ef_surrogate_params *sp,
                 const ef_featmap *fm, int rows, size_t n_mc, size_t n_avg);
void sg_base_free(ef_surrogate *s);

int sg_topo_create(ef_ctx *ctx, ef_surrogate **out, const ef_surrogate_params *sp,
                   const ef_featmap *fm, int rows, size_t n_mc);
int sg_mixed_create(ef_ctx *ctx, ef_surrogate **out, const ef_surrogate_params *sp,
                    const ef_featmap *fm, int rows, size_t n_mc);

/* RMS of the residuals (reco - vertex, periodic ones wrapped) of events idx
 * (n): sig (D). */
void sg_residual_scale(const ef_surrogate *s, const ef_events *mc, const int32_t *idx, size_t n,
                       float *sig);
/* MC event i's residual reco - vertex (periodic ones wrapped): r (D). */
void sg_residual(const ef_surrogate *s, const ef_events *mc, size_t i, double *r);
/* Softmax of K logits x into p (K). */
void sg_softmax(const float *x, int K, float *p);
/* The measured events a residual shared by every seen category learns
 * from (the lost observables above). */
static inline const int32_t *sg_shared(const ef_surrogate *s, size_t *n) {
  *n = s->n_full;
  return s->full;
}
/* Measured-category group g = 1 + j of the MC index: its events. */
static inline const int32_t *sg_group(const ef_surrogate *s, int g, size_t *n) {
  *n = s->off[g + 1] - s->off[g];
  return s->order + s->off[g];
}

/* One conditional smearing GAN's training (surrogate.c has the details). */
typedef struct {
  ef_mlp *net;          /* (nf + k) -> outw: residual(s) / sig, then logits */
  ef_adam *adam;        /* its adversarial optimizer */
  ef_adam *adam_p;      /* with a P head: its optimizer, else NULL */
  int outw;             /* D n_res, + K logits of P(category | v) with a P head */
  int n_res;            /* residuals: 1, or ns (one per seen category, critic told it) */
  int shared;           /* 1: one residual for every seen category (those that lose
                         * observables do not train it), 0: idx's categories' own */
  const int32_t *idx;   /* (n) MC events to draw from */
  size_t n;
  const float *sig;     /* (n_res, D) residual scales */
  const ef_net_params *np, *pp; /* adversarial settings; the P head's */
  double avg_frac;      /* last fraction of the steps averaged */
  float *gsave;         /* outw 6: (n_params of net) the adversarial gradient */
  int batch;
  const char *what;     /* the network's name in messages */
} sg_cgan;
int sg_train_cgan(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, const sg_cgan *g,
                  uint64_t seed, uint32_t stream);
/* The residual block of g's measured MC event e: its seen category's, or the one. */
static inline int sg_residual_block(const ef_events *mc, const sg_cgan *g, size_t e) {
  return g->n_res > 1 ? ef_space_seen_index(&mc->space, mc->topology[e]) : 0;
}

/* The residual head (surrogate_head.c). Outputs per residual coordinate:
 * 1 (the network draws it from its noise inputs), or 3 M with the mixture. */
int sg_head_width(const ef_surrogate_params *sp);
/* A network's k noise inputs x: normals from r, or 0 with the mixture. */
void sg_noise(const ef_surrogate *s, ef_rng *r, float *x, int k);
/* The residuals / sig res (n, D) of n rows of outputs o (row stride W, the
 * block at column c); slot (< ns) keeps the mixture's gradients for
 * sg_head_backward. */
void sg_head_forward(ef_surrogate *s, const float *o, int W, int c, int n, int slot, ef_rng *r,
                     float *res);
/* Add to dout (n rows of stride W, the block at column c) the gradient
 * wrt the outputs of g (n, D), the loss's gradient wrt the residuals / sig
 * of slot's last forward. */
void sg_head_backward(const ef_surrogate *s, const float *g, int n, int slot, float *dout, int W,
                      int c);
/* The mixture's likelihood step: minus the mean log-likelihood of the m
 * measured rows' MC residuals under o (B, g->outw); its gradient into
 * s->dout. */
int sg_head_nll(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, const sg_cgan *g,
                const float *o, int m, int step);
/* The efficiency classifier m (nf -> K logits) with its optimizer adam:
 * softmax cross-entropy against the MC's probability vectors, the
 * efficiency settings, its last efficiency_average averaged. */
int sg_train_classifier(ef_ctx *ctx, ef_surrogate *s, ef_mlp *m, ef_adam *adam,
                        const ef_events *mc, uint64_t seed, uint32_t stream);

#endif
