/* CLAS6-like detector: acceptance, exact P(T | v), smearing, reconstruction.
 *
 * The pi0 acceptance eps_pi(v) is an integral over the decay direction with
 * a discontinuous integrand (angle, energy and coil edges). It is tabulated
 * once per detector on a grid in (cos theta*, |phi_loc|) -- it depends on phi
 * only through the sector-local azimuth, and is even in it -- and
 * interpolated bilinearly. Each node is computed by an adaptive quadrature in
 * the frame of the pi0 direction: the energy cut is then an exact band in
 * u = cos(angle to the pi0 direction), and along each circle of fixed u the
 * accepted arcs are located by bisection, so the edges cost no grid noise.
 * tests/test_detector.c bounds the table against the direct lab-axis grid of
 * physics.md. */
#include "ensfold/detector.h"

#include "ensfold/ctx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEG (M_PI / 180.0)

/* Adaptive quadrature settings: Gauss-Legendre panels in u, psi samples per
 * circle, bisection steps per arc edge. */
#define QUAD_PANELS 12
#define QUAD_PSI 192
#define QUAD_BISECT 10

struct ef_detector {
  ef_detector_params p;
  ef_kin kin;
  double cos_ph_min, cos_ph_max; /* photon cos theta range: cos(theta_max), cos(theta_min) */
  /* pi0 table over theta* in [0, theta_hi] x |phi_loc| in [0, 30] deg,
   * uniform in theta* so the forward region, where eps_pi changes fastest
   * per unit cos theta*, is resolved. */
  int nc, nf;     /* intervals in theta* and in phi_loc */
  double c_lo;    /* cos(theta_hi): below it eps_pi = 0 */
  double dth, df_deg; /* steps: rad, deg */
  double *table;  /* (nc + 1, nf + 1): geometric fraction, eff factors excluded */
  double psi_cs[QUAD_PSI][2]; /* cos, sin of the psi sample points */
};

const ef_kin *ef_detector_kin(const ef_detector *d) { return &d->kin; }

/* ---- geometry --------------------------------------------------------- */

double ef_detector_phi_local_deg(double phi_lab) {
  /* shift into positive range so truncation is floor (|phi_lab| <= 4 pi) */
  double x = phi_lab / DEG + 30.0 + 720.0;
  x -= 60.0 * (double)(long)(x / 60.0);
  return x - 30.0;
}

int ef_detector_sector(double phi_lab) {
  double x = fmod(phi_lab / DEG + 30.0, 360.0);
  if (x < 0) x += 360.0;
  int s = (int)floor(x / 60.0) + 1;
  return s > 6 ? 6 : s;
}

static int coil_ok_sin(const ef_detector *d, double sin_th, double phi_lab) {
  double gap = d->p.coil.small_angle_deg / fmax(sin_th, 1e-12);
  if (gap < d->p.coil.min_half_gap_deg) gap = d->p.coil.min_half_gap_deg;
  return fabs(ef_detector_phi_local_deg(phi_lab)) < 30.0 - gap;
}

int ef_detector_coil_ok(const ef_detector *d, double theta_lab, double phi_lab) {
  return coil_ok_sin(d, sin(theta_lab), phi_lab);
}

int ef_detector_paddle(const ef_detector *d, double theta_lab) {
  const ef_proton_params *pp = &d->p.proton;
  double th = theta_lab / DEG;
  if (th < pp->paddle_theta_min_deg || th > pp->paddle_theta_max_deg) return 0;
  int k = 1 + (int)floor(pp->paddles * (th - pp->paddle_theta_min_deg) /
                         (pp->paddle_theta_max_deg - pp->paddle_theta_min_deg));
  return k > pp->paddles ? pp->paddles : k;
}

/* Geometric proton acceptance A_geo (0/1) and the TOF factor eta. */
static int proton_geo(const ef_detector *d, const double p[4], double *eta) {
  const ef_proton_params *pp = &d->p.proton;
  double pt = hypot(p[1], p[2]);
  double pmag = hypot(pt, p[3]);
  double th = atan2(pt, p[3]), phi = atan2(p[2], p[1]);
  double th_deg = th / DEG;
  *eta = 0.0;
  if (th_deg < pp->theta_min_deg || th_deg > pp->theta_max_deg) return 0;
  if (pmag < pp->p_min) return 0;
  if (pp->g11_cut && pmag < pp->g11_p_max && th_deg < pp->g11_theta_max_deg) return 0;
  if (!coil_ok_sin(d, pt / pmag, phi)) return 0;
  int s = ef_detector_sector(phi);
  int paddle = ef_detector_paddle(d, th);
  *eta = (paddle == 0 || th_deg > pp->tof_dead_theta_deg[s - 1]) ? 0.0
                                                                  : pp->paddle_efficiency;
  return 1;
}

