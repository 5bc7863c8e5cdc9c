/* The campaign configuration: YAML (libyaml) into typed structs with defaults.
 *
 * Every key lives in one schema table (src/core/config.c) that gives its
 * type, default, unit, range and description; docs/config.md lists the same
 * keys and a test checks that none is missing. Loading is strict: an unknown
 * key, a wrong type, a value out of range or a missing required key is
 * refused with "file:line:col: message" naming the key and what is allowed
 * (EF_ERR_INPUT -> exit code 2), before any work starts.
 *
 * Angles in the config are in degrees (as physicists write them); the
 * structs hold radians where the field name ends in _rad, degrees where it
 * ends in _deg. Energies and momenta in GeV. */
#ifndef ENSFOLD_CONFIG_H
#define ENSFOLD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ensfold/ctx.h"
#include "ensfold/surrogate.h"

#define EF_N_SECTORS 6
#define EF_N_TOPO 4

typedef struct {
  double beam_energy; /* GeV */
  double delta_mass, delta_width; /* GeV, Breit-Wigner for sigma_D(W) */
  double a12, a32;    /* helicity amplitudes, GeV^-1/2 */
  double polarisation;/* linear beam polarisation P in [0, 1] */
  double phi_pol_deg; /* polarisation plane azimuth */
  double k_fb;        /* forward-backward term: F -> F (1 + k_fb cos t) */
  int talk_a_factor;  /* 1: a = 3|A32|^2 + 5|A12|^2 (the talk); 0: derived a */
  double m2_k;        /* M2 exponent k in e^{k(t - pi)} */
} ef_physics_params;

typedef struct {
  double theta_min_deg, theta_max_deg; /* drift-chamber + TOF polar range */
  double p_min;                        /* GeV/c */
  double dc_efficiency;                /* DC x PID efficiency */
  double misid;                        /* misidentification probability */
  int g11_cut;                         /* reject p < g11_p_max with theta < g11_theta_max */
  double g11_p_max, g11_theta_max_deg;
  int paddles;                         /* TOF paddles per sector */
  double paddle_theta_min_deg, paddle_theta_max_deg;
  double paddle_efficiency;
  double tof_dead_theta_deg[EF_N_SECTORS]; /* TOF dead above this theta, per sector */
} ef_proton_params;

typedef struct {
  double theta_min_deg, theta_max_deg; /* forward calorimeter, per photon */
  double e_min;                        /* GeV, per photon */
  double efficiency;                   /* per photon */
  double mass_window_efficiency;       /* pi0 invariant-mass cut */
  double table_dtheta_deg;             /* table step in theta* */
  double table_dphi_deg;               /* table step in sector-local phi */
} ef_pi0_params;

typedef struct {
  double scale;           /* multiplies every sigma below */
  double proton_dp;       /* sigma_p / p */
  double proton_dtheta;   /* rad */
  double proton_dphi;     /* rad */
  double photon_de;       /* sigma_E / E = photon_de / sqrt(E / GeV) */
  double photon_dangle;   /* rad, theta and phi */
} ef_smearing_params;

typedef struct {
  double min_half_gap_deg;  /* coil cut: |phi_loc| < 30 - max(this, k / sin theta) */
  double small_angle_deg;   /* k above */
} ef_coil_params;

typedef struct {
  ef_coil_params coil;
  ef_proton_params proton;
  ef_pi0_params pi0;
  ef_smearing_params smearing;
  double accidental_fraction; /* f_acc: T2 -> T3 and T0 -> T1 */
} ef_detector_params;

#define EF_PATH_MAX 1024

/* Where an event sample comes from. */
typedef enum { EF_SOURCE_GENERATE = 0, EF_SOURCE_FILE = 1 } ef_source;

typedef struct {
  int source;   /* ef_source */
  int model;    /* ef_model_id of the generator */
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

typedef struct {
  unsigned methods;     /* bit set over EF_METHOD_* */
  unsigned fill_models; /* bit set over ef_model_id */
  int replicas;         /* bootstrap replicas r = 1..replicas (replica 0 is nominal) */
  int ensemble;         /* members per (method, fill, replica) */
  int bootstrap_mc;     /* also Poisson-weight the MC per replica */
} ef_campaign_params;

typedef struct {
  int scheme;  /* ef_bin_scheme: 0 theta-phi, 1 cos-phi */
  int n_polar, n_phi;
} ef_binning_params;

typedef struct {
  int iterations;
  double min_efficiency; /* vertex bins below keep the scaled prior */
  double min_expected;   /* events: so do bins with less data attributed */
} ef_ibu_params;


typedef struct {
  ef_net_params outer;      /* generator G and its discriminator */
  int latent;               /* dimension of G's input noise z */
  double lr_final;          /* learning rate at the last step, as a fraction of lr */
  double average;           /* last fraction of the training whose snapshots are pooled */
  int snapshots;            /* snapshots of G pooled into the result */
  int samples;              /* G samples histogrammed per unit */
  double blind_efficiency;  /* vertex bins below this efficiency follow the fill model */
  double fill_weight;       /* weight of the blind (fill) channel in D's loss */
  double mmd_weight;        /* weight of the MMD term in G's loss (0 = none) */
  double instance_noise;    /* sigma of the noise on D's input coordinates at step 0 */
  ef_surrogate_params detector; /* the detector surrogates (gan.efficiency.*, gan.smearing.*) */
  int share_detector;       /* train detector networks once per (method, replica) */
} ef_gan_params;

typedef struct ef_config {
  uint64_t seed;
  ef_physics_params physics;
  ef_detector_params detector;
  ef_sample_params data, mc;
  ef_campaign_params campaign;
  ef_binning_params vertex_bins, detector_bins;
  ef_ibu_params ibu;
  ef_gan_params gan;
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
