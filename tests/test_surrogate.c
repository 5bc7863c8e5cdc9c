/* The detector surrogates (include/ensfold/surrogate.h) used on their own,
 * as a method other than the GAN would use them: trained on a toy detector
 * that is not the built-in one (every vertex direction equally likely; a
 * blind polar cap c > 0.7; elsewhere T3 with probability 0.6 and T2 with
 * 0.3, T1 never; reco = vertex smeared by 0.02 in cos theta* and 0.03 rad in
 * phi*). Checked: the probabilities are distributions and the reco points
 * lie in range; the efficiency maps against the toy's exact P(T | v); the
 * backward pass against finite differences of the forward pass; a key
 * keeps a training and a negative key never does; a category that loses an
 * observable; the batch matches do not narrow the fold at small batches;
 * the covariance match keeps correlated residuals correlated; the mixture
 * head's backward exact with one component, its implicit gradient right in
 * expectation with several, and its fold's width right where the
 * adversarial loss is not;
 * MC multiplicities (a bootstrap replica of the MC) train as
 * the replica written out; an unknown kind and an MC without vertices are
 * refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"
#include "ef_test_binning.h"
#include "ensfold/events.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/binning.h"
#include "ensfold/error.h"
#include "ensfold/features.h"
#include "ensfold/surrogate.h"
#include "../src/unfold/surrogate_impl.h" /* the residual head, tested on its own */

static ef_space pi0; /* the pi0 event space: ef_space_pi0 in main */

enum { N_MC = 40000, ROWS = 256, NV = 6 * 6 };
#define CAP 0.7
#define EF_PI 3.14159265358979323846

static ef_ctx *ctx;
static ef_events mc;
static ef_kin kin;
static ef_featmap *fm; /* the pi0 space at 1.5 GeV */
static ef_binning *vtx; /* cos-phi, 6 x 6 (made in main) */

static void exact_prob(double c, double p[4]) {
  int blind = c > CAP;
  p[0] = blind ? 1.0 : 0.1;
  p[1] = 0.0;
  p[2] = blind ? 0.0 : 0.3;
  p[3] = blind ? 0.0 : 0.6;
}

