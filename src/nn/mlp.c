/* Multilayer perceptrons: one allocation per network (llm.c), dense layers
 * over the sgemm wrapper, fused bias + activation passes. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/rng.h"
#include "nn_internal.h"

struct ef_mlp {
  int n_layers, max_batch, max_width;
  float slope;
  size_t n_params;
  size_t mem_bytes;
  int *widths;       /* (n_layers + 1) */
  ef_nn_act *acts;   /* (n_layers) */
  size_t *w_off;     /* (n_layers) offset of W_l in params */
  size_t *b_off;     /* (n_layers) offset of b_l in params */
  float **out;       /* (n_layers) A_l, each (max_batch, widths[l+1]) */
  float *params;     /* (n_params) */
  float *grads;      /* (n_params), same layout */
  float *gbuf[2];    /* each (max_batch, max_width): backward ping-pong */
  float *wt;         /* (n_params): W_l^T (in_l, out_l) at W_l's offset, for dX */
  const float *x;    /* (B, widths[0]) input of the last forward, not owned */
  int batch;         /* rows of the last forward */
  ef_nn_trace *trace;
};

/* Buffers start on 64-byte boundaries (cache lines, AVX-512 loads). */
#define EF_ALIGN 64
static size_t round_up(size_t n) { return (n + EF_ALIGN - 1) / EF_ALIGN * EF_ALIGN; }

/* Refuse a spec the engine cannot run; its widest layer and parameter count. */
static int check_spec(ef_ctx *ctx, const ef_mlp_spec *spec, int *max_width_out,
                      size_t *n_params_out) {
  int n = spec->n_layers;
  if (n < 1 || !spec->widths || !spec->acts)
    return ef_error_set(ctx, EF_ERR_INPUT, "mlp: need at least one layer with widths and activations");
  if (spec->max_batch < 1)
    return ef_error_set(ctx, EF_ERR_INPUT, "mlp: max_batch %d < 1", spec->max_batch);
  if (!(spec->leaky_slope >= 0.0f && spec->leaky_slope <= 1.0f))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "mlp: leaky_slope %g outside [0, 1] (the backward pass reads the "
                        "derivative off the output's sign)", (double)spec->leaky_slope);
  int max_width = 0;
  size_t n_params = 0;
  for (int l = 0; l <= n; l++) {
    if (spec->widths[l] < 1 || spec->widths[l] > (1 << 20))
      return ef_error_set(ctx, EF_ERR_INPUT, "mlp: width %d of layer %d outside [1, 2^20]",
                          spec->widths[l], l);
    if (l > 0 && spec->widths[l] > max_width) max_width = spec->widths[l];
  }
  for (int l = 0; l < n; l++) {
    if ((int)spec->acts[l] < 0 || (int)spec->acts[l] >= EF_NN_N_ACT)
      return ef_error_set(ctx, EF_ERR_INPUT, "mlp: unknown activation %d at layer %d",
                          (int)spec->acts[l], l);
    if (spec->acts[l] == EF_ACT_SOFTMAX && l != n - 1)
      return ef_error_set(ctx, EF_ERR_INPUT, "mlp: softmax only as the last activation (layer %d of %d)",
                          l, n);
    size_t nw = (size_t)spec->widths[l] * spec->widths[l + 1];
    n_params += nw + spec->widths[l + 1];
  }
  if ((double)spec->max_batch * max_width > (double)INT32_MAX)
    return ef_error_set(ctx, EF_ERR_INPUT, "mlp: max_batch %d x width %d too large",
                        spec->max_batch, max_width);
  *max_width_out = max_width;
  *n_params_out = n_params;
  return EF_OK;
}

