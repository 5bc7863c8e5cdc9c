/* The polish (include/ensfold/polish.h) on its own, on a toy detector in
 * D = 1: x unbounded, seen with efficiency 0.95 / (1 + exp(-(x + 1) / 0.4))
 * (else a blind category), reconstructed x + 0.4 N(0, 1). The data's truth
 * is N(0, 1), the MC's N(0.3, 1.2); the answer to polish is wrong, N(0.4,
 * 0.8) (its samples drawn exactly, its bins integrated). Two polish
 * iterations must take most of the answer's error away where the detector
 * sees the events (the rms of answer / truth - 1 over the bins of efficiency
 * >= 0.3 below a quarter of the unpolished one, 0.277; seen: 0.17 of it
 * here, 0.14-0.17 with the events' and the polish's seeds moved by 1-3),
 * leave the blind bins alone (factor 1) and the answer's folded sum over
 * the corrected bins as it was; the same seeds give the same factors bit
 * for bit. A bootstrap replica that leaves a bin without MC weight keeps
 * factor 1 there. Also: the refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/binning.h"
#include "ensfold/error.h"
#include "ensfold/events.h"
#include "ensfold/polish.h"

enum { N_MC = 150000, N_DATA = 60000, NV = 16 };
#define X_LO (-4.0)
#define X_HI 4.0
#define A_MU 0.4 /* the wrong answer's mean and sd */
#define A_SD 0.8

static ef_ctx *ctx;
static ef_space sp;
static ef_events mc, data;
static ef_featmap *fm;
static ef_binning *vtx;
static double truth[NV], answer[NV], esum[NV]; /* per bin: probabilities, efficiency x answer */
static unsigned char blind[NV];

static double eff(double x) { return 0.95 / (1.0 + exp(-(x + 1.0) / 0.4)); }
static double cdf(double x, double mu, double sd) { return 0.5 * erfc(-(x - mu) / (sd * sqrt(2.0))); }

static int toy_events(ef_events *ev, size_t n, ef_event_kind kind, double mu, double sd,
                      ef_rng *r) {
  unsigned flags = kind == EF_KIND_MC ? EF_EVENTS_VERTEX | EF_EVENTS_PROB : 0;
  if (ef_events_alloc(ctx, ev, &sp, n, kind, flags) != EF_OK) return -1;
  for (size_t i = 0; i < n; i++) {
    double x = mu + sd * ef_rng_normal(r), p = eff(x);
    int seen = ef_rng_uniform(r) < p;
    ev->topology[i] = (int8_t)(seen ? 0 : 1);
    ev->reco[i] = seen ? x + 0.4 * ef_rng_normal(r) : NAN;
    if (ev->vertex) {
      ev->vertex[i] = x;
      ev->prob[2 * i] = (float)p;
      ev->prob[2 * i + 1] = (float)(1.0 - p);
    }
  }
  return 0;
}

