/* ensfold bench: benchmarks of the neural-network engine (issue 3).
 *
 *   bench train-step  the reference adversarial training step (docs/performance.md)
 *   bench gemm      single-thread sgemm GFLOP/s for that step's shapes
 *
 * The reference workload is fixed so that figures compare across versions
 * and with tools/bench_nn.py's PyTorch twin: G 8->H->H->H->2 and
 * D 6->H->H->H->1 (2 coordinates + 4 topology probabilities), LeakyReLU(0.2)
 * after every hidden layer, BCE with logits, Adam(lr 1e-4, betas 0.5/0.999),
 * per step one D update on real + fake, then one G update through D; fp32. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ensfold/nn.h"
#include "ensfold/nn_adam.h"
#include "ensfold/nn_loss.h"
#include "ensfold/rng.h"

#define LATENT 8
#define DATA_DIM 6 /* 2 coordinates + 4 topology probabilities */
#define GEN_DIM 2
#define N_POOL 16  /* real batches cycled through, pre-generated */
#define TRACE_CAP 256

typedef struct {
  int batch, hidden, steps, warmup, threads, reps;
  uint64_t seed;
} bench_opts;

typedef struct {
  int B;
  ef_mlp *g, *d;
  ef_adam *opt_g, *opt_d;
  ef_rng rng;      /* latent noise: (seed, NN_TRAIN, 0) */
  float *mem;      /* one block for every buffer below */
  float *pool;     /* (N_POOL * B, 6) real events */
  float *z;        /* (B, 8) latent noise */
  float *xin;      /* (2B, 6): rows [0, B) real, [B, 2B) fake */
  float *dlogit;   /* (2B) dLoss/dlogit */
  float *dxd;      /* (B, 6) dLoss/d(D input) of the fake rows */
  float *dg;       /* (B, 2) dLoss/d(G output) */
  long step;
  float loss_d, loss_g;
} step_bench;

static void usage(FILE *out) {
  fprintf(out,
          "usage: ensfold bench train-step [--batch B] [--hidden H] [--steps S]\n"
          "                              [--warmup W] [--threads T] [--seed N]\n"
          "       ensfold bench gemm [--batch B] [--hidden H] [--reps R] [--threads T]\n\n"
          "train-step  times S steps (after W warm-up steps) of the reference adversarial pair\n"
          "            workload: G 8->H->H->H->2, D 6->H->H->H->1, LeakyReLU(0.2),\n"
          "            BCE with logits, Adam(lr 1e-4, betas 0.5/0.999); per step one\n"
          "            D update on B real + B fake events, then one G update. Prints\n"
          "            steps_per_s, GFLOP/s of the step's matrix products, and the\n"
          "            time outside matrix products (a replay of the step's own\n"
          "            sgemm calls gives the matrix-product time).\n"
          "gemm        single-thread sgemm GFLOP/s for each shape of that step.\n\n"
          "Defaults: B 1024, H 128, S 200, W 20, T 1 (OpenBLAS threads), seed 1,\n"
          "R 200. Exit codes: 0 ok, 2 bad command line, 3 internal error.\n");
}

static int parse_int(ef_ctx *ctx, const char *opt, const char *s, int lo, int hi, int *v) {
  char *end;
  long x = strtol(s, &end, 10);
  if (!*s || *end || x < lo || x > hi)
    return ef_error_set(ctx, EF_ERR_INPUT, "bench: %s wants an integer in [%d, %d], got '%s'",
                        opt, lo, hi, s);
  *v = (int)x;
  return EF_OK;
}

static int parse_opts(ef_ctx *ctx, int argc, char **argv, bench_opts *o) {
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    int *dst = NULL, lo = 1, hi = 1 << 20, seed;
    if (!strcmp(a, "--batch")) dst = &o->batch, hi = 1 << 16;
    else if (!strcmp(a, "--hidden")) dst = &o->hidden, hi = 8192;
    else if (!strcmp(a, "--steps")) dst = &o->steps;
    else if (!strcmp(a, "--warmup")) dst = &o->warmup, lo = 0;
    else if (!strcmp(a, "--threads")) dst = &o->threads, hi = 1024;
    else if (!strcmp(a, "--reps")) dst = &o->reps;
    else if (!strcmp(a, "--seed")) dst = &seed, lo = 0, hi = 2147483647;
    else return ef_error_set(ctx, EF_ERR_INPUT, "bench: unknown option '%s' (see --help)", a);
    if (i + 1 >= argc) return ef_error_set(ctx, EF_ERR_INPUT, "bench: %s needs a value", a);
    EF_CHECK(parse_int(ctx, a, argv[++i], lo, hi, dst));
    if (dst == &seed) o->seed = (uint64_t)seed;
  }
  return EF_OK;
}

