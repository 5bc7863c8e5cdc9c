/* Config: defaults, strict errors with file:line:col, --set, dump round
 * trip, and docs/config.md listing every key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ensfold/config.h"

static ef_ctx *ctx;

static int setup(void **state) {
  (void)state;
  return ef_ctx_create(&ctx, MPI_COMM_NULL);
}
static int teardown(void **state) {
  (void)state;
  ef_ctx_destroy(ctx);
  return 0;
}

static void test_defaults_match_spec(void **state) {
  (void)state;
  ef_config c;
  assert_int_equal(ef_config_defaults(ctx, &c), EF_OK);
  assert_close(c.physics.beam_energy, 1.1, 0);
  assert_close(c.physics.a12, -0.135, 0);
  assert_close(c.physics.a32, -0.255, 0);
  assert_close(c.physics.polarisation, 0.7, 0);
  assert_close(c.physics.m2_k, 2.0, 0);
  assert_close(c.detector.proton.theta_min_deg, 10, 0);
  assert_close(c.detector.proton.theta_max_deg, 140, 0);
  assert_close(c.detector.proton.p_min, 0.30, 0);
  assert_close(c.detector.proton.tof_dead_theta_deg[0], 90, 0);
  assert_close(c.detector.proton.tof_dead_theta_deg[2], 70, 0);
  assert_close(c.detector.proton.tof_dead_theta_deg[4], 80, 0);
  assert_close(c.detector.proton.tof_dead_theta_deg[5], 180, 0);
  assert_int_equal(c.detector.proton.paddles, 57);
  assert_close(c.detector.pi0.theta_max_deg, 45, 0);
  assert_close(c.detector.pi0.e_min, 0.20, 0);
  assert_close(c.detector.smearing.proton_dtheta, 2.5e-3, 1e-15);
  assert_close(c.detector.smearing.photon_de, 0.116, 0);
  assert_close(c.detector.accidental_fraction, 0.0, 0);
  assert_int_equal(c.detector.proton.g11_cut, 0);
  ef_config_free(&c);
}

static void test_load_values(void **state) {
  (void)state;
  ef_config c;
  const char *y = "seed: 18446744073709551\n"
                  "physics:\n  beam_energy: 0.34\n  m1: {polarisation: 0, talk_a_factor: true}\n"
                  "detector:\n  tof:\n    dead_theta: [180, 180, 180, 180, 180, 100]\n"
                  "  smearing: {proton_dphi: 8}\n";
  assert_int_equal(ef_config_load_string(ctx, &c, y, "t.yaml"), EF_OK);
  assert_true(c.seed == 18446744073709551ull);
  assert_close(c.physics.beam_energy, 0.34, 0);
  assert_close(c.physics.polarisation, 0.0, 0);
  assert_int_equal(c.physics.talk_a_factor, 1);
  assert_close(c.detector.proton.tof_dead_theta_deg[5], 100, 0);
  assert_close(c.detector.smearing.proton_dphi, 8e-3, 1e-15);
  ef_config_free(&c);
}

/* Load y and expect EF_ERR_INPUT with every needle in the message. */
static void expect_error(const char *y, const char *n1, const char *n2, const char *n3) {
  ef_config c;
  int rc = ef_config_load_string(ctx, &c, y, "bad.yaml");
  ef_config_free(&c);
  if (rc != EF_ERR_INPUT) fail_msg("expected EF_ERR_INPUT for:\n%s\ngot %d", y, rc);
  const char *m = ef_error_message(ctx);
  const char *needles[3] = {n1, n2, n3};
  for (int i = 0; i < 3; i++)
    if (needles[i] && !strstr(m, needles[i]))
      fail_msg("message '%s' lacks '%s'", m, needles[i]);
}

