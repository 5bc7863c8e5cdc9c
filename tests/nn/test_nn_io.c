/* Weight files: bit-exact HDF5 round trip, networks made from a file, and
 * refusal of a file that does not match the network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ensfold/nn_io.h"

static char path[256];

static ef_mlp *make(ef_ctx *ctx, const int *widths, const ef_nn_act *acts, int n, uint64_t seed) {
  ef_mlp *m = NULL;
  ef_mlp_spec spec = {n, widths, acts, 0.2f, 16};
  assert_int_equal(ef_mlp_create(ctx, &m, &spec), EF_OK);
  ef_mlp_init(m, seed, 7);
  return m;
}

static void test_round_trip(void **state) {
  (void)state;
  ef_ctx *ctx = NULL;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  const int wg[5] = {8, 32, 32, 32, 2}, wd[4] = {6, 20, 10, 4};
  const ef_nn_act ag[4] = {EF_ACT_LEAKY_RELU, EF_ACT_LEAKY_RELU, EF_ACT_TANH, EF_ACT_LINEAR};
  const ef_nn_act ad[3] = {EF_ACT_RELU, EF_ACT_SIGMOID, EF_ACT_SOFTMAX};
  ef_mlp *g = make(ctx, wg, ag, 4, 1), *d = make(ctx, wd, ad, 3, 2);
  /* include values whose bits a lossy path would change: denormals, -0 */
  ef_mlp_params(g)[0] = 1e-40f;
  ef_mlp_params(g)[1] = -0.0f;
  ef_mlp_params(g)[2] = 3.4e38f;
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(f >= 0);
  assert_int_equal(ef_mlp_save(ctx, g, f, "G"), EF_OK);
  assert_int_equal(ef_mlp_save(ctx, d, f, "D"), EF_OK);
  /* saving twice under one name is refused, not overwritten */
  assert_int_equal(ef_mlp_save(ctx, g, f, "G"), EF_ERR_HDF5);
  assert_true(H5Fclose(f) >= 0);

  f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  assert_true(f >= 0);
  ef_mlp *g2 = make(ctx, wg, ag, 4, 99);
  assert_int_equal(ef_mlp_load(ctx, g2, f, "G"), EF_OK);
  assert_int_equal(ef_mlp_n_params(g2), ef_mlp_n_params(g));
  assert_memory_equal(ef_mlp_params(g2), ef_mlp_params(g), ef_mlp_n_params(g) * sizeof(float));
  ef_mlp *d2 = NULL;
  assert_int_equal(ef_mlp_create_from_h5(ctx, &d2, f, "D", 5), EF_OK);
  assert_int_equal(ef_mlp_n_layers(d2), 3);
  for (int l = 0; l <= 3; l++) assert_int_equal(ef_mlp_width(d2, l), wd[l]);
  for (int l = 0; l < 3; l++) assert_int_equal(ef_mlp_act(d2, l), ad[l]);
  assert_true(ef_mlp_leaky_slope(d2) == 0.2f);
  assert_int_equal(ef_mlp_max_batch(d2), 5);
  assert_memory_equal(ef_mlp_params(d2), ef_mlp_params(d), ef_mlp_n_params(d) * sizeof(float));
  /* the loaded network computes the same outputs, bit for bit */
  float x[6 * 5];
  for (int i = 0; i < 30; i++) x[i] = 0.1f * (float)(i % 7) - 0.3f;
  float y1[5 * 4];
  memcpy(y1, ef_mlp_forward(d, x, 5), sizeof y1);
  assert_memory_equal(ef_mlp_forward(d2, x, 5), y1, sizeof y1);

  /* a mismatched network or a missing group is refused with a message */
  assert_int_equal(ef_mlp_load(ctx, g2, f, "D"), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "layers"));
  const ef_nn_act ag2[4] = {EF_ACT_LEAKY_RELU, EF_ACT_RELU, EF_ACT_TANH, EF_ACT_LINEAR};
  ef_mlp *g3 = make(ctx, wg, ag2, 4, 1);
  assert_int_equal(ef_mlp_load(ctx, g3, f, "G"), EF_ERR_INPUT);
  assert_non_null(strstr(ef_error_message(ctx), "activation"));
  assert_int_equal(ef_mlp_load(ctx, g2, f, "nope"), EF_ERR_HDF5);
  assert_true(H5Fclose(f) >= 0);
  unlink(path);
  ef_mlp_destroy(g);
  ef_mlp_destroy(g2);
  ef_mlp_destroy(g3);
  ef_mlp_destroy(d);
  ef_mlp_destroy(d2);
  ef_mlp_destroy(NULL);
  ef_ctx_destroy(ctx);
}

static void test_layout_attributes(void **state) {
  (void)state;
  /* the documented layout, read with plain HDF5 calls */
  ef_ctx *ctx = NULL;
  assert_int_equal(ef_ctx_create(&ctx, MPI_COMM_NULL), EF_OK);
  const int w[3] = {3, 4, 1};
  const ef_nn_act a[2] = {EF_ACT_LEAKY_RELU, EF_ACT_LINEAR};
  ef_mlp *m = make(ctx, w, a, 2, 3);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(f >= 0);
  hid_t grp = H5Gcreate2(f, "nets", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(grp >= 0);
  assert_int_equal(ef_mlp_save(ctx, m, grp, "d"), EF_OK);
  int widths[3] = {0}, n = 0;
  hid_t at = H5Aopen_by_name(f, "nets/d", "widths", H5P_DEFAULT, H5P_DEFAULT);
  assert_true(at >= 0 && H5Aread(at, H5T_NATIVE_INT, widths) >= 0);
  H5Aclose(at);
  at = H5Aopen_by_name(f, "nets/d", "n_layers", H5P_DEFAULT, H5P_DEFAULT);
  assert_true(at >= 0 && H5Aread(at, H5T_NATIVE_INT, &n) >= 0);
  H5Aclose(at);
  assert_int_equal(n, 2);
  assert_int_equal(widths[0], 3);
  assert_int_equal(widths[1], 4);
  assert_int_equal(widths[2], 1);
  float W[12];
  hid_t ds = H5Dopen2(f, "nets/d/layer_0/W", H5P_DEFAULT);
  assert_true(ds >= 0 && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, W) >= 0);
  H5Dclose(ds);
  assert_memory_equal(W, ef_mlp_params(m) + ef_mlp_weight_offset(m, 0), sizeof W);
  H5Gclose(grp);
  H5Fclose(f);
  unlink(path);
  ef_mlp_destroy(m);
  ef_ctx_destroy(ctx);
}

int main(void) {
  snprintf(path, sizeof path, "/tmp/ensfold_test_nn_io_%ld.h5", (long)getpid());
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_layout_attributes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
