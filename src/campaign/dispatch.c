/* The coordinator's choice of the next unit: dispatch order with affinity. */
#include "dispatch.h"

#include <stdlib.h>
#include <string.h>

struct ef_dispatch {
  size_t n, pos;          /* pos: first entry of order[] not yet handed out */
  int32_t *order;         /* (n) unit ids in dispatch order */
  int32_t *key;           /* (n) affinity key by unit id, -1 = none */
  unsigned char *taken;   /* (n) by unit id: handed out, or skipped */
  int32_t *last_key;      /* (n_ranks) key of the unit a rank got last, -1 = none */
  int n_ranks;
};

int ef_dispatch_create(ef_ctx *ctx, ef_dispatch **out, size_t n, const int32_t *order,
                       const int32_t *key, const unsigned char *skip, int n_ranks) {
  *out = NULL;
  ef_dispatch *d = calloc(1, sizeof *d);
  if (d) {
    d->order = malloc((n ? n : 1) * sizeof *d->order);
    d->key = malloc((n ? n : 1) * sizeof *d->key);
    d->taken = calloc(n ? n : 1, 1);
    d->last_key = malloc((size_t)(n_ranks > 0 ? n_ranks : 1) * sizeof *d->last_key);
  }
  if (!d || !d->order || !d->key || !d->taken || !d->last_key) {
    ef_dispatch_destroy(d);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the dispatch of %zu units", n);
  }
  d->n = n;
  d->n_ranks = n_ranks;
  if (n) {
    memcpy(d->order, order, n * sizeof *order);
    memcpy(d->key, key, n * sizeof *key);
    if (skip) memcpy(d->taken, skip, n);
  }
  for (int r = 0; r < n_ranks; r++) d->last_key[r] = -1;
  *out = d;
  return EF_OK;
}

void ef_dispatch_destroy(ef_dispatch *d) {
  if (!d) return;
  free(d->order);
  free(d->key);
  free(d->taken);
  free(d->last_key);
  free(d);
}

int32_t ef_dispatch_next(ef_dispatch *d, int rank) {
  /* pos only moves forward: over the whole campaign this loop costs O(n) */
  while (d->pos < d->n && d->taken[d->order[d->pos]]) d->pos++;
  if (d->pos >= d->n) return -1;
  int32_t want = rank >= 0 && rank < d->n_ranks ? d->last_key[rank] : -1;
  int32_t pick = d->order[d->pos];
  if (want >= 0 && d->key[pick] != want) {
    size_t end = d->n - d->pos > EF_DISPATCH_WINDOW ? d->pos + EF_DISPATCH_WINDOW : d->n;
    for (size_t i = d->pos + 1; i < end; i++) {
      int32_t u = d->order[i];
      if (!d->taken[u] && d->key[u] == want) {
        pick = u;
        break;
      }
    }
  }
  d->taken[pick] = 1;
  if (rank >= 0 && rank < d->n_ranks) d->last_key[rank] = d->key[pick];
  return pick;
}
