/* The event space (include/ensfold/space.h) and event file format version 2
 * (docs/formats.md): declarations checked, a D = 3 / K = 2 sample written
 * and read back bit for bit with its space, broken declarations refused
 * with the attribute named, and a campaign refusing a space it cannot
 * unfold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ensfold/config.h"
#include "ensfold/events.h"
#include "ensfold/identity.h"
#include "ensfold/inputs.h"
#include "ensfold/space.h"

static ef_ctx *ctx;
static char dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/ensfold_test_space.XXXXXX");
  if (!mkdtemp(dir)) return -1;
  return ef_ctx_create(&ctx, MPI_COMM_NULL);
}

static int teardown(void **state) {
  (void)state;
  ef_ctx_destroy(ctx);
  rmdir(dir);
  return 0;
}

static void assert_contains(const char *hay, const char *needle) {
  if (!hay || !strstr(hay, needle))
    fail_msg("message \"%s\" does not contain \"%s\"", hay ? hay : "(null)", needle);
}

/* x bounded [0, 10], angle periodic (0, 2 pi], y unbounded; C0 seen, C1 blind. */
static void space3(ef_space *s) {
  memset(s, 0, sizeof *s);
  s->dim = 3;
  s->n_cat = 2;
  s->axis[0] = (ef_axis){"x", EF_AXIS_BOUNDED, 0.0, 10.0};
  s->axis[1] = (ef_axis){"angle", EF_AXIS_PERIODIC, 0.0, 2.0 * M_PI};
  s->axis[2] = (ef_axis){"y", EF_AXIS_UNBOUNDED, -INFINITY, INFINITY};
  s->cat[0] = (ef_category){"C0", 0};
  s->cat[1] = (ef_category){"C1", 1};
}

static void test_declarations(void **state) {
  (void)state;
  ef_space s;
  ef_space_pi0(&s);
  assert_int_equal(ef_space_check(ctx, &s, "pi0"), EF_OK);
  assert_true(ef_space_is_pi0(&s));
  space3(&s);
  assert_int_equal(ef_space_check(ctx, &s, "s3"), EF_OK);
  assert_false(ef_space_is_pi0(&s));
  assert_true(ef_axis_value_ok(&s.axis[0], 0.0) && ef_axis_value_ok(&s.axis[0], 10.0));
  assert_false(ef_axis_value_ok(&s.axis[1], 0.0)); /* periodic: (lo, hi] */
  assert_true(ef_axis_value_ok(&s.axis[1], 2.0 * M_PI));
  assert_true(ef_axis_value_ok(&s.axis[2], -1e300) && !ef_axis_value_ok(&s.axis[2], INFINITY));
  assert_int_equal(ef_space_n_seen(&s), 1);
  assert_int_equal(ef_space_seen_index(&s, 0), 0);
  assert_int_equal(ef_space_seen_index(&s, 1), -1);
  ef_space p;
  ef_space_pi0(&p);
  assert_int_equal(ef_space_n_seen(&p), 3);
  for (int t = 0; t < 4; t++) assert_int_equal(ef_space_seen_index(&p, t), t - 1); /* T0: -1 */
  assert_int_equal(ef_space_seen_index(&p, 4), -1);
  space3(&s);
  snprintf(s.axis[2].name, sizeof s.axis[2].name, "x");
  assert_int_equal(ef_space_check(ctx, &s, "dup"), EF_ERR_INPUT);
  assert_contains(ef_error_message(ctx), "dup: observable name 'x' appears twice");
  space3(&s);
  s.axis[0].hi = s.axis[0].lo;
  assert_int_equal(ef_space_check(ctx, &s, "range"), EF_ERR_INPUT);
  assert_contains(ef_error_message(ctx), "observable 'x' (bounded) has the range [0, 0]");
  space3(&s);
  s.cat[0].blind = 1;
  assert_int_equal(ef_space_check(ctx, &s, "blind"), EF_ERR_INPUT);
  assert_contains(ef_error_message(ctx), "every one of the 2 categories is blind");
  space3(&s);
  snprintf(s.cat[1].name, sizeof s.cat[1].name, "a b");
  assert_int_equal(ef_space_check(ctx, &s, "name"), EF_ERR_INPUT);
  assert_contains(ef_error_message(ctx), "category 1 is named 'a b'");
  space3(&s);
  s.dim = 0;
  assert_int_equal(ef_space_check(ctx, &s, "none"), EF_ERR_INPUT);
  assert_contains(ef_error_message(ctx), "none: 0 observables (allowed 1..32)");
}

