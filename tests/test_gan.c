/* GAN unfolding (gan-topo, gan-mixed) on built-in pseudo-data: closure
 * against the truth in measured bins, efficiency maps against the exact
 * P(T | v), the fill not leaking into measured bins, determinism, fresh
 * streams on retry, no allocation in a unit.
 *
 * Small networks and few steps so that CI runs it in a few minutes; the
 * bounds below were set from runs of this test and docs/results.md reports
 * the full-size campaign. ENSFOLD_GAN_TEST_VERBOSE=1 prints per-bin
 * diagnostics; ENSFOLD_GAN_TEST_STEPS overrides the outer steps;
 * ENSFOLD_GAN_TEST_ONLY=NAME runs only the tests matching NAME. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"
#include "ef_test_binning.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ensfold/config.h"
#include "ensfold/binning.h"
#include "ensfold/detector.h"
#include "ensfold/gan.h"
#include "ensfold/process.h"
#include "ensfold/generator.h"
#include "ensfold/ibu.h"
#include "ensfold/model.h"
#include "ensfold/nn.h"

#include "ef_alloc_count.h" /* a GAN unit allocates nothing */

#ifdef __SANITIZE_ADDRESS__ /* memory checks only: tiny samples and trainings */
enum { N_MC = 40000, N_DATA = 20000, STEPS = 60 };
#else
enum { N_MC = 300000, N_DATA = 100000, STEPS = 2000 };
#endif

typedef struct {
  ef_ctx *ctx;
  ef_config cfg;
  ef_detector *det;
  ef_events mc, data;
  ef_process *proc;    /* pi0, for the fill samples */
  ef_binning *vtx;     /* theta-phi, n_polar x n_phi */
  int n_polar, n_phi;
  ef_response *resp;
  double *truth, *prior[EF_N_MODELS], *exact; /* (nv), (nv) each, (4, nv) */
  ef_gan_ws *ws;
  int verbose;
} fixture;

static fixture fx;

static double density(const void *arg, double c, double f) { return ef_model_density(arg, c, f); }