static int setup(void **state) {
  (void)state;
  if (ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) return -1;
  if (ef_events_alloc(ctx, &mc, &pi0, N_MC, EF_KIND_MC, EF_EVENTS_VERTEX | EF_EVENTS_PROB) != EF_OK)
    return -1;
  ef_kin_init(&kin, 1.5);
  if (ef_featmap_create(ctx, &fm, &pi0, NULL, NULL, 1.5) != EF_OK) return -1;
  ef_rng r;
  ef_rng_init(&r, 4242, EF_RNG_TEST, 0);
  for (size_t i = 0; i < mc.n; i++) {
    double c = 2 * ef_rng_uniform(&r) - 1, f = EF_PI * (2 * ef_rng_uniform(&r) - 1), p[4];
    exact_prob(c, p);
    double u = ef_rng_uniform(&r);
    int t = u < p[3] ? 3 : u < p[3] + p[2] ? 2 : 0;
    mc.vertex[2 * i] = c;
    mc.vertex[2 * i + 1] = f;
    for (int k = 0; k < 4; k++) mc.prob[4 * i + k] = (float)p[k];
    mc.topology[i] = (int8_t)t;
    if (t == 0) {
      mc.reco[2 * i] = mc.reco[2 * i + 1] = NAN;
    } else {
      /* T2 three times as wide as T3: a resolution that depends on the topology */
      double z0 = ef_rng_normal(&r), z1 = ef_rng_normal(&r), w = t == 2 ? 3.0 : 1.0;
      mc.reco[2 * i] = fmax(-1.0, fmin(1.0, c + 0.02 * w * z0));
      mc.reco[2 * i + 1] = ef_wrap_pi(f + 0.03 * w * z1);
    }
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  ef_events_free(&mc);
  ef_featmap_destroy(fm);
  ef_ctx_destroy(ctx);
  return 0;
}

static ef_surrogate_params params(void) {
  ef_surrogate_params sp = {{32, 2, 1500, 256, 1e-2}, 0.25, {32, 2, 300, 256, 5e-4}, 4, 0, 0,
                            0.0, 0.0, 0.0, EF_SMEAR_ADVERSARIAL, 4};
  return sp;
}

/* Points away from the folds (|c| < 0.6, |phi| < 2.5) and their features. */
static void points(ef_rng *r, int n, float *v, float *feat) {
  for (int i = 0; i < n; i++) {
    v[2 * i] = (float)(1.2 * ef_rng_uniform(r) - 0.6);
    v[2 * i + 1] = (float)(5.0 * ef_rng_uniform(r) - 2.5);
    ef_features_kin(&kin, v[2 * i], v[2 * i + 1], feat + i * EF_FEAT_KIN, NULL);
  }
}

static void check_map(ef_surrogate *s, double tol, const char *what) {
  double eff[4 * NV];
  ef_rng r;
  ef_rng_init(&r, 1, EF_RNG_TEST, 9);
  ef_surrogate_map(s, vtx, &r, ROWS, eff);
  double worst = 0.0;
  for (int k = 0; k < NV; k++) {
    double lo[2], hi[2], p[4], q[4] = {0, 0, 0, 0};
    ef_binning_range(vtx, k, lo, hi);
    double c_lo = lo[0], c_hi = hi[0];
    for (int a = 0; a < 8; a++) {
      exact_prob(c_lo + (a + 0.5) * (c_hi - c_lo) / 8, p);
      for (int t = 0; t < 4; t++) q[t] += p[t] / 8;
    }
    for (int t = 0; t < 4; t++) worst = fmax(worst, fabs(eff[t * NV + k] - q[t]));
  }
  if (!(worst <= tol)) fail_msg("%s: efficiency map off by %.3f (tolerance %.3f)", what, worst, tol);
}

/* L = sum_i a_i . reco_i with fixed noise; dL/dv by the backward pass plus
 * the features' Jacobian, against central differences in v. */
static void check_backward(ef_surrogate *s, const char *what) {
  enum { N = 12, NF = EF_FEAT_KIN };
  float v[2 * N], feat[N * NF], jac[N * NF * 2], prob[4 * N], reco[3 * N * 2];
  float a[3 * N * 2], dv[2 * N], dfeat[N * NF];
  ef_rng r, r0;
  ef_rng_init(&r, 7, EF_RNG_TEST, 3);
  points(&r, N, v, feat);
  for (int i = 0; i < 3 * N * 2; i++) a[i] = (float)(2 * ef_rng_uniform(&r) - 1);
  for (int i = 0; i < N; i++)
    ef_features_kin(&kin, v[2 * i], v[2 * i + 1], feat + i * NF, jac + i * NF * 2);
  ef_rng_init(&r0, 7, EF_RNG_TEST, 4);
  r = r0;
  ef_surrogate_forward(s, v, feat, N, &r, prob, reco);
  memset(dv, 0, sizeof dv);
  memset(dfeat, 0, sizeof dfeat);
  ef_surrogate_backward(s, N, a, dv, dfeat);
  int checked = 0;
  for (int i = 0; i < N; i++)
    for (int d = 0; d < 2; d++) {
      double g = dv[2 * i + d];
      for (int j = 0; j < NF; j++) g += (double)jac[(i * NF + j) * 2 + d] * dfeat[i * NF + j];
      double l[2];
      for (int sgn = 0; sgn < 2; sgn++) {
        float vp[2 * N], fp[N * NF];
        memcpy(vp, v, sizeof vp);
        vp[2 * i + d] += (sgn ? -1.0f : 1.0f) * 1e-3f;
        for (int k = 0; k < N; k++) ef_features_kin(&kin, vp[2 * k], vp[2 * k + 1], fp + k * NF, NULL);
        r = r0; /* the same noise */
        ef_surrogate_forward(s, vp, fp, N, &r, prob, reco);
        double sum = 0.0;
        for (int k = 0; k < 3 * N * 2; k++) sum += (double)a[k] * reco[k];
        l[sgn] = sum;
      }
      double num = (l[0] - l[1]) / 2e-3;
      double tol = 1e-2 * fmax(fabs(num), 0.1) + 1e-3; /* seen: 2e-5 */
      if (!(fabs(g - num) <= tol))
        fail_msg("%s: dL/dv[%d][%d] backward %.5f, finite difference %.5f", what, i, d, g, num);
      checked++;
    }
  assert_int_equal(checked, 2 * N);
}

static void run_kind_sp(ef_surrogate_kind kind, const ef_surrogate_params *sp0, double tol,
                        const char *what) {
  ef_surrogate_params sp = *sp0;
  ef_surrogate *s = NULL;
  assert_int_equal(ef_surrogate_create(ctx, &s, kind, &sp, fm, ROWS, mc.n), EF_OK);
  assert_int_equal(ef_surrogate_train(ctx, s, &mc, NULL, 11, 0, 5), EF_OK);
  /* ranges */
  float v[2 * ROWS], feat[ROWS * EF_FEAT_KIN], prob[4 * ROWS], reco[3 * ROWS * 2];
  ef_rng r;
  ef_rng_init(&r, 3, EF_RNG_TEST, 1);
  points(&r, ROWS, v, feat);
  ef_surrogate_forward(s, v, feat, ROWS, &r, prob, reco);
  for (int i = 0; i < ROWS; i++) {
    float sum = prob[4 * i] + prob[4 * i + 1] + prob[4 * i + 2] + prob[4 * i + 3];
    assert_close(sum, 1.0, 1e-5);
  }
  for (int i = 0; i < 3 * ROWS; i++) {
    assert_true(reco[2 * i] >= -1.0f && reco[2 * i] <= 1.0f);
    assert_true(reco[2 * i + 1] > -(float)EF_PI - 1e-6f && reco[2 * i + 1] <= (float)EF_PI + 1e-6f);
  }
  check_map(s, tol, what);
  check_backward(s, what);
  /* key 5 again: kept (another seed would give other networks) */
  double m1[4 * NV], m2[4 * NV];
  ef_rng_init(&r, 1, EF_RNG_TEST, 2);
  ef_surrogate_map(s, vtx, &r, ROWS, m1);
  assert_int_equal(ef_surrogate_train(ctx, s, &mc, NULL, 99, 0, 5), EF_OK);
  ef_rng_init(&r, 1, EF_RNG_TEST, 2);
  ef_surrogate_map(s, vtx, &r, ROWS, m2);
  assert_memory_equal(m1, m2, sizeof m1);
  /* a negative key trains again: seed 99 gives other networks */
  assert_int_equal(ef_surrogate_train(ctx, s, &mc, NULL, 99, 0, -1), EF_OK);
  ef_rng_init(&r, 1, EF_RNG_TEST, 2);
  ef_surrogate_map(s, vtx, &r, ROWS, m2);
  assert_true(memcmp(m1, m2, sizeof m1) != 0);
  ef_surrogate_destroy(s);
}

static void run_kind(ef_surrogate_kind kind, int per_topology, double tol, const char *what) {
  ef_surrogate_params sp = params();
  sp.per_topology = per_topology & 1;
  sp.own_trunk = per_topology >> 1; /* 2, 3: the P head a network of its own */
  run_kind_sp(kind, &sp, tol, what);
}

static void test_topo(void **state) {
  (void)state;
  run_kind(EF_SURROGATE_TOPO, 0, 0.02, "topo") /* seen: 0.004 */;
}

static void test_mixed(void **state) {
  (void)state;
  run_kind(EF_SURROGATE_MIXED, 0, 0.03, "mixed") /* seen: 0.008 */;
}

/* The rms of each measured topology's reco - vertex in coordinate a (0:
 * cos theta*, 1: phi*) at one vertex. */
static void channel_widths(ef_surrogate *s, int a, double out[3]) {
  enum { N = ROWS };
  float v[2 * N], feat[N * EF_FEAT_KIN], prob[4 * N], reco[3 * N * 2];
  for (int i = 0; i < N; i++) {
    v[2 * i] = 0.1f;
    v[2 * i + 1] = 0.5f;
    ef_features_kin(&kin, v[2 * i], v[2 * i + 1], feat + i * EF_FEAT_KIN, NULL);
  }
  ef_rng r;
  ef_rng_init(&r, 8, EF_RNG_TEST, 5);
  ef_surrogate_forward(s, v, feat, N, &r, prob, reco);
  for (int t = 0; t < 3; t++) {
    double ss = 0;
    for (int i = 0; i < N; i++) {
      double d = reco[((size_t)t * N + i) * 2 + a] - v[a];
      ss += d * d;
    }
    out[t] = sqrt(ss / N);
  }
}

/* With a residual per topology the DS-GAN smears T2 wider than T3, as the
 * fixture's MC does (3 times); with one residual both channels get the same
 * reco (the mixture). The CI-sized DS-GAN under-disperses by the adversarial
 * loss alone, by an amount that depends on the BLAS kernel's rounding (T2,
 * T3 0.051, 0.035 rad with OpenBLAS's Cooperlake kernel, 0.032, 0.032 with
 * its Zen kernel, against 0.09, 0.03), so the networks train with the
 * moment match, which pins each residual block's width: T2 at least twice
 * T3's (Zen kernel: 0.042, 0.014). */
static void test_mixed_per_topology(void **state) {
  (void)state;
  run_kind(EF_SURROGATE_MIXED, 1, 0.03, "mixed per topology");
  double w[2][3];
  for (int pt = 0; pt < 2; pt++) {
    ef_surrogate_params sp = params();
    sp.per_topology = pt, sp.moments = 10.0;
    ef_surrogate *s = NULL;
    assert_int_equal(ef_surrogate_create(ctx, &s, EF_SURROGATE_MIXED, &sp, fm, ROWS, mc.n), EF_OK);
    assert_int_equal(ef_surrogate_train(ctx, s, &mc, NULL, 11, 0, -1), EF_OK);
    channel_widths(s, 1, w[pt]);
    ef_surrogate_destroy(s);
  }
  printf("# phi rms (rad) T2, T3: one residual %.4f %.4f, per topology %.4f %.4f (MC 0.09, 0.03)\n",
         w[0][1], w[0][2], w[1][1], w[1][2]);
  assert_true(w[0][1] == w[0][2]);
  assert_true(w[1][1] > 2.0 * w[1][2]);
}

/* The DS-GAN with its P head on a trunk of its own: its map is the
 * classifier's (as close as gan-topo's), the backward still exact, and with
 * a residual per topology T2 comes out wider than T3. */
static void test_mixed_own_trunk(void **state) {
  (void)state;
  run_kind(EF_SURROGATE_MIXED, 2, 0.02, "mixed, own trunk");
  run_kind(EF_SURROGATE_MIXED, 3, 0.02, "mixed, own trunk, per topology");
  ef_surrogate_params sp = params();
  sp.per_topology = sp.own_trunk = 1;
  ef_surrogate *s = NULL;
  double w[3];
  assert_int_equal(ef_surrogate_create(ctx, &s, EF_SURROGATE_MIXED, &sp, fm, ROWS, mc.n), EF_OK);
  assert_int_equal(ef_surrogate_train(ctx, s, &mc, NULL, 11, 0, -1), EF_OK);
  channel_widths(s, 1, w);
  ef_surrogate_destroy(s);
  printf("# own trunk, per topology: phi rms (rad) T2 %.4f, T3 %.4f (MC 0.09, 0.03)\n", w[1], w[2]);
  assert_true(w[1] > 1.25 * w[2]);
}

/* A category that loses an observable (the gauss process's partial one: a
 * constant in its place): T2's phi* recorded as 0.25 in every event. The
 * DS-GAN's one residual learns phi*'s smearing from T3 alone (with T2's
 * constant it would be a mixture: rms about 1.8 rad); T2's phi* comes out
 * as the constant, and no gradient flows from it; gan-topo's network for T2
 * learns T2's smearing in the observable it keeps. */
static void test_lost_observable(void **state) {
  (void)state;
  ef_events lossy = mc;
  lossy.reco = malloc(2 * mc.n * sizeof *lossy.reco);
  assert_non_null(lossy.reco);
  memcpy(lossy.reco, mc.reco, 2 * mc.n * sizeof *lossy.reco);
  for (size_t i = 0; i < mc.n; i++)
    if (mc.topology[i] == 2) lossy.reco[2 * i + 1] = 0.25;
  ef_surrogate_params sp = params();
  sp.own_trunk = 1;
  ef_surrogate *s = NULL;
  double w[3];
  assert_int_equal(ef_surrogate_create(ctx, &s, EF_SURROGATE_MIXED, &sp, fm, ROWS, mc.n), EF_OK);
  assert_int_equal(ef_surrogate_train(ctx, s, &lossy, NULL, 11, 0, -1), EF_OK);
  channel_widths(s, 1, w);
  printf("# T2 loses phi*: phi rms (rad) T3 %.4f (MC 0.03); T2's reco - 0.5: %.4f (0.25 exactly)\n",
         w[2], w[1]);
  assert_true(w[2] < 0.1);
  assert_close(w[1], 0.25, 1e-6);
  enum { N = 4 };
  float v[2 * N], feat[N * EF_FEAT_KIN], prob[4 * N], reco[3 * N * 2], a[3 * N * 2];
  float dv[2 * N] = {0}, dfeat[N * EF_FEAT_KIN] = {0};
  ef_rng r;
  ef_rng_init(&r, 5, EF_RNG_TEST, 6);
  points(&r, N, v, feat);
  ef_surrogate_forward(s, v, feat, N, &r, prob, reco);
  memset(a, 0, sizeof a);
  for (int i = 0; i < N; i++) a[(1 * N + i) * 2 + 1] = 1.0f; /* d L / d (T2's phi*) only */
  ef_surrogate_backward(s, N, a, dv, dfeat);
  for (int i = 0; i < 2 * N; i++) assert_true(dv[i] == 0.0f);
  for (int i = 0; i < N * EF_FEAT_KIN; i++) assert_true(dfeat[i] == 0.0f);
  ef_surrogate_destroy(s);
  /* gan-topo's S_2 of the lossy T2 still learns T2's smearing in cos theta*
   * (MC 0.06, 3 x T3's 0.02): until the fix it never trained (its events
   * were left out as from a shared residual) and gave none (rms ~0.001) */
  assert_int_equal(ef_surrogate_create(ctx, &s, EF_SURROGATE_TOPO, &sp, fm, ROWS, mc.n), EF_OK);
  assert_int_equal(ef_surrogate_train(ctx, s, &lossy, NULL, 11, 0, -1), EF_OK);
  double wc[3];
  channel_widths(s, 0, wc);
  channel_widths(s, 1, w);
  printf("# topo, T2 loses phi*: cos theta* rms T2 %.4f, T3 %.4f (MC 0.06, 0.02); T2's phi* %.4f\n",
         wc[1], wc[2], w[1]);
  assert_true(wc[1] > 1.5 * wc[2]);
  assert_close(w[1], 0.25, 1e-6);
  ef_surrogate_destroy(s);
  free(lossy.reco);
}

/* The moment match (gan.smearing.moments): the CI-sized smearing networks
 * fold T2 and T3 with widths off the MC's (adversarial loss alone); with
 * the match each channel's residual rms over the MC's vertices of that
 * topology comes within 10 % of the MC's (0.06 / 0.02 in cos theta*, 0.09 /
 * 0.03 rad in phi*), which the adversarial loss alone does not reach. */
/* Worst |rms of the fold's residual / the MC's - 1| over T2 and T3, both
 * observables and ns equal slices of cos theta* in [-0.6, 0.6] (away from the
 * folds), over the first ROWS x chunks events of each topology there in ev. */
static double fold_rms_error(ef_surrogate *s, const ef_events *ev, int ns, int chunks,
                             double *mean) {
  enum { N = ROWS, SMAX = 4 };
  float v[2 * N], feat[N * EF_FEAT_KIN], prob[4 * N], reco[3 * N * 2];
  int sl[N];
  double worst = 0.0, sum = 0.0;
  ef_rng r;
  ef_rng_init(&r, 8, EF_RNG_TEST, 7);
  for (int t = 2; t <= 3; t++) {
    double ss[SMAX][2] = {{0}}, mc_ss[SMAX][2] = {{0}};
    size_t e = 0;
    for (int c = 0; c < chunks; c++) {
      int n = 0;
      for (; e < ev->n && n < N; e++) {
        if (ev->topology[e] != t || fabs(ev->vertex[2 * e]) > 0.6) continue;
        v[2 * n] = (float)ev->vertex[2 * e], v[2 * n + 1] = (float)ev->vertex[2 * e + 1];
        sl[n] = (int)fmin(ns - 1, (ev->vertex[2 * e] + 0.6) / 1.2 * ns);
        ef_features_kin(&kin, v[2 * n], v[2 * n + 1], feat + n * EF_FEAT_KIN, NULL);
        for (int a = 0; a < 2; a++) {
          double d = ev->reco[2 * e + a] - ev->vertex[2 * e + a];
          mc_ss[sl[n]][a] += (a ? ef_wrap_pi(d) : d) * (a ? ef_wrap_pi(d) : d);
        }
        n++;
      }
      ef_surrogate_forward(s, v, feat, n, &r, prob, reco);
      for (int i = 0; i < n; i++)
        for (int a = 0; a < 2; a++) {
          double d = reco[((size_t)(t - 1) * n + i) * 2 + a] - v[2 * i + a];
          d = a ? ef_wrap_pi(d) : d;
          ss[sl[i]][a] += d * d;
        }
    }
    for (int k = 0; k < ns; k++)
      for (int a = 0; a < 2; a++) {
        double q = sqrt(ss[k][a] / mc_ss[k][a]);
        printf("#   T%d %s slice %d/%d rms / MC's %.3f\n", t, a ? "phi*" : "cos theta*", k + 1,
               ns, q);
        worst = fmax(worst, fabs(q - 1.0)), sum += q;
      }
  }
  if (mean) *mean = sum / (4.0 * ns); /* T2, T3 x 2 observables x ns slices */
  return worst;
}

/* The worst fold error (fold_rms_error) of gan-topo's networks trained on ev
 * with settings sp. */
static double trained_error_sp(const ef_events *ev, const ef_surrogate_params *sp, int ns,
                               int chunks) {
  ef_surrogate *s = NULL;
  assert_int_equal(ef_surrogate_create(ctx, &s, EF_SURROGATE_TOPO, sp, fm, ROWS, ev->n), EF_OK);
  assert_int_equal(ef_surrogate_train(ctx, s, ev, NULL, 11, 0, -1), EF_OK);
  printf("# topo, %s loss, %d steps, moments %g, trend %g:\n",
         sp->loss == EF_SMEAR_ENERGY ? "energy" : sp->loss == EF_SMEAR_MIXTURE ? "mixture" : "adversarial", sp->smearing.steps, sp->moments,
         sp->trend);
  double err = fold_rms_error(s, ev, ns, chunks, NULL);
  ef_surrogate_destroy(s);
  return err;
}

/* The same with the moment match w and the trend match wt. */
static double trained_error(const ef_events *ev, double w, double wt, int ns, int chunks) {
  ef_surrogate_params sp = params();
  sp.moments = w, sp.trend = wt;
  return trained_error_sp(ev, &sp, ns, chunks);
}

static void test_moments(void **state) {
  (void)state;
  double err[2] = {trained_error(&mc, 0.0, 0.0, 1, 1), trained_error(&mc, 10.0, 0.0, 1, 1)};
  printf("# worst |rms / MC's - 1|: adversarial alone %.3f, with the moment match %.3f\n", err[0],
         err[1]);
  assert_true(err[1] < 0.10);
  assert_true(err[1] < err[0]);
}

/* The batch matches are unbiased: each multiplies two halves' differences
 * (src/unfold/surrogate.c), so a small batch does not pull the fold narrow.
 * Smearing batches of 32 events (a dozen measured rows per topology), the
 * moment match at 100: the fold's rms over the MC's, averaged over T2 and T3,
 * both observables and 5 seeds, within 0.03 of 1 (seen: 0.978; the
 * estimator before, a squared difference over the whole batch, gave 0.959). */
static void test_small_batch(void **state) {
  (void)state;
  enum { NS = 5 };
  double mean[NS], m = 0.0;
  for (int k = 0; k < NS; k++) {
    ef_surrogate_params sp = params();
    sp.moments = 100.0, sp.smearing.batch = 32, sp.smearing.steps = 1500;
    ef_surrogate *s = NULL;
    assert_int_equal(ef_surrogate_create(ctx, &s, EF_SURROGATE_TOPO, &sp, fm, ROWS, mc.n), EF_OK);
    assert_int_equal(ef_surrogate_train(ctx, s, &mc, NULL, 11 + (uint64_t)k, 0, -1), EF_OK);
    printf("# topo, moments 100, batches of 32, seed %d:\n", 11 + k);
    fold_rms_error(s, &mc, 1, 8, &mean[k]);
    ef_surrogate_destroy(s);
    m += mean[k] / NS;
  }
  printf("# mean rms / MC's with batches of 32 over %d seeds: %.3f (%.3f ... %.3f)\n", NS, m,
         mean[0], mean[NS - 1]);
  assert_true(fabs(m - 1.0) < 0.03);
}

enum { ENERGY_STEPS = 1500 };
#define ENERGY_TOL 0.25 /* seen: 0.169 (adversarial alone 1.114) */
#define MIXTURE_TOL 0.15 /* seen: 0.075 */

/* The trend match (gan.smearing.trend): an MC whose resolution grows with
 * cos theta* (every residual scaled by 1 + cos theta*, so 0.4 to 1.6 of
 * the toy's across the slices); the fold's width per third of [-0.6, 0.6]
 * against the MC's, with the moment match alone and with the trend match. */
static void test_trend(void **state) {
  (void)state;
  ef_events tilt = mc;
  tilt.reco = malloc(2 * mc.n * sizeof *tilt.reco);
  assert_non_null(tilt.reco);
  for (size_t i = 0; i < mc.n; i++)
    for (int a = 0; a < 2; a++) {
      double c = mc.vertex[2 * i], d = mc.reco[2 * i + a] - mc.vertex[2 * i + a];
      d = (a ? ef_wrap_pi(d) : d) * (1.0 + c);
      tilt.reco[2 * i + a] = isnan(d)  ? mc.reco[2 * i + a] /* T0: nothing reconstructed */
                             : a       ? ef_wrap_pi(mc.vertex[2 * i + 1] + d)
                                       : fmax(-1.0, fmin(1.0, c + d));
    }
  double err[2] = {trained_error(&tilt, 10.0, 0.0, 3, 8), trained_error(&tilt, 10.0, 10.0, 3, 8)};
  printf("# worst |rms / MC's - 1| over 3 slices: moment match %.3f, with the trend match %.3f\n",
         err[0], err[1]);
  /* the energy loss (gan.smearing.loss: energy) learns the trend with no
   * critic and no match; against the adversarial loss alone, same steps */
  ef_surrogate_params sp = params();
  sp.smearing.steps = ENERGY_STEPS;
  double adv = trained_error_sp(&tilt, &sp, 3, 8);
  sp.loss = EF_SMEAR_ENERGY;
  double en = trained_error_sp(&tilt, &sp, 3, 8);
  /* the mixture head (gan.smearing.loss: mixture), by likelihood */
  sp.loss = EF_SMEAR_MIXTURE;
  double mix = trained_error_sp(&tilt, &sp, 3, 8);
  printf("# worst |rms / MC's - 1| over 3 slices, %d steps: adversarial %.3f, energy %.3f, "
         "mixture %.3f\n", ENERGY_STEPS, adv, en, mix);
  free(tilt.reco);
  assert_true(err[1] < err[0]);
  assert_true(en < adv);
  assert_true(en < ENERGY_TOL);
  assert_true(mix < adv);
  assert_true(mix < MIXTURE_TOL);
}

/* The mixture head (gan.smearing.loss: mixture). With one component the
 * implicit gradient is the pathwise one, so both surrogates pass run_kind's
 * checks, the backward against finite differences included. With three, a
 * draw's gradient is right only in expectation: over 2 x 10^5 draws from
 * one fixed mixture the mean of d(r^2)/d(outputs) and of dr/d(outputs)
 * against the exact derivatives of E r^2 = sum pi_k (mu_k^2 + w_k^2) and
 * E r = sum pi_k mu_k, within 5 standard errors (a sign or a factor wrong in
 * any of the 9 outputs' gradients is 30 or more). */
static void test_mixture(void **state) {
  (void)state;
  ef_surrogate_params sp = params();
  sp.loss = EF_SMEAR_MIXTURE, sp.components = 1;
  run_kind_sp(EF_SURROGATE_TOPO, &sp, 0.02, "topo, mixture of 1");
  run_kind_sp(EF_SURROGATE_MIXED, &sp, 0.03, "mixed, mixture of 1");
  enum { M = 3, P = 3 * M, N = 1000, REPS = 200 };
  static float jac[N * P], res[N];
  const float o[P] = {0.3f, -0.5f, 0.1f, -1.0f, 0.2f, 1.5f, -0.7f, -0.2f, 0.4f};
  static float oo[N * P];
  for (int i = 0; i < N; i++) memcpy(oo + (size_t)i * P, o, sizeof o);
  ef_surrogate s = {0};
  s.D = 1, s.P = P, s.rows = N, s.jac = jac, s.p.loss = EF_SMEAR_MIXTURE, s.p.components = M;
  double pi[M], mu[M], w[M], z = 0.0, e1 = 0.0, e2 = 0.0;
  for (int k = 0; k < M; k++) z += exp(o[k]);
  for (int k = 0; k < M; k++) {
    pi[k] = exp(o[k]) / z, mu[k] = o[M + k], w[k] = exp(o[2 * M + k]);
    e1 += pi[k] * mu[k], e2 += pi[k] * (mu[k] * mu[k] + w[k] * w[k]);
  }
  double want[2][P]; /* d E r / d o, d E r^2 / d o */
  for (int k = 0; k < M; k++) {
    want[0][k] = pi[k] * (mu[k] - e1), want[0][M + k] = pi[k], want[0][2 * M + k] = 0.0;
    want[1][k] = pi[k] * (mu[k] * mu[k] + w[k] * w[k] - e2);
    want[1][M + k] = 2 * pi[k] * mu[k], want[1][2 * M + k] = 2 * pi[k] * w[k] * w[k];
  }
  double s1[2][P] = {{0}}, s2[2][P] = {{0}}, n = 0.0;
  ef_rng r;
  ef_rng_init(&r, 21, EF_RNG_TEST, 6);
  for (int rep = 0; rep < REPS; rep++) {
    sg_head_forward(&s, oo, P, 0, N, 0, &r, res);
    for (int i = 0; i < N; i++, n++)
      for (int k = 0; k < P; k++)
        for (int m = 0; m < 2; m++) {
          double g = (m ? 2.0 * res[i] : 1.0) * jac[(size_t)i * P + k];
          s1[m][k] += g, s2[m][k] += g * g;
        }
  }
  for (int m = 0; m < 2; m++)
    for (int k = 0; k < P; k++) {
      double mean = s1[m][k] / n, se = sqrt((s2[m][k] / n - mean * mean) / n);
      printf("# mixture d E r%s / d o[%d]: draws %.4f +- %.4f, exact %.4f\n", m ? "^2" : "", k,
             mean, se, want[m][k]);
      if (!(fabs(mean - want[m][k]) <= 5.0 * se + 1e-6))
        fail_msg("mixture gradient %d of E r%s: %.4f +- %.4f, exact %.4f", k, m ? "^2" : "",
                 mean, se, want[m][k]);
    }
  /* the backward adds g times the draw's gradient at each output */
  float dout[2 * P] = {0}, g1[2] = {2.0f, -1.0f};
  sg_head_forward(&s, oo, P, 0, 2, 0, &r, res);
  sg_head_backward(&s, g1, 2, 0, dout, P, 0);
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < P; k++) assert_float_equal(dout[i * P + k], g1[i] * jac[i * P + k], 1e-6);
}

