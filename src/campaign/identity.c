/* Campaign identity: hashes of the config and of the event samples. */
#include "ensfold/identity.h"

#include <stdio.h>
#include <string.h>

uint64_t ef_hash64(const void *data, size_t len) {
  const unsigned char *p = data;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t lane(uint64_t h, uint64_t w) {
  h ^= w * 0x9e3779b97f4a7c15ull;
  return rotl(h, 31) * 0xc2b2ae3d27d4eb4full;
}

static uint64_t avalanche(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 33);
}

uint64_t ef_hash64_fast(const void *data, size_t len) {
  const unsigned char *p = data;
  uint64_t h[4] = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull, 0xa4093822299f31d0ull,
                   0x082efa98ec4e6c89ull};
  size_t i = 0;
  for (; i + 32 <= len; i += 32) {
    uint64_t w[4];
    memcpy(w, p + i, sizeof w); /* unaligned-safe; compiles to plain loads */
    for (int k = 0; k < 4; k++) h[k] = lane(h[k], w[k]);
  }
  for (int k = 0; i + 8 <= len; i += 8, k++) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h[k & 3] = lane(h[k & 3], w);
  }
  uint64_t tail = 0;
  memcpy(&tail, p + i, len - i);
  uint64_t out = lane(h[0], tail) ^ rotl(h[1], 17) ^ rotl(h[2], 29) ^ rotl(h[3], 43);
  return avalanche(out ^ (uint64_t)len);
}

/* The declared event space, field by field (no padding bytes). */
static uint64_t space_hash(const ef_space *sp) {
  uint64_t h = (uint64_t)sp->dim << 32 | (uint64_t)sp->n_cat;
  for (int d = 0; d < sp->dim; d++) {
    const ef_axis *a = &sp->axis[d];
    uint64_t w[4] = {ef_hash64(a->name, strnlen(a->name, sizeof a->name)), (uint64_t)a->kind,
                     ef_hash64_fast(&a->lo, sizeof a->lo), ef_hash64_fast(&a->hi, sizeof a->hi)};
    h = ef_hash64_fast((uint64_t[2]){h, ef_hash64_fast(w, sizeof w)}, 2 * sizeof h);
  }
  for (int k = 0; k < sp->n_cat; k++) {
    const ef_category *c = &sp->cat[k];
    uint64_t w[2] = {ef_hash64(c->name, strnlen(c->name, sizeof c->name)), (uint64_t)c->blind};
    h = ef_hash64_fast((uint64_t[2]){h, ef_hash64_fast(w, sizeof w)}, 2 * sizeof h);
  }
  return h;
}

/* The pi0 space leaves the hash as it was before spaces existed, so the
 * identities (and --resume) of earlier pi0 runs still match. */
uint64_t ef_events_hash(const ef_events *ev) {
  const size_t n = ev->n, D = (size_t)ev->space.dim, K = (size_t)ev->space.n_cat;
  uint64_t parts[8] = {
      (uint64_t)n | ((uint64_t)ev->kind << 60),
      ef_hash64_fast(ev->topology, n * sizeof *ev->topology),
      ef_hash64_fast(ev->reco, D * n * sizeof *ev->reco),
      ev->vertex ? ef_hash64_fast(ev->vertex, D * n * sizeof *ev->vertex) : 1,
      ev->prob ? ef_hash64_fast(ev->prob, K * n * sizeof *ev->prob) : 2,
      ev->weight ? ef_hash64_fast(ev->weight, n * sizeof *ev->weight) : 3,
      ef_hash64_fast(&ev->beam_energy, sizeof ev->beam_energy),
      ef_hash64(ev->model, strnlen(ev->model, sizeof ev->model)),
  };
  uint64_t h = ef_hash64_fast(parts, sizeof parts);
  if (ef_space_is_pi0(&ev->space)) return h;
  return ef_hash64_fast((uint64_t[2]){h, space_hash(&ev->space)}, 2 * sizeof h);
}

void ef_identity_make(ef_identity *id, const char *config_text, const ef_events *data,
                      const ef_events *mc) {
  const char *body = strchr(config_text, '\n'); /* skip the "source:" comment line */
  body = body ? body + 1 : config_text;
  id->config = ef_hash64(body, strlen(body));
  id->data = ef_events_hash(data);
  id->mc = ef_events_hash(mc);
}

int ef_identity_same(const ef_identity *a, const ef_identity *b, const char *data_name,
                     const char *mc_name, char *why, size_t len) {
  const struct {
    uint64_t x, y;
    const char *what, *name;
  } parts[3] = {{a->config, b->config, "the config", NULL},
                {a->data, b->data, "the data events", data_name},
                {a->mc, b->mc, "the MC events", mc_name}};
  size_t used = 0;
  int same = 1;
  if (len) why[0] = '\0';
  for (int k = 0; k < 3; k++) {
    if (parts[k].x == parts[k].y) continue;
    same = 0;
    int w = used < len ? snprintf(why + used, len - used, "%s%s%s%s%s", used ? ", " : "",
                                  parts[k].what, parts[k].name ? " (" : "",
                                  parts[k].name ? parts[k].name : "", parts[k].name ? ")" : "")
                       : 0;
    if (w > 0) used += (size_t)w;
  }
  return same;
}
