#include "cli.h"
int ef_cli_generate(ef_ctx *ctx, int argc, char **argv) {
  (void)argc; (void)argv;
  return ef_cli_fail(ctx, ef_error_set(ctx, EF_ERR_INTERNAL, "'generate' is not built yet"));
}
