/* The neural-network engine: dense layers over cblas_sgemm (float32,
 * row-major), activations and multilayer perceptrons with forward and
 * backward passes, including the gradient with respect to the inputs.
 *
 * Memory follows llm.c: an ef_mlp is ONE allocation holding the struct, its
 * shape tables, the parameters, the gradients (same layout as the
 * parameters, so optimizers, weight I/O and reductions are one loop over one
 * float*), the activations of every layer for max_batch rows and the
 * backward scratch. Nothing is allocated after ef_mlp_create: forward,
 * backward, the losses (nn_loss.h) and Adam (nn_adam.h) never call malloc.
 *
 * Parameter layout, layer l = 0 .. n_layers-1 in order:
 *   W_l (out_l, in_l) row-major (PyTorch's nn.Linear.weight), then b_l (out_l).
 * A layer computes A_l = act_l(X_l W_l^T + b_l) with X_0 the input and
 * X_{l+1} = A_l. None of these functions is collective; an ef_mlp is not
 * thread-safe (one per thread). */
#ifndef ENSFOLD_NN_H
#define ENSFOLD_NN_H

#include <stddef.h>
#include <stdint.h>

#include "ensfold/ctx.h"

typedef enum {
  EF_ACT_LINEAR = 0,
  EF_ACT_RELU = 1,
  EF_ACT_LEAKY_RELU = 2, /* slope from ef_mlp_spec.leaky_slope */
  EF_ACT_TANH = 3,
  EF_ACT_SIGMOID = 4,
  EF_ACT_SOFTMAX = 5, /* over each row (the layer's outputs) */
} ef_nn_act;
#define EF_NN_N_ACT 6

/* "linear", "relu", "leaky_relu", "tanh", "sigmoid", "softmax"; NULL when
 * out of range. These names are what weight files store. */
const char *ef_nn_act_name(ef_nn_act act);
/* Inverse of ef_nn_act_name: returns 0 and sets *act, or -1. */
int ef_nn_act_parse(const char *name, ef_nn_act *act);

/* Element-wise activation kernels, usable on their own. n = rows * cols;
 * softmax works on rows of `cols`. in-place (y == x) is allowed.
 * The backward kernels take the activation OUTPUT y (every supported
 * activation's derivative is a function of y alone, so the forward pass
 * keeps only outputs) and the upstream gradient dy, and write dx. */
void ef_nn_act_forward(ef_nn_act act, float slope, int rows, int cols,
                       const float *x, float *y);
void ef_nn_act_backward(ef_nn_act act, float slope, int rows, int cols,
                        const float *y, const float *dy, float *dx);

typedef struct {
  int n_layers;        /* number of dense layers, >= 1 */
  const int *widths;   /* n_layers + 1 widths: input, hidden..., output */
  const ef_nn_act *acts; /* n_layers activations, one after each layer */
  float leaky_slope;   /* for EF_ACT_LEAKY_RELU, in [0, 1]; 0.2 typical */
  int max_batch;       /* rows the activations are sized for */
} ef_mlp_spec;

/* A network's size and training, as configs give them (gan.* sections). */
typedef struct {
  int hidden;   /* units per hidden layer */
  int layers;   /* hidden layers */
  int steps;    /* training steps */
  int batch;    /* events per step */
  double lr;    /* Adam learning rate (betas 0.5/0.999 for GANs, 0.9/0.999 otherwise) */
} ef_net_params;

typedef struct ef_mlp ef_mlp;
typedef struct ef_nn_trace ef_nn_trace;

/* Make a network; parameters are zero until ef_mlp_init or a load. Refuses
 * (EF_ERR_INPUT) bad shapes, a softmax that is not the last layer, a slope
 * outside [0, 1]. */
int ef_mlp_create(ef_ctx *ctx, ef_mlp **out, const ef_mlp_spec *spec);
void ef_mlp_destroy(ef_mlp *m); /* accepts NULL */
/* The common case: `layers` hidden layers of `hidden` leaky-ReLU (slope
 * 0.2) units between an input of width in and a linear output of width
 * out, for up to max_batch rows. */
int ef_mlp_create_plain(ef_ctx *ctx, ef_mlp **out, int in, int hidden, int layers, int outw,
                        int max_batch);

/* Initialise weights as PyTorch's nn.Linear does (Kaiming-uniform with
 * a = sqrt(5): W ~ U(-1/sqrt(in), 1/sqrt(in)), same for b) from the Philox
 * stream (seed, EF_RNG_NN_INIT, unit): the weights depend only on these. */
void ef_mlp_init(ef_mlp *m, uint64_t seed, uint32_t unit);

int ef_mlp_n_layers(const ef_mlp *m);
int ef_mlp_width(const ef_mlp *m, int i); /* i = 0 .. n_layers */
ef_nn_act ef_mlp_act(const ef_mlp *m, int layer);
float ef_mlp_leaky_slope(const ef_mlp *m);
int ef_mlp_max_batch(const ef_mlp *m);
size_t ef_mlp_n_params(const ef_mlp *m);
float *ef_mlp_params(ef_mlp *m); /* (n_params) in the layout above */
float *ef_mlp_grads(ef_mlp *m);  /* (n_params), same layout */
/* Offsets of W_l and b_l inside params/grads. */
size_t ef_mlp_weight_offset(const ef_mlp *m, int layer);
size_t ef_mlp_bias_offset(const ef_mlp *m, int layer);

