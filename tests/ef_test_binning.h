/* A pi0 binning for tests (NULL if refused: assert it). Free it with
 * ef_binning_free. */
#ifndef EF_TEST_BINNING_H
#define EF_TEST_BINNING_H

#include "ensfold/binning.h"
#include "ensfold/ctx.h"

static inline ef_binning *ef_test_binning(int scheme, int n_polar, int n_phi) {
  ef_ctx *ctx = NULL;
  ef_binning *b = NULL;
  if (ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) return NULL;
  const ef_binning_params p = {.scheme = scheme, .n_polar = n_polar, .n_phi = n_phi};
  ef_space pi0;
  ef_space_pi0(&pi0);
  if (ef_binning_from_params(ctx, &b, &p, &pi0, "test binning") != EF_OK) b = NULL;
  ef_ctx_destroy(ctx);
  return b;
}

#endif
