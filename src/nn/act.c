/* Activation kernels. The hot ones (linear, ReLU, LeakyReLU: the GAN
 * workload) are written as straight loops over a row with restrict
 * pointers and no calls, so the compiler turns them into SIMD code; tanh,
 * sigmoid and softmax call libm and serve small networks. */
#include <math.h>
#include <string.h>

#include "nn_internal.h"

static const char *const act_names[EF_NN_N_ACT] = {
    "linear", "relu", "leaky_relu", "tanh", "sigmoid", "softmax"};

const char *ef_nn_act_name(ef_nn_act act) {
  return ((int)act >= 0 && (int)act < EF_NN_N_ACT) ? act_names[act] : NULL;
}

int ef_nn_act_parse(const char *name, ef_nn_act *act) {
  for (int i = 0; i < EF_NN_N_ACT; i++)
    if (!strcmp(name, act_names[i])) {
      *act = (ef_nn_act)i;
      return 0;
    }
  return -1;
}

static float sigmoidf(float x) {
  /* split by sign so exp never overflows */
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

static void softmax_row(int cols, float *restrict z) {
  float mx = z[0];
  for (int j = 1; j < cols; j++) mx = z[j] > mx ? z[j] : mx;
  double s = 0.0;
  for (int j = 0; j < cols; j++) {
    z[j] = expf(z[j] - mx);
    s += z[j];
  }
  float inv = (float)(1.0 / s);
  for (int j = 0; j < cols; j++) z[j] *= inv;
}

/* 4-float vectors (GCC/Clang vector extensions, SSE2 on every x86-64): the
 * build's -O2 does not vectorize these loops by itself (GCC 12 needs -O3 to
 * if-convert the LeakyReLU select), and they are most of the non-matrix
 * time of a GAN step. Loads and stores go through memcpy, so no alignment
 * is assumed. */
typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));