/* The correlation of T3's residuals (cos theta*, phi*) folded by s at the
 * vertices of ev's first ROWS x 4 T3 events with |cos theta*| < 0.6. */
static double fold_corr(ef_surrogate *s, const ef_events *ev) {
  enum { N = ROWS };
  float v[2 * N], feat[N * EF_FEAT_KIN], prob[4 * N], reco[3 * N * 2];
  double s1[2] = {0}, s2[2] = {0}, sxy = 0, n = 0;
  ef_rng r;
  ef_rng_init(&r, 8, EF_RNG_TEST, 9);
  size_t e = 0;
  for (int c = 0; c < 4; c++) {
    int k = 0;
    for (; e < ev->n && k < N; e++) {
      if (ev->topology[e] != 3 || fabs(ev->vertex[2 * e]) > 0.6) continue;
      v[2 * k] = (float)ev->vertex[2 * e], v[2 * k + 1] = (float)ev->vertex[2 * e + 1];
      ef_features_kin(&kin, v[2 * k], v[2 * k + 1], feat + k * EF_FEAT_KIN, NULL);
      k++;
    }
    ef_surrogate_forward(s, v, feat, k, &r, prob, reco);
    for (int i = 0; i < k; i++) {
      double d[2];
      for (int a = 0; a < 2; a++) {
        d[a] = reco[((size_t)2 * k + i) * 2 + a] - v[2 * i + a];
        d[a] = a ? ef_wrap_pi(d[a]) : d[a];
        s1[a] += d[a], s2[a] += d[a] * d[a];
      }
      sxy += d[0] * d[1], n++;
    }
  }
  double m0 = s1[0] / n, m1 = s1[1] / n;
  return (sxy / n - m0 * m1) / sqrt((s2[0] / n - m0 * m0) * (s2[1] / n - m1 * m1));
}

