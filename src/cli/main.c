/* The ensfold command: dispatch to subcommands. MPI_Abort is allowed only
 * here, at the top (conventions: library code returns codes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ensfold_version.h"

typedef struct {
  const char *name;
  int (*fn)(ef_ctx *, int, char **);
  const char *summary;
} command;

static const command commands[] = {
    {"validate", ef_cli_validate, "check a config and print it resolved"},
    {"generate", ef_cli_generate, "generate an event file (data or MC)"},
    {"inspect", ef_cli_inspect, "validate an event file, print its topology table"},
    {"bench", ef_cli_bench, "benchmarks of the neural-network engine"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  fprintf(out,
          "usage: ensfold COMMAND [options]\n"
          "       ensfold --version | --help\n\ncommands:\n");
  for (size_t i = 0; i < N_COMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out,
          "\n'ensfold COMMAND --help' describes a command.\n"
          "exit codes: 0 ok, 1 some units failed, 2 bad input, 3 internal "
          "error\n");
}

int ef_cli_fail(ef_ctx *ctx, int rc) {
  if (rc == EF_OK) return 0;
  if (ef_error_code(ctx) == EF_OK) ef_error_set(ctx, rc, "%s", ef_status_text(rc));
  ef_log_error(ctx);
  return ef_status_exit_code(rc);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
    printf("ensfold %s\n", EF_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
      !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  for (size_t i = 0; i < N_COMMANDS; i++) {
    if (strcmp(argv[1], commands[i].name)) continue;
    ef_ctx *ctx = NULL;
    /* Serial commands run without MPI; `run` will initialise it itself. */
    if (ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) {
      fprintf(stderr, "ensfold: out of memory\n");
      return 3;
    }
    int code = commands[i].fn(ctx, argc - 1, argv + 1);
    ef_ctx_destroy(ctx);
    return code;
  }
  fprintf(stderr, "ensfold: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
