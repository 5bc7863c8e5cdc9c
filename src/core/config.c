/* Strict YAML config: one schema table, a libyaml document walk, a dumper. */
#include "ensfold/config.h"
#include "ensfold/process.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* A config holds settings: 1 MiB is ~1000 times a full one. libyaml needs
 * ~160 bytes of memory per byte of flow mapping (16 MB: 2.6 GB). */
#define EF_CONFIG_MAX_BYTES (1 << 20)

typedef enum {
  K_REAL, K_INT, K_BOOL, K_SEED, K_REAL_LIST,
  K_STRING,   /* char[EF_PATH_MAX] */
  K_ENUM,     /* int: index into choices */
  K_ENUM_SET, /* unsigned: bit i set for choice i; written as a list */
  K_MODEL,    /* char[16] name as written; slot (int at aux) resolved by the process */
  K_MODEL_SET,/* char[64] names as written; slot mask (unsigned at aux) resolved */
  K_REAL_VEC, /* ef_real_vec: one number, or a list of 1 .. n */
} key_type;

typedef struct {
  const char *path;   /* dotted path, e.g. "detector.proton.p_min" */
  key_type type;
  size_t offset;      /* into ef_config */
  int n;              /* list length (K_REAL_LIST) */
  double def;         /* default, in config units */
  const double *list_def;
  double lo, hi;      /* allowed range, in config units (inclusive) */
  double factor;      /* config unit -> struct unit */
  const char *unit;
  int required;
  const char *doc;
  const char *choices; /* K_ENUM, K_ENUM_SET: "a|b|c" */
  const char *sdef;    /* K_STRING, K_ENUM, K_ENUM_SET default, as written in YAML */
  size_t aux;          /* K_MODEL, K_MODEL_SET: offset of the resolved slot / mask */
} key_def;

#define OFF(field) offsetof(ef_config, field)
#define REAL(p, f, d, l, h, u, doc) {p, K_REAL, OFF(f), 1, d, NULL, l, h, 1.0, u, 0, doc, NULL, NULL, 0}
#define MRAD(p, f, d, l, h, doc) {p, K_REAL, OFF(f), 1, d, NULL, l, h, 1e-3, "mrad", 0, doc, NULL, NULL, 0}
#define INT(p, f, d, l, h, doc) {p, K_INT, OFF(f), 1, d, NULL, l, h, 1.0, "", 0, doc, NULL, NULL, 0}
#define BOOL(p, f, d, doc) {p, K_BOOL, OFF(f), 1, d, NULL, 0, 1, 1.0, "", 0, doc, NULL, NULL, 0}
#define STR(p, f, d, doc) {p, K_STRING, OFF(f), 1, 0, NULL, 0, 0, 1.0, "", 0, doc, NULL, d, 0}
#define ENUM(p, f, ch, d, doc) {p, K_ENUM, OFF(f), 1, 0, NULL, 0, 0, 1.0, "", 0, doc, ch, d, 0}
#define ENUMSET(p, f, ch, d, doc) {p, K_ENUM_SET, OFF(f), 1, 0, NULL, 0, 0, 1.0, "", 0, doc, ch, d, 0}
/* d: the default slot (MODEL) or slot mask (MODELS) */
#define MODEL(p, f, d, doc) {p, K_MODEL, OFF(f##_name), 1, d, NULL, 0, 0, 1.0, "", 0, doc, NULL, NULL, OFF(f)}
#define MODELS(p, f, d, doc) {p, K_MODEL_SET, OFF(f##_names), 1, d, NULL, 0, 0, 1.0, "", 0, doc, NULL, NULL, OFF(f##s)}
#define VEC(p, f, d, l, h, u, doc) {p, K_REAL_VEC, OFF(f), EF_GAUSS_MAX_DIM, d, NULL, l, h, 1.0, u, 0, doc, NULL, NULL, 0}
/* a list with one number per observable of any process (d NaN: not given by default) */
#define PVEC(p, f, d, l, h, u, doc) {p, K_REAL_VEC, OFF(f), EF_PARAM_VEC_MAX, d, NULL, l, h, 1.0, u, 0, doc, NULL, NULL, 0}

/* "|ibu|gan-topo|...": the method registry's names (method_list.h); the
 * schema takes them from the second character. */
static const char METHOD_NAMES[] = ""
#define EF_METHOD(id, name, table) "|" name
#include "ensfold/method_list.h"
#undef EF_METHOD
    ;

/* Index of name in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *name) {
  size_t n = strlen(name);
  int i = 0;
  for (const char *c = choices; c; i++) {
    const char *bar = strchr(c, '|');
    size_t len = bar ? (size_t)(bar - c) : strlen(c);
    if (len == n && !strncmp(c, name, n)) return i;
    c = bar ? bar + 1 : NULL;
  }
  return -1;
}

/* ---- model names: each process names its model slots (process.h) ---- */

/* Slot of name among process kind's models, or -1. */
static int model_slot(int kind, const char *name) {
  for (int j = 0; ef_process_kind_model_name(kind, j); j++)
    if (!strcmp(ef_process_kind_model_name(kind, j), name)) return j;
  return -1;
}

static int model_known(const char *name) {
  for (int kind = 0; kind < ef_process_kinds(); kind++)
    if (model_slot(kind, name) >= 0) return 1;
  return 0;
}

/* "M1, PS, M2" for one kind, or "pi0: M1, PS, M2; gauss: data, mc, alt" (kind -1). */
static void models_text(int kind, char *buf, size_t len) {
  size_t u = 0;
  buf[0] = '\0';
  for (int q = 0; q < ef_process_kinds() && u < len; q++) {
    if (kind >= 0 && q != kind) continue;
    if (kind < 0)
      u += (size_t)snprintf(buf + u, len - u, "%s%s: ", q ? "; " : "", ef_process_kind_name(q));
    for (int j = 0; ef_process_kind_model_name(q, j) && u < len; j++)
      u += (size_t)snprintf(buf + u, len - u, "%s%s", j ? ", " : "",
                            ef_process_kind_model_name(q, j));
  }
}

/* "[PS, M2]": the names of the slots in mask for kind. */
static void mask_text(int kind, unsigned mask, char *buf, size_t len) {
  size_t u = (size_t)snprintf(buf, len, "[");
  int first = 1;
  for (int j = 0; ef_process_kind_model_name(kind, j) && u < len; j++) {
    if (!(mask & (1u << j))) continue;
    u += (size_t)snprintf(buf + u, len - u, "%s%s", first ? "" : ", ",
                          ef_process_kind_model_name(kind, j));
    first = 0;
  }
  if (u < len) snprintf(buf + u, len - u, "]");
}

/* Name of choice i into out. */
static void choice_name(const char *choices, int i, char *out, size_t len) {
  const char *c = choices;
  for (int k = 0; k < i && c; k++) {
    c = strchr(c, '|');
    if (c) c++;
  }
  if (!c) c = "?";
  size_t n = strcspn(c, "|");
  snprintf(out, len, "%.*s", (int)n, c);
}

/* "a, b, c" from "a|b|c". */
static void choices_text(const char *choices, char *out, size_t len) {
  size_t u = 0;
  for (const char *c = choices; *c && u + 3 < len; c++) {
    if (*c == '|') { out[u++] = ','; out[u++] = ' '; }
    else out[u++] = *c;
  }
  out[u] = '\0';
}

static const double tof_dead_default[EF_N_SECTORS] = {90, 180, 70, 180, 80, 180};

