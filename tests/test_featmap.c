/* The networks' view of an event space (include/ensfold/featmap.h).
 *
 * Two hand-built generic spaces: S3 = x1 bounded [0, 200], x2 periodic
 * (-3.14159265358979, 3.14159265358979], x3 unbounded; S4 = S3 plus x4
 * periodic (0, 360] (another period). Categories A (seen), lost (blind),
 * B (seen). Each gets an MC sample whose x3 vertices have a known mean and
 * sd (and whose x3 reco is far from them: the scales must come from the
 * vertices). Checked: the widths and the seen categories; every Jacobian
 * and backward pass against central finite differences of its forward
 * function; the generator and the smearing staying inside the ranges; the
 * residual's wrapping; the units and scaled coordinates; and the pi0 space
 * handing everything to features.h bit for bit.
 *
 * Finite differences: a derivative is compared in the observable's unit
 * (d / d(x / unit)), so that one absolute tolerance fits every axis. The
 * forward functions return float, so the step is not the 1e-5 of a double
 * check: a float output of size <= 4 carries a rounding error <= 2.4e-7,
 * which over a step of 2e-5 is already 1.2e-2. With step h (in units) the
 * bound is (rounding of the difference) / 2h + (third derivative) h^2 / 6:
 *   double input (feat)  h = 1e-3: <= 2.4e-4 + 8 * 1e-6 / 6 ~ 2.5e-4
 *   float input          h = 1e-2: <= ~2e-4 + (periodic, radius >= 0.5)
 *                                   16 * 1e-4 / 6 ~ 5e-4
 * TOL_FD = 2e-3 covers these with a margin; a wrong factor, sign or column
 * is off by O(1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ensfold/events.h"
#include "ensfold/featmap.h"
#include "ensfold/features.h"
#include "ensfold/kinematics.h"
#include "ensfold/rng.h"
#include "ensfold/space.h"

#define PI_LO -3.14159265358979
#define PI_HI 3.14159265358979
#define MU3 40.0   /* the MC's x3 vertices: mean */
#define SD3 12.5   /* and (population) sd */
#define N_MC 2000
#define N_PTS 25   /* random points per check */

#define H_DBL 1e-3  /* finite-difference steps, in units (above) */
#define H_FLT 1e-2
#define TOL_FD 2e-3 /* on derivatives in units (above) */
#define TOL_VAL 1e-6 /* a float feature of size <= 4 against its double formula (4 ulp) */

static ef_ctx *ctx;
static ef_space s3, s4, spi0;
static ef_events mc3, mc4;
static ef_featmap *fm3, *fm4, *fm_pi0;

typedef struct {
  const char *name;
  ef_featmap **fm;
  const ef_space *s;
  const ef_events *mc;
} fm_case;

static const fm_case cases[] = {{"S3", &fm3, &s3, &mc3}, {"S4", &fm4, &s4, &mc4}};
#define N_CASES 2

/* ---- fixtures ------------------------------------------------------------ */

static void space_generic(ef_space *s, int four) {
  memset(s, 0, sizeof *s);
  s->dim = four ? 4 : 3;
  s->n_cat = 3;
  s->axis[0] = (ef_axis){"x1", EF_AXIS_BOUNDED, 0.0, 200.0};
  s->axis[1] = (ef_axis){"x2", EF_AXIS_PERIODIC, PI_LO, PI_HI};
  s->axis[2] = (ef_axis){"x3", EF_AXIS_UNBOUNDED, -INFINITY, INFINITY};
  if (four) s->axis[3] = (ef_axis){"x4", EF_AXIS_PERIODIC, 0.0, 360.0};
  s->cat[0] = (ef_category){"A", 0};
  s->cat[1] = (ef_category){"lost", 1};
  s->cat[2] = (ef_category){"B", 0};
}

/* A point of axis a: bounded and periodic uniform with margin (a fraction
 * of the range) kept clear of each end; unbounded MU3 + SD3 z, |z| <= 3. */
static double rand_in(ef_rng *r, const ef_axis *a, double margin) {
  if (a->kind == EF_AXIS_UNBOUNDED) return MU3 + SD3 * fmax(-3.0, fmin(3.0, ef_rng_normal(r)));
  return a->lo + (a->hi - a->lo) * (margin + (1.0 - 2.0 * margin) * ef_rng_uniform(r));
}

/* MC of space s: x3 vertices MU3 + SD3 z with z standardised (mean 0,
 * population sd 1 to rounding), x3 reco 3 x - 500 (mean -380, sd 37.5). */
static int make_mc(ef_events *ev, const ef_space *s, uint64_t seed) {
  if (ef_events_alloc(ctx, ev, s, N_MC, EF_KIND_MC, EF_EVENTS_VERTEX | EF_EVENTS_PROB) != EF_OK)
    return -1;
  ef_rng r;
  ef_rng_init(&r, seed, EF_RNG_TEST, 0);
  const int D = s->dim, K = s->n_cat;
  static double z[N_MC];
  double m = 0.0, q = 0.0;
  for (int i = 0; i < N_MC; i++) m += z[i] = ef_rng_normal(&r);
  m /= N_MC;
  for (int i = 0; i < N_MC; i++) q += (z[i] - m) * (z[i] - m);
  double sd = sqrt(q / N_MC);
  for (int i = 0; i < N_MC; i++) {
    int t = i % K;
    ev->topology[i] = (int8_t)t;
    for (int j = 0; j < D; j++) {
      const ef_axis *a = &s->axis[j];
      double x = a->kind == EF_AXIS_UNBOUNDED ? MU3 + SD3 * (z[i] - m) / sd : rand_in(&r, a, 0.0);
      ev->vertex[(size_t)D * i + j] = x;
      ev->reco[(size_t)D * i + j] =
          s->cat[t].blind ? NAN : a->kind == EF_AXIS_UNBOUNDED ? 3.0 * x - 500.0 : x;
    }
    for (int k = 0; k < K; k++) ev->prob[(size_t)K * i + k] = 1.0f / (float)K;
  }
  if (ef_events_validate(ctx, ev, "featmap-mc") != EF_OK) {
    fprintf(stderr, "MC refused: %s\n", ef_error_message(ctx));
    return -1;
  }
  return 0;
}