static int setup(void **state) {
  (void)state;
  fx.verbose = getenv("ENSFOLD_GAN_TEST_VERBOSE") ? atoi(getenv("ENSFOLD_GAN_TEST_VERBOSE")) : 0;
  if (ef_ctx_create(&fx.ctx, MPI_COMM_NULL) != EF_OK) return -1;
  if (ef_config_defaults(fx.ctx, &fx.cfg) != EF_OK) return -1;
  if (ef_nn_set_threads(fx.ctx, 1) != EF_OK) return -1; /* as the campaign runs */
  ef_config *c = &fx.cfg;
  c->campaign.methods = 1u << EF_METHOD_GAN_TOPO | 1u << EF_METHOD_GAN_MIXED;
  c->gan.outer.steps = getenv("ENSFOLD_GAN_TEST_STEPS") ? atoi(getenv("ENSFOLD_GAN_TEST_STEPS")) : STEPS;
  c->gan.outer.hidden = 48;
  c->gan.samples = 400000;
  /* the outer GAN itself; test_refinement adds the refinement (on by default) */
  c->gan.refine.iterations = 0;
  c->gan.detector.smearing.steps = 300;
  c->gan.detector.smearing.hidden = 32;
  c->gan.detector.efficiency.steps = 6000;
#ifdef __SANITIZE_ADDRESS__
  c->gan.detector.efficiency.steps = 60;
  c->gan.detector.smearing.steps = 30;
  c->gan.samples = 20000;
#endif
  c->gan.detector.smearing.batch = 256;
  if (getenv("ENSFOLD_GAN_TEST_LR")) c->gan.outer.lr = atof(getenv("ENSFOLD_GAN_TEST_LR"));
  if (getenv("ENSFOLD_GAN_TEST_HIDDEN")) c->gan.outer.hidden = atoi(getenv("ENSFOLD_GAN_TEST_HIDDEN"));
  if (getenv("ENSFOLD_GAN_TEST_BATCH")) c->gan.outer.batch = atoi(getenv("ENSFOLD_GAN_TEST_BATCH"));
  if (getenv("ENSFOLD_GAN_TEST_FILLW")) c->gan.fill_weight = atof(getenv("ENSFOLD_GAN_TEST_FILLW"));
  if (getenv("ENSFOLD_GAN_TEST_NOISE")) c->gan.instance_noise = atof(getenv("ENSFOLD_GAN_TEST_NOISE"));
  if (getenv("ENSFOLD_GAN_TEST_LRF")) c->gan.lr_final = atof(getenv("ENSFOLD_GAN_TEST_LRF"));
  if (getenv("ENSFOLD_GAN_TEST_MMD")) c->gan.mmd_weight = atof(getenv("ENSFOLD_GAN_TEST_MMD"));
  if (getenv("ENSFOLD_GAN_TEST_EH")) c->gan.detector.efficiency.hidden = atoi(getenv("ENSFOLD_GAN_TEST_EH"));
  if (getenv("ENSFOLD_GAN_TEST_ES")) c->gan.detector.efficiency.steps = atoi(getenv("ENSFOLD_GAN_TEST_ES"));
  if (getenv("ENSFOLD_GAN_TEST_ELR")) c->gan.detector.efficiency.lr = atof(getenv("ENSFOLD_GAN_TEST_ELR"));
  if (getenv("ENSFOLD_GAN_TEST_EB")) c->gan.detector.efficiency.batch = atoi(getenv("ENSFOLD_GAN_TEST_EB"));
  if (getenv("ENSFOLD_GAN_TEST_AVG")) c->gan.average = atof(getenv("ENSFOLD_GAN_TEST_AVG"));
  if (getenv("ENSFOLD_GAN_TEST_REFINE")) c->gan.refine.iterations = atoi(getenv("ENSFOLD_GAN_TEST_REFINE"));
  if (getenv("ENSFOLD_GAN_TEST_RSTEPS")) c->gan.refine.net.steps = atoi(getenv("ENSFOLD_GAN_TEST_RSTEPS"));
  if (getenv("ENSFOLD_GAN_TEST_SSTEPS")) c->gan.detector.smearing.steps = atoi(getenv("ENSFOLD_GAN_TEST_SSTEPS"));
  if (getenv("ENSFOLD_GAN_TEST_SHIDDEN")) c->gan.detector.smearing.hidden = atoi(getenv("ENSFOLD_GAN_TEST_SHIDDEN"));
  if (ef_detector_create(fx.ctx, &fx.det, &c->physics, &c->detector) != EF_OK) return -1;
  if (ef_process_create(fx.ctx, &fx.proc, c, NULL) != EF_OK) return -1;
  ef_model m1, ps;
  ef_model_init(&m1, EF_MODEL_M1, &c->physics);
  ef_model_init(&ps, EF_MODEL_PS, &c->physics);
  ef_rng r;
  ef_rng_init(&r, 20261130, EF_RNG_GEN_MC, 0);
  if (ef_generate(fx.ctx, fx.det, &ps, &r, N_MC, EF_KIND_MC, 0, NULL, NULL, &fx.mc) != EF_OK)
    return -1;
  ef_rng_init(&r, 20261130, EF_RNG_GEN_DATA, 0);
  if (ef_generate(fx.ctx, fx.det, &m1, &r, N_DATA, EF_KIND_DATA, 0, NULL, NULL, &fx.data) != EF_OK)
    return -1;
  if (getenv("ENSFOLD_GAN_TEST_TOY")) {
    /* a perfect detector: every event T2 with reco = vertex */
    ef_events_free(&fx.data);
    ef_rng_init(&r, 20261130, EF_RNG_GEN_DATA, 0);
    if (ef_generate(fx.ctx, fx.det, &m1, &r, N_DATA, EF_KIND_DATA, EF_EVENTS_VERTEX, NULL, NULL,
                    &fx.data) != EF_OK)
      return -1;
    for (size_t i = 0; i < fx.data.n; i++) {
      fx.data.topology[i] = 2;
      fx.data.reco[2 * i] = fx.data.vertex[2 * i];
      fx.data.reco[2 * i + 1] = fx.data.vertex[2 * i + 1];
    }
    for (size_t i = 0; i < fx.mc.n; i++) {
      fx.mc.topology[i] = 2;
      fx.mc.reco[2 * i] = fx.mc.vertex[2 * i];
      fx.mc.reco[2 * i + 1] = fx.mc.vertex[2 * i + 1];
      for (int t = 0; t < 4; t++) fx.mc.prob[4 * i + t] = t == 2;
    }
  }
  fx.n_polar = 18;
  fx.n_phi = 36;
  fx.vtx = ef_test_binning(EF_BIN_THETA_PHI, fx.n_polar, fx.n_phi);
  if (!fx.vtx || ef_response_build(fx.ctx, &fx.resp, fx.vtx, fx.vtx, &fx.mc, NULL) != EF_OK)
    return -1;
  int nv = ef_binning_count(fx.vtx);
  fx.truth = malloc((size_t)nv * sizeof(double));
  fx.exact = calloc(4 * (size_t)nv, sizeof(double));
  for (int m = 0; m < EF_N_MODELS; m++) {
    ef_model mm;
    ef_model_init(&mm, (ef_model_id)m, &c->physics);
    fx.prior[m] = malloc((size_t)nv * sizeof(double));
    for (int k = 0; k < nv; k++) fx.prior[m][k] = ef_binning_integrate(fx.vtx, k, density, &mm);
  }
  for (int k = 0; k < nv; k++) {
    fx.truth[k] = N_DATA * fx.prior[EF_MODEL_M1][k];
    double lo[2], hi[2], p[4];
    ef_binning_range(fx.vtx, k, lo, hi);
    double c_lo = lo[0], c_hi = hi[0], f_lo = lo[1], f_hi = hi[1];
    for (int a = 0; a < 8; a++)
      for (int b = 0; b < 8; b++) {
        ef_detector_prob(fx.det, c_lo + (a + 0.5) * (c_hi - c_lo) / 8,
                         f_lo + (b + 0.5) * (f_hi - f_lo) / 8, p);
        for (int t = 0; t < 4; t++) fx.exact[(size_t)t * nv + k] += p[t] / 64;
      }
  }
  if (ef_gan_ws_create(fx.ctx, &fx.ws, &c->gan, &c->omnifold, 1u << EF_SURROGATE_TOPO | 1u << EF_SURROGATE_MIXED,
                       &fx.mc, &fx.data, c->physics.beam_energy,
                       c->vertex_bins.n_polar * c->vertex_bins.n_phi) != EF_OK)
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  ef_gan_ws_destroy(fx.ws);
  ef_response_destroy(fx.resp);
  free(fx.truth);
  free(fx.exact);
  for (int m = 0; m < EF_N_MODELS; m++) free(fx.prior[m]);
  ef_events_free(&fx.mc);
  ef_events_free(&fx.data);
  ef_detector_destroy(fx.det);
  ef_binning_free(fx.vtx);
  ef_process_destroy(fx.proc);
  ef_config_free(&fx.cfg);
  ef_ctx_destroy(fx.ctx);
  return 0;
}