static void step_bench_free(step_bench *b) {
  ef_mlp_destroy(b->g);
  ef_mlp_destroy(b->d);
  ef_adam_destroy(b->opt_g);
  ef_adam_destroy(b->opt_d);
  free(b->mem);
  memset(b, 0, sizeof *b);
}

static int step_bench_init(ef_ctx *ctx, step_bench *b, const bench_opts *o) {
  int rc = EF_OK, B = o->batch, H = o->hidden;
  memset(b, 0, sizeof *b);
  b->B = B;
  const ef_nn_act acts[4] = {EF_ACT_LEAKY_RELU, EF_ACT_LEAKY_RELU, EF_ACT_LEAKY_RELU,
                             EF_ACT_LINEAR};
  const int wg[5] = {LATENT, H, H, H, GEN_DIM}, wd[5] = {DATA_DIM, H, H, H, 1};
  ef_mlp_spec sg = {4, wg, acts, 0.2f, B}, sd = {4, wd, acts, 0.2f, 2 * B};
  ef_adam_cfg ac = ef_adam_defaults();
  ac.lr = 1e-4f;
  ac.beta1 = 0.5f;
  ac.beta2 = 0.999f;
  EF_GOTO(rc, ef_mlp_create(ctx, &b->g, &sg), fail);
  EF_GOTO(rc, ef_mlp_create(ctx, &b->d, &sd), fail);
  ef_mlp_init(b->g, o->seed, 0);
  ef_mlp_init(b->d, o->seed, 1);
  EF_GOTO(rc, ef_adam_create(ctx, &b->opt_g, ef_mlp_n_params(b->g), &ac), fail);
  EF_GOTO(rc, ef_adam_create(ctx, &b->opt_d, ef_mlp_n_params(b->d), &ac), fail);
  size_t n_pool = (size_t)N_POOL * B * DATA_DIM, n_z = (size_t)B * LATENT;
  size_t n_xin = 2 * (size_t)B * DATA_DIM, n_dl = 2 * (size_t)B, n_dxd = (size_t)B * DATA_DIM;
  size_t n_dg = (size_t)B * GEN_DIM;
  b->mem = malloc((n_pool + n_z + n_xin + n_dl + n_dxd + n_dg) * sizeof(float));
  EF_GOTO_ALLOC(ctx, rc, b->mem, "benchmark buffers", fail);
  b->pool = b->mem;
  b->z = b->pool + n_pool;
  b->xin = b->z + n_z;
  b->dlogit = b->xin + n_xin;
  b->dxd = b->dlogit + n_dl;
  b->dg = b->dxd + n_dxd;
  /* Real events: a ring of radius 1 (width 0.1) and a probability vector
   * over 4 topologies (softmax of normals): any smooth target would do. */
  ef_rng r;
  ef_rng_init(&r, o->seed, EF_RNG_NN_TRAIN, 1);
  for (size_t i = 0; i < (size_t)N_POOL * B; i++) {
    float *e = b->pool + i * DATA_DIM;
    double phi = 6.283185307179586 * ef_rng_uniform(&r), rad = 1.0 + 0.1 * ef_rng_normal(&r);
    e[0] = (float)(rad * cos(phi));
    e[1] = (float)(rad * sin(phi));
    double p[4], s = 0.0;
    for (int k = 0; k < 4; k++) s += p[k] = exp(ef_rng_normal(&r));
    for (int k = 0; k < 4; k++) e[2 + k] = (float)(p[k] / s);
  }
  ef_rng_init(&b->rng, o->seed, EF_RNG_NN_TRAIN, 0);
  return EF_OK;
fail:
  step_bench_free(b);
  return rc;
}

