/* GAN unfolding: gan-topo and gan-mixed (docs/methods.md has the method).
 *
 * Coordinates: a vertex or reconstructed event is v = (c, f) = (cos theta*,
 * phi*), c in [-1, 1], f in (-pi, pi]. Networks never see v directly:
 *   - the detector networks see kin_features(v) (NF values: c, sin theta*,
 *     harmonics of phi* for the sectors and coils, and the proton's and the
 *     pi0's lab polar angles), whose Jacobian is known, so gradients flow
 *     back to v;
 *   - the discriminator sees a channel one-hot (NCH) and embed(v) (NE).
 * Channel 0 is the blind channel (vertex level, blind bins only, G against
 * the fill model); channels 1..3 are the measured topologies T1..T3
 * (detector level, G folded through the detector networks against data). */
#include "ensfold/gan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/kinematics.h"
#include "ensfold/nn.h"
#include "ensfold/nn_adam.h"
#include "ensfold/nn_loss.h"
#include "ensfold/rng.h"

#define NF 12           /* kin_features */
#define LOG_FLOOR 0.01  /* rad: the log lab-angle features' floor */
#define NE 8            /* embed */
#define NCH 4           /* D channels: 0 blind, 1..3 = T1..T3 */
#define ND (NCH + NE)   /* D input width */
#define MD 6            /* MMD point: cos theta*, cos phi*, sin phi*, 3 x channel */
#define GRID 8          /* efficiency-map grid per vertex bin, per axis */
#define MAP_DRAWS 16    /* DS-GAN noise draws per efficiency-map grid point */
#define EF_PI 3.14159265358979323846

/* Roles of networks in seeds: distinct init/training streams per role. */
enum { ROLE_G = 0, ROLE_D, ROLE_EFF, ROLE_S1, ROLE_S2, ROLE_S3, ROLE_DS, ROLE_DSD, N_ROLES };

#define OUTER_LOSS_MAX 64 /* loss points a shared outer training keeps */

struct ef_gan_ws {
  int latent, k_noise, bo, bf, rows; /* G noise, detector noise, outer batch, blind batch, D rows */
  int be, bs, bmax;                  /* efficiency / smearing batches, max rows any net sees */
  ef_kin kin;
  double kin_energy;                 /* beam energy kin was made for */
  /* networks; the detector ones exist for the methods of the campaign */
  ef_mlp *g, *d;
  ef_adam *adam_g, *adam_d;
  ef_mlp *eff, *smear[3], *dsd;      /* gan-topo: eps(v), S_t; D of the detector GANs */
  ef_adam *adam_eff, *adam_smear, *adam_dsd;
  ef_mlp *ds;                        /* gan-mixed: DS(v, noise) -> (residual 2, logits 4) */
  ef_adam *adam_ds, *adam_dsp;       /* DS: adversarial loss; P head's cross-entropy */
  float *gsave;                      /* (n_params of ds) the adversarial gradient */
  float *pavg;                       /* (n_params of eff or ds, the larger) iterate average */
  float sig_topo[3][2], sig_mixed[2];  /* residual scales (c, f) of S_t and DS */
  int64_t key_topo, key_mixed;       /* which detector networks are loaded; INT64_MIN = none */
  int have_topo, have_mixed;
  /* MC indices by topology (built on first use; the MC never changes) */
  int32_t *mc_order;                 /* (n_mc): indices grouped T0, T1, T2, T3 */
  size_t mc_off[5];                  /* group t is mc_order[mc_off[t] .. mc_off[t+1]) */
  size_t n_mc;
  int mc_ready;
  /* data sampling */
  double *cdf;                       /* (n_data) cumulative weights of measured events */
  int32_t *meas;                     /* (n_data) indices of measured data events */
  size_t n_data;
  /* outer-step buffers, all float, shapes in rows of the outer batch bo */
  float *z;        /* (bo, latent) */
  float *v;        /* (bo, 2) generated vertices */
  float *gu;       /* (bmax, 3) G's raw output u: v is the direction of u */
  float *feat;     /* (bo, NF) */
  float *jac;      /* (bo, NF, 2) d feat / d (c, f) */
  float *xs[3];    /* (bmax, NF + k_noise) detector-network inputs, one per topology */
  float *reco;     /* (3, bo, 2) reco per topology */
  float *rsgn;     /* (3, bo) sign of the reco fold */
  float *prob;     /* (bmax, 4) P(T0..T3 | v) */
  float *dx;       /* (rows, ND) discriminator input */
  float *w;        /* (rows) per-row weight (sums: 1 per channel group) */
  float *loss_row; /* (rows) softplus(-x) of fake rows (G step) */
  float *dlogit;   /* (rows) */
  float *ddx;      /* (rows, ND) gradient wrt D inputs */
  float *dfeat;    /* (bmax, NF + k_noise) */
  float *dv;       /* (bo, 2) */
  float *dout;     /* (bmax, 6) gradient wrt a detector network's output */
  float *draw;     /* (bo, 2) */
  float *tgt;      /* (bmax, 4) soft targets */
  float *lg;       /* (bmax, 4) logits (copied out of DS) */
  float *dlg;      /* (bmax, 4) */
  int32_t *idx;    /* (bmax) sampled event indices */
  double *fcdf;    /* (3 bo) cumulative weights of the fake measured rows */
  float *mx, *my, *mdx; /* (bo, MD) MMD points: fake (resampled by weight), data; dMMD/dmx */
  int32_t *msel;   /* (bo) the fake measured row behind each MMD point */
  float *mgrad;    /* (3 bo, 2) MMD gradient per fake measured row's reco */
  int32_t *bin;    /* (bo) vertex bin of each generated event */
  unsigned char *blind; /* (n_vertex_max) set at run time */
  int nv_cap;
  double *hsum, *esum; /* (nv_cap) histogram and efficiency sums */
  /* The last outer training on this rank. A unit that differs from it only
   * by the fill model, with the fill not entering training, reuses it: the
   * sums above are still its own (nothing else writes them). */
  int outer_valid;
  ef_gan_params outer_gp;               /* the settings it was trained with */
  uint64_t outer_seed;
  int outer_attempt, outer_method, outer_n_loss;
  int64_t outer_det_key;
  double outer_total, outer_sd, outer_rlen;
  ef_rng outer_rng;                     /* the stream after training (the efficiency map) */
  double outer_loss[2][OUTER_LOSS_MAX]; /* discriminator, generator loss curves */
  long outer_trainings;                 /* trainings run, for tests and logs */
};

/* ---- small maths ------------------------------------------------------- */

static double softplus(double x) { return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))); }
static double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

/* Fold any real into [-1, 1] (a triangle wave of period 4); *sgn = slope. */
static float fold_unit(float a, float *sgn) {
  float u = fmodf(a + 1.0f, 4.0f);
  if (u < 0) u += 4.0f;
  if (u <= 2.0f) {
    *sgn = 1.0f;
    return u - 1.0f;
  }
  *sgn = -1.0f;
  return 3.0f - u;
}

static float wrap_pi(float f) {
  float t = fmodf(f + (float)EF_PI, 2.0f * (float)EF_PI);
  if (t <= 0) t += 2.0f * (float)EF_PI;
  return t - (float)EF_PI;
}

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

/* Detector-network inputs of vertex (c, f): out (NF), jac (NF, 2) or NULL. */
static void kin_features(const ef_kin *k, double c, double f, float *out, float *jac) {
  double s = sqrt(fmax(1.0 - c * c, 1e-12)), ds = -c / fmax(s, 1e-3);
  double dthp, dthpi;
  /* the proton goes opposite the pi0: its CM polar cosine is -c */
  double thp = lab_theta(k, k->e_p, -c, &dthp);
  dthp = -dthp;
  double thpi = lab_theta(k, k->e_pi, c, &dthpi);
  /* the log lab angles stretch the small-angle end, where the detector cones (proton 10 deg)
   * make P(T|v) step within a fraction of a degree of theta* (docs/methods.md) */
  double v[NF] = {c, s, cos(f), sin(f), cos(3 * f), sin(3 * f), cos(6 * f), sin(6 * f),
                  thp / (EF_PI / 2) - 1.0, thpi / (EF_PI / 2) - 1.0,
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
                     {dthp / (EF_PI / 2), 0},
                     {dthpi / (EF_PI / 2), 0},
                     {thp > LOG_FLOOR ? dthp / thp : 0, 0},
                     {thpi > LOG_FLOOR ? dthpi / thpi : 0, 0}};
  for (int i = 0; i < NF; i++) {
    jac[2 * i] = (float)j[i][0];
    jac[2 * i + 1] = (float)j[i][1];
  }
}

