/* Iterative Bayesian unfolding: a hand-computed two-bin case, closure of
 * M1 pseudo-data unfolded with a PS response and prior, the contract on
 * scratch space and empty data, 2,160 vertex bins with a sparse response,
 * and MC outside the vertex binning. */
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
#include <time.h>

#include "ensfold/config.h"
#include "ensfold/binning.h"
#include "ensfold/detector.h"
#include "ensfold/generator.h"
#include "ensfold/ibu.h"
#include "ensfold/model.h"
#include "ensfold/stats.h"

#include "ef_alloc_count.h" /* ef_ibu_unfold allocates nothing */

static ef_space pi0; /* the pi0 event space: ef_space_pi0 in main */

/* Shared by the generated-sample tests (made once: the detector alone
 * takes seconds). */
typedef struct {
  ef_ctx *ctx;
  ef_config cfg;
  ef_detector *det;
  ef_events mc;   /* PS MC */
  ef_events data; /* M1 pseudo-data, with vertex truth */
  ef_model m1, ps;
} fixture;

static fixture fx;

/* The efficiency mask ef_ibu_unfold takes, for eps_min (no allocation:
 * one static buffer, enough for any test's vertex binning). */
static const unsigned char *eff_mask(const ef_response *r, double eps_min) {
  static unsigned char m[20000];
  assert_true(ef_response_n_vertex(r) <= (int)sizeof m);
  ef_ibu_mask_efficiency(r, eps_min, m);
  return m;
}

enum { N_MC = 300000, N_DATA = 100000 };

static int setup(void **state) {
  (void)state;
  if (ef_ctx_create(&fx.ctx, MPI_COMM_NULL) != EF_OK) return -1;
  if (ef_config_defaults(fx.ctx, &fx.cfg) != EF_OK) return -1;
  if (ef_detector_create(fx.ctx, &fx.det, &fx.cfg.physics, &fx.cfg.detector) != EF_OK) return -1;
  ef_model_init(&fx.m1, EF_MODEL_M1, &fx.cfg.physics);
  ef_model_init(&fx.ps, EF_MODEL_PS, &fx.cfg.physics);
  ef_rng r;
  ef_rng_init(&r, 20240611, EF_RNG_GEN_MC, 0);
  if (ef_generate(fx.ctx, fx.det, &fx.ps, &r, N_MC, EF_KIND_MC, 0, NULL, NULL, &fx.mc) != EF_OK)
    return -1;
  ef_rng_init(&r, 20240611, EF_RNG_GEN_DATA, 0);
  if (ef_generate(fx.ctx, fx.det, &fx.m1, &r, N_DATA, EF_KIND_DATA, EF_EVENTS_VERTEX, NULL, NULL,
                  &fx.data) != EF_OK)
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  ef_events_free(&fx.mc);
  ef_events_free(&fx.data);
  ef_detector_destroy(fx.det);
  ef_config_free(&fx.cfg);
  ef_ctx_destroy(fx.ctx);
  return 0;
}

/* ---- (a) by hand -------------------------------------------------------
 * Vertex and detector binnings: 1 cos bin x 2 phi bins (phi < 0: bin 0,
 * phi >= 0: bin 1), so detector bin j = (topology - 1) * 2 + reco bin.
 * MC: vertex bin 0: 6 x T2 reco 0 (j = 2), 2 x T2 reco 1 (j = 3), 2 x T0;
 *     vertex bin 1: 1 x T2 reco 0 (j = 2), 3 x T2 reco 1 (j = 3),
 *                   2 x T3 reco 1 (j = 5), 4 x T0.
 * R: column 0 = {j2: 0.6, j3: 0.2}, eps0 = 0.8; column 1 = {j2: 0.1,
 * j3: 0.3, j5: 0.2}, eps1 = 0.6. */
static ef_binning *hand_bins; /* cos-phi, 1 x 2 (made in main) */

static void hand_events(ef_events *ev) {
  assert_int_equal(ef_events_alloc(fx.ctx, ev, &pi0, 20, EF_KIND_MC, EF_EVENTS_VERTEX), EF_OK);
  /* {vertex phi, topology, reco phi} */
  static const double spec[20][3] = {
      {-1, 2, -1}, {-1, 2, -1}, {-1, 2, -1}, {-1, 2, -1}, {-1, 2, -1}, {-1, 2, -1}, {-1, 2, 1},
      {-1, 2, 1},  {-1, 0, 0},  {-1, 0, 0},  {1, 2, -1},  {1, 2, 1},   {1, 2, 1},   {1, 2, 1},
      {1, 3, 1},   {1, 3, 1},   {1, 0, 0},   {1, 0, 0},   {1, 0, 0},   {1, 0, 0}};
  for (int e = 0; e < 20; e++) {
    ev->vertex[2 * e] = 0.2;
    ev->vertex[2 * e + 1] = spec[e][0];
    ev->topology[e] = (int8_t)spec[e][1];
    ev->reco[2 * e] = spec[e][1] ? 0.1 : NAN;
    ev->reco[2 * e + 1] = spec[e][1] ? spec[e][2] : NAN;
  }
}

/* Independent dense IBU following the header's formulas, for iterations
 * beyond the hand-computed first one. R (nd, nv) row-major. */
