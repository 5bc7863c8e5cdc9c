/* The context: communicator, rank, logger and the last error.
 *
 * One ef_ctx per process, made in main and passed to every library call that
 * can fail or log. There are no globals for rank, size or log level. */
#ifndef ENSFOLD_CTX_H
#define ENSFOLD_CTX_H

#include <mpi.h>
#include <stdarg.h>

#include "ensfold/error.h"

typedef enum {
  EF_LOG_ERROR = 0,
  EF_LOG_WARN = 1,
  EF_LOG_INFO = 2,
  EF_LOG_DEBUG = 3,
} ef_log_level;

/* comm may be MPI_COMM_NULL: a serial context (rank 0 of 1) that never calls
 * MPI, so tools and tests can run without MPI_Init. Not collective.
 * Also switches off HDF5's automatic error-stack printing: errors are
 * reported through the context instead. When MPI_Comm_rank or MPI_Comm_size
 * fails it returns EF_ERR_MPI with *out NULL, the failing call logged (there
 * is no context to hold the message). */
int ef_ctx_create(ef_ctx **out, MPI_Comm comm);
void ef_ctx_destroy(ef_ctx *ctx); /* accepts NULL */
/* A second context with the same communicator and log settings and a clean
 * error slot, for another thread of the same rank. */
int ef_ctx_clone(ef_ctx **out, const ef_ctx *src);

int ef_ctx_rank(const ef_ctx *ctx);
int ef_ctx_size(const ef_ctx *ctx);
MPI_Comm ef_ctx_comm(const ef_ctx *ctx);

/* Messages above this level are dropped. Default EF_LOG_INFO. */
void ef_ctx_set_log_level(ef_ctx *ctx, ef_log_level level);
ef_log_level ef_ctx_log_level(const ef_ctx *ctx);
/* By default only rank 0 logs INFO and DEBUG; WARN and ERROR come from every
 * rank. all_ranks = 1 lets every rank log at every level. */
void ef_ctx_set_log_all_ranks(ef_ctx *ctx, int all_ranks);
/* Colour for level tags on stderr; off when NO_COLOR is set or stderr is not a
 * terminal (decided at create time). */
void ef_ctx_set_color(ef_ctx *ctx, int on);

/* Log a line to stderr: "ensfold[r3] warn: message". */
void ef_log(const ef_ctx *ctx, ef_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ef_vlog(const ef_ctx *ctx, ef_log_level level, const char *fmt,
             va_list ap);
/* Log the recorded error at EF_LOG_ERROR. */
void ef_log_error(const ef_ctx *ctx);

#endif
