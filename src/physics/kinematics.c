/* Two-body kinematics of gamma p -> pi0 p (physics.md section 1). */
#include "ensfold/kinematics.h"

#include <math.h>

void ef_kin_init(ef_kin *k, double e_beam) {
  const double mp = EF_M_PROTON, mpi = EF_M_PI0;
  k->e_beam = e_beam;
  k->s = mp * mp + 2.0 * mp * e_beam;
  k->w = sqrt(k->s);
  k->p_i = (k->s - mp * mp) / (2.0 * k->w);
  double sp = k->s - (mp + mpi) * (mp + mpi), sm = k->s - (mp - mpi) * (mp - mpi);
  k->p_f = sqrt(sp > 0 ? sp * sm : 0.0) / (2.0 * k->w);
  k->e_pi = (k->s + mpi * mpi - mp * mp) / (2.0 * k->w);
  k->e_p = (k->s + mp * mp - mpi * mpi) / (2.0 * k->w);
  k->beta = e_beam / (e_beam + mp);
  k->gamma = (e_beam + mp) / k->w;
}

void ef_kin_vertex_to_lab(const ef_kin *k, double cos_t, double phi,
                          double pi_lab[4], double p_lab[4]) {
  double sin_t = sqrt(fmax(0.0, 1.0 - cos_t * cos_t));
  double px = k->p_f * sin_t * cos(phi), py = k->p_f * sin_t * sin(phi);
  double pz = k->p_f * cos_t;
  pi_lab[0] = k->gamma * (k->e_pi + k->beta * pz);
  pi_lab[1] = px;
  pi_lab[2] = py;
  pi_lab[3] = k->gamma * (pz + k->beta * k->e_pi);
  p_lab[0] = k->gamma * (k->e_p - k->beta * pz);
  p_lab[1] = -px;
  p_lab[2] = -py;
  p_lab[3] = k->gamma * (-pz + k->beta * k->e_p);
}

void ef_kin_pi0_decay(const double pi_lab[4], const double dir[3],
                      double g1[4], double g2[4]) {
  /* Boost (E0, +-E0 dir) by b = p/E: E = g (E0 + b.p0),
   * p = p0 + [(g - 1)/b^2 (b.p0) + g E0] b. */
  double e0 = 0.5 * EF_M_PI0;
  double b[3] = {pi_lab[1] / pi_lab[0], pi_lab[2] / pi_lab[0], pi_lab[3] / pi_lab[0]};
  double b2 = b[0] * b[0] + b[1] * b[1] + b[2] * b[2];
  double g = pi_lab[0] / EF_M_PI0;
  double bp = e0 * (b[0] * dir[0] + b[1] * dir[1] + b[2] * dir[2]);
  double c = b2 > 0 ? (g - 1.0) / b2 : 0.0;
  double f1 = c * bp + g * e0, f2 = -c * bp + g * e0;
  g1[0] = g * (e0 + bp);
  g2[0] = g * (e0 - bp);
  for (int i = 0; i < 3; i++) {
    g1[i + 1] = e0 * dir[i] + f1 * b[i];
    g2[i + 1] = -e0 * dir[i] + f2 * b[i];
  }
}

double ef_wrap_pi(double phi) {
  while (phi > M_PI) phi -= 2.0 * M_PI;
  while (phi <= -M_PI) phi += 2.0 * M_PI;
  return phi;
}

/* CM polar angle of a particle of mass m with lab momentum p. */
static double cm_theta(const ef_kin *k, const double p[3], double m) {
  double e = sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2] + m * m);
  double pz_cm = k->gamma * (p[2] - k->beta * e);
  return atan2(hypot(p[0], p[1]), pz_cm);
}

void ef_kin_reco_from_pi0(const ef_kin *k, const double p[3], double *cos_t,
                          double *phi) {
  *cos_t = cos(cm_theta(k, p, EF_M_PI0));
  *phi = ef_wrap_pi(atan2(p[1], p[0]));
}

void ef_kin_reco_from_proton(const ef_kin *k, const double p[3],
                             double *cos_t, double *phi) {
  *cos_t = cos(M_PI - cm_theta(k, p, EF_M_PROTON));
  *phi = ef_wrap_pi(atan2(p[1], p[0]) + M_PI);
}