static void dense_ibu(const double *R, int nd, int nv, const double *d, const double *prior,
                      int iters, double eps_min, double *out) {
  double eps[8] = {0}, p[8], nu[8], fold = 0, seen = 0, pm = 0;
  for (int i = 0; i < nv; i++)
    for (int j = 0; j < nd; j++) eps[i] += R[j * nv + i];
  for (int j = 0; j < nd; j++) {
    nu[j] = 0;
    for (int i = 0; i < nv; i++) nu[j] += R[j * nv + i] * prior[i];
    if (nu[j] > 0) {
      fold += nu[j];
      seen += d[j];
    }
  }
  for (int i = 0; i < nv; i++) {
    p[i] = prior[i] * seen / fold;
    out[i] = p[i];
    if (eps[i] >= eps_min) pm += prior[i];
  }
  for (int it = 0; it < iters; it++) {
    double sm = 0;
    for (int j = 0; j < nd; j++) {
      nu[j] = 0;
      for (int i = 0; i < nv; i++) nu[j] += R[j * nv + i] * p[i];
    }
    for (int i = 0; i < nv; i++) {
      if (eps[i] < eps_min) continue;
      double s = 0;
      for (int j = 0; j < nd; j++)
        if (nu[j] > 0) s += R[j * nv + i] * d[j] / nu[j];
      out[i] = p[i] * s / eps[i];
      sm += out[i];
    }
    for (int i = 0; i < nv; i++) {
      if (eps[i] < eps_min) out[i] = prior[i] * sm / pm;
      p[i] = out[i];
    }
  }
}

static void test_hand(void **state) {
  (void)state;
  ef_events ev;
  hand_events(&ev);
  ef_response *r;
  assert_int_equal(ef_response_build(fx.ctx, &r, hand_bins, hand_bins, &ev, NULL), EF_OK);
  assert_int_equal(ef_response_n_vertex(r), 2);
  assert_int_equal(ef_response_n_detector(r), 6);
  assert_int_equal((int)ef_response_nnz(r), 5);
  const double *eps = ef_response_efficiency(r);
  assert_close(eps[0], 0.8, 1e-15);
  assert_close(eps[1], 0.6, 1e-15);
  double R[12], R_ref[12] = {0, 0, 0, 0, 0.6, 0.1, 0.2, 0.3, 0, 0, 0, 0.2};
  ef_response_dense(r, R);
  for (int k = 0; k < 12; k++) assert_close(R[k], R_ref[k], 1e-15);

  double d[6] = {0, 0, 50, 40, 0, 10}, out[2], nu[6];
  size_t ws = ef_ibu_work_size(r);
  double *work = malloc(ws * sizeof *work);
  assert_non_null(work);
  /* Prior (2, 2), folded: (0.7, 0.5, 0.2) x 2 in j = 2, 3, 5, total 2.8,
   * data 100: p = (100/1.4) (1, 1). One iteration:
   *   n0 = (1/0.8) (0.6 x 50 / 0.7 + 0.2 x 40 / 0.5) = 1.25 (300/7 + 16) = 515/7
   *   n1 = (1/0.6) (0.1 x 50 / 0.7 + 0.3 x 40 / 0.5 + 0.2 x 10 / 0.2)
   *      = (50/7 + 34) / 0.6 = 480/7
   * and eps . n = (412 + 288)/7 = 100 (all bins measured: the data). */
  const double flat[2] = {2, 2};
  assert_int_equal(ef_ibu_unfold(fx.ctx, r, d, flat, 0, eff_mask(r, 0.01), NULL, work, out), EF_OK);
  assert_close(out[0], 100 / 1.4, 1e-12);
  assert_close(out[1], 100 / 1.4, 1e-12);
  assert_int_equal(ef_ibu_unfold(fx.ctx, r, d, flat, 1, eff_mask(r, 0.01), NULL, work, out), EF_OK);
  printf("# hand: one iteration (%.15g, %.15g), expected (515/7, 480/7)\n", out[0], out[1]);
  assert_close(out[0], 515.0 / 7, 1e-12);
  assert_close(out[1], 480.0 / 7, 1e-12);
  ef_response_fold(r, out, nu);
  assert_close(nu[2] + nu[3] + nu[5], 100, 1e-12);
  /* The data attributed by one Bayes step with prior (2, 2): eps_i x the
   * first iteration's n_i, (412/7, 288/7), summing to the 100 events. */
  ef_ibu_attribute(r, d, flat, work, out);
  assert_close(out[0], 412.0 / 7, 1e-12);
  assert_close(out[1], 288.0 / 7, 1e-12);
  /* Prior (1, 3), eps_min 0.7: bin 1 (eps 0.6) keeps the prior. Scaled
   * p = s (1, 3), s = 100/2.6; folded (0.9, 1.1, 0.6) s. One iteration:
   *   n0 = (1/0.8) (0.6 x 50 / 0.9 + 0.2 x 40 / 1.1) = 1.25 (100/3 + 80/11)
   *      = 1675/33,  n1 = 3 x n0 / 1 = 5025/33. */
  const double slope[2] = {1, 3};
  assert_int_equal(ef_ibu_unfold(fx.ctx, r, d, slope, 1, eff_mask(r, 0.7), NULL, work, out), EF_OK);
  printf("# hand: kept bin (%.15g, %.15g), expected (1675/33, 5025/33)\n", out[0], out[1]);
  assert_close(out[0], 1675.0 / 33, 1e-12);
  assert_close(out[1], 5025.0 / 33, 1e-12);
  /* more iterations against the dense reference */
  for (int it = 2; it <= 6; it += 4) {
    double ref[2];
    for (int k = 0; k < 2; k++) {
      double emin = k ? 0.7 : 0.01;
      assert_int_equal(ef_ibu_unfold(fx.ctx, r, d, k ? slope : flat, it, eff_mask(r, emin), NULL, work, out), EF_OK);
      dense_ibu(R_ref, 6, 2, d, k ? slope : flat, it, emin, ref);
      assert_close(out[0], ref[0], 1e-12 * ref[0]);
      assert_close(out[1], ref[1], 1e-12 * ref[1]);
    }
  }
  ef_response_destroy(r);

  /* Weighted MC: vertex bin 0's T0 events count twice: its denominator is
   * 12, R_20 = 6/12, R_30 = 2/12, eps0 = 8/12; bin 1 unchanged. */
  double wts[20];
  for (int e = 0; e < 20; e++) wts[e] = (e == 8 || e == 9) ? 2.0 : 1.0;
  assert_int_equal(ef_response_build(fx.ctx, &r, hand_bins, hand_bins, &ev, wts), EF_OK);
  ef_response_dense(r, R);
  assert_close(R[2 * 2 + 0], 0.5, 1e-15);
  assert_close(R[3 * 2 + 0], 2.0 / 12, 1e-15);
  assert_close(ef_response_efficiency(r)[0], 8.0 / 12, 1e-15);
  assert_close(ef_response_efficiency(r)[1], 0.6, 1e-15);
  ef_response_destroy(r);
  wts[3] = -1;
  assert_int_equal(ef_response_build(fx.ctx, &r, hand_bins, hand_bins, &ev, wts), EF_ERR_INPUT);
  assert_null(r);
  free(work);
  ef_events_free(&ev);
}

