/* M1, PS and M2 densities and accept-reject samplers. */
#include "ensfold/model.h"

#include <math.h>
#include <strings.h>

#include "ensfold/kinematics.h"

#define GEV2_TO_UB 389.379 /* (hbar c)^2 in GeV^2 microbarn */

const char *ef_model_name(ef_model_id id) {
  switch (id) {
  case EF_MODEL_M1: return "M1";
  case EF_MODEL_PS: return "PS";
  case EF_MODEL_M2: return "M2";
  }
  return "?";
}

int ef_model_parse(const char *name, ef_model_id *id) {
  for (int i = 0; i < EF_N_MODELS; i++)
    if (!strcasecmp(name, ef_model_name((ef_model_id)i))) {
      *id = (ef_model_id)i;
      return 0;
    }
  return -1;
}

/* Unnormalised density (times the model's norm) in terms of cos t. */
static double shape(const ef_model *m, double c, double phi) {
  if (m->id == EF_MODEL_PS) return 1.0;
  double s2 = 1.0 - c * c;
  double pol = m->pol * m->sigma_coef * s2 * cos(2.0 * (phi - m->phi_pol));
  if (m->id == EF_MODEL_M1)
    return ((m->a - m->b * c * c) - pol) * (1.0 + m->k_fb * c);
  /* M2: F2 [1 - P Sigma cos 2f] with Sigma taken from M1. */
  double t = acos(c);
  double f2 = m->a - m->b * exp(m->m2_k * (t - M_PI));
  double sigma = m->sigma_coef * s2 / (m->a - m->b * c * c);
  return f2 * (1.0 - m->pol * sigma * cos(2.0 * (phi - m->phi_pol)));
}

void ef_model_init(ef_model *m, ef_model_id id, const ef_physics_params *p) {
  double a12 = p->a12, a32 = p->a32;
  m->id = id;
  m->a = 3.0 * a32 * a32 + (p->talk_a_factor ? 5.0 : 1.0) * a12 * a12;
  m->b = 3.0 * (a32 * a32 - a12 * a12);
  m->sigma_coef = 2.0 * sqrt(3.0) * a32 * a12;
  m->pol = p->polarisation;
  m->phi_pol = p->phi_pol_deg * M_PI / 180.0;
  m->k_fb = p->k_fb;
  m->m2_k = p->m2_k;
  switch (id) {
  case EF_MODEL_PS:
    m->norm = 1.0;
    m->bound = 1.0;
    return;
  case EF_MODEL_M1:
    m->norm = m->a - m->b / 3.0;
    /* physics.md: [a + 2 sqrt3 |A12 A32| P] / (a - b/3), times (1 + |k_fb|);
     * holds for b >= 0 and for b < 0 (then a - b c^2 <= a - b). */
    m->bound = (fmax(m->a, m->a - m->b) + fabs(m->sigma_coef) * m->pol) *
               (1.0 + fabs(m->k_fb));
    break;
  case EF_MODEL_M2: {
    double k = m->m2_k;
    m->norm = m->a - m->b * (1.0 + exp(-k * M_PI)) / (2.0 * (1.0 + k * k));
    /* The bound is the maximum over a fine grid of cos t (both phase
     * extremes of cos 2f), plus 2%: the shape is smooth on this scale. */
    double mx = 0.0;
    for (int i = 0; i <= 20000; i++) {
      double c = -1.0 + 2.0 * i / 20000.0;
      double v1 = shape(m, c, m->phi_pol), v2 = shape(m, c, m->phi_pol + M_PI / 2);
      mx = fmax(mx, fmax(v1, v2));
    }
    m->bound = 1.02 * mx;
    break;
  }
  }
}

double ef_model_sigma(const ef_model *m, double cos_t) {
  return m->sigma_coef * (1.0 - cos_t * cos_t) / (m->a - m->b * cos_t * cos_t);
}

double ef_model_density(const ef_model *m, double cos_t, double phi) {
  /* dsigma/dOmega / sigma = F (...) / (4 pi), F = shape / norm */
  return shape(m, cos_t, phi) / (m->norm * 4.0 * M_PI);
}

void ef_model_sample(const ef_model *m, ef_rng *r, double *cos_t, double *phi) {
  for (;;) {
    double c = 2.0 * ef_rng_uniform(r) - 1.0;
    double f = M_PI * (2.0 * ef_rng_uniform(r) - 1.0);
    if (m->id == EF_MODEL_PS || ef_rng_uniform(r) * m->bound <= shape(m, c, f)) {
      *cos_t = c;
      *phi = f;
      return;
    }
  }
}

double ef_m1_sigma_total_ub(const ef_physics_params *p) {
  ef_kin k;
  ef_kin_init(&k, p->beam_energy);
  const double k_r = 0.25871; /* photon CM momentum at W = M_Delta (physics.md) */
  double M = p->delta_mass, G = p->delta_width;
  double g_gamma = (k_r * k_r / M_PI) * (2.0 * EF_M_PROTON / (4.0 * M)) *
                   (p->a12 * p->a12 + p->a32 * p->a32);
  double w2m2 = k.s - M * M;
  double sig = (4.0 * M_PI / (k.p_i * k.p_i)) * (2.0 / 3.0) * M * M * g_gamma * G /
               (w2m2 * w2m2 + M * M * G * G);
  return sig * GEV2_TO_UB;
}