int ef_mlp_create(ef_ctx *ctx, ef_mlp **out, const ef_mlp_spec *spec) {
  *out = NULL;
  int n = spec->n_layers, max_width = 0;
  size_t n_params = 0, n_out = 0;
  EF_CHECK(check_spec(ctx, spec, &max_width, &n_params));
  /* One block: struct and tables, then the float buffers, each aligned. */
  size_t off = round_up(sizeof(ef_mlp));
  size_t o_widths = off; off = round_up(off + (size_t)(n + 1) * sizeof(int));
  size_t o_acts = off; off = round_up(off + (size_t)n * sizeof(ef_nn_act));
  size_t o_woff = off; off = round_up(off + (size_t)n * sizeof(size_t));
  size_t o_boff = off; off = round_up(off + (size_t)n * sizeof(size_t));
  size_t o_out = off; off = round_up(off + (size_t)n * sizeof(float *));
  size_t o_params = off; off = round_up(off + n_params * sizeof(float));
  size_t o_grads = off; off = round_up(off + n_params * sizeof(float));
  size_t o_acts_mem = off;
  for (int l = 0; l < n; l++) {
    size_t sz = round_up((size_t)spec->max_batch * spec->widths[l + 1] * sizeof(float));
    off += sz;
    n_out += sz;
  }
  size_t gsz = round_up((size_t)spec->max_batch * max_width * sizeof(float));
  size_t o_g0 = off; off += gsz;
  size_t o_g1 = off; off += gsz;
  size_t o_wt = off; off += round_up(n_params * sizeof(float));

  char *mem = aligned_alloc(EF_ALIGN, off);
  if (!mem)
    return ef_error_set(ctx, EF_ERR_NOMEM, "mlp: out of memory allocating %zu bytes", off);
  memset(mem, 0, off);
  ef_mlp *m = (ef_mlp *)mem;
  m->n_layers = n;
  m->max_batch = spec->max_batch;
  m->max_width = max_width;
  m->slope = spec->leaky_slope;
  m->n_params = n_params;
  m->mem_bytes = off;
  m->widths = (int *)(mem + o_widths);
  m->acts = (ef_nn_act *)(mem + o_acts);
  m->w_off = (size_t *)(mem + o_woff);
  m->b_off = (size_t *)(mem + o_boff);
  m->out = (float **)(mem + o_out);
  m->params = (float *)(mem + o_params);
  m->grads = (float *)(mem + o_grads);
  m->gbuf[0] = (float *)(mem + o_g0);
  m->gbuf[1] = (float *)(mem + o_g1);
  m->wt = (float *)(mem + o_wt);
  size_t p = 0, a = o_acts_mem;
  for (int l = 0; l <= n; l++) m->widths[l] = spec->widths[l];
  for (int l = 0; l < n; l++) {
    m->acts[l] = spec->acts[l];
    m->w_off[l] = p;
    p += (size_t)spec->widths[l] * spec->widths[l + 1];
    m->b_off[l] = p;
    p += (size_t)spec->widths[l + 1];
    m->out[l] = (float *)(mem + a);
    a += round_up((size_t)spec->max_batch * spec->widths[l + 1] * sizeof(float));
  }
  (void)n_out;
  *out = m;
  return EF_OK;
}

void ef_mlp_destroy(ef_mlp *m) { free(m); }

void ef_mlp_init(ef_mlp *m, uint64_t seed, uint32_t unit) {
  ef_rng r;
  ef_rng_init(&r, seed, EF_RNG_NN_INIT, unit);
  for (int l = 0; l < m->n_layers; l++) {
    double bound = 1.0 / sqrt((double)m->widths[l]);
    size_t nw = (size_t)m->widths[l] * m->widths[l + 1];
    float *w = m->params + m->w_off[l], *b = m->params + m->b_off[l];
    for (size_t i = 0; i < nw; i++) w[i] = (float)(bound * (2.0 * ef_rng_uniform(&r) - 1.0));
    for (int i = 0; i < m->widths[l + 1]; i++)
      b[i] = (float)(bound * (2.0 * ef_rng_uniform(&r) - 1.0));
  }
}

int ef_mlp_n_layers(const ef_mlp *m) { return m->n_layers; }
int ef_mlp_width(const ef_mlp *m, int i) {
  return (i >= 0 && i <= m->n_layers) ? m->widths[i] : 0;
}
ef_nn_act ef_mlp_act(const ef_mlp *m, int layer) { return m->acts[layer]; }
float ef_mlp_leaky_slope(const ef_mlp *m) { return m->slope; }
int ef_mlp_max_batch(const ef_mlp *m) { return m->max_batch; }
size_t ef_mlp_n_params(const ef_mlp *m) { return m->n_params; }
float *ef_mlp_params(ef_mlp *m) { return m->params; }
float *ef_mlp_grads(ef_mlp *m) { return m->grads; }
size_t ef_mlp_weight_offset(const ef_mlp *m, int layer) { return m->w_off[layer]; }
size_t ef_mlp_bias_offset(const ef_mlp *m, int layer) { return m->b_off[layer]; }
const float *ef_mlp_layer_output(const ef_mlp *m, int layer) { return m->out[layer]; }
void ef_mlp_set_trace(ef_mlp *m, ef_nn_trace *t) { m->trace = t; }
void ef_mlp_zero_grad(ef_mlp *m) { memset(m->grads, 0, m->n_params * sizeof(float)); }

int ef_mlp_create_plain(ef_ctx *ctx, ef_mlp **out, int in, int hidden, int layers, int outw,
                        int max_batch) {
  int widths[18];
  ef_nn_act acts[17];
  if (layers < 0 || layers > 16)
    return ef_error_set(ctx, EF_ERR_INPUT, "network: %d hidden layers (allowed 0..16)", layers);
  widths[0] = in;
  for (int l = 0; l < layers; l++) {
    widths[l + 1] = hidden;
    acts[l] = EF_ACT_LEAKY_RELU;
  }
  widths[layers + 1] = outw;
  acts[layers] = EF_ACT_LINEAR;
  ef_mlp_spec spec = {layers + 1, widths, acts, 0.2f, max_batch};
  return ef_mlp_create(ctx, out, &spec);
}