double ef_detector_eps_proton(const ef_detector *d, const double p_lab[4]) {
  double eta;
  if (!proton_geo(d, p_lab, &eta)) return 0.0;
  return eta * d->p.proton.dc_efficiency * (1.0 - d->p.proton.misid);
}

int ef_detector_photon_ok(const ef_detector *d, const double g[4]) {
  if (g[0] < d->p.pi0.e_min) return 0;
  double c = g[3] / g[0]; /* massless: |p| = E */
  if (c < d->cos_ph_min || c > d->cos_ph_max) return 0;
  return coil_ok_sin(d, sqrt(fmax(0.0, 1.0 - c * c)), atan2(g[2], g[1]));
}

/* ---- pi0 acceptance --------------------------------------------------- */

/* The frame of the pi0: unit direction n and two unit vectors normal to it. */
typedef struct {
  double e_pi, beta, gamma;
  double n[3], e1[3], e2[3];
} pi0_frame;

static void make_frame(const double pi_lab[4], pi0_frame *f) {
  double pmag = sqrt(pi_lab[1] * pi_lab[1] + pi_lab[2] * pi_lab[2] + pi_lab[3] * pi_lab[3]);
  f->e_pi = pi_lab[0];
  f->beta = pmag / pi_lab[0];
  f->gamma = pi_lab[0] / EF_M_PI0;
  for (int i = 0; i < 3; i++) f->n[i] = pi_lab[i + 1] / pmag;
  /* e1: normalised cross product of n with the lab axis least aligned. */
  double a[3] = {0, 0, 0};
  int ax = fabs(f->n[0]) < fabs(f->n[1]) ? (fabs(f->n[0]) < fabs(f->n[2]) ? 0 : 2)
                                         : (fabs(f->n[1]) < fabs(f->n[2]) ? 1 : 2);
  a[ax] = 1.0;
  double c[3] = {f->n[1] * a[2] - f->n[2] * a[1], f->n[2] * a[0] - f->n[0] * a[2],
                 f->n[0] * a[1] - f->n[1] * a[0]};
  double cn = sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);
  for (int i = 0; i < 3; i++) f->e1[i] = c[i] / cn;
  f->e2[0] = f->n[1] * f->e1[2] - f->n[2] * f->e1[1];
  f->e2[1] = f->n[2] * f->e1[0] - f->n[0] * f->e1[2];
  f->e2[2] = f->n[0] * f->e1[1] - f->n[1] * f->e1[0];
}

/* Both photons accepted for the decay direction (u, psi) of photon 1 in the
 * pi0 frame? Photon 2 has (-u, psi + pi). */
static int pair_ok_cs(const ef_detector *d, const pi0_frame *f, double u, double cp,
                      double sp) {
  const double half_m = 0.5 * EF_M_PI0;
  double st = sqrt(fmax(0.0, 1.0 - u * u));
  double tr[3];
  for (int i = 0; i < 3; i++) tr[i] = half_m * st * (cp * f->e1[i] + sp * f->e2[i]);
  double par1 = f->gamma * half_m * (u + f->beta);
  double par2 = f->gamma * half_m * (-u + f->beta);
  double g1[4] = {0.5 * f->e_pi * (1.0 + f->beta * u)};
  double g2[4] = {0.5 * f->e_pi * (1.0 - f->beta * u)};
  for (int i = 0; i < 3; i++) {
    g1[i + 1] = par1 * f->n[i] + tr[i];
    g2[i + 1] = par2 * f->n[i] - tr[i];
  }
  return ef_detector_photon_ok(d, g1) && ef_detector_photon_ok(d, g2);
}

static int pair_ok(const ef_detector *d, const pi0_frame *f, double u, double psi) {
  return pair_ok_cs(d, f, u, cos(psi), sin(psi));
}