typedef struct {
  double *hist, *own, *eff, loss_d[50], loss_g[50];
  double seconds;
} unit_out;

/* The fixture's fill sampler: the process's model (ef_inputs_fill_sample's
 * built-in branch). */
static void process_sample(const void *proc, int model, ef_rng *r, double *v) {
  ef_process_sample(proc, model, r, v);
}

static int run_unit_in(const ef_gan_params *gp, ef_gan_ws *ws, int method, int fill,
                       uint64_t seed, int attempt, unit_out *o) {
  ef_gan_problem pb = {.detector = method == EF_METHOD_GAN_MIXED ? EF_SURROGATE_MIXED
                                                                 : EF_SURROGATE_TOPO, .data = &fx.data, .mc = &fx.mc, .vtx = fx.vtx,
                       .efficiency = ef_response_efficiency(fx.resp),
                       .fill_prior = fx.prior[fill],
                       .det_seed = 77 + (uint64_t)method, .seed = seed,
                       .det_key = method, .attempt = attempt};
  pb.fill_sample = process_sample;
  pb.fill_arg = fx.proc;
  pb.fill_model = fill;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rc = ef_gan_unit_run(fx.ctx, gp, &pb, ws, o->hist, o->own, o->eff, 50, o->loss_d,
                           o->loss_g, 0, NULL, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  o->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  if (rc != EF_OK) fprintf(stderr, "unit failed: %s\n", ef_error_message(fx.ctx));
  return rc;
}

static int run_unit(int method, int fill, uint64_t seed, int attempt, unit_out *o) {
  return run_unit_in(&fx.cfg.gan, fx.ws, method, fill, seed, attempt, o);
}

static void out_alloc(unit_out *o) {
  int nv = ef_binning_count(fx.vtx);
  o->hist = malloc((size_t)nv * sizeof(double));
  o->own = malloc((size_t)nv * sizeof(double));
  o->eff = malloc(4 * (size_t)nv * sizeof(double));
}
static void out_free(unit_out *o) {
  free(o->hist);
  free(o->own);
  free(o->eff);
}

/* Closure in measured bins against sigma_i^2 = truth_i / eps_i (the
 * statistical variance of an unbiased unfolding of that bin alone). */
typedef struct {
  double chi2ndf, mean_abs_rel, eff_max, eff_mean;
  int ndf, eff_over;
} metrics;

static metrics measure(const unit_out *o, const char *name) {
  int nv = ef_binning_count(fx.vtx);
  const double *eps = ef_response_efficiency(fx.resp);
  metrics m = {0};
  double chi2 = 0, rel = 0;
  for (int k = 0; k < nv; k++) {
    if (eps[k] < 0.05) continue;
    double sig2 = fx.truth[k] / eps[k], d = o->hist[k] - fx.truth[k];
    chi2 += d * d / sig2;
    rel += fabs(d) / fx.truth[k];
    m.ndf++;
  }
  m.chi2ndf = chi2 / m.ndf;
  m.mean_abs_rel = rel / m.ndf;
  int cells = 0;
  for (int k = 0; k < nv; k++) {
    if (1.0 - fx.exact[k] < 0.05) continue;
    for (int t = 0; t < 4; t++) {
      double d = fabs(o->eff[(size_t)t * nv + k] - fx.exact[(size_t)t * nv + k]);
      m.eff_max = d > m.eff_max ? d : m.eff_max;
      m.eff_mean += d;
      m.eff_over += d > 0.03;
      if (d > 0.03 && fx.verbose) {
        double th, ph;
        ef_binning_centre_deg(fx.vtx, k, &th, &ph);
        fprintf(stderr, "  eff T%d bin th %5.1f ph %6.1f: net %.3f exact %.3f\n", t, th, ph,
                o->eff[(size_t)t * nv + k], fx.exact[(size_t)t * nv + k]);
      }
      cells++;
    }
  }
  m.eff_mean /= cells;
  fprintf(stderr,
          "%s: %.1f s; measured bins %d: chi2/ndf %.2f (sigma^2 = truth/eps), mean |rel. dev.| "
          "%.4f; efficiency |diff| max %.4f mean %.4f, %d of %d cells > 0.03; loss D %.3f -> "
          "%.3f, G %.3f -> %.3f\n",
          name, o->seconds, m.ndf, m.chi2ndf, m.mean_abs_rel, m.eff_max, m.eff_mean, m.eff_over,
          cells, o->loss_d[0], o->loss_d[49], o->loss_g[0], o->loss_g[49]);
  if (fx.verbose) {
    for (int a = 0; a < fx.n_polar; a++) {
      double h = 0, tr = 0;
      for (int b = 0; b < fx.n_phi; b++) {
        h += o->hist[a * fx.n_phi + b];
        tr += fx.truth[a * fx.n_phi + b];
      }
      double hm = 0, tm = 0;
      for (int b = 0; b < fx.n_phi; b++)
        if (eps[a * fx.n_phi + b] >= 0.05) {
          hm += o->hist[a * fx.n_phi + b];
          tm += fx.truth[a * fx.n_phi + b];
        }
      double dv = 0;
      if (fx.data.vertex)
        for (size_t i = 0; i < fx.data.n; i++)
          if (ef_binning_index(fx.vtx, fx.data.vertex + 2 * i) / fx.n_phi == a) dv++;
      fprintf(stderr, "  theta row %2d: gan %9.1f truth %9.1f data %7.0f; measured bins: gan / truth %.3f\n",
              a, h, tr, dv, tm > 0 ? hm / tm : 0.0);
    }
    for (int b = 0; b < fx.n_phi; b++) {
      double h = 0, tr = 0;
      for (int a = 0; a < fx.n_polar; a++) {
        h += o->hist[a * fx.n_phi + b];
        tr += fx.truth[a * fx.n_phi + b];
      }
      fprintf(stderr, "  phi col %2d: gan %9.1f truth %9.1f\n", b, h, tr);
    }
  }
  if (fx.verbose > 1)
    for (int k = 0; k < nv; k++) {
      if (eps[k] < 0.05) continue;
      double th, ph;
      ef_binning_centre_deg(fx.vtx, k, &th, &ph);
      fprintf(stderr, "  bin %3d th %5.1f ph %6.1f eps %.3f truth %8.1f gan %8.1f pull %+.2f\n",
              k, th, ph, eps[k], fx.truth[k], o->hist[k],
              (o->hist[k] - fx.truth[k]) / sqrt(fx.truth[k] / eps[k]));
    }
  return m;
}

/* Bounds for the CI-sized runs (see the header; measured values in the
 * comments are from this test's runs on the 2-core machine). */
#define CHI2_BOUND 1.5       /* seen 0.99 (topo), 1.01 (mixed: own trunk; 0.74 with the
                                shared one) at 2000 steps */
