/* gamma p -> pi0 p at a fixed beam energy: CM quantities, vertex -> lab,
 * pi0 -> gamma gamma, and the reconstruction of (cos theta*, phi*) from one
 * measured particle (physics.md section 1).
 *
 * Units: GeV, radians. Four-vectors are double[4] = (E, px, py, pz) in the
 * lab frame: z along the beam, y up. The vertex variables are the pi0's CM
 * angles v = (cos theta*, phi*); phi_cm = phi_lab for the same particle. */
#ifndef ENSFOLD_KINEMATICS_H
#define ENSFOLD_KINEMATICS_H

#define EF_M_PROTON 0.938272 /* GeV, physics.md */
#define EF_M_PI0 0.134977    /* GeV */

typedef struct {
  double e_beam;      /* GeV */
  double s, w;        /* GeV^2, GeV */
  double p_i, p_f;    /* CM momenta of the initial and final state, GeV */
  double e_pi, e_p;   /* CM energies of pi0 and proton, GeV */
  double beta, gamma; /* CM velocity along z and its Lorentz factor */
} ef_kin;

/* Fills k for beam energy e_beam (GeV, above the pi0 threshold 0.1447). */
void ef_kin_init(ef_kin *k, double e_beam);

/* Lab four-momenta of the pi0 and the proton for vertex (cos_t, phi). */
void ef_kin_vertex_to_lab(const ef_kin *k, double cos_t, double phi,
                          double pi_lab[4], double p_lab[4]);

/* pi0 -> gamma gamma: dir is the unit decay direction of photon 1 in the pi0
 * rest frame (axes parallel to the lab axes); photon 2 goes the other way. */
void ef_kin_pi0_decay(const double pi_lab[4], const double dir[3],
                      double g1[4], double g2[4]);

/* (cos theta*, phi*) of the pi0 from a measured pi0 three-momentum (lab). */
void ef_kin_reco_from_pi0(const ef_kin *k, const double p[3], double *cos_t,
                          double *phi);
/* (cos theta*, phi*) of the pi0 from a measured proton three-momentum (lab):
 * theta = pi - theta_p*, phi = phi_p + pi. */
void ef_kin_reco_from_proton(const ef_kin *k, const double p[3],
                             double *cos_t, double *phi);

/* Wrap an angle into (-pi, pi]. */
double ef_wrap_pi(double phi);

#endif