/* Largest |u| for which both photons pass the energy threshold (may be < 0:
 * never; >= 1: always). */
static double u_energy_max(const ef_detector *d, const pi0_frame *f) {
  return (1.0 - 2.0 * d->p.pi0.e_min / f->e_pi) / f->beta;
}

/* Accepted fraction of the psi circle at fixed u, arcs located by bisection. */
static double circle_fraction(const ef_detector *d, const pi0_frame *f, double u) {
  const double h = 2.0 * M_PI / QUAD_PSI;
  int acc[QUAD_PSI];
  int n_acc = 0;
  for (int j = 0; j < QUAD_PSI; j++)
    n_acc += acc[j] = pair_ok_cs(d, f, u, d->psi_cs[j][0], d->psi_cs[j][1]);
  if (n_acc == 0) return 0.0;
  if (n_acc == QUAD_PSI) return 1.0;
  /* Sum accepted length: for each sample interval [psi_j, psi_j+1] the part
   * on the accepted side of the located edge. */
  double len = 0.0;
  for (int j = 0; j < QUAD_PSI; j++) {
    int a0 = acc[j], a1 = acc[(j + 1) % QUAD_PSI];
    double lo = (j + 0.5) * h, hi = lo + h;
    if (a0 == a1) {
      if (a0) len += h;
      continue;
    }
    for (int it = 0; it < QUAD_BISECT; it++) {
      double mid = 0.5 * (lo + hi);
      if (pair_ok(d, f, u, mid) == a0) lo = mid;
      else hi = mid;
    }
    double edge = 0.5 * (lo + hi) - (j + 0.5) * h;
    len += a0 ? edge : h - edge;
  }
  return len / (2.0 * M_PI);
}

/* (1 / 4 pi) closed integral of A_g(k1) A_g(k2) over the decay direction. */
static double pi0_geo_adaptive(const ef_detector *d, const double pi_lab[4]) {
  static const double gx[4] = {-0.8611363115940526, -0.3399810435848563,
                               0.3399810435848563, 0.8611363115940526};
  static const double gw[4] = {0.3478548451374538, 0.6521451548625461,
                               0.6521451548625461, 0.3478548451374538};
  pi0_frame f;
  make_frame(pi_lab, &f);
  double umax = u_energy_max(d, &f);
  if (umax <= 0.0) return 0.0;
  if (umax > 1.0) umax = 1.0;
  /* k1 <-> k2 symmetry: integrate u over [0, umax]; the measure is du / 1
   * on the hemisphere (uniform in u), psi averaged by circle_fraction. */
  double sum = 0.0, pw = umax / QUAD_PANELS;
  for (int p = 0; p < QUAD_PANELS; p++) {
    double mid = (p + 0.5) * pw;
    for (int q = 0; q < 4; q++)
      sum += 0.5 * pw * gw[q] * circle_fraction(d, &f, mid + 0.5 * pw * gx[q]);
  }
  return sum;
}

static double pi0_lab_cos_theta(const ef_detector *d, double cos_t) {
  double pi[4], p[4];
  ef_kin_vertex_to_lab(&d->kin, cos_t, 0.0, pi, p);
  return pi[3] / sqrt(pi[1] * pi[1] + pi[3] * pi[3]);
}

/* Exact zeros: outside the calorimeter cone, or photons below threshold. */
static int pi0_impossible(const ef_detector *d, const double pi_lab[4]) {
  double pmag = sqrt(pi_lab[1] * pi_lab[1] + pi_lab[2] * pi_lab[2] + pi_lab[3] * pi_lab[3]);
  if (pi_lab[3] / pmag < d->cos_ph_min) return 1;
  return 0.5 * pi_lab[0] < d->p.pi0.e_min;
}

static double eff_factor(const ef_detector *d) {
  return d->p.pi0.efficiency * d->p.pi0.efficiency * d->p.pi0.mass_window_efficiency;
}

double ef_detector_eps_pi0_adaptive(const ef_detector *d, double cos_t, double phi) {
  double pi[4], p[4];
  ef_kin_vertex_to_lab(&d->kin, cos_t, phi, pi, p);
  if (pi0_impossible(d, pi)) return 0.0;
  return eff_factor(d) * pi0_geo_adaptive(d, pi);
}

