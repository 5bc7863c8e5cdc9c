/* The statistical, training and model parts of a group's uncertainty. */
#include "ensfold/uncertainty.h"

#include <math.h>
#include <stdlib.h>

#include "ensfold/stats.h"

void ef_parts_free(ef_parts *p) {
  free(p->stat);
  free(p->training);
  free(p->central);
  p->stat = p->training = p->central = NULL;
}

/* The training share phi of each bin class (EF_CLASS_MEASURED, _HOLE, _OPEN
 * of ef_binning_classify) from the within-replica variance w (n) of M
 * members. */
static int pooled_fraction(ef_ctx *ctx, const double *w, size_t M, const double *s,
                           const double *mean, const unsigned char *cls, size_t n,
                           double phi[EF_PARTS_N_CLASSES]) {
  double *s2 = malloc((n ? n : 1) * sizeof *s2);
  unsigned char *mask = malloc(n ? n : 1);
  if (!s2 || !mask) {
    free(s2);
    free(mask);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the uncertainty parts");
  }
  for (size_t i = 0; i < n; i++) s2[i] = s[i] * s[i];
  for (int c = 0; c < EF_PARTS_N_CLASSES; c++) {
    for (size_t i = 0; i < n; i++) mask[i] = cls[i] == c;
    phi[c] = ef_stats_training_fraction(w, M, s2, mean, mask, n);
  }
  free(s2);
  free(mask);
  return EF_OK;
}

int ef_parts_compute(ef_ctx *ctx, const double *members, size_t R, size_t M, size_t n,
                     int deterministic, const double *mean, const double *s,
                     const unsigned char *cls, ef_parts *out) {
  *out = (ef_parts){NULL, NULL, NULL, {NAN, NAN, NAN}, 0};
  out->stat = malloc((n ? n : 1) * sizeof(double));
  out->training = malloc((n ? n : 1) * sizeof(double));
  out->central = malloc((n ? n : 1) * sizeof(double));
  if (!out->stat || !out->training || !out->central) {
    ef_parts_free(out);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the uncertainty parts");
  }
  if (deterministic || M < 2) {
    out->known = deterministic;
    for (int c = 0; c < EF_PARTS_N_CLASSES; c++) out->phi[c] = deterministic ? 0.0 : NAN;
    for (size_t i = 0; i < n; i++) {
      out->training[i] = deterministic ? 0.0 : NAN;
      out->stat[i] = deterministic ? s[i] : NAN;
      out->central[i] = s[i];
    }
    return EF_OK;
  }
  int rc = ef_stats_within(ctx, members, R, M, n, out->training); /* w, then its sqrt */
  if (rc == EF_OK) rc = pooled_fraction(ctx, out->training, M, s, mean, cls, n, out->phi);
  if (rc != EF_OK) {
    ef_parts_free(out);
    return rc;
  }
  out->known = 1;
  for (size_t i = 0; i < n; i++) {
    double phi = cls[i] < EF_PARTS_N_CLASSES ? out->phi[cls[i]] : NAN;
    if (isnan(phi)) phi = 0.0; /* no spread at all in the class: nothing to split */
    out->training[i] = sqrt(out->training[i]);
    out->stat[i] = sqrt(1.0 - phi) * s[i];
    out->central[i] = sqrt(1.0 - phi + phi / (double)R) * s[i];
  }
  return EF_OK;
}

void ef_parts_model(const double *const *means, int F, size_t n, double *out) {
  for (size_t i = 0; i < n; i++) {
    double avg = 0.0, ss = 0.0;
    for (int f = 0; f < F; f++) avg += means[f][i];
    avg /= F;
    for (int f = 0; f < F; f++) ss += (means[f][i] - avg) * (means[f][i] - avg);
    out[i] = F >= 2 ? sqrt(ss / F) : NAN;
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double ef_parts_median_rel(const double *part, const double *mean, const unsigned char *mask,
                           int want, size_t n, double *scratch) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (mask[i] == want && mean[i] != 0.0 && !isnan(part[i]))
      scratch[m++] = part[i] / fabs(mean[i]);
  if (m == 0) return NAN;
  qsort(scratch, m, sizeof *scratch, cmp_double);
  return m % 2 ? scratch[m / 2] : 0.5 * (scratch[m / 2 - 1] + scratch[m / 2]);
}

double ef_parts_sum_rel(const double *part, const double *mean, const unsigned char *mask,
                        int want, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; i++)
    if (mask[i] == want && !isnan(part[i]) && !isnan(mean[i])) {
      num += part[i];
      den += fabs(mean[i]);
    }
  return den > 0.0 ? num / den : NAN;
}