/* n events of space3: C1 (blind) every 4th, weights, MC truth. */
static void fill3(ef_events *ev) {
  for (size_t i = 0; i < ev->n; i++) {
    int blind = i % 4 == 3;
    ev->topology[i] = (int8_t)blind;
    double v[3] = {0.1 * (double)(i % 100), 0.01 + 0.06 * (double)(i % 100), -5.0 + (double)i};
    for (int d = 0; d < 3; d++) {
      ev->vertex[3 * i + d] = v[d];
      ev->reco[3 * i + d] = blind ? NAN : v[d] + (d == 1 ? 0.0 : 0.01);
    }
    ev->prob[2 * i] = blind ? 0.25f : 0.75f;
    ev->prob[2 * i + 1] = blind ? 0.75f : 0.25f;
    ev->weight[i] = 1.0 + (double)(i % 3);
  }
}

static void write3(const char *path, ef_events *ev, size_t n) {
  ef_space s;
  space3(&s);
  assert_int_equal(ef_events_alloc(ctx, ev, &s, n, EF_KIND_MC,
                                   EF_EVENTS_VERTEX | EF_EVENTS_PROB | EF_EVENTS_WEIGHT),
                   EF_OK);
  fill3(ev);
  assert_int_equal(ef_events_validate(ctx, ev, "space3"), EF_OK);
  if (ef_events_write(ctx, ev, path) != EF_OK) fail_msg("%s", ef_error_message(ctx));
}

static void test_roundtrip_v2(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/s3.h5", dir);
  enum { N = 40 };
  ef_events ev, back;
  write3(path, &ev, N);
  if (ef_events_read(ctx, path, &back) != EF_OK) fail_msg("%s", ef_error_message(ctx));
  assert_true(ef_space_same(&ev.space, &back.space));
  assert_int_equal(back.n, N);
  assert_memory_equal(ev.topology, back.topology, N);
  assert_memory_equal(ev.reco, back.reco, 3 * N * sizeof(double)); /* NaNs too: same bits */
  assert_memory_equal(ev.vertex, back.vertex, 3 * N * sizeof(double));
  assert_memory_equal(ev.prob, back.prob, 2 * N * sizeof(float));
  assert_memory_equal(ev.weight, back.weight, N * sizeof(double));
  for (size_t i = 0; i < N; i++) assert_int_equal(ef_events_measured(&back, i), i % 4 != 3);
  ef_events_free(&back);
  ef_events_free(&ev);
  unlink(path);
}

/* The s3 file with attribute name replaced by edit (NULL: deleted). */
static void edit_attr(const char *path, const char *name, hid_t type, const void *value) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), g = H5Gopen2(f, "events", H5P_DEFAULT);
  assert_true(f >= 0 && g >= 0 && H5Adelete(g, name) >= 0);
  if (value) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(g, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0 && H5Awrite(a, type, value) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
  }
  H5Gclose(g);
  H5Fclose(f);
}

static void expect_refused(const char *path, const char *want) {
  ef_events back;
  assert_int_equal(ef_events_read(ctx, path, &back), EF_ERR_INPUT);
  assert_contains(ef_error_message(ctx), path);
  assert_contains(ef_error_message(ctx), want);
}

