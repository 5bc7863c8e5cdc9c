/* The methods the registry (method.c) lists. Internal to src/campaign. */
#ifndef ENSFOLD_METHODS_H
#define ENSFOLD_METHODS_H

#include "ensfold/method.h"

extern const ef_method ef_method_ibu;
extern const ef_method ef_method_gan_topo;
extern const ef_method ef_method_gan_mixed;
extern const ef_method ef_method_bin_by_bin;

#endif
