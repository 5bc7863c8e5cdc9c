/* Running one work unit: bootstrap weights for its replica, then its
 * method, into the unfolded histogram over the vertex bins. The result
 * depends only on the config, the inputs and the unit (never on the rank). */
#ifndef ENSFOLD_UNIT_H
#define ENSFOLD_UNIT_H

#include "ensfold/inputs.h"
#include "ensfold/method.h"
#include "ensfold/plan.h"

typedef struct ef_unit_ws ef_unit_ws;

/* Scratch sized once per rank for the inputs and the methods of cfg (each
 * method's workspace from the registry, one per distinct ws_create): no
 * allocation per unit except a bootstrapped response when
 * campaign.bootstrap_mc is on. */
int ef_unit_ws_create(ef_ctx *ctx, ef_unit_ws **out, const ef_config *cfg, const ef_inputs *in);
void ef_unit_ws_destroy(ef_unit_ws *ws);

/* A unit's result row, ef_unit_result_len(in) doubles, nv = vertex bins,
 * K = categories of the event space (4 for pi0), L = EF_UNIT_LOSS_POINTS,
 * E = (1 + K) nv:
 *   [0, nv)                 unfolded events per vertex bin
 *   [nv, E)                 efficiency map (K, nv): P(category | vertex bin)
 *                           as the unit's method sees it (IBU: the MC's mean
 *                           probability vectors; GAN: its own networks)
 *   [E, E + L)              first loss curve (0 for a method without curves)
 *   [E + L, E + 2 L)        second loss curve (0 likewise)
 *   [E + 2 L, E + 2 L + nv) the method's own answer per vertex bin, blind
 *                           bins included (a GAN: G's samples; NaN for a
 *                           method without one: IBU has none where it does
 *                           not measure)
 *   then N = campaign.unbinned events unbinned (D = the space's observables):
 *   [X, X + N D)            their points (N, D)
 *   [X + N D, X + N (D + 1)) their weights: histogrammed with them the points
 *                           give the unit's result in its binning (a GAN: its
 *                           own answer), any other binning afterwards
 *   then n_mc weights with campaign.event_weights (else none):
 *   [Y, Y + n_mc)           every MC event's weight, Y = X + N (D + 1): with
 *                           them the MC's vertices histogram to the result
 *                           (NaN for a GAN unit: method.h, event_weights)
 *   then I (n_vertex) results after each iteration, I = the most a method
 *   of the campaign records (method.h, n_iterations; else none):
 *   [Z, Z + I nv)           iteration i's result (NaN past the method's
 *                           own count), Z = Y + the event weights
 *   [Z + I nv, Z + I (nv + 1)) the MC weights' effective size after iteration
 *                           i, events (NaN likewise)
 * ef_unit_row_parts names them (include/ensfold/method.h). */
size_t ef_unit_result_len(const ef_inputs *in);
/* Where the loss curves start in a row: E above. */
size_t ef_unit_loss_offset(const ef_inputs *in);
/* The named parts of a result row (unit.h's layout for in). */
ef_unit_parts ef_unit_row_parts(double *row, const ef_inputs *in);
/* The values of u's row that must be finite for the unit to count as a
 * success, a prefix: up to the loss curves, and for a method with an own
 * answer that answer and the unbinned events too. The event weights and
 * the iteration parts are NaN by design for the methods without them (a
 * GAN unit beside OmniFold), so they are not looked at. */
size_t ef_unit_finite_len(const ef_unit *u, const ef_inputs *in);

/* attempt 0, 1, ...: a retry of a unit whose training diverged uses a fresh
 * random stream (a deterministic method ignores it). Runs u's method from
 * the registry. */
int ef_unit_run(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
                int attempt, ef_unit_ws *ws, double *result);

/* 1 when a retry (a higher attempt) of u draws other random numbers, 0 when
 * u's method is deterministic: retrying it would only repeat the same
 * failure. */
int ef_unit_retry_differs(const ef_unit *u);
/* The registry's deterministic flag of a method (0 for an unknown id). */
int ef_method_deterministic(int method);

/* Poisson(1) bootstrap weight of each of n events for replica r >= 1 into
 * w (n), from the stream (seed, purpose, r) alone: every method and fill
 * model sees the same weights for replica r. */
void ef_bootstrap_weights(uint64_t seed, uint32_t purpose, int replica, size_t n, double *w);

#endif
