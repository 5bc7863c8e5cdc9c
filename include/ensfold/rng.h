/* Counter-based random numbers: Philox4x32-10 (Salmon et al., SC11).
 *
 * A stream is keyed by (campaign seed, purpose, unit id): the key holds the
 * 64-bit seed, the counter holds (block index lo, block index hi, unit id,
 * purpose). Streams with different keys or counters never overlap, so a
 * unit's numbers depend only on the seed and its id, never on which rank ran
 * it or in what order. ef_rng is a small value type (keep it on the stack);
 * treat its fields as private. */
#ifndef ENSFOLD_RNG_H
#define ENSFOLD_RNG_H

#include <stddef.h>
#include <stdint.h>

/* What a stream is for. New purposes go at the end: the values are part of
 * the reproducibility contract (changing one changes every result). */
typedef enum {
  EF_RNG_TEST = 0,
  EF_RNG_GEN_DATA = 1,    /* pseudo-data events */
  EF_RNG_GEN_MC = 2,      /* Monte Carlo events */
  EF_RNG_GEN_FILL = 3,    /* fill-model samples */
  EF_RNG_BOOTSTRAP = 4,   /* per-replica Poisson weights */
  EF_RNG_NN_INIT = 5,     /* network initial weights */
  EF_RNG_NN_TRAIN = 6,    /* minibatches and latent noise */
  EF_RNG_GEN_FILE = 7,    /* `ensfold generate` */
  EF_RNG_BOOTSTRAP_MC = 8, /* per-replica Poisson weights of MC events */
  EF_RNG_DETECTOR = 9,    /* seeds of trained detector products (ef_plan_detector_seed) */
} ef_rng_purpose;

typedef struct ef_rng {
  uint32_t key[2];
  uint32_t ctr[4];
  uint32_t buf[4]; /* output of the current block */
  int pos;         /* next unused word of buf (4 = empty) */
  int has_spare;   /* Box-Muller second normal */
  double spare;
} ef_rng;

/* The raw block function: out = Philox4x32-10(ctr, key). */
void ef_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                      uint32_t out[4]);

void ef_rng_init(ef_rng *r, uint64_t seed, uint32_t purpose, uint32_t unit);
/* Jump to block index `block` of the same stream (skip-ahead is free). */
void ef_rng_seek(ef_rng *r, uint64_t block);

uint32_t ef_rng_u32(ef_rng *r);
uint64_t ef_rng_u64(ef_rng *r);
/* Uniform in the open interval (0, 1), 53 random bits. */
double ef_rng_uniform(ef_rng *r);
/* Standard normal (Box-Muller). */
double ef_rng_normal(ef_rng *r);
/* Poisson with mean mu by inversion (one uniform per draw; meant for the
 * bootstrap's mu = 1 and other small means, mu <= 30). */
unsigned ef_rng_poisson(ef_rng *r, double mu);
/* Uniform integer in [0, n). n > 0. Unbiased (rejection). */
uint32_t ef_rng_below(ef_rng *r, uint32_t n);
/* An index in [0, n) drawn with probability proportional to its weight,
 * from cdf (n) the running sums of n >= 1 weights (one uniform). */
size_t ef_rng_pick(ef_rng *r, const double *cdf, size_t n);

#endif