static int setup(void **state) {
  (void)state;
  if (ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) return -1;
  space_generic(&s3, 0);
  space_generic(&s4, 1);
  ef_space_pi0(&spi0);
  if (make_mc(&mc3, &s3, 11) || make_mc(&mc4, &s4, 12)) return -1;
  if (ef_featmap_create(ctx, &fm3, &s3, &mc3, NULL, 0.0) != EF_OK ||
      ef_featmap_create(ctx, &fm4, &s4, &mc4, NULL, 0.0) != EF_OK ||
      ef_featmap_create(ctx, &fm_pi0, &spi0, NULL, NULL, 1.5) != EF_OK) {
    fprintf(stderr, "featmap refused: %s\n", ef_error_message(ctx));
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  ef_featmap_destroy(fm3);
  ef_featmap_destroy(fm4);
  ef_featmap_destroy(fm_pi0);
  ef_events_free(&mc3);
  ef_events_free(&mc4);
  ef_ctx_destroy(ctx);
  return 0;
}

/* ---- reference values, computed here from the space and the MC ----------- */

/* Mean and population sd of the MC's vertices of observable j. */
static void mc_stats(const ef_events *mc, int j, double *mean, double *sd) {
  const int D = mc->space.dim;
  double s1 = 0.0, s2 = 0.0;
  for (size_t i = 0; i < mc->n; i++) s1 += mc->vertex[(size_t)D * i + j];
  *mean = s1 / (double)mc->n;
  for (size_t i = 0; i < mc->n; i++) {
    double d = mc->vertex[(size_t)D * i + j] - *mean;
    s2 += d * d;
  }
  *sd = sqrt(s2 / (double)mc->n);
}

/* featmap.h's unit of observable j: half the range, (period / 2 pi): a
 * radian of a = 2 pi x / period, the MC's sd. */
static double ref_unit(const fm_case *c, int j) {
  const ef_axis *a = &c->s->axis[j];
  if (a->kind == EF_AXIS_BOUNDED) return (a->hi - a->lo) / 2.0;
  if (a->kind == EF_AXIS_PERIODIC) return (a->hi - a->lo) / (2.0 * M_PI);
  double m, sd;
  mc_stats(c->mc, j, &m, &sd);
  return sd;
}

/* The features featmap.h documents for observable j at x; their number.
 * Unbounded: z as the featmap scales it (its mean and sd are checked
 * against the MC in test_unit_scaled). */
static int ref_feats(const fm_case *c, int j, double x, double *f) {
  const ef_axis *a = &c->s->axis[j];
  if (a->kind == EF_AXIS_BOUNDED) {
    double s = (2.0 * x - a->lo - a->hi) / (a->hi - a->lo);
    f[0] = s;
    f[1] = 2.0 * s * s - 1.0;
    return 2;
  }
  if (a->kind == EF_AXIS_PERIODIC) {
    double an = 2.0 * M_PI * x / (a->hi - a->lo);
    f[0] = cos(an);
    f[1] = sin(an);
    f[2] = cos(2.0 * an);
    f[3] = sin(2.0 * an);
    return 4;
  }
  f[0] = ef_featmap_scaled(*c->fm, j, x);
  return 1;
}

/* Is float v inside axis a's range? Bounded [lo, hi] and periodic (lo, hi]
 * as floats hold them: lo and hi stand for their nearest floats, so that a
 * periodic point is in ((float)lo, (float)hi] (the pi0 space's phi: in
 * (-pi_f, pi_f]); unbounded finite. */
static void check_in_range(const ef_axis *a, float v, const char *what) {
  if (!isfinite(v)) fail_msg("%s: %s = %g is not finite", what, a->name, (double)v);
  if (a->kind == EF_AXIS_UNBOUNDED) return;
  float lo = (float)a->lo, hi = (float)a->hi;
  if (!(v <= hi && (a->kind == EF_AXIS_PERIODIC ? v > lo : v >= lo)))
    fail_msg("%s: %s = %.9g outside its range (%s, %.9g .. %.9g as floats)", what, a->name,
             (double)v, ef_axis_kind_name(a->kind), (double)lo, (double)hi);
}

/* The triangle wave featmap.h's bounded fold is: any real into [-1, 1],
 * slope +-1, kinks at the odd integers. */
static double tri(double u, double *slope) {
  double m = fmod(u + 1.0, 4.0);
  if (m < 0) m += 4.0;
  *slope = m <= 2.0 ? 1.0 : -1.0;
  return m <= 2.0 ? m - 1.0 : 3.0 - m;
}

/* ---- 1. widths and categories --------------------------------------------- */

static void test_widths(void **state) {
  (void)state;
  assert_int_equal(ef_space_check(ctx, &s3, "S3"), EF_OK);
  assert_int_equal(ef_space_check(ctx, &s4, "S4"), EF_OK);
  /* bounded 2 + periodic 4 (+ 4) + unbounded 1; gen and MMD: 1 + 2 (+ 2) + 1 */
  const int nf[N_CASES] = {7, 11}, ng[N_CASES] = {4, 6};
  for (int c = 0; c < N_CASES; c++) {
    const ef_featmap *fm = *cases[c].fm;
    assert_true(ef_space_same(ef_featmap_space(fm), cases[c].s));
    assert_int_equal(ef_featmap_dim(fm), cases[c].s->dim);
    assert_int_equal(ef_featmap_n_cat(fm), 3);
    assert_int_equal(ef_featmap_n_feat(fm), nf[c]);
    assert_int_equal(ef_featmap_n_embed(fm), nf[c]);
    assert_int_equal(ef_featmap_n_gen(fm), ng[c]);
    assert_int_equal(ef_featmap_n_mmd(fm), ng[c]);
    assert_close(ef_featmap_mmd_scale(fm), sqrt(ng[c] / 3.0), 1e-6);
    assert_int_equal(ef_featmap_n_seen(fm), 2);
    assert_int_equal(ef_featmap_seen(fm, 0), 0);
    assert_int_equal(ef_featmap_seen(fm, 1), 2);
    assert_false(ef_featmap_blind(fm, 0));
    assert_true(ef_featmap_blind(fm, 1));
    assert_false(ef_featmap_blind(fm, 2));
    assert_int_equal(ef_featmap_has_bands(fm), 0);
  }
  printf("# widths S3: feat %d gen %d mmd %d refine %d; S4: feat %d gen %d mmd %d refine %d\n",
         ef_featmap_n_feat(fm3), ef_featmap_n_gen(fm3), ef_featmap_n_mmd(fm3),
         ef_featmap_n_refine(fm3), ef_featmap_n_feat(fm4), ef_featmap_n_gen(fm4),
         ef_featmap_n_mmd(fm4), ef_featmap_n_refine(fm4));
}

/* ---- 2. detector features and their Jacobian ------------------------------- */

static void test_feat_jacobian(void **state) {
  (void)state;
  ef_rng r;
  ef_rng_init(&r, 2, EF_RNG_TEST, 0);
  for (int c = 0; c < N_CASES; c++) {
    const ef_featmap *fm = *cases[c].fm;
    const ef_space *s = cases[c].s;
    const int D = s->dim, nf = ef_featmap_n_feat(fm);
    double worst_fd = 0.0, worst_val = 0.0, worst_seam = 0.0;
    for (int p = 0; p < N_PTS; p++) {
      double v[4], f[4];
      float out[32], out2[32], jac[32 * 4], op[32], om[32];
      for (int j = 0; j < D; j++) v[j] = rand_in(&r, &s->axis[j], 0.0);
      ef_featmap_feat(fm, v, out, jac);
      ef_featmap_feat(fm, v, out2, NULL);
      assert_memory_equal(out, out2, (size_t)nf * sizeof *out);
      /* values: each observable's features in order */
      int o = 0;
      for (int j = 0; j < D; j++) {
        int n = ref_feats(&cases[c], j, v[j], f);
        for (int k = 0; k < n; k++) {
          worst_val = fmax(worst_val, fabs(out[o + k] - f[k]));
          assert_close(out[o + k], f[k], TOL_VAL);
        }
        o += n;
      }
      assert_int_equal(o, nf);
      /* Jacobian against central differences, in units */
      for (int j = 0; j < D; j++) {
        double u = ref_unit(&cases[c], j), vp[4], vm[4];
        memcpy(vp, v, sizeof vp);
        memcpy(vm, v, sizeof vm);
        vp[j] += H_DBL * u;
        vm[j] -= H_DBL * u;
        ef_featmap_feat(fm, vp, op, NULL);
        ef_featmap_feat(fm, vm, om, NULL);
        for (int k = 0; k < nf; k++) {
          double fd = ((double)op[k] - om[k]) / (2.0 * H_DBL), an = jac[k * D + j] * u;
          worst_fd = fmax(worst_fd, fabs(an - fd));
          if (!(fabs(an - fd) <= TOL_FD))
            fail_msg("%s point %d: d feat[%d] / d %s = %.6g (in units), differences %.6g", cases[c].name,
                     p, k, s->axis[j].name, an, fd);
        }
      }
    }
    /* periodic features are continuous across the seam: hi - e and lo + e */
    for (int j = 0; j < D; j++) {
      const ef_axis *a = &s->axis[j];
      if (a->kind != EF_AXIS_PERIODIC) continue;
      double eps = 1e-9 * (a->hi - a->lo), v1[4] = {100.0, 0.5, 40.0, 90.0}, v2[4];
      memcpy(v2, v1, sizeof v2);
      v1[j] = a->hi - eps;
      v2[j] = a->lo + eps;
      float o1[32], o2[32];
      ef_featmap_feat(fm, v1, o1, NULL);
      ef_featmap_feat(fm, v2, o2, NULL);
      for (int k = 0; k < nf; k++) {
        worst_seam = fmax(worst_seam, fabs(o1[k] - o2[k]));
        assert_close(o1[k], o2[k], TOL_VAL);
      }
    }
    printf("# %s feat: worst |value - formula| %.2e (tol %.0e), |J - differences| in units %.2e "
           "(tol %.0e, step %.0e), across the seam %.2e\n",
           cases[c].name, worst_val, TOL_VAL, worst_fd, TOL_FD, H_DBL, worst_seam);
  }
}

/* ---- 3. discriminator embedding and its backward pass ---------------------- */

static void test_embed_back(void **state) {
  (void)state;
  ef_rng r;
  ef_rng_init(&r, 3, EF_RNG_TEST, 0);
  for (int c = 0; c < N_CASES; c++) {
    const ef_featmap *fm = *cases[c].fm;
    const ef_space *s = cases[c].s;
    const int D = s->dim, ne = ef_featmap_n_embed(fm);
    double worst_fd = 0.0, worst_val = 0.0;
    for (int p = 0; p < N_PTS; p++) {
      float v[4], e[32], de[32], dv[4], ep[32], em[32];
      double f[4];
      for (int j = 0; j < D; j++) v[j] = (float)rand_in(&r, &s->axis[j], 0.01);
      for (int k = 0; k < ne; k++) de[k] = (float)(2.0 * ef_rng_uniform(&r) - 1.0);
      ef_featmap_embed(fm, v, e);
      int o = 0;
      for (int j = 0; j < D; j++) {
        int n = ref_feats(&cases[c], j, v[j], f);
        for (int k = 0; k < n; k++) {
          worst_val = fmax(worst_val, fabs(e[o + k] - f[k]));
          assert_close(e[o + k], f[k], TOL_VAL);
        }
        o += n;
      }
      assert_int_equal(o, ne);
      ef_featmap_embed_back(fm, de, v, dv);
      for (int j = 0; j < D; j++) {
        double u = ref_unit(&cases[c], j);
        float vp[4], vm[4];
        memcpy(vp, v, sizeof vp);
        memcpy(vm, v, sizeof vm);
        vp[j] = (float)(v[j] + H_FLT * u);
        vm[j] = (float)(v[j] - H_FLT * u);
        ef_featmap_embed(fm, vp, ep);
        ef_featmap_embed(fm, vm, em);
        double lp = 0.0, lm = 0.0;
        for (int k = 0; k < ne; k++) {
          lp += (double)de[k] * ep[k];
          lm += (double)de[k] * em[k];
        }
        double fd = (lp - lm) / ((double)vp[j] - vm[j]) * u, an = dv[j] * u;
        worst_fd = fmax(worst_fd, fabs(an - fd));
        if (!(fabs(an - fd) <= TOL_FD))
          fail_msg("%s point %d: embed_back d/d %s = %.6g (in units), differences %.6g",
                   cases[c].name, p, s->axis[j].name, an, fd);
      }
    }
    printf("# %s embed: worst |value - formula| %.2e (tol %.0e), |dv - differences| in units "
           "%.2e (tol %.0e, step %.0e)\n",
           cases[c].name, worst_val, TOL_VAL, worst_fd, TOL_FD, H_FLT);
  }
}

/* ---- 4. the generator's output ---------------------------------------------- */

/* The point of raw output u featmap.h describes, observable by observable,
 * compared with gen's v: bounded lo + (tri(u) + 1) (hi - lo) / 2 within the
 * float rounding of u + 1 and of the result; periodic the direction of the
 * pair; unbounded mean + sd u folded into the MC vertices' range [mn, mx]
 * (a triangle wave, as the bounded one). Returns the worst error in units. */
static double check_gen_value(const fm_case *c, const float *u, const float *v) {
  const ef_space *s = c->s;
  double worst = 0.0;
  for (int j = 0, o = 0; j < s->dim; j++) {
    const ef_axis *a = &s->axis[j];
    double unit = ref_unit(c, j), err, tol;
    if (a->kind == EF_AXIS_BOUNDED) {
      double sl, want = a->lo + (tri(u[o], &sl) + 1.0) * (a->hi - a->lo) / 2.0;
      err = fabs(v[j] - want) / unit;
      tol = 4.0 * FLT_EPSILON * (fabs(u[o]) + 4.0);
      o += 1;
    } else if (a->kind == EF_AXIS_PERIODIC) {
      double rr = hypot(u[o], u[o + 1]), an = 2.0 * M_PI * v[j] / (a->hi - a->lo);
      err = fmax(fabs(cos(an) - u[o] / rr), fabs(sin(an) - u[o + 1] / rr));
      tol = 4.0 * FLT_EPSILON * (fabs(an) + 1.0);
      o += 2;
    } else {
      /* the featmap's own mean and sd (test_unit_scaled checks them) */
      double fu = ef_featmap_unit(*c->fm, j), m = -fu * ef_featmap_scaled(*c->fm, j, 0.0);
      double mn = INFINITY, mx = -INFINITY, sl;
      for (size_t i = 0; i < c->mc->n; i++) {
        mn = fmin(mn, c->mc->vertex[(size_t)s->dim * i + (size_t)j]);
        mx = fmax(mx, c->mc->vertex[(size_t)s->dim * i + (size_t)j]);
      }
      double x = m + fu * u[o], want = mn + (tri((2 * x - mn - mx) / (mx - mn), &sl) + 1.0) *
                                               (mx - mn) / 2.0;
      err = fabs(v[j] - want) / unit;
      tol = 4.0 * FLT_EPSILON * (fabs(m) / unit + fabs(u[o]) + 1.0);
      o += 1;
    }
    if (!(err <= tol))
      fail_msg("%s gen: %s = %.9g off the documented point by %.3g units (tol %.3g)", c->name,
               a->name, (double)v[j], err, tol);
    worst = fmax(worst, err);
  }
  return worst;
}

static void test_gen(void **state) {
  (void)state;
  ef_rng r;
  ef_rng_init(&r, 4, EF_RNG_TEST, 0);
  for (int c = 0; c < N_CASES; c++) {
    const ef_featmap *fm = *cases[c].fm;
    const ef_space *s = cases[c].s;
    const int D = s->dim, ng = ef_featmap_n_gen(fm);
    double worst_val = 0.0, worst_fd = 0.0;
    /* any raw output lands inside the ranges: normal draws of scale 1, 5
     * and 50, and every component +-50 and +-1000 */
    const double scale[] = {1.0, 5.0, 50.0};
    for (int p = 0; p < 300 + 4; p++) {
      float u[8], v[4];
      for (int k = 0; k < ng; k++) {
        if (p < 300) u[k] = (float)(scale[p % 3] * ef_rng_normal(&r));
        else u[k] = (float)((p % 2 ? 50.0 : 1000.0) * (p >= 302 ? -1.0 : 1.0) * (k % 3 ? 1 : -1));
      }
      ef_featmap_gen(fm, u, v);
      for (int j = 0; j < D; j++) check_in_range(&s->axis[j], v[j], cases[c].name);
      worst_val = fmax(worst_val, check_gen_value(&cases[c], u, v));
    }
    /* gen_back against differences of sum(gv v(u)), gv = g / unit with g
     * in [-1, 1]: bounded u at least 0.05 from a fold kink (an odd
     * integer; half the points within |u| < 0.9), periodic pairs of radius
     * 0.5..2 at least 0.1 rad from the seam, unbounded |z| < 2 (inside the MC range) */
    for (int p = 0; p < 2 * N_PTS; p++) {
      float u[8], gv[4], du[8], v[4];
      double g[4];
      for (int j = 0, o = 0; j < D; j++) {
        const ef_axis *a = &s->axis[j];
        g[j] = 2.0 * ef_rng_uniform(&r) - 1.0;
        gv[j] = (float)(g[j] / ref_unit(&cases[c], j));
        if (a->kind == EF_AXIS_BOUNDED) {
          double x;
          do
            x = p < N_PTS ? 1.8 * ef_rng_uniform(&r) - 0.9 : 120.0 * ef_rng_uniform(&r) - 60.0;
          while (fabs(x - (2.0 * floor((x - 1.0) / 2.0 + 0.5) + 1.0)) < 0.05);
          u[o++] = (float)x;
        } else if (a->kind == EF_AXIS_PERIODIC) {
          double rr = 0.5 + 1.5 * ef_rng_uniform(&r);
          double seam = 2.0 * M_PI * a->lo / (a->hi - a->lo);
          double an = seam + 0.1 + (2.0 * M_PI - 0.2) * ef_rng_uniform(&r);
          u[o++] = (float)(rr * cos(an));
          u[o++] = (float)(rr * sin(an));
        } else { /* inside the MC's range (|z| < 2), clear of the fold's kinks */
          u[o++] = (float)(2.0 * (2.0 * ef_rng_uniform(&r) - 1.0));
        }
      }
      ef_featmap_gen(fm, u, v);
      worst_val = fmax(worst_val, check_gen_value(&cases[c], u, v));
      ef_featmap_gen_back(fm, u, gv, du);
      for (int k = 0; k < ng; k++) {
        float up[8], um[8], vp[4], vm[4];
        memcpy(up, u, sizeof up);
        memcpy(um, u, sizeof um);
        up[k] = (float)(u[k] + H_FLT);
        um[k] = (float)(u[k] - H_FLT);
        ef_featmap_gen(fm, up, vp);
        ef_featmap_gen(fm, um, vm);
        double lp = 0.0, lm = 0.0;
        for (int j = 0; j < D; j++) {
          lp += (double)gv[j] * vp[j];
          lm += (double)gv[j] * vm[j];
        }
        double fd = (lp - lm) / ((double)up[k] - um[k]);
        worst_fd = fmax(worst_fd, fabs(du[k] - fd));
        if (!(fabs(du[k] - fd) <= TOL_FD))
          fail_msg("%s point %d: gen_back du[%d] = %.6g, differences %.6g (u = %g)", cases[c].name,
                   p, k, (double)du[k], fd, (double)u[k]);
      }
    }
    printf("# %s gen: worst |v - documented point| %.2e units (tol 4 float eps (|u| + 4)), "
           "|du - differences| %.2e (tol %.0e, step %.0e)\n",
           cases[c].name, worst_val, worst_fd, TOL_FD, H_FLT);
  }
}

/* The seam of a periodic axis, where lo is stored as hi (space.h): a
 * generator's direction exactly at it gives hi, and so does a smeared point
 * landing on it; never the excluded end lo (or, where lo is no float, the
 * float nearest lo). Exact comparisons: these are the ends themselves. */
static void test_gen_seam(void **state) {
  (void)state;
  float u[6] = {0.3f, 0.0f, 1.0f, 0.0f, 1.0f, 0.0f}, v[4]; /* x1 | x2 pair | x3 | x4 pair */
  ef_featmap_gen(fm4, u, v); /* x4: angle 0 */
  printf("# gen at the seam: (0, 360] from (1, 0): %.9g", (double)v[3]);
  assert_true(v[3] == 360.0f);
  u[5] = -0.0f;
  ef_featmap_gen(fm4, u, v);
  assert_true(v[3] == 360.0f);
  /* smeared onto the seam of (0, 360]: 0 and 720 are 360 */
  float vv[4] = {100.0f, 1.0f, 40.0f, 350.0f}, sig[4] = {1.0f, 1.0f, 1.0f, 10.0f}, rc[4], sgn[4];
  float o[4] = {0.0f, 0.0f, 0.0f, 1.0f};
  ef_featmap_smear(fm4, vv, sig, o, rc, sgn);
  assert_true(rc[3] == 360.0f);
  o[3] = -35.0f;
  ef_featmap_smear(fm4, vv, sig, o, rc, sgn);
  assert_true(rc[3] == 360.0f);
  o[3] = 37.0f;
  ef_featmap_smear(fm4, vv, sig, o, rc, sgn);
  assert_true(rc[3] == 360.0f);
  /* smeared onto the floats nearest lo and hi of x2: inside */
  vv[1] = (float)PI_HI;
  o[3] = 0.5f;
  ef_featmap_smear(fm4, vv, sig, o, rc, sgn);
  check_in_range(&s4.axis[1], rc[1], "smear to the float of hi");
  vv[1] = (float)PI_LO;
  ef_featmap_smear(fm4, vv, sig, o, rc, sgn);
  check_in_range(&s4.axis[1], rc[1], "smear to the float of lo");
  /* x2 on (-3.14159265358979, 3.14159265358979]: angle pi from (-1, +0) and
   * (-1, -0) is the seam */
  u[1] = -1.0f;
  u[2] = 0.0f;
  ef_featmap_gen(fm4, u, v);
  float v2 = v[1];
  u[2] = -0.0f;
  ef_featmap_gen(fm4, u, v);
  printf("; (lo, hi] from (-1, +0): %.9g, from (-1, -0): %.9g (the floats of lo, hi: %.9g, "
         "%.9g)\n", (double)v2, (double)v[1], (double)(float)PI_LO, (double)(float)PI_HI);
  check_in_range(&s4.axis[1], v2, "gen at angle pi");
  check_in_range(&s4.axis[1], v[1], "gen at angle -pi");
}

/* ---- 5. MMD points ----------------------------------------------------------- */

static void test_mmd(void **state) {
  (void)state;
  ef_rng r;
  ef_rng_init(&r, 5, EF_RNG_TEST, 0);
  for (int c = 0; c < N_CASES; c++) {
    const ef_featmap *fm = *cases[c].fm;
    const ef_space *s = cases[c].s;
    const int D = s->dim, nm = ef_featmap_n_mmd(fm);
    double worst_val = 0.0, worst_fd = 0.0;
    for (int p = 0; p < N_PTS; p++) {
      float v[4], pt[8], gp[8], gv[4], pp[8], pm[8];
      for (int j = 0; j < D; j++) v[j] = (float)rand_in(&r, &s->axis[j], 0.01);
      for (int k = 0; k < nm; k++) gp[k] = (float)(2.0 * ef_rng_uniform(&r) - 1.0);
      ef_featmap_mmd(fm, v, pt);
      /* bounded s, periodic (cos a, sin a), unbounded z / 3 */
      for (int j = 0, o = 0; j < D; j++) {
        const ef_axis *a = &s->axis[j];
        double want[2];
        int n = 1;
        if (a->kind == EF_AXIS_PERIODIC) {
          double an = 2.0 * M_PI * v[j] / (a->hi - a->lo);
          want[0] = cos(an);
          want[1] = sin(an);
          n = 2;
        } else if (a->kind == EF_AXIS_BOUNDED) {
          want[0] = (2.0 * v[j] - a->lo - a->hi) / (a->hi - a->lo);
        } else {
          want[0] = ef_featmap_scaled(fm, j, v[j]) / 3.0;
        }
        for (int k = 0; k < n; k++) {
          worst_val = fmax(worst_val, fabs(pt[o + k] - want[k]));
          assert_close(pt[o + k], want[k], TOL_VAL);
        }
        o += n;
      }
      ef_featmap_mmd_back(fm, v, gp, gv);
      for (int j = 0; j < D; j++) {
        double u = ref_unit(&cases[c], j);
        float vp[4], vm[4];
        memcpy(vp, v, sizeof vp);
        memcpy(vm, v, sizeof vm);
        vp[j] = (float)(v[j] + H_FLT * u);
        vm[j] = (float)(v[j] - H_FLT * u);
        ef_featmap_mmd(fm, vp, pp);
        ef_featmap_mmd(fm, vm, pm);
        double lp = 0.0, lm = 0.0;
        for (int k = 0; k < nm; k++) {
          lp += (double)gp[k] * pp[k];
          lm += (double)gp[k] * pm[k];
        }
        double fd = (lp - lm) / ((double)vp[j] - vm[j]) * u, an = gv[j] * u;
        worst_fd = fmax(worst_fd, fabs(an - fd));
        if (!(fabs(an - fd) <= TOL_FD))
          fail_msg("%s point %d: mmd_back d/d %s = %.6g (in units), differences %.6g",
                   cases[c].name, p, s->axis[j].name, an, fd);
      }
    }
    printf("# %s mmd: worst |value - formula| %.2e (tol %.0e), |gv - differences| in units "
           "%.2e (tol %.0e, step %.0e)\n",
           cases[c].name, worst_val, TOL_VAL, worst_fd, TOL_FD, H_FLT);
  }
}

/* ---- 6. smearing and residuals ---------------------------------------------- */

static void test_smear_residual(void **state) {
  (void)state;
  ef_rng r;
  ef_rng_init(&r, 6, EF_RNG_TEST, 0);
  for (int c = 0; c < N_CASES; c++) {
    const ef_featmap *fm = *cases[c].fm;
    const ef_space *s = cases[c].s;
    const int D = s->dim;
    double worst_big = 0.0, worst_small = 0.0;
    int flips = 0;
    for (int p = 0; p < 200; p++) {
      /* p < 100: sig o of 5..100 units; else 1e-3 units, away from the ends */
      const int big = p < 100;
      float v[4], sig[4], o[4], rc[4], sgn[4];
      for (int j = 0; j < D; j++) {
        double u = ref_unit(&cases[c], j);
        v[j] = (float)rand_in(&r, &s->axis[j], big ? 0.0 : 0.01);
        sig[j] = (float)(u * (0.5 + 1.5 * ef_rng_uniform(&r)));
        double m = big ? 5.0 + 45.0 * ef_rng_uniform(&r) : 1e-3; /* |sig o| in units */
        o[j] = (float)((ef_rng_uniform(&r) < 0.5 ? -m : m) * u / sig[j]);
      }
      ef_featmap_smear(fm, v, sig, o, rc, sgn);
      for (int j = 0; j < D; j++) {
        const ef_axis *a = &s->axis[j];
        double u = ref_unit(&cases[c], j), y = (double)v[j] + (double)sig[j] * o[j], err, tol;
        check_in_range(a, rc[j], cases[c].name);
        if (!(sgn[j] == 1.0f || sgn[j] == -1.0f))
          fail_msg("%s: sgn of %s = %g", cases[c].name, a->name, (double)sgn[j]);
        if (a->kind == EF_AXIS_BOUNDED) {
          /* the fold of y in s, within the float rounding of y, s and s + 1 */
          double sl, sy = (2.0 * y - a->lo - a->hi) / (a->hi - a->lo), t = tri(sy, &sl);
          err = fabs(rc[j] - (a->lo + (t + 1.0) * (a->hi - a->lo) / 2.0)) / u;
          tol = 4.0 * FLT_EPSILON * (fabs(sy) + 4.0);
          if (fabs(t) < 1.0 - tol) assert_true(sgn[j] == (float)sl); /* not at a kink */
          flips += sgn[j] < 0;
        } else if (a->kind == EF_AXIS_PERIODIC) {
          /* rc = y + k period */
          double per = a->hi - a->lo, k = (rc[j] - y) / per;
          err = fabs(k - round(k)) * per / u;
          tol = 4.0 * FLT_EPSILON * (fabs(y) + per) / u;
          assert_true(sgn[j] == 1.0f);
        } else {
          err = fabs(rc[j] - y) / u;
          tol = 4.0 * FLT_EPSILON * (fabs(y) + u) / u;
          assert_true(sgn[j] == 1.0f);
        }
        if (!big) {
          /* a small shift stays where it is: rc = v + sig o, sgn +1 */
          assert_true(sgn[j] == 1.0f);
          err = fabs(rc[j] - y) / u;
          worst_small = fmax(worst_small, err);
        } else {
          worst_big = fmax(worst_big, err);
        }
        if (!(err <= tol))
          fail_msg("%s: smear of %s: v %.9g + sig o %.9g -> %.9g, off by %.3g units (tol %.3g)",
                   cases[c].name, a->name, (double)v[j], (double)sig[j] * o[j], (double)rc[j], err,
                   tol);
      }
    }
    assert_true(flips > 0); /* the large shifts did reach a fold's falling side */
    printf("# %s smear: worst error in units, large shifts %.2e, small shifts %.2e (tol 4 float eps "
           "(|y| + range)); %d folded with sgn -1\n",
           cases[c].name, worst_big, worst_small, flips);
  }
  /* residuals: bounded and unbounded plain differences, periodic wrapped */
  double reco3[3] = {150.0, 3.1, 1000.0}, vert3[3] = {20.0, -3.1, -5.0}, r3[3];
  ef_featmap_residual(fm3, reco3, vert3, r3);
  assert_close(r3[0], 130.0, 1e-12);
  assert_close(r3[1], 6.2 - (PI_HI - PI_LO), 1e-12); /* about -0.0832 */
  assert_close(r3[2], 1005.0, 1e-12);
  double reco4[4] = {150.0, -3.1, 1000.0, 359.0}, vert4[4] = {20.0, 3.1, -5.0, 1.0}, r4[4];
  ef_featmap_residual(fm4, reco4, vert4, r4);
  assert_close(r4[1], (PI_HI - PI_LO) - 6.2, 1e-12);
  assert_close(r4[3], -2.0, 1e-12);
  ef_featmap_residual(fm4, vert4, reco4, r4);
  assert_close(r4[3], 2.0, 1e-12);
  printf("# residual: (-pi, pi] 3.1 - (-3.1) -> %.15f; [0, 360] 359 - 1 -> %.15f reversed %.15f\n",
         r3[1], -r4[3], r4[3]);
  reco4[3] = 180.0;
  vert4[3] = 0.0 + 360.0;
  ef_featmap_residual(fm4, reco4, vert4, r4);
  assert_close(fabs(r4[3]), 180.0, 1e-12); /* half a period either way */
  /* random pairs: |r| <= half a period, r = reco - vertex + k period */
  double worst = 0.0;
  for (int p = 0; p < 200; p++) {
    double re[4], ve[4], rr[4];
    for (int j = 0; j < 4; j++) {
      re[j] = rand_in(&r, &s4.axis[j], 0.0);
      ve[j] = rand_in(&r, &s4.axis[j], 0.0);
    }
    ef_featmap_residual(fm4, re, ve, rr);
    for (int j = 0; j < 4; j++) {
      const ef_axis *a = &s4.axis[j];
      if (a->kind != EF_AXIS_PERIODIC) {
        assert_true(rr[j] == re[j] - ve[j]);
        continue;
      }
      double per = a->hi - a->lo, k = (rr[j] - (re[j] - ve[j])) / per;
      assert_true(fabs(rr[j]) <= per / 2.0 + 1e-12 * per);
      worst = fmax(worst, fabs(k - round(k)) * per);
      assert_close(k, round(k), 1e-12);
    }
  }
  printf("# residual: random pairs off a whole period by at most %.2e\n", worst);
}

/* ---- 7. units and scaled coordinates --------------------------------------- */

static void test_unit_scaled(void **state) {
  (void)state;
  double m3, sd3;
  mc_stats(&mc3, 2, &m3, &sd3);
  assert_close(m3, MU3, 1e-9);
  assert_close(sd3, SD3, 1e-9);
  for (int c = 0; c < N_CASES; c++) {
    const ef_featmap *fm = *cases[c].fm;
    assert_close(ef_featmap_unit(fm, 0), 100.0, 1e-12);
    assert_close(ef_featmap_unit(fm, 1), (PI_HI - PI_LO) / (2.0 * M_PI), 1e-12);
    assert_close(ef_featmap_scaled(fm, 0, 0.0), -1.0, 1e-12);
    assert_close(ef_featmap_scaled(fm, 0, 200.0), 1.0, 1e-12);
    assert_close(ef_featmap_scaled(fm, 0, 150.0), 0.5, 1e-12);
    assert_close(ef_featmap_scaled(fm, 1, 1.0), 2.0 * M_PI / (PI_HI - PI_LO), 1e-12);
    /* unbounded: the MC vertices' mean and sd. The mean to rounding; the sd
     * within 1e-3 relative: featmap.h does not say 1/n or 1/(n - 1), which
     * differ by 2.5e-4 here; the x3 reco (mean -380, sd 37.5) or the
     * defaults (0, 1) would be off by O(1). */
    double mc_m, mc_sd;
    mc_stats(cases[c].mc, 2, &mc_m, &mc_sd);
    double unit = ef_featmap_unit(fm, 2);
    printf("# %s x3: MC vertices mean %.12g sd %.12g; featmap unit %.12g (relative %.2e), "
           "scaled(mean) %.2e\n",
           cases[c].name, mc_m, mc_sd, unit, unit / mc_sd - 1.0, ef_featmap_scaled(fm, 2, mc_m));
    assert_close(unit / mc_sd, 1.0, 1e-3);
    assert_close(ef_featmap_scaled(fm, 2, mc_m), 0.0, 1e-9);
    assert_close(ef_featmap_scaled(fm, 2, mc_m + 2.0 * unit), 2.0, 1e-9);
  }
  assert_close(ef_featmap_unit(fm4, 3), 360.0 / (2.0 * M_PI), 1e-12);
  assert_close(ef_featmap_scaled(fm4, 3, 90.0), M_PI / 2.0, 1e-12);
  /* without an MC: mean 0, sd 1 */
  ef_featmap *fm = NULL;
  assert_int_equal(ef_featmap_create(ctx, &fm, &s3, NULL, NULL, 0.0), EF_OK);
  assert_close(ef_featmap_unit(fm, 2), 1.0, 0.0);
  assert_close(ef_featmap_scaled(fm, 2, 5.0), 5.0, 0.0);
  ef_featmap_destroy(fm);
}

/* With data, the unbounded observable's frame is the data's measured
 * reconstructions (file weights), the category that records one constant
 * for it left out; the MC still bounds G's output (its vertices' range). */
static void test_data_frame(void **state) {
  (void)state;
  ef_events data;
  assert_int_equal(ef_events_alloc(ctx, &data, &s3, N_MC, EF_KIND_DATA, EF_EVENTS_WEIGHT), EF_OK);
  ef_rng r;
  ef_rng_init(&r, 77, EF_RNG_TEST, 0);
  double s0 = 0.0, s1 = 0.0, s2 = 0.0; /* category A's weighted sums, computed here apart */
  for (int i = 0; i < N_MC; i++) {
    int t = i % 3; /* A, lost (blind), B: B records x3 = 0 for every event */
    data.topology[i] = (int8_t)t;
    data.weight[i] = 1.0 + (i % 5);
    for (int j = 0; j < 3; j++) data.reco[3 * i + j] = s3.cat[t].blind ? NAN : rand_in(&r, &s3.axis[j], 0.1);
    if (t == 2) data.reco[3 * i + 2] = 0.0;
    if (t == 0) {
      data.reco[3 * i + 2] = -7.0 + 3.0 * ef_rng_normal(&r);
      double w = data.weight[i], x = data.reco[3 * i + 2];
      s0 += w;
      s1 += w * x;
      s2 += w * x * x;
    }
  }
  assert_int_equal(ef_events_validate(ctx, &data, "featmap-data"), EF_OK);
  double m = s1 / s0, sd = sqrt(s2 / s0 - m * m);
  ef_featmap *fm = NULL;
  assert_int_equal(ef_featmap_create(ctx, &fm, &s3, &mc3, &data, 0.0), EF_OK);
  printf("# data frame: category A's x3 mean %.6g sd %.6g; featmap unit %.6g, scaled(mean) %.2e\n",
         m, sd, ef_featmap_unit(fm, 2), ef_featmap_scaled(fm, 2, m));
  assert_close(ef_featmap_unit(fm, 2), sd, 1e-9 * sd);
  assert_close(ef_featmap_scaled(fm, 2, m), 0.0, 1e-9);
  assert_close(ef_featmap_scaled(fm, 2, m + 2.0 * sd), 2.0, 1e-9);
  /* the other kinds keep their declared scales */
  assert_close(ef_featmap_scaled(fm, 0, 150.0), 0.5, 1e-12);
  /* G's raw output far out is folded into the MC vertices' range, not the data's */
  float u[4] = {0.1f, 0.3f, 0.4f, 1e4f}, v[3]; /* x1's s; x2's pair; x3's raw output */
  ef_featmap_gen(fm, u, v);
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < mc3.n; i++) {
    lo = fmin(lo, mc3.vertex[3 * i + 2]);
    hi = fmax(hi, mc3.vertex[3 * i + 2]);
  }
  assert_true(v[2] >= lo - 1e-3 && v[2] <= hi + 1e-3);
  ef_featmap_destroy(fm);
  ef_events_free(&data);
}

