/* Running one work unit: bootstrap weights for its replica, then its
 * method, into the unfolded histogram over the vertex bins. The result
 * depends only on the config, the inputs and the unit (never on the rank). */
#ifndef ENSFOLD_UNIT_H
#define ENSFOLD_UNIT_H

#include "ensfold/inputs.h"
#include "ensfold/plan.h"

typedef struct ef_unit_ws ef_unit_ws;

/* Scratch sized once per rank for the inputs (no allocation per unit except
 * a bootstrapped response when campaign.bootstrap_mc is on). */
int ef_unit_ws_create(ef_ctx *ctx, ef_unit_ws **out, const ef_inputs *in);
void ef_unit_ws_destroy(ef_unit_ws *ws);

/* result: (n_vertex) unfolded events per vertex bin. */
int ef_unit_run(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
                ef_unit_ws *ws, double *result);

/* Poisson(1) bootstrap weight of each of n events for replica r >= 1 into
 * w (n), from the stream (seed, purpose, r) alone: every method and fill
 * model sees the same weights for replica r. */
void ef_bootstrap_weights(uint64_t seed, uint32_t purpose, int replica, size_t n, double *w);

#endif
