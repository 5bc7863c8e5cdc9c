/* Kernels shared by the nn sources; not part of the public API. */
#ifndef ENSFOLD_NN_INTERNAL_H
#define ENSFOLD_NN_INTERNAL_H

#include "ensfold/nn.h"

/* z (rows, cols) = act(z + bias), bias (cols) broadcast over rows: the
 * bias add rides on the activation's pass over the layer output instead of
 * costing a pass (or a beta = 1 gemm over a bias-filled matrix) of its own. */
void ef_nn_bias_act_forward(ef_nn_act act, float slope, int rows, int cols,
                            const float *bias, float *z);

/* g (rows, cols) *= act'(y) in place, y the layer's output; when db is not
 * NULL also db (cols) = (accum ? db : 0) + column sums of the new g, the
 * bias gradient, in the same pass. */
void ef_nn_act_backward_bias(ef_nn_act act, float slope, int rows, int cols,
                             const float *y, float *g, float *db, int accum);

#endif
