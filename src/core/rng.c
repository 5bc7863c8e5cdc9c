/* Philox4x32-10 and the distributions built on it. */
#include "ensfold/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void philox_round(uint32_t x[4], const uint32_t k[2]) {
  uint64_t p0 = (uint64_t)PHILOX_M0 * x[0];
  uint64_t p1 = (uint64_t)PHILOX_M1 * x[2];
  uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
  uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
  uint32_t y0 = hi1 ^ x[1] ^ k[0];
  uint32_t y2 = hi0 ^ x[3] ^ k[1];
  x[0] = y0;
  x[1] = lo1;
  x[2] = y2;
  x[3] = lo0;
}

void ef_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                      uint32_t out[4]) {
  uint32_t x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
  uint32_t k[2] = {key[0], key[1]};
  for (int i = 0; i < 10; i++) {
    if (i > 0) {
      k[0] += PHILOX_W0;
      k[1] += PHILOX_W1;
    }
    philox_round(x, k);
  }
  out[0] = x[0];
  out[1] = x[1];
  out[2] = x[2];
  out[3] = x[3];
}

void ef_rng_init(ef_rng *r, uint64_t seed, uint32_t purpose, uint32_t unit) {
  r->key[0] = (uint32_t)seed;
  r->key[1] = (uint32_t)(seed >> 32);
  r->ctr[0] = 0;
  r->ctr[1] = 0;
  r->ctr[2] = unit;
  r->ctr[3] = purpose;
  r->pos = 4;
  r->has_spare = 0;
  r->spare = 0.0;
}

void ef_rng_seek(ef_rng *r, uint64_t block) {
  r->ctr[0] = (uint32_t)block;
  r->ctr[1] = (uint32_t)(block >> 32);
  r->pos = 4;
  r->has_spare = 0;
}

uint32_t ef_rng_u32(ef_rng *r) {
  if (r->pos >= 4) {
    ef_philox4x32_10(r->ctr, r->key, r->buf);
    if (++r->ctr[0] == 0) ++r->ctr[1];
    r->pos = 0;
  }
  return r->buf[r->pos++];
}

uint64_t ef_rng_u64(ef_rng *r) {
  uint64_t hi = ef_rng_u32(r);
  return (hi << 32) | ef_rng_u32(r);
}

double ef_rng_uniform(ef_rng *r) {
  uint64_t k = ef_rng_u64(r) >> 11; /* 53 bits */
  return ((double)k + 0.5) * 0x1.0p-53;
}

size_t ef_rng_pick(ef_rng *r, const double *cdf, size_t n) {
  double u = ef_rng_uniform(r) * cdf[n - 1];
  size_t lo = 0, hi = n - 1;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cdf[mid] > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

double ef_rng_normal(ef_rng *r) {
  if (r->has_spare) {
    r->has_spare = 0;
    return r->spare;
  }
  double u1 = ef_rng_uniform(r), u2 = ef_rng_uniform(r);
  double rad = sqrt(-2.0 * log(u1));
  double ang = 2.0 * M_PI * u2;
  r->spare = rad * sin(ang);
  r->has_spare = 1;
  return rad * cos(ang);
}

unsigned ef_rng_poisson(ef_rng *r, double mu) {
  /* Inversion by sequential search: exact, and one uniform per draw, so the
   * number of words consumed does not depend on the outcome. */
  if (!(mu > 0.0)) return 0;
  double u = ef_rng_uniform(r);
  double p = exp(-mu), cdf = p;
  unsigned k = 0;
  while (u > cdf && k < 1000) {
    k++;
    p *= mu / k;
    cdf += p;
  }
  return k;
}

uint32_t ef_rng_below(ef_rng *r, uint32_t n) {
  uint32_t limit = UINT32_MAX - (UINT32_MAX % n);
  uint32_t x;
  do x = ef_rng_u32(r);
  while (x >= limit);
  return x % n;
}
