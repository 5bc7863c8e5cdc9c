/* Value types of the config shared by several modules' settings. */
#ifndef ENSFOLD_PARAMS_H
#define ENSFOLD_PARAMS_H

#define EF_PARAM_VEC_MAX 32 /* = EF_SPACE_MAX_DIM */

/* A list of numbers from the config: one per observable, or one for all
 * (n = 1); n = 0: not given (the key's documented default applies). */
typedef struct {
  int n;
  double v[EF_PARAM_VEC_MAX];
} ef_real_vec;

/* Element i of v (its only element when n = 1). */
static inline double ef_real_vec_at(const ef_real_vec *v, int i) {
  return v->v[v->n == 1 ? 0 : i];
}

#endif