static const key_def schema[] = {
    {"seed", K_SEED, OFF(seed), 1, 0, NULL, 0, 9.2233720368547758e18, 1.0, "", 1,
     "campaign seed; every random stream derives from (seed, purpose, unit id)", NULL, NULL, 0},
    ENUM("process", process, "pi0|gauss|files", "pi0",
         "the physics: pi0 (gamma p -> Delta+ -> pi0 p, the physics.* and detector.* keys), "
         "gauss (D Gaussian observables, the gauss.* keys; docs/physics.md) or files (the "
         "observables the event files declare; models mc and flat; docs/user-guide.md)"),
    REAL("physics.beam_energy", physics.beam_energy, 1.1, 0.15, 5.0, "GeV",
         "photon beam energy (0.34 = the Delta peak)"),
    REAL("physics.delta.mass", physics.delta_mass, 1.232, 1.0, 1.5, "GeV",
         "Delta(1232) mass for sigma_D(W)"),
    REAL("physics.delta.width", physics.delta_width, 0.117, 0.01, 0.5, "GeV",
         "Delta(1232) width for sigma_D(W)"),
    REAL("physics.m1.a12", physics.a12, -0.135, -1.0, 1.0, "GeV^-1/2",
         "helicity amplitude A_1/2"),
    REAL("physics.m1.a32", physics.a32, -0.255, -1.0, 1.0, "GeV^-1/2",
         "helicity amplitude A_3/2"),
    REAL("physics.m1.polarisation", physics.polarisation, 0.7, 0.0, 1.0, "",
         "linear beam polarisation P (0 = unpolarised)"),
    REAL("physics.m1.phi_pol", physics.phi_pol_deg, 0.0, -180.0, 180.0, "deg",
         "azimuth of the polarisation plane"),
    REAL("physics.m1.k_fb", physics.k_fb, 0.0, -0.2, 0.2, "",
         "forward-backward term F -> F (1 + k_fb cos theta)"),
    BOOL("physics.m1.talk_a_factor", physics.talk_a_factor, 0,
         "use the talk's a = 3|A32|^2 + 5|A12|^2 instead of the derived 1"),
    REAL("physics.m2.k", physics.m2_k, 2.0, 0.1, 10.0, "",
         "M2 exponent k in a - b exp(k (theta - pi))"),
    REAL("detector.coil.min_half_gap", detector.coil.min_half_gap_deg, 4.0, 0.0, 29.0,
         "deg", "coil cut: accept |phi_loc| < 30 - max(min_half_gap, small_angle / sin theta)"),
    REAL("detector.coil.small_angle", detector.coil.small_angle_deg, 2.0, 0.0, 29.0,
         "deg", "widening of the coil cut at small polar angles (see min_half_gap)"),
    REAL("detector.proton.theta_min", detector.proton.theta_min_deg, 10.0, 0.0, 180.0,
         "deg", "smallest proton lab polar angle accepted"),
    REAL("detector.proton.theta_max", detector.proton.theta_max_deg, 140.0, 0.0, 180.0,
         "deg", "largest proton lab polar angle accepted"),
    REAL("detector.proton.p_min", detector.proton.p_min, 0.30, 0.0, 5.0, "GeV/c",
         "proton momentum threshold"),
    REAL("detector.proton.dc_efficiency", detector.proton.dc_efficiency, 0.98, 0.0, 1.0,
         "", "drift chamber x PID efficiency"),
    REAL("detector.proton.misid", detector.proton.misid, 0.01, 0.0, 1.0, "",
         "proton misidentification probability"),
    BOOL("detector.proton.g11_cut", detector.proton.g11_cut, 0,
         "g11 fiducial cut: reject p < g11_p_max with theta < g11_theta_max"),
    REAL("detector.proton.g11_p_max", detector.proton.g11_p_max, 0.45, 0.0, 5.0, "GeV/c",
         "momentum below which the g11 cut applies"),
    REAL("detector.proton.g11_theta_max", detector.proton.g11_theta_max_deg, 35.0, 0.0,
         180.0, "deg", "polar angle below which the g11 cut applies"),
    INT("detector.tof.paddles", detector.proton.paddles, 57, 1, 1000,
        "TOF paddles per sector"),
    REAL("detector.tof.theta_min", detector.proton.paddle_theta_min_deg, 8.0, 0.0, 180.0,
         "deg", "polar angle where paddle 1 starts"),
    REAL("detector.tof.theta_max", detector.proton.paddle_theta_max_deg, 142.0, 0.0,
         180.0, "deg", "polar angle where the last paddle ends"),
    REAL("detector.tof.paddle_efficiency", detector.proton.paddle_efficiency, 0.97, 0.0,
         1.0, "", "efficiency of a live paddle"),
    {"detector.tof.dead_theta", K_REAL_LIST, OFF(detector.proton.tof_dead_theta_deg),
     EF_N_SECTORS, 0, tof_dead_default, 0.0, 180.0, 1.0, "deg", 0,
     "per sector 1..6: TOF dead above this polar angle (180 = no dead region)", NULL, NULL, 0},
    REAL("detector.photon.theta_min", detector.pi0.theta_min_deg, 8.0, 0.0, 180.0, "deg",
         "smallest photon polar angle in the forward calorimeter"),
    REAL("detector.photon.theta_max", detector.pi0.theta_max_deg, 45.0, 0.0, 180.0, "deg",
         "largest photon polar angle in the forward calorimeter"),
    REAL("detector.photon.e_min", detector.pi0.e_min, 0.20, 0.0, 5.0, "GeV",
         "photon energy threshold"),
    REAL("detector.photon.efficiency", detector.pi0.efficiency, 0.97, 0.0, 1.0, "",
         "efficiency per photon"),
    REAL("detector.pi0.mass_window_efficiency", detector.pi0.mass_window_efficiency,
         0.95, 0.0, 1.0, "", "efficiency of the pi0 invariant-mass window"),
    REAL("detector.pi0.table_dtheta", detector.pi0.table_dtheta_deg, 0.5, 0.01, 5.0, "deg",
         "pi0 acceptance table step in theta*"),
    REAL("detector.pi0.table_dphi", detector.pi0.table_dphi_deg, 0.5, 0.01, 5.0, "deg",
         "pi0 acceptance table step in sector-local phi"),
    REAL("detector.smearing.scale", detector.smearing.scale, 1.0, 0.0, 100.0, "",
         "multiplies every resolution below (enlarge to see smearing at coarse bins)"),
    REAL("detector.smearing.proton_dp", detector.smearing.proton_dp, 0.01, 0.0, 1.0, "",
         "proton sigma_p / p"),
    MRAD("detector.smearing.proton_dtheta", detector.smearing.proton_dtheta, 2.5, 0.0,
         1000.0, "proton polar-angle resolution"),
    MRAD("detector.smearing.proton_dphi", detector.smearing.proton_dphi, 4.0, 0.0, 1000.0,
         "proton azimuth resolution"),
    REAL("detector.smearing.photon_de", detector.smearing.photon_de, 0.116, 0.0, 10.0,
         "GeV^1/2", "photon sigma_E / E = photon_de / sqrt(E)"),
    MRAD("detector.smearing.photon_dangle", detector.smearing.photon_dangle, 4.0, 0.0,
         1000.0, "photon angular resolution (theta and phi)"),
    REAL("detector.accidental_fraction", detector.accidental_fraction, 0.0, 0.0, 0.5, "",
         "f_acc: accidental pairs move T2 -> T3 and T0 -> T1"),
    INT("gauss.dim", gauss.dim, 1, 1, EF_GAUSS_MAX_DIM, "gauss: observables x1 .. xD"),
    VEC("gauss.data.mean", gauss.model[0].mean, 0.0, -100.0, 100.0, "",
        "gauss: mean of the data model per observable (one number: every observable)"),
    VEC("gauss.data.width", gauss.model[0].width, 1.0, 1e-3, 100.0, "",
        "gauss: standard deviation of the data model per observable"),
    REAL("gauss.data.correlation", gauss.model[0].correlation, 0.0, 0.0, 0.99, "",
         "gauss: correlation of the data model between every pair of observables"),
    VEC("gauss.mc.mean", gauss.model[1].mean, 0.2, -100.0, 100.0, "",
        "gauss: mean of the mc model per observable"),
    VEC("gauss.mc.width", gauss.model[1].width, 0.8, 1e-3, 100.0, "",
        "gauss: standard deviation of the mc model per observable"),
    REAL("gauss.mc.correlation", gauss.model[1].correlation, 0.0, 0.0, 0.99, "",
         "gauss: correlation of the mc model between every pair"),
    VEC("gauss.alt.mean", gauss.model[2].mean, -0.2, -100.0, 100.0, "",
        "gauss: mean of the alt model (an alternative fill) per observable"),
    VEC("gauss.alt.width", gauss.model[2].width, 1.2, 1e-3, 100.0, "",
        "gauss: standard deviation of the alt model per observable"),
    REAL("gauss.alt.correlation", gauss.model[2].correlation, 0.0, 0.0, 0.99, "",
         "gauss: correlation of the alt model between every pair"),
    VEC("gauss.resolution", gauss.resolution, 0.5, 0.0, 100.0, "",
        "gauss: standard deviation of the Gaussian smearing per observable"),
    ENUM("gauss.acceptance", gauss.acceptance, "full|standard", "full",
         "gauss: full (one category, every event seen) or standard (categories blind, "
         "partial, full: the efficiency, edge and partial keys)"),
    REAL("gauss.efficiency.max", gauss.eff_max, 0.9, 0.01, 1.0, "",
         "gauss standard: plateau of the efficiency, a logistic in x1"),
    REAL("gauss.efficiency.centre", gauss.eff_centre, -1.0, -100.0, 100.0, "",
         "gauss standard: x1 where the efficiency is half its plateau"),
    REAL("gauss.efficiency.width", gauss.eff_width, 0.5, 1e-3, 100.0, "",
         "gauss standard: the logistic's scale in x1"),
    REAL("gauss.edge", gauss.edge, 1.5, -100.0, 100.0, "",
         "gauss standard: hard edge: events with xD >= edge are never seen (blind region)"),
    REAL("gauss.partial", gauss.partial, 0.3, 0.0, 1.0, "",
         "gauss standard: probability that a seen event loses xD (category partial, xD "
         "reconstructed as 0)"),
    ENUM("data.source", data.source, "generate|file", "generate",
         "pseudo-data from the built-in generator, or an event file"),
    MODEL("data.model", data.model, 0, "generator model of the pseudo-data"),
    INT("data.events", data.events, 100000, 100, 1e9, "pseudo-data events to generate"),
    STR("data.file", data.file, "", "data event file (data.source: file); relative to the config"),
    ENUM("mc.source", mc.source, "generate|file", "generate",
         "Monte Carlo from the built-in generator, or an event file"),
    MODEL("mc.model", mc.model, 1, "generator model of the Monte Carlo"),
    INT("mc.events", mc.events, 1000000, 100, 1e9, "Monte Carlo events to generate"),
    STR("mc.file", mc.file, "", "MC event file (mc.source: file); relative to the config"),
    ENUMSET("campaign.methods", campaign.methods, METHOD_NAMES + 1, "[ibu]",
            "unfolding methods (docs/methods.md)"),
    MODELS("campaign.fill_models", campaign.fill_model, 6,
           "models that fill the unmeasured region (and give the prior); also MC event files "
           "(names ending .h5 or .hdf5, at most 4: their vertices are the model, named after "
           "the file: alt-gen.h5 is alt-gen; docs/methods.md)"),
    INT("campaign.replicas", campaign.replicas, 20, 0, 100000,
        "bootstrap replicas besides the nominal replica 0"),
    INT("campaign.ensemble", campaign.ensemble, 1, 1, 100,
        "ensemble members per (method, fill model, replica)"),
    BOOL("campaign.bootstrap_mc", campaign.bootstrap_mc, 0,
         "also give MC events Poisson(1) weights per replica"),
    INT("campaign.unbinned", campaign.unbinned, 0, 0, 10000000,
        "events per unit also stored unbinned, so that any binning can be made afterwards: the "
        "GAN methods' generator samples, the binned methods' MC events reweighted to the "
        "unit's result (/units/unbinned_x, unbinned_w; docs/formats.md); 0 = none"),
    BOOL("campaign.event_weights", campaign.event_weights, 0,
         "per unit every MC event's weight (float32), the MC's vertices once "
         "(/event_weights; docs/formats.md): OmniFold's per-event weights, a binned method's "
         "result spread over the MC's events bin by bin; the GAN methods have none (their samples: campaign.unbinned)"),
    ENUM("binning.vertex.scheme", vertex_bins.scheme, "theta-phi|cos-phi|product|auto", "auto",
         "vertex bins: pi0 uniform in theta* or in cos theta*, times phi*; product: the bins, "
         "lo, hi keys per observable; auto: theta-phi for the pi0 process, else product"),
    INT("binning.vertex.polar_bins", vertex_bins.n_polar, 18, 1, 3600,
        "theta-phi, cos-phi: vertex bins in theta* (or cos theta*); 18 = 10 deg"),
    INT("binning.vertex.phi_bins", vertex_bins.n_phi, 36, 1, 3600,
        "theta-phi, cos-phi: vertex bins in phi*; 36 = 10 deg"),
    PVEC("binning.vertex.bins", vertex_bins.bins, 20, 1, 10000, "",
         "product: equal bins per observable (one number: every observable)"),
    PVEC("binning.vertex.lo", vertex_bins.lo, NAN, -1e300, 1e300, "",
         "product: lower end of the binned range per observable (default: the observable's "
         "own; required for unbounded observables)"),
    PVEC("binning.vertex.hi", vertex_bins.hi, NAN, -1e300, 1e300, "",
         "product: upper end of the binned range per observable (as lo)"),
    ENUM("binning.detector.scheme", detector_bins.scheme, "theta-phi|cos-phi|product|auto",
         "auto", "detector bins (per seen category), as binning.vertex.scheme"),
    INT("binning.detector.polar_bins", detector_bins.n_polar, 18, 1, 3600,
        "theta-phi, cos-phi: detector bins in reconstructed theta* (or cos theta*)"),
    INT("binning.detector.phi_bins", detector_bins.n_phi, 36, 1, 3600,
        "theta-phi, cos-phi: detector bins in reconstructed phi*"),
    PVEC("binning.detector.bins", detector_bins.bins, 20, 1, 10000, "",
         "product: equal detector bins per reconstructed observable"),
    PVEC("binning.detector.lo", detector_bins.lo, NAN, -1e300, 1e300, "",
         "product: lower end of the detector binning per observable (as binning.vertex.lo)"),
    PVEC("binning.detector.hi", detector_bins.hi, NAN, -1e300, 1e300, "",
         "product: upper end of the detector binning per observable"),
    BOOL("binning.pairs", vertex_pairs, 0,
         "product: also the 2-D projections on every pair of observables, per unit and per "
         "group with their covariances (docs/formats.md)"),
    INT("ibu.iterations", ibu.iterations, 4, 1, 1000, "D'Agostini iterations"),
    REAL("ibu.min_efficiency", ibu.min_efficiency, 0.05, 0.0, 1.0, "",
         "vertex bins with efficiency below keep the prior, scaled by the fitted normalisation"),
    REAL("ibu.min_expected", ibu.min_expected, 10.0, 0.0, 1e12, "events",
         "vertex bins to which fewer measured data events are attributed (one Bayes step with "
         "the MC as prior) keep the prior too"),
    REAL("ibu.min_mc", ibu.min_mc, 10.0, 0.0, 1e12, "events",
         "vertex bins whose response rests on fewer seen MC events (Kish's effective number) "
         "are iterated but not measured: the result reports the prior's shape there too"),
    INT("ibu.reweight", ibu.reweight, 1, 0, 100,
        "passes that rebuild the response with the MC reweighted inside each measured vertex bin "
        "to the slope of the unfolded answer, then unfold again (docs/methods.md, IBU)"),
    INT("gan.hidden", gan.outer.hidden, 64, 4, 4096, "units per hidden layer of G and D"),
    INT("gan.layers", gan.outer.layers, 3, 1, 16, "hidden layers of G and D"),
    INT("gan.steps", gan.outer.steps, 4000, 1, 10000000,
        "training steps of the outer GAN (one D update, then one G update)"),
    INT("gan.batch", gan.outer.batch, 256, 8, 65536,
        "generated events per step (and data events per step)"),
    REAL("gan.lr", gan.outer.lr, 1e-3, 1e-7, 1.0, "",
         "Adam learning rate of G and D (betas 0.5, 0.999)"),
    REAL("gan.lr_final", gan.lr_final, 0.1, 0.0, 1.0, "",
         "learning rate at the last step as a fraction of gan.lr (linear decay)"),
    INT("gan.latent", gan.latent, 8, 1, 256, "dimension of the generator's noise input z"),
    REAL("gan.average", gan.average, 0.5, 0.0, 1.0, "",
         "the result pools G's samples at snapshots spread over this last fraction of the "
         "training (0: the last step only)"),
    INT("gan.snapshots", gan.snapshots, 20, 1, 100000,
        "snapshots of G pooled into the result (gan.samples in all)"),
    INT("gan.samples", gan.samples, 1000000, 1000, 100000000,
        "generator samples histogrammed per unit (each held in memory: 16 bytes per rank)"),
    REAL("gan.blind_efficiency", gan.blind_efficiency, 0.05, 0.0, 1.0, "",
         "vertex bins whose efficiency (from the MC) is below this are blind: only there does "
         "the fill model enter (the result's blind bins take its shape, as in IBU)"),
    REAL("gan.fill_weight", gan.fill_weight, 0.0, 0.0, 100.0, "",
         "weight of an optional blind channel in D's loss (fill-model vertices against G's in "
         "blind bins) against the measured topologies; 0 = G answers to the data alone"),
    REAL("gan.mmd_weight", gan.mmd_weight, 30.0, 0.0, 1000.0, "",
         "weight of the MMD term (fake measured events drawn by weight against the step's data "
         "events, Gaussian kernels of 0.05, 0.15, 0.45) in G's loss; 0 = adversarial only"),
    REAL("gan.instance_noise", gan.instance_noise, 0.05, 0.0, 1.0, "",
         "Gaussian noise added to the discriminator's input coordinates at the first step "
         "(pi0: cos theta*, phi* in rad; other spaces: times each observable's unit, "
         "docs/methods.md), decreasing linearly to a tenth at the last"),
    INT("gan.efficiency.hidden", gan.detector.efficiency.hidden, 64, 4, 4096,
        "units per hidden layer of the efficiency classifier (gan-topo, and gan-mixed's P "
        "head with gan.smearing.own_trunk; with one trunk the DS-GAN takes the larger of this "
        "and gan.smearing.hidden)"),
    INT("gan.efficiency.layers", gan.detector.efficiency.layers, 3, 1, 16,
        "hidden layers of the efficiency classifier"),
    INT("gan.efficiency.steps", gan.detector.efficiency.steps, 20000, 1, 10000000,
        "training steps of the efficiency classifier (and gan-mixed's P head with "
        "gan.smearing.own_trunk; with one trunk the DS-GAN trains the larger of this and "
        "gan.smearing.steps)"),
    INT("gan.efficiency.batch", gan.detector.efficiency.batch, 1024, 8, 65536,
        "MC events per step of the efficiency classifier and of the DS-GAN (gan-mixed)"),
    REAL("gan.efficiency.lr", gan.detector.efficiency.lr, 1e-2, 1e-7, 1.0, "",
         "Adam learning rate of the efficiency classifier and of the DS-GAN's probability "
         "head (betas 0.9, 0.999; decays linearly to 5 %)"),
    REAL("gan.efficiency.average", gan.detector.efficiency_average, 0.25, 0.0, 1.0, "",
         "the efficiency classifier and the DS-GAN (gan-mixed) end with the mean of their "
         "parameters over this last fraction of their training steps (Polyak averaging; "
         "0: the last step's parameters)"),
    INT("gan.smearing.hidden", gan.detector.smearing.hidden, 64, 4, 4096,
        "units per hidden layer of the smearing networks S_t and the DS-GAN"),
    INT("gan.smearing.layers", gan.detector.smearing.layers, 3, 1, 16,
        "hidden layers of the smearing networks and the DS-GAN"),
    INT("gan.smearing.steps", gan.detector.smearing.steps, 2000, 1, 10000000,
        "training steps of each smearing network and of the DS-GAN"),
    INT("gan.smearing.batch", gan.detector.smearing.batch, 512, 8, 65536,
        "MC events per step of the smearing networks and the DS-GAN"),
    REAL("gan.smearing.lr", gan.detector.smearing.lr, 5e-4, 1e-7, 1.0, "",
         "Adam learning rate of the smearing networks and of the DS-GAN's adversarial loss "
         "(betas 0.5, 0.999)"),
    INT("gan.smearing.noise", gan.detector.noise, 4, 1, 64,
        "noise inputs of the smearing networks and the DS-GAN"),
    REAL("gan.smearing.moments", gan.detector.moments, 0.0, 0.0, 1000.0, "",
         "weight of the moment match in the smearing networks' loss: per observable the "
         "squared differences of the batch's mean and variance of the residual, generated "
         "against the MC's (0: the adversarial loss alone)"),
    REAL("gan.smearing.trend", gan.detector.trend, 0.0, 0.0, 1000.0, "",
         "weight of the trend match in the smearing networks' loss: per observable and "
         "vertex coordinate the squared differences of the batch's mean of residual x "
         "coordinate and residual^2 x coordinate (standardised), generated against the MC's "
         "(0: off)"),
    REAL("gan.smearing.covariance", gan.detector.covariance, 0.0, 0.0, 1000.0, "",
         "weight of the covariance match in the smearing networks' loss: per pair of "
         "observables the squared difference of the batch's covariance of their residuals, "
         "generated against the MC's (0: off; in many observables the networks otherwise "
         "correlate the residuals, docs/methods.md)"),
    ENUM("gan.smearing.loss", gan.detector.loss, "adversarial|energy|mixture", "adversarial",
         "how the smearing networks and the DS-GAN's residual learn the MC's smearing: "
         "adversarial (a critic, plus the moment, trend and covariance matches), energy "
         "(the energy score of two draws per MC event against its residual, no critic) or "
         "mixture (per observable a Gaussian mixture of the residual at v, fitted by the MC's "
         "likelihood, no noise inputs); energy and mixture need the matches 0; "
         "docs/methods.md"),
    INT("gan.smearing.components", gan.detector.components, 4, 1, EF_SMEAR_MAX_COMP,
        "Gaussian components per observable of gan.smearing.loss mixture (unused otherwise)"),
    BOOL("gan.smearing.own_trunk", gan.detector.own_trunk, 1,
         "gan-mixed: the DS-GAN's P head gets a network of its own, trained as the efficiency "
         "classifier, beside the residual's network (false: one trunk for both)"),
    BOOL("gan.smearing.per_topology", gan.detector.per_topology, 0,
         "gan-mixed: the DS-GAN outputs one residual per measured topology T1..T3 (its critic "
         "is told the topology) instead of one residual for all"),
    BOOL("gan.share_detector", gan.share_detector, 1,
         "train the detector networks once per (method, replica, member) and reuse them for "
         "every fill model (false: every unit trains its own, with the same result)"),
    BOOL("gan.bias_correction", gan.bias_correction, 0,
         "train G a second time, from the same seed, on pseudo-data from the MC reweighted "
         "to the first G's answer, and correct the result by the bias that closure test shows "
         "(result = first - (second - the pseudo-truth); about twice the cost, "
         "docs/methods.md)"),
    INT("gan.polish", gan.polish, 0, 0, 100,
        "OmniFold iterations of G's answer through the MC's own response: the MC reweighted "
        "to G's answer is OmniFold's prior (classifiers as omnifold.*), and each seen vertex "
        "bin of G's answer takes the factor by which OmniFold moved it (0: off; "
        "docs/methods.md)"),
    ENUM("gan.partly_blind", gan.partly_blind, "generator|fill", "generator",
         "the blind part of a measured vertex bin (where the efficiency at the vertex is below "
         "gan.blind_efficiency): generator = G's samples there, which no data constrain; fill "
         "= the fill model's share of the bin beside G's seen part (IBU and OmniFold take the "
         "MC's shape inside a bin; docs/methods.md, \"Partly blind bins\")"),
    INT("gan.refine.iterations", gan.refine.iterations, 1, 0, 20,
        "iterations of the classifier refinement of G's pooled samples (OmniFold's two steps "
        "with G as the simulation); 0 = none"),
    INT("gan.refine.hidden", gan.refine.net.hidden, 64, 4, 4096,
        "units per hidden layer of the refinement's two classifiers"),
    INT("gan.refine.layers", gan.refine.net.layers, 2, 1, 16,
        "hidden layers of the refinement's classifiers"),
    INT("gan.refine.steps", gan.refine.net.steps, 2000, 1, 10000000,
        "training steps of each refinement classifier per iteration"),
    INT("gan.refine.batch", gan.refine.net.batch, 512, 8, 65536,
        "data events (step 1) and G samples (both steps) per classifier step"),
    REAL("gan.refine.lr", gan.refine.net.lr, 1e-3, 1e-7, 1.0, "",
         "Adam learning rate of the refinement classifiers (betas 0.9, 0.999; decays linearly "
         "to a tenth; the last quarter's parameters averaged)"),
    INT("gan.refine.samples", gan.refine.samples, 200000, 1000, 100000000,
        "G's pooled samples the classifiers train on (at most; spread over the pool)"),
    REAL("gan.refine.clip", gan.refine.clip, 5.0, 1.0001, 1000.0, "",
         "each classifier's ratio is clipped to [1 / clip, clip]"),
    INT("omnifold.iterations", omnifold.iterations, 4, 1, 100,
        "OmniFold iterations (each: step 1 at detector level, step 2 at vertex level; "
        "docs/methods.md)"),
    INT("omnifold.hidden", omnifold.net.hidden, 64, 4, 4096,
        "units per hidden layer of OmniFold's two classifiers"),
    INT("omnifold.layers", omnifold.net.layers, 3, 1, 16, "hidden layers of its classifiers"),
    INT("omnifold.steps", omnifold.net.steps, 2000, 1, 10000000,
        "training steps of each classifier per iteration"),
    INT("omnifold.batch", omnifold.net.batch, 1024, 8, 65536,
        "events per class per classifier step, drawn by weight"),
    REAL("omnifold.lr", omnifold.net.lr, 1e-3, 1e-7, 1.0, "",
         "Adam learning rate of the classifiers (betas 0.9, 0.999; decays linearly to a tenth; "
         "the last quarter's parameters averaged)"),
    REAL("omnifold.clip", omnifold.clip, 10.0, 1.0001, 1000.0, "",
         "each step's ratio exp(logit) is clipped to [1 / clip, clip]"),
    ENUM("omnifold.unreconstructed", omnifold.unreconstructed, "average|keep|interpolate",
         "average",
         "the pulled weight of an MC event with no reconstruction: average = the mean pull of "
         "its vertex bin's measured events (IBU's update; bins the detector does not see are "
         "left out of step 2), keep = its current weight (converges slowly where the "
         "efficiency is low), interpolate = none: step 2 learns the pull at vertex level from "
         "the measured events and applies it to all but the blind bins (unbinned; "
         "docs/methods.md)"),
    REAL("omnifold.blind_efficiency", omnifold.blind_efficiency, 0.05, 0.0, 1.0, "",
         "vertex bins whose efficiency (from the MC) is below this are blind: the fill model's "
         "shape there, scaled to the unfolded seen bins by the fill's own ratio (the fill "
         "enters nowhere else); with unreconstructed: average or interpolate step 2 leaves "
         "them out"),
    STR("output", output, "ensfold-results.h5",
        "campaign result file (the -o option overrides); relative to the working directory"),
};
#define N_KEYS (sizeof schema / sizeof schema[0])