/* The covariance match (gan.smearing.covariance): an MC whose T3 residuals
 * are correlated (phi*'s residual 0.8 of cos theta*'s standardised, plus
 * its own part): with the match the fold's correlation comes within 0.1 of
 * the MC's 0.8 and closer than without it (gan-topo, moments 100, 1500 steps; seen:
 * 0.843 with it, -0.371 without). */
static void test_covariance(void **state) {
  (void)state;
  ef_events cor = mc;
  cor.reco = malloc(2 * mc.n * sizeof *cor.reco);
  assert_non_null(cor.reco);
  ef_rng r;
  ef_rng_init(&r, 31, EF_RNG_TEST, 10);
  for (size_t i = 0; i < mc.n; i++) {
    double z0 = ef_rng_normal(&r), z1 = ef_rng_normal(&r);
    double c = mc.vertex[2 * i], f = mc.vertex[2 * i + 1];
    if (mc.topology[i] == 0) {
      cor.reco[2 * i] = cor.reco[2 * i + 1] = NAN;
    } else {
      cor.reco[2 * i] = fmax(-1.0, fmin(1.0, c + 0.02 * z0));
      cor.reco[2 * i + 1] = ef_wrap_pi(f + 0.03 * (0.8 * z0 + 0.6 * z1));
    }
  }
  double got[2];
  for (int k = 0; k < 2; k++) {
    ef_surrogate_params sp = params();
    sp.moments = 100.0, sp.covariance = k ? 100.0 : 0.0;
    sp.smearing.steps = 1500;
    ef_surrogate *s = NULL;
    assert_int_equal(ef_surrogate_create(ctx, &s, EF_SURROGATE_TOPO, &sp, fm, ROWS, cor.n), EF_OK);
    assert_int_equal(ef_surrogate_train(ctx, s, &cor, NULL, 11, 0, -1), EF_OK);
    got[k] = fold_corr(s, &cor);
    ef_surrogate_destroy(s);
  }
  printf("# T3 residual correlation (MC 0.8): without the covariance match %.3f, with it %.3f\n",
         got[0], got[1]);
  free(cor.reco);
  assert_true(fabs(got[1] - 0.8) < 0.1);
  assert_true(fabs(got[1] - 0.8) < fabs(got[0] - 0.8));
}

