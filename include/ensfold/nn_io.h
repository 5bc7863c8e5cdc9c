/* Weight files: an ef_mlp as an HDF5 group.
 *
 *   <group>/                attributes: n_layers (int), widths (int, n+1),
 *                           activations (string, "relu;leaky_relu;..."),
 *                           leaky_slope (float), format ("ensfold-mlp-1")
 *   <group>/layer_<l>/W     float32 (out_l, in_l)  attributes: act (string)
 *   <group>/layer_<l>/b     float32 (out_l)
 *
 * Values are stored as IEEE float32, so save then load is bit-exact. loc is
 * an open HDF5 file or group; the calls are not collective and use default
 * (serial) property lists. */
#ifndef ENSFOLD_NN_IO_H
#define ENSFOLD_NN_IO_H

#include <hdf5.h>

#include "ensfold/nn.h"

/* Write m's parameters as group `name` under loc (which must not exist). */
int ef_mlp_save(ef_ctx *ctx, const ef_mlp *m, hid_t loc, const char *name);
/* Read group `name` into m; refuses (EF_ERR_INPUT) a file whose layer
 * shapes or activations differ from m's. */
int ef_mlp_load(ef_ctx *ctx, ef_mlp *m, hid_t loc, const char *name);
/* Make a network from the group's attributes and load its weights. */
int ef_mlp_create_from_h5(ef_ctx *ctx, ef_mlp **out, hid_t loc,
                          const char *name, int max_batch);

#endif