/* Discriminator row: channel one-hot, then embed(c, f). */
static void d_row(float *row, int ch, float c, float f) {
  for (int i = 0; i < NCH; i++) row[i] = i == ch ? 1.0f : 0.0f;
  float *e = row + NCH;
  e[0] = c;
  e[1] = 2 * c * c - 1;
  e[2] = cosf(f);
  e[3] = sinf(f);
  e[4] = cosf(2 * f);
  e[5] = sinf(2 * f);
  e[6] = cosf(6 * f);
  e[7] = sinf(6 * f);
}

/* Gradient wrt (c, f) of a D row's embedding, from de (NE). */
static void d_row_back(const float *de, float c, float f, float *dc, float *df) {
  *dc = de[0] + 4 * c * de[1];
  *df = -sinf(f) * de[2] + cosf(f) * de[3] - 2 * sinf(2 * f) * de[4] + 2 * cosf(2 * f) * de[5] -
        6 * sinf(6 * f) * de[6] + 6 * cosf(6 * f) * de[7];
}

/* Row-wise softmax of 4 logits (stride `stride`) into p (4). */
static void softmax4(const float *x, float *p) {
  float mx = x[0];
  for (int j = 1; j < 4; j++) mx = x[j] > mx ? x[j] : mx;
  float z = 0;
  for (int j = 0; j < 4; j++) z += (p[j] = expf(x[j] - mx));
  for (int j = 0; j < 4; j++) p[j] /= z;
}

/* ---- workspace ----------------------------------------------------------- */

static int make_mlp(ef_ctx *ctx, ef_mlp **out, int in, const ef_net_params *np, int outw,
                    int max_batch) {
  int widths[18];
  ef_nn_act acts[17];
  int L = np->layers;
  widths[0] = in;
  for (int l = 0; l < L; l++) {
    widths[l + 1] = np->hidden;
    acts[l] = EF_ACT_LEAKY_RELU;
  }
  widths[L + 1] = outw;
  acts[L] = EF_ACT_LINEAR;
  ef_mlp_spec spec = {L + 1, widths, acts, 0.2f, max_batch};
  return ef_mlp_create(ctx, out, &spec);
}

static int make_adam(ef_ctx *ctx, ef_adam **out, const ef_mlp *m, double lr, float beta1) {
  ef_adam_cfg a = ef_adam_defaults();
  a.lr = (float)lr;
  a.beta1 = beta1;
  return ef_adam_create(ctx, out, ef_mlp_n_params(m), &a);
}

void ef_gan_ws_destroy(ef_gan_ws *ws) {
  if (!ws) return;
  ef_mlp_destroy(ws->g);
  ef_mlp_destroy(ws->d);
  ef_adam_destroy(ws->adam_g);
  ef_adam_destroy(ws->adam_d);
  ef_mlp_destroy(ws->eff);
  for (int t = 0; t < 3; t++) {
    ef_mlp_destroy(ws->smear[t]);
    free(ws->xs[t]);
  }
  ef_mlp_destroy(ws->dsd);
  ef_mlp_destroy(ws->ds);
  ef_adam_destroy(ws->adam_eff);
  ef_adam_destroy(ws->adam_smear);
  ef_adam_destroy(ws->adam_dsd);
  ef_adam_destroy(ws->adam_ds);
  ef_adam_destroy(ws->adam_dsp);
  free(ws->gsave);
  free(ws->pavg);
  free(ws->mc_order);
  free(ws->cdf);
  free(ws->meas);
  void *bufs[] = {ws->z,    ws->v,        ws->gu,   ws->feat, ws->jac,   ws->reco,
                  ws->rsgn, ws->prob,     ws->dx,    ws->w,    ws->loss_row, ws->dlogit,
                  ws->ddx,  ws->dfeat,    ws->dv,    ws->dout, ws->draw,  ws->tgt,
                  ws->lg,   ws->dlg,      ws->idx,   ws->bin,  ws->blind, ws->hsum,
                  ws->esum, ws->fcdf,     ws->mx,    ws->my,   ws->mdx,   ws->msel, ws->mgrad};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(ws);
}

int ef_gan_ws_create(ef_ctx *ctx, ef_gan_ws **out, const ef_config *cfg, size_t n_data,
                     size_t n_mc) {
  *out = NULL;
  const ef_gan_params *gp = &cfg->gan;
  ef_gan_ws *ws = calloc(1, sizeof *ws);
  if (!ws) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the GAN workspace");
  ws->latent = gp->latent;
  ws->k_noise = gp->detector_noise;
  ws->bo = gp->outer.batch;
  ws->bf = (gp->outer.batch + 1) / 2;
  ws->rows = ws->bo + ws->bf + 3 * ws->bo + ws->bo;
  ws->be = gp->efficiency.batch;
  ws->bs = gp->smearing.batch;
  ws->bmax = ws->bo;
  if (ws->be > ws->bmax) ws->bmax = ws->be;
  if (ws->bs > ws->bmax) ws->bmax = ws->bs;
  ws->key_topo = ws->key_mixed = INT64_MIN;
  ws->n_data = n_data;
  ws->n_mc = n_mc;
  ws->nv_cap = cfg->vertex_bins.n_polar * cfg->vertex_bins.n_phi;
  int topo = (cfg->campaign.methods >> EF_METHOD_GAN_TOPO) & 1;
  int mixed = (cfg->campaign.methods >> EF_METHOD_GAN_MIXED) & 1;
  int nin = NF + ws->k_noise, rc = EF_OK;
  EF_GOTO(rc, make_mlp(ctx, &ws->g, ws->latent, &gp->outer, 3, ws->bo), fail);
  EF_GOTO(rc, make_mlp(ctx, &ws->d, ND, &gp->outer, 1, ws->rows), fail);
  EF_GOTO(rc, make_adam(ctx, &ws->adam_g, ws->g, gp->outer.lr, 0.5f), fail);
  EF_GOTO(rc, make_adam(ctx, &ws->adam_d, ws->d, gp->outer.lr, 0.5f), fail);
  EF_GOTO(rc, make_mlp(ctx, &ws->dsd, NF + 2, &gp->smearing, 1, 2 * ws->bmax), fail);
  EF_GOTO(rc, make_adam(ctx, &ws->adam_dsd, ws->dsd, gp->smearing.lr, 0.5f), fail);
  if (topo) {
    EF_GOTO(rc, make_mlp(ctx, &ws->eff, NF, &gp->efficiency, 4, ws->bmax), fail);
    EF_GOTO(rc, make_adam(ctx, &ws->adam_eff, ws->eff, gp->efficiency.lr, 0.9f), fail);
    for (int t = 0; t < 3; t++)
      EF_GOTO(rc, make_mlp(ctx, &ws->smear[t], nin, &gp->smearing, 2, ws->bmax), fail);
    EF_GOTO(rc, make_adam(ctx, &ws->adam_smear, ws->smear[0], gp->smearing.lr, 0.5f), fail);
  }
  if (mixed) {
    /* the DS-GAN does the smearing networks' and the classifier's work:
     * the larger of the two sizes */
    ef_net_params np = gp->smearing;
    if (np.hidden < gp->efficiency.hidden) np.hidden = gp->efficiency.hidden;
    if (np.layers < gp->efficiency.layers) np.layers = gp->efficiency.layers;
    EF_GOTO(rc, make_mlp(ctx, &ws->ds, nin, &np, 6, ws->bmax), fail);
    EF_GOTO(rc, make_adam(ctx, &ws->adam_ds, ws->ds, gp->smearing.lr, 0.5f), fail);
    EF_GOTO(rc, make_adam(ctx, &ws->adam_dsp, ws->ds, gp->efficiency.lr, 0.9f), fail);
    ws->gsave = malloc(ef_mlp_n_params(ws->ds) * sizeof(float));
    if (!ws->gsave) {
      rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the GAN workspace");
      goto fail;
    }
  }
  size_t n_avg = ws->eff ? ef_mlp_n_params(ws->eff) : 1;
  if (ws->ds && ef_mlp_n_params(ws->ds) > n_avg) n_avg = ef_mlp_n_params(ws->ds);
  ws->pavg = malloc(n_avg * sizeof(float));
  size_t bo = (size_t)ws->bo, bm = (size_t)ws->bmax, rows = (size_t)ws->rows;
  if (rows < 2 * bm) rows = 2 * bm; /* the detector GANs' critic batches use the same rows */
  ws->mc_order = malloc((n_mc ? n_mc : 1) * sizeof *ws->mc_order);
  ws->cdf = malloc((n_data ? n_data : 1) * sizeof *ws->cdf);
  ws->meas = malloc((n_data ? n_data : 1) * sizeof *ws->meas);
  ws->z = malloc(bm * (size_t)ws->latent * sizeof(float));
  ws->v = malloc(bm * 2 * sizeof(float));
  ws->gu = malloc(bm * 3 * sizeof(float));
  ws->feat = malloc(bm * NF * sizeof(float));
  ws->jac = malloc(bm * NF * 2 * sizeof(float));
  for (int t = 0; t < 3; t++) ws->xs[t] = malloc(bm * (size_t)nin * sizeof(float));
  ws->reco = malloc(3 * bo * 2 * sizeof(float));
  ws->rsgn = malloc(3 * bo * sizeof(float));
  ws->prob = malloc(bm * 4 * sizeof(float));
  ws->dx = malloc(rows * ND * sizeof(float));
  ws->w = malloc(rows * sizeof(float));
  ws->loss_row = malloc(rows * sizeof(float));
  ws->dlogit = malloc(rows * sizeof(float));
  ws->ddx = malloc(rows * ND * sizeof(float));
  ws->dfeat = malloc(2 * bm * (size_t)nin * sizeof(float));
  ws->dv = malloc(bm * 2 * sizeof(float));
  ws->dout = malloc(2 * bm * 6 * sizeof(float));
  ws->draw = malloc(bm * 3 * sizeof(float));
  ws->tgt = malloc(bm * 4 * sizeof(float));
  ws->lg = malloc(bm * 4 * sizeof(float));
  ws->dlg = malloc(bm * 4 * sizeof(float));
  ws->idx = malloc(bm * sizeof(int32_t));
  ws->fcdf = malloc(3 * bo * sizeof(double));
  ws->mx = malloc(bo * MD * sizeof(float));
  ws->my = malloc(bo * MD * sizeof(float));
  ws->mdx = malloc(bo * MD * sizeof(float));
  ws->msel = malloc(bo * sizeof(int32_t));
  ws->mgrad = malloc(3 * bo * 2 * sizeof(float));
  ws->bin = malloc(bm * sizeof(int32_t));
  ws->blind = malloc((size_t)ws->nv_cap);
  ws->hsum = malloc((size_t)ws->nv_cap * sizeof(double));
  ws->esum = malloc((size_t)ws->nv_cap * sizeof(double));
  void *bufs[] = {ws->mc_order, ws->cdf, ws->meas, ws->z, ws->v, ws->gu, ws->feat, ws->jac,
                  ws->xs[0], ws->xs[1], ws->xs[2], ws->reco, ws->rsgn, ws->prob, ws->dx,
                  ws->w, ws->loss_row, ws->dlogit, ws->ddx, ws->dfeat, ws->dv, ws->dout,
                  ws->draw, ws->tgt, ws->lg, ws->dlg, ws->idx, ws->bin, ws->blind, ws->hsum,
                  ws->esum, ws->fcdf, ws->mx, ws->my, ws->mdx, ws->msel, ws->mgrad, ws->pavg};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    if (!bufs[i]) {
      rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the GAN workspace");
      goto fail;
    }
  *out = ws;
  return EF_OK;
fail:
  ef_gan_ws_destroy(ws);
  return rc;
}