static void test_strict_errors(void **state) {
  (void)state;
  expect_error("seed: 1\nphysics:\n  beam_enrgy: 1\n", "bad.yaml:3:3:",
               "unknown key 'physics.beam_enrgy'", "beam_energy");
  expect_error("seed: 1\nfoo: 1\n", "bad.yaml:2:1:", "unknown key 'foo'", "physics");
  expect_error("seed: 1\nphysics: {beam_energy: fast}\n", "bad.yaml:2:24:",
               "'physics.beam_energy'", "expected a number in [0.15, 5] GeV");
  expect_error("seed: 1\nphysics: {beam_energy: '1.1'}\n", "bad.yaml:2:", "string", NULL);
  expect_error("seed: 1\nphysics: {beam_energy: 7}\n", "out of range", "[0.15, 5]", NULL);
  expect_error("seed: 1\nphysics: {beam_energy: .nan}\n", "physics.beam_energy", NULL, NULL);
  expect_error("seed: 1\ndetector: {tof: {paddles: 5.5}}\n", "detector.tof.paddles",
               "integer", NULL);
  expect_error("seed: 1\ndetector: {proton: {g11_cut: 1}}\n", "true or false", NULL, NULL);
  expect_error("seed: 1\ndetector: {tof: {dead_theta: [1, 2]}}\n", "list of 6 numbers",
               "got 2", NULL);
  expect_error("seed: 1\ndetector: {tof: {dead_theta: 90}}\n", "list of 6", NULL, NULL);
  expect_error("seed: 1\nphysics: 3\n", "'physics' is a section", NULL, NULL);
  expect_error("physics: {beam_energy: 1}\n", "missing required key 'seed'", "bad.yaml:1:1",
               NULL);
  expect_error("seed: -4\n", "'seed'", "[0, 2^63-1]", NULL);
  expect_error("seed: 99999999999999999999\n", "'seed'", NULL, NULL);
  expect_error("seed: 1\nseed: 2\n", "given twice", "line 1", NULL);
  expect_error("seed: 1\nphysics: [1\n", "bad.yaml:", "YAML syntax error", NULL);
  expect_error("- 1\n- 2\n", "must be a mapping", NULL, NULL);
  expect_error("seed: 1\n---\nseed: 2\n", "more than one YAML document", NULL, NULL);
  expect_error("seed: 1\ndetector: {photon: {theta_min: 50}}\n",
               "'detector.photon.theta_max' = 45 must be greater than", "theta_min' = 50", NULL);
  /* the energy loss has no critic rows for the batch matches */
  expect_error("seed: 1\ngan:\n  smearing: {loss: energy, trend: 10}\n", "bad.yaml:3:",
               "'gan.smearing.trend' = 10 needs gan.smearing.loss adversarial", NULL);
  expect_error("seed: 1\ngan: {smearing: {loss: critic}}\n", "gan.smearing.loss",
               "adversarial, energy", NULL);
  /* nor has the mixture head; its components 1 .. 16 */
  expect_error("seed: 1\ngan:\n  smearing: {loss: mixture, moments: 10}\n", "bad.yaml:3:",
               "'gan.smearing.moments' = 10 needs gan.smearing.loss adversarial (the mixture",
               NULL);
  expect_error("seed: 1\ngan: {smearing: {loss: mixture, components: 17}}\n",
               "gan.smearing.components", "16", NULL);
  /* the polish and the bias correction both correct G's answer: one at a time */
  expect_error("seed: 1\ngan:\n  bias_correction: true\n  polish: 2\n", "bad.yaml:4:",
               "'gan.polish' = 2 and 'gan.bias_correction' = true", NULL);
  expect_error("seed: 1\ngan: {polish: 101}\n", "gan.polish", "100", NULL);
}

static void test_set_overrides(void **state) {
  (void)state;
  ef_config c;
  assert_int_equal(ef_config_load_string(ctx, &c, "seed: 3\n", "t.yaml"), EF_OK);
  assert_int_equal(ef_config_set(ctx, &c, "physics.beam_energy=0.34"), EF_OK);
  assert_close(c.physics.beam_energy, 0.34, 0);
  assert_int_equal(ef_config_set(ctx, &c, "detector.tof.dead_theta=[1,2,3,4,5,6]"), EF_OK);
  assert_close(c.detector.proton.tof_dead_theta_deg[3], 4, 0);
  assert_int_equal(ef_config_set(ctx, &c, "seed=12"), EF_OK);
  assert_true(c.seed == 12);
  assert_int_equal(ef_config_set(ctx, &c, "physics.m1.nope=1"), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "unknown key 'physics.m1.nope'"));
  assert_non_null(strstr(ef_error_message(ctx), "a12"));
  assert_int_equal(ef_config_set(ctx, &c, "physics.beam_energy"), EF_ERR_INPUT);
  assert_int_equal(ef_config_set(ctx, &c, "physics.beam_energy=-1"), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "--set physics.beam_energy"));
  ef_config_free(&c);
}

/* Overrides valid together are accepted in either order (issue 15.7): the
 * settings are checked against one another after the last. Defaults: proton
 * theta 10..140 deg. */
