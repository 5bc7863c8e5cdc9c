/* What a process plug-in provides (include/ensfold/process.h): one table
 * of functions over its own state. src/physics/process.c holds the
 * registry and checks the common arguments; a plug-in only does physics. */
#ifndef ENSFOLD_PROCESS_IMPL_H
#define ENSFOLD_PROCESS_IMPL_H

#include "ensfold/process.h"

typedef struct {
  const char *name;
  /* state from the config, without the detector; *space filled */
  int (*create)(ef_ctx *ctx, void **state, const ef_config *cfg, const ef_events *mc,
                ef_space *space);
  int (*build_detector)(ef_ctx *ctx, void *state);
  void (*destroy)(void *state);
  int n_models;
  unsigned default_fills; /* slot mask */
  const char *(*model_name)(int model); /* model in [0, n_models) */
  int (*generate)(ef_ctx *ctx, const void *state, int model, ef_rng *r, size_t n,
                  ef_event_kind kind, unsigned what, ef_process_progress_fn progress,
                  void *progress_arg, ef_events *out);
  double (*bin_probability)(const void *state, int model, const ef_binning *b, int k);
  void (*bin_efficiency)(const void *state, const ef_binning *b, int k, double *eff);
  /* optional (NULL: none): the exact category probabilities at vertex v */
  void (*efficiency_at)(const void *state, const double *v, double *eff);
  void (*sample)(const void *state, int model, ef_rng *r, double *v);
  int (*check_events)(ef_ctx *ctx, const void *state, const ef_events *ev, const char *path,
                      const char *key);
} ef_process_ops;

extern const ef_process_ops ef_process_pi0, ef_process_gauss, ef_process_files;

#endif
