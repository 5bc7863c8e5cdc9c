/* The settings of the built-in `gauss` process (the gauss.* keys;
 * docs/physics.md, "The gauss process"): D observables x1..xD with
 * Gaussian truth models, Gaussian resolution, and an acceptance. With
 * D = 1, full acceptance and the defaults it is the Gaussian example of
 * the OmniFold paper: MC truth N(0.2, 0.8), data truth N(0, 1), smearing
 * 0.5. */
#ifndef ENSFOLD_GAUSS_H
#define ENSFOLD_GAUSS_H

#include "ensfold/params.h"

#define EF_GAUSS_MAX_DIM 16
_Static_assert(EF_GAUSS_MAX_DIM <= EF_PARAM_VEC_MAX, "gauss lists are ef_real_vec");

/* A model: mean and width per observable, one correlation between every
 * pair (the correlation matrix is (1 - rho) I + rho 11^T, 0 <= rho < 1). */
typedef struct {
  ef_real_vec mean, width;
  double correlation;
} ef_gauss_model_params;

enum { EF_GAUSS_FULL = 0, EF_GAUSS_STANDARD = 1 };

/* Model slots: 0 data, 1 mc, 2 alt (the names of data.model etc.). */
#define EF_GAUSS_N_MODELS 3

typedef struct {
  int dim;
  ef_gauss_model_params model[EF_GAUSS_N_MODELS];
  ef_real_vec resolution; /* sigma of the Gaussian smearing per observable */
  int acceptance;         /* EF_GAUSS_FULL: every event seen; EF_GAUSS_STANDARD: below */
  /* standard: seen with probability eff_max / (1 + exp(-(x1 - eff_centre) / eff_width))
   * when xD < edge, never above the edge (blind region); a seen event loses xD
   * (reconstructed as 0) with probability partial */
  double eff_max, eff_centre, eff_width, edge, partial;
} ef_gauss_params;

#endif