int ef_mlp_average_first(double frac, int steps) {
  int first = steps - (int)(frac * steps + 0.5);
  return first < steps ? first : steps;
}

void ef_mlp_average_step(ef_mlp *m, float *avg, int step, int first, int steps) {
  if (step < first) return;
  size_t n = m->n_params;
  float *p = m->params;
  if (step == first) {
    memcpy(avg, p, n * sizeof *avg);
  } else {
    float w = 1.0f / (float)(step - first + 1);
    for (size_t i = 0; i < n; i++) avg[i] += w * (p[i] - avg[i]);
  }
  if (step == steps - 1) memcpy(p, avg, n * sizeof *p);
}

double ef_mlp_forward_macs(const ef_mlp *m, int B) {
  double s = 0.0;
  for (int l = 0; l < m->n_layers; l++) s += (double)m->widths[l] * m->widths[l + 1];
  return s * B;
}

/* dst (cols, rows) = src (rows, cols)^T, in 16 x 16 tiles so that both the
 * reads and the strided writes stay within a few cache lines. */
static void transpose(int rows, int cols, const float *restrict src, float *restrict dst) {
  enum { T = 16 };
  for (int i0 = 0; i0 < rows; i0 += T)
    for (int j0 = 0; j0 < cols; j0 += T) {
      int i1 = i0 + T < rows ? i0 + T : rows, j1 = j0 + T < cols ? j0 + T : cols;
      for (int i = i0; i < i1; i++)
        for (int j = j0; j < j1; j++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
    }
}

const float *ef_mlp_forward(ef_mlp *m, const float *x, int B) {
  /* B > max_batch would write past the activations: a programming error,
   * clamped rather than corrupting memory (callers size max_batch). */
  if (B > m->max_batch) B = m->max_batch;
  m->x = x;
  m->batch = B;
  const float *in = x; /* (B, widths[l]) */
  for (int l = 0; l < m->n_layers; l++) {
    int ni = m->widths[l], no = m->widths[l + 1];
    float *z = m->out[l]; /* (B, no) */
    /* Z (B, no) = X (B, ni) . W^T, W stored (no, ni) */
    ef_nn_gemm(m->trace, 0, 1, B, no, ni, in, ni, m->params + m->w_off[l], ni, 0.0f, z, no);
    ef_nn_bias_act_forward(m->acts[l], m->slope, B, no, m->params + m->b_off[l], z);
    in = z;
  }
  return m->out[m->n_layers - 1];
}

void ef_mlp_backward(ef_mlp *m, const float *dout, float *dx, int flags) {
  int B = m->batch, L = m->n_layers - 1;
  int want_params = flags & EF_MLP_GRAD_PARAMS, accum = (flags & EF_MLP_GRAD_ACCUM) != 0;
  int cur = 0;
  float *g = m->gbuf[cur]; /* (B, widths[l+1]): dLoss/dA_l, then dLoss/dZ_l */
  memcpy(g, dout, (size_t)B * m->widths[L + 1] * sizeof(float));
  for (int l = L; l >= 0; l--) {
    int ni = m->widths[l], no = m->widths[l + 1];
    const float *xin = l == 0 ? m->x : m->out[l - 1]; /* (B, ni) */
    const float *w = m->params + m->w_off[l];          /* (no, ni) */
    ef_nn_act_backward_bias(m->acts[l], m->slope, B, no, m->out[l], g,
                            want_params ? m->grads + m->b_off[l] : NULL, accum);
    if (want_params) /* dW (no, ni) = dZ^T (no, B) . X (B, ni) */
      ef_nn_gemm(m->trace, 1, 0, no, ni, B, g, no, xin, ni, accum ? 1.0f : 0.0f,
                 m->grads + m->w_off[l], ni);
    float *gin = l > 0 ? m->gbuf[cur ^ 1] : dx; /* (B, ni) */
    if (gin) {
      /* dX (B, ni) = dZ (B, no) . W (no, ni). OpenBLAS 0.3.21 runs
       * row-major NN products whose N (here ni) has N % 16 in 1..8 through
       * a small-matrix kernel that calls malloc on every call; for those
       * widths the product is issued as NT on a transposed copy of W
       * (the NT form never allocates and runs at the same speed). */
      if (ni % 16 == 0 || ni % 16 > 8) {
        ef_nn_gemm(m->trace, 0, 0, B, ni, no, g, no, w, ni, 0.0f, gin, ni);
      } else {
        float *wt = m->wt + m->w_off[l]; /* (ni, no) */
        transpose(no, ni, w, wt);
        ef_nn_gemm(m->trace, 0, 1, B, ni, no, g, no, wt, no, 0.0f, gin, ni);
      }
    }
    cur ^= 1;
    g = gin;
    if (!g) break;
  }
}
