/* The process interface with the built-in pi0 plug-in: its space and
 * models, and that every call gives what the physics modules give directly
 * (the campaign's results stay bit-identical), plus the refusals: no
 * generation without the detector, files of another space or beam energy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "ef_test.h"
#include "ef_test_binning.h"
#include "ensfold/config.h"
#include "ensfold/detector.h"
#include "ensfold/generator.h"
#include "ensfold/model.h"
#include "ensfold/process.h"

static ef_ctx *ctx;
static ef_config cfg;

static double density(const void *arg, double c, double f) { return ef_model_density(arg, c, f); }

static void test_space_and_models(void **state) {
  (void)state;
  ef_process *p;
  assert_int_equal(ef_process_create(ctx, &p, &cfg), EF_OK);
  assert_string_equal(ef_process_name(p), "pi0");
  assert_true(ef_space_is_pi0(ef_process_space(p)));
  assert_int_equal(ef_process_n_models(p), 3);
  assert_string_equal(ef_process_model_name(p, 0), "M1");
  assert_string_equal(ef_process_model_name(p, 2), "M2");
  assert_string_equal(ef_process_model_name(p, 3), "?");
  assert_false(ef_process_has_detector(p));
  ef_binning *b = ef_test_binning(EF_BIN_THETA_PHI, 18, 36);
  assert_non_null(b);
  for (int m = 0; m < 3; m++) {
    ef_model mm;
    ef_model_init(&mm, (ef_model_id)m, &cfg.physics);
    double sum = 0;
    for (int k = 0; k < ef_binning_count(b); k++) {
      double q = ef_process_bin_probability(p, m, b, k);
      assert_true(q == ef_binning_integrate(b, k, density, &mm)); /* bit for bit */
      sum += q;
    }
    assert_close(sum, 1.0, 1e-9);
    ef_rng r1, r2;
    ef_rng_init(&r1, 5, EF_RNG_TEST, (uint32_t)m);
    ef_rng_init(&r2, 5, EF_RNG_TEST, (uint32_t)m);
    for (int i = 0; i < 1000; i++) {
      double v[2], c, f;
      ef_process_sample(p, m, &r1, v);
      ef_model_sample(&mm, &r2, &c, &f);
      assert_true(v[0] == c && v[1] == f);
    }
  }
  ef_binning_free(b);
  ef_process_destroy(p);
}

static void test_generate_and_efficiency(void **state) {
  (void)state;
  ef_process *p;
  assert_int_equal(ef_process_create(ctx, &p, &cfg), EF_OK);
  ef_events ev = {0}, direct = {0};
  ef_rng r;
  ef_rng_init(&r, 9, EF_RNG_TEST, 0);
  assert_int_equal(ef_process_generate(ctx, p, 1, &r, 100, EF_KIND_MC, 0, NULL, NULL, &ev),
                   EF_ERR_INTERNAL);
  assert_non_null(strstr(ef_error_message(ctx), "without the detector"));
  assert_int_equal(ef_process_need_detector(ctx, p), EF_OK);
  assert_true(ef_process_has_detector(p));
  assert_int_equal(ef_process_need_detector(ctx, p), EF_OK); /* once is enough */
  ef_rng_init(&r, 9, EF_RNG_TEST, 0);
  assert_int_equal(ef_process_generate(ctx, p, 1, &r, 2000, EF_KIND_MC, 0, NULL, NULL, &ev), EF_OK);
  ef_detector *det;
  assert_int_equal(ef_detector_create(ctx, &det, &cfg.physics, &cfg.detector), EF_OK);
  ef_model ps;
  ef_model_init(&ps, EF_MODEL_PS, &cfg.physics);
  ef_rng_init(&r, 9, EF_RNG_TEST, 0);
  assert_int_equal(ef_generate(ctx, det, &ps, &r, 2000, EF_KIND_MC, 0, NULL, NULL, &direct), EF_OK);
  assert_int_equal(ev.n, direct.n);
  assert_memory_equal(ev.topology, direct.topology, ev.n);
  assert_memory_equal(ev.vertex, direct.vertex, 2 * ev.n * sizeof(double));
  assert_memory_equal(ev.prob, direct.prob, 4 * ev.n * sizeof(float));
  /* exact efficiencies: a probability vector per bin, the 0-10 deg cap
   * nearly blind, the middle rows mostly seen */
  ef_binning *b = ef_test_binning(EF_BIN_THETA_PHI, 18, 36);
  double seen_mid = 0;
  for (int k = 0; k < ef_binning_count(b); k++) {
    double eff[4];
    ef_process_bin_efficiency(p, b, k, eff);
    assert_close(eff[0] + eff[1] + eff[2] + eff[3], 1.0, 1e-12);
    if (k < 36) assert_true(eff[0] > 0.95);
    if (k / 36 == 9) seen_mid += (1 - eff[0]) / 36;
  }
  assert_true(seen_mid > 0.5);
  ef_binning_free(b);
  ef_detector_destroy(det);
  ef_events_free(&ev);
  ef_events_free(&direct);
  ef_process_destroy(p);
}

static void test_check_events(void **state) {
  (void)state;
  ef_process *p;
  assert_int_equal(ef_process_create(ctx, &p, &cfg), EF_OK);
  ef_space pi0;
  ef_space_pi0(&pi0);
  ef_events ev = {0};
  assert_int_equal(ef_events_alloc(ctx, &ev, &pi0, 1, EF_KIND_DATA, 0), EF_OK);
  ev.beam_energy = cfg.physics.beam_energy;
  assert_int_equal(ef_process_check_events(ctx, p, &ev, "d.h5", "data.file"), EF_OK);
  ev.beam_energy = NAN; /* not recorded: accepted */
  assert_int_equal(ef_process_check_events(ctx, p, &ev, "d.h5", "data.file"), EF_OK);
  ev.beam_energy = cfg.physics.beam_energy * 1.01;
  assert_int_equal(ef_process_check_events(ctx, p, &ev, "d.h5", "data.file"), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "d.h5 (data.file): made at beam energy"));
  ev.beam_energy = cfg.physics.beam_energy;
  ev.space.dim = 3;
  assert_int_equal(ef_process_check_events(ctx, p, &ev, "d.h5", "data.file"), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "campaigns unfold the pi0 space only"));
  ev.space = pi0;
  ef_events_free(&ev);
  ef_process_destroy(p);
}

int main(void) {
  if (ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK || ef_config_defaults(ctx, &cfg) != EF_OK)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_space_and_models),
      cmocka_unit_test(test_generate_and_efficiency),
      cmocka_unit_test(test_check_events),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ef_config_free(&cfg);
  ef_ctx_destroy(ctx);
  return rc;
}