/* ---- (c) scratch, allocation, empty data ------------------------------- */
static void test_contract(void **state) {
  (void)state;
  ef_events ev;
  hand_events(&ev);
  ef_response *r;
  counting = 1;
  n_alloc = 0;
  assert_int_equal(ef_response_build(fx.ctx, &r, hand_bins, hand_bins, &ev, NULL), EF_OK);
  counting = 0;
  /* the counter is live (the build does allocate) where it exists */
  if (HAVE_ALLOC_COUNT) assert_true(n_alloc > 0);
  size_t ws = ef_ibu_work_size(r);
  /* the work is nu (n_detector) and the current estimate (n_vertex) */
  assert_true(ws >= 6 + 2);
  enum { GUARD = 64 };
  double *buf = malloc((ws + 2 * GUARD) * sizeof *buf), out[2 + 2];
  assert_non_null(buf);
  for (size_t k = 0; k < ws + 2 * GUARD; k++) buf[k] = -777.0;
  out[2] = out[3] = -777.0;
  double d[6] = {0, 0, 50, 40, 0, 10};
  const double prior[2] = {1, 1};
  counting = 1;
  n_alloc = 0;
  int rc = ef_ibu_unfold(fx.ctx, r, d, prior, 10, eff_mask(r, 0.01), NULL, buf + GUARD, out);
  counting = 0;
  assert_int_equal(rc, EF_OK);
  printf("# allocations inside ef_ibu_unfold: %ld (counter %s)\n", n_alloc,
         HAVE_ALLOC_COUNT ? "active" : "unavailable");
  assert_int_equal(n_alloc, 0);
  for (int k = 0; k < GUARD; k++) {
    assert_true(buf[k] == -777.0);
    assert_true(buf[GUARD + ws + (size_t)k] == -777.0);
  }
  assert_true(out[2] == -777.0 && out[3] == -777.0);

  /* empty data, and data only where the response does not reach (T1, j = 0) */
  double empty[6] = {0};
  assert_int_equal(ef_ibu_unfold(fx.ctx, r, empty, prior, 4, eff_mask(r, 0.01), NULL, buf + GUARD, out),
                   EF_ERR_NUMERIC);
  printf("# empty data: %s\n", ef_error_message(fx.ctx));
  double unreached[6] = {5, 0, 0, 0, 0, 0};
  assert_int_equal(ef_ibu_unfold(fx.ctx, r, unreached, prior, 4, eff_mask(r, 0.01), NULL, buf + GUARD, out),
                   EF_ERR_NUMERIC);
  /* no bin above eps_min; a prior that is zero on every measured bin */
  assert_int_equal(ef_ibu_unfold(fx.ctx, r, d, prior, 4, eff_mask(r, 0.9), NULL, buf + GUARD, out), EF_ERR_NUMERIC);
  const double zero_meas[2] = {0, 1};
  assert_int_equal(ef_ibu_unfold(fx.ctx, r, d, zero_meas, 4, eff_mask(r, 0.7), NULL, buf + GUARD, out),
                   EF_ERR_NUMERIC);
  /* bad input */
  const double neg[2] = {1, -1};
  assert_int_equal(ef_ibu_unfold(fx.ctx, r, d, neg, 4, eff_mask(r, 0.01), NULL, buf + GUARD, out), EF_ERR_INPUT);
  assert_int_equal(ef_ibu_unfold(fx.ctx, r, d, prior, -1, eff_mask(r, 0.01), NULL, buf + GUARD, out), EF_ERR_INPUT);
  /* an empty data sample histograms to zeros and is refused the same way */
  ef_events none = {0};
  none.n = 0;
  ef_ibu_data_histogram(hand_bins, &none, NULL, empty);
  for (int j = 0; j < 6; j++) assert_close(empty[j], 0, 0);
  assert_int_equal(ef_ibu_unfold(fx.ctx, r, empty, prior, 4, eff_mask(r, 0.01), NULL, buf + GUARD, out),
                   EF_ERR_NUMERIC);
  /* the histogram skips T0 and uses the weights */
  double hist[6], w[20];
  for (int e = 0; e < 20; e++) w[e] = 0.5;
  ef_ibu_data_histogram(hand_bins, &ev, w, hist);
  const double hist_ref[6] = {0, 0, 3.5, 2.5, 0, 1};
  for (int j = 0; j < 6; j++) assert_close(hist[j], hist_ref[j], 0);
  free(buf);
  ef_response_destroy(r);
  ef_events_free(&ev);
}

