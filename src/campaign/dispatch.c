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
  int32_t *holders;       /* (1 + largest key) ranks whose last unit had the key */
  int n_ranks;
};

int ef_dispatch_create(ef_ctx *ctx, ef_dispatch **out, size_t n, const int32_t *order,
                       const int32_t *key, const unsigned char *skip, int n_ranks) {
  *out = NULL;
  int32_t n_keys = 0;
  for (size_t i = 0; i < n; i++)
    if (key[i] >= n_keys) n_keys = key[i] + 1;
  ef_dispatch *d = calloc(1, sizeof *d);
  if (d) {
    d->order = malloc((n ? n : 1) * sizeof *d->order);
    d->key = malloc((n ? n : 1) * sizeof *d->key);
    d->taken = calloc(n ? n : 1, 1);
    d->last_key = malloc((size_t)(n_ranks > 0 ? n_ranks : 1) * sizeof *d->last_key);
    d->holders = calloc(n_keys ? (size_t)n_keys : 1, sizeof *d->holders);
  }
  if (!d || !d->order || !d->key || !d->taken || !d->last_key || !d->holders) {
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
  free(d->holders);
  free(d);
}

int32_t ef_dispatch_next(ef_dispatch *d, int rank) {
  /* pos only moves forward: over the whole campaign this loop costs O(n) */
  while (d->pos < d->n && d->taken[d->order[d->pos]]) d->pos++;
  if (d->pos >= d->n) return -1;
  int own = rank >= 0 && rank < d->n_ranks;
  int32_t want = own ? d->last_key[rank] : -1;
  size_t end = d->n - d->pos > EF_DISPATCH_WINDOW ? d->pos + EF_DISPATCH_WINDOW : d->n;
  /* one pass: the first unit with the rank's key, else the first whose key no
   * other rank holds (a key another rank holds would have its detector
   * networks trained twice) */
  int32_t pick = -1, fresh = -1;
  for (size_t i = d->pos; i < end; i++) {
    int32_t u = d->order[i], k = d->key[u];
    if (d->taken[u]) continue;
    if (want >= 0 && k == want) {
      pick = u;
      break;
    }
    if (fresh < 0 && (k < 0 || d->holders[k] == 0)) {
      fresh = u;
      if (want < 0) break;
    }
  }
  if (pick < 0) pick = fresh;
  if (pick < 0) pick = d->order[d->pos];
  d->taken[pick] = 1;
  if (own && d->key[pick] != want) {
    if (want >= 0) d->holders[want]--;
    if (d->key[pick] >= 0) d->holders[d->key[pick]]++;
    d->last_key[rank] = d->key[pick];
  }
  return pick;
}
