/* Adam and gradient-norm clipping over flat parameter vectors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/nn_adam.h"

struct ef_adam {
  ef_adam_cfg cfg;
  size_t n;
  long t;     /* steps taken */
  double b1t, b2t; /* beta1^t, beta2^t, kept as running products */
  float *m;   /* (n) first moment, parameter layout */
  float *v;   /* (n) second moment, parameter layout */
  float mem[]; /* m then v: the one allocation */
};

ef_adam_cfg ef_adam_defaults(void) {
  return (ef_adam_cfg){.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                       .weight_decay = 0.0f, .decoupled = 0};
}

int ef_adam_create(ef_ctx *ctx, ef_adam **out, size_t n, const ef_adam_cfg *cfg) {
  *out = NULL;
  if (!(cfg->lr >= 0.0f) || !(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f) ||
      !(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f) || !(cfg->eps >= 0.0f) ||
      !(cfg->weight_decay >= 0.0f))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "adam: need lr >= 0, betas in [0, 1), eps >= 0, weight_decay >= 0 "
                        "(got lr %g betas %g %g eps %g wd %g)", (double)cfg->lr,
                        (double)cfg->beta1, (double)cfg->beta2, (double)cfg->eps,
                        (double)cfg->weight_decay);
  ef_adam *a = calloc(1, sizeof *a + 2 * n * sizeof(float));
  if (!a) return ef_error_set(ctx, EF_ERR_NOMEM, "adam: out of memory for %zu parameters", n);
  a->cfg = *cfg;
  a->n = n;
  a->m = a->mem;
  a->v = a->mem + n;
  ef_adam_reset(a);
  *out = a;
  return EF_OK;
}

void ef_adam_destroy(ef_adam *a) { free(a); }

void ef_adam_reset(ef_adam *a) {
  memset(a->mem, 0, 2 * a->n * sizeof(float));
  a->t = 0;
  a->b1t = a->b2t = 1.0;
}

int ef_adam_create_lr(ef_ctx *ctx, ef_adam **out, size_t n, double lr, float beta1) {
  ef_adam_cfg a = ef_adam_defaults();
  a.lr = (float)lr;
  a.beta1 = beta1;
  return ef_adam_create(ctx, out, n, &a);
}

void ef_adam_set_lr(ef_adam *a, float lr) { a->cfg.lr = lr; }
long ef_adam_steps(const ef_adam *a) { return a->t; }

float ef_adam_lr_linear(double lr, double final_frac, int step, int steps) {
  double x = steps > 1 ? (double)step / (steps - 1) : 1.0;
  return (float)(lr * (1.0 - (1.0 - final_frac) * x));
}
float *ef_adam_m(ef_adam *a) { return a->m; }
float *ef_adam_v(ef_adam *a) { return a->v; }

void ef_adam_step(ef_adam *a, float *restrict p, const float *restrict g) {
  a->t++;
  a->b1t *= a->cfg.beta1;
  a->b2t *= a->cfg.beta2;
  const float b1 = a->cfg.beta1, b2 = a->cfg.beta2, eps = a->cfg.eps;
  const float wd = a->cfg.weight_decay;
  /* torch.optim.Adam's single-tensor form: step = lr / bc1,
   * denom = sqrt(v) / sqrt(bc2) + eps */
  const float step = (float)(a->cfg.lr / (1.0 - a->b1t));
  const float inv_sqrt_bc2 = (float)(1.0 / sqrt(1.0 - a->b2t));
  const float decay = a->cfg.decoupled ? 1.0f - a->cfg.lr * wd : 1.0f;
  const float l2 = a->cfg.decoupled ? 0.0f : wd;
  float *restrict m = a->m, *restrict v = a->v;
  for (size_t i = 0; i < a->n; i++) {
    float gi = g[i] + l2 * p[i];
    m[i] = b1 * m[i] + (1.0f - b1) * gi;
    v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
    p[i] = decay * p[i] - step * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps);
  }
}

float ef_nn_clip_grad_norm(float *g, size_t n, float max_norm) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
  double norm = sqrt(s);
  if (max_norm > 0.0f && norm > max_norm) {
    /* same factor as torch.nn.utils.clip_grad_norm_ */
    float c = (float)(max_norm / (norm + 1e-6));
    for (size_t i = 0; i < n; i++) g[i] *= c;
  }
  return (float)norm;
}
