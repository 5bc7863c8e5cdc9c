/* A binary classifier for density ratios: an MLP with one logit, trained on
 * weighted rows with binary cross-entropy (ef_loss_bce_sum), Adam (betas
 * 0.9, 0.999) on a linear learning-rate decay, and Polyak averaging of its
 * parameters over the last part of the training. For two samples of
 * densities p1 (target 1) and p0 (target 0) whose row weights sum to the
 * same total per class, the trained logit x approximates log(p1 / p0), so
 * exp(x) is the likelihood ratio a reweighting method uses (OmniFold's
 * steps; the GAN's refinement, docs/methods.md).
 *
 * One allocation per network (nn.h); ef_classifier_step and
 * ef_classifier_logits never allocate. Not thread-safe. */
#ifndef ENSFOLD_NN_CLASSIFIER_H
#define ENSFOLD_NN_CLASSIFIER_H

#include <stdint.h>

#include "ensfold/ctx.h"
#include "ensfold/nn.h"

typedef struct ef_classifier ef_classifier;

/* For inputs of width `in`, np's hidden/layers/steps/lr (np->batch is the
 * caller's), up to max_rows rows per step or evaluation. */
int ef_classifier_create(ef_ctx *ctx, ef_classifier **out, int in, const ef_net_params *np,
                         double lr_final, double average, int max_rows);
void ef_classifier_destroy(ef_classifier *c); /* accepts NULL */

/* Fresh weights from (seed, EF_RNG_NN_INIT, unit); moments and average reset. */
void ef_classifier_init(ef_classifier *c, uint64_t seed, uint32_t unit);

/* Training step `step` of np->steps: x (n, in) with rows [0, n1) of class 1
 * and [n1, n) of class 0, w (n) their weights. Returns the weighted loss;
 * a non-finite loss is refused (EF_ERR_NUMERIC, naming `what`). After the
 * last step the classifier holds its averaged parameters. */
int ef_classifier_step(ef_ctx *ctx, ef_classifier *c, const float *x, int n1, int n,
                       const float *w, int step, const char *what, double *loss);

/* Logits (n) of rows x (n, in), n <= max_rows. */
void ef_classifier_logits(ef_classifier *c, const float *x, int n, float *out);

/* The density ratio a trained logit stands for, exp(logit), clipped to
 * [1 / clip, clip] (clip > 1): the reweighting rule of OmniFold and of the
 * GAN refinement. */
float ef_classifier_ratio(float logit, double clip);

#endif