static void test_set_order(void **state) {
  (void)state;
  char *up[2] = {"detector.proton.theta_min=150", "detector.proton.theta_max=170"};
  char *down[2] = {"detector.proton.theta_max=5", "detector.proton.theta_min=1"};
  char *rev_up[2] = {up[1], up[0]}, *rev_down[2] = {down[1], down[0]};
  char **orders[4] = {up, rev_up, down, rev_down};
  for (int k = 0; k < 4; k++) {
    ef_config c;
    assert_int_equal(ef_config_load_string(ctx, &c, "seed: 3\n", "t.yaml"), EF_OK);
    assert_int_equal(ef_config_set_all(ctx, &c, orders[k], 2), EF_OK);
    assert_true(c.detector.proton.theta_min_deg < c.detector.proton.theta_max_deg);
    ef_config_free(&c);
  }
  /* ... and a contradiction left after the last is still refused */
  ef_config c;
  char *bad[2] = {"detector.proton.theta_min=150", "seed=4"};
  assert_int_equal(ef_config_load_string(ctx, &c, "seed: 3\n", "t.yaml"), EF_OK);
  assert_int_equal(ef_config_set_all(ctx, &c, bad, 2), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "'detector.proton.theta_max' = 140 must be greater"));
  ef_config_free(&c);
}

/* A config over 1 MiB is refused by its size, before any parsing (a 16 MB
 * flow mapping cost 2.6 GB of memory in every rank). */
static void test_config_size_limit(void **state) {
  (void)state;
  char path[] = "/tmp/ef-config-size-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  fputs("seed: 1\nx: {", f);
  for (int i = 0; i < 200000; i++) fputs("a: 1, ", f); /* 1.2 MB */
  fputs("}\n", f);
  fclose(f);
  ef_config c = {0};
  assert_int_equal(ef_config_load(ctx, &c, path), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "a config may hold at most 1048576 bytes"));
  ef_config_free(&c);
  unlink(path);
}

/* The process key and its models: names resolved against the process
 * whatever the order of the keys, refused with the key and position when
 * they belong to another process; gauss lists of 1 or gauss.dim numbers. */
static void test_process_models(void **state) {
  (void)state;
  ef_config c;
  assert_int_equal(ef_config_load_string(ctx, &c, "seed: 1\n", "t.yaml"), EF_OK);
  assert_int_equal(c.process, EF_PROCESS_PI0);
  assert_int_equal(c.data.model, 0);
  assert_int_equal(c.mc.model, 1);
  assert_int_equal(c.campaign.fill_models, 6u);
  char *text = NULL;
  assert_int_equal(ef_config_dump(ctx, &c, &text), EF_OK);
  assert_non_null(strstr(text, "model: M1\n"));
  assert_non_null(strstr(text, "fill_models: [PS, M2]\n"));
  free(text);
  ef_config_free(&c);
  /* names before the process key; the dump names the gauss models */
  const char *y = "seed: 1\ndata: {model: alt}\ncampaign: {fill_models: [alt, data]}\n"
                  "process: gauss\ngauss: {dim: 2, data: {mean: [0.5, -1], correlation: 0.3},"
                  " resolution: 0.25}\n";
  assert_int_equal(ef_config_load_string(ctx, &c, y, "g.yaml"), EF_OK);
  assert_int_equal(c.process, EF_PROCESS_GAUSS);
  assert_int_equal(c.data.model, 2);
  assert_int_equal(c.mc.model, 1); /* the default slot: mc */
  assert_int_equal(c.campaign.fill_models, 5u);
  assert_int_equal(c.gauss.model[0].mean.n, 2);
  assert_true(c.gauss.model[0].mean.v[1] == -1.0);
  assert_int_equal(c.gauss.resolution.n, 1);
  assert_int_equal(ef_config_dump(ctx, &c, &text), EF_OK);
  assert_non_null(strstr(text, "model: alt\n"));
  assert_non_null(strstr(text, "model: mc\n"));
  assert_non_null(strstr(text, "fill_models: [data, alt]\n"));
  assert_non_null(strstr(text, "mean: [0.5, -1]\n"));
  ef_config d;
  assert_int_equal(ef_config_load_string(ctx, &d, text, "dump"), EF_OK);
  assert_memory_equal(&c.gauss, &d.gauss, sizeof c.gauss);
  assert_int_equal(d.data.model, 2);
  assert_int_equal(d.campaign.fill_models, 5u);
  free(text);
  ef_config_free(&d);
  ef_config_free(&c);
  expect_error("seed: 1\nprocess: gauss\ndata: {model: M1}\n", "bad.yaml:3:15:",
               "'data.model': 'M1' is not a model of process gauss", "data, mc, alt");
  expect_error("seed: 1\ncampaign: {fill_models: [PS, mc]}\n", "bad.yaml:2:",
               "'mc' is not a model of process pi0", "M1, PS, M2");
  expect_error("seed: 1\nmc: {model: M7}\n", "bad.yaml:2:", "'M7' is not allowed",
               "gauss: data, mc, alt");
  expect_error("seed: 1\ncampaign: {fill_models: [PS, PS]}\n", "listed twice", NULL, NULL);
  expect_error("seed: 1\ngauss: {dim: 3, mc: {width: [1, 2]}}\n", "bad.yaml:2:",
               "'gauss.mc.width' has 2 numbers but gauss.dim is 3", NULL);
  expect_error("seed: 1\ngauss: {data: {width: [1, 0]}}\n", "gauss.data.width", "out of range",
               NULL);
  expect_error("seed: 1\ngauss: {resolution: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]}\n",
               "1 to 16 numbers", "got 17", NULL);
  /* --set: the same resolution, in any order */
  assert_int_equal(ef_config_load_string(ctx, &c, "seed: 1\n", "t.yaml"), EF_OK);
  char a1[] = "mc.model=data", a2[] = "process=gauss";
  char *sets[] = {a1, a2};
  assert_int_equal(ef_config_set_all(ctx, &c, sets, 2), EF_OK);
  assert_int_equal(c.mc.model, 0);
  ef_config_free(&c);
}

