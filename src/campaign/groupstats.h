/* Group statistics and closure policy of a campaign (rank 0): per (method,
 * fill model) group the replica statistics, the uncertainty parts, the
 * closure against the truth per bin class, the method's own answer and the
 * efficiency closure; per pair of fills of a method the paired difference.
 * output.c writes what this computes. Internal to src/campaign. */
#ifndef ENSFOLD_GROUPSTATS_H
#define ENSFOLD_GROUPSTATS_H

#include "ensfold/output.h"
#include "ensfold/stats.h"
#include "ensfold/uncertainty.h"

/* Efficiency closure thresholds: cells (topology, vertex bin) are compared
 * where the exact total efficiency 1 - P(T0) is at least EFF_MIN_TOTAL (the
 * blind bins carry no information on the detector), and a cell counts as off
 * when |eff_unit - eff_exact| > EFF_TOLERANCE. */
#define EFF_MIN_TOTAL EF_OUTPUT_EFF_MIN_TOTAL
#define EFF_TOLERANCE EF_OUTPUT_EFF_TOLERANCE

typedef struct {
  double max_abs, mean_abs, above; /* above: cells off per unit (mean over the units) */
  int n_units;                     /* units compared (ok ones) */
} eff_closure;

/* Parts of the uncertainty in the /summary table: the median over a bin
 * class of part / |mean| (the model part: sum of part / sum of |mean|). */
enum { PART_STAT, PART_TRAINING, PART_CENTRAL, PART_MODEL, N_PARTS };

typedef struct {
  int method, fill, n_rep;   /* replicas used (r >= 1, every member ok) */
  int members;               /* ensemble members per replica */
  double *mean, *sigma, *cov, *corr, *pulls; /* (n), (n), (n, n), (n, n), (n): the replica
                                              * statistics; pulls with parts.central */
  ef_parts parts;            /* statistical, training, central sigma (n each) */
  int n_proj;                /* product binnings: the projections (projection.h); 0 for pi0 */
  double *proj_phi;          /* (n_proj, 2): each one's training share over every vertex bin
                              * [0] and over the measured ones [1] (ef_proj_share); 0 for a
                              * deterministic method, NaN unknown */
  double *model;             /* (n) the method's spread over fill models, NaN with one */
  double rel[2][N_PARTS];    /* [measured, unmeasured][part] median relative sigma */
  ef_closure meas, unmeas;   /* at parts.central, the sigma of the central value */
  /* the method's own answer in every bin (methods with has_own) */
  int has_own;
  double *own_mean, *own_model; /* (n) mean over replicas and members; spread over fills */
  ef_parts own_parts;           /* its sigma parts (n each) */
  ef_closure cls[2][2];         /* [result, own][hole, open]: closure per unmeasured class */
  double cls_model[2][2];       /* [result, own][hole, open]: median relative model part */
  eff_closure eff[2];        /* [0] replica 0, [1] replicas >= 1; NaN without exact maps */
  double refold_chi2;        /* the mean against the data at detector level (refold.h);
                              * NaN without statistics */
  int refold_ndf;            /* detector bins in it */
} group_stats;

typedef struct {
  int method, fa, fb, n_rep;
  double *mean, *sigma, *cov, *signif;
} diff_stats;

/* Everything the result file's statistics hold. */
typedef struct {
  int ng, ndiff, n_cells;  /* groups, fill pairs, efficiency cells compared */
  group_stats *gs;         /* (ng) */
  diff_stats *ds;          /* (ndiff) */
  unsigned char *measured; /* (nv) 1: measured (ef_inputs_unfolded) */
  unsigned char *cls;      /* (nv) ef_binning_classify's classes */
  unsigned char *cell;     /* (4, nv) 1: efficiency cell compared */
  unsigned char *refold;   /* (nd) 1: detector bin in the refold chi2 (root) */
  double *data_hist;       /* (nd) the data's seen events per detector bin (root;
                            * /inputs/data_hist) */
  int nd;                  /* their length */
} ef_group_set;

/* Fill out: the groups' and pairs' identities on every rank (the writer's
 * collective calls need them), the statistics on the rank with root != 0
 * (others leave them empty). out is valid to free even on an error. */
int ef_groupstats_compute(ef_ctx *ctx, const ef_output_data *d, int root, ef_group_set *out);
void ef_groupstats_free(ef_group_set *s);

#endif
