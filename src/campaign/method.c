/* The registry of unfolding methods. One line per method; its index is its
 * id (the order of campaign.methods' names). */
#include "ensfold/method.h"

#include "methods.h"

static const ef_method *const REGISTRY[] = {
    &ef_method_ibu,       /* 0: iterative Bayesian unfolding (method_ibu.c) */
    &ef_method_gan_topo,  /* 1: per-topology GAN (method_gan.c) */
    &ef_method_gan_mixed, /* 2: mixed-event GAN (method_gan.c) */
    &ef_method_bin_by_bin, /* 3: bin-by-bin correction factors (method_binbybin.c) */
};

int ef_method_count(void) { return (int)(sizeof REGISTRY / sizeof REGISTRY[0]); }

const ef_method *ef_method_get(int id) {
  return id >= 0 && id < ef_method_count() ? REGISTRY[id] : NULL;
}
