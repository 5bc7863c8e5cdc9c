/* The campaign configuration: YAML (libyaml) into typed structs with defaults.
 *
 * Every key lives in one schema table (src/core/config.c) that gives its
 * type, default, unit, range and description; docs/config.md lists the same
 * keys and a test checks that none is missing. Loading is strict: an unknown
 * key, a wrong type, a value out of range or a missing required key is
 * refused with "file:line:col: message" naming the key and what is allowed
 * (EF_ERR_INPUT -> exit code 2), before any work starts.
 *
 * Each module's settings are declared with the module (model.h, detector.h,
 * binning.h, ibu.h, gan.h, surrogate.h); this header gathers them into
 * one ef_config.
 *
 * Angles in the config are in degrees (as physicists write them); the
 * structs hold radians where the field name ends in _rad, degrees where it
 * ends in _deg. Energies and momenta in GeV. */
#ifndef ENSFOLD_CONFIG_H
#define ENSFOLD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ensfold/binning.h"
#include "ensfold/ctx.h"
#include "ensfold/detector.h"
#include "ensfold/gan.h"
#include "ensfold/omnifold.h"
#include "ensfold/gauss.h"
#include "ensfold/ibu.h"
#include "ensfold/model.h"


#define EF_PATH_MAX 1024

/* The most vertex bins a campaign may have: the result file holds (V, V)
 * covariance matrices, 8 V^2 bytes each (10,000 bins: 800 MB). */
#define EF_CONFIG_MAX_VERTEX_BINS 10000

/* Where an event sample comes from. */
typedef enum { EF_SOURCE_GENERATE = 0, EF_SOURCE_FILE = 1 } ef_source;

typedef struct {
  int source;   /* ef_source */
  int model;    /* model slot of the process (pi0: ef_model_id) */
  char model_name[16]; /* as written ("" = the default slot), resolved by the process */
  int events;   /* number generated */
  char file[EF_PATH_MAX]; /* event file (relative paths: to the config's directory) */
} ef_sample_params;

/* Campaign methods and fill models are bit sets: bit i = choice i, in the
 * order of the method registry (method_list.h) and ef_model_id. Unit ids
 * follow that order, so the order they are listed in the config does not
 * matter. */
enum {
#define EF_METHOD(id, name, table) EF_METHOD_##id,
#include "ensfold/method_list.h"
#undef EF_METHOD
  EF_N_METHODS
};

/* Fill slots: the process's models (slots 0 .. n_models - 1), then the
 * fill files of campaign.fill_models in their order. */
#define EF_N_FILLS 8
#define EF_FILL_FILES_MAX 4

typedef struct {
  unsigned methods;     /* bit set over EF_METHOD_* */
  unsigned fill_models; /* bit set over the fill slots (pi0's models: ef_model_id) */
  char fill_model_names[64]; /* "PS, M2" as written ("" = the default), resolved by the process */
  int n_fill_files;     /* event files among campaign.fill_models (their vertices: a model) */
  char fill_file[EF_FILL_FILES_MAX][EF_PATH_MAX]; /* as written (relative: to the config) */
  int replicas;         /* bootstrap replicas r = 1..replicas (replica 0 is nominal) */
  int ensemble;         /* members per (method, fill, replica) */
  int bootstrap_mc;     /* also Poisson-weight the MC per replica */
  int unbinned;         /* events per unit stored unbinned (0: none; unit.h) */
  int event_weights;    /* every MC event's weight per unit (/event_weights; unit.h) */
} ef_campaign_params;

/* The built-in processes (the `process` key; process.h). */
enum { EF_PROCESS_PI0 = 0, EF_PROCESS_GAUSS = 1, EF_PROCESS_FILES = 2 };

typedef struct ef_config {
  uint64_t seed;
  int process;  /* EF_PROCESS_* */
  ef_gauss_params gauss;
  ef_physics_params physics;
  ef_detector_params detector;
  ef_sample_params data, mc;
  ef_campaign_params campaign;
  ef_binning_params vertex_bins, detector_bins;
  int vertex_pairs;     /* binning.pairs: the 2-D projections on every pair of observables */
  ef_ibu_params ibu;
  ef_gan_params gan;
  ef_omnifold_params omnifold;
  char output[EF_PATH_MAX];
  char *source; /* the file name the config came from ("<defaults>" if none) */
} ef_config;

/* Fill cfg with every default. source becomes "<defaults>". */
int ef_config_defaults(ef_ctx *ctx, ef_config *cfg);
/* Defaults, then the file. Required keys must be present. */
int ef_config_load(ef_ctx *ctx, ef_config *cfg, const char *path);
/* Parse YAML text (name is used in messages). */
int ef_config_load_string(ef_ctx *ctx, ef_config *cfg, const char *text,
                          const char *name);
/* Apply "a.b.c=value" on top of a loaded config (same checks as the file). */
int ef_config_set(ef_ctx *ctx, ef_config *cfg, const char *assignment);
/* Apply n assignments in order, then check the settings against one another
 * once: the order of overrides that are valid together never matters. */
int ef_config_set_all(ef_ctx *ctx, ef_config *cfg, char *const *assignments, int n);
void ef_config_free(ef_config *cfg);
/* A file named in the config (data.file, mc.file) as a path: relative
 * names are relative to the config file's directory. */
void ef_config_resolve_path(const ef_config *cfg, const char *file, char *out, size_t len);

/* The resolved config as YAML text (every key, defaults filled in). The
 * caller frees *out. Loading the text again gives the same config. */
int ef_config_dump(ef_ctx *ctx, const ef_config *cfg, char **out);

/* The schema, for docs and tests: number of keys and each dotted path. */
size_t ef_config_key_count(void);
const char *ef_config_key_path(size_t i);
/* One markdown table row for key i: | `path` | default | unit | allowed | meaning |
 * Returns -1 past the end. */
int ef_config_key_markdown(size_t i, char *buf, size_t len);

#endif
