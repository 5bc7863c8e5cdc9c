/* An unfolding method behind one interface: a table of what the campaign
 * needs to know and do, and one registry (src/campaign/method.c). Plan,
 * unit, statistics and output ask the registry; none of them asks which
 * method it runs. A method's id is its index in the registry, the order of
 * campaign.methods' names (include/ensfold/config.h, EF_METHOD_*), which
 * numbers units and seeds: new methods go at the end. */
#ifndef ENSFOLD_METHOD_H
#define ENSFOLD_METHOD_H

#include "ensfold/inputs.h"
#include "ensfold/plan.h"

/* Points of each loss curve in a unit's result. */
#define EF_UNIT_LOSS_POINTS 50

/* A unit's result, its named parts (views into one result row; unit.h
 * lays the row out). nv = vertex bins, L = EF_UNIT_LOSS_POINTS. */
typedef struct {
  double *hist;   /* (nv) unfolded events per vertex bin */
  double *eff;    /* (K, nv) P(category | vertex bin) as the method sees it */
  double *loss_d; /* (L) a training's first loss curve (0 when has_curves is 0) */
  double *loss_g; /* (L) its second loss curve */
  double *own;    /* (nv) the method's own answer in every bin, blind ones included
                   * (NaN when has_own is 0) */
  int n_unbinned; /* N = campaign.unbinned */
  double *ux;     /* (N, D) unbinned events: points (NULL when N is 0) */
  double *uw;     /* (N) their weights: a histogram of ux weighted by uw is the result
                   * (has_samples: G's own answer) */
  int n_events;   /* n_mc with campaign.event_weights, else 0 */
  double *ew;     /* (n_mc) every MC event's weight: a histogram of the MC's vertices
                   * weighted by ew is hist (NULL when n_events is 0) */
  int n_iter;     /* I: the most iterations a method of the campaign records */
  double *iter_hist; /* (I, nv) the result after each iteration (NaN beyond the
                      * method's own count, all NaN for a method without) */
  double *iter_ess;  /* (I) the MC weights' effective size after each iteration, events
                      * (a reweighting method; NaN beyond its count and for others) */
} ef_unit_parts;

typedef struct {
  const char *name;    /* as in campaign.methods and the result file */
  int deterministic;   /* the result is a function of the replica's data alone: one
                        * ensemble member, never retried, no training part */
  int has_own;         /* fills parts.own (else the unit code writes NaN) */
  int has_curves;      /* fills parts.loss_d / loss_g (else 0) */
  int has_samples;     /* fills parts.ux / uw with samples of its own (else the unit code
                        * reweights MC events to parts.hist) */
  int event_weights;   /* fills parts.ew: it reweights the MC's events itself (else the
                        * unit code spreads hist over them bin by bin, or writes NaN for a
                        * method with has_samples: its samples are not the MC's) */
  int shares_training; /* the fills of one (method, replica, member) share what they
                        * train (the GANs' networks, OmniFold's iterations): they get an
                        * affinity key (plan.h), so one rank takes them in a row */
  int learns_efficiency; /* parts.eff comes from its own trained model (summary
                          * checks it against the exact maps); 0: from the MC */
  double cost;         /* relative cost of one unit, for scheduling */
  /* A workspace per rank, sized once for cfg and the inputs; methods with the
   * same ws_create share one. May be NULL (no workspace). */
  int (*ws_create)(ef_ctx *ctx, void **ws, const ef_config *cfg, const ef_inputs *in);
  void (*ws_destroy)(void *ws);
  /* Refuse inputs that would make every unit of this method fail, before
   * any unit runs (NULL: nothing to check). files: bit 0 the data, bit 1
   * the MC came from a file. */
  int (*check_inputs)(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, unsigned files);
  /* Run unit u (attempt 0, 1, ...: a retry draws other random numbers).
   * weights: scratch of max(n_data, n_mc) doubles. Writes out's parts (the
   * unit code fills those the flags above say the method does not). */
  int (*run)(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in, const ef_unit *u,
             int attempt, void *ws, double *weights, ef_unit_parts *out);
  /* Its settings in words, recorded beside its per-event weights (NULL:
   * none beyond the config the result file holds). */
  void (*describe)(const ef_config *cfg, char *buf, size_t len);
  /* How many results after each iteration it records in parts.iter_hist
   * (NULL: none; the unit code writes NaN). */
  int (*n_iterations)(const ef_config *cfg);
} ef_method;

/* The registry: methods 0 .. ef_method_count() - 1. */
int ef_method_count(void);
const ef_method *ef_method_get(int id); /* NULL outside the registry */

#endif
