/* Context, error slot and logging. */
#include "ensfold/ctx.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EF_MSG_MAX 2048

struct ef_ctx {
  MPI_Comm comm; /* MPI_COMM_NULL for a serial context */
  int rank, size;
  ef_log_level level;
  int log_all_ranks;
  int color;
  int err_code;
  char err_msg[EF_MSG_MAX];
};

static const struct {
  const char *name, *text;
  int exit_code;
} status_table[] = {
#define EF_X_ROW(name, value, text, exitcode) [value] = {#name, text, exitcode},
    EF_STATUS_LIST(EF_X_ROW)
#undef EF_X_ROW
};
#define N_STATUS ((int)(sizeof status_table / sizeof status_table[0]))

const char *ef_status_name(int code) {
  return (code >= 0 && code < N_STATUS) ? status_table[code].name : "EF_ERR_?";
}

const char *ef_status_text(int code) {
  return (code >= 0 && code < N_STATUS) ? status_table[code].text
                                        : "unknown error";
}

int ef_status_exit_code(int code) {
  return (code >= 0 && code < N_STATUS) ? status_table[code].exit_code : 3;
}

int ef_ctx_create(ef_ctx **out, MPI_Comm comm) {
  *out = NULL;
  ef_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return EF_ERR_NOMEM;
  ctx->comm = comm;
  ctx->rank = 0;
  ctx->size = 1;
  ctx->level = EF_LOG_INFO;
  const char *nc = getenv("NO_COLOR");
  ctx->color = (!nc || !*nc) && isatty(STDERR_FILENO);
  if (comm != MPI_COMM_NULL) {
    const char *call = "MPI_Comm_rank";
    int rc = MPI_Comm_rank(comm, &ctx->rank);
    if (rc == MPI_SUCCESS) {
      call = "MPI_Comm_size";
      rc = MPI_Comm_size(comm, &ctx->size);
    }
    if (rc != MPI_SUCCESS) {
      /* no context goes back to hold the message: it goes to the log */
      ef_error_mpi(ctx, rc, call, __FILE__, __LINE__);
      ef_log_error(ctx);
      free(ctx);
      return EF_ERR_MPI;
    }
  }
  /* HDF5 errors are turned into ef_ctx messages (ef_error_hdf5), not printed;
   * if that cannot be switched off, HDF5 prints its stacks as well: say so,
   * nothing more */
  if (H5Eset_auto2(H5E_DEFAULT, NULL, NULL) < 0) {
    ef_error_hdf5(ctx, "H5Eset_auto2", __FILE__, __LINE__);
    ef_log(ctx, EF_LOG_WARN, "%s: HDF5 may print its own error stacks", ef_error_message(ctx));
    ef_error_clear(ctx);
  }
  *out = ctx;
  return EF_OK;
}

void ef_ctx_destroy(ef_ctx *ctx) { free(ctx); }

int ef_ctx_clone(ef_ctx **out, const ef_ctx *src) {
  *out = malloc(sizeof **out);
  if (!*out) return EF_ERR_NOMEM;
  **out = *src;
  (*out)->err_code = EF_OK;
  (*out)->err_msg[0] = '\0';
  return EF_OK;
}

int ef_ctx_rank(const ef_ctx *ctx) { return ctx ? ctx->rank : 0; }
int ef_ctx_size(const ef_ctx *ctx) { return ctx ? ctx->size : 1; }
MPI_Comm ef_ctx_comm(const ef_ctx *ctx) {
  return ctx ? ctx->comm : MPI_COMM_NULL;
}
void ef_ctx_set_log_level(ef_ctx *ctx, ef_log_level level) {
  ctx->level = level;
}
ef_log_level ef_ctx_log_level(const ef_ctx *ctx) { return ctx->level; }
void ef_ctx_set_log_all_ranks(ef_ctx *ctx, int all) { ctx->log_all_ranks = all; }
void ef_ctx_set_color(ef_ctx *ctx, int on) { ctx->color = on; }

/* ---- errors ---------------------------------------------------------- */

