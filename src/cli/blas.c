/* BLAS threads of `ensfold run`: one per rank unless the user asks.
 *
 * Every rank is already a process on its own core; OpenBLAS's default of a
 * thread per core in every rank multiplies the threads by the cores (32
 * ranks on a 32-core node: 1,024 threads, most of them contending for the
 * same cores). The choice, in order: --blas-threads N, then
 * OPENBLAS_NUM_THREADS from the environment, then 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ensfold/nn.h"

/* Threads of this process now (Linux /proc), or -1. */
static int process_threads(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  int n = -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "Threads:", 8)) n = atoi(line + 8);
  fclose(f);
  return n;
}

int ef_cli_blas_threads(ef_ctx *ctx, int requested) {
  int n = requested;
  const char *why = "--blas-threads";
  if (n <= 0) {
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    char *end = NULL;
    long v = env && *env ? strtol(env, &end, 10) : 0;
    if (env && *env && end && !*end && v >= 1 && v <= 1024) {
      n = (int)v;
      why = "OPENBLAS_NUM_THREADS";
    } else {
      if (env && *env)
        ef_log(ctx, EF_LOG_WARN, "OPENBLAS_NUM_THREADS='%s' is not a number in [1, 1024]: "
               "ignored", env);
      n = 1;
      why = "the default; --blas-threads N or OPENBLAS_NUM_THREADS=N to change";
    }
  }
  EF_CHECK(ef_nn_set_threads(ctx, n));
  ef_log(ctx, EF_LOG_INFO, "BLAS: %d thread%s per rank (%s); %s; rank 0 runs %d threads in all "
         "before the units start", ef_nn_threads(), ef_nn_threads() == 1 ? "" : "s", why,
         ef_nn_blas_info(), process_threads());
  return EF_OK;
}