double ef_detector_eps_pi0_grid(const ef_detector *d, double cos_t, double phi, int n) {
  double pi[4], p[4], g1[4], g2[4];
  ef_kin_vertex_to_lab(&d->kin, cos_t, phi, pi, p);
  long acc = 0;
  for (int i = 0; i < n; i++) {
    double ct = (i + 0.5) / n, st = sqrt(1.0 - ct * ct);
    for (int j = 0; j < n; j++) {
      double ph = 2.0 * M_PI * (j + 0.5) / n;
      double dir[3] = {st * cos(ph), st * sin(ph), ct};
      ef_kin_pi0_decay(pi, dir, g1, g2);
      acc += ef_detector_photon_ok(d, g1) && ef_detector_photon_ok(d, g2);
    }
  }
  return eff_factor(d) * (double)acc / ((double)n * n);
}

double ef_detector_eps_pi0(const ef_detector *d, double cos_t, double phi) {
  if (cos_t < d->c_lo) return 0.0;
  double pi[4], p[4];
  ef_kin_vertex_to_lab(&d->kin, cos_t, phi, pi, p);
  if (pi0_impossible(d, pi)) return 0.0;
  double x = acos(cos_t) / d->dth;
  double y = fabs(ef_detector_phi_local_deg(phi)) / d->df_deg;
  int i = (int)x, j = (int)y;
  if (i >= d->nc) i = d->nc - 1;
  if (j >= d->nf) j = d->nf - 1;
  double fx = x - i, fy = y - j;
  const double *t = d->table;
  int w = d->nf + 1;
  double v = (1 - fx) * ((1 - fy) * t[i * w + j] + fy * t[i * w + j + 1]) +
             fx * ((1 - fy) * t[(i + 1) * w + j] + fy * t[(i + 1) * w + j + 1]);
  return eff_factor(d) * v;
}

/* ---- create ----------------------------------------------------------- */

int ef_detector_create(ef_ctx *ctx, ef_detector **out, const ef_physics_params *phys,
                       const ef_detector_params *det) {
  *out = NULL;
  ef_detector *d = calloc(1, sizeof *d);
  if (!d) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory creating the detector");
  d->p = *det;
  for (int j = 0; j < QUAD_PSI; j++) {
    double psi = (j + 0.5) * 2.0 * M_PI / QUAD_PSI;
    d->psi_cs[j][0] = cos(psi);
    d->psi_cs[j][1] = sin(psi);
  }
  ef_kin_init(&d->kin, phys->beam_energy);
  d->cos_ph_min = cos(det->pi0.theta_max_deg * DEG);
  d->cos_ph_max = cos(det->pi0.theta_min_deg * DEG);
  /* Lowest cos theta* whose pi0 is inside the calorimeter cone: the pi0 lab
   * angle falls monotonically with cos theta* (beta < p_f / E*_pi), else
   * the whole range is tabulated. */
  double lo = -1.0, hi = 1.0;
  if (d->kin.beta < d->kin.p_f / d->kin.e_pi && pi0_lab_cos_theta(d, -1.0) < d->cos_ph_min) {
    for (int it = 0; it < 60; it++) {
      double mid = 0.5 * (lo + hi);
      if (pi0_lab_cos_theta(d, mid) < d->cos_ph_min) lo = mid;
      else hi = mid;
    }
    lo = cos(fmin(M_PI, acos(lo) + det->pi0.table_dtheta_deg * DEG));
  }
  d->c_lo = lo;
  double th_hi = acos(lo);
  d->nc = (int)ceil(th_hi / (det->pi0.table_dtheta_deg * DEG));
  if (d->nc < 1) d->nc = 1;
  d->dth = th_hi / d->nc;
  d->nf = (int)ceil(30.0 / det->pi0.table_dphi_deg);
  d->df_deg = 30.0 / d->nf;
  size_t n = (size_t)(d->nc + 1) * (size_t)(d->nf + 1);
  d->table = malloc(n * sizeof *d->table);
  if (!d->table) {
    free(d);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the pi0 table (%zu nodes)", n);
  }
  /* Under MPI the ranks share the work: rank r computes the rows i = r mod
   * size (cyclic, because rows past the calorimeter cone are cheap) into a
   * zeroed table, and a sum over the ranks assembles it exactly (each node
   * is one rank's value plus zeros). */
  MPI_Comm comm = ef_ctx_comm(ctx);
  int rank = ef_ctx_rank(ctx), size = ef_ctx_size(ctx);
  memset(d->table, 0, n * sizeof *d->table);
  for (int i = rank; i <= d->nc; i += size) {
    double c = cos(i * d->dth);
    for (int j = 0; j <= d->nf; j++) {
      double pi[4], p[4];
      ef_kin_vertex_to_lab(&d->kin, c, j * d->df_deg * DEG, pi, p);
      d->table[i * (d->nf + 1) + j] = pi0_impossible(d, pi) ? 0.0 : pi0_geo_adaptive(d, pi);
    }
  }
  if (comm != MPI_COMM_NULL && size > 1) {
    int mrc = MPI_Allreduce(MPI_IN_PLACE, d->table, (int)n, MPI_DOUBLE, MPI_SUM, comm);
    if (mrc != MPI_SUCCESS) {
      ef_detector_destroy(d);
      return ef_error_mpi(ctx, mrc, "MPI_Allreduce (pi0 table)", __FILE__, __LINE__);
    }
  }
  *out = d;
  return EF_OK;
}

