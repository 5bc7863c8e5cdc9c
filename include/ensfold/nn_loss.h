/* Losses of the neural-network engine. Each returns the loss and writes its
 * gradient with respect to the network output into a caller buffer of the
 * output's shape; none allocates. Per-event weights w may be NULL (all 1).
 * Normalisation: the weighted MEAN over the n events, (1/n) sum_i w_i l_i, as
 * PyTorch's reduction='mean' with a weight tensor; a caller that wants
 * another normalisation scales the result and the gradient. Losses are
 * accumulated in double so that large batches do not lose the small terms. */
#ifndef ENSFOLD_NN_LOSS_H
#define ENSFOLD_NN_LOSS_H

#include "ensfold/ctx.h"

/* EF_OK, or EF_ERR_NUMERIC with "<what>: loss not finite at step <step>"
 * (a training that diverged: the caller may retry with other streams). */
int ef_loss_check(ef_ctx *ctx, double loss, const char *what, int step);

/* Binary cross-entropy on logits x (n): l_i = -[y_i log s(x_i) +
 * (1 - y_i) log(1 - s(x_i))], s the logistic function, computed stably.
 * Targets y (n) may be soft (in [0, 1]); y NULL means every target is y0. */
float ef_loss_bce_logits(int n, const float *x, const float *y, float y0,
                         const float *w, float *dx);

/* Non-saturating generator loss on the discriminator's logits of generated
 * events: l_i = -log s(x_i) (BCE with target 1). */
float ef_loss_gen_nonsat(int n, const float *x, const float *w, float *dx);

/* Softmax cross-entropy with soft targets: logits x (n, k), target
 * probability vectors p (n, k): l_i = -sum_j p_ij log softmax(x_i)_j. */
float ef_loss_softmax_xent(int n, int k, const float *x, const float *p,
                           const float *w, float *dx);

/* Mean squared error over x, y (n, k): l_i = (1/k) sum_j (x_ij - y_ij)^2. */
float ef_loss_mse(int n, int k, const float *x, const float *y,
                  const float *w, float *dx);

/* Squared maximum mean discrepancy (biased V-statistic) between samples
 * x (n, d) and y (m, d) with the kernel k(a, b) = sum_s exp(-|a-b|^2 /
 * (2 sigma_s^2)) over n_sigma bandwidths:
 *   MMD^2 = mean k(x, x') + mean k(y, y') - 2 mean k(x, y).
 * dx (n, d) receives dMMD^2/dx when not NULL (y is the fixed target). Cost
 * O((n + m)^2 d), no scratch. */
float ef_loss_mmd(int n, int m, int d, const float *x, const float *y,
                  int n_sigma, const float *sigmas, float *dx);

/* Weighted sums for adversarial training, where the weights carry the
 * normalisation (e.g. 1/B per group of rows, or a per-row efficiency):
 *
 * Discriminator: rows [0, n_real) have target 1, rows [n_real, n) target 0;
 * returns sum_i w_i softplus(-x_i) over real rows + sum_i w_i softplus(x_i)
 * over the rest, dx (n) its gradient. */
double ef_loss_bce_sum(int n, int n_real, const float *x, const float *w, float *dx);
/* Non-saturating generator loss sum_i w_i softplus(-x_i) on the
 * discriminator's logits of generated rows, each row's softplus rounded to
 * float before it is weighted (the value a per-row float loss would hold);
 * dx (n) its gradient. */
double ef_loss_gen_sum(int n, const float *x, const float *w, float *dx);

/* Gradient with respect to x of MMD^2 (kernel as ef_loss_mmd, biased) for
 * points in groups: x (n, d), y (m, d); coordinates [0, d_cont) are
 * continuous (d_cont <= 64), coordinates [d_cont, d) are a group label, and
 * points whose labels differ do not interact (their kernel is taken as 0).
 * dx (n, d): only its first d_cont columns are written. Float arithmetic and
 * kernel terms below e^-40 skipped: for a training step's B x 2B pairs,
 * where ef_loss_mmd's double version is slower than needed. Returns 0, or
 * -1 (nothing written) when d_cont is outside 1..64, n_sigma outside 1..8
 * or d < d_cont. */
int ef_loss_mmd_grad_grouped(int n, int m, int d, int d_cont, const float *x, const float *y,
                             int n_sigma, const float *sigmas, float *dx);

#endif