/* ---- detector networks ---------------------------------------------------- */

/* Is event e in a measured topology (T1..T3) with finite reco angles? */
static int measured(const ef_events *ev, size_t e) {
  return ev->topology[e] > 0 && isfinite(ev->reco[2 * e]) && isfinite(ev->reco[2 * e + 1]);
}

static void mc_index(ef_gan_ws *ws, const ef_events *mc) {
  if (ws->mc_ready) return;
  size_t count[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < mc->n; i++) count[measured(mc, i) ? mc->topology[i] : 0]++;
  ws->mc_off[0] = 0;
  for (int t = 0; t < 4; t++) ws->mc_off[t + 1] = ws->mc_off[t] + count[t];
  size_t pos[4] = {ws->mc_off[0], ws->mc_off[1], ws->mc_off[2], ws->mc_off[3]};
  for (size_t i = 0; i < mc->n; i++)
    ws->mc_order[pos[measured(mc, i) ? mc->topology[i] : 0]++] = (int32_t)i;
  ws->mc_ready = 1;
}

/* Residual of reco against vertex, (dc, df) with df wrapped. */
static void residual(const ef_events *mc, size_t i, double *dc, double *df) {
  *dc = mc->reco[2 * i] - mc->vertex[2 * i];
  *df = ef_wrap_pi(mc->reco[2 * i + 1] - mc->vertex[2 * i + 1]);
}

static void residual_scale(const ef_events *mc, const int32_t *idx, size_t n, float sig[2]) {
  double s[2] = {0, 0};
  for (size_t k = 0; k < n; k++) {
    double dc, df;
    residual(mc, (size_t)idx[k], &dc, &df);
    s[0] += dc * dc;
    s[1] += df * df;
  }
  for (int j = 0; j < 2; j++) sig[j] = (float)fmax(n ? sqrt(s[j] / (double)n) : 0.0, 1e-4);
}

static float lr_at(double lr, double final_frac, int step, int steps) {
  double x = steps > 1 ? (double)step / (steps - 1) : 1.0;
  return (float)(lr * (1.0 - (1.0 - final_frac) * x));
}

/* Polyak averaging over the last fraction `frac` of `steps`: the first
 * averaged step (steps when frac is 0: nothing averaged). */
static int average_from(double frac, int steps) {
  int first = steps - (int)(frac * steps + 0.5);
  return first < steps ? first : steps;
}

/* After step `step` of `steps`: from step `first` on, fold m's parameters
 * into their running mean avg; after the last step, m takes the mean. */
static void average_step(float *avg, ef_mlp *m, int step, int first, int steps) {
  if (step < first) return;
  size_t n = ef_mlp_n_params(m);
  float *p = ef_mlp_params(m);
  if (step == first) {
    memcpy(avg, p, n * sizeof *avg);
  } else {
    float w = 1.0f / (float)(step - first + 1);
    for (size_t i = 0; i < n; i++) avg[i] += w * (p[i] - avg[i]);
  }
  if (step == steps - 1) memcpy(p, avg, n * sizeof *p);
}

static int check_finite(ef_ctx *ctx, double x, const char *what, int step) {
  if (isfinite(x)) return EF_OK;
  return ef_error_set(ctx, EF_ERR_NUMERIC, "%s: loss not finite at step %d", what, step);
}

/* The efficiency classifier: softmax over T0..T3 trained with soft targets
 * (the MC's exact probability vectors) on features of the MC vertices. */
static int train_efficiency(ef_ctx *ctx, const ef_net_params *np, double avg_frac,
                            ef_gan_ws *ws, const ef_events *mc, uint64_t seed, uint32_t stream) {
  ef_mlp *m = ws->eff;
  int first = average_from(avg_frac, np->steps);
  ef_mlp_init(m, seed, stream);
  ef_adam_reset(ws->adam_eff);
  ef_rng r;
  ef_rng_init(&r, seed, EF_RNG_NN_TRAIN, stream);
  int B = ws->be;
  for (int step = 0; step < np->steps; step++) {
    for (int i = 0; i < B; i++) {
      size_t e = ef_rng_below(&r, (uint32_t)mc->n);
      kin_features(&ws->kin, mc->vertex[2 * e], mc->vertex[2 * e + 1], ws->feat + i * NF, NULL);
      for (int t = 0; t < 4; t++) ws->tgt[4 * i + t] = mc->prob[4 * e + t];
      ws->w[i] = mc->weight ? (float)mc->weight[e] : 1.0f;
    }
    const float *lg = ef_mlp_forward(m, ws->feat, B);
    float loss = ef_loss_softmax_xent(B, 4, lg, ws->tgt, mc->weight ? ws->w : NULL, ws->dlg);
    EF_CHECK(check_finite(ctx, loss, "efficiency classifier", step));
    ef_mlp_zero_grad(m);
    ef_mlp_backward(m, ws->dlg, NULL, EF_MLP_GRAD_PARAMS);
    ef_adam_set_lr(ws->adam_eff, lr_at(np->lr, 0.05, step, np->steps));
    ef_adam_step(ws->adam_eff, ef_mlp_params(m), ef_mlp_grads(m));
    average_step(ws->pavg, m, step, first, np->steps);
  }
  return EF_OK;
}

