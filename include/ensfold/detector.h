/* The CLAS6-like detector (physics.md 4-5): sectors and coils, proton and
 * pi0 acceptance, dead TOF regions and paddle efficiencies, smearing,
 * misclassification, and the exact topology probabilities P(T | v).
 *
 * Topologies: 0 = T0 nothing seen, 1 = T1 pi0 only, 2 = T2 proton only,
 * 3 = T3 both. Angles in radians unless a name ends in _deg. */
#ifndef ENSFOLD_DETECTOR_H
#define ENSFOLD_DETECTOR_H

#include "ensfold/ctx.h"
#include "ensfold/kinematics.h"
#include "ensfold/model.h"
#include "ensfold/rng.h"

#define EF_N_SECTORS 6
#define EF_N_TOPO 4 /* topologies T0..T3 */

/* The built-in detector's settings (the detector.* keys; physics.md). */
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

typedef enum { EF_T0 = 0, EF_T1 = 1, EF_T2 = 2, EF_T3 = 3 } ef_topology;

typedef struct ef_detector ef_detector;

/* Builds the pi0 acceptance table for the beam energy (the costly part:
 * about 5 s on one core with the defaults). Collective over ef_ctx_comm(ctx)
 * when that is not MPI_COMM_NULL: the ranks share the table's rows and every
 * rank gets the same bits as a serial build. */
int ef_detector_create(ef_ctx *ctx, ef_detector **out,
                       const ef_physics_params *phys,
                       const ef_detector_params *det);
void ef_detector_destroy(ef_detector *d);

const ef_kin *ef_detector_kin(const ef_detector *d);

/* Sector 1..6 of a lab azimuth; sector k is centred at (k - 1) * 60 deg. */
int ef_detector_sector(double phi_lab);
/* Sector-local azimuth in degrees, in [-30, 30). */
double ef_detector_phi_local_deg(double phi_lab);
/* Coil cut: 1 if the direction (theta_lab, phi_lab) is between the coils. */
int ef_detector_coil_ok(const ef_detector *d, double theta_lab, double phi_lab);
/* TOF paddle 1..N hit at theta_lab (0 outside the paddle range). */
int ef_detector_paddle(const ef_detector *d, double theta_lab);

/* eps_p: probability that the proton with true lab four-momentum p is seen. */
double ef_detector_eps_proton(const ef_detector *d, const double p_lab[4]);
/* A_g: 1 if a photon with lab four-momentum g passes angle, energy, coil. */
int ef_detector_photon_ok(const ef_detector *d, const double g[4]);

/* eps_pi at vertex v from the precomputed table (includes eps_g^2 and the
 * mass-window efficiency). Exactly 0 outside the calorimeter cone or when
 * the photons cannot both pass threshold. */
double ef_detector_eps_pi0(const ef_detector *d, double cos_t, double phi);
/* eps_pi by direct quadrature exactly as physics.md 5 describes it: an
 * n x n midpoint grid over the photon-1 decay direction in the pi0 rest frame
 * with axes parallel to the lab axes, cos theta_d in (0, 1) (k1 <-> k2
 * symmetry), phi_d midpoints from 0. */
double ef_detector_eps_pi0_grid(const ef_detector *d, double cos_t, double phi,
                                int n);
/* eps_pi by the adaptive quadrature the table uses (see detector.c). */
double ef_detector_eps_pi0_adaptive(const ef_detector *d, double cos_t,
                                    double phi);

/* The observed topology probabilities P_obs = C P(T | v), prob[4] sums to 1. */
void ef_detector_prob(const ef_detector *d, double cos_t, double phi,
                      double prob[4]);

/* Simulate one event at vertex v: draws T from P_obs(T | v), smears the
 * particles that are seen and reconstructs (cos theta*, phi*) into reco[2]
 * (NaN for T0). prob[4] receives P_obs(T | v). Returns the topology. */
int ef_detector_simulate(const ef_detector *d, ef_rng *r, double cos_t,
                         double phi, double prob[4], double reco[2]);

/* Brute-force Monte Carlo of the detector for validation: every efficiency
 * as its own Bernoulli draw, a random pi0 decay direction, no quadrature.
 * Returns the topology. */
int ef_detector_simulate_bruteforce(const ef_detector *d, ef_rng *r,
                                    double cos_t, double phi);

#endif
