/* ensfold validate CONFIG [--set KEY=VALUE ...] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ensfold/inputs.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: ensfold validate CONFIG [--set KEY=VALUE ...]\n"
          "       ensfold validate --keys   (every key as a markdown table)\n\n"
          "Check CONFIG strictly (unknown keys, types, ranges, required keys) and\n"
          "print it resolved, every default filled in, as YAML on stdout.\n"
          "--set overrides any key after the file is read (repeatable).\n"
          "With data.source or mc.source 'file', the event file is read and checked\n"
          "as a campaign would (relative paths from the config file's directory).\n"
          "Exit codes: 0 valid, 2 invalid (the message names file:line:col and key,\n"
          "or the key data.file / mc.file and the event file with its problem).\n");
}

int ef_cli_validate(ef_ctx *ctx, int argc, char **argv) {
  const char *path = NULL;
  char **sets = calloc((size_t)argc, sizeof *sets);
  int n_sets = 0, rc = EF_OK;
  if (!sets) return ef_cli_fail(ctx, ef_error_set(ctx, EF_ERR_NOMEM, "out of memory"));
  for (int i = 1; i < argc && rc == EF_OK; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      free(sets);
      return 0;
    } else if (!strcmp(argv[i], "--keys")) {
      /* the reference table of docs/config.md */
      char row[1024];
      printf("| key | default | unit | allowed | meaning |\n|---|---|---|---|---|\n");
      for (size_t k = 0; ef_config_key_markdown(k, row, sizeof row) == 0; k++) puts(row);
      free(sets);
      return 0;
    } else if (!strcmp(argv[i], "--set")) {
      if (i + 1 >= argc) rc = ef_error_set(ctx, EF_ERR_INPUT, "--set needs KEY=VALUE");
      else sets[n_sets++] = argv[++i];
    } else if (!strncmp(argv[i], "--set=", 6)) {
      sets[n_sets++] = argv[i] + 6;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      rc = ef_error_set(ctx, EF_ERR_INPUT, "validate: unknown option '%s' (see --help)", argv[i]);
    } else if (path) {
      rc = ef_error_set(ctx, EF_ERR_INPUT, "validate: one CONFIG only, got '%s' and '%s'",
                        path, argv[i]);
    } else {
      path = argv[i];
    }
  }
  if (rc == EF_OK && !path)
    rc = ef_error_set(ctx, EF_ERR_INPUT, "validate: missing CONFIG (see --help)");
  ef_config cfg = {0};
  char *text = NULL;
  if (rc == EF_OK) rc = ef_cli_load_config(ctx, &cfg, path, sets, n_sets);
  if (rc == EF_OK) rc = ef_inputs_check_files(ctx, &cfg);
  if (rc == EF_OK) rc = ef_config_dump(ctx, &cfg, &text);
  if (rc == EF_OK) fputs(text, stdout);
  free(text);
  ef_config_free(&cfg);
  free(sets);
  return ef_cli_fail(ctx, rc);
}
