/* libFuzzer target: the strict YAML config parser, the --set path and the
 * dumper on arbitrary bytes. Any input must give EF_OK or EF_ERR_INPUT with
 * a message, never a crash; an accepted config must dump and load back to
 * the same values. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static ef_ctx *ctx;
  if (!ctx && ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) abort();
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  ef_config cfg = {0};
  int rc;
  if (size > 4 && !memcmp(text, "set:", 4)) {
    /* "set:" inputs exercise ef_config_set on top of the defaults */
    rc = ef_config_defaults(ctx, &cfg);
    if (rc == EF_OK) rc = ef_config_set(ctx, &cfg, text + 4);
  } else {
    rc = ef_config_load_string(ctx, &cfg, text, "fuzz.yaml");
  }
  if (rc != EF_OK && rc != EF_ERR_INPUT) abort();
  if (rc == EF_ERR_INPUT && !ef_error_message(ctx)[0]) abort();
  if (rc == EF_OK) {
    char *dump = NULL;
    if (ef_config_dump(ctx, &cfg, &dump) != EF_OK) abort();
    ef_config back = {0};
    if (ef_config_load_string(ctx, &back, dump, "dump") != EF_OK) abort();
    if (memcmp(&back.physics, &cfg.physics, sizeof cfg.physics) ||
        memcmp(&back.detector, &cfg.detector, sizeof cfg.detector) || back.seed != cfg.seed)
      abort();
    ef_config_free(&back);
    free(dump);
  }
  ef_config_free(&cfg);
  free(text);
  return 0;
}