size_t ef_config_key_count(void) { return N_KEYS; }
const char *ef_config_key_path(size_t i) {
  return i < N_KEYS ? schema[i].path : NULL;
}

int ef_config_key_markdown(size_t i, char *buf, size_t len) {
  if (i >= N_KEYS) return -1;
  const key_def *k = &schema[i];
  char def[160] = "", range[256] = "";
  switch (k->type) {
  case K_BOOL: snprintf(def, sizeof def, "%s", k->def ? "true" : "false");
    snprintf(range, sizeof range, "true, false"); break;
  case K_SEED: snprintf(def, sizeof def, "required");
    snprintf(range, sizeof range, "0 .. 2^63-1"); break;
  case K_INT: snprintf(def, sizeof def, "%g", k->def);
    snprintf(range, sizeof range, "%g .. %g (integer)", k->lo, k->hi); break;
  case K_REAL: snprintf(def, sizeof def, "%g", k->def);
    snprintf(range, sizeof range, "%g .. %g", k->lo, k->hi); break;
  case K_STRING: snprintf(def, sizeof def, "\"%s\"", k->sdef);
    snprintf(range, sizeof range, "a string (file path)"); break;
  case K_ENUM: case K_ENUM_SET: {
    char ch[128];
    choices_text(k->choices, ch, sizeof ch);
    snprintf(def, sizeof def, "%s", k->sdef);
    snprintf(range, sizeof range, k->type == K_ENUM ? "one of: %s" : "a list from: %s", ch);
    break;
  }
  case K_MODEL: case K_MODEL_SET: {
    size_t u = 0;
    for (int q = 0; q < ef_process_kinds() && u < sizeof def; q++) {
      char one[64];
      if (k->type == K_MODEL)
        snprintf(one, sizeof one, "%s", ef_process_kind_model_name(q, (int)k->def));
      else
        mask_text(q, ef_process_kind_default_fills(q), one, sizeof one);
      u += (size_t)snprintf(def + u, sizeof def - u, "%s%s (%s)", q ? ", " : "", one,
                            ef_process_kind_name(q));
    }
    char ch[128];
    models_text(-1, ch, sizeof ch);
    snprintf(range, sizeof range, "%s of the process's models (%s)",
             k->type == K_MODEL ? "one" : "a list", ch);
    break;
  }
  case K_REAL_VEC:
    snprintf(def, sizeof def, isnan(k->def) ? "the observable's" : "%g", k->def);
    snprintf(range, sizeof range, "one number, or %s; each %g .. %g",
             strncmp(k->path, "gauss.", 6) ? "one per observable" : "gauss.dim numbers", k->lo,
             k->hi);
    break;
  case K_REAL_LIST: {
    size_t u = 0;
    for (int j = 0; j < k->n && u < sizeof def; j++)
      u += (size_t)snprintf(def + u, sizeof def - u, "%s%g", j ? ", " : "[", k->list_def[j]);
    if (u < sizeof def) snprintf(def + u, sizeof def - u, "]");
    snprintf(range, sizeof range, "%d values, each %g .. %g", k->n, k->lo, k->hi);
    break;
  }
  }
  snprintf(buf, len, "| `%s` | %s | %s | %s | %s |", k->path, def, *k->unit ? k->unit : "-",
           range, k->doc);
  return 0;
}