/* ---- (b) closure on generated events ----------------------------------- */
static double model_density(const void *arg, double c, double f) {
  return ef_model_density((const ef_model *)arg, c, f);
}

typedef struct {
  double chi2;                      /* diagonal chi2 of the nominal result against the truth */
  int ndf;                          /* bins with eps >= eps_chi2 */
  double coverage;                  /* fraction of those with |out - truth| <= sigma */
  double tot, tot_truth, tot_sigma; /* sums over those bins */
  double max_kept_dev; /* largest relative deviation of a kept bin from prior x ratio */
  int n_kept;
  double max_adj_corr; /* largest |correlation| of neighbouring bins (theta) */
} closure_result;

/* Unfold the data histogram (weights dw, may be NULL) with a response
 * built from the PS MC (weights mw, may be NULL) and a PS prior. */
static void unfold_once(const ef_binning *vb, const ef_binning *db, const double *mw,
                        const double *dw, const double *prior, double eps_min, double *out,
                        ef_response **keep) {
  ef_response *r;
  assert_int_equal(ef_response_build(fx.ctx, &r, vb, db, &fx.mc, mw), EF_OK);
  int nd = ef_response_n_detector(r);
  double *d = malloc((size_t)nd * sizeof *d), *work = malloc(ef_ibu_work_size(r) * sizeof *work);
  assert_true(d && work);
  ef_ibu_data_histogram(db, &fx.data, dw, d);
  assert_int_equal(ef_ibu_unfold(fx.ctx, r, d, prior, 4, eff_mask(r, eps_min), NULL, work, out), EF_OK);
  free(d);
  free(work);
  if (keep)
    *keep = r;
  else
    ef_response_destroy(r);
}

/* Nominal unfolding (replica 0) and n_boot bootstrap replicas (Poisson(1)
 * weights on data and MC events, streams keyed by the replica) give the
 * per-bin sigma; the nominal result is compared with N x the bin integral
 * of M1 over the bins with eps >= eps_chi2. With n_boot = 0, sigma is the
 * naive sqrt(mu / eps) (data only, no migration). */
