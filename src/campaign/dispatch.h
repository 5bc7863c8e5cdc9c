/* Which unit the coordinator hands a rank next (internal to the campaign
 * runner; tests/test_campaign.c tests it without MPI).
 *
 * Units go out in dispatch order, except that a rank whose previous unit had
 * an affinity key >= 0 (ef_plan_affinity: training shared by a
 * method's units) gets the first unit not yet handed out with the same key, when
 * one lies within EF_DISPATCH_WINDOW entries of the first unit not yet handed
 * out. Otherwise it gets the first unit within the window whose key no other
 * rank holds (so two ranks do not train the same detector networks), and the
 * first unit not yet handed out when every one there belongs to another rank's
 * key. A rank is never refused work while any unit is left. Not thread-safe:
 * one coordinator owns it. */
#ifndef ENSFOLD_CAMPAIGN_DISPATCH_H
#define ENSFOLD_CAMPAIGN_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "ensfold/ctx.h"

/* Entries of the dispatch order searched for a unit with the rank's key:
 * bounds the coordinator's work per request. */
#define EF_DISPATCH_WINDOW 4096

typedef struct ef_dispatch ef_dispatch;

/* order (n): unit ids in dispatch order, a permutation of 0..n-1; key (n):
 * each unit's affinity key (by unit id), -1 = none; skip (n, by unit id, or
 * NULL): units not to hand out (already done). The arrays are copied. */
int ef_dispatch_create(ef_ctx *ctx, ef_dispatch **out, size_t n, const int32_t *order,
                       const int32_t *key, const unsigned char *skip, int n_ranks);
void ef_dispatch_destroy(ef_dispatch *d); /* accepts NULL */

/* The unit to hand rank next (and mark it handed out), or -1 when every
 * unit is out. */
int32_t ef_dispatch_next(ef_dispatch *d, int rank);

#endif