static void step_bench_step(step_bench *b) {
  const int B = b->B;
  const float *real = b->pool + (size_t)(b->step % N_POOL) * B * DATA_DIM; /* (B, 6) */
  b->step++;
  /* D update: real and fake rows go through D as one batch of 2B, so every
   * product runs at twice the rows and the per-call costs are paid once. */
  memcpy(b->xin, real, (size_t)B * DATA_DIM * sizeof(float));
  ef_nn_fill_normal(&b->rng, b->z, (size_t)B * LATENT);
  const float *fake = ef_mlp_forward(b->g, b->z, B); /* (B, 2) */
  float *xf = b->xin + (size_t)B * DATA_DIM;          /* (B, 6) fake rows */
  for (int i = 0; i < B; i++) {
    /* a fake event takes the generated coordinates and the topology
     * probabilities of the real event it stands beside (conditioning) */
    xf[i * DATA_DIM + 0] = fake[i * GEN_DIM + 0];
    xf[i * DATA_DIM + 1] = fake[i * GEN_DIM + 1];
    memcpy(xf + i * DATA_DIM + 2, real + i * DATA_DIM + 2, 4 * sizeof(float));
  }
  const float *logit = ef_mlp_forward(b->d, b->xin, 2 * B); /* (2B, 1) */
  b->loss_d = ef_loss_bce_logits(B, logit, NULL, 1.0f, NULL, b->dlogit) +
              ef_loss_bce_logits(B, logit + B, NULL, 0.0f, NULL, b->dlogit + B);
  ef_mlp_backward(b->d, b->dlogit, NULL, EF_MLP_GRAD_PARAMS); /* no input gradient */
  ef_adam_step(b->opt_d, ef_mlp_params(b->d), ef_mlp_grads(b->d));
  /* G update through the updated D: only D's input gradient is needed, so
   * its weight-gradient products are skipped. */
  logit = ef_mlp_forward(b->d, xf, B); /* (B, 1) */
  b->loss_g = ef_loss_gen_nonsat(B, logit, NULL, b->dlogit);
  ef_mlp_backward(b->d, b->dlogit, b->dxd, 0);
  for (int i = 0; i < B; i++) {
    b->dg[i * GEN_DIM + 0] = b->dxd[i * DATA_DIM + 0];
    b->dg[i * GEN_DIM + 1] = b->dxd[i * DATA_DIM + 1];
  }
  ef_mlp_backward(b->g, b->dg, NULL, EF_MLP_GRAD_PARAMS);
  ef_adam_step(b->opt_g, ef_mlp_params(b->g), ef_mlp_grads(b->g));
}

/* Record one step's matrix products into t (G and D both attached). */
static int record_step(ef_ctx *ctx, step_bench *b, ef_nn_trace *t) {
  ef_mlp_set_trace(b->g, t);
  ef_mlp_set_trace(b->d, t);
  ef_nn_trace_clear(t);
  ef_nn_trace_on(t, 1);
  step_bench_step(b);
  ef_nn_trace_on(t, 0);
  ef_mlp_set_trace(b->g, NULL);
  ef_mlp_set_trace(b->d, NULL);
  if (ef_nn_trace_overflowed(t))
    return ef_error_set(ctx, EF_ERR_INTERNAL, "bench: more than %d products in a step", TRACE_CAP);
  return EF_OK;
}

static int bench_train_step(ef_ctx *ctx, const bench_opts *o) {
  int rc = EF_OK;
  step_bench b;
  ef_nn_trace *t = NULL;
  EF_CHECK(step_bench_init(ctx, &b, o));
  EF_GOTO(rc, ef_nn_trace_create(ctx, &t, TRACE_CAP), done);
  for (int i = 0; i < o->warmup; i++) step_bench_step(&b);
  /* The step's own products, recorded once, replayed beside the steps: the
   * timed steps and the replays alternate in chunks of 10 so that drifts in
   * machine speed (shared cores, clock changes) hit both alike. */
  EF_GOTO(rc, record_step(ctx, &b, t), done);
  ef_nn_trace_replay(t, 0, -1);
  double secs = 0.0, rsecs = 0.0;
  for (int done_steps = 0; done_steps < o->steps;) {
    int n = o->steps - done_steps < 10 ? o->steps - done_steps : 10;
    double t0 = ef_cli_now();
    for (int i = 0; i < n; i++) step_bench_step(&b);
    double t1 = ef_cli_now();
    for (int i = 0; i < n; i++) ef_nn_trace_replay(t, 0, -1);
    rsecs += ef_cli_now() - t1;
    secs += t1 - t0;
    done_steps += n;
  }
  if (!(b.loss_d == b.loss_d) || !(b.loss_g == b.loss_g)) {
    rc = ef_error_set(ctx, EF_ERR_NUMERIC, "bench: loss is NaN after %d steps",
                      o->warmup + o->steps);
    goto done;
  }
  double replay = rsecs / o->steps, per_step = secs / o->steps;
  double flops = ef_nn_trace_flops(t);
  printf("workload: train-step batch %d hidden %d (G 8-%d-%d-%d-2, D 6-%d-%d-%d-1, "
         "LeakyReLU 0.2, BCE logits, Adam 1e-4 0.5/0.999)\n",
         o->batch, o->hidden, o->hidden, o->hidden, o->hidden, o->hidden, o->hidden, o->hidden);
  printf("blas: %s\n", ef_nn_blas_info());
  printf("threads: %d\n", ef_nn_threads());
  printf("steps: %d (after %d warm-up)\n", o->steps, o->warmup);
  printf("seconds: %.6f\n", secs);
  printf("steps_per_s: %.3f\n", 1.0 / per_step);
  printf("gemm_calls_per_step: %d\n", ef_nn_trace_count(t));
  printf("gflop_per_step: %.6f\n", flops * 1e-9);
  printf("gflops: %.3f\n", flops * 1e-9 / per_step);
  printf("gemm_replay_s_per_step: %.6e\n", replay);
  printf("step_s: %.6e\n", per_step);
  printf("non_gemm_fraction: %.4f\n", 1.0 - replay / per_step);
  printf("final_loss_d: %.6f\nfinal_loss_g: %.6f\n", (double)b.loss_d, (double)b.loss_g);
done:
  ef_nn_trace_destroy(t);
  step_bench_free(&b);
  return rc;
}