#define REL_BOUND 0.15       /* mean |rel. dev.| in measured bins; seen 0.084, 0.081 */
#define EFF_BOUND 0.06       /* max |eff - exact| (6000 classifier steps here); seen 0.042 (topo),
                                0.036 (mixed: own trunk; 0.032 shared) */
#define LEAK_BOUND_DEFAULT 0.02 /* |slope| of the fill dependence at the defaults (no blind
                                  channel: only the normalisation); a leaking fill gives 1;
                                  seen 0.0001 */
#define LEAK_BOUND_CHANNEL 0.5  /* with the optional blind channel: half a leaking fill's;
                                  seen 0.269 (docs/methods.md) */

static unit_out ps_topo; /* gan-topo, PS fill, kept for the fill test */

static void closure(int method, const char *name, unit_out *keep) {
  unit_out o;
  out_alloc(&o);
  assert_int_equal(run_unit(method, EF_MODEL_PS, getenv("ENSFOLD_GAN_TEST_SEED") ? strtoull(getenv("ENSFOLD_GAN_TEST_SEED"), NULL, 10) : 1001, 0, &o), EF_OK);
  metrics m = measure(&o, name);
#ifndef __SANITIZE_ADDRESS__
  assert_true(m.chi2ndf < CHI2_BOUND);
  assert_true(m.mean_abs_rel < REL_BOUND);
  assert_true(m.eff_max < EFF_BOUND);
#else
  (void)m; /* sanitizer build: tiny training, memory checks only */
#endif
  if (keep) *keep = o;
  else out_free(&o);
}

