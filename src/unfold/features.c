/* Feature maps with their Jacobians (include/ensfold/features.h). */
#include "ensfold/features.h"

#include <math.h>

#define LOG_FLOOR 0.01 /* rad: the log lab-angle features' floor */

/* Lab polar angle of a particle with CM momentum p_f and energy e at CM
 * polar cosine c, and its derivative in c (boost along z). */
static double lab_theta(const ef_kin *k, double e, double c, double *dth) {
  double s = sqrt(fmax(1.0 - c * c, 1e-12));
  double pt = k->p_f * s, pz = k->gamma * (k->p_f * c + k->beta * e);
  double dpt = k->p_f * (-c / fmax(s, 1e-3)), dpz = k->gamma * k->p_f;
  double r2 = pt * pt + pz * pz;
  *dth = r2 > 0 ? (pz * dpt - pt * dpz) / r2 : 0.0;
  return atan2(pt, pz);
}

void ef_features_kin(const ef_kin *k, double c, double f, float *out, float *jac) {
  enum { NF = EF_FEAT_KIN };
  double s = sqrt(fmax(1.0 - c * c, 1e-12)), ds = -c / fmax(s, 1e-3);
  double dthp, dthpi;
  /* the proton goes opposite the pi0: its CM polar cosine is -c */
  double thp = lab_theta(k, k->e_p, -c, &dthp);
  dthp = -dthp;
  double thpi = lab_theta(k, k->e_pi, c, &dthpi);
  /* the log lab angles stretch the small-angle end, where the detector cones (proton 10 deg)
   * make P(T|v) step within a fraction of a degree of theta* (docs/methods.md) */
  double v[NF] = {c, s, cos(f), sin(f), cos(3 * f), sin(3 * f), cos(6 * f), sin(6 * f),
                  thp / (M_PI / 2) - 1.0, thpi / (M_PI / 2) - 1.0,
                  log(fmax(thp, LOG_FLOOR)) + 1.5, log(fmax(thpi, LOG_FLOOR)) + 1.5};
  for (int i = 0; i < NF; i++) out[i] = (float)v[i];
  if (!jac) return;
  double j[NF][2] = {{1, 0},
                     {ds, 0},
                     {0, -sin(f)},
                     {0, cos(f)},
                     {0, -3 * sin(3 * f)},
                     {0, 3 * cos(3 * f)},
                     {0, -6 * sin(6 * f)},
                     {0, 6 * cos(6 * f)},
                     {dthp / (M_PI / 2), 0},
                     {dthpi / (M_PI / 2), 0},
                     {thp > LOG_FLOOR ? dthp / thp : 0, 0},
                     {thpi > LOG_FLOOR ? dthpi / thpi : 0, 0}};
  for (int i = 0; i < NF; i++) {
    jac[2 * i] = (float)j[i][0];
    jac[2 * i + 1] = (float)j[i][1];
  }
}

void ef_features_embed(float *e, float c, float f) {
  e[0] = c;
  e[1] = 2 * c * c - 1;
  e[2] = cosf(f);
  e[3] = sinf(f);
  e[4] = cosf(2 * f);
  e[5] = sinf(2 * f);
  e[6] = cosf(6 * f);
  e[7] = sinf(6 * f);
}

void ef_features_embed_back(const float *de, float c, float f, float *dc, float *df) {
  *dc = de[0] + 4 * c * de[1];
  *df = -sinf(f) * de[2] + cosf(f) * de[3] - 2 * sinf(2 * f) * de[4] + 2 * cosf(2 * f) * de[5] -
        6 * sinf(6 * f) * de[6] + 6 * cosf(6 * f) * de[7];
}

void ef_features_refine(float *e, float c, float f) {
  double cc = c > 1.0f ? 1.0 : c < -1.0f ? -1.0 : (double)c, s = sqrt(1.0 - cc * cc);
  e[0] = (float)cc;
  e[1] = (float)(acos(cc) / (M_PI / 2) - 1.0);
  e[2] = (float)(s * cos(f));
  e[3] = (float)(s * sin(f));
  e[4] = cosf(f);
  e[5] = sinf(f);
  e[6] = cosf(2 * f);
  e[7] = sinf(2 * f);
  e[8] = cosf(6 * f);
  e[9] = sinf(6 * f);
  double th = acos(cc);
  for (int k = 2; k < EF_FEAT_REFINE - 8; k++) e[8 + k] = (float)cos(k * th);
}

void ef_features_sphere(const float *u, float *c, float *f) {
  double r = sqrt((double)u[0] * u[0] + (double)u[1] * u[1] + (double)u[2] * u[2]);
  float cc = r > 0 ? (float)(u[2] / r) : 0.0f;
  if (cc > 1.0f) cc = 1.0f;
  if (cc < -1.0f) cc = -1.0f;
  *c = cc;
  *f = (float)atan2(u[1], u[0]);
}

void ef_features_sphere_back(const float *u, float gc, float gf, float *du) {
  /* c = u_z / r, f = atan2(u_y, u_x); the radii are floored so that a
   * point near the origin or the axis gives a finite gradient */
  double r2 = (double)u[0] * u[0] + (double)u[1] * u[1] + (double)u[2] * u[2];
  double rho2 = (double)u[0] * u[0] + (double)u[1] * u[1];
  double r = sqrt(r2), r3 = r2 * r;
  if (r3 < 1e-12) r3 = 1e-12;
  if (rho2 < 1e-4 * r2 + 1e-12) rho2 = 1e-4 * r2 + 1e-12;
  du[0] = (float)(gc * (-u[2] * u[0] / r3) + gf * (-u[1] / rho2));
  du[1] = (float)(gc * (-u[2] * u[1] / r3) + gf * (u[0] / rho2));
  du[2] = (float)(gc * (((double)u[0] * u[0] + (double)u[1] * u[1]) / r3));
}