/* ---- storing values --------------------------------------------------- */

static void *field(ef_config *cfg, const key_def *k) {
  return (char *)cfg + k->offset;
}
static const void *cfield(const ef_config *cfg, const key_def *k) {
  return (const char *)cfg + k->offset;
}

static void store(ef_config *cfg, const key_def *k, int idx, double v) {
  switch (k->type) {
  case K_REAL:
  case K_REAL_LIST: ((double *)field(cfg, k))[idx] = v * k->factor; break;
  case K_INT:
  case K_BOOL: *(int *)field(cfg, k) = (int)v; break;
  case K_SEED: *(uint64_t *)field(cfg, k) = (uint64_t)v; break;
  case K_REAL_VEC: ((ef_real_vec *)field(cfg, k))->v[idx] = v * k->factor; break;
  case K_STRING: case K_ENUM: case K_ENUM_SET: case K_MODEL: case K_MODEL_SET:
    break; /* set by set_key */
  }
}

static int set_source(ef_ctx *ctx, ef_config *cfg, const char *name) {
  char *s = strdup(name);
  if (!s) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  free(cfg->source);
  cfg->source = s;
  return EF_OK;
}

int ef_config_defaults(ef_ctx *ctx, ef_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  for (size_t i = 0; i < N_KEYS; i++) {
    const key_def *k = &schema[i];
    if (k->type == K_STRING) {
      snprintf((char *)field(cfg, k), EF_PATH_MAX, "%s", k->sdef);
    } else if (k->type == K_ENUM) {
      *(int *)field(cfg, k) = choice_index(k->choices, k->sdef);
    } else if (k->type == K_ENUM_SET) {
      /* sdef is "[a, b]" */
      unsigned mask = 0;
      char tmp[128];
      snprintf(tmp, sizeof tmp, "%s", k->sdef);
      for (char *tok = strtok(tmp, "[], "); tok; tok = strtok(NULL, "[], "))
        mask |= 1u << choice_index(k->choices, tok);
      *(unsigned *)field(cfg, k) = mask;
    } else if (k->type == K_MODEL) {
      *(int *)((char *)cfg + k->aux) = (int)k->def; /* the name stays "" */
    } else if (k->type == K_MODEL_SET) {
      *(unsigned *)((char *)cfg + k->aux) = (unsigned)k->def;
    } else if (k->type == K_REAL_VEC) {
      ((ef_real_vec *)field(cfg, k))->n = isnan(k->def) ? 0 : 1;
      if (!isnan(k->def)) store(cfg, k, 0, k->def);
    } else {
      for (int j = 0; j < k->n; j++)
        store(cfg, k, j, k->list_def ? k->list_def[j] : k->def);
    }
  }
  return set_source(ctx, cfg, "<defaults>");
}

void ef_config_resolve_path(const ef_config *cfg, const char *file, char *out, size_t len) {
  const char *src = cfg->source ? cfg->source : "";
  const char *slash = strrchr(src, '/');
  if (file[0] == '/' || !slash || src[0] == '<')
    snprintf(out, len, "%s", file);
  else
    snprintf(out, len, "%.*s/%s", (int)(slash - src), src, file);
}

void ef_config_free(ef_config *cfg) {
  if (!cfg) return;
  free(cfg->source);
  cfg->source = NULL;
}

/* ---- parsing ---------------------------------------------------------- */

typedef struct {
  ef_ctx *ctx;
  ef_config *cfg;
  const char *name;       /* file name for messages */
  yaml_document_t *doc;
  int line[N_KEYS];       /* 1-based line where each key was set, 0 = unset */
  int col[N_KEYS];
  int no_position;        /* --set: there is no file position to report */
} parse_state;

static int fail_at(parse_state *ps, const yaml_node_t *node, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));
static int fail_at(parse_state *ps, const yaml_node_t *node, const char *fmt,
                   ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (node && !ps->no_position)
    return ef_error_set(ps->ctx, EF_ERR_INPUT, "%s:%zu:%zu: %s", ps->name,
                        node->start_mark.line + 1, node->start_mark.column + 1, msg);
  return ef_error_set(ps->ctx, EF_ERR_INPUT, "%s: %s", ps->name, msg);
}

static const key_def *find_key(const char *path) {
  for (size_t i = 0; i < N_KEYS; i++)
    if (!strcmp(schema[i].path, path)) return &schema[i];
  return NULL;
}