static void test_bad_declarations(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/bad.h5", dir);
  ef_events ev;
  write3(path, &ev, 8);
  edit_attr(path, "blind", 0, NULL);
  expect_refused(path, "format version 2 needs the attribute /events@blind");
  ef_events_free(&ev);
  write3(path, &ev, 8);
  const int32_t v3 = 3;
  edit_attr(path, "format_version", H5T_NATIVE_INT32, &v3);
  expect_refused(path, "/events@format_version is 3 (this ensfold reads versions 1 and 2)");
  ef_events_free(&ev);
  write3(path, &ev, 8);
  const double one = 1.0;
  edit_attr(path, "observable_range", H5T_NATIVE_DOUBLE, &one);
  expect_refused(path, "attribute /events@observable_range must be an array of numbers of shape "
                       "(D, 2) (it holds 1 float value(s))");
  ef_events_free(&ev);
  /* a declaration that breaks the space rules: categories named twice */
  ef_space s;
  space3(&s);
  snprintf(s.cat[1].name, sizeof s.cat[1].name, "C0");
  assert_int_equal(ef_events_alloc(ctx, &ev, &s, 4, EF_KIND_DATA, 0), EF_OK);
  for (size_t i = 0; i < 4; i++) {
    ev.topology[i] = 0;
    for (int d = 0; d < 3; d++) ev.reco[3 * i + d] = 1.0;
  }
  assert_int_equal(ef_events_write(ctx, &ev, path), EF_OK);
  expect_refused(path, "(format version 2): category name 'C0' appears twice");
  ef_events_free(&ev);
  /* a value outside its observable's range, named with the observable */
  write3(path, &ev, 8);
  ev.reco[3 * 0 + 0] = 11.0;
  assert_int_equal(ef_events_write(ctx, &ev, path), EF_OK);
  expect_refused(path, "/events/reco row 0: (11, 0.01, -4.99) for category C0; allowed x in "
                       "[0, 10]");
  ef_events_free(&ev);
  unlink(path);
}

/* A periodic observable stored at lo is read as hi (the same point). */
static void test_periodic_lo(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/lo.h5", dir);
  ef_events ev, back;
  write3(path, &ev, 8);
  ev.vertex[3 * 2 + 1] = 0.0; /* the lo of (0, 2 pi] */
  ev.reco[3 * 2 + 1] = 0.0;
  assert_int_equal(ef_events_write(ctx, &ev, path), EF_OK);
  if (ef_events_read(ctx, path, &back) != EF_OK) fail_msg("%s", ef_error_message(ctx));
  assert_true(back.vertex[3 * 2 + 1] == 2.0 * M_PI && back.reco[3 * 2 + 1] == 2.0 * M_PI);
  ef_events_free(&back);
  ef_events_free(&ev);
  unlink(path);
}

/* The identity hash sees the declared space: the same arrays under another
 * observable name hash differently. */
static void test_hash_sees_space(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/h.h5", dir);
  ef_events ev;
  write3(path, &ev, 8);
  uint64_t h0 = ef_events_hash(&ev);
  snprintf(ev.space.axis[2].name, sizeof ev.space.axis[2].name, "z");
  uint64_t h1 = ef_events_hash(&ev);
  ev.space.cat[1].blind = 0;
  uint64_t h2 = ef_events_hash(&ev);
  assert_true(h0 != h1 && h1 != h2 && h0 != h2);
  ef_events_free(&ev);
  unlink(path);
}

/* A campaign refuses a space other than pi0, naming file and key. */
static void test_campaign_refuses(void **state) {
  (void)state;
  char path[128], cfg_name[128];
  snprintf(path, sizeof path, "%s/mc3.h5", dir);
  snprintf(cfg_name, sizeof cfg_name, "%s/c.yaml", dir);
  ef_events ev;
  write3(path, &ev, 8);
  ef_events_free(&ev);
  ef_config cfg;
  assert_int_equal(ef_config_load_string(ctx, &cfg, "seed: 1\nmc: {source: file, file: mc3.h5}\n",
                                         cfg_name), EF_OK);
  assert_int_equal(ef_inputs_check_files(ctx, &cfg), EF_ERR_INPUT);
  assert_contains(ef_error_message(ctx), "mc3.h5 (mc.file): declares 3 observables (first 'x') "
                                         "and 2 categories; campaigns unfold the pi0 space only");
  ef_config_free(&cfg);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_declarations),
      cmocka_unit_test(test_roundtrip_v2),
      cmocka_unit_test(test_bad_declarations),
      cmocka_unit_test(test_periodic_lo),
      cmocka_unit_test(test_hash_sees_space),
      cmocka_unit_test(test_campaign_refuses),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