static void test_closure_topo(void **state) {
  (void)state;
  closure(EF_METHOD_GAN_TOPO, "gan-topo", &ps_topo);
}

static void test_closure_mixed(void **state) {
  (void)state;
  closure(EF_METHOD_GAN_MIXED, "gan-mixed", NULL);
}

/* The fill must not leak into measured bins (issue 5, 2b). A formulation
 * that compares G with the fill weighted by eps_0 everywhere lands at
 * truth x eps + fill x (1 - eps): the paired difference of two fills would
 * then be (1 - eps) (fill_PS - fill_M2) in every partly measured bin. Here
 * the same data are unfolded with the PS and the M2 fill; the slope of
 * (n_PS - n_M2) against that leak prediction over the partly measured bins
 * (0.05 <= eps < 0.7) must be near 0, not 1. */
static double leak_slope(const unit_out *ps, const unit_out *m2, const char *what) {
  int nv = ef_binning_count(fx.vtx);
  const double *eps = ef_response_efficiency(fx.resp);
  double sxy = 0, sxx = 0, sx_ = 0;
  int n = 0;
  for (int k = 0; k < nv; k++) {
    if (eps[k] < 0.05 || eps[k] >= 0.7) continue;
    /* the leak prediction in events: (1 - eps) (fill_PS - fill_M2) at the
     * data's normalisation */
    double x = (1 - eps[k]) * N_DATA * (fx.prior[EF_MODEL_PS][k] - fx.prior[EF_MODEL_M2][k]);
    double y = ps->hist[k] - m2->hist[k];
    sxy += x * y;
    sxx += x * x;
    sx_ += fabs(x);
    n++;
  }
  double slope = sxy / sxx;
  fprintf(stderr, "fill leak (%s): %d partly measured bins, mean |leak prediction| %.1f "
          "events, slope of (PS - M2) on it %.4f (leaking formulation: 1)\n", what, n, sx_ / n,
          slope);
#ifndef __SANITIZE_ADDRESS__
  assert_true(n > 20);
#endif
  return slope;
}