static int is_section(const char *path) {
  size_t n = strlen(path);
  for (size_t i = 0; i < N_KEYS; i++)
    if (!strncmp(schema[i].path, path, n) && schema[i].path[n] == '.') return 1;
  return 0;
}

/* "a, b, c": the names allowed directly under section prefix ("" = top). */
static void allowed_under(const char *prefix, char *buf, size_t len) {
  size_t n = strlen(prefix), used = 0;
  buf[0] = '\0';
  const char *seen[N_KEYS];
  size_t n_seen = 0;
  for (size_t i = 0; i < N_KEYS; i++) {
    const char *p = schema[i].path;
    if (n && (strncmp(p, prefix, n) || p[n] != '.')) continue;
    const char *rest = n ? p + n + 1 : p;
    size_t seg = strcspn(rest, ".");
    int dup = 0;
    for (size_t j = 0; j < n_seen; j++)
      if (!strncmp(seen[j], rest, seg) && (seen[j][seg] == '.' || !seen[j][seg])) dup = 1;
    if (dup) continue;
    seen[n_seen++] = rest;
    int w = snprintf(buf + used, len - used, "%s%.*s", used ? ", " : "", (int)seg, rest);
    if (w < 0 || (size_t)w >= len - used) break;
    used += (size_t)w;
  }
}

static void describe_range(const key_def *k, char *buf, size_t len) {
  switch (k->type) {
  case K_BOOL: snprintf(buf, len, "true or false"); break;
  case K_SEED: snprintf(buf, len, "an integer in [0, 2^63-1]"); break;
  case K_INT: snprintf(buf, len, "an integer in [%g, %g]", k->lo, k->hi); break;
  case K_REAL:
    snprintf(buf, len, "a number in [%g, %g]%s%s", k->lo, k->hi, *k->unit ? " " : "",
             k->unit);
    break;
  case K_REAL_LIST:
    snprintf(buf, len, "a list of %d numbers in [%g, %g]%s%s", k->n, k->lo, k->hi,
             *k->unit ? " " : "", k->unit);
    break;
  case K_REAL_VEC:
    snprintf(buf, len, "a number or a list of 1 to %d numbers, each in [%g, %g]", k->n, k->lo,
             k->hi);
    break;
  case K_MODEL: case K_MODEL_SET: {
    char ch[128];
    models_text(-1, ch, sizeof ch);
    snprintf(buf, len, "%s (%s)", k->type == K_MODEL ? "a model name" : "a non-empty list of model names", ch);
    break;
  }
  case K_STRING: snprintf(buf, len, "a string"); break;
  case K_ENUM: case K_ENUM_SET: {
    char ch[128];
    choices_text(k->choices, ch, sizeof ch);
    snprintf(buf, len, k->type == K_ENUM ? "one of %s" : "a non-empty list from %s", ch);
    break;
  }
  }
}

static int parse_scalar_value(parse_state *ps, const key_def *k, yaml_node_t *node,
                              double *out) {
  char allowed[256];
  describe_range(k, allowed, sizeof allowed);
  if (node->type != YAML_SCALAR_NODE)
    return fail_at(ps, node, "key '%s': expected %s, got a %s", k->path, allowed,
                   node->type == YAML_MAPPING_NODE ? "mapping" : "list");
  const char *s = (const char *)node->data.scalar.value;
  int quoted = node->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
               node->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
  if (k->type == K_BOOL) {
    if (!quoted && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))) {
      *out = 1;
      return EF_OK;
    }
    if (!quoted && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))) {
      *out = 0;
      return EF_OK;
    }
    return fail_at(ps, node, "key '%s': expected true or false, got '%s'", k->path, s);
  }
  if (quoted || !*s)
    return fail_at(ps, node, "key '%s': expected %s, got %s'%s'", k->path, allowed,
                   quoted ? "the string " : "", s);
  char *end = NULL;
  errno = 0;
  double v;
  if (k->type == K_SEED || k->type == K_INT) {
    if (s[0] == '-' && k->type == K_SEED)
      return fail_at(ps, node, "key '%s': expected %s, got '%s'", k->path, allowed, s);
    unsigned long long u = 0;
    long long i = 0;
    if (k->type == K_SEED)
      u = strtoull(s, &end, 10);
    else
      i = strtoll(s, &end, 10);
    if (*end || errno == ERANGE)
      return fail_at(ps, node, "key '%s': expected %s, got '%s'", k->path, allowed, s);
    if (k->type == K_SEED) {
      if (u > 9223372036854775807ull)
        return fail_at(ps, node, "key '%s' = %s: out of range, allowed %s", k->path, s,
                       allowed);
      *out = 0.0; /* not representable in a double: set_key stores the integer */
      return EF_OK;
    }
    v = (double)i;
  } else {
    v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v))
      return fail_at(ps, node, "key '%s': expected %s, got '%s'", k->path, allowed, s);
  }
  if (v < k->lo || v > k->hi)
    return fail_at(ps, node, "key '%s' = %s: out of range, allowed %s", k->path, s,
                   allowed);
  *out = v;
  return EF_OK;
}

/* The text of a scalar node, or the key's message. */
static int scalar_text(parse_state *ps, const key_def *k, yaml_node_t *node, const char **s) {
  if (node->type != YAML_SCALAR_NODE) {
    char allowed[256];
    describe_range(k, allowed, sizeof allowed);
    return fail_at(ps, node, "key '%s': expected %s", k->path, allowed);
  }
  *s = (const char *)node->data.scalar.value;
  return EF_OK;
}

static int not_allowed(parse_state *ps, const key_def *k, yaml_node_t *node, const char *s) {
  char allowed[256];
  describe_range(k, allowed, sizeof allowed);
  return fail_at(ps, node, "key '%s': '%s' is not allowed (%s)", k->path, s, allowed);
}

/* A choice from k->choices in a scalar node. */
static int parse_choice(parse_state *ps, const key_def *k, yaml_node_t *node, int *out) {
  const char *s = NULL;
  EF_CHECK(scalar_text(ps, k, node, &s));
  int i = choice_index(k->choices, s);
  if (i < 0) return not_allowed(ps, k, node, s);
  *out = i;
  return EF_OK;
}

/* A model name of some process (which process is checked once every key is
 * read: check_consistency). */
static int parse_model(parse_state *ps, const key_def *k, yaml_node_t *node) {
  const char *s = NULL;
  EF_CHECK(scalar_text(ps, k, node, &s));
  return model_known(s) && strlen(s) < 16 ? EF_OK : not_allowed(ps, k, node, s);
}

/* Does a fill_models entry name an event file (it ends in .h5 or .hdf5)? */
static int is_fill_file(const char *s) {
  size_t n = strlen(s);
  return (n > 3 && !strcmp(s + n - 3, ".h5")) || (n > 5 && !strcmp(s + n - 5, ".hdf5"));
}

/* An event file among campaign.fill_models: stored as written. */
static int parse_fill_file(parse_state *ps, const key_def *k, yaml_node_t *item) {
  const char *s = (const char *)item->data.scalar.value;
  ef_campaign_params *c = &ps->cfg->campaign;
  if (strcmp(k->path, "campaign.fill_models"))
    return fail_at(ps, item, "key '%s': '%s' is a file; only campaign.fill_models takes event "
                   "files", k->path, s);
  if (c->n_fill_files >= EF_FILL_FILES_MAX)
    return fail_at(ps, item, "key '%s': at most %d event files", k->path, EF_FILL_FILES_MAX);
  if (strlen(s) >= EF_PATH_MAX)
    return fail_at(ps, item, "key '%s': path longer than %d characters", k->path,
                   EF_PATH_MAX - 1);
  snprintf(c->fill_file[c->n_fill_files++], EF_PATH_MAX, "%s", s);
  return EF_OK;
}

/* A list of model names, stored as "a, b" (resolved later); in
 * campaign.fill_models also event files (parse_fill_file). */
static int parse_model_set(parse_state *ps, const key_def *k, yaml_node_t *node) {
  char allowed[256];
  describe_range(k, allowed, sizeof allowed);
  if (node->type != YAML_SEQUENCE_NODE)
    return fail_at(ps, node, "key '%s': expected %s, e.g. [PS, M2]", k->path, allowed);
  int n = (int)(node->data.sequence.items.top - node->data.sequence.items.start);
  if (n == 0) return fail_at(ps, node, "key '%s': expected %s, got []", k->path, allowed);
  char *out = (char *)field(ps->cfg, k);
  char buf[64] = "";
  size_t u = 0;
  ps->cfg->campaign.n_fill_files = 0; /* a later setting replaces the list */
  for (int j = 0; j < n; j++) {
    yaml_node_t *item = yaml_document_get_node(ps->doc, node->data.sequence.items.start[j]);
    const char *name = NULL;
    EF_CHECK(scalar_text(ps, k, item, &name));
    for (int q = 0; q < j; q++) {
      yaml_node_t *prev = yaml_document_get_node(ps->doc, node->data.sequence.items.start[q]);
      if (!strcmp((const char *)prev->data.scalar.value, name))
        return fail_at(ps, item, "key '%s': '%s' listed twice", k->path, name);
    }
    if (is_fill_file(name)) {
      EF_CHECK(parse_fill_file(ps, k, item));
      continue;
    }
    EF_CHECK(parse_model(ps, k, item));
    u += (size_t)snprintf(buf + u, sizeof buf - u, "%s%s", u ? ", " : "", name);
    if (u >= sizeof buf) return fail_at(ps, node, "key '%s': too many names", k->path);
  }
  /* only files: no model of the process (the default fills do not apply) */
  memcpy(out, u ? buf : "-", u ? sizeof buf : 2);
  return EF_OK;
}

/* One number, or a list of 1 .. k->n numbers. */
static int parse_vec(parse_state *ps, const key_def *k, yaml_node_t *node) {
  ef_real_vec *v = (ef_real_vec *)field(ps->cfg, k);
  double vals[EF_PARAM_VEC_MAX];
  int n = 1;
  if (node->type == YAML_SEQUENCE_NODE) {
    n = (int)(node->data.sequence.items.top - node->data.sequence.items.start);
    char allowed[256];
    describe_range(k, allowed, sizeof allowed);
    if ((n < 1 && !isnan(k->def)) || n > k->n) /* [] = not given, where that is the default */
      return fail_at(ps, node, "key '%s': expected %s, got %d", k->path, allowed, n);
    for (int j = 0; j < n; j++)
      EF_CHECK(parse_scalar_value(
          ps, k, yaml_document_get_node(ps->doc, node->data.sequence.items.start[j]), &vals[j]));
  } else {
    EF_CHECK(parse_scalar_value(ps, k, node, &vals[0]));
  }
  v->n = n;
  for (int j = 0; j < n; j++) store(ps->cfg, k, j, vals[j]);
  return EF_OK;
}