int ef_error_set(ef_ctx *ctx, int code, const char *fmt, ...) {
  if (!ctx) return code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx->err_msg, sizeof ctx->err_msg, fmt, ap);
  va_end(ap);
  ctx->err_code = code;
  return code;
}

int ef_error_wrap(ef_ctx *ctx, const char *fmt, ...) {
  if (!ctx) return EF_ERR_INTERNAL;
  char prefix[EF_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  size_t lp = strlen(prefix), lm = strlen(ctx->err_msg);
  if (lp >= sizeof ctx->err_msg) lp = sizeof ctx->err_msg - 1;
  if (lp + lm >= sizeof ctx->err_msg) lm = sizeof ctx->err_msg - 1 - lp;
  memmove(ctx->err_msg + lp, ctx->err_msg, lm);
  memcpy(ctx->err_msg, prefix, lp);
  ctx->err_msg[lp + lm] = '\0';
  return ctx->err_code;
}

int ef_error_mpi(ef_ctx *ctx, int mpi_code, const char *call, const char *file,
                 int line) {
  char text[MPI_MAX_ERROR_STRING] = "unknown MPI error";
  int len = 0;
  if (MPI_Error_string(mpi_code, text, &len) != MPI_SUCCESS)
    snprintf(text, sizeof text, "MPI error code %d", mpi_code);
  return ef_error_set(ctx, EF_ERR_MPI, "%s failed: %s (%s:%d)", call, text,
                      file, line);
}

/* H5Ewalk callback: keep the innermost (first) description. */
static herr_t h5_walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
  char *buf = data;
  if (n == 0 && e && e->desc) snprintf(buf, 512, "%s", e->desc);
  return 0;
}

int ef_error_hdf5(ef_ctx *ctx, const char *call, const char *file, int line) {
  char desc[512] = "";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5_walk_cb, desc);
  H5Eclear2(H5E_DEFAULT);
  if (desc[0])
    return ef_error_set(ctx, EF_ERR_HDF5, "%s failed: %s (%s:%d)", call, desc,
                        file, line);
  return ef_error_set(ctx, EF_ERR_HDF5, "%s failed (%s:%d)", call, file, line);
}

const char *ef_error_message(const ef_ctx *ctx) {
  if (!ctx) return "";
  return ctx->err_msg[0] ? ctx->err_msg : ef_status_text(ctx->err_code);
}
int ef_error_code(const ef_ctx *ctx) { return ctx ? ctx->err_code : EF_OK; }
void ef_error_clear(ef_ctx *ctx) {
  if (!ctx) return;
  ctx->err_code = EF_OK;
  ctx->err_msg[0] = '\0';
}

/* ---- logging --------------------------------------------------------- */

static const char *level_tag[] = {"error", "warn", "info", "debug"};
static const char *level_color[] = {"\033[1;31m", "\033[1;33m", "\033[1;32m",
                                    "\033[2m"};

void ef_vlog(const ef_ctx *ctx, ef_log_level level, const char *fmt,
             va_list ap) {
  int rank = ctx ? ctx->rank : 0;
  if (ctx && level > ctx->level) return;
  if (ctx && level >= EF_LOG_INFO && rank != 0 && !ctx->log_all_ranks) return;
  char line[EF_MSG_MAX + 128];
  int off;
  if (ctx && ctx->color)
    off = snprintf(line, sizeof line, "ensfold[r%d] %s%s\033[0m: ", rank,
                   level_color[level], level_tag[level]);
  else
    off = snprintf(line, sizeof line, "ensfold[r%d] %s: ", rank,
                   level_tag[level]);
  vsnprintf(line + off, sizeof line - (size_t)off, fmt, ap);
  /* One fputs per line so lines from different ranks do not interleave. */
  size_t len = strlen(line);
  if (len + 1 < sizeof line) {
    line[len] = '\n';
    line[len + 1] = '\0';
  }
  fputs(line, stderr);
  fflush(stderr);
}

void ef_log(const ef_ctx *ctx, ef_log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ef_vlog(ctx, level, fmt, ap);
  va_end(ap);
}

void ef_log_error(const ef_ctx *ctx) {
  ef_log(ctx, EF_LOG_ERROR, "%s", ef_error_message(ctx));
}