static int setup(void **state) {
  (void)state;
  if (ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) return -1;
  sp = (ef_space){.dim = 1, .n_cat = 2};
  sp.axis[0] = (ef_axis){"x", EF_AXIS_UNBOUNDED, -INFINITY, INFINITY};
  sp.cat[0] = (ef_category){"seen", 0};
  sp.cat[1] = (ef_category){"lost", 1};
  ef_rng r;
  ef_rng_init(&r, 4242, EF_RNG_TEST, 0);
  if (toy_events(&mc, N_MC, EF_KIND_MC, 0.3, 1.2, &r) ||
      toy_events(&data, N_DATA, EF_KIND_DATA, 0.0, 1.0, &r))
    return -1;
  if (ef_featmap_create(ctx, &fm, &sp, &mc, &data, 0.0) != EF_OK) return -1;
  ef_bin_axis ax = {EF_BIN_LINEAR, NV, X_LO, X_HI, 0, 0, NULL};
  if (ef_binning_make(ctx, &vtx, 1, &ax, "test vertex") != EF_OK) return -1;
  for (int k = 0; k < NV; k++) {
    double lo = X_LO + k * (X_HI - X_LO) / NV, hi = lo + (X_HI - X_LO) / NV;
    truth[k] = cdf(hi, 0, 1) - cdf(lo, 0, 1);
    answer[k] = cdf(hi, A_MU, A_SD) - cdf(lo, A_MU, A_SD);
    double e = eff(0.5 * (lo + hi));
    esum[k] = answer[k] * e;
    blind[k] = e < 0.05;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  ef_binning_free(vtx);
  ef_featmap_destroy(fm);
  ef_events_free(&mc);
  ef_events_free(&data);
  ef_ctx_destroy(ctx);
  return 0;
}

static void draw_answer(void *arg, ef_rng *r, float *v) {
  (void)arg;
  v[0] = (float)(A_MU + A_SD * ef_rng_normal(r));
}

static ef_omnifold_params of_params(int iterations) {
  ef_omnifold_params op = {iterations, {32, 2, 600, 512, 1e-3}, 10.0, EF_OF_AVERAGE, 0.05};
  return op;
}

static ef_refine_params rw_params(void) {
  ef_refine_params rw = {1, {32, 2, 800, 512, 1e-3}, 100000, 1000.0};
  return rw;
}

static void run_polish(ef_polish *pl, uint64_t seed, const double *mult, double *corr) {
  ef_polish_problem pb = {&data, NULL, &mc, mult, vtx, blind, answer, esum, draw_answer, NULL,
                          seed, 3, 0};
  ef_rng r;
  ef_rng_init(&r, seed, EF_RNG_TEST, 1);
  assert_int_equal(ef_polish_run(ctx, pl, &pb, &r, corr), EF_OK);
}

/* rms of shape / truth's - 1 over the bins of efficiency >= 0.3 (where two
 * iterations reach the data; OmniFold, like IBU, converges slowly where the
 * detector sees little) holding >= 1 % of the truth, each shape normalised
 * over them. */
static int used(int k) {
  double lo = X_LO + k * (X_HI - X_LO) / NV;
  return eff(lo) >= 0.3 && truth[k] >= 0.01;
}

static double rms_error(const double *h) {
  double sh = 0.0, st = 0.0, s2 = 0.0;
  int n = 0;
  for (int k = 0; k < NV; k++)
    if (used(k)) sh += h[k], st += truth[k];
  for (int k = 0; k < NV; k++)
    if (used(k)) {
      double d = (h[k] / sh) / (truth[k] / st) - 1.0;
      s2 += d * d, n++;
    }
  return sqrt(s2 / n);
}

static void test_polish_moves_to_data(void **state) {
  (void)state;
  ef_omnifold_params op = of_params(2);
  ef_refine_params rw = rw_params();
  ef_polish *pl = NULL;
  assert_int_equal(ef_polish_create(ctx, &pl, &op, &rw, fm, &mc, 0.0, data.n, NV), EF_OK);
  double corr[NV], again[NV], polished[NV];
  run_polish(pl, 11, NULL, corr);
  double before = 0.0, after = 0.0;
  for (int k = 0; k < NV; k++) {
    polished[k] = answer[k] * corr[k];
    if (blind[k]) assert_true(corr[k] == 1.0);
    else before += esum[k], after += esum[k] * corr[k];
  }
  double e0 = rms_error(answer), e1 = rms_error(polished);
  printf("polish: rms of answer / truth - 1 where the efficiency >= 0.3: %.4f -> %.4f (%.2f of it); "
         "folded sum %.6f -> %.6f\n", e0, e1, e1 / e0, before, after);
  assert_true(e1 < e0 / 4.0);
  assert_true(fabs(after / before - 1.0) < 1e-9);
  run_polish(pl, 11, NULL, again);
  assert_memory_equal(corr, again, sizeof corr);
  ef_polish_destroy(pl);
}

/* Bootstrap multiplicities that leave a seen bin without MC weight (every
 * event of bin ZERO_BIN at 0, the rest 1 or 2): that bin keeps factor 1,
 * every other factor is finite. */
#define ZERO_BIN 10
static void test_polish_empty_bin(void **state) {
  (void)state;
  ef_omnifold_params op = of_params(1);
  ef_refine_params rw = rw_params();
  ef_polish *pl = NULL;
  assert_int_equal(ef_polish_create(ctx, &pl, &op, &rw, fm, &mc, 0.0, data.n, NV), EF_OK);
  double *mult = malloc(mc.n * sizeof *mult), corr[NV];
  assert_non_null(mult);
  for (size_t e = 0; e < mc.n; e++)
    mult[e] = ef_binning_index(vtx, &mc.vertex[e]) == ZERO_BIN ? 0.0 : (double)(1 + e % 2);
  assert_false(blind[ZERO_BIN]);
  run_polish(pl, 5, mult, corr);
  for (int k = 0; k < NV; k++) assert_true(isfinite(corr[k]) && corr[k] > 0);
  assert_true(corr[ZERO_BIN] == 1.0);
  free(mult);
  ef_polish_destroy(pl);
}

static void test_polish_refusals(void **state) {
  (void)state;
  ef_omnifold_params op = of_params(0);
  ef_refine_params rw = rw_params();
  ef_polish *pl = (ef_polish *)&op; /* set to NULL by a refusal */
  assert_int_equal(ef_polish_create(ctx, &pl, &op, &rw, fm, &mc, 0.0, data.n, NV), EF_ERR_INPUT);
  assert_null(pl);
  assert_non_null(strstr(ef_error_message(ctx), "0 iterations"));
  op = of_params(1);
  assert_int_equal(ef_polish_create(ctx, &pl, &op, &rw, fm, &mc, 0.0, data.n, NV), EF_OK);
  double corr[NV];
  ef_binning *other = NULL;
  ef_bin_axis ax = {EF_BIN_LINEAR, NV + 1, X_LO, X_HI, 0, 0, NULL};
  assert_int_equal(ef_binning_make(ctx, &other, 1, &ax, "other"), EF_OK);
  ef_polish_problem pb = {&data, NULL, &mc, NULL, other, blind, answer, esum, draw_answer,
                          NULL, 1, 3, 0};
  ef_rng r;
  ef_rng_init(&r, 1, EF_RNG_TEST, 1);
  assert_int_equal(ef_polish_run(ctx, pl, &pb, &r, corr), EF_ERR_INTERNAL);
  ef_binning_free(other);
  ef_polish_destroy(pl);
  ef_polish_destroy(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_polish_refusals),
      cmocka_unit_test(test_polish_moves_to_data),
      cmocka_unit_test(test_polish_empty_bin),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