/* Map and folded points of s at fixed points and noise: out (4 NV + 3 ROWS 2). */
static void response_of(ef_surrogate *s, double *out) {
  float v[2 * ROWS], feat[ROWS * EF_FEAT_KIN], prob[4 * ROWS], reco[3 * ROWS * 2];
  ef_rng r;
  ef_rng_init(&r, 1, EF_RNG_TEST, 2);
  ef_surrogate_map(s, vtx, &r, ROWS, out);
  points(&r, ROWS, v, feat);
  ef_surrogate_forward(s, v, feat, ROWS, &r, prob, reco);
  for (int i = 0; i < 3 * ROWS * 2; i++) out[4 * NV + i] = reco[i];
}

/* kind trained on mc with multiplicities w (NULL: once each): its response. */
static void trained_response(ef_surrogate_kind kind, const ef_events *ev, const double *w,
                             double *out) {
  ef_surrogate_params sp = params();
  ef_surrogate *s = NULL;
  assert_int_equal(ef_surrogate_create(ctx, &s, kind, &sp, fm, ROWS, ev->n), EF_OK);
  assert_int_equal(ef_surrogate_train(ctx, s, ev, w, 11, 0, -1), EF_OK);
  response_of(s, out);
  ef_surrogate_destroy(s);
}

