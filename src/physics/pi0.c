/* The built-in pi0 process: gamma p -> Delta+(1232) -> pi0 p at the
 * physics.* settings, models M1, PS, M2 (model.c), the CLAS-like detector
 * of the detector.* keys (detector.c) and its generator (generator.c);
 * space (cos_theta, phi) x T0..T3 (ef_space_pi0). docs/physics.md. */
#include <math.h>
#include <stdlib.h>

#include "ensfold/detector.h"
#include "ensfold/error.h"
#include "ensfold/generator.h"
#include "ensfold/model.h"
#include "process_impl.h"

typedef struct {
  ef_physics_params physics;
  ef_detector_params detector;
  ef_model model[EF_N_MODELS];
  ef_detector *det; /* NULL until build_detector */
} pi0_state;

static int pi0_create(ef_ctx *ctx, void **state, const ef_config *cfg, const ef_events *mc,
                      ef_space *space) {
  (void)mc;
  pi0_state *s = calloc(1, sizeof *s);
  if (!s) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the pi0 process");
  s->physics = cfg->physics;
  s->detector = cfg->detector;
  for (int m = 0; m < EF_N_MODELS; m++) ef_model_init(&s->model[m], (ef_model_id)m, &s->physics);
  ef_space_pi0(space);
  *state = s;
  return EF_OK;
}

static int pi0_build_detector(ef_ctx *ctx, void *state) {
  pi0_state *s = state;
  return ef_detector_create(ctx, &s->det, &s->physics, &s->detector);
}

static void pi0_destroy(void *state) {
  pi0_state *s = state;
  if (!s) return;
  ef_detector_destroy(s->det);
  free(s);
}

static int pi0_generate(ef_ctx *ctx, const void *state, int model, ef_rng *r, size_t n,
                        ef_event_kind kind, unsigned what, ef_process_progress_fn progress,
                        void *progress_arg, ef_events *out) {
  const pi0_state *s = state;
  return ef_generate(ctx, s->det, &s->model[model], r, n, kind, what, progress, progress_arg,
                     out);
}

static double density(const void *arg, double c, double f) { return ef_model_density(arg, c, f); }

static double pi0_bin_probability(const void *state, int model, const ef_binning *b, int k) {
  const pi0_state *s = state;
  return ef_binning_integrate(b, k, density, &s->model[model]);
}

/* P(T | v) averaged over an 8 x 8 grid of the bin. */
static void pi0_bin_efficiency(const void *state, const ef_binning *b, int k, double *eff) {
  const pi0_state *s = state;
  const int g = 8;
  double lo[2], hi[2], sum[EF_N_TOPO] = {0, 0, 0, 0}, prob[EF_N_TOPO];
  ef_binning_range(b, k, lo, hi);
  double c_lo = lo[0], c_hi = hi[0], f_lo = lo[1], f_hi = hi[1];
  for (int a = 0; a < g; a++)
    for (int q = 0; q < g; q++) {
      ef_detector_prob(s->det, c_lo + (a + 0.5) * (c_hi - c_lo) / g,
                       f_lo + (q + 0.5) * (f_hi - f_lo) / g, prob);
      for (int t = 0; t < EF_N_TOPO; t++) sum[t] += prob[t];
    }
  for (int t = 0; t < EF_N_TOPO; t++) eff[t] = sum[t] / (g * g);
}

static void pi0_sample(const void *state, int model, ef_rng *r, double *v) {
  const pi0_state *s = state;
  ef_model_sample(&s->model[model], r, &v[0], &v[1]);
}

/* beam_energy agrees within this relative tolerance: a float32 attribute
 * holding the same value is off by at most half a float32 ulp (6e-8
 * relative); beam energies that differ in physics differ by far more. */
#define BEAM_ENERGY_RTOL 1e-6

static int pi0_check_events(ef_ctx *ctx, const void *state, const ef_events *ev,
                            const char *path, const char *key) {
  const pi0_state *s = state;
  if (!ef_space_is_pi0(&ev->space))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s (%s): declares %d observables (first '%s') and %d categories; "
                        "campaigns unfold the pi0 space only: observables cos_theta (bounded "
                        "[-1, 1]) and phi (periodic (-pi, pi]), categories T0 (blind), T1, T2, "
                        "T3 (docs/formats.md)", path, key, ev->space.dim, ev->space.axis[0].name,
                        ev->space.n_cat);
  double e = ev->beam_energy, c = s->physics.beam_energy;
  if (isfinite(e) && fabs(e - c) > BEAM_ENERGY_RTOL * fmax(fabs(e), fabs(c)))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s (%s): made at beam energy %.9g GeV but physics.beam_energy is %.9g "
                        "(they must agree within a relative %g)", path, key, e, c,
                        BEAM_ENERGY_RTOL);
  return EF_OK;
}

static const char *pi0_model_name(int model) { return ef_model_name((ef_model_id)model); }

const ef_process_ops ef_process_pi0 = {
    .name = "pi0", .create = pi0_create, .build_detector = pi0_build_detector,
    .destroy = pi0_destroy, .n_models = EF_N_MODELS, .default_fills = 6u, .model_name = pi0_model_name,
    .generate = pi0_generate, .bin_probability = pi0_bin_probability,
    .bin_efficiency = pi0_bin_efficiency, .sample = pi0_sample,
    .check_events = pi0_check_events};