static int set_key(parse_state *ps, const key_def *k, yaml_node_t *node) {
  size_t idx = (size_t)(k - schema);
  if (ps->line[idx])
    return fail_at(ps, node, "key '%s' given twice (first at line %d)", k->path,
                   ps->line[idx]);
  if (k->type == K_STRING) {
    if (node->type != YAML_SCALAR_NODE)
      return fail_at(ps, node, "key '%s': expected a string", k->path);
    const char *s = (const char *)node->data.scalar.value;
    if (strlen(s) >= EF_PATH_MAX)
      return fail_at(ps, node, "key '%s': longer than %d characters", k->path, EF_PATH_MAX - 1);
    snprintf((char *)field(ps->cfg, k), EF_PATH_MAX, "%s", s);
  } else if (k->type == K_ENUM) {
    EF_CHECK(parse_choice(ps, k, node, (int *)field(ps->cfg, k)));
  } else if (k->type == K_ENUM_SET) {
    char allowed[256];
    describe_range(k, allowed, sizeof allowed);
    if (node->type != YAML_SEQUENCE_NODE)
      return fail_at(ps, node, "key '%s': expected %s, e.g. [%.*s]", k->path, allowed,
                     (int)strcspn(k->choices, "|"), k->choices);
    int n = (int)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n == 0) return fail_at(ps, node, "key '%s': expected %s, got []", k->path, allowed);
    unsigned mask = 0;
    for (int j = 0; j < n; j++) {
      yaml_node_t *item = yaml_document_get_node(ps->doc, node->data.sequence.items.start[j]);
      int c;
      EF_CHECK(parse_choice(ps, k, item, &c));
      if (mask & (1u << c))
        return fail_at(ps, item, "key '%s': '%s' listed twice", k->path,
                       (const char *)item->data.scalar.value);
      mask |= 1u << c;
    }
    *(unsigned *)field(ps->cfg, k) = mask;
  } else if (k->type == K_MODEL) {
    EF_CHECK(parse_model(ps, k, node));
    snprintf((char *)field(ps->cfg, k), 16, "%s", (const char *)node->data.scalar.value);
  } else if (k->type == K_MODEL_SET) {
    EF_CHECK(parse_model_set(ps, k, node));
  } else if (k->type == K_REAL_VEC) {
    EF_CHECK(parse_vec(ps, k, node));
  } else if (k->type == K_REAL_LIST) {
    char allowed[256];
    describe_range(k, allowed, sizeof allowed);
    if (node->type != YAML_SEQUENCE_NODE)
      return fail_at(ps, node, "key '%s': expected %s", k->path, allowed);
    int n = (int)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n != k->n)
      return fail_at(ps, node, "key '%s': expected %s, got %d", k->path, allowed, n);
    double vals[64];
    for (int j = 0; j < n; j++) {
      yaml_node_t *item =
          yaml_document_get_node(ps->doc, node->data.sequence.items.start[j]);
      EF_CHECK(parse_scalar_value(ps, k, item, &vals[j]));
    }
    for (int j = 0; j < n; j++) store(ps->cfg, k, j, vals[j]);
  } else {
    double v;
    EF_CHECK(parse_scalar_value(ps, k, node, &v));
    if (k->type == K_SEED)
      *(uint64_t *)field(ps->cfg, k) =
          strtoull((const char *)node->data.scalar.value, NULL, 10);
    else
      store(ps->cfg, k, 0, v);
  }
  ps->line[idx] = (int)node->start_mark.line + 1;
  ps->col[idx] = (int)node->start_mark.column + 1;
  return EF_OK;
}

static int walk_mapping(parse_state *ps, yaml_node_t *map, const char *prefix) {
  for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
       pair < map->data.mapping.pairs.top; pair++) {
    yaml_node_t *kn = yaml_document_get_node(ps->doc, pair->key);
    yaml_node_t *vn = yaml_document_get_node(ps->doc, pair->value);
    if (kn->type != YAML_SCALAR_NODE)
      return fail_at(ps, kn, "keys must be plain names%s%s", *prefix ? " under " : "",
                     prefix);
    /* a name given twice in one mapping (a repeated section too: libyaml
     * keeps both pairs, and the second would silently merge) */
    for (yaml_node_pair_t *prev = map->data.mapping.pairs.start; prev < pair; prev++) {
      yaml_node_t *pk = yaml_document_get_node(ps->doc, prev->key);
      if (pk->type == YAML_SCALAR_NODE &&
          !strcmp((const char *)pk->data.scalar.value, (const char *)kn->data.scalar.value))
        return fail_at(ps, kn, "key '%s%s%s' given twice (first at line %zu)", prefix,
                       *prefix ? "." : "", (const char *)kn->data.scalar.value,
                       pk->start_mark.line + 1);
    }
    char path[256];
    snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "",
             (const char *)kn->data.scalar.value);
    const key_def *k = find_key(path);
    if (k) {
      EF_CHECK(set_key(ps, k, vn));
    } else if (is_section(path)) {
      if (vn->type != YAML_MAPPING_NODE)
        return fail_at(ps, vn, "key '%s' is a section: expected a mapping of keys", path);
      EF_CHECK(walk_mapping(ps, vn, path));
    } else {
      char allowed[1024];
      allowed_under(prefix, allowed, sizeof allowed);
      return fail_at(ps, kn, "unknown key '%s' (allowed%s%s: %s)", path,
                     *prefix ? " under " : " at top level", prefix, allowed);
    }
  }
  return EF_OK;
}

/* ":line:col" of key k where it was set ("" with --set or when unset). */
static void key_where(const parse_state *ps, const key_def *k, char *buf, size_t len) {
  size_t at = (size_t)(k - schema);
  buf[0] = '\0';
  if (!ps->no_position && ps->line[at]) snprintf(buf, len, ":%d:%d", ps->line[at], ps->col[at]);
}

/* campaign.fill_models' event files: the slots after the process's models. */
static int resolve_fill_files(parse_state *ps) {
  ef_campaign_params *c = &ps->cfg->campaign;
  int first = ef_process_kind_n_models(ps->cfg->process);
  if (first + c->n_fill_files > EF_N_FILLS) {
    char where[64];
    key_where(ps, find_key("campaign.fill_models"), where, sizeof where);
    return ef_error_set(ps->ctx, EF_ERR_INPUT, "%s%s: key 'campaign.fill_models': at most %d "
                        "event files with process %s (%d fill slots, %d models)", ps->name,
                        where, EF_N_FILLS - first, ef_process_kind_name(ps->cfg->process),
                        EF_N_FILLS, first);
  }
  for (int j = 0; j < c->n_fill_files; j++) c->fill_models |= 1u << (first + j);
  return EF_OK;
}

/* The model keys' names as slots of the process (names "" keep the default). */
static int resolve_models(parse_state *ps) {
  int kind = ps->cfg->process;
  char where[64], ch[128];
  models_text(kind, ch, sizeof ch);
  for (size_t i = 0; i < N_KEYS; i++) {
    const key_def *k = &schema[i];
    if (k->type != K_MODEL && k->type != K_MODEL_SET) continue;
    const char *names = (const char *)cfield(ps->cfg, k);
    if (!names[0]) { /* not given: the process's default fills; data and mc slots stay */
      if (k->type == K_MODEL_SET)
        *(unsigned *)((char *)ps->cfg + k->aux) = ef_process_kind_default_fills(kind);
      continue;
    }
    unsigned mask = 0;
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s", strcmp(names, "-") ? names : ""); /* "-": files only */
    for (char *tok = strtok(tmp, ", "); tok; tok = strtok(NULL, ", ")) {
      int slot = model_slot(kind, tok);
      if (slot < 0) {
        key_where(ps, k, where, sizeof where);
        return ef_error_set(ps->ctx, EF_ERR_INPUT,
                            "%s%s: key '%s': '%s' is not a model of process %s (its models: %s)",
                            ps->name, where, k->path, tok, ef_process_kind_name(kind), ch);
      }
      if (k->type == K_MODEL) *(int *)((char *)ps->cfg + k->aux) = slot;
      mask |= 1u << slot;
    }
    if (k->type == K_MODEL_SET) *(unsigned *)((char *)ps->cfg + k->aux) = mask;
  }
  return resolve_fill_files(ps);
}

/* Every gauss.* list holds one number or gauss.dim numbers. */
static int check_vectors(parse_state *ps) {
  int dim = ps->cfg->gauss.dim;
  for (size_t i = 0; i < N_KEYS; i++) {
    const key_def *k = &schema[i];
    if (k->type != K_REAL_VEC || strncmp(k->path, "gauss.", 6)) continue; /* binning: inputs.c */
    int n = ((const ef_real_vec *)cfield(ps->cfg, k))->n;
    if (n == 1 || n == dim) continue;
    char where[64];
    key_where(ps, k, where, sizeof where);
    return ef_error_set(ps->ctx, EF_ERR_INPUT,
                        "%s%s: key '%s' has %d numbers but gauss.dim is %d (give one number "
                        "for every observable, or %d)", ps->name, where, k->path, n, dim, dim);
  }
  return EF_OK;
}

/* gan.smearing.loss energy and mixture have no critic: the batch matches,
 * which act on the critic's rows, must be off. */
static int check_smearing_loss(parse_state *ps) {
  int loss = ps->cfg->gan.detector.loss;
  if (loss == EF_SMEAR_ADVERSARIAL) return EF_OK;
  static const char *matches[] = {"gan.smearing.moments", "gan.smearing.trend",
                                  "gan.smearing.covariance"};
  for (size_t i = 0; i < sizeof matches / sizeof *matches; i++) {
    const key_def *k = find_key(matches[i]);
    double w = *(const double *)cfield(ps->cfg, k);
    if (w == 0.0) continue;
    char where[64];
    key_where(ps, k, where, sizeof where);
    return ef_error_set(ps->ctx, EF_ERR_INPUT,
                        "%s%s: '%s' = %g needs gan.smearing.loss adversarial (the %s loss "
                        "has no critic rows to match); set it to 0 or the loss to adversarial",
                        ps->name, where, k->path, w, loss == EF_SMEAR_ENERGY ? "energy" : "mixture");
  }
  return EF_OK;
}

/* gan.polish and gan.bias_correction both correct G's answer through the
 * MC's response, each bin by its own factor: one at a time. */
static int check_polish(parse_state *ps) {
  if (ps->cfg->gan.polish == 0 || !ps->cfg->gan.bias_correction) return EF_OK;
  char where[64];
  key_where(ps, find_key("gan.polish"), where, sizeof where);
  return ef_error_set(ps->ctx, EF_ERR_INPUT,
                      "%s%s: 'gan.polish' = %d and 'gan.bias_correction' = true both correct "
                      "G's answer through the MC's response; set gan.polish to 0 or "
                      "gan.bias_correction to false", ps->name, where, ps->cfg->gan.polish);
}

