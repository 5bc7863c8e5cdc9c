/* The engine's one sgemm wrapper, the call trace the benchmark replays, the
 * OpenBLAS thread setting and bulk normal numbers. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "ensfold/nn.h"
#include "ensfold/rng.h"

struct ef_nn_trace {
  int capacity, count, on, overflowed;
  ef_nn_gemm_call calls[]; /* (capacity) */
};

int ef_nn_trace_create(ef_ctx *ctx, ef_nn_trace **out, int capacity) {
  *out = NULL;
  if (capacity < 1)
    return ef_error_set(ctx, EF_ERR_INPUT, "gemm trace capacity %d < 1", capacity);
  ef_nn_trace *t = calloc(1, sizeof *t + (size_t)capacity * sizeof t->calls[0]);
  if (!t) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory allocating a gemm trace");
  t->capacity = capacity;
  *out = t;
  return EF_OK;
}

void ef_nn_trace_destroy(ef_nn_trace *t) { free(t); }
void ef_nn_trace_on(ef_nn_trace *t, int on) { t->on = on; }
void ef_nn_trace_clear(ef_nn_trace *t) { t->count = t->overflowed = 0; }
int ef_nn_trace_count(const ef_nn_trace *t) { return t->count; }
int ef_nn_trace_overflowed(const ef_nn_trace *t) { return t->overflowed; }

const ef_nn_gemm_call *ef_nn_trace_call(const ef_nn_trace *t, int i) {
  return (i >= 0 && i < t->count) ? &t->calls[i] : NULL;
}

double ef_nn_trace_flops(const ef_nn_trace *t) {
  double f = 0.0;
  for (int i = 0; i < t->count; i++)
    f += 2.0 * t->calls[i].m * (double)t->calls[i].n * t->calls[i].k;
  return f;
}

/* A product with one output column or row is a matrix-vector product:
 * sgemv does it faster, and OpenBLAS 0.3.21's sgemm small-matrix kernel
 * (NN, N = 1) calls malloc on every call, which a training step must not. */
static void issue(const ef_nn_gemm_call *c) {
  if (c->n == 1) {
    /* C (m, 1) = op(A) (m, k) op(B) (k, 1); op(B)'s elements step by ldb
     * when B is stored (k, 1), by 1 when stored (1, k) */
    cblas_sgemv(CblasRowMajor, c->trans_a ? CblasTrans : CblasNoTrans, c->trans_a ? c->k : c->m,
                c->trans_a ? c->m : c->k, 1.0f, c->a, c->lda, c->b, c->trans_b ? 1 : c->ldb,
                c->beta, c->c, c->ldc);
    return;
  }
  if (c->m == 1) {
    /* C (1, n) = op(A) (1, k) op(B) (k, n), i.e. C^T = op(B)^T op(A)^T */
    cblas_sgemv(CblasRowMajor, c->trans_b ? CblasNoTrans : CblasTrans, c->trans_b ? c->n : c->k,
                c->trans_b ? c->k : c->n, 1.0f, c->b, c->ldb, c->a, c->trans_a ? c->lda : 1,
                c->beta, c->c, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, c->trans_a ? CblasTrans : CblasNoTrans,
              c->trans_b ? CblasTrans : CblasNoTrans, c->m, c->n, c->k, 1.0f,
              c->a, c->lda, c->b, c->ldb, c->beta, c->c, c->ldc);
}

void ef_nn_trace_replay(const ef_nn_trace *t, int first, int count) {
  int end = count < 0 ? t->count : first + count;
  if (end > t->count) end = t->count;
  for (int i = first < 0 ? 0 : first; i < end; i++) issue(&t->calls[i]);
}

void ef_nn_gemm(ef_nn_trace *t, int trans_a, int trans_b, int m, int n, int k,
                const float *a, int lda, const float *b, int ldb, float beta,
                float *c, int ldc) {
  ef_nn_gemm_call call = {trans_a, trans_b, m, n, k, lda, ldb, ldc, beta, a, b, c};
  if (t && t->on) {
    if (t->count < t->capacity) t->calls[t->count++] = call;
    else t->overflowed = 1;
  }
  issue(&call);
}

/* OpenBLAS (pthreads build) starts its pool of threads when the library is
 * loaded, before main, sized by OPENBLAS_NUM_THREADS / OMP_NUM_THREADS or
 * the cores it may run on; openblas_set_num_threads(n) only grows that pool,
 * so a smaller n leaves the extra threads asleep for the life of the
 * process (measured: 0.3.21, one idle thread per core in every rank). Where
 * the library exports them, the pool is shut down and made again with n - 1
 * workers, as OpenBLAS itself does after fork. Weak references: another
 * OpenBLAS build (OpenMP, which starts threads lazily) or a newer one
 * without these symbols keeps the plain call. */
extern int blas_num_threads __attribute__((weak));
extern int blas_thread_shutdown_(void) __attribute__((weak));

int ef_nn_set_threads(ef_ctx *ctx, int n) {
  if (n < 1) return ef_error_set(ctx, EF_ERR_INPUT, "BLAS threads %d < 1", n);
  if (&blas_num_threads && blas_thread_shutdown_ && blas_num_threads > n) {
    blas_thread_shutdown_();
    blas_num_threads = n;
  }
  openblas_set_num_threads(n);
  return EF_OK;
}

int ef_nn_threads(void) { return openblas_get_num_threads(); }

const char *ef_nn_blas_info(void) { return openblas_get_config(); }

void ef_nn_fill_normal(struct ef_rng *r, float *x, size_t n) {
  /* Box-Muller on pairs of 32-bit words: u1 in (0, 1] keeps log finite. The
   * float math is ~5x faster than ef_rng_normal's double path, which matters
   * when a GAN draws B x latent numbers every step. */
  const float two_pi = 6.28318530717958647692f;
  size_t i = 0;
  for (; i + 1 < n; i += 2) {
    uint32_t a = ef_rng_u32(r), b = ef_rng_u32(r);
    float u1 = ((float)(a >> 8) + 1.0f) * (1.0f / 16777216.0f);
    float u2 = (float)(b >> 8) * (1.0f / 16777216.0f);
    float rad = sqrtf(-2.0f * logf(u1));
    x[i] = rad * cosf(two_pi * u2);
    x[i + 1] = rad * sinf(two_pi * u2);
  }
  if (i < n) {
    uint32_t a = ef_rng_u32(r), b = ef_rng_u32(r);
    float u1 = ((float)(a >> 8) + 1.0f) * (1.0f / 16777216.0f);
    float u2 = (float)(b >> 8) * (1.0f / 16777216.0f);
    x[i] = sqrtf(-2.0f * logf(u1)) * cosf(two_pi * u2);
  }
}
