/* Adam (Kingma & Ba 2015) over one flat parameter vector, and gradient-norm
 * clipping. The moments m and v live in one allocation made at create time,
 * in the layout of the parameters they follow (ef_mlp_params/ef_mlp_grads):
 * a step is one loop over three float vectors and never allocates. */
#ifndef ENSFOLD_NN_ADAM_H
#define ENSFOLD_NN_ADAM_H

#include <stddef.h>

#include "ensfold/ctx.h"

typedef struct {
  float lr;            /* learning rate */
  float beta1, beta2;  /* moment decay rates, in [0, 1) */
  float eps;           /* added to sqrt(v_hat) */
  float weight_decay;  /* 0 = none */
  int decoupled;       /* 0: L2, g += wd p (torch.optim.Adam); 1: AdamW,
                          p -= lr wd p before the Adam update */
} ef_adam_cfg;

/* lr 1e-3, betas 0.9/0.999, eps 1e-8, no weight decay (PyTorch's defaults). */
ef_adam_cfg ef_adam_defaults(void);

typedef struct ef_adam ef_adam;

/* An optimizer for n parameters; refuses (EF_ERR_INPUT) out-of-range
 * settings. Moments start at zero, the step count at 0. */
int ef_adam_create(ef_ctx *ctx, ef_adam **out, size_t n, const ef_adam_cfg *cfg);
/* The defaults with learning rate lr and first-moment decay beta1 (0.5 is
 * the usual choice for adversarial training). */
int ef_adam_create_lr(ef_ctx *ctx, ef_adam **out, size_t n, double lr, float beta1);
void ef_adam_destroy(ef_adam *a); /* accepts NULL */
void ef_adam_reset(ef_adam *a);   /* zero moments and step count */
void ef_adam_set_lr(ef_adam *a, float lr);
long ef_adam_steps(const ef_adam *a);
/* Moments (n) in the parameter layout, e.g. for checkpoints. */
float *ef_adam_m(ef_adam *a);
float *ef_adam_v(ef_adam *a);

/* One update of params (n) from grads (n), as torch.optim.Adam (1.13,
 * foreach=False) computes it:
 *   t += 1; g = grad (+ wd p when L2)
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
void ef_adam_step(ef_adam *a, float *params, const float *grads);

/* A linear learning-rate schedule: lr at step 0 down to lr * final_frac at
 * the last of `steps` steps. */
float ef_adam_lr_linear(double lr, double final_frac, int step, int steps);

/* Scale g (n) so its Euclidean norm is at most max_norm (no change when it
 * already is, or when max_norm <= 0). Returns the norm before clipping. */
float ef_nn_clip_grad_norm(float *g, size_t n, float max_norm);

#endif
