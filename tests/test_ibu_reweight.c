/* ef_ibu_reweight (ibu.reweight): the MC's weights inside the vertex bins
 * follow the slope of log(unfolded / MC) from the node neighbours, every
 * node bin keeps its weight, other events keep theirs. Hand cases with
 * the expected weights written out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ef_test.h"
#include "ensfold/binning.h"
#include "ensfold/ibu.h"

static ef_ctx *ctx;
static int32_t cols[1024]; /* the events' columns: enough for every case here */

/* ef_ibu_reweight with the events' columns from their vertex bins. */
static void reweight(const ef_binning *b, const ef_events *mc, const double *base,
                     const double *u, const unsigned char *nodes, double *work, double *w) {
  assert_true(mc->n <= sizeof cols / sizeof *cols);
  for (size_t e = 0; e < mc->n; e++)
    cols[e] = ef_binning_index(b, mc->vertex + e * (size_t)ef_binning_dim(b));
  ef_ibu_reweight(b, mc, base, u, nodes, cols, work, w);
}

static ef_binning *make_binning(int dim, const ef_bin_axis *axes) {
  ef_binning *b = NULL;
  assert_int_equal(ef_binning_make(ctx, &b, dim, axes, "test binning"), EF_OK);
  return b;
}

enum { PER_BIN = 4 };
static const double place[PER_BIN] = {0.125, 0.375, 0.625, 0.875}; /* inside a bin */

/* MC (n = nb x PER_BIN) at place[] inside each of nb bins of width 1 from lo. */
static ef_events line_mc(int nb, double lo, double *x) {
  for (int k = 0; k < nb; k++)
    for (int q = 0; q < PER_BIN; q++) x[k * PER_BIN + q] = lo + k + place[q];
  ef_events mc = {0};
  mc.n = (size_t)nb * PER_BIN;
  mc.vertex = x;
  return mc;
}

/* The weights bin k's events should get for slope g (per bin): PER_BIN x
 * exp(g (f - 1/2)) / their sum. */
static void expect_bin(const double *w, int k, double g) {
  double s = 0.0;
  for (int q = 0; q < PER_BIN; q++) s += exp(g * (place[q] - 0.5));
  for (int q = 0; q < PER_BIN; q++)
    assert_close(w[k * PER_BIN + q], PER_BIN * exp(g * (place[q] - 0.5)) / s, 1e-12);
}

/* log(unfolded / MC) linear in the bin index: the same slope everywhere,
 * central differences inside, one-sided at both ends, exact. */
static void test_linear_slope(void **state) {
  (void)state;
  ef_bin_axis ax = {.scale = EF_BIN_LINEAR, .n = 5, .lo = 0, .hi = 5};
  ef_binning *b = make_binning(1, &ax);
  double x[5 * PER_BIN], w[5 * PER_BIN], u[5];
  ef_events mc = line_mc(5, 0.0, x);
  unsigned char nodes[5] = {1, 1, 1, 1, 1};
  for (int k = 0; k < 5; k++) u[k] = 3.0 * PER_BIN * exp(0.7 * k);
  double *work = malloc(ef_ibu_reweight_work_size(b) * sizeof *work);
  reweight(b, &mc, NULL, u, nodes, work, w);
  for (int k = 0; k < 5; k++) expect_bin(w, k, 0.7);
  free(work);
  ef_binning_free(b);
}

/* Non-node bins keep the base weights and are no neighbours: the node
 * next to one takes the one-sided slope, a node alone none. Base weights
 * are kept per node bin; an event of weight 0 stays 0; an event outside
 * the binning keeps its base. */