static closure_result closure(const ef_binning *vb, const ef_binning *db, double eps_chi2,
                              int n_boot) {
  closure_result res = {0};
  const double eps_min = 0.01;
  int nv = ef_binning_count(vb);
  size_t R = (size_t)n_boot + 1;
  double *x = malloc(R * (size_t)nv * sizeof *x); /* (R, nv): replica 0 nominal */
  double *prior = malloc((size_t)nv * sizeof *prior), *truth = malloc((size_t)nv * sizeof *truth);
  double *sigma = malloc((size_t)nv * sizeof *sigma), *corr = NULL;
  double *mw = malloc(fx.mc.n * sizeof *mw), *dw = malloc(fx.data.n * sizeof *dw);
  unsigned char *mask = calloc((size_t)nv, 1);
  assert_true(x && prior && truth && sigma && mw && dw && mask);
  for (int i = 0; i < nv; i++) {
    prior[i] = ef_binning_integrate(vb, i, model_density, &fx.ps);
    truth[i] = N_DATA * ef_binning_integrate(vb, i, model_density, &fx.m1);
  }
  ef_response *r;
  clock_t t0 = clock();
  unfold_once(vb, db, NULL, NULL, prior, eps_min, x, &r);
  double t_nominal = (double)(clock() - t0) / CLOCKS_PER_SEC;
  const double *eps = ef_response_efficiency(r);
  const double *out = x;
  t0 = clock();
  for (int b = 1; b <= n_boot; b++) {
    ef_rng g;
    ef_rng_init(&g, 5150, EF_RNG_BOOTSTRAP, (uint32_t)b);
    for (size_t e = 0; e < fx.data.n; e++) dw[e] = ef_rng_poisson(&g, 1.0);
    ef_rng_init(&g, 5150, EF_RNG_BOOTSTRAP_MC, (uint32_t)b);
    for (size_t e = 0; e < fx.mc.n; e++) mw[e] = ef_rng_poisson(&g, 1.0);
    unfold_once(vb, db, mw, dw, prior, eps_min, x + (size_t)b * nv, NULL);
  }
  double t_boot = (double)(clock() - t0) / CLOCKS_PER_SEC;
  if (n_boot >= 2) {
    corr = malloc((size_t)nv * nv * sizeof *corr);
    assert_non_null(corr);
    /* replicas 1..n_boot, as the campaign does */
    assert_int_equal(
        ef_stats_replicas(fx.ctx, x + nv, (size_t)n_boot, (size_t)nv, NULL, NULL, sigma, corr),
        EF_OK);
  } else {
    for (int i = 0; i < nv; i++) sigma[i] = eps[i] > 0 ? sqrt(truth[i] / eps[i]) : 0;
  }

  /* kept bins: exactly prior x (sum of out over measured) / (sum of prior
   * over measured) */
  double s_out = 0, s_prior = 0;
  for (int i = 0; i < nv; i++)
    if (eps[i] >= eps_min && eps[i] > 0) {
      s_out += out[i];
      s_prior += prior[i];
    }
  for (int i = 0; i < nv; i++) {
    if (eps[i] >= eps_min && eps[i] > 0) continue;
    double want = prior[i] * (s_out / s_prior), dev = fabs(out[i] - want) / want;
    if (dev > res.max_kept_dev) res.max_kept_dev = dev;
    res.n_kept++;
  }
  for (int i = 0; i < nv; i++) {
    mask[i] = eps[i] >= eps_chi2;
    if (!mask[i]) continue;
    res.tot += out[i];
    res.tot_truth += truth[i];
    res.tot_sigma += sigma[i] * sigma[i];
    /* neighbour in theta (i + n_phi) */
    int n_phi = ef_binning_axis(vb, 1)->n;
    if (corr && i + n_phi < nv && eps[i + n_phi] >= eps_chi2) {
      double c = fabs(corr[(size_t)i * nv + i + n_phi]);
      if (c > res.max_adj_corr) res.max_adj_corr = c;
    }
  }
  res.tot_sigma = sqrt(res.tot_sigma); /* neglects correlations: see the print */
  ef_closure c;
  assert_int_equal(ef_stats_closure(fx.ctx, out, NULL, sigma, truth, mask, (size_t)nv, R, &c, NULL),
                   EF_OK);
  res.chi2 = c.chi2;
  res.ndf = c.ndf;
  res.coverage = c.coverage;
  int n_mid = 0;
  for (int i = 0; i < nv; i++) n_mid += eps[i] >= eps_min && eps[i] < eps_chi2;
  printf(
      "# response %d x %d (vertex %d x %d, detector %d x %d x 3): %zu filled pairs, %zu bytes "
      "(dense: %.0f); nominal build + unfold %.2f s, %d bootstrap replicas %.2f s\n",
      ef_response_n_detector(r), nv, ef_binning_axis(vb, 0)->n, ef_binning_axis(vb, 1)->n,
      ef_binning_axis(db, 0)->n, ef_binning_axis(db, 1)->n,
      ef_response_nnz(r), ef_response_bytes(r), 8.0 * ef_response_n_detector(r) * nv, t_nominal,
      n_boot, t_boot);
  printf(
      "# bins: %d with eps >= %.2f (compared), %d with %.2f <= eps < %.2f, %d kept (eps < %.2f)\n",
      res.ndf, eps_chi2, n_mid, eps_min, eps_chi2, res.n_kept, eps_min);
  printf(
      "# closure (%s sigma): chi2/ndf = %.1f / %d = %.3f, coverage %.3f; total %.0f vs truth %.0f "
      "(diff %.0f, sigma sum in quadrature %.0f); max |corr| of theta neighbours %.2f\n",
      n_boot ? "bootstrap" : "naive sqrt(mu/eps)", res.chi2, res.ndf, res.chi2 / res.ndf,
      res.coverage, res.tot, res.tot_truth, res.tot - res.tot_truth, res.tot_sigma,
      res.max_adj_corr);
  printf("# kept bins: largest relative deviation from prior x ratio %.2e (ratio %.6g)\n",
         res.max_kept_dev, s_out / s_prior);
  ef_response_destroy(r);
  free(x);
  free(prior);
  free(truth);
  free(sigma);
  free(corr);
  free(mw);
  free(dw);
  free(mask);
  return res;
}

/* With B bootstrap replicas the estimated variance s^2 ~ sigma^2
 * chi2_{B-1} / (B - 1), so each term (out - truth)^2 / s^2 of an unbiased
 * result is F(1, B - 1): mean (B-1)/(B-3), variance
 * 2 (B-1)^2 (B-2) / ((B-3)^2 (B-5)). For B = 50 that is 1.043 and 2.32;
 * over ~480 nearly independent bins (near-diagonal response, checked by the
 * printed neighbour correlation) chi2/ndf has sd ~0.07, and the bound
 * below is the mean + 4 sd. Coverage of a +-1 s band: P(|t_49| <= 1) =
 * 0.678, sd sqrt(0.68 x 0.32 / 480) = 0.021: bound +-4 sd. A bias of 1/3
 * sigma in every bin would add 0.11 to chi2/ndf; the naive sqrt(mu/eps)
 * errors (no migration, no MC statistics) give chi2/ndf 1.33 here, which
 * is why the bootstrap is used. */