static void test_dump_roundtrip(void **state) {
  (void)state;
  ef_config a, b;
  const char *y = "seed: 77\nphysics: {beam_energy: 0.7, m1: {k_fb: -0.13}}\n"
                  "detector: {smearing: {scale: 3.3, photon_dangle: 0.1}, accidental_fraction: 0.05}\n";
  assert_int_equal(ef_config_load_string(ctx, &a, y, "a.yaml"), EF_OK);
  char *text = NULL;
  assert_int_equal(ef_config_dump(ctx, &a, &text), EF_OK);
  assert_int_equal(ef_config_load_string(ctx, &b, text, "dump"), EF_OK);
  assert_true(a.seed == b.seed);
  assert_memory_equal(&a.physics, &b.physics, sizeof a.physics);
  assert_memory_equal(&a.detector, &b.detector, sizeof a.detector);
  free(text);
  ef_config_free(&a);
  ef_config_free(&b);
}

static void test_every_key_documented(void **state) {
  (void)state;
  const char *root = getenv("ENSFOLD_SOURCE_ROOT");
  assert_non_null(root);
  char path[4096];
  snprintf(path, sizeof path, "%s/docs/config.md", root);
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  static char doc[1 << 20];
  size_t n = fread(doc, 1, sizeof doc - 1, f);
  fclose(f);
  doc[n] = '\0';
  int missing = 0, wrong = 0;
  for (size_t i = 0; i < ef_config_key_count(); i++) {
    char needle[300];
    snprintf(needle, sizeof needle, "`%s`", ef_config_key_path(i));
    if (!strstr(doc, needle)) {
      print_error("docs/config.md does not document %s\n", needle);
      missing++;
      continue;
    }
    /* the documented default is the code's: the second cell of the key's
     * row, "| `path` | default | ..." (the gan.fill_weight row said 1, the
     * code 0) */
    char row[2048], want[256], got[256];
    assert_int_equal(ef_config_key_markdown(i, row, sizeof row), 0);
    snprintf(needle, sizeof needle, "| `%s` |", ef_config_key_path(i));
    const char *at = strstr(doc, needle);
    if (!at) continue; /* mentioned, but not in a table row of its own */
    if (sscanf(strstr(row, "` |") + 3, " %255[^|]", want) != 1 ||
        sscanf(at + strlen(needle), " %255[^|]", got) != 1)
      fail_msg("cannot read the default of %s", needle);
    for (char *e = want + strlen(want); e > want && e[-1] == ' ';) *--e = '\0';
    for (char *e = got + strlen(got); e > got && e[-1] == ' ';) *--e = '\0';
    if (strcmp(want, got) != 0) {
      print_error("docs/config.md gives %s the default '%s', the code '%s'\n", needle, got, want);
      wrong++;
    }
  }
  assert_int_equal(missing, 0);
  assert_int_equal(wrong, 0);
  assert_true(ef_config_key_count() > 30);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_match_spec), cmocka_unit_test(test_load_values),
      cmocka_unit_test(test_strict_errors),       cmocka_unit_test(test_set_overrides),
      cmocka_unit_test(test_set_order),           cmocka_unit_test(test_config_size_limit),
      cmocka_unit_test(test_dump_roundtrip),      cmocka_unit_test(test_every_key_documented),
      cmocka_unit_test(test_process_models),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
