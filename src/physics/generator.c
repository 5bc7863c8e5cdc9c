/* Event generation: model -> vertex -> detector -> (topology, reco, prob). */
#include "ensfold/generator.h"

#include <stdio.h>
#include <string.h>

int ef_generate(ef_ctx *ctx, const ef_detector *det, const ef_model *model, ef_rng *r,
                size_t n, ef_event_kind kind, unsigned what, ef_progress_fn progress,
                void *progress_arg, ef_events *out) {
  if (kind == EF_KIND_MC) what |= EF_EVENTS_VERTEX | EF_EVENTS_PROB;
  what &= EF_EVENTS_VERTEX | EF_EVENTS_PROB;
  ef_space pi0;
  ef_space_pi0(&pi0);
  EF_CHECK(ef_events_alloc(ctx, out, &pi0, n, kind, what));
  snprintf(out->model, sizeof out->model, "%s", ef_model_name(model->id));
  out->beam_energy = ef_detector_kin(det)->e_beam;
  for (size_t i = 0; i < n; i++) {
    double c, f, prob[4], reco[2];
    ef_model_sample(model, r, &c, &f);
    int t = ef_detector_simulate(det, r, c, f, prob, reco);
    out->topology[i] = (int8_t)t;
    out->reco[2 * i] = reco[0];
    out->reco[2 * i + 1] = reco[1];
    if (out->vertex) {
      out->vertex[2 * i] = c;
      out->vertex[2 * i + 1] = f;
    }
    if (out->prob)
      for (int k = 0; k < 4; k++) out->prob[4 * i + k] = (float)prob[k];
    if (progress && (i + 1) % 65536 == 0) progress(progress_arg, i + 1, n);
  }
  if (progress) progress(progress_arg, n, n);
  return EF_OK;
}

void ef_events_topology_counts(const ef_events *ev, double *counts) {
  memset(counts, 0, (size_t)ev->space.n_cat * sizeof *counts);
  for (size_t i = 0; i < ev->n; i++) counts[ev->topology[i]] += ev->weight ? ev->weight[i] : 1.0;
}

void ef_events_prob_summary(const ef_events *ev, double *mean, double *mixed) {
  const int K = ev->space.n_cat;
  memset(mean, 0, (size_t)K * sizeof *mean);
  size_t n_mixed = 0;
  for (size_t i = 0; i < ev->n; i++) {
    int one_hot = 0;
    for (int k = 0; k < K; k++) {
      float p = ev->prob[(size_t)K * i + (size_t)k];
      mean[k] += p;
      one_hot += p == 1.0f;
    }
    n_mixed += !one_hot;
  }
  for (int k = 0; k < K; k++) mean[k] /= (double)(ev->n ? ev->n : 1);
  *mixed = ev->n ? (double)n_mixed / (double)ev->n : 0.0;
}