/* A conditional smearing GAN: net (NF + k -> outw) maps (features(v),
 * noise) to the residual (reco - v) / sig in its outputs 0..1; the critic
 * ws->dsd sees (features(v), residual / sig). Batches are drawn from the MC
 * events idx[0..n); only measured ones (T1..T3) enter the adversarial part.
 * With outw == 6 (the DS-GAN) the outputs 2..5 are also trained as logits
 * of P(T0..T3 | v) with the soft-target cross-entropy on every event of the
 * batch (the blind region included). The two losses share the hidden
 * layers but not the optimizer: both gradients are taken at the same
 * parameters, the adversarial one stepped by `adam` at np's learning rate
 * (betas 0.5, as every detector GAN), the cross-entropy by ws->adam_dsp at
 * pp's (the classifier's, betas 0.9). With one optimizer at the
 * classifier's rate the adversarial noise stayed in the probabilities
 * (efficiency-map errors up to 0.06-0.08 per bin); at the smearing rate
 * the P head learnt too slowly. */
static int train_smearing(ef_ctx *ctx, const ef_net_params *np, ef_gan_ws *ws,
                          const ef_events *mc, ef_mlp *net, ef_adam *adam, int outw,
                          const int32_t *idx, size_t n, const float sig[2], uint64_t seed,
                          uint32_t stream, const ef_net_params *pp, double avg_frac, int B,
                          const char *what) {
  if (n == 0) return ef_error_set(ctx, EF_ERR_INPUT, "%s: no MC events to train on", what);
  int first = average_from(avg_frac, np->steps);
  ef_mlp *dd = ws->dsd;
  ef_mlp_init(net, seed, stream);
  ef_mlp_init(dd, seed, stream + 100);
  ef_adam_reset(adam);
  if (outw == 6) ef_adam_reset(ws->adam_dsp);
  ef_adam_reset(ws->adam_dsd);
  ef_rng r;
  ef_rng_init(&r, seed, EF_RNG_NN_TRAIN, stream);
  int k = ws->k_noise, nin = NF + k;
  float *xin = ws->xs[0];      /* (B, nin) generator input */
  float *xd = ws->dx;          /* (2m, NF + 2): real rows, then fake rows */
  float *ddx = ws->ddx;        /* (m, NF + 2) */
  int32_t *arow = ws->bin;     /* (m) batch rows in the adversarial part */
  for (int step = 0; step < np->steps; step++) {
    float lr = lr_at(np->lr, 0.1, step, np->steps);
    int m = 0;
    for (int i = 0; i < B; i++) {
      size_t e = (size_t)idx[ef_rng_below(&r, (uint32_t)n)];
      ws->idx[i] = (int32_t)e;
      kin_features(&ws->kin, mc->vertex[2 * e], mc->vertex[2 * e + 1], xin + (size_t)i * nin,
                   NULL);
      if (measured(mc, e)) arow[m++] = i;
    }
    for (int i = 0; i < B; i++) ef_nn_fill_normal(&r, xin + (size_t)i * nin + NF, (size_t)k);
    const float *o = ef_mlp_forward(net, xin, B); /* (B, outw) */
    float *dout = ws->dout;                        /* (B, outw) */
    memset(dout, 0, (size_t)B * outw * sizeof(float));
    if (m > 0) {
      for (int j = 0; j < m; j++) {
        int i = arow[j];
        size_t e = (size_t)ws->idx[i];
        float *rr = xd + (size_t)j * (NF + 2), *rf = xd + (size_t)(m + j) * (NF + 2);
        memcpy(rr, xin + (size_t)i * nin, NF * sizeof(float));
        memcpy(rf, xin + (size_t)i * nin, NF * sizeof(float));
        double dc, df;
        residual(mc, e, &dc, &df);
        rr[NF] = (float)(dc / sig[0]);
        rr[NF + 1] = (float)(df / sig[1]);
        rf[NF] = o[(size_t)i * outw];
        rf[NF + 1] = o[(size_t)i * outw + 1];
      }
      /* critic update: real 1, fake 0 */
      const float *x = ef_mlp_forward(dd, xd, 2 * m);
      float ld = ef_loss_bce_logits(m, x, NULL, 1.0f, NULL, ws->dlogit) +
                 ef_loss_bce_logits(m, x + m, NULL, 0.0f, NULL, ws->dlogit + m);
      EF_CHECK(check_finite(ctx, ld, what, step));
      ef_mlp_zero_grad(dd);
      ef_mlp_backward(dd, ws->dlogit, NULL, EF_MLP_GRAD_PARAMS);
      ef_adam_set_lr(ws->adam_dsd, lr);
      ef_adam_step(ws->adam_dsd, ef_mlp_params(dd), ef_mlp_grads(dd));
      /* generator update through the updated critic */
      x = ef_mlp_forward(dd, xd + (size_t)m * (NF + 2), m);
      float lg = ef_loss_gen_nonsat(m, x, NULL, ws->dlogit);
      EF_CHECK(check_finite(ctx, lg, what, step));
      ef_mlp_backward(dd, ws->dlogit, ddx, 0);
      for (int j = 0; j < m; j++) {
        int i = arow[j];
        dout[(size_t)i * outw] = ddx[(size_t)j * (NF + 2) + NF];
        dout[(size_t)i * outw + 1] = ddx[(size_t)j * (NF + 2) + NF + 1];
      }
    }
    ef_mlp_zero_grad(net);
    ef_mlp_backward(net, dout, NULL, EF_MLP_GRAD_PARAMS);
    if (outw == 6) {
      /* the P head's cross-entropy at the same parameters, its own
       * gradient and optimizer; then both steps */
      size_t np_ = ef_mlp_n_params(net);
      memcpy(ws->gsave, ef_mlp_grads(net), np_ * sizeof(float));
      for (int i = 0; i < B; i++) {
        size_t e = (size_t)ws->idx[i];
        for (int t = 0; t < 4; t++) {
          ws->lg[4 * i + t] = o[(size_t)i * 6 + 2 + t];
          ws->tgt[4 * i + t] = mc->prob[4 * e + t];
        }
      }
      float lx = ef_loss_softmax_xent(B, 4, ws->lg, ws->tgt, NULL, ws->dlg);
      EF_CHECK(check_finite(ctx, lx, what, step));
      memset(dout, 0, (size_t)B * outw * sizeof(float));
      for (int i = 0; i < B; i++)
        for (int t = 0; t < 4; t++) dout[(size_t)i * 6 + 2 + t] = ws->dlg[4 * i + t];
      ef_mlp_zero_grad(net);
      ef_mlp_backward(net, dout, NULL, EF_MLP_GRAD_PARAMS);
      ef_adam_set_lr(ws->adam_dsp, lr_at(pp->lr, 0.05, step, np->steps));
      ef_adam_step(ws->adam_dsp, ef_mlp_params(net), ef_mlp_grads(net));
    }
    ef_adam_set_lr(adam, lr);
    ef_adam_step(adam, ef_mlp_params(net), outw == 6 ? ws->gsave : ef_mlp_grads(net));
    average_step(ws->pavg, net, step, first, np->steps);
  }
  return EF_OK;
}

