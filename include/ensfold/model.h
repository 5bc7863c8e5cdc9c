/* Vertex-level models M1 (Delta-dominated), PS (phase space) and M2
 * (unphysical), their normalised densities and samplers (physics.md 2-3).
 *
 * Densities are per unit cos theta* per radian of phi*: they integrate to 1
 * over [-1, 1] x (-pi, pi]. ef_model is a small value type filled by
 * ef_model_init (its fields are private). */
#ifndef ENSFOLD_MODEL_H
#define ENSFOLD_MODEL_H

#include "ensfold/rng.h"

/* The physics of the built-in process (the physics.* keys; physics.md). */
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

typedef enum { EF_MODEL_M1 = 0, EF_MODEL_PS = 1, EF_MODEL_M2 = 2 } ef_model_id;
#define EF_N_MODELS 3

typedef struct {
  ef_model_id id;
  double a, b;         /* a - b cos^2 t: a = 3|A32|^2 + |A12|^2, b = 3(|A32|^2 - |A12|^2) */
  double norm;         /* M1: a - b/3; M2: N2 */
  double sigma_coef;   /* 2 sqrt3 A32 A12: Sigma(t) (a - b cos^2 t) = sigma_coef sin^2 t */
  double pol, phi_pol; /* P, polarisation azimuth (rad) */
  double k_fb, m2_k;
  double bound;        /* accept-reject bound on the unnormalised density */
} ef_model;

const char *ef_model_name(ef_model_id id);
/* "M1", "PS", "M2" (case-insensitive) -> id; returns 0 on success, -1 if unknown. */
int ef_model_parse(const char *name, ef_model_id *id);

void ef_model_init(ef_model *m, ef_model_id id, const ef_physics_params *p);

/* Normalised density at (cos theta*, phi*). */
double ef_model_density(const ef_model *m, double cos_t, double phi);
/* Beam asymmetry Sigma(theta*) of M1 (also used by M2). */
double ef_model_sigma(const ef_model *m, double cos_t);
/* One vertex drawn from the density (accept-reject). */
void ef_model_sample(const ef_model *m, ef_rng *r, double *cos_t, double *phi);

/* M1's total cross section sigma_D(W) in microbarn (physics.md 2). */
double ef_m1_sigma_total_ub(const ef_physics_params *p);

#endif