static void test_nodes_and_base(void **state) {
  (void)state;
  ef_bin_axis ax = {.scale = EF_BIN_LINEAR, .n = 5, .lo = 0, .hi = 5};
  ef_binning *b = make_binning(1, &ax);
  double x[5 * PER_BIN + 1], w[5 * PER_BIN + 1], base[5 * PER_BIN + 1], u[5];
  ef_events mc = line_mc(5, 0.0, x);
  x[5 * PER_BIN] = 7.5; /* outside */
  mc.n++;
  for (size_t e = 0; e < mc.n; e++) base[e] = 2.0;
  base[2 * PER_BIN + 1] = 0.0; /* bin 2's second event */
  unsigned char nodes[5] = {0, 1, 1, 0, 1}; /* bin 4 alone */
  double v[5] = {5.0, 0.0, 0.4, 9.0, 2.0};  /* log(u / MC weight) */
  double m[5] = {8, 8, 6, 8, 8};            /* the base weight per bin */
  for (int k = 0; k < 5; k++) u[k] = m[k] * exp(v[k]);
  double *work = malloc(ef_ibu_reweight_work_size(b) * sizeof *work);
  reweight(b, &mc, base, u, nodes, work, w);
  for (int q = 0; q < PER_BIN; q++) {
    assert_close(w[q], 2.0, 0.0);               /* bin 0: not a node */
    assert_close(w[3 * PER_BIN + q], 2.0, 0.0); /* bin 3: not a node */
    assert_close(w[4 * PER_BIN + q], 2.0, 1e-12); /* bin 4: no neighbour */
  }
  double s1 = 0.0, s2 = 0.0, g = 0.4; /* bins 1 and 2: slope v2 - v1 one-sided */
  for (int q = 0; q < PER_BIN; q++) s1 += exp(g * (place[q] - 0.5));
  for (int q = 0; q < PER_BIN; q++)
    if (q != 1) s2 += exp(g * (place[q] - 0.5));
  for (int q = 0; q < PER_BIN; q++) {
    assert_close(w[PER_BIN + q], 8.0 * exp(g * (place[q] - 0.5)) / s1, 1e-12);
    double want = q == 1 ? 0.0 : 6.0 * exp(g * (place[q] - 0.5)) / s2;
    assert_close(w[2 * PER_BIN + q], want, 1e-12);
  }
  assert_close(w[5 * PER_BIN], 2.0, 0.0);
  free(work);
  ef_binning_free(b);
}

/* A periodic axis: bin 0's neighbours are bins 3 and 1 (central
 * difference across the wrap), and a vertex a period away lands at the
 * same place in its bin. */
static void test_periodic(void **state) {
  (void)state;
  ef_bin_axis ax = {.scale = EF_BIN_LINEAR, .n = 4, .lo = -2, .hi = 2, .periodic = 1};
  ef_binning *b = make_binning(1, &ax);
  double x[4 * PER_BIN], w[4 * PER_BIN], u[4];
  ef_events mc = line_mc(4, -2.0, x);
  x[1] += 4.0; /* bin 0's second event, one period up */
  unsigned char nodes[4] = {1, 1, 1, 1};
  double v[4] = {0.0, 1.0, 2.0, 3.0};
  for (int k = 0; k < 4; k++) u[k] = PER_BIN * exp(v[k]);
  double *work = malloc(ef_ibu_reweight_work_size(b) * sizeof *work);
  reweight(b, &mc, NULL, u, nodes, work, w);
  expect_bin(w, 0, 0.5 * (v[1] - v[3]));
  expect_bin(w, 1, 0.5 * (v[2] - v[0]));
  expect_bin(w, 3, 0.5 * (v[0] - v[2]));
  free(work);
  ef_binning_free(b);
}

/* Two axes: log(unfolded / MC) = 0.3 i0 - 0.5 i1 gives each event
 * exp(0.3 (f0 - 1/2) - 0.5 (f1 - 1/2)), normalised per bin. */
static void test_two_axes(void **state) {
  (void)state;
  ef_bin_axis ax[2] = {{.scale = EF_BIN_LINEAR, .n = 3, .lo = 0, .hi = 3},
                       {.scale = EF_BIN_LINEAR, .n = 3, .lo = 0, .hi = 3}};
  ef_binning *b = make_binning(2, ax);
  enum { N = 9 * PER_BIN * PER_BIN };
  double x[2 * N], w[N], u[9];
  size_t e = 0;
  for (int i0 = 0; i0 < 3; i0++)
    for (int i1 = 0; i1 < 3; i1++)
      for (int a = 0; a < PER_BIN; a++)
        for (int c = 0; c < PER_BIN; c++, e++) {
          x[2 * e] = i0 + place[a];
          x[2 * e + 1] = i1 + place[c];
        }
  ef_events mc = {0};
  mc.n = N;
  mc.vertex = x;
  unsigned char nodes[9];
  memset(nodes, 1, sizeof nodes);
  for (int k = 0; k < 9; k++) u[k] = PER_BIN * PER_BIN * exp(0.3 * (k / 3) - 0.5 * (k % 3));
  double *work = malloc(ef_ibu_reweight_work_size(b) * sizeof *work);
  reweight(b, &mc, NULL, u, nodes, work, w);
  double s = 0.0;
  for (int a = 0; a < PER_BIN; a++)
    for (int c = 0; c < PER_BIN; c++) s += exp(0.3 * (place[a] - 0.5) - 0.5 * (place[c] - 0.5));
  for (e = 0; e < N; e++) {
    double f0 = x[2 * e] - floor(x[2 * e]), f1 = x[2 * e + 1] - floor(x[2 * e + 1]);
    double want = PER_BIN * PER_BIN * exp(0.3 * (f0 - 0.5) - 0.5 * (f1 - 0.5)) / s;
    assert_close(w[e], want, 1e-12);
  }
  free(work);
  ef_binning_free(b);
}

