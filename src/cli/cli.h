/* Subcommands of the ensfold command. Each returns a process exit code
 * (0 ok, 1 some units failed, 2 bad input, 3 internal error). */
#ifndef ENSFOLD_CLI_H
#define ENSFOLD_CLI_H

#include "ensfold/ctx.h"

int ef_cli_validate(ef_ctx *ctx, int argc, char **argv);
int ef_cli_generate(ef_ctx *ctx, int argc, char **argv);
int ef_cli_inspect(ef_ctx *ctx, int argc, char **argv);
int ef_cli_bench(ef_ctx *ctx, int argc, char **argv);
int ef_cli_run(ef_ctx *ctx, int argc, char **argv);
int ef_cli_summary(ef_ctx *ctx, int argc, char **argv);
int ef_cli_status(ef_ctx *ctx, int argc, char **argv);

/* Report the error recorded in ctx and turn its code into an exit code. */
int ef_cli_fail(ef_ctx *ctx, int rc);


#include "ensfold/config.h"

/* Defaults, then the file (if path is not NULL), then each "--set" in order,
 * the settings checked against one another after the last. */
int ef_cli_load_config(ef_ctx *ctx, ef_config *cfg, const char *path,
                       char **sets, int n_sets);

#include <stdio.h>

#include "ensfold/events.h"

/* The topology table of an event sample (counts, fractions, mean P(T)). */
void ef_cli_print_topology_table(FILE *out, const ef_events *ev);
/* Refuse (EF_ERR_INPUT) an output path whose directory does not exist or
 * is not writable, or that names a directory: before any work starts. */
int ef_cli_check_output(ef_ctx *ctx, const char *path);
/* Seconds on a monotonic clock. */
double ef_cli_now(void);
/* BLAS threads of this rank: requested (> 0, --blas-threads), else
 * OPENBLAS_NUM_THREADS, else 1; logged (blas.c). Call on every rank before
 * any BLAS work. */
int ef_cli_blas_threads(ef_ctx *ctx, int requested);

#endif