/* Train (or keep) the detector networks of pb->method for pb->det_key. */
static int detector_networks(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                             ef_gan_ws *ws) {
  const ef_events *mc = pb->mc;
  int64_t key = pb->det_key * 64 + pb->attempt;
  uint32_t s0 = (uint32_t)pb->attempt * N_ROLES;
  if (!mc->vertex || !mc->prob)
    return ef_error_set(ctx, EF_ERR_INPUT, "GAN methods need MC with vertex and prob");
  mc_index(ws, mc);
  if (pb->method == EF_METHOD_GAN_TOPO) {
    if (ws->have_topo && ws->key_topo == key && pb->det_key >= 0) return EF_OK;
    ws->have_topo = 0;
    EF_CHECK(train_efficiency(ctx, &gp->efficiency, gp->efficiency_average, ws, mc,
                              pb->det_seed, s0 + ROLE_EFF));
    for (int t = 1; t <= 3; t++) {
      const int32_t *idx = ws->mc_order + ws->mc_off[t];
      size_t n = ws->mc_off[t + 1] - ws->mc_off[t];
      char what[64];
      snprintf(what, sizeof what, "smearing network S_%d", t);
      if (n == 0) {
        /* a topology the MC never produces: the data cannot have it either
         * in any quantity; its weight eps_t is ~0, so any S_t will do */
        ef_mlp_init(ws->smear[t - 1], pb->det_seed, s0 + (uint32_t)(ROLE_S1 + t - 1));
        ws->sig_topo[t - 1][0] = ws->sig_topo[t - 1][1] = 1e-4f;
        continue;
      }
      residual_scale(mc, idx, n, ws->sig_topo[t - 1]);
      EF_CHECK(train_smearing(ctx, &gp->smearing, ws, mc, ws->smear[t - 1], ws->adam_smear, 2,
                              idx, n, ws->sig_topo[t - 1], pb->det_seed,
                              s0 + (uint32_t)(ROLE_S1 + t - 1), NULL, 0.0, ws->bs, what));
    }
    ws->have_topo = 1;
    ws->key_topo = key;
  } else {
    if (ws->have_mixed && ws->key_mixed == key && pb->det_key >= 0) return EF_OK;
    ws->have_mixed = 0;
    /* the DS-GAN draws from every MC event: its P head must learn the
     * blind region too; the residual scale comes from the measured ones */
    residual_scale(mc, ws->mc_order + ws->mc_off[1], ws->mc_off[4] - ws->mc_off[1],
                   ws->sig_mixed);
    /* its P head needs what the efficiency classifier needs: as many
     * steps and its batch; its learning rate goes in as pp (the
     * adversarial part keeps the smearing networks' rate) */
    ef_net_params np = gp->smearing;
    if (np.steps < gp->efficiency.steps) np.steps = gp->efficiency.steps;
    EF_CHECK(train_smearing(ctx, &np, ws, mc, ws->ds, ws->adam_ds, 6, ws->mc_order,
                            ws->mc_off[4], ws->sig_mixed, pb->det_seed, s0 + ROLE_DS,
                            &gp->efficiency, gp->efficiency_average, ws->be, "DS-GAN"));
    ws->have_mixed = 1;
    ws->key_mixed = key;
  }
  return EF_OK;
}

/* ---- the outer GAN ------------------------------------------------------- */

/* Per generated row s (n rows, G's output raw (n, 3)): the vertex is the
 * direction of u = raw (a sphere has no edges, so G needs no folding or
 * wrapping and a finite density at the poles is natural); then features
 * and their Jacobian. */
static void generated_vertices(ef_gan_ws *ws, const float *raw, int n, int with_jac) {
  memcpy(ws->gu, raw, (size_t)n * 3 * sizeof(float));
  for (int s = 0; s < n; s++) {
    const float *u = raw + 3 * s;
    double r = sqrt((double)u[0] * u[0] + (double)u[1] * u[1] + (double)u[2] * u[2]);
    float c = r > 0 ? (float)(u[2] / r) : 0.0f;
    if (c > 1.0f) c = 1.0f;
    if (c < -1.0f) c = -1.0f;
    float f = (float)atan2(u[1], u[0]);
    ws->v[2 * s] = c;
    ws->v[2 * s + 1] = f;
    kin_features(&ws->kin, c, f, ws->feat + (size_t)s * NF,
                 with_jac ? ws->jac + (size_t)s * NF * 2 : NULL);
  }
}

/* Detector response of n generated vertices (features in ws->feat): the
 * probabilities into ws->prob (n, 4) and, with reco, the reconstructed
 * (c, f) per measured topology into ws->reco (3, n, 2) with fold signs. The
 * networks keep their activations for a backward pass. */
static void fold_through_detector(ef_gan_ws *ws, int method, ef_rng *r, int n, int reco) {
  int k = ws->k_noise, nin = NF + k;
  if (method == EF_METHOD_GAN_TOPO) {
    const float *lg = ef_mlp_forward(ws->eff, ws->feat, n);
    for (int s = 0; s < n; s++) softmax4(lg + 4 * s, ws->prob + 4 * s);
    if (!reco) return;
    for (int t = 0; t < 3; t++) {
      float *x = ws->xs[t];
      for (int s = 0; s < n; s++) {
        memcpy(x + (size_t)s * nin, ws->feat + (size_t)s * NF, NF * sizeof(float));
        ef_nn_fill_normal(r, x + (size_t)s * nin + NF, (size_t)k);
      }
      const float *o = ef_mlp_forward(ws->smear[t], x, n);
      for (int s = 0; s < n; s++) {
        float *rc = ws->reco + ((size_t)t * n + s) * 2;
        rc[0] = fold_unit(ws->v[2 * s] + ws->sig_topo[t][0] * o[2 * s], &ws->rsgn[t * n + s]);
        rc[1] = wrap_pi(ws->v[2 * s + 1] + ws->sig_topo[t][1] * o[2 * s + 1]);
      }
    }
  } else {
    float *x = ws->xs[0];
    for (int s = 0; s < n; s++) {
      memcpy(x + (size_t)s * nin, ws->feat + (size_t)s * NF, NF * sizeof(float));
      ef_nn_fill_normal(r, x + (size_t)s * nin + NF, (size_t)k);
    }
    const float *o = ef_mlp_forward(ws->ds, x, n); /* (n, 6) */
    for (int s = 0; s < n; s++) softmax4(o + 6 * s + 2, ws->prob + 4 * s);
    if (!reco) return;
    for (int s = 0; s < n; s++) {
      float sg;
      float c = fold_unit(ws->v[2 * s] + ws->sig_mixed[0] * o[6 * s], &sg);
      float f = wrap_pi(ws->v[2 * s + 1] + ws->sig_mixed[1] * o[6 * s + 1]);
      for (int t = 0; t < 3; t++) {
        float *rc = ws->reco + ((size_t)t * n + s) * 2;
        rc[0] = c;
        rc[1] = f;
        ws->rsgn[t * n + s] = sg;
      }
    }
  }
}

