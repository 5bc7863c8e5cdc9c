/* The event space in an event file's /events attributes (format version 2,
 * docs/formats.md): format_version, observables, observable_kinds,
 * observable_range (D, 2), categories, blind (K). Internal to src/data. */
#ifndef ENSFOLD_SPACE_H5_H
#define ENSFOLD_SPACE_H5_H

#include <hdf5.h>

#include "ensfold/ctx.h"
#include "ensfold/space.h"

#define EF_EVENTS_FORMAT_VERSION 2

/* Write s and format_version 2 on grp. */
int ef_space_write_h5(ef_ctx *ctx, hid_t grp, const ef_space *s);
/* Read the space grp declares into s: a file without format_version (or
 * with 1) is version 1, the pi0 space; version 2 must declare every
 * attribute, checked with ef_space_check. path names the file in messages. */
int ef_space_read_h5(ef_ctx *ctx, hid_t grp, const char *path, ef_space *s);

#endif