void ef_detector_destroy(ef_detector *d) {
  if (!d) return;
  free(d->table);
  free(d);
}

/* ---- probabilities ---------------------------------------------------- */

static void combine(const ef_detector *d, double ep, double epi, double prob[4]) {
  double f = d->p.accidental_fraction;
  double p0 = (1 - ep) * (1 - epi), p1 = (1 - ep) * epi;
  double p2 = ep * (1 - epi), p3 = ep * epi;
  prob[EF_T0] = (1 - f) * p0;
  prob[EF_T1] = p1 + f * p0;
  prob[EF_T2] = (1 - f) * p2;
  prob[EF_T3] = p3 + f * p2;
}

void ef_detector_prob(const ef_detector *d, double cos_t, double phi, double prob[4]) {
  double pi[4], p[4];
  ef_kin_vertex_to_lab(&d->kin, cos_t, phi, pi, p);
  combine(d, ef_detector_eps_proton(d, p), ef_detector_eps_pi0(d, cos_t, phi), prob);
}

/* ---- simulation ------------------------------------------------------- */

/* Momentum vector from magnitude and lab angles. */
static void from_polar(double pmag, double th, double phi, double out[3]) {
  out[0] = pmag * sin(th) * cos(phi);
  out[1] = pmag * sin(th) * sin(phi);
  out[2] = pmag * cos(th);
}

static void smear_proton(const ef_detector *d, ef_rng *r, const double p[4], double out[3]) {
  const ef_smearing_params *s = &d->p.smearing;
  double pmag = sqrt(p[1] * p[1] + p[2] * p[2] + p[3] * p[3]);
  double th = atan2(hypot(p[1], p[2]), p[3]), phi = atan2(p[2], p[1]);
  pmag *= 1.0 + s->scale * s->proton_dp * ef_rng_normal(r);
  th += s->scale * s->proton_dtheta * ef_rng_normal(r);
  phi += s->scale * s->proton_dphi * ef_rng_normal(r);
  from_polar(fabs(pmag), th, phi, out);
}

static void smear_photon(const ef_detector *d, ef_rng *r, const double g[4], double out[3]) {
  const ef_smearing_params *s = &d->p.smearing;
  double e = g[0];
  double th = atan2(hypot(g[1], g[2]), g[3]), phi = atan2(g[2], g[1]);
  e *= 1.0 + s->scale * s->photon_de / sqrt(e) * ef_rng_normal(r);
  th += s->scale * s->photon_dangle * ef_rng_normal(r);
  phi += s->scale * s->photon_dangle * ef_rng_normal(r);
  from_polar(fabs(e), th, phi, out);
}

/* Draw a decay direction with both photons accepted: u uniform in the
 * energy band, psi uniform (the decay is isotropic, so this is the
 * conditional law). Returns 0 if none was found in max_tries. */
