/* Density-ratio classifier (include/ensfold/nn_classifier.h). */
#include "ensfold/nn_classifier.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/error.h"
#include "ensfold/nn_adam.h"
#include "ensfold/nn_loss.h"

struct ef_classifier {
  ef_mlp *net;
  ef_adam *adam;
  float *avg;     /* (n_params) running mean of the parameters */
  float *dlogit;  /* (max_rows) */
  int in, steps, first, max_rows;
  double lr, lr_final;
};

int ef_classifier_create(ef_ctx *ctx, ef_classifier **out, int in, const ef_net_params *np,
                         double lr_final, double average, int max_rows) {
  *out = NULL;
  if (in < 1 || max_rows < 1 || np->steps < 1)
    return ef_error_set(ctx, EF_ERR_INPUT, "classifier: input width %d, rows %d, steps %d "
                        "must be >= 1", in, max_rows, np->steps);
  ef_classifier *c = calloc(1, sizeof *c);
  if (!c) return ef_error_set(ctx, EF_ERR_NOMEM, "classifier: out of memory");
  int rc = ef_mlp_create_plain(ctx, &c->net, in, np->hidden, np->layers, 1, max_rows);
  if (rc == EF_OK) rc = ef_adam_create_lr(ctx, &c->adam, ef_mlp_n_params(c->net), np->lr, 0.9f);
  if (rc == EF_OK) {
    c->avg = malloc(ef_mlp_n_params(c->net) * sizeof(float));
    c->dlogit = malloc((size_t)max_rows * sizeof(float));
    if (!c->avg || !c->dlogit) rc = ef_error_set(ctx, EF_ERR_NOMEM, "classifier: out of memory");
  }
  if (rc != EF_OK) {
    ef_classifier_destroy(c);
    return rc;
  }
  c->in = in;
  c->steps = np->steps;
  c->first = ef_mlp_average_first(average, np->steps);
  c->max_rows = max_rows;
  c->lr = np->lr;
  c->lr_final = lr_final;
  *out = c;
  return EF_OK;
}

void ef_classifier_destroy(ef_classifier *c) {
  if (!c) return;
  ef_mlp_destroy(c->net);
  ef_adam_destroy(c->adam);
  free(c->avg);
  free(c->dlogit);
  free(c);
}

void ef_classifier_init(ef_classifier *c, uint64_t seed, uint32_t unit) {
  ef_mlp_init(c->net, seed, unit);
  ef_adam_reset(c->adam);
}

int ef_classifier_step(ef_ctx *ctx, ef_classifier *c, const float *x, int n1, int n,
                       const float *w, int step, const char *what, double *loss) {
  if (n > c->max_rows || n1 < 0 || n1 > n)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "%s: %d rows (%d of class 1) for a classifier "
                        "made for %d", what, n, n1, c->max_rows);
  const float *logit = ef_mlp_forward(c->net, x, n);
  *loss = ef_loss_bce_sum(n, n1, logit, w, c->dlogit);
  EF_CHECK(ef_loss_check(ctx, *loss, what, step));
  ef_mlp_zero_grad(c->net);
  ef_mlp_backward(c->net, c->dlogit, NULL, EF_MLP_GRAD_PARAMS);
  ef_adam_set_lr(c->adam, ef_adam_lr_linear(c->lr, c->lr_final, step, c->steps));
  ef_adam_step(c->adam, ef_mlp_params(c->net), ef_mlp_grads(c->net));
  ef_mlp_average_step(c->net, c->avg, step, c->first, c->steps);
  return EF_OK;
}

float ef_classifier_ratio(float logit, double clip) {
  double q = exp((double)logit);
  return (float)(q > clip ? clip : q < 1.0 / clip ? 1.0 / clip : q);
}

void ef_classifier_logits(ef_classifier *c, const float *x, int n, float *out) {
  for (int i = 0; i < n; i += c->max_rows) {
    int m = n - i < c->max_rows ? n - i : c->max_rows;
    memcpy(out + i, ef_mlp_forward(c->net, x + (size_t)i * c->in, m), (size_t)m * sizeof(float));
  }
}