/* ---- 8. the pi0 space ------------------------------------------------------- */

static void test_pi0(void **state) {
  (void)state;
  const ef_featmap *fm = fm_pi0;
  assert_int_equal(ef_featmap_dim(fm), 2);
  assert_int_equal(ef_featmap_n_feat(fm), EF_FEAT_KIN);
  assert_int_equal(ef_featmap_n_embed(fm), EF_FEAT_EMBED);
  assert_int_equal(ef_featmap_n_refine(fm), EF_FEAT_REFINE);
  assert_int_equal(ef_featmap_n_gen(fm), 3);
  assert_int_equal(ef_featmap_n_mmd(fm), 3);
  assert_true(ef_featmap_mmd_scale(fm) == 1.0f);
  assert_int_equal(ef_featmap_has_bands(fm), 1);
  assert_int_equal(ef_featmap_n_seen(fm), 3);
  for (int j = 0; j < 3; j++) assert_int_equal(ef_featmap_seen(fm, j), j + 1);
  assert_true(ef_featmap_blind(fm, 0));
  for (int t = 1; t < 4; t++) assert_false(ef_featmap_blind(fm, t));
  ef_kin kin;
  ef_kin_init(&kin, 1.5);
  ef_rng r;
  ef_rng_init(&r, 8, EF_RNG_TEST, 0);
  for (int p = 0; p < 50; p++) {
    double v[2] = {2.0 * ef_rng_uniform(&r) - 1.0, M_PI * (2.0 * ef_rng_uniform(&r) - 1.0)};
    float out[EF_FEAT_KIN], jac[EF_FEAT_KIN * 2], out2[EF_FEAT_KIN], jac2[EF_FEAT_KIN * 2];
    ef_featmap_feat(fm, v, out, jac);
    ef_features_kin(&kin, v[0], v[1], out2, jac2);
    assert_memory_equal(out, out2, sizeof out);
    assert_memory_equal(jac, jac2, sizeof jac);
    float vf[2] = {(float)v[0], (float)v[1]}, e[EF_FEAT_REFINE], e2[EF_FEAT_REFINE];
    ef_featmap_embed(fm, vf, e);
    ef_features_embed(e2, vf[0], vf[1]);
    assert_memory_equal(e, e2, EF_FEAT_EMBED * sizeof *e);
    ef_featmap_refine(fm, vf, e);
    ef_features_refine(e2, vf[0], vf[1]);
    assert_memory_equal(e, e2, EF_FEAT_REFINE * sizeof *e);
    float u[3] = {(float)ef_rng_normal(&r), (float)ef_rng_normal(&r), (float)ef_rng_normal(&r)};
    float g[2], g2[2];
    ef_featmap_gen(fm, u, g);
    ef_features_sphere(u, &g2[0], &g2[1]);
    assert_memory_equal(g, g2, sizeof g);
  }
  /* the lab angles need a beam energy */
  const double bad[] = {0.0, -1.0, NAN};
  for (int i = 0; i < 3; i++) {
    static char not_null;
    ef_featmap *f = (ef_featmap *)(void *)&not_null; /* the refusal must set it NULL */
    assert_int_equal(ef_featmap_create(ctx, &f, &spi0, NULL, NULL, bad[i]), EF_ERR_INPUT);
    assert_null(f);
    assert_non_null(strstr(ef_error_message(ctx), "beam energy"));
    ef_error_clear(ctx);
  }
  printf("# pi0: feat, Jacobian, embed, refine and gen equal features.h's bit for bit at 50 "
         "points; beam energy 0, -1, NaN refused\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_widths),      cmocka_unit_test(test_feat_jacobian),
      cmocka_unit_test(test_embed_back),  cmocka_unit_test(test_gen),
      cmocka_unit_test(test_gen_seam),
      cmocka_unit_test(test_mmd),         cmocka_unit_test(test_smear_residual),
      cmocka_unit_test(test_unit_scaled), cmocka_unit_test(test_data_frame),
      cmocka_unit_test(test_pi0),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
