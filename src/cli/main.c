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
  int mpi; /* runs under MPI (MPI_Init_thread, MPI_COMM_WORLD) */
} command;

static const command commands[] = {
    {"run", ef_cli_run, "run a campaign (under mpirun)", 1},
    {"summary", ef_cli_summary, "print the group table of a result file", 0},
    {"status", ef_cli_status, "progress of a running or interrupted campaign", 0},
    {"validate", ef_cli_validate, "check a config and print it resolved", 0},
    {"generate", ef_cli_generate, "generate an event file (data or MC)", 0},
    {"inspect", ef_cli_inspect, "validate an event file, print its topology table", 0},
    {"bench", ef_cli_bench, "benchmarks of the neural-network engine", 0},
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
    MPI_Comm comm = MPI_COMM_NULL;
    if (commands[i].mpi) {
      /* THREAD_MULTIPLE: rank 0's coordinator thread talks MPI beside its worker */
      int provided = 0;
      if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "ensfold: MPI_Init_thread failed\n");
        return 3;
      }
      comm = MPI_COMM_WORLD;
    }
    /* Serial commands run without MPI. */
    if (ef_ctx_create(&ctx, comm) != EF_OK) {
      fprintf(stderr, "ensfold: cannot create the context\n");
      if (commands[i].mpi) MPI_Abort(MPI_COMM_WORLD, 3);
      return 3;
    }
    int code = commands[i].fn(ctx, argc - 1, argv + 1);
    ef_ctx_destroy(ctx);
    if (commands[i].mpi) {
      /* a rank that failed alone (out of memory, internal error) would leave
       * the others waiting: agree on the worst code, abort if unsure */
      int worst = code;
      if (MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) {
        fprintf(stderr, "ensfold: MPI_Allreduce of the exit codes failed: aborting\n");
        MPI_Abort(MPI_COMM_WORLD, 3);
      }
      /* a run that finished but could not leave MPI cleanly does not exit 0 */
      if (MPI_Finalize() != MPI_SUCCESS) {
        fprintf(stderr, "ensfold: MPI_Finalize failed\n");
        if (worst == 0) worst = 3;
      }
      return worst;
    }
    return code;
  }
  fprintf(stderr, "ensfold: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