/* Forward pass over B <= max_batch rows of x (B, width 0), row-major.
 * Returns the network output (B, width n_layers), which lives inside m and
 * stays valid until the next forward. The network keeps the pointer x (not
 * a copy): x must stay unchanged until the matching backward. */
const float *ef_mlp_forward(ef_mlp *m, const float *x, int B);

/* The output A_l (B, width l+1) of layer l from the last forward. */
const float *ef_mlp_layer_output(const ef_mlp *m, int layer);

/* What ef_mlp_backward computes. */
enum {
  EF_MLP_GRAD_PARAMS = 1, /* parameter gradients into ef_mlp_grads */
  EF_MLP_GRAD_ACCUM = 2,  /* add to the gradients instead of overwriting */
};
/* Backward pass for the last forward (same B): dout (B, width n_layers) is
 * dLoss/dOutput. With EF_MLP_GRAD_PARAMS the parameter gradients are written
 * (or accumulated with EF_MLP_GRAD_ACCUM); without it they are left alone,
 * which skips the weight-gradient products (training G through a fixed D).
 * dx (B, width 0) receives dLoss/dInput when not NULL; with dx NULL the
 * first layer's input-gradient product is skipped. */
void ef_mlp_backward(ef_mlp *m, const float *dout, float *dx, int flags);

void ef_mlp_zero_grad(ef_mlp *m);

/* Polyak averaging of the parameters over the last fraction frac of a
 * training of `steps` steps. ef_mlp_average_first gives the first averaged
 * step (steps when frac is 0: nothing averaged). Call ef_mlp_average_step
 * after each step: from step `first` on it folds m's parameters into their
 * running mean avg (n_params); after the last step m takes the mean. */
int ef_mlp_average_first(double frac, int steps);
void ef_mlp_average_step(ef_mlp *m, float *avg, int step, int first, int steps);

/* Multiply-adds of one forward over B rows (sum of B * in_l * out_l). */
double ef_mlp_forward_macs(const ef_mlp *m, int B);

/* OpenBLAS threads for this process (OpenBLAS's setting is process-wide).
 * ensfold runs one thread per MPI rank: callers set n = 1 (the default
 * `ensfold run` and `ensfold bench` apply) unless told otherwise. A smaller
 * n than OpenBLAS started with also ends its idle pool threads where the
 * library allows (gemm.c says how). Not thread-safe: call it while no BLAS
 * call is running. n < 1 is refused. */
int ef_nn_set_threads(ef_ctx *ctx, int n);
int ef_nn_threads(void);
/* The BLAS in use, e.g. "OpenBLAS 0.3.21 ... Cooperlake". */
const char *ef_nn_blas_info(void);

/* Every matrix product of the engine goes through one wrapper over
 * cblas_sgemm. A trace attached to networks records the calls they make
 * (shapes, transposes, operand pointers) so a benchmark can replay exactly
 * the step's products and tell matrix-product time from the rest. */
typedef struct {
  int trans_a, trans_b; /* 0 no, 1 transposed */
  int m, n, k;
  int lda, ldb, ldc;
  float beta; /* alpha is always 1 */
  const float *a, *b;
  float *c;
} ef_nn_gemm_call;

int ef_nn_trace_create(ef_ctx *ctx, ef_nn_trace **out, int capacity);
void ef_nn_trace_destroy(ef_nn_trace *t); /* accepts NULL */
/* Attach (t) or detach (NULL) a trace; calls are recorded while t is on. */
void ef_mlp_set_trace(ef_mlp *m, ef_nn_trace *t);
void ef_nn_trace_on(ef_nn_trace *t, int on);
void ef_nn_trace_clear(ef_nn_trace *t);
int ef_nn_trace_count(const ef_nn_trace *t);
int ef_nn_trace_overflowed(const ef_nn_trace *t);
const ef_nn_gemm_call *ef_nn_trace_call(const ef_nn_trace *t, int i);
/* Floating-point operations (2 m n k per call) of the recorded calls. */
double ef_nn_trace_flops(const ef_nn_trace *t);
/* Re-issue recorded calls [first, first + count) in order (count < 0: all).
 * Writes into the recorded output buffers, so replay only while those
 * buffers are scratch. */
void ef_nn_trace_replay(const ef_nn_trace *t, int first, int count);

/* The one sgemm wrapper: C (m, n) = op(A) op(B) + beta C, row-major. */
void ef_nn_gemm(ef_nn_trace *t, int trans_a, int trans_b, int m, int n, int k,
                const float *a, int lda, const float *b, int ldb, float beta,
                float *c, int ldc);

/* Fill x (n) with standard normals from r, in float. Bulk Box-Muller on
 * Philox words: the numbers depend only on r's stream position. */
struct ef_rng;
void ef_nn_fill_normal(struct ef_rng *r, float *x, size_t n);

#endif