/* Default settings: G never sees the fill, which enters only the result's
 * blind bins and, through them, the overall normalisation. */
static void test_fill_does_not_leak(void **state) {
  (void)state;
  unit_out m2;
  out_alloc(&m2);
  long trained = ef_gan_ws_outer_trainings(fx.ws);
  assert_int_equal(run_unit(EF_METHOD_GAN_TOPO, EF_MODEL_M2, 1001, 0, &m2), EF_OK);
  /* common random numbers (issue 17.1): the M2 unit of the PS unit's
   * (method, replica, member) reuses its outer training and agrees with it
   * exactly in every measured bin; only the blind bins differ */
  assert_int_equal(ef_gan_ws_outer_trainings(fx.ws), trained);
  const double *eps = ef_response_efficiency(fx.resp);
  int nv = ef_binning_count(fx.vtx), n_meas = 0, n_blind_diff = 0;
  for (int k = 0; k < nv; k++) {
    /* G's own answer (issue 17.3): in every bin, the fill's in none */
    assert_true(ps_topo.own[k] == m2.own[k]);
    assert_true(isfinite(ps_topo.own[k]) && ps_topo.own[k] >= 0);
    if (eps[k] < fx.cfg.gan.blind_efficiency) {
      n_blind_diff += ps_topo.hist[k] != m2.hist[k];
      continue;
    }
    n_meas++;
    assert_true(ps_topo.hist[k] == m2.hist[k]);
    assert_true(ps_topo.own[k] == ps_topo.hist[k]);
  }
  fprintf(stderr, "common random numbers: PS and M2 equal in all %d measured bins, %d blind "
          "bins differ, 1 outer training for both; G's own answer equal in all %d bins\n",
          n_meas, n_blind_diff, nv);
  assert_true(n_meas > 0 && n_blind_diff > 0);
  double slope = leak_slope(&ps_topo, &m2, "default, no blind channel");
#ifndef __SANITIZE_ADDRESS__
  assert_true(fabs(slope) < LEAK_BOUND_DEFAULT);
#else
  (void)slope;
#endif
  out_free(&m2);
  out_free(&ps_topo);
}