/* The exponent is held to +-10: a slope of 60 per bin gives the events at
 * 1/8 and 7/8 of the bin e^-10 and e^10, not e^-22.5 and e^22.5. */
static void test_held(void **state) {
  (void)state;
  ef_bin_axis ax = {.scale = EF_BIN_LINEAR, .n = 2, .lo = 0, .hi = 2};
  ef_binning *b = make_binning(1, &ax);
  double x[2 * PER_BIN], w[2 * PER_BIN], u[2] = {PER_BIN, PER_BIN * exp(60.0)};
  ef_events mc = line_mc(2, 0.0, x);
  unsigned char nodes[2] = {1, 1};
  double *work = malloc(ef_ibu_reweight_work_size(b) * sizeof *work);
  reweight(b, &mc, NULL, u, nodes, work, w);
  const double ex[PER_BIN] = {-10.0, -7.5, 7.5, 10.0};
  double s = 0.0;
  for (int q = 0; q < PER_BIN; q++) s += exp(ex[q]);
  for (int k = 0; k < 2; k++)
    for (int q = 0; q < PER_BIN; q++)
      assert_close(w[k * PER_BIN + q] / (PER_BIN * exp(ex[q]) / s), 1.0, 1e-12);
  free(work);
  ef_binning_free(b);
}

/* A bounded (clamping) axis puts a vertex past its end in the end bin, at
 * place 1 of it. */
static void test_clamped_axis(void **state) {
  (void)state;
  ef_bin_axis ax = {.scale = EF_BIN_LINEAR, .n = 2, .lo = 0, .hi = 2, .clamp = 1};
  ef_binning *b = make_binning(1, &ax);
  double x[2 * PER_BIN + 1], w[2 * PER_BIN + 1], u[2] = {PER_BIN, (PER_BIN + 1) * exp(0.4)};
  ef_events mc = line_mc(2, 0.0, x);
  x[2 * PER_BIN] = 2.5;
  mc.n++;
  unsigned char nodes[2] = {1, 1};
  double *work = malloc(ef_ibu_reweight_work_size(b) * sizeof *work);
  reweight(b, &mc, NULL, u, nodes, work, w);
  double s = exp(0.4 * 0.5);
  for (int q = 0; q < PER_BIN; q++) s += exp(0.4 * (place[q] - 0.5));
  for (int q = 0; q < PER_BIN; q++)
    assert_close(w[PER_BIN + q], (PER_BIN + 1) * exp(0.4 * (place[q] - 0.5)) / s, 1e-12);
  assert_close(w[2 * PER_BIN], (PER_BIN + 1) * exp(0.4 * 0.5) / s, 1e-12);
  free(work);
  ef_binning_free(b);
}

/* An ACOS axis (cos theta* of pi0, bins equal in theta counted from
 * theta = 0): the place in a bin is measured in theta. */
static void test_acos_axis(void **state) {
  (void)state;
  ef_bin_axis ax = {.scale = EF_BIN_ACOS, .n = 3, .lo = -1, .hi = 1};
  ef_binning *b = make_binning(1, &ax);
  double x[3 * PER_BIN], w[3 * PER_BIN], u[3];
  for (int k = 0; k < 3; k++)
    for (int q = 0; q < PER_BIN; q++) x[k * PER_BIN + q] = cos((k + place[q]) * M_PI / 3.0);
  ef_events mc = {0};
  mc.n = 3 * PER_BIN;
  mc.vertex = x;
  unsigned char nodes[3] = {1, 1, 1};
  for (int k = 0; k < 3; k++) u[k] = PER_BIN * exp(0.6 * k);
  double *work = malloc(ef_ibu_reweight_work_size(b) * sizeof *work);
  reweight(b, &mc, NULL, u, nodes, work, w);
  for (int k = 0; k < 3; k++) expect_bin(w, k, 0.6);
  free(work);
  ef_binning_free(b);
}

int main(void) {
  if (ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_linear_slope),   cmocka_unit_test(test_nodes_and_base),
      cmocka_unit_test(test_periodic),       cmocka_unit_test(test_two_axes),
      cmocka_unit_test(test_held),           cmocka_unit_test(test_clamped_axis),
      cmocka_unit_test(test_acos_axis),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ef_ctx_destroy(ctx);
  return rc;
}