static inline v4f ld4(const float *p) {
  v4f v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void st4(float *p, v4f v) { memcpy(p, &v, sizeof v); }
/* m ? a : b with m the all-ones/all-zeros mask of a vector comparison */
static inline v4f sel4(v4i m, v4f a, v4f b) {
  return (v4f)((m & (v4i)a) | (~m & (v4i)b));
}

static void bias_leaky_row(int cols, float slope, const float *restrict b,
                           float *restrict r) {
  int j = 0;
  for (; j + 4 <= cols; j += 4) {
    v4f v = ld4(r + j) + ld4(b + j);
    st4(r + j, sel4(v > 0.0f, v, v * slope));
  }
  for (; j < cols; j++) {
    float v = r[j] + b[j];
    r[j] = v > 0.0f ? v : slope * v;
  }
}

static void bias_row(int cols, const float *restrict b, float *restrict r) {
  int j = 0;
  for (; j + 4 <= cols; j += 4) st4(r + j, ld4(r + j) + ld4(b + j));
  for (; j < cols; j++) r[j] += b[j];
}

void ef_nn_bias_act_forward(ef_nn_act act, float slope, int rows, int cols,
                            const float *restrict bias, float *restrict z) {
  for (int i = 0; i < rows; i++) {
    float *restrict r = z + (size_t)i * cols; /* (cols) */
    switch (act) {
    case EF_ACT_LINEAR: bias_row(cols, bias, r); break;
    case EF_ACT_RELU: bias_leaky_row(cols, 0.0f, bias, r); break;
    case EF_ACT_LEAKY_RELU: bias_leaky_row(cols, slope, bias, r); break;
    case EF_ACT_TANH:
      for (int j = 0; j < cols; j++) r[j] = tanhf(r[j] + bias[j]);
      break;
    case EF_ACT_SIGMOID:
      for (int j = 0; j < cols; j++) r[j] = sigmoidf(r[j] + bias[j]);
      break;
    case EF_ACT_SOFTMAX:
      bias_row(cols, bias, r);
      softmax_row(cols, r);
      break;
    }
  }
}

void ef_nn_act_forward(ef_nn_act act, float slope, int rows, int cols,
                       const float *x, float *y) {
  if (y != x) memmove(y, x, (size_t)rows * cols * sizeof *y);
  for (int i = 0; i < rows; i++) {
    float *restrict r = y + (size_t)i * cols;
    switch (act) {
    case EF_ACT_LINEAR: break;
    case EF_ACT_RELU:
      for (int j = 0; j < cols; j++) r[j] = r[j] > 0.0f ? r[j] : 0.0f;
      break;
    case EF_ACT_LEAKY_RELU:
      for (int j = 0; j < cols; j++) r[j] = r[j] > 0.0f ? r[j] : slope * r[j];
      break;
    case EF_ACT_TANH:
      for (int j = 0; j < cols; j++) r[j] = tanhf(r[j]);
      break;
    case EF_ACT_SIGMOID:
      for (int j = 0; j < cols; j++) r[j] = sigmoidf(r[j]);
      break;
    case EF_ACT_SOFTMAX: softmax_row(cols, r); break;
    }
  }
}

/* g *= act'(y) over one row; the derivative is written in terms of the
 * output y: LeakyReLU/ReLU keep the sign of their input (slope >= 0), tanh'
 * = 1 - y^2, sigmoid' = y (1 - y), and softmax's Jacobian-vector product is
 * y * (g - <g, y>). */
static void act_backward_row(ef_nn_act act, float slope, int cols,
                             const float *restrict y, float *restrict g) {
  switch (act) {
  case EF_ACT_LINEAR: break;
  case EF_ACT_RELU:
    for (int j = 0; j < cols; j++) g[j] = y[j] > 0.0f ? g[j] : 0.0f;
    break;
  case EF_ACT_LEAKY_RELU:
    for (int j = 0; j < cols; j++) g[j] = y[j] > 0.0f ? g[j] : slope * g[j];
    break;
  case EF_ACT_TANH:
    for (int j = 0; j < cols; j++) g[j] *= 1.0f - y[j] * y[j];
    break;
  case EF_ACT_SIGMOID:
    for (int j = 0; j < cols; j++) g[j] *= y[j] * (1.0f - y[j]);
    break;
  case EF_ACT_SOFTMAX: {
    double dot = 0.0;
    for (int j = 0; j < cols; j++) dot += (double)g[j] * y[j];
    for (int j = 0; j < cols; j++) g[j] = y[j] * (g[j] - (float)dot);
    break;
  }
  }
}

void ef_nn_act_backward(ef_nn_act act, float slope, int rows, int cols,
                        const float *y, const float *dy, float *dx) {
  if (dx != dy) memmove(dx, dy, (size_t)rows * cols * sizeof *dx);
  for (int i = 0; i < rows; i++)
    act_backward_row(act, slope, cols, y + (size_t)i * cols, dx + (size_t)i * cols);
}

/* g *= (y > 0 ? 1 : slope) and db += g over one row (ReLU: slope 0). */
static void leaky_back_row(int cols, float slope, const float *restrict y,
                           float *restrict g, float *restrict db) {
  int j = 0;
  for (; j + 4 <= cols; j += 4) {
    v4f gv = ld4(g + j);
    v4f v = sel4(ld4(y + j) > 0.0f, gv, gv * slope);
    st4(g + j, v);
    if (db) st4(db + j, ld4(db + j) + v);
  }
  for (; j < cols; j++) {
    float v = y[j] > 0.0f ? g[j] : slope * g[j];
    g[j] = v;
    if (db) db[j] += v;
  }
}

static void add_row(int cols, const float *restrict g, float *restrict db) {
  int j = 0;
  for (; j + 4 <= cols; j += 4) st4(db + j, ld4(db + j) + ld4(g + j));
  for (; j < cols; j++) db[j] += g[j];
}

void ef_nn_act_backward_bias(ef_nn_act act, float slope, int rows, int cols,
                             const float *restrict y, float *restrict g,
                             float *restrict db, int accum) {
  if (db && !accum) memset(db, 0, (size_t)cols * sizeof *db);
  for (int i = 0; i < rows; i++) {
    const float *restrict yr = y + (size_t)i * cols; /* (cols) */
    float *restrict gr = g + (size_t)i * cols;       /* (cols) */
    /* the common cases fuse derivative and bias sum in one sweep */
    if (act == EF_ACT_LEAKY_RELU || act == EF_ACT_RELU) {
      leaky_back_row(cols, act == EF_ACT_RELU ? 0.0f : slope, yr, gr, db);
    } else {
      act_backward_row(act, slope, cols, yr, gr);
      if (db) add_row(cols, gr, db);
    }
  }
}
