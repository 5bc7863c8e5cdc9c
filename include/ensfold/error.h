/* Error codes, the error slot of an ef_ctx, and check macros.
 *
 * Convention (libgit2 style): a function that can fail returns an int status
 * (EF_OK == 0). The message is set once, where the failure happens, with
 * ef_error_set(); callers propagate the code unchanged. The macros below stay
 * on in release builds. */
#ifndef ENSFOLD_ERROR_H
#define ENSFOLD_ERROR_H

#include <mpi.h>

typedef struct ef_ctx ef_ctx;

/* X(name, value, text, process exit code) */
#define EF_STATUS_LIST(X)                                                  \
  X(EF_OK, 0, "success", 0)                                                \
  X(EF_ERR_INPUT, 1, "bad input", 2)                                       \
  X(EF_ERR_NOMEM, 2, "out of memory", 3)                                   \
  X(EF_ERR_IO, 3, "I/O error", 3)                                          \
  X(EF_ERR_HDF5, 4, "HDF5 error", 3)                                       \
  X(EF_ERR_MPI, 5, "MPI error", 3)                                         \
  X(EF_ERR_NUMERIC, 6, "numerical failure", 3)                             \
  X(EF_ERR_INTERNAL, 7, "internal error", 3)

typedef enum {
#define EF_X_ENUM(name, value, text, exitcode) name = value,
  EF_STATUS_LIST(EF_X_ENUM)
#undef EF_X_ENUM
} ef_status;

/* Short name ("EF_ERR_INPUT") and description of a status code. */
const char *ef_status_name(int code);
const char *ef_status_text(int code);
/* Documented process exit code for a status: 0 ok, 2 bad input, 3 internal. */
int ef_status_exit_code(int code);

/* Record an error in ctx (printf-style message) and return code. ctx may be
 * NULL, in which case only the code is returned. */
int ef_error_set(ef_ctx *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepend context ("while reading X: ") to the recorded message; returns the
 * recorded code unchanged. */
int ef_error_wrap(ef_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Record an MPI failure: text from MPI_Error_string, plus call site. */
int ef_error_mpi(ef_ctx *ctx, int mpi_code, const char *call, const char *file,
                 int line);
/* Record an HDF5 failure: the innermost message of the HDF5 error stack. */
int ef_error_hdf5(ef_ctx *ctx, const char *call, const char *file, int line);

const char *ef_error_message(const ef_ctx *ctx);
int ef_error_code(const ef_ctx *ctx);
void ef_error_clear(ef_ctx *ctx);

/* Propagate a non-OK status. */
#define EF_CHECK(call)                                                     \
  do {                                                                     \
    int ef_rc_ = (call);                                                   \
    if (ef_rc_ != EF_OK) return ef_rc_;                                    \
  } while (0)

/* Store status in rc and jump to a cleanup label on failure. */
#define EF_GOTO(rc, call, label)                                           \
  do {                                                                     \
    (rc) = (call);                                                         \
    if ((rc) != EF_OK) goto label;                                         \
  } while (0)

#define EF_CHECK_MPI(ctx, call)                                            \
  do {                                                                     \
    int ef_mrc_ = (call);                                                  \
    if (ef_mrc_ != MPI_SUCCESS)                                            \
      return ef_error_mpi((ctx), ef_mrc_, #call, __FILE__, __LINE__);      \
  } while (0)

#define EF_GOTO_MPI(ctx, rc, call, label)                                  \
  do {                                                                     \
    int ef_mrc_ = (call);                                                  \
    if (ef_mrc_ != MPI_SUCCESS) {                                          \
      (rc) = ef_error_mpi((ctx), ef_mrc_, #call, __FILE__, __LINE__);      \
      goto label;                                                          \
    }                                                                      \
  } while (0)

/* HDF5 calls return a negative value on failure (herr_t or hid_t). */
#define EF_CHECK_H5(ctx, call)                                             \
  do {                                                                     \
    if ((call) < 0) return ef_error_hdf5((ctx), #call, __FILE__, __LINE__); \
  } while (0)

#define EF_GOTO_H5(ctx, rc, call, label)                                   \
  do {                                                                     \
    if ((call) < 0) {                                                      \
      (rc) = ef_error_hdf5((ctx), #call, __FILE__, __LINE__);              \
      goto label;                                                          \
    }                                                                      \
  } while (0)

/* Allocation check that never compiles out. */
#define EF_GOTO_ALLOC(ctx, rc, ptr, what, label)                           \
  do {                                                                     \
    if ((ptr) == NULL) {                                                   \
      (rc) = ef_error_set((ctx), EF_ERR_NOMEM, "out of memory allocating %s", \
                          (what));                                         \
      goto label;                                                          \
    }                                                                      \
  } while (0)

#endif