/* MC multiplicities (campaign.bootstrap_mc's Poisson(1) replica): training
 * on mc with them gives the same bits as training on the replica written
 * out (event i copied w_i times, in order), for both kinds; multiplicities
 * of 1 give the unweighted training's bits; the replica's networks differ
 * from the nominal's. */
static void test_multiplicities(void **state) {
  (void)state;
  enum { NR = 4 * NV + 3 * ROWS * 2 };
  double *w = malloc(mc.n * sizeof *w), *ones = malloc(mc.n * sizeof *ones);
  double *a = malloc(4 * NR * sizeof *a), *b = a + NR, *c = b + NR, *d = c + NR;
  assert_true(w && ones && a);
  ef_rng r;
  ef_rng_init(&r, 77, EF_RNG_TEST, 8);
  size_t n = 0;
  for (size_t i = 0; i < mc.n; i++) n += (size_t)(w[i] = ef_rng_poisson(&r, 1.0)), ones[i] = 1.0;
  ef_events rep;
  assert_int_equal(ef_events_alloc(ctx, &rep, &pi0, n, EF_KIND_MC,
                                   EF_EVENTS_VERTEX | EF_EVENTS_PROB), EF_OK);
  for (size_t i = 0, j = 0; i < mc.n; i++)
    for (int k = 0; k < (int)w[i]; k++, j++) {
      memcpy(rep.vertex + 2 * j, mc.vertex + 2 * i, 2 * sizeof *rep.vertex);
      memcpy(rep.reco + 2 * j, mc.reco + 2 * i, 2 * sizeof *rep.reco);
      memcpy(rep.prob + 4 * j, mc.prob + 4 * i, 4 * sizeof *rep.prob);
      rep.topology[j] = mc.topology[i];
    }
  for (int kind = 0; kind < 2; kind++) {
    trained_response((ef_surrogate_kind)kind, &mc, w, a);
    trained_response((ef_surrogate_kind)kind, &rep, NULL, b);
    trained_response((ef_surrogate_kind)kind, &mc, ones, c);
    trained_response((ef_surrogate_kind)kind, &mc, NULL, d);
    assert_memory_equal(a, b, NR * sizeof *a);
    assert_memory_equal(c, d, NR * sizeof *a);
    assert_true(memcmp(a, d, NR * sizeof *a) != 0);
  }
  printf("# multiplicities: a replica of %zu from %zu events trains as that replica written out\n",
         n, mc.n);
  ef_events_free(&rep);
  /* not multiplicities: refused */
  ef_surrogate_params sp = params();
  ef_surrogate *s = NULL;
  assert_int_equal(ef_surrogate_create(ctx, &s, EF_SURROGATE_TOPO, &sp, fm, ROWS, mc.n), EF_OK);
  ones[3] = 0.5;
  assert_int_equal(ef_surrogate_train(ctx, s, &mc, ones, 1, 0, -1), EF_ERR_INTERNAL);
  assert_non_null(strstr(ef_error_message(ctx), "multiplicity 0.5"));
  memset(ones, 0, mc.n * sizeof *ones);
  assert_int_equal(ef_surrogate_train(ctx, s, &mc, ones, 1, 0, -1), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "no events"));
  ones[0] = 1e9; /* beyond the room of a bootstrap replica */
  assert_int_equal(ef_surrogate_train(ctx, s, &mc, ones, 1, 0, -1), EF_ERR_INTERNAL);
  assert_non_null(strstr(ef_error_message(ctx), "room"));
  ef_surrogate_destroy(s);
  free(w);
  free(ones);
  free(a);
}