/* Settings that are each in range but contradict one another. */
static int check_consistency(parse_state *ps) {
  EF_CHECK(resolve_models(ps));
  EF_CHECK(check_vectors(ps));
  EF_CHECK(check_smearing_loss(ps));
  EF_CHECK(check_polish(ps));
  if (ps->cfg->process == EF_PROCESS_FILES &&
      (ps->cfg->data.source != EF_SOURCE_FILE || ps->cfg->mc.source != EF_SOURCE_FILE)) {
    const key_def *k = find_key(ps->cfg->data.source != EF_SOURCE_FILE ? "data.source" : "mc.source");
    char where[64];
    key_where(ps, find_key("process"), where, sizeof where);
    return ef_error_set(ps->ctx, EF_ERR_INPUT,
                        "%s%s: process files reads its events from files: '%s' must be file "
                        "(with data.file and mc.file)", ps->name, where, k->path);
  }
  static const struct {
    const char *lo, *hi;
  } pairs[] = {
      {"detector.proton.theta_min", "detector.proton.theta_max"},
      {"detector.tof.theta_min", "detector.tof.theta_max"},
      {"detector.photon.theta_min", "detector.photon.theta_max"},
  };
  static const struct {
    const char *source, *file;
  } files[] = {{"data.source", "data.file"}, {"mc.source", "mc.file"}};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    const key_def *a = find_key(files[i].source), *b = find_key(files[i].file);
    int src = *(const int *)cfield(ps->cfg, a);
    const char *f = (const char *)cfield(ps->cfg, b);
    if ((src == EF_SOURCE_FILE) == (f[0] != '\0')) continue;
    size_t at = (size_t)((src == EF_SOURCE_FILE ? a : b) - schema);
    char where[64] = "";
    if (!ps->no_position)
      snprintf(where, sizeof where, ":%d:%d", ps->line[at] ? ps->line[at] : 1,
               ps->line[at] ? ps->col[at] : 1);
    return ef_error_set(ps->ctx, EF_ERR_INPUT,
                        src == EF_SOURCE_FILE
                            ? "%s%s: '%s' is file but '%s' is not given"
                            : "%s%s: '%s' is generate but '%s' is given (set %s: file)",
                        ps->name, where, a->path, b->path, a->path);
  }
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    const key_def *a = find_key(pairs[i].lo), *b = find_key(pairs[i].hi);
    double va = *(const double *)cfield(ps->cfg, a), vb = *(const double *)cfield(ps->cfg, b);
    if (va < vb) continue;
    size_t ib = (size_t)(b - schema), ia = (size_t)(a - schema);
    size_t at = ps->line[ib] ? ib : ia;
    if (ps->no_position)
      return ef_error_set(ps->ctx, EF_ERR_INPUT, "%s: '%s' = %g must be greater than '%s' = %g",
                          ps->name, b->path, vb, a->path, va);
    return ef_error_set(ps->ctx, EF_ERR_INPUT,
                        "%s:%d:%d: '%s' = %g must be greater than '%s' = %g", ps->name,
                        ps->line[at] ? ps->line[at] : 1, ps->line[at] ? ps->col[at] : 1,
                        b->path, vb, a->path, va);
  }
  /* each key may be up to 3600, but the result file holds (V, V) covariance
   * matrices (8 V^2 bytes each): 3600 x 3600 bins would compute for a minute
   * and then fail for memory at the very end */
  const key_def *kp = find_key("binning.vertex.polar_bins"), *kf = find_key("binning.vertex.phi_bins");
  long long nv = (long long)*(const int *)cfield(ps->cfg, kp) * *(const int *)cfield(ps->cfg, kf);
  int scheme = ps->cfg->vertex_bins.scheme; /* the product binning's count: inputs.c */
  int pi0_bins = scheme == EF_BIN_THETA_PHI || scheme == EF_BIN_COS_PHI ||
                 (scheme == EF_BIN_AUTO && ps->cfg->process == EF_PROCESS_PI0);
  if (pi0_bins && nv > EF_CONFIG_MAX_VERTEX_BINS) {
    size_t ip = (size_t)(kp - schema), iff = (size_t)(kf - schema);
    size_t at = ps->line[iff] > ps->line[ip] ? iff : ip;
    char where[64] = "";
    if (!ps->no_position)
      snprintf(where, sizeof where, ":%d:%d", ps->line[at] ? ps->line[at] : 1,
               ps->line[at] ? ps->col[at] : 1);
    return ef_error_set(ps->ctx, EF_ERR_INPUT,
                        "%s%s: binning.vertex: polar_bins x phi_bins = %lld vertex bins; at most "
                        "%d allowed (the result file holds (V, V) covariance matrices)",
                        ps->name, where, nv, EF_CONFIG_MAX_VERTEX_BINS);
  }
  return EF_OK;
}

/* libyaml 0.2.5 takes time quadratic in the flow nesting depth ('[[[...':
 * 400 kB run 30 s, a few MB hang): refuse deep nesting before parsing.
 * Brackets in quoted scalars and comments do not count. */
#define EF_CONFIG_MAX_DEPTH 64
static int check_depth(ef_ctx *ctx, const char *text, const char *name, int position) {
  int depth = 0, comment = 0;
  char quote = 0;
  size_t line = 1, col = 0;
  for (const char *c = text; *c; c++) {
    col++;
    if (*c == '\n') { line++; col = 0; comment = 0; continue; }
    if (comment) continue;
    if (quote) {
      if (quote == '"' && *c == '\\' && c[1] && c[1] != '\n') { c++; col++; }
      else if (*c == quote) quote = 0;
      continue;
    }
    if (*c == '\'' || *c == '"') quote = *c;
    else if (*c == '#' && (c == text || c[-1] == ' ' || c[-1] == '\t' || c[-1] == '\n')) comment = 1;
    else if (*c == '[' || *c == '{') {
      if (++depth > EF_CONFIG_MAX_DEPTH) {
        if (!position)
          return ef_error_set(ctx, EF_ERR_INPUT, "%s: YAML nested deeper than %d levels", name,
                              EF_CONFIG_MAX_DEPTH);
        return ef_error_set(ctx, EF_ERR_INPUT, "%s:%zu:%zu: YAML nested deeper than %d levels",
                            name, line, col, EF_CONFIG_MAX_DEPTH);
      }
    } else if ((*c == ']' || *c == '}') && depth > 0) depth--;
  }
  return EF_OK;
}

static int load_document(parse_state *ps, yaml_parser_t *parser, int need_required) {
  yaml_document_t doc;
  if (!yaml_parser_load(parser, &doc)) {
    if (parser->error == YAML_READER_ERROR && parser->input.string.start) {
      /* a reader error (bad UTF-8) has no mark, only a byte offset */
      size_t line = 1, col = 1;
      for (size_t i = 0; i < parser->problem_offset &&
                         parser->input.string.start + i < parser->input.string.end; i++) {
        if (parser->input.string.start[i] == '\n') { line++; col = 1; }
        else col++;
      }
      return ef_error_set(ps->ctx, EF_ERR_INPUT, "%s:%zu:%zu: YAML syntax error: %s",
                          ps->name, line, col, parser->problem ? parser->problem : "unreadable");
    }
    return ef_error_set(ps->ctx, EF_ERR_INPUT, "%s:%zu:%zu: YAML syntax error: %s%s%s",
                        ps->name, parser->problem_mark.line + 1,
                        parser->problem_mark.column + 1,
                        parser->problem ? parser->problem : "unreadable",
                        parser->context ? " " : "", parser->context ? parser->context : "");
  }
  ps->doc = &doc;
  int rc = EF_OK;
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (root) {
    if (root->type != YAML_MAPPING_NODE)
      rc = fail_at(ps, root, "the config must be a mapping of keys (e.g. 'seed: 1')");
    else
      rc = walk_mapping(ps, root, "");
    if (rc == EF_OK) {
      yaml_document_t extra;
      if (!yaml_parser_load(parser, &extra)) {
        rc = ef_error_set(ps->ctx, EF_ERR_INPUT,
                          "%s:%zu:%zu: YAML syntax error after the document: %s", ps->name,
                          parser->problem_mark.line + 1, parser->problem_mark.column + 1,
                          parser->problem ? parser->problem : "unreadable");
      } else {
        if (yaml_document_get_root_node(&extra))
          rc = ef_error_set(ps->ctx, EF_ERR_INPUT,
                            "%s:%zu:%zu: more than one YAML document; put everything in one",
                            ps->name, extra.start_mark.line + 1, extra.start_mark.column + 1);
        yaml_document_delete(&extra);
      }
    }
  }
  yaml_document_delete(&doc);
  ps->doc = NULL;
  if (rc != EF_OK) return rc;
  if (need_required) {
    for (size_t i = 0; i < N_KEYS; i++) {
      if (!schema[i].required || ps->line[i]) continue;
      char allowed[256];
      describe_range(&schema[i], allowed, sizeof allowed);
      return ef_error_set(ps->ctx, EF_ERR_INPUT,
                          "%s:1:1: missing required key '%s' (%s; %s)", ps->name,
                          schema[i].path, schema[i].doc, allowed);
    }
  }
  return check_consistency(ps);
}

int ef_config_load_string(ef_ctx *ctx, ef_config *cfg, const char *text,
                          const char *name) {
  EF_CHECK(ef_config_defaults(ctx, cfg));
  EF_CHECK(set_source(ctx, cfg, name));
  EF_CHECK(check_depth(ctx, text, name, 1));
  parse_state *ps = calloc(1, sizeof *ps);
  if (!ps) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  *ps = (parse_state){.ctx = ctx, .cfg = cfg, .name = name};
  yaml_parser_t parser;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
  int rc = load_document(ps, &parser, 1);
  yaml_parser_delete(&parser);
  free(ps);
  return rc;
}