/* The optional blind channel (gan.fill_weight > 0): D sees fill-model
 * vertices against G's in blind bins only; what reaches the measured bins
 * is G's smoothness across the border, well below a leaking formulation. */
static void test_fill_channel_leak_bounded(void **state) {
  (void)state;
  ef_gan_params keep = fx.cfg.gan;
  fx.cfg.gan.fill_weight = 1.0;
  unit_out ps, m2;
  out_alloc(&ps);
  out_alloc(&m2);
  assert_int_equal(run_unit(EF_METHOD_GAN_TOPO, EF_MODEL_PS, 1001, 0, &ps), EF_OK);
  assert_int_equal(run_unit(EF_METHOD_GAN_TOPO, EF_MODEL_M2, 1001, 0, &m2), EF_OK);
  fx.cfg.gan = keep;
  double slope = leak_slope(&ps, &m2, "gan.fill_weight 1");
#ifndef __SANITIZE_ADDRESS__
  assert_true(fabs(slope) < LEAK_BOUND_CHANNEL);
#else
  (void)slope;
#endif
  out_free(&ps);
  out_free(&m2);
}

/* Same problem, same attempt: the same bits (the detector networks come
 * from the workspace's cache the second time). Another attempt: a fresh
 * stream, another result. And a unit allocates nothing. */
static void test_determinism_retry_alloc(void **state) {
  (void)state;
  ef_gan_params keep = fx.cfg.gan;
  fx.cfg.gan.outer.steps = 200;
  fx.cfg.gan.samples = 20000;
  int nv = ef_binning_count(fx.vtx);
  unit_out a, b, c;
  out_alloc(&a);
  out_alloc(&b);
  out_alloc(&c);
  assert_int_equal(run_unit(EF_METHOD_GAN_MIXED, EF_MODEL_PS, 7, 0, &a), EF_OK);
  counting = 1;
  n_alloc = 0;
  int rc = run_unit(EF_METHOD_GAN_MIXED, EF_MODEL_PS, 7, 0, &b);
  counting = 0;
  assert_int_equal(rc, EF_OK);
  if (HAVE_ALLOC_COUNT) assert_int_equal(n_alloc, 0);
  assert_memory_equal(a.hist, b.hist, (size_t)nv * sizeof(double));
  assert_memory_equal(a.eff, b.eff, 4 * (size_t)nv * sizeof(double));
  assert_memory_equal(a.loss_d, b.loss_d, sizeof a.loss_d);
  counting = 1;
  n_alloc = 0;
  rc = run_unit(EF_METHOD_GAN_MIXED, EF_MODEL_PS, 7, 1, &c); /* retrains the DS-GAN */
  counting = 0;
  assert_int_equal(rc, EF_OK);
  if (HAVE_ALLOC_COUNT) assert_int_equal(n_alloc, 0);
  assert_true(memcmp(a.hist, c.hist, (size_t)nv * sizeof(double)) != 0);
  fx.cfg.gan = keep;
  out_free(&a);
  out_free(&b);
  out_free(&c);
}

/* A training that collapses is reported as EF_ERR_NUMERIC, which the
 * campaign retries with a fresh stream (and records in /units/attempts).
 * Data that are a single point (every event T2 at one reco angle, no fill
 * channel) drive G to a point mass: the collapse criterion must fire. */