static void test_refusals(void **state) {
  (void)state;
  ef_surrogate_params sp = params();
  ef_surrogate *s = NULL;
  assert_int_equal(ef_surrogate_create(ctx, &s, (ef_surrogate_kind)7, &sp, fm, ROWS, mc.n),
                   EF_ERR_INTERNAL);
  assert_null(s);
  assert_int_equal(ef_surrogate_create(ctx, &s, EF_SURROGATE_TOPO, &sp, fm, ROWS, mc.n), EF_OK);
  ef_events bare = mc;
  bare.vertex = NULL;
  assert_int_equal(ef_surrogate_train(ctx, s, &bare, NULL, 1, 0, -1), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "vertex"));
  ef_events none = mc;
  none.n = 0;
  assert_int_equal(ef_surrogate_train(ctx, s, &none, NULL, 1, 0, -1), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "no events"));
  ef_surrogate_destroy(s);
  /* made for 8 rows, it still trains with its 256-event batches (its buffers
   * take them in: the sanitizer build checks the accesses) */
  assert_int_equal(ef_surrogate_create(ctx, &s, EF_SURROGATE_MIXED, &sp, fm, 8, mc.n), EF_OK);
  assert_int_equal(ef_surrogate_train(ctx, s, &mc, NULL, 1, 0, -1), EF_OK);
  ef_surrogate_destroy(s);
  ef_surrogate_destroy(NULL);
}

int main(void) {
  ef_space_pi0(&pi0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_topo),
      cmocka_unit_test(test_mixed),
      cmocka_unit_test(test_mixed_per_topology),
      cmocka_unit_test(test_mixed_own_trunk),
      cmocka_unit_test(test_lost_observable),
      cmocka_unit_test(test_moments),
      cmocka_unit_test(test_small_batch),
      cmocka_unit_test(test_trend),
      cmocka_unit_test(test_covariance),
      cmocka_unit_test(test_mixture),
      cmocka_unit_test(test_multiplicities),
      cmocka_unit_test(test_refusals),
  };
  vtx = ef_test_binning(EF_BIN_COS_PHI, 6, 6);
  if (!vtx) return 1;
  int rc = cmocka_run_group_tests(tests, setup, teardown);
  ef_binning_free(vtx);
  return rc;
}
