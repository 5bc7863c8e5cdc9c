/* A process: the physics behind an event space, as generation and the
 * campaign use it. It declares its space (observables and categories),
 * names its models, draws events from a model through its detector with
 * the exact category probabilities, and gives each model's normalised
 * density integrated over a bin (the truth of generated data, the fill
 * models' priors), the exact efficiency per bin and single vertices of a
 * model (the GAN's fill samples). The campaign and the generate command
 * call these functions and never ask which process runs.
 *
 * The built-in pi0 process (gamma p -> Delta+ -> pi0 p at the physics.*
 * settings with the CLAS-like detector of the detector.* keys; models M1,
 * PS, M2; docs/physics.md) is src/physics/pi0.c. A process is one file
 * that fills an ef_process_ops table (src/physics/process_impl.h). */
#ifndef ENSFOLD_PROCESS_H
#define ENSFOLD_PROCESS_H

#include <stddef.h>

#include "ensfold/binning.h"
#include "ensfold/config.h"
#include "ensfold/ctx.h"
#include "ensfold/events.h"
#include "ensfold/rng.h"
#include "ensfold/space.h"

typedef struct ef_process ef_process;

/* The built-in processes by kind, in the order of the `process` key's
 * choices (EF_PROCESS_PI0, EF_PROCESS_GAUSS), and their models' names by
 * slot (data.model, mc.model and campaign.fill_models hold slots). */
int ef_process_kinds(void);
const char *ef_process_kind_name(int kind);
int ef_process_kind_n_models(int kind);
/* The fill models (a slot mask) when campaign.fill_models is not given. */
unsigned ef_process_kind_default_fills(int kind);
const char *ef_process_kind_model_name(int kind, int slot); /* NULL past the end */

/* The process of cfg (the `process` key), without its detector: the space, the
 * models' densities and samples, the file checks. mc: the MC events read
 * from mc.file, or NULL (the files process takes its space and its models
 * from them and needs them; the built-in processes ignore them). mc must
 * outlive the process. */
int ef_process_create(ef_ctx *ctx, ef_process **out, const ef_config *cfg,
                      const ef_events *mc);
/* Build the detector if p has none yet (generation and exact efficiencies
 * need it; for pi0 a table that takes seconds). */
int ef_process_need_detector(ef_ctx *ctx, ef_process *p);
void ef_process_destroy(ef_process *p);

const char *ef_process_name(const ef_process *p);
const ef_space *ef_process_space(const ef_process *p);
int ef_process_n_models(const ef_process *p);
const char *ef_process_model_name(const ef_process *p, int model);
/* Does p have its detector (ef_process_need_detector)? */
int ef_process_has_detector(const ef_process *p);

/* n events of model from stream r through the detector into *out
 * (allocated here); what as for ef_events_alloc (MC always keeps its
 * vertices and probabilities); progress may be NULL. Needs the detector. */
typedef void (*ef_process_progress_fn)(void *arg, size_t done, size_t total);
int ef_process_generate(ef_ctx *ctx, const ef_process *p, int model, ef_rng *r, size_t n,
                        ef_event_kind kind, unsigned what, ef_process_progress_fn progress,
                        void *progress_arg, ef_events *out);
/* The normalised density of model integrated over bin k of b (b's axes
 * are the space's observables): a probability. */
double ef_process_bin_probability(const ef_process *p, int model, const ef_binning *b, int k);
/* The exact category probabilities averaged over bin k of b: eff (K).
 * Needs the detector. */
void ef_process_bin_efficiency(const ef_process *p, const ef_binning *b, int k, double *eff);
/* The exact category probabilities at vertex v: eff (K); returns 0 (eff
 * untouched) for a process that gives only bin averages. Needs the
 * detector. */
int ef_process_efficiency_at(const ef_process *p, const double *v, double *eff);
/* One vertex of model from stream r: v (dim). */
void ef_process_sample(const ef_process *p, int model, ef_rng *r, double *v);
/* Does an event file's content fit this process's settings beyond its
 * space (pi0: the beam energy)? path and key name the file in messages. */
int ef_process_check_events(ef_ctx *ctx, const ef_process *p, const ef_events *ev,
                            const char *path, const char *key);

#endif