static int bench_gemm(ef_ctx *ctx, const bench_opts *o) {
  int rc = EF_OK;
  step_bench b;
  ef_nn_trace *t = NULL;
  EF_CHECK(step_bench_init(ctx, &b, o));
  EF_GOTO(rc, ef_nn_trace_create(ctx, &t, TRACE_CAP), done);
  EF_GOTO(rc, record_step(ctx, &b, t), done);
  printf("blas: %s\nthreads: %d\n", ef_nn_blas_info(), ef_nn_threads());
  printf("shapes of one train-step at batch %d hidden %d (C (M,N) = op(A) op(B), K inner):\n",
         o->batch, o->hidden);
  printf("%-6s %-6s %6s %6s %6s %6s %10s\n", "transA", "transB", "M", "N", "K", "calls",
         "GFLOP/s");
  int n = ef_nn_trace_count(t);
  for (int i = 0; i < n; i++) {
    const ef_nn_gemm_call *c = ef_nn_trace_call(t, i);
    int seen = 0, count = 0;
    for (int j = 0; j < n; j++) {
      const ef_nn_gemm_call *d = ef_nn_trace_call(t, j);
      int same = d->trans_a == c->trans_a && d->trans_b == c->trans_b && d->m == c->m &&
                 d->n == c->n && d->k == c->k;
      if (same && j < i) seen = 1;
      count += same;
    }
    if (seen) continue;
    ef_nn_trace_replay(t, i, 1);
    double t0 = ef_cli_now();
    for (int r = 0; r < o->reps; r++) ef_nn_trace_replay(t, i, 1);
    double s = (ef_cli_now() - t0) / o->reps;
    printf("%-6s %-6s %6d %6d %6d %6d %10.2f\n", c->trans_a ? "T" : "N", c->trans_b ? "T" : "N",
           c->m, c->n, c->k, count, 2.0 * c->m * (double)c->n * c->k * 1e-9 / s);
  }
  double t0 = ef_cli_now();
  for (int r = 0; r < o->reps; r++) ef_nn_trace_replay(t, 0, -1);
  double s = (ef_cli_now() - t0) / o->reps;
  printf("step_products: %d calls, %.6f GFLOP, %.3e s\n", n, ef_nn_trace_flops(t) * 1e-9, s);
  printf("gflops: %.3f\n", ef_nn_trace_flops(t) * 1e-9 / s);
done:
  ef_nn_trace_destroy(t);
  step_bench_free(&b);
  return rc;
}

int ef_cli_bench(ef_ctx *ctx, int argc, char **argv) {
  if (argc < 2)
    return ef_cli_fail(ctx, ef_error_set(ctx, EF_ERR_INPUT,
                                         "bench: which benchmark? train-step or gemm (see --help)"));
  const char *what = argv[1];
  if (!strcmp(what, "--help") || !strcmp(what, "-h")) {
    usage(stdout);
    return 0;
  }
  for (int i = 2; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    }
  bench_opts o = {.batch = 1024, .hidden = 128, .steps = 200, .warmup = 20, .threads = 1,
                  .reps = 200, .seed = 1};
  int rc = parse_opts(ctx, argc, argv, &o);
  if (rc == EF_OK) rc = ef_nn_set_threads(ctx, o.threads);
  if (rc != EF_OK) return ef_cli_fail(ctx, rc);
  if (!strcmp(what, "train-step")) rc = bench_train_step(ctx, &o);
  else if (!strcmp(what, "gemm")) rc = bench_gemm(ctx, &o);
  else rc = ef_error_set(ctx, EF_ERR_INPUT, "bench: unknown benchmark '%s' (train-step, gemm)", what);
  return ef_cli_fail(ctx, rc);
}