int ef_config_load(ef_ctx *ctx, ef_config *cfg, const char *path) {
  /* O_NONBLOCK: opening a FIFO without a writer must not hang (it then reads
   * as empty); reads block again as usual */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  FILE *f = NULL;
  if (fd >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0) f = fdopen(fd, "rb");
  if (!f) {
    int err = errno;
    if (fd >= 0) close(fd);
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: cannot open config: %s", path, strerror(err));
  }
  char *text = NULL;
  size_t len = 0, cap = 0;
  int rc = EF_OK;
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > EF_CONFIG_MAX_BYTES)
    rc = ef_error_set(ctx, EF_ERR_INPUT,
                      "%s: %lld bytes; a config may hold at most %d bytes (1 MiB: settings, "
                      "not data; event samples go in HDF5 files named by data.file/mc.file)",
                      path, (long long)st.st_size, EF_CONFIG_MAX_BYTES);
  while (rc == EF_OK) {
    if (len + 4096 + 1 > cap) {
      cap = cap ? 2 * cap : 8192;
      if (cap > 2u * EF_CONFIG_MAX_BYTES + 8192) { /* a pipe or FIFO that goes on */
        rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: more than %d bytes; a config may hold at "
                          "most %d bytes (1 MiB)", path, EF_CONFIG_MAX_BYTES, EF_CONFIG_MAX_BYTES);
        break;
      }
      char *t = realloc(text, cap);
      if (!t) {
        rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory reading %s", path);
        break;
      }
      text = t;
    }
    size_t got = fread(text + len, 1, 4096, f);
    len += got;
    if (got < 4096) {
      if (ferror(f))
        rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: cannot read config: %s", path,
                          strerror(errno));
      break;
    }
  }
  fclose(f);
  if (rc == EF_OK && len > EF_CONFIG_MAX_BYTES)
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: %zu bytes; a config may hold at most %d bytes "
                      "(1 MiB)", path, len, EF_CONFIG_MAX_BYTES);
  if (rc == EF_OK) {
    text[len] = '\0';
    if (strlen(text) != len)
      rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: config contains a NUL byte (binary file?)",
                        path);
    else
      rc = ef_config_load_string(ctx, cfg, text, path);
  }
  free(text);
  return rc;
}

/* One "--set a.b=v" onto cfg; check_consistency afterwards when check. */
static int set_one(ef_ctx *ctx, ef_config *cfg, const char *assignment, int check) {
  const char *eq = strchr(assignment, '=');
  char path[256];
  if (!eq || eq == assignment || (size_t)(eq - assignment) >= sizeof path)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "--set '%s': expected KEY=VALUE, e.g. physics.beam_energy=0.34",
                        assignment);
  memcpy(path, assignment, (size_t)(eq - assignment));
  path[eq - assignment] = '\0';
  const key_def *k = find_key(path);
  char name[300];
  snprintf(name, sizeof name, "--set %s", path);
  if (!k && is_section(path)) {
    char allowed[1024];
    allowed_under(path, allowed, sizeof allowed);
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "--set: '%s' is a section, not a key: set its keys one at a time, "
                        "--set %s.KEY=VALUE (keys under %s: %s)", path, path, path, allowed);
  }
  if (!k) {
    char allowed[1024], prefix[256];
    snprintf(prefix, sizeof prefix, "%s", path);
    char *dot = strrchr(prefix, '.');
    if (dot) *dot = '\0'; else prefix[0] = '\0';
    if (!is_section(prefix)) prefix[0] = '\0';
    allowed_under(prefix, allowed, sizeof allowed);
    return ef_error_set(ctx, EF_ERR_INPUT, "--set: unknown key '%s' (allowed%s%s: %s)",
                        path, *prefix ? " under " : " at top level", prefix, allowed);
  }
  EF_CHECK(check_depth(ctx, eq + 1, name, 0));
  parse_state *ps = calloc(1, sizeof *ps);
  if (!ps) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  *ps = (parse_state){.ctx = ctx, .cfg = cfg, .name = name, .no_position = 1};
  yaml_parser_t parser;
  yaml_document_t doc;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(&parser, (const unsigned char *)(eq + 1), strlen(eq + 1));
  int rc = EF_OK;
  if (!yaml_parser_load(&parser, &doc)) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "--set %s: cannot parse value '%s': %s", path,
                      eq + 1, parser.problem ? parser.problem : "syntax error");
  } else {
    ps->doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
      rc = ef_error_set(ctx, EF_ERR_INPUT, "--set %s: empty value", path);
    else
      rc = set_key(ps, k, root);
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  if (rc == EF_OK && check) rc = check_consistency(ps);
  free(ps);
  return rc;
}

int ef_config_set(ef_ctx *ctx, ef_config *cfg, const char *assignment) {
  return set_one(ctx, cfg, assignment, 1);
}

int ef_config_set_all(ef_ctx *ctx, ef_config *cfg, char *const *assignments, int n) {
  for (int i = 0; i < n; i++) EF_CHECK(set_one(ctx, cfg, assignments[i], 0));
  if (n == 0) return EF_OK;
  parse_state ps = {.ctx = ctx, .cfg = cfg, .name = "--set", .no_position = 1};
  return check_consistency(&ps);
}

/* ---- dumping ---------------------------------------------------------- */

typedef struct {
  char *buf;
  size_t len, cap;
  int oom;
} strbuf;

static void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *sb, const char *fmt, ...) {
  if (sb->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
    va_end(ap);
    if (n < 0) { sb->oom = 1; return; }
    if ((size_t)n < sb->cap - sb->len) { sb->len += (size_t)n; return; }
    size_t cap = 2 * sb->cap + (size_t)n + 1;
    char *t = realloc(sb->buf, cap);
    if (!t) { sb->oom = 1; return; }
    sb->buf = t;
    sb->cap = cap;
  }
}

static void format_value(char *out, size_t len, const key_def *k, const ef_config *cfg,
                         int j) {
  switch (k->type) {
  case K_REAL:
  case K_REAL_LIST:
  case K_REAL_VEC: {
    const double *x = k->type == K_REAL_VEC ? ((const ef_real_vec *)cfield(cfg, k))->v
                                            : (const double *)cfield(cfg, k);
    double v = x[j] / k->factor;
    snprintf(out, len, "%.15g", v);
    /* keep it a float when read back; %.15g may lose the last bit, so use
     * the shortest form that round-trips */
    if (strtod(out, NULL) * k->factor != x[j]) snprintf(out, len, "%.17g", v);
    break;
  }
  case K_INT: snprintf(out, len, "%d", *(const int *)cfield(cfg, k)); break;
  case K_BOOL: snprintf(out, len, "%s", *(const int *)cfield(cfg, k) ? "true" : "false"); break;
  case K_SEED:
    snprintf(out, len, "%llu", (unsigned long long)*(const uint64_t *)cfield(cfg, k));
    break;
  case K_ENUM: choice_name(k->choices, *(const int *)cfield(cfg, k), out, len); break;
  case K_MODEL:
    snprintf(out, len, "%s",
             ef_process_kind_model_name(cfg->process, *(const int *)((const char *)cfg + k->aux)));
    break;
  case K_MODEL_SET:
    mask_text(cfg->process, *(const unsigned *)((const char *)cfg + k->aux), out, len);
    break; /* campaign.fill_models' files: ef_config_dump adds them */
  case K_STRING: case K_ENUM_SET: break; /* written by ef_config_dump */
  }
}

/* s double-quoted, '"' and '\\' escaped by a backslash, control characters
 * as \xNN (the config parser reads them back). */
static void sb_quoted(strbuf *sb, const char *s) {
  sb_printf(sb, "\"");
  for (const char *c = s; *c; c++) {
    if (*c == '"' || *c == '\\') sb_printf(sb, "\\%c", *c);
    else if ((unsigned char)*c < 0x20) sb_printf(sb, "\\x%02x", (unsigned char)*c);
    else sb_printf(sb, "%c", *c);
  }
  sb_printf(sb, "\"");
}

/* campaign.fill_models: the built-in models' list val ("[PS, M2]"), then
 * the fill-model files, quoted. */
static void sb_fill_models(strbuf *sb, const ef_config *cfg, const char *val) {
  size_t n = strlen(val) - 1; /* up to the "]" */
  sb_printf(sb, "%.*s", (int)n, val);
  for (int j = 0; j < cfg->campaign.n_fill_files; j++) {
    if (j || n > 1) sb_printf(sb, ", ");
    sb_quoted(sb, cfg->campaign.fill_file[j]);
  }
  sb_printf(sb, "]");
}

int ef_config_dump(ef_ctx *ctx, const ef_config *cfg, char **out) {
  *out = NULL;
  strbuf sb = {malloc(4096), 0, 4096, 0};
  if (!sb.buf) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  sb.buf[0] = '\0';
  sb_printf(&sb, "# ensfold config, resolved (source: %s)\n", cfg->source ? cfg->source : "?");
  const char *prev = "";
  for (size_t i = 0; i < N_KEYS; i++) {
    const char *p = schema[i].path;
    /* depth of the common section prefix with the previous key */
    size_t common = 0, depth = 0;
    for (size_t c = 0; p[c] && prev[c] == p[c]; c++)
      if (p[c] == '.') { common = c + 1; depth++; }
    /* open the sections after the common prefix */
    const char *s = p + common;
    const char *dot;
    size_t d = depth;
    while ((dot = strchr(s, '.'))) {
      sb_printf(&sb, "%*s%.*s:\n", (int)(2 * d), "", (int)(dot - s), s);
      s = dot + 1;
      d++;
    }
    char val[256]; /* a number or a name, or a list of names */
    if (schema[i].type == K_STRING) {
      sb_printf(&sb, "%*s%s: ", (int)(2 * d), "", s);
      sb_quoted(&sb, (const char *)cfield(cfg, &schema[i]));
    } else if (schema[i].type == K_ENUM_SET) {
      unsigned mask = *(const unsigned *)cfield(cfg, &schema[i]);
      sb_printf(&sb, "%*s%s: [", (int)(2 * d), "", s);
      int first = 1;
      for (int c = 0; c < 32; c++) {
        if (!(mask & (1u << c))) continue;
        choice_name(schema[i].choices, c, val, sizeof val);
        sb_printf(&sb, "%s%s", first ? "" : ", ", val);
        first = 0;
      }
      sb_printf(&sb, "]");
    } else if (schema[i].type == K_REAL_LIST || schema[i].type == K_REAL_VEC) {
      sb_printf(&sb, "%*s%s: [", (int)(2 * d), "", s);
      int n = schema[i].type == K_REAL_VEC ? ((const ef_real_vec *)cfield(cfg, &schema[i]))->n
                                           : schema[i].n;
      for (int j = 0; j < n; j++) {
        format_value(val, sizeof val, &schema[i], cfg, j);
        sb_printf(&sb, "%s%s", j ? ", " : "", val);
      }
      sb_printf(&sb, "]");
    } else {
      format_value(val, sizeof val, &schema[i], cfg, 0);
      if (!strcmp(p, "campaign.fill_models")) {
        sb_printf(&sb, "%*s%s: ", (int)(2 * d), "", s);
        sb_fill_models(&sb, cfg, val);
      } else {
        sb_printf(&sb, "%*s%s: %s", (int)(2 * d), "", s, val);
      }
    }
    if (*schema[i].unit) sb_printf(&sb, "  # %s", schema[i].unit);
    sb_printf(&sb, "\n");
    prev = p;
  }
  if (sb.oom) {
    free(sb.buf);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory dumping the config");
  }
  *out = sb.buf;
  return EF_OK;
}