static void test_closure(void **state) {
  (void)state;
  ef_binning *b = ef_test_binning(EF_BIN_THETA_PHI, 18, 36);
  assert_non_null(b);
  enum { B = 50 };
  closure_result res = closure(b, b, 0.2, B);
  ef_binning_free(b);
  double mean = (B - 1.0) / (B - 3.0);
  double sd = sqrt(2.0 * (B - 1) * (B - 1) * (B - 2) / ((B - 3.0) * (B - 3) * (B - 5)) / res.ndf);
  printf("# expected chi2/ndf %.3f +- %.3f; bound %.3f; coverage bound [%.3f, %.3f]\n", mean, sd,
         mean + 4 * sd, 0.678 - 4 * sqrt(0.678 * 0.322 / res.ndf),
         0.678 + 4 * sqrt(0.678 * 0.322 / res.ndf));
  assert_true(res.ndf > 400);
  assert_true(res.n_kept > 0);
  assert_true(res.max_kept_dev < 1e-12);
  assert_true(res.chi2 / res.ndf < mean + 4 * sd);
  assert_true(fabs(res.coverage - 0.678) < 4 * sqrt(0.678 * 0.322 / res.ndf));
  assert_true(fabs(res.tot - res.tot_truth) < 3 * res.tot_sigma);
}

/* ---- (d) 2,160 vertex bins ---------------------------------------------- */
static void test_many_bins(void **state) {
  (void)state;
  ef_binning *vb = ef_test_binning(EF_BIN_THETA_PHI, 60, 36);
  ef_binning *db = ef_test_binning(EF_BIN_THETA_PHI, 18, 36);
  assert_non_null(vb);
  assert_non_null(db);
  ef_response *r;
  assert_int_equal(ef_response_build(fx.ctx, &r, vb, db, &fx.mc, NULL), EF_OK);
  size_t nnz = ef_response_nnz(r), detected = 0;
  for (size_t e = 0; e < fx.mc.n; e++) detected += fx.mc.topology[e] != 0;
  double dense = 8.0 * ef_response_n_detector(r) * ef_response_n_vertex(r);
  printf(
      "# 2160 vertex bins: %zu filled pairs from %zu detected MC events, %zu bytes = %.2f%% of "
      "the dense %.0f\n",
      nnz, detected, ef_response_bytes(r), 100.0 * ef_response_bytes(r) / dense, dense);
  /* memory follows the filled pairs: at most one pair per detected event,
   * 12 bytes per pair plus per-vertex-bin overhead (the column pointers
   * and efficiencies of the bin and its twin outside the binning, the
   * twin's MC weight) */
  assert_true(nnz <= detected);
  assert_true(ef_response_bytes(r) <= 12 * nnz + 40 * (size_t)ef_response_n_vertex(r) + 4096);
  ef_response_destroy(r);
  /* Three 3-degree vertex bins share each 10-degree detector bin, so the
   * split inside a detector bin follows the prior and neighbours are
   * strongly anti-correlated: no per-bin chi2 here, only the total over the
   * compared bins, where migrations cancel (naive sigma). */
  closure_result res = closure(vb, db, 0.2, 0);
  ef_binning_free(vb);
  ef_binning_free(db);
  assert_true(res.ndf > 1000);
  assert_true(res.max_kept_dev < 1e-12);
  assert_true(fabs(res.tot - res.tot_truth) < 3 * res.tot_sigma);
}

/* ---- (d2) the MC binned once --------------------------------------------
 * ef_response_build_binned on the events binned by ef_response_bin gives
 * the response ef_response_build gives, bit for bit, for weights with many
 * zeros (bootstrap-like) and fractions: the same triplets, efficiencies,
 * bytes and (through the twins) the same IBU answer. The vertex binning
 * covers cos theta* in [-0.5, 0.5] only, so that the twins hold events. */
static void same_response(const ef_response *a, const ef_response *b, const double *data,
                          const double *prior) {
  size_t nnz = ef_response_nnz(a);
  int nv = ef_response_n_vertex(a);
  assert_int_equal(nnz, ef_response_nnz(b));
  assert_int_equal(ef_response_bytes(a), ef_response_bytes(b));
  int32_t *d = malloc(4 * nnz * sizeof *d), *v = d + nnz, *d2 = v + nnz, *v2 = d2 + nnz;
  double *x = malloc((2 * nnz + 2 * ef_ibu_work_size(a) + 2 * (size_t)nv) * sizeof *x);
  double *x2 = x + nnz, *work = x2 + nnz, *out = work + 2 * ef_ibu_work_size(a), *out2 = out + nv;
  ef_response_triplets(a, d, v, x);
  ef_response_triplets(b, d2, v2, x2);
  assert_memory_equal(d, d2, 2 * nnz * sizeof *d);
  assert_memory_equal(x, x2, nnz * sizeof *x);
  assert_memory_equal(ef_response_efficiency(a), ef_response_efficiency(b), nv * sizeof(double));
  unsigned char *twins = malloc((size_t)nv);
  memset(twins, 1, (size_t)nv);
  assert_int_equal(ef_ibu_unfold(fx.ctx, a, data, prior, 3, eff_mask(a, 0.0), twins, work, out),
                   EF_OK);
  assert_int_equal(ef_ibu_unfold(fx.ctx, b, data, prior, 3, eff_mask(b, 0.0), twins, work, out2),
                   EF_OK);
  assert_memory_equal(out, out2, nv * sizeof *out);
  free(twins);
  free(d);
  free(x);
}

/* r against the response computed here from the definition (dense, the
 * bins' columns): R_ji = weight of the events in bin i seen in j / weight
 * of the events in bin i; a pair is stored iff its weight is > 0. */
