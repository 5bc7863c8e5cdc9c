/* Closure of the 1-D marginals of a product binning, for ensfold summary.
 * Internal to src/campaign. */
#ifndef ENSFOLD_MARGINALS_H
#define ENSFOLD_MARGINALS_H

#include <hdf5.h>
#include <stdio.h>

#include "ensfold/ctx.h"

/* For a result file with a product binning and a truth: per group and
 * observable, chi2/ndf of the projected mean against the projected truth
 * with the projected replica covariance's diagonal, and the coverage;
 * nothing for other files. */
int ef_summary_marginals(ef_ctx *ctx, hid_t file, const char *path, FILE *out);

/* The string attribute name of object obj under loc ("." for loc itself)
 * into buf; "" when absent or unreadable. */
void ef_summary_attr_text(hid_t loc, const char *obj, const char *name, char *buf, size_t len);

#endif
