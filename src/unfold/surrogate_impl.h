/* Inside the detector surrogates (include/ensfold/surrogate.h): the table
 * an implementation fills, the part every implementation shares (MC index,
 * the conditional-GAN trainer with its critic and buffers), and helpers.
 * surrogate_topo.c and surrogate_mixed.c each embed ef_surrogate as their
 * first member and own the rest of their buffers. */
#ifndef ENSFOLD_SURROGATE_IMPL_H
#define ENSFOLD_SURROGATE_IMPL_H

#include "ensfold/features.h"
#include "ensfold/nn_adam.h"
#include "ensfold/surrogate.h"

#define SG_NF EF_FEAT_KIN /* kinematic features */
#define SG_MAX_OUT 10     /* widest network output: 3 residual pairs + 4 logits */
#define SG_CRIT_MAX (SG_NF + 2 + 3) /* widest critic row: features, one-hot T1..T3, residual */

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
  int k, nin, rows; /* noise inputs, network input width SG_NF + k, max rows */
  ef_kin kin;       /* the training's kinematics */
  int64_t key;      /* the last training's key; meaningful when have */
  int have;
  /* MC indices by topology (built on first use; the MC never changes) */
  int32_t *order;   /* (n_mc): indices grouped T0, T1, T2, T3 */
  size_t off[5];    /* group t is order[off[t] .. off[t + 1]) */
  size_t n_mc;
  const ef_events *indexed_mc; /* the MC sample the index is of (NULL: none yet), its size */
  size_t indexed_n;
  /* the conditional-GAN trainer: a critic and its batch buffers */
  ef_mlp *critic;   /* (features, [one-hot T1..T3,] residual / sig) -> logit */
  int crit_w;       /* its input width: SG_NF + 2, + 3 with the one-hot */
  ef_adam *adam_critic;
  float *xin;       /* (rows, nin) generator input; also the map's features */
  float *xd;        /* (2 rows, crit_w) critic rows: real, then fake */
  float *ddx;       /* (rows, crit_w) gradient wrt critic inputs */
  float *dlogit;    /* (2 rows) */
  float *dout;      /* (rows, SG_MAX_OUT) gradient wrt a network's output */
  float *tgt, *lg, *dlg; /* (rows, 4) soft targets, logits, their gradient */
  float *w;         /* (rows) event weights */
  float *pavg;      /* (n_params of the largest averaged net) iterate average */
  int32_t *idx;     /* (rows) drawn MC events */
  int32_t *arow;    /* (rows) batch rows in the adversarial part */
  float *mv;        /* (rows, 2) efficiency-map points */
  float *mfeat;     /* (rows, SG_NF) their features */
  float *mprob;     /* (rows, 4) efficiency-map probabilities */
};

/* Set up the shared part; n_avg = parameters of the largest averaged net. */
int sg_base_init(ef_ctx *ctx, ef_surrogate *s, const sg_ops *ops, const ef_surrogate_params *sp,
                 int rows, size_t n_mc, size_t n_avg);
void sg_base_free(ef_surrogate *s);

int sg_topo_create(ef_ctx *ctx, ef_surrogate **out, const ef_surrogate_params *sp, int rows,
                   size_t n_mc);
int sg_mixed_create(ef_ctx *ctx, ef_surrogate **out, const ef_surrogate_params *sp, int rows,
                    size_t n_mc);

/* RMS of the residuals (reco - vertex, phi wrapped) of events idx (n). */
void sg_residual_scale(const ef_events *mc, const int32_t *idx, size_t n, float sig[2]);
/* reco = (fold(c + sig_c o_c), wrap(f + sig_f o_f)); *sgn the fold's slope. */
void sg_reco(float c, float f, const float sig[2], const float *o, float *rc, float *sgn);
/* Row-wise softmax of 4 logits x into p (4). */
void sg_softmax4(const float *x, float *p);

/* One conditional smearing GAN's training (surrogate.c has the details). */
typedef struct {
  ef_mlp *net;          /* (SG_NF + k) -> outw: residual pair(s) / sig, then logits */
  ef_adam *adam;        /* its adversarial optimizer */
  ef_adam *adam_p;      /* with a P head: its optimizer, else NULL */
  int outw;             /* 2 n_res, + 4 logits of P(T0..T3 | v) with a P head */
  int n_res;            /* residual pairs: 1, or 3 (one per T1..T3, critic told t) */
  const int32_t *idx;   /* (n) MC events to draw from */
  size_t n;
  const float *sig;     /* (n_res, 2) residual scales */
  const ef_net_params *np, *pp; /* adversarial settings; P head's (outw 6) */
  double avg_frac;      /* last fraction of the steps averaged */
  float *gsave;         /* outw 6: (n_params of net) the adversarial gradient */
  int batch;
  const char *what;     /* the network's name in messages */
} sg_cgan;
int sg_train_cgan(ef_ctx *ctx, ef_surrogate *s, const ef_events *mc, const sg_cgan *g,
                  uint64_t seed, uint32_t stream);
/* The efficiency classifier m (SG_NF -> 4 logits) with its optimizer adam:
 * softmax cross-entropy against the MC's probability vectors, the
 * efficiency settings, its last efficiency_average averaged. */
int sg_train_classifier(ef_ctx *ctx, ef_surrogate *s, ef_mlp *m, ef_adam *adam,
                        const ef_events *mc, uint64_t seed, uint32_t stream);

#endif