static void dense_check(const ef_response *r, const ef_binning *vb, const ef_binning *db,
                        const double *w) {
  int nv = ef_response_n_vertex(r), nd = ef_response_n_detector(r);
  double *num = calloc((size_t)nv * nd + nv, sizeof *num), *den = num + (size_t)nv * nd;
  double *got = malloc((size_t)nv * nd * sizeof *got);
  for (size_t e = 0; e < fx.mc.n; e++) {
    int i = ef_binning_index(vb, fx.mc.vertex + 2 * e);
    if (i < 0) continue;
    double x = w ? w[e] : 1.0;
    den[i] += x;
    int j = ef_ibu_detector_bin(db, &fx.mc.space, fx.mc.topology[e], fx.mc.reco + 2 * e);
    if (j >= 0) num[(size_t)j * nv + i] += x;
  }
  ef_response_dense(r, got);
  size_t pairs = 0;
  for (size_t q = 0; q < (size_t)nv * nd; q++) {
    double want = num[q] > 0.0 ? num[q] / den[q % nv] : 0.0;
    pairs += num[q] > 0.0;
    assert_close(got[q], want, 1e-12);
  }
  assert_int_equal(pairs, ef_response_nnz(r));
  free(num);
  free(got);
}

static void test_binned_build(void **state) {
  (void)state;
  ef_bin_axis ax[2] = {{.scale = EF_BIN_LINEAR, .n = 6, .lo = -0.5, .hi = 0.5},
                       {.scale = EF_BIN_LINEAR, .n = 12, .lo = -M_PI, .hi = M_PI, .periodic = 1}};
  ef_binning *vb = NULL, *db = ef_test_binning(EF_BIN_THETA_PHI, 9, 12);
  assert_int_equal(ef_binning_make(fx.ctx, &vb, 2, ax, "test"), EF_OK);
  double *w = malloc(fx.mc.n * sizeof *w);
  ef_rng g;
  ef_rng_init(&g, 77, EF_RNG_BOOTSTRAP, 1);
  for (size_t e = 0; e < fx.mc.n; e++) {
    double u = ef_rng_uniform(&g);
    w[e] = u < 0.4 ? 0.0 : (u < 0.7 ? 1.0 : 3.0 * u);
  }
  ef_response_events *ev = NULL;
  assert_int_equal(ef_response_bin(fx.ctx, &ev, vb, db, &fx.mc), EF_OK);
  int nv = ef_binning_count(vb);
  for (int pass = 0; pass < 2; pass++) {
    const double *wp = pass ? w : NULL;
    ef_response *a = NULL, *b = NULL;
    assert_int_equal(ef_response_build(fx.ctx, &a, vb, db, &fx.mc, wp), EF_OK);
    assert_int_equal(ef_response_build_binned(fx.ctx, &b, ev, wp), EF_OK);
    double *data = calloc((size_t)ef_response_n_detector(a), sizeof *data);
    double *prior = malloc(nv * sizeof *prior);
    ef_ibu_data_histogram(db, &fx.data, NULL, data);
    for (int i = 0; i < nv; i++) prior[i] = 1.0 + 0.1 * (i % 7);
    same_response(a, b, data, prior);
    dense_check(b, vb, db, wp);
    free(data);
    free(prior);
    ef_response_destroy(a);
    ef_response_destroy(b);
  }
  /* the columns: the vertex bin inside, a twin (>= n_vertex) outside */
  const int32_t *col = ef_response_events_columns(ev);
  size_t outside = 0;
  for (size_t e = 0; e < fx.mc.n; e++) {
    int k = ef_binning_index(vb, fx.mc.vertex + 2 * e);
    assert_true(k >= 0 ? col[e] == k : col[e] >= nv);
    outside += k < 0;
  }
  assert_true(outside > fx.mc.n / 4);
  w[3] = -1.0; /* a negative weight: refused by the build */
  ef_response *bad = NULL;
  assert_int_equal(ef_response_build_binned(fx.ctx, &bad, ev, w), EF_ERR_INPUT);
  assert_null(bad);
  ef_response_events_free(ev);
  free(w);
  ef_binning_free(vb);
  ef_binning_free(db);
}

/* ---- (e) MC outside the vertex binning --------------------------------
 * D = 1 (x unbounded), categories seen and lost (blind). Vertex binning 2
 * bins on [0, 2], detector binning 3 bins on [-1, 2]: j0 [-1, 0), j1
 * [0, 1), j2 [1, 2]. MC: 4 events at v = 0.5 reconstructed in j1 and 1
 * lost; 4 at v = 1.5 in j2; 4 outside at v = -0.5 (the twin of bin 0),
 * 2 in j0 and 2 in j1. R: bin 0 {j1: 0.8}, bin 1 {j2: 1}, the twin {j0:
 * 0.5, j1: 0.5}. The data are the MC's reconstructions (2, 6, 4) and the
 * prior its truth in the binning (5, 4): the twin's prior is 4 x 9 / 9, the
 * fold (2, 6, 4) equals the data and IBU stays at (5, 4). Without the twin
 * the 2 outside events in j1 are unfolded into bin 0: (7.5, 4) after one
 * iteration. */
