/* The campaign result file: one HDF5 file written with parallel HDF5
 * (MPI-IO), self-describing, laid out as docs/formats.md describes. It is
 * written to a temporary name unique to the run and renamed into place when
 * complete, so a reader never sees half a file and an old result is never
 * damaged. */
#ifndef ENSFOLD_OUTPUT_H
#define ENSFOLD_OUTPUT_H

#include <stdint.h>
#include <stdio.h>

#include "ensfold/identity.h"
#include "ensfold/inputs.h"
#include "ensfold/plan.h"

/* Efficiency closure: cells (topology, vertex bin) are compared where the
 * exact total efficiency 1 - P(T0) is at least EF_OUTPUT_EFF_MIN_TOTAL (blind
 * bins say nothing about the detector); a cell is off when |eff_unit -
 * eff_exact| > EF_OUTPUT_EFF_TOLERANCE. Both are stored in /summary too. */
#define EF_OUTPUT_EFF_MIN_TOTAL 0.05
#define EF_OUTPUT_EFF_TOLERANCE 0.03

typedef struct {
  const ef_config *cfg;
  const char *config_text;   /* the resolved config (ef_config_dump) */
  const ef_identity *identity; /* config and input hashes, stored as attributes */
  const ef_plan *plan;
  const ef_inputs *in;
  /* rank 0 only (other ranks may pass NULL): */
  const double *results;     /* (n_units, result_len): each row a unit's result as
                              * include/ensfold/unit.h lays it out (histogram,
                              * efficiency map, loss curves); rows of failed units
                              * are NaN */
  size_t result_len;         /* doubles per row, ef_unit_result_len(in) (every rank) */
  const int32_t *status;     /* (n_units) 0 ok, else the failing ef_status */
  const double *wall_s;      /* (n_units) */
  const int32_t *rank;       /* (n_units) rank that ran the unit */
  const int32_t *attempts;   /* (n_units) tries the unit took */
} ef_output_data;

/* Collective over ef_ctx_comm(ctx). Computes the group statistics, paired
 * differences and closure metrics on rank 0 and writes everything. */
int ef_output_write(ef_ctx *ctx, const char *path, const ef_output_data *d);

/* The campaign identity a result file records (EF_ERR_INPUT, with a
 * message, when path is not a result file or records none). Serial. */
int ef_output_identity(ef_ctx *ctx, const char *path, ef_identity *out);
/* Remove temporary result files (path.tmp*) left by interrupted runs.
 * Only while holding the campaign's journal lock: then no other run can be
 * writing one. */
int ef_output_remove_stale(ef_ctx *ctx, const char *path);

/* The /summary columns of the unmeasured classes (written by output.c, read
 * by the summary): for the result, then the method's own answer, per class
 * (hole, open): chi2, ndf, coverage, relative spread over fill models. */
#define EF_OUTPUT_N_CLASS_COLS 16
extern const char *const ef_output_class_cols[EF_OUTPUT_N_CLASS_COLS];

/* `ensfold summary`: print the group table of a result file (serial). */
int ef_output_summary(ef_ctx *ctx, const char *path, FILE *out);

#endif
