/* config -> units. */
#include "ensfold/plan.h"

#include <stdlib.h>
#include <string.h>

#include "ensfold/model.h"
#include "ensfold/rng.h"
#include "ensfold/unit.h"

struct ef_plan {
  size_t n_units;
  ef_unit *units;   /* (n_units), index = id */
  int32_t *order;   /* (n_units) dispatch order */
  int n_groups;
  int group_method[EF_N_METHODS * EF_N_FILLS], group_fill[EF_N_METHODS * EF_N_FILLS];
  int n_replicas;
  int members[EF_N_METHODS];
};

const char *ef_method_name(int method) {
  const ef_method *m = ef_method_get(method);
  return m ? m->name : "?";
}

/* splitmix64 finaliser: a fixed bijective mix, so distinct ids give
 * distinct seeds for one campaign seed. */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t ef_plan_unit_seed(uint64_t campaign_seed, int32_t id) {
  return mix64(campaign_seed + 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1));
}

/* Relative cost of one unit of a method (the registry's estimate). */
static double method_cost(int method) { return ef_method_get(method)->cost; }

/* Costliest first; then by (method, replica, member), so that the units
 * that differ only by the fill model follow one another (one rank takes
 * them and trains their shared networks once); then by id. */
static int cmp_order(const void *a, const void *b, void *units) {
  const ef_unit *u = units;
  const ef_unit *x = &u[*(const int32_t *)a], *y = &u[*(const int32_t *)b];
  if (x->cost != y->cost) return x->cost > y->cost ? -1 : 1;
  const int kx[4] = {x->method, x->replica, x->member, x->id};
  const int ky[4] = {y->method, y->replica, y->member, y->id};
  for (int k = 0; k < 4; k++)
    if (kx[k] != ky[k]) return kx[k] < ky[k] ? -1 : 1;
  return 0;
}

/* qsort has no context argument in C11: a stable merge sort by cmp_order
 * (n log n: the order above interleaves the fill groups). */
static void sort_order(int32_t *order, size_t n, ef_unit *units, int32_t *tmp) {
  for (size_t width = 1; width < n; width *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * width) {
      size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi)
        tmp[k++] = cmp_order(&order[j], &order[i], units) < 0 ? order[j++] : order[i++];
      while (i < mid) tmp[k++] = order[i++];
      while (j < hi) tmp[k++] = order[j++];
    }
    memcpy(order, tmp, n * sizeof *order);
  }
}

int ef_plan_create(ef_ctx *ctx, ef_plan **out, const ef_config *cfg) {
  *out = NULL;
  ef_plan *p = calloc(1, sizeof *p);
  if (!p) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the plan");
  p->n_replicas = cfg->campaign.replicas + 1;
  size_t n = 0;
  for (int m = 0; m < EF_N_METHODS; m++) {
    if (!(cfg->campaign.methods & (1u << m))) continue;
    /* a deterministic method's ensemble members would be identical copies */
    p->members[m] = ef_method_deterministic(m) ? 1 : cfg->campaign.ensemble;
    for (int f = 0; f < EF_N_FILLS; f++) {
      if (!(cfg->campaign.fill_models & (1u << f))) continue;
      p->group_method[p->n_groups] = m;
      p->group_fill[p->n_groups] = f;
      p->n_groups++;
      n += (size_t)p->n_replicas * (size_t)p->members[m];
    }
  }
  if (n > (size_t)INT32_MAX) {
    free(p);
    return ef_error_set(ctx, EF_ERR_INPUT, "the campaign has %zu units; at most %d", n, INT32_MAX);
  }
  p->n_units = n;
  p->units = malloc((n ? n : 1) * sizeof *p->units);
  p->order = malloc((n ? n : 1) * sizeof *p->order);
  if (!p->units || !p->order) {
    ef_plan_destroy(p);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for %zu units", n);
  }
  /* (method, replica, member) numbered method by method: crn_base[m] + r
   * members[m] + k */
  int32_t crn_base[EF_N_METHODS] = {0}, next = 0;
  for (int m = 0; m < EF_N_METHODS; m++) {
    crn_base[m] = next;
    next += p->n_replicas * p->members[m];
  }
  int32_t id = 0;
  for (int g = 0; g < p->n_groups; g++) {
    int m = p->group_method[g];
    for (int r = 0; r < p->n_replicas; r++)
      for (int k = 0; k < p->members[m]; k++, id++) {
        ef_unit *u = &p->units[id];
        /* common random numbers: the seed of (method, replica, member),
         * the same for every fill model */
        int32_t crn = crn_base[m] + r * p->members[m] + k;
        *u = (ef_unit){.id = id, .method = m, .fill = p->group_fill[g], .replica = r,
                       .member = k, .seed = ef_plan_unit_seed(cfg->seed, crn),
                       .cost = method_cost(m),
                       .affinity = ef_method_get(m)->shares_training ? crn : -1};
        p->order[id] = id;
      }
  }
  int32_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
  if (!tmp) {
    ef_plan_destroy(p);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for %zu units", n);
  }
  sort_order(p->order, n, p->units, tmp);
  free(tmp);
  *out = p;
  return EF_OK;
}

void ef_plan_destroy(ef_plan *p) {
  if (!p) return;
  free(p->units);
  free(p->order);
  free(p);
}

size_t ef_plan_n_units(const ef_plan *p) { return p->n_units; }
const ef_unit *ef_plan_unit(const ef_plan *p, size_t id) {
  return id < p->n_units ? &p->units[id] : NULL;
}
const int32_t *ef_plan_order(const ef_plan *p) { return p->order; }
int ef_plan_n_groups(const ef_plan *p) { return p->n_groups; }
void ef_plan_group(const ef_plan *p, int g, int *method, int *fill) {
  *method = p->group_method[g];
  *fill = p->group_fill[g];
}
int ef_plan_n_replicas(const ef_plan *p) { return p->n_replicas; }
int ef_plan_n_members(const ef_plan *p, int method) { return p->members[method]; }

int ef_plan_affinity(const ef_plan *p, int32_t unit) {
  const ef_unit *u = ef_plan_unit(p, (size_t)unit);
  return u ? u->affinity : -1;
}

uint64_t ef_plan_detector_seed(uint64_t unit_seed, int method) {
  ef_rng r;
  /* key method * 1000003 - 1, as when the key also took a replica (then
   * -1 here): the networks' bits do not change */
  ef_rng_init(&r, unit_seed, EF_RNG_DETECTOR, (uint32_t)((int64_t)method * 1000003 - 1));
  return ef_rng_u64(&r);
}

int32_t ef_plan_unit_id(const ef_plan *p, int method, int fill, int replica, int member) {
  int32_t base = 0;
  for (int g = 0; g < p->n_groups; g++) {
    int m = p->group_method[g];
    int32_t size = (int32_t)(p->n_replicas * p->members[m]);
    if (m == method && p->group_fill[g] == fill) {
      if (replica < 0 || replica >= p->n_replicas || member < 0 || member >= p->members[m])
        return -1;
      return base + replica * p->members[m] + member;
    }
    base += size;
  }
  return -1;
}
