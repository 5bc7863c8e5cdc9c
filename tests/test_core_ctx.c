#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ensfold/ctx.h"

static void test_error_roundtrip(void **state) {
  (void)state;
  ef_ctx *ctx;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  assert_int_equal(ef_ctx_rank(ctx), 0);
  assert_int_equal(ef_ctx_size(ctx), 1);
  assert_int_equal(ef_error_code(ctx), EF_OK);
  int rc = ef_error_set(ctx, EF_ERR_INPUT, "key '%s' unknown", "a.b");
  assert_int_equal(rc, EF_ERR_INPUT);
  assert_string_equal(ef_error_message(ctx), "key 'a.b' unknown");
  assert_int_equal(ef_error_wrap(ctx, "file.yaml:3:4: "), EF_ERR_INPUT);
  assert_string_equal(ef_error_message(ctx), "file.yaml:3:4: key 'a.b' unknown");
  ef_error_clear(ctx);
  assert_int_equal(ef_error_code(ctx), EF_OK);
  ef_ctx_destroy(ctx);
  ef_ctx_destroy(NULL);
}

static void test_status_table(void **state) {
  (void)state;
  assert_string_equal(ef_status_name(EF_ERR_HDF5), "EF_ERR_HDF5");
  assert_int_equal(ef_status_exit_code(EF_OK), 0);
  assert_int_equal(ef_status_exit_code(EF_ERR_INPUT), 2);
  assert_int_equal(ef_status_exit_code(EF_ERR_IO), 3);
  assert_int_equal(ef_status_exit_code(999), 3);
}

static int h5_failing_call(ef_ctx *ctx) {
  EF_CHECK_H5(ctx, -1);
  return EF_OK;
}

static void test_check_macros(void **state) {
  (void)state;
  ef_ctx *ctx;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  assert_int_equal(h5_failing_call(ctx), EF_ERR_HDF5);
  assert_non_null(strstr(ef_error_message(ctx), "-1 failed"));
  ef_ctx_destroy(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_roundtrip),
      cmocka_unit_test(test_status_table),
      cmocka_unit_test(test_check_macros),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