/* Index of a uniform draw u in [0, total) in the cumulative weights. */
static size_t cdf_pick(const double *cdf, size_t n, double u) {
  size_t lo = 0, hi = n - 1;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cdf[mid] > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

typedef struct {
  size_t n_meas;      /* measured data events with weight > 0 */
  double total;       /* their summed weight */
  int use_blind;      /* the blind channel is on */
} outer_setup;

/* Gradient of MMD^2 (sum of three Gaussian kernels of widths sig) between
 * x (n, MD) and y (m, MD) with respect to x, into dx (n, MD). Points of
 * different channels (p[3..5]) are 3 apart and their kernel is below
 * e^-18 even at the widest sigma: such pairs are skipped. Float math: this
 * runs every step on B x 2B pairs (ef_loss_mmd is the general, double
 * version). */
static void mmd_grad(int n, int m, const float *x, const float *y, const float sig[3],
                     float *dx) {
  float a[3];
  for (int k = 0; k < 3; k++) a[k] = 1.0f / (2.0f * sig[k] * sig[k]);
  float cxx = 2.0f / ((float)n * n), cxy = 2.0f / ((float)n * m);
  for (int i = 0; i < n; i++) {
    const float *xi = x + (size_t)i * MD;
    float g0 = 0, g1 = 0, g2 = 0;
    for (int pass = 0; pass < 2; pass++) {
      const float *pts = pass ? y : x;
      int cnt = pass ? m : n;
      float coef = pass ? -cxy : cxx;
      for (int j = 0; j < cnt; j++) {
        const float *pj = pts + (size_t)j * MD;
        if (pj[3] != xi[3] || pj[4] != xi[4] || pj[5] != xi[5]) continue;
        float d0 = xi[0] - pj[0], d1 = xi[1] - pj[1], d2 = xi[2] - pj[2];
        float r2 = d0 * d0 + d1 * d1 + d2 * d2;
        /* dk/dxi = -sum_s 2 a_s exp(-a_s r2) (xi - pj) */
        /* skip the terms below e^-40 (expf's underflow path is slow) */
        float w = 0;
        for (int k = 0; k < 3; k++)
          if (a[k] * r2 < 40.0f) w += 2 * a[k] * expf(-a[k] * r2);
        w *= -coef;
        g0 += w * d0;
        g1 += w * d1;
        g2 += w * d2;
      }
    }
    dx[(size_t)i * MD] = g0;
    dx[(size_t)i * MD + 1] = g1;
    dx[(size_t)i * MD + 2] = g2;
  }
}

static void mmd_point(float *p, int ch, float c, float cf, float sf) {
  p[0] = c;
  p[1] = cf;
  p[2] = sf;
  for (int t = 1; t <= 3; t++) p[2 + t] = t == ch ? 3.0f : 0.0f;
}

/* The MMD term of G's loss: B fake measured rows drawn with probability
 * proportional to their weight eps_t(v) against the step's B data rows,
 * points (cos theta*, cos phi*, sin phi*) with the channel pushed 3 apart
 * (kernels never mix channels). Its gradient, times gan.mmd_weight, goes
 * into ws->mgrad (3 B, 2), per fake measured row and reco coordinate. */
static void mmd_term(const ef_gan_params *gp, ef_gan_ws *ws, ef_rng *r, int B) {
  static const float sig[3] = {0.05f, 0.15f, 0.45f};
  double acc = 0.0;
  memset(ws->mgrad, 0, (size_t)6 * B * sizeof(float));
  for (int t = 0; t < 3; t++)
    for (int s = 0; s < B; s++) ws->fcdf[t * B + s] = (acc += ws->prob[4 * s + t + 1]);
  for (int i = 0; i < B; i++) {
    const float *row = ws->dx + (size_t)i * ND; /* data row i */
    int ch = row[1] > 0.5f ? 1 : row[2] > 0.5f ? 2 : 3;
    mmd_point(ws->my + (size_t)i * MD, ch, row[NCH], row[NCH + 2], row[NCH + 3]);
    size_t k = cdf_pick(ws->fcdf, 3 * (size_t)B, ef_rng_uniform(r) * acc);
    ws->msel[i] = (int32_t)k;
    int t = (int)(k / (size_t)B), s = (int)(k % (size_t)B);
    const float *rc = ws->reco + ((size_t)t * B + s) * 2;
    mmd_point(ws->mx + (size_t)i * MD, t + 1, rc[0], cosf(rc[1]), sinf(rc[1]));
  }
  mmd_grad(B, B, ws->mx, ws->my, sig, ws->mdx);
  float lam = (float)gp->mmd_weight;
  for (int i = 0; i < B; i++) {
    int k = ws->msel[i], t = k / B, s = k % B;
    const float *rc = ws->reco + ((size_t)t * B + s) * 2;
    const float *g = ws->mdx + (size_t)i * MD;
    ws->mgrad[2 * k] += lam * g[0];
    ws->mgrad[2 * k + 1] += lam * (-sinf(rc[1]) * g[1] + cosf(rc[1]) * g[2]);
  }
}

/* One outer step: D update, then G update. Returns the losses. */
static int outer_step(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                      ef_gan_ws *ws, const outer_setup *os, ef_rng *r, int step, double *ld,
                      double *lgen) {
  int B = ws->bo, Bf = os->use_blind ? ws->bf : 0, k = ws->k_noise, nin = NF + k;
  const ef_events *data = pb->data;
  int nv = ef_binning_count(pb->vtx);
  float lr = lr_at(gp->outer.lr, gp->lr_final, step, gp->outer.steps);
  double wb = os->use_blind ? gp->fill_weight : 0.0;
  /* generated events */
  ef_nn_fill_normal(r, ws->z, (size_t)B * ws->latent);
  const float *raw = ef_mlp_forward(ws->g, ws->z, B);
  generated_vertices(ws, raw, B, 1);
  fold_through_detector(ws, pb->method, r, B, 1);
  /* discriminator rows: [0, B) data, [B, B + Bf) fill (blind bins),
   * then fake: 3 B measured (t-major), B blind */
  float *dx = ws->dx, *w = ws->w;
  /* instance noise (Gaussian, on every row's coordinates before the
   * embedding), annealed linearly to a tenth over the training */
  float sn = (float)(gp->instance_noise * (1.0 - 0.9 * step / (double)gp->outer.steps));
  float *nz = ws->tgt; /* (bmax, 4) >= (B, 2) normals, refilled per row group */
  ef_nn_fill_normal(r, nz, (size_t)2 * B);
  for (int i = 0; i < B; i++) {
    size_t e = (size_t)ws->meas[cdf_pick(ws->cdf, os->n_meas, ef_rng_uniform(r) * os->total)];
    d_row(dx + (size_t)i * ND, data->topology[e], (float)data->reco[2 * e] + sn * nz[2 * i],
          (float)data->reco[2 * e + 1] + sn * nz[2 * i + 1]);
    w[i] = 1.0f / B;
  }
  ef_nn_fill_normal(r, nz, (size_t)2 * B);
  for (int i = 0; i < Bf; i++) {
    double c, f;
    int tries = 0;
    do {
      ef_model_sample(&pb->fill, r, &c, &f);
    } while (!ws->blind[ef_binning_index(pb->vtx, c, f)] && ++tries < 100000);
    d_row(dx + (size_t)(B + i) * ND, 0, (float)c + sn * nz[2 * i], (float)f + sn * nz[2 * i + 1]);
    w[B + i] = (float)(wb / Bf);
  }
  int off = B + Bf;
  double esum = 0.0, bsum = 0.0;
  for (int t = 0; t < 3; t++) {
    ef_nn_fill_normal(r, nz, (size_t)2 * B);
    for (int s = 0; s < B; s++) {
      float *rc = ws->reco + ((size_t)t * B + s) * 2; /* noised in place: d_row_back's point */
      rc[0] += sn * nz[2 * s];
      rc[1] += sn * nz[2 * s + 1];
      d_row(dx + (size_t)(off + t * B + s) * ND, t + 1, rc[0], rc[1]);
      esum += ws->prob[4 * s + t + 1];
    }
  }
  float *vn = ws->draw; /* (B, 2) the blind rows' noised vertices, until draw is written */
  ef_nn_fill_normal(r, nz, (size_t)2 * B);
  for (int s = 0; s < B; s++) {
    int kb = ef_binning_index(pb->vtx, ws->v[2 * s], ws->v[2 * s + 1]);
    ws->bin[s] = kb >= 0 && kb < nv && ws->blind[kb];
    bsum += ws->bin[s];
    vn[2 * s] = ws->v[2 * s] + sn * nz[2 * s];
    vn[2 * s + 1] = ws->v[2 * s + 1] + sn * nz[2 * s + 1];
    d_row(dx + (size_t)(off + 3 * B + s) * ND, 0, vn[2 * s], vn[2 * s + 1]);
  }
  for (int t = 0; t < 3; t++)
    for (int s = 0; s < B; s++)
      w[off + t * B + s] = esum > 0 ? (float)(ws->prob[4 * s + t + 1] / esum) : 0.0f;
  for (int s = 0; s < B; s++)
    w[off + 3 * B + s] = bsum > 0 && Bf > 0 ? (float)(wb * ws->bin[s] / bsum) : 0.0f;
  int rows = off + 4 * B;
  /* D update: real rows target 1, fake rows target 0 */
  const float *x = ef_mlp_forward(ws->d, dx, rows);
  double l = 0.0;
  for (int i = 0; i < rows; i++) {
    double xi = x[i];
    if (i < off) {
      l += w[i] * softplus(-xi);
      ws->dlogit[i] = (float)(-w[i] * sigmoid(-xi));
    } else {
      l += w[i] * softplus(xi);
      ws->dlogit[i] = (float)(w[i] * sigmoid(xi));
    }
  }
  *ld = l;
  EF_CHECK(check_finite(ctx, l, "discriminator", step));
  ef_mlp_zero_grad(ws->d);
  ef_mlp_backward(ws->d, ws->dlogit, NULL, EF_MLP_GRAD_PARAMS);
  ef_adam_set_lr(ws->adam_d, lr);
  ef_adam_step(ws->adam_d, ef_mlp_params(ws->d), ef_mlp_grads(ws->d));
  /* G update through the updated D: non-saturating loss sum_r w_r
   * softplus(-x_r) over the fake rows; the measured rows' weights are
   * eps_t(v_s) / sum eps, whose gradient also reaches v */
  int nf = 4 * B;
  float *xf = dx + (size_t)off * ND;
  x = ef_mlp_forward(ws->d, xf, nf);
  double lgs = 0.0;
  for (int i = 0; i < nf; i++) {
    double xi = x[i], wi = w[off + i];
    ws->loss_row[i] = (float)softplus(-xi);
    lgs += wi * ws->loss_row[i];
    ws->dlogit[i] = (float)(-wi * sigmoid(-xi));
  }
  *lgen = lgs;
  EF_CHECK(check_finite(ctx, lgs, "generator", step));
  ef_mlp_backward(ws->d, ws->dlogit, ws->ddx, 0);
  int use_mmd = gp->mmd_weight > 0 && esum > 0;
  if (use_mmd) mmd_term(gp, ws, r, B);
  /* gradient wrt v, the features and the detector networks' outputs */
  memset(ws->dv, 0, (size_t)B * 2 * sizeof(float));
  memset(ws->dfeat, 0, (size_t)B * NF * sizeof(float));
  float *dout = ws->dout; /* topo: (B, 2) per S_t in turn; mixed (B, 6) */
  if (pb->method == EF_METHOD_GAN_MIXED) memset(dout, 0, (size_t)B * 6 * sizeof(float));
  for (int t = 0; t < 3; t++) {
    if (pb->method == EF_METHOD_GAN_TOPO) memset(dout, 0, (size_t)B * 2 * sizeof(float));
    for (int s = 0; s < B; s++) {
      int i = t * B + s;
      const float *rc = ws->reco + ((size_t)t * B + s) * 2;
      float dc, df;
      d_row_back(ws->ddx + (size_t)i * ND + NCH, rc[0], rc[1], &dc, &df);
      if (use_mmd) {
        dc += ws->mgrad[2 * i];
        df += ws->mgrad[2 * i + 1];
      }
      dc *= ws->rsgn[t * B + s];
      /* reco = v + sig * o: identity to v, scaled to o */
      ws->dv[2 * s] += dc;
      ws->dv[2 * s + 1] += df;
      if (pb->method == EF_METHOD_GAN_TOPO) {
        dout[2 * s] = ws->sig_topo[t][0] * dc;
        dout[2 * s + 1] = ws->sig_topo[t][1] * df;
      } else {
        dout[6 * s] += ws->sig_mixed[0] * dc;
        dout[6 * s + 1] += ws->sig_mixed[1] * df;
      }
    }
    if (pb->method == EF_METHOD_GAN_TOPO) {
      ef_mlp_backward(ws->smear[t], dout, ws->dfeat + (size_t)B * NF, 0); /* (B, nin) */
      const float *g = ws->dfeat + (size_t)B * NF;
      for (int s = 0; s < B; s++)
        for (int j = 0; j < NF; j++) ws->dfeat[(size_t)s * NF + j] += g[(size_t)s * nin + j];
    }
  }
  /* blind rows: G's vertex itself */
  for (int s = 0; s < B; s++) {
    float dc, df;
    d_row_back(ws->ddx + (size_t)(3 * B + s) * ND + NCH, vn[2 * s], vn[2 * s + 1], &dc, &df);
    ws->dv[2 * s] += dc;
    ws->dv[2 * s + 1] += df;
  }
  /* The weights eps_t(v_s) / sum eps are held fixed in G's gradient: G
   * moves its samples along D's gradient at the folded events, and the
   * efficiency only says how much each sample counts. Following the
   * weights' own derivative drives samples along the sharp acceptance
   * edges (coils, dead paddles) and made training noisier in tests; the
   * fixed point (weighted fake = data, D = 1/2) is the same. */
  if (pb->method == EF_METHOD_GAN_MIXED) {
    ef_mlp_backward(ws->ds, dout, ws->dfeat + (size_t)B * NF, 0); /* (B, nin) */
    const float *g = ws->dfeat + (size_t)B * NF;
    for (int s = 0; s < B; s++)
      for (int j = 0; j < NF; j++) ws->dfeat[(size_t)s * NF + j] += g[(size_t)s * nin + j];
  }
  /* features -> v -> G's raw outputs */
  for (int s = 0; s < B; s++) {
    const float *J = ws->jac + (size_t)s * NF * 2, *df = ws->dfeat + (size_t)s * NF;
    float gc = ws->dv[2 * s], gf = ws->dv[2 * s + 1];
    for (int j = 0; j < NF; j++) {
      gc += J[2 * j] * df[j];
      gf += J[2 * j + 1] * df[j];
    }
    /* c = u_z / r, f = atan2(u_y, u_x) */
    const float *u = ws->gu + 3 * s;
    double r2 = (double)u[0] * u[0] + (double)u[1] * u[1] + (double)u[2] * u[2];
    double rho2 = (double)u[0] * u[0] + (double)u[1] * u[1];
    double r = sqrt(r2), r3 = r2 * r;
    if (r3 < 1e-12) r3 = 1e-12;
    if (rho2 < 1e-4 * r2 + 1e-12) rho2 = 1e-4 * r2 + 1e-12;
    ws->draw[3 * s] = (float)(gc * (-u[2] * u[0] / r3) + gf * (-u[1] / rho2));
    ws->draw[3 * s + 1] = (float)(gc * (-u[2] * u[1] / r3) + gf * (u[0] / rho2));
    ws->draw[3 * s + 2] = (float)(gc * (((double)u[0] * u[0] + (double)u[1] * u[1]) / r3));
  }
  ef_mlp_zero_grad(ws->g);
  ef_mlp_backward(ws->g, ws->draw, NULL, EF_MLP_GRAD_PARAMS);
  ef_adam_set_lr(ws->adam_g, lr);
  ef_adam_step(ws->adam_g, ef_mlp_params(ws->g), ef_mlp_grads(ws->g));
  return EF_OK;
}

/* Histogram n samples of the current G into ws->hsum and their total
 * efficiency into ws->esum; accumulate moments for the collapse check. */
static void sample_generator(ef_gan_ws *ws, const ef_gan_problem *pb, ef_rng *r, long long n,
                             double *sc, double *scc, double *sx, double *sy) {
  long long done = 0;
  while (done < n) {
    int m = n - done < ws->bo ? (int)(n - done) : ws->bo;
    ef_nn_fill_normal(r, ws->z, (size_t)m * ws->latent);
    const float *raw = ef_mlp_forward(ws->g, ws->z, m);
    generated_vertices(ws, raw, m, 0);
    fold_through_detector(ws, pb->method, r, m, 0);
    for (int s = 0; s < m; s++) {
      float c = ws->v[2 * s], f = ws->v[2 * s + 1];
      int kb = ef_binning_index(pb->vtx, c, f);
      if (kb < 0) continue;
      ws->hsum[kb] += 1.0;
      ws->esum[kb] += 1.0 - ws->prob[4 * s];
      *sc += c;
      *scc += (double)c * c;
      *sx += cosf(f);
      *sy += sinf(f);
    }
    done += m;
  }
}

/* The efficiency map (4, nv): the detector networks' P(T | v) averaged on
 * a GRID x GRID grid in each vertex bin. The DS-GAN's P head also takes
 * noise inputs: its P(T | v) is the mean over MAP_DRAWS draws per point
 * (with one draw the map's own sampling noise reached 0.01 in single
 * cells, a third of the 0.03 the maps are checked against). */
static void efficiency_map(ef_gan_ws *ws, const ef_gan_problem *pb, ef_rng *r, double *eff) {
  int nv = ef_binning_count(pb->vtx), B = ws->bo, n = 0;
  int per = GRID * GRID, draws = pb->method == EF_METHOD_GAN_MIXED ? MAP_DRAWS : 1;
  double norm = (double)per * draws; /* grid points x draws per bin */
  memset(eff, 0, 4 * (size_t)nv * sizeof *eff);
  /* points in order (bin, grid point); flushed B at a time */
  int total = nv * per, done = 0;
  while (done < total) {
    n = total - done < B ? total - done : B;
    for (int q = 0; q < n; q++) {
      int p = done + q, kb = p / per, g = p % per;
      double c_lo, c_hi, f_lo, f_hi;
      ef_binning_bounds(pb->vtx, kb, &c_lo, &c_hi, &f_lo, &f_hi);
      double c = c_lo + ((g / GRID) + 0.5) * (c_hi - c_lo) / GRID;
      double f = f_lo + ((g % GRID) + 0.5) * (f_hi - f_lo) / GRID;
      ws->v[2 * q] = (float)c;
      ws->v[2 * q + 1] = (float)f;
      kin_features(&ws->kin, c, f, ws->feat + (size_t)q * NF, NULL);
    }
    for (int d = 0; d < draws; d++) {
      fold_through_detector(ws, pb->method, r, n, 0);
      for (int q = 0; q < n; q++) {
        int kb = (done + q) / per;
        for (int t = 0; t < 4; t++)
          eff[(size_t)t * nv + kb] += ws->prob[4 * q + t] / norm;
      }
    }
    done += n;
  }
}

/* Train the outer GAN of pb from its seed and attempt: loss curves
 * (n_loss points), G's pooled samples in ws->hsum / ws->esum, the spread
 * of its cos theta* (sd) and the mean resultant length of its phi* (rlen);
 * *r is the stream afterwards. */
static int train_outer(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                       ef_gan_ws *ws, const outer_setup *os, ef_rng *r, int n_loss,
                       double *loss_d, double *loss_g, double *sd, double *rlen) {
  int nv = ef_binning_count(pb->vtx);
  uint32_t s0 = (uint32_t)pb->attempt * N_ROLES;
  ef_mlp_init(ws->g, pb->seed, s0 + ROLE_G);
  ef_mlp_init(ws->d, pb->seed, s0 + ROLE_D);
  ef_adam_reset(ws->adam_g);
  ef_adam_reset(ws->adam_d);
  ef_rng_init(r, pb->seed, EF_RNG_NN_TRAIN, s0 + ROLE_G);
  int steps = gp->outer.steps;
  for (int p = 0; p < n_loss; p++) loss_d[p] = loss_g[p] = 0.0;
  memset(ws->hsum, 0, (size_t)nv * sizeof(double));
  memset(ws->esum, 0, (size_t)nv * sizeof(double));
  /* the result: samples of G at n_snap snapshots over the last part of
   * the training, pooled (a GAN's generator oscillates around the
   * solution; pooling snapshots averages that out at the level of the
   * distribution) */
  double sc = 0.0, scc = 0.0, sx = 0.0, sy = 0.0;
  long long nsamp = 0;
  int n_snap = gp->snapshots, first = steps - (int)(gp->average * steps), snap = 0;
  if (first > steps - 1) first = steps - 1;
  if (n_snap > steps - first) n_snap = steps - first;
  for (int step = 0; step < steps; step++) {
    double ld, lg;
    EF_CHECK(outer_step(ctx, gp, pb, ws, os, r, step, &ld, &lg));
    int p = (int)((long long)step * n_loss / steps);
    long long lo = ((long long)p * steps + n_loss - 1) / n_loss;
    long long hi = ((long long)(p + 1) * steps + n_loss - 1) / n_loss;
    double cnt = (double)(hi - lo);
    loss_d[p] += ld / cnt;
    loss_g[p] += lg / cnt;
    /* snapshot j after step first + ((j + 1) (steps - first)) / n_snap - 1 */
    while (snap < n_snap &&
           step == first + (int)(((long long)(snap + 1) * (steps - first)) / n_snap) - 1) {
      long long want = (long long)gp->samples * (snap + 1) / n_snap - nsamp;
      sample_generator(ws, pb, r, want, &sc, &scc, &sx, &sy);
      nsamp += want;
      snap++;
    }
  }
  double mc_ = sc / (double)nsamp;
  *sd = sqrt(fmax(scc / (double)nsamp - mc_ * mc_, 0.0));
  *rlen = sqrt(sx * sx + sy * sy) / (double)nsamp;
  return EF_OK;
}

/* The unit's histogram from G's pooled samples (ws->hsum, ws->esum):
 * collapse checks, then measured bins keep G's shape and blind bins take
 * the fill model's own shape, scaled to its blind/measured ratio (the IBU
 * rule: nothing of G's there enters the result; own gets G's answer in
 * every bin, blind ones included, at the same scale); everything is scaled so
 * that G itself, folded with its efficiency, predicts the data (G's own
 * blind-bin mass included), so the measured bins do not depend on the
 * fill model. */
static int assemble(ef_ctx *ctx, const ef_gan_problem *pb, const ef_gan_ws *ws, double total,
                    double fill_blind, double fill_meas, double sd, double rlen, double *hist,
                    double *own) {
  int nv = ef_binning_count(pb->vtx);
  /* collapse: the generator's spread in cos theta* or its azimuthal
   * spread far below any physical distribution's */
  if (!(sd >= 0.1))
    return ef_error_set(ctx, EF_ERR_NUMERIC,
                        "GAN unit: the generator collapsed (std of cos theta* %.3f, below 0.1)",
                        sd);
  if (!(rlen <= 0.9))
    return ef_error_set(ctx, EF_ERR_NUMERIC,
                        "GAN unit: the generator collapsed (phi* concentrated: mean resultant "
                        "length %.3f, above 0.9)", rlen);
  double hm = 0.0, folded = 0.0;
  for (int kb = 0; kb < nv; kb++) {
    if (!ws->blind[kb]) hm += ws->hsum[kb];
    folded += ws->esum[kb]; /* sum over G's samples of their efficiency */
  }
  if (hm <= 0)
    return ef_error_set(ctx, EF_ERR_NUMERIC, "GAN unit: no generated event in a measured bin");
  if (!(folded > 0))
    return ef_error_set(ctx, EF_ERR_NUMERIC, "GAN unit: the generator predicts no measured event");
  double rho = fill_blind / fill_meas, scale = total / folded;
  for (int kb = 0; kb < nv; kb++) {
    hist[kb] = scale * (!ws->blind[kb] ? ws->hsum[kb]
                                       : pb->fill_prior[kb] / fill_blind * rho * hm);
    own[kb] = scale * ws->hsum[kb]; /* G's own answer, blind bins included */
  }
  return EF_OK;
}

long ef_gan_ws_outer_trainings(const ef_gan_ws *ws) { return ws->outer_trainings; }

int ef_gan_unit_run(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                    ef_gan_ws *ws, double *hist, double *own, double *eff, int n_loss,
                    double *loss_d, double *loss_g) {
  const ef_events *data = pb->data;
  int nv = ef_binning_count(pb->vtx);
  if (nv > ws->nv_cap || data->n > ws->n_data || pb->mc->n > ws->n_mc)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "GAN workspace too small for this problem");
  if (ws->kin_energy != pb->beam_energy) {
    ef_kin_init(&ws->kin, pb->beam_energy);
    ws->kin_energy = pb->beam_energy;
  }
  EF_CHECK(detector_networks(ctx, gp, pb, ws));
  /* blind bins, data sampling */
  outer_setup os = {0, 0.0, 0};
  double fill_blind = 0.0, fill_meas = 0.0;
  for (int kb = 0; kb < nv; kb++) {
    ws->blind[kb] = pb->efficiency[kb] < gp->blind_efficiency;
    if (ws->blind[kb]) fill_blind += pb->fill_prior[kb];
    else fill_meas += pb->fill_prior[kb];
  }
  os.use_blind = fill_blind > 1e-6 && gp->fill_weight > 0;
  for (size_t i = 0; i < data->n; i++) {
    if (!measured(data, i)) continue;
    double wi = (pb->data_weights ? pb->data_weights[i] : 1.0) *
                (data->weight ? data->weight[i] : 1.0);
    if (!(wi > 0)) continue;
    os.total += wi;
    ws->meas[os.n_meas] = (int32_t)i;
    ws->cdf[os.n_meas++] = os.total;
  }
  if (os.n_meas == 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "GAN unit: no measured data events (T1..T3)");
  if (fill_meas <= 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "GAN unit: every vertex bin is blind "
                        "(efficiency below gan.blind_efficiency)");
  int shared = !os.use_blind && n_loss <= OUTER_LOSS_MAX && ws->outer_valid &&
               ws->outer_seed == pb->seed && ws->outer_attempt == pb->attempt &&
               ws->outer_method == pb->method && ws->outer_det_key == pb->det_key &&
               ws->outer_total == os.total && ws->outer_n_loss == n_loss &&
               memcmp(&ws->outer_gp, gp, sizeof *gp) == 0;
  ef_rng r;
  double sd, rlen;
  if (shared) { /* the same generator: only the fill's part of the result differs */
    r = ws->outer_rng;
    sd = ws->outer_sd;
    rlen = ws->outer_rlen;
    memcpy(loss_d, ws->outer_loss[0], (size_t)n_loss * sizeof *loss_d);
    memcpy(loss_g, ws->outer_loss[1], (size_t)n_loss * sizeof *loss_g);
  } else {
    ws->outer_valid = 0;
    EF_CHECK(train_outer(ctx, gp, pb, ws, &os, &r, n_loss, loss_d, loss_g, &sd, &rlen));
    ws->outer_trainings++;
    if (!os.use_blind && n_loss <= OUTER_LOSS_MAX) {
      ws->outer_valid = 1;
      ws->outer_gp = *gp;
      ws->outer_seed = pb->seed;
      ws->outer_attempt = pb->attempt;
      ws->outer_method = pb->method;
      ws->outer_det_key = pb->det_key;
      ws->outer_total = os.total;
      ws->outer_n_loss = n_loss;
      ws->outer_sd = sd;
      ws->outer_rlen = rlen;
      ws->outer_rng = r;
      memcpy(ws->outer_loss[0], loss_d, (size_t)n_loss * sizeof *loss_d);
      memcpy(ws->outer_loss[1], loss_g, (size_t)n_loss * sizeof *loss_g);
    }
  }
  EF_CHECK(assemble(ctx, pb, ws, os.total, fill_blind, fill_meas, sd, rlen, hist, own));
  efficiency_map(ws, pb, &r, eff);
  return EF_OK;
}