static void test_outside(void **state) {
  (void)state;
  ef_space sp = {.dim = 1, .n_cat = 2};
  snprintf(sp.axis[0].name, sizeof sp.axis[0].name, "x");
  sp.axis[0].kind = EF_AXIS_UNBOUNDED;
  sp.axis[0].lo = -INFINITY;
  sp.axis[0].hi = INFINITY;
  snprintf(sp.cat[0].name, sizeof sp.cat[0].name, "seen");
  snprintf(sp.cat[1].name, sizeof sp.cat[1].name, "lost");
  sp.cat[1].blind = 1;
  const ef_bin_axis va = {.scale = EF_BIN_LINEAR, .n = 2, .lo = 0, .hi = 2};
  const ef_bin_axis da = {.scale = EF_BIN_LINEAR, .n = 3, .lo = -1, .hi = 2};
  ef_binning *vb = NULL, *db = NULL;
  assert_int_equal(ef_binning_make(fx.ctx, &vb, 1, &va, "vertex"), EF_OK);
  assert_int_equal(ef_binning_make(fx.ctx, &db, 1, &da, "detector"), EF_OK);
  ef_events ev;
  assert_int_equal(ef_events_alloc(fx.ctx, &ev, &sp, 13, EF_KIND_MC, EF_EVENTS_VERTEX), EF_OK);
  static const double spec[13][3] = {/* {vertex, category, reco} */
                                     {0.5, 0, 0.5},  {0.5, 0, 0.5},  {0.5, 0, 0.5},  {0.5, 0, 0.5},
                                     {0.5, 1, NAN},  {1.5, 0, 1.5},  {1.5, 0, 1.5},  {1.5, 0, 1.5},
                                     {1.5, 0, 1.5},  {-0.5, 0, -0.5}, {-0.5, 0, -0.5}, {-0.5, 0, 0.5},
                                     {-0.5, 0, 0.5}};
  for (int e = 0; e < 13; e++) {
    ev.vertex[e] = spec[e][0];
    ev.topology[e] = (int8_t)spec[e][1];
    ev.reco[e] = spec[e][2];
  }
  ef_response *r;
  assert_int_equal(ef_response_build(fx.ctx, &r, vb, db, &ev, NULL), EF_OK);
  assert_int_equal((int)ef_response_nnz(r), 2); /* the twin's entries are not the bins' */
  assert_close(ef_response_efficiency(r)[0], 0.8, 1e-15);
  double d[3], out[2], work[3 + 4];
  assert_true(ef_ibu_work_size(r) <= 3 + 4);
  ef_ibu_data_histogram(db, &ev, NULL, d);
  assert_close(d[0], 2, 0);
  assert_close(d[1], 6, 0);
  const double prior[2] = {5, 4};
  /* the twin of bin 0 is unfolded when one Bayes step attributes it >=
   * min_expected events (here 4) and its efficiency (1) is >= eps_min */
  unsigned char twins[2] = {7, 7}, none[2] = {0, 0};
  ef_ibu_choose_twins(r, d, prior, 0.01, 4.0, work, twins);
  assert_int_equal(twins[0], 1);
  assert_int_equal(twins[1], 0); /* bin 1 has no MC outside */
  ef_ibu_choose_twins(r, d, prior, 0.01, 4.5, work, none);
  assert_int_equal(none[0], 0);
  for (int it = 0; it <= 5; it += 5) {
    assert_int_equal(ef_ibu_unfold(fx.ctx, r, d, prior, it, eff_mask(r, 0.01), twins, work, out),
                     EF_OK);
    printf("# outside: %d iterations (%.15g, %.15g), expected (5, 4)\n", it, out[0], out[1]);
    assert_close(out[0], 5, 1e-12);
    assert_close(out[1], 4, 1e-12);
  }
  /* without the twin (NULL): scaled to the 10 events of j1, j2 (x 1.25),
   * then bin 0 takes j1's 2 events from outside, (7.5, 4) */
  assert_int_equal(ef_ibu_unfold(fx.ctx, r, d, prior, 1, eff_mask(r, 0.01), NULL, work, out),
                   EF_OK);
  assert_close(out[0], 7.5, 1e-12);
  assert_close(out[1], 4, 1e-12);
  /* one Bayes step attributes the 8 data events of the bins, not the 4 of the twin */
  ef_ibu_attribute(r, d, prior, work, out);
  assert_close(out[0], 4, 1e-12);
  assert_close(out[1], 4, 1e-12);
  /* a flat prior: the twin starts at 4 x 2 / 9 and is unfolded too; bin 0
   * ends where the data put it (5: 0.8 x 5 + 0.5 x 4 = 6 in j1, the twin
   * fixed at 4 by j0) */
  const double flat[2] = {1, 1};
  assert_int_equal(ef_ibu_unfold(fx.ctx, r, d, flat, 2000, eff_mask(r, 0.01), twins, work, out),
                   EF_OK);
  printf("# outside, flat prior: (%.6f, %.6f)\n", out[0], out[1]);
  assert_close(out[0], 5, 1e-6);
  assert_close(out[1], 4, 1e-6);
  ef_response_destroy(r);
  ef_events_free(&ev);
  ef_binning_free(vb);
  ef_binning_free(db);
}

int main(void) {
  ef_space_pi0(&pi0);
  hand_bins = ef_test_binning(EF_BIN_COS_PHI, 1, 2);
  if (!hand_bins) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hand),
      cmocka_unit_test(test_contract),
      cmocka_unit_test(test_closure),
      cmocka_unit_test(test_many_bins),
      cmocka_unit_test(test_binned_build),
      cmocka_unit_test(test_outside),
  };
  int rc = cmocka_run_group_tests(tests, setup, teardown);
  ef_binning_free(hand_bins);
  return rc;
}
