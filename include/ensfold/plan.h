/* The campaign plan: config -> work units.
 *
 * A unit is (method, fill model, replica, ensemble member). Its id is its
 * position in the canonical order (methods, then fill models, in the order
 * of EF_METHOD_* and ef_model_id; then replica 0..R; then member). Its seed
 * is derived from the campaign seed and its (method, replica, member) alone:
 * the units that differ only by the fill model share every random stream
 * (common random numbers), so their difference is the fill's effect. Units
 * are handed out costliest first, then by (method, replica, member), so
 * that those units follow one another (ties by id); results never depend
 * on that order. */
#ifndef ENSFOLD_PLAN_H
#define ENSFOLD_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "ensfold/config.h"

typedef struct {
  int32_t id;
  int32_t method;   /* EF_METHOD_* */
  int32_t fill;     /* ef_model_id */
  int32_t replica;  /* 0 = nominal */
  int32_t member;   /* ensemble member */
  uint64_t seed;    /* ef_plan_unit_seed(campaign seed, n): n numbers the (method,
                     * replica, member), so every fill model of it has the same
                     * seed (common random numbers) */
  double cost;      /* relative cost estimate, for scheduling only */
  int32_t affinity; /* ef_plan_affinity's key: the training it shares, -1 none */
} ef_unit;

typedef struct ef_plan ef_plan;

int ef_plan_create(ef_ctx *ctx, ef_plan **out, const ef_config *cfg);
void ef_plan_destroy(ef_plan *p);

size_t ef_plan_n_units(const ef_plan *p);
const ef_unit *ef_plan_unit(const ef_plan *p, size_t id);
/* Unit ids in dispatch order (costliest first). */
const int32_t *ef_plan_order(const ef_plan *p);

/* Groups are (method, fill model) pairs present in the plan, in id order. */
int ef_plan_n_groups(const ef_plan *p);
void ef_plan_group(const ef_plan *p, int g, int *method, int *fill);
int ef_plan_n_replicas(const ef_plan *p);  /* R + 1 (replica 0 included) */
int ef_plan_n_members(const ef_plan *p, int method);
/* Id of unit (method, fill, replica, member), or -1 if not in the plan. */
int32_t ef_plan_unit_id(const ef_plan *p, int method, int fill, int replica, int member);

/* Units with the same affinity key (>= 0) share work that a rank can keep
 * between them: the GAN methods' detector networks (and outer training),
 * OmniFold's iterations, trained once per (method, replica, member) and
 * reused by every fill model of it (gan.share_detector). The key is the
 * (method, replica, member) index of the common random numbers. The
 * coordinator prefers to hand a rank a unit with the key of its previous
 * unit. -1: no shared work (IBU). */
int ef_plan_affinity(const ef_plan *p, int32_t unit);
/* The seed of a unit's detector products, from the unit's seed (the same
 * for every fill model of a (method, replica, member)). A stream of purpose
 * EF_RNG_DETECTOR. */
uint64_t ef_plan_detector_seed(uint64_t unit_seed, int method);

const char *ef_method_name(int method);
uint64_t ef_plan_unit_seed(uint64_t campaign_seed, int32_t id);

#endif
