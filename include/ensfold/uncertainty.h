/* The parts of a group's uncertainty (issue 17): statistical, training,
 * model. A group is (method, fill model); its replicas r = 1..R each hold M
 * ensemble members (trainings from different seeds on the same replica),
 * and the reported central value is the mean over the R x M units.
 *
 * Replica values y_r (the mean of a replica's members) spread by
 *   s2 = stat + train / M
 * where stat is the data's statistical variance and train one training's
 * noise. The members' spread within replicas estimates train (M >= 2); its
 * share phi of s2 is pooled over a class of bins (measured, interior holes,
 * open regions: ef_binning_classify),
 * assuming the training noise is the same fraction of the replica spread
 * in every bin of the class (docs/methods.md), so that
 *   sigma_stat    = sqrt(1 - phi) s
 *   sigma_central = sqrt(1 - phi + phi / R) s   (stat + the training noise
 *                   left in the mean over R replicas)
 * A deterministic method (IBU) has no training noise: phi = 0. With one
 * member the parts cannot be separated: phi, sigma_stat and the training
 * sigma are NaN ("unknown") and sigma_central is the replica spread s
 * (statistics and one training's noise together), never called statistics. */
#ifndef ENSFOLD_UNCERTAINTY_H
#define ENSFOLD_UNCERTAINTY_H

#include <stddef.h>

#include "ensfold/ctx.h"

/* The bin classes phi is pooled over: ef_binning_classify's (binning.h). */
#define EF_PARTS_N_CLASSES 3

typedef struct {
  double *stat;     /* (n) statistical sigma of the central value, NaN if unknown */
  double *training; /* (n) one training's sigma (the members' spread), 0 for a
                     * deterministic method, NaN if unknown */
  double *central;  /* (n) sigma of the central value: the closure's sigma */
  double phi[EF_PARTS_N_CLASSES]; /* training share of s2 per bin class: [EF_CLASS_MEASURED],
                                   * [EF_CLASS_HOLE], [EF_CLASS_OPEN] */
  int known;        /* 1: the parts are separated (deterministic, or M >= 2) */
} ef_parts;

/* members: (R, M, n), member k of replica r at (r M + k) n; s: (n) the
 * replica spread (sigma of the y_r), mean (n) the central value; cls (n)
 * each bin's class (ef_binning_classify: 0 measured, 1 hole, 2 open). out's vectors are allocated here (ef_parts_free).
 * Not collective. */
int ef_parts_compute(ef_ctx *ctx, const double *members, size_t R, size_t M, size_t n,
                     int deterministic, const double *mean, const double *s,
                     const unsigned char *cls, ef_parts *out);
void ef_parts_free(ef_parts *p);

/* The model part: for each bin the standard deviation (1/F) of the F >= 2
 * fill models' central values means[f] (n each) around their average. */
void ef_parts_model(const double *const *means, int F, size_t n, double *out);

/* Median over the bins with mask[i] == want (a 0/1 measured mask, or a
 * class of ef_binning_classify), mean_i != 0 and part_i a number, of
 * part_i / |mean_i|; NaN when there is none. scratch: (n). */
double ef_parts_median_rel(const double *part, const double *mean, const unsigned char *mask,
                           int want, size_t n, double *scratch);

/* Sum over the same bins of part_i over the sum of |mean_i|: the part
 * relative to the class's content (used for the model part, which is 0
 * in most bins of a class when the fills differ in a few). NaN when no
 * bin qualifies or the content is 0. */
double ef_parts_sum_rel(const double *part, const double *mean, const unsigned char *mask,
                        int want, size_t n);

#endif
