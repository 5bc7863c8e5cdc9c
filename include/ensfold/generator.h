/* The built-in event generator: vertex from a model, then the detector. */
#ifndef ENSFOLD_GENERATOR_H
#define ENSFOLD_GENERATOR_H

#include "ensfold/detector.h"
#include "ensfold/events.h"
#include "ensfold/model.h"

/* Generate n events from one stream r into *out (allocated here).
 * what: EF_EVENTS_VERTEX | EF_EVENTS_PROB to keep the truth and the
 * probability vectors (MC files always keep both). */
typedef void (*ef_progress_fn)(void *arg, size_t done, size_t total);

/* progress (may be NULL) is called every 65536 events and at the end. */
int ef_generate(ef_ctx *ctx, const ef_detector *det, const ef_model *model,
                ef_rng *r, size_t n, ef_event_kind kind, unsigned what,
                ef_progress_fn progress, void *progress_arg, ef_events *out);

/* Sum of weights (1 per event without weights) per topology. */
void ef_events_topology_counts(const ef_events *ev, double *counts); /* (K) */
/* Mean probability vector (MC) and the fraction of events whose vector is
 * not one-hot ("mixed"). Requires ev->prob. */
void ef_events_prob_summary(const ef_events *ev, double *mean, double *mixed); /* mean (K) */

#endif