static int sample_accepted_decay(const ef_detector *d, ef_rng *r, const double pi[4],
                                 double g1[4], double g2[4]) {
  pi0_frame f;
  make_frame(pi, &f);
  double umax = fmin(1.0, u_energy_max(d, &f));
  if (umax <= 0) return 0;
  for (int tries = 0; tries < 1000000; tries++) {
    double u = umax * (2.0 * ef_rng_uniform(r) - 1.0);
    double psi = 2.0 * M_PI * ef_rng_uniform(r);
    if (!pair_ok(d, &f, u, psi)) continue;
    double st = sqrt(fmax(0.0, 1.0 - u * u));
    double dir[3];
    for (int i = 0; i < 3; i++)
      dir[i] = u * f.n[i] + st * (cos(psi) * f.e1[i] + sin(psi) * f.e2[i]);
    ef_kin_pi0_decay(pi, dir, g1, g2);
    return 1;
  }
  return 0;
}

int ef_detector_simulate(const ef_detector *d, ef_rng *r, double cos_t, double phi,
                         double prob[4], double reco[2]) {
  double pi[4], p[4];
  ef_kin_vertex_to_lab(&d->kin, cos_t, phi, pi, p);
  double ep = ef_detector_eps_proton(d, p), epi = ef_detector_eps_pi0(d, cos_t, phi);
  combine(d, ep, epi, prob);
  double u = ef_rng_uniform(r), cum = 0.0;
  int t = EF_T0;
  for (int k = 0; k < EF_N_TOPO; k++) {
    cum += prob[k];
    if (u < cum) {
      t = k;
      break;
    }
    if (k == EF_N_TOPO - 1) t = prob[3] > 0 ? 3 : (prob[2] > 0 ? 2 : (prob[1] > 0 ? 1 : 0));
  }
  double m[3];
  switch (t) {
  case EF_T0:
    reco[0] = reco[1] = NAN;
    break;
  case EF_T2:
  case EF_T3: /* angles from the proton */
    smear_proton(d, r, p, m);
    ef_kin_reco_from_proton(&d->kin, m, &reco[0], &reco[1]);
    break;
  case EF_T1: {
    /* a real pi0 (P1) or an accidental one on a T0 event (f P0) */
    double real = (1 - ep) * epi;
    double g1[4], g2[4], s1[3], s2[3];
    if (ef_rng_uniform(r) * prob[EF_T1] < real && sample_accepted_decay(d, r, pi, g1, g2)) {
      smear_photon(d, r, g1, s1);
      smear_photon(d, r, g2, s2);
      for (int i = 0; i < 3; i++) m[i] = s1[i] + s2[i];
      ef_kin_reco_from_pi0(&d->kin, m, &reco[0], &reco[1]);
    } else { /* accidental: unrelated to the event, isotropic */
      reco[0] = 2.0 * ef_rng_uniform(r) - 1.0;
      reco[1] = ef_wrap_pi(M_PI * (2.0 * ef_rng_uniform(r) - 1.0));
    }
    break;
  }
  }
  return t;
}

int ef_detector_simulate_bruteforce(const ef_detector *d, ef_rng *r, double cos_t,
                                    double phi) {
  double pi[4], p[4], g1[4], g2[4], eta;
  ef_kin_vertex_to_lab(&d->kin, cos_t, phi, pi, p);
  int seen_p = proton_geo(d, p, &eta) && ef_rng_uniform(r) < eta &&
               ef_rng_uniform(r) < d->p.proton.dc_efficiency &&
               ef_rng_uniform(r) >= d->p.proton.misid;
  /* isotropic decay direction on the full sphere */
  double c = 2.0 * ef_rng_uniform(r) - 1.0, f = 2.0 * M_PI * ef_rng_uniform(r);
  double s = sqrt(1.0 - c * c);
  double dir[3] = {s * cos(f), s * sin(f), c};
  ef_kin_pi0_decay(pi, dir, g1, g2);
  int seen_pi = ef_detector_photon_ok(d, g1) && ef_detector_photon_ok(d, g2) &&
                ef_rng_uniform(r) < d->p.pi0.efficiency &&
                ef_rng_uniform(r) < d->p.pi0.efficiency &&
                ef_rng_uniform(r) < d->p.pi0.mass_window_efficiency;
  int t = (seen_p ? 2 : 0) + (seen_pi ? 1 : 0);
  if ((t == EF_T2 || t == EF_T0) && ef_rng_uniform(r) < d->p.accidental_fraction) t += 1;
  return t;
}