static void test_collapse_reported(void **state) {
  (void)state;
  ef_gan_params keep = fx.cfg.gan;
  fx.cfg.gan.outer.steps = 400;
  fx.cfg.gan.fill_weight = 0.0;
  fx.cfg.gan.samples = 20000;
  size_t n = fx.data.n;
  int8_t *topo = malloc(n);
  double *reco = malloc(2 * n * sizeof(double));
  memcpy(topo, fx.data.topology, n);
  memcpy(reco, fx.data.reco, 2 * n * sizeof(double));
  for (size_t i = 0; i < n; i++) {
    fx.data.topology[i] = 2;
    fx.data.reco[2 * i] = -0.3;
    fx.data.reco[2 * i + 1] = 1.0;
  }
  unit_out o;
  out_alloc(&o);
  int rc = run_unit(EF_METHOD_GAN_TOPO, EF_MODEL_PS, 9, 0, &o);
  fprintf(stderr, "single-point data: rc %d (%s)\n", rc,
          rc == EF_OK ? "ok" : ef_error_message(fx.ctx));
  memcpy(fx.data.topology, topo, n);
  memcpy(fx.data.reco, reco, 2 * n * sizeof(double));
  free(topo);
  free(reco);
  fx.cfg.gan = keep;
  out_free(&o);
  assert_int_equal(rc, EF_ERR_NUMERIC);
  assert_non_null(strstr(ef_error_message(fx.ctx), "collapsed"));
}

/* The refinement (gan.refine, docs/methods.md) on the fixture: the refined
 * gan-topo unit closes better in the measured bins than the same unit
 * unrefined, and its M2 unit still reuses the PS unit's training (the
 * refinement included): equal in every measured bin, G's own answer equal
 * in every bin. */
static void test_refinement(void **state) {
  (void)state;
  ef_gan_params gp = fx.cfg.gan;
  gp.refine.iterations = 1;
  ef_gan_ws *ws = NULL;
  int nv = ef_binning_count(fx.vtx);
  assert_int_equal(ef_gan_ws_create(fx.ctx, &ws, &gp, NULL, 1u << EF_SURROGATE_TOPO, &fx.mc, &fx.data,
                                    fx.cfg.physics.beam_energy, nv), EF_OK);
  unit_out plain, ps, m2;
  out_alloc(&plain);
  out_alloc(&ps);
  out_alloc(&m2);
  assert_int_equal(run_unit(EF_METHOD_GAN_TOPO, EF_MODEL_PS, 1001, 0, &plain), EF_OK);
  assert_int_equal(run_unit_in(&gp, ws, EF_METHOD_GAN_TOPO, EF_MODEL_PS, 1001, 0, &ps), EF_OK);
  metrics a = measure(&plain, "gan-topo"), b = measure(&ps, "gan-topo refined");
  assert_int_equal(run_unit_in(&gp, ws, EF_METHOD_GAN_TOPO, EF_MODEL_M2, 1001, 0, &m2), EF_OK);
  assert_int_equal(ef_gan_ws_outer_trainings(ws), 1);
  const double *eps = ef_response_efficiency(fx.resp);
  for (int k = 0; k < nv; k++) {
    assert_true(ps.own[k] == m2.own[k]);
    if (eps[k] >= gp.blind_efficiency) assert_true(ps.hist[k] == m2.hist[k]);
  }
#ifndef __SANITIZE_ADDRESS__
  assert_true(b.chi2ndf < a.chi2ndf);
#endif
  out_free(&plain);
  out_free(&ps);
  out_free(&m2);
  ef_gan_ws_destroy(ws);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_closure_topo),
      cmocka_unit_test(test_fill_does_not_leak),
      cmocka_unit_test(test_fill_channel_leak_bounded),
      cmocka_unit_test(test_refinement),
      cmocka_unit_test(test_closure_mixed),
      cmocka_unit_test(test_determinism_retry_alloc),
      cmocka_unit_test(test_collapse_reported),
  };
  if (getenv("ENSFOLD_GAN_TEST_ONLY")) cmocka_set_test_filter(getenv("ENSFOLD_GAN_TEST_ONLY"));
  return cmocka_run_group_tests(tests, setup, teardown);
}
