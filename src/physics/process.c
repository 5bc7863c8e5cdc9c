/* The process registry and the calls through a plug-in's table. */
#include "process_impl.h"

#include <stdlib.h>

#include "ensfold/error.h"

struct ef_process {
  const ef_process_ops *ops;
  void *state;
  ef_space space;
  int has_detector;
};

static const ef_process_ops *const kinds[] = {&ef_process_pi0, &ef_process_gauss,
                                               &ef_process_files};
#define N_KINDS ((int)(sizeof kinds / sizeof kinds[0]))

int ef_process_kinds(void) { return N_KINDS; }
const char *ef_process_kind_name(int kind) {
  return kind >= 0 && kind < N_KINDS ? kinds[kind]->name : NULL;
}
int ef_process_kind_n_models(int kind) {
  return kind >= 0 && kind < N_KINDS ? kinds[kind]->n_models : 0;
}
unsigned ef_process_kind_default_fills(int kind) {
  return kind >= 0 && kind < N_KINDS ? kinds[kind]->default_fills : 0u;
}
const char *ef_process_kind_model_name(int kind, int slot) {
  if (slot < 0 || slot >= ef_process_kind_n_models(kind)) return NULL;
  return kinds[kind]->model_name(slot);
}

int ef_process_create(ef_ctx *ctx, ef_process **out, const ef_config *cfg,
                      const ef_events *mc) {
  *out = NULL;
  if (cfg->process < 0 || cfg->process >= N_KINDS)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "process kind %d unknown", cfg->process);
  if (kinds[cfg->process]->n_models > EF_N_MODELS) /* the priors and plan hold EF_N_MODELS */
    return ef_error_set(ctx, EF_ERR_INTERNAL, "process %s: %d models, at most %d",
                        kinds[cfg->process]->name, kinds[cfg->process]->n_models, EF_N_MODELS);
  ef_process *p = calloc(1, sizeof *p);
  if (!p) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the process");
  p->ops = kinds[cfg->process];
  int rc = p->ops->create(ctx, &p->state, cfg, mc, &p->space);
  if (rc != EF_OK) {
    free(p);
    return rc;
  }
  *out = p;
  return EF_OK;
}

int ef_process_need_detector(ef_ctx *ctx, ef_process *p) {
  if (p->has_detector) return EF_OK;
  EF_CHECK(p->ops->build_detector(ctx, p->state));
  p->has_detector = 1;
  return EF_OK;
}

void ef_process_destroy(ef_process *p) {
  if (!p) return;
  p->ops->destroy(p->state);
  free(p);
}

const char *ef_process_name(const ef_process *p) { return p->ops->name; }
const ef_space *ef_process_space(const ef_process *p) { return &p->space; }
int ef_process_n_models(const ef_process *p) { return p->ops->n_models; }
int ef_process_has_detector(const ef_process *p) { return p->has_detector; }

const char *ef_process_model_name(const ef_process *p, int model) {
  return model >= 0 && model < p->ops->n_models ? p->ops->model_name(model) : "?";
}

int ef_process_generate(ef_ctx *ctx, const ef_process *p, int model, ef_rng *r, size_t n,
                        ef_event_kind kind, unsigned what, ef_process_progress_fn progress,
                        void *progress_arg, ef_events *out) {
  if (!p->has_detector)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "process %s: generation without the detector",
                        p->ops->name);
  if (model < 0 || model >= p->ops->n_models)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "process %s: no model %d", p->ops->name, model);
  return p->ops->generate(ctx, p->state, model, r, n, kind, what, progress, progress_arg, out);
}

double ef_process_bin_probability(const ef_process *p, int model, const ef_binning *b, int k) {
  return p->ops->bin_probability(p->state, model, b, k);
}

void ef_process_bin_efficiency(const ef_process *p, const ef_binning *b, int k, double *eff) {
  p->ops->bin_efficiency(p->state, b, k, eff);
}

int ef_process_efficiency_at(const ef_process *p, const double *v, double *eff) {
  if (!p->ops->efficiency_at) return 0;
  p->ops->efficiency_at(p->state, v, eff);
  return 1;
}

void ef_process_sample(const ef_process *p, int model, ef_rng *r, double *v) {
  p->ops->sample(p->state, model, r, v);
}

int ef_process_check_events(ef_ctx *ctx, const ef_process *p, const ef_events *ev,
                            const char *path, const char *key) {
  return p->ops->check_events(ctx, p->state, ev, path, key);
}
