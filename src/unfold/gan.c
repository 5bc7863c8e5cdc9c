/* The outer GAN of gan-topo and gan-mixed (docs/methods.md has the method).
 *
 * Coordinates: a vertex or reconstructed event is a point v of the event
 * space's D observables (pi0: (cos theta*, phi*)); the feature map
 * (featmap.h) says what the networks see of it. G's raw output (NG) is
 * mapped into the observables' ranges by ef_featmap_gen; the discriminator
 * D sees a channel one-hot (NCH) and ef_featmap_embed(v) (NE). Channel 0
 * is the blind channel (vertex level, blind bins only, G against the fill
 * model); channels 1..NS are the seen categories (pi0: T1..T3; detector
 * level, G folded through a detector surrogate against data). */
#include "ensfold/gan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/featmap.h"
#include "ensfold/mcweight.h"
#include "ensfold/nn.h"
#include "ensfold/nn_adam.h"
#include "ensfold/nn_loss.h"
#include "ensfold/polish.h"
#include "ensfold/refine.h"
#include "ensfold/rng.h"


/* Roles of networks in seeds: distinct init/training streams per role; a
 * detector surrogate takes the five from ROLE_DETECTOR on; ROLE_PSEUDO is
 * gan.bias_correction's pseudo-data and subsample stream, or gan.polish's
 * (the two exclude each other). The refinement's
 * two classifiers take units REFINE_UNIT + 2 attempt and + 1, above every
 * attempt's roles. */
enum { ROLE_G = 0, ROLE_D, ROLE_DETECTOR, ROLE_PSEUDO = 7, N_ROLES = 8 };
#define REFINE_UNIT (1u << 20)

#define OUTER_LOSS_MAX 64 /* loss points a shared outer training keeps */
/* gan.bias_correction's density ratio of G's answer over the MC is clipped
 * to [1 / this, this]: in D = 6 it reaches about 35 where G is densest. */
#define EF_GAN_MCWEIGHT_CLIP 1000.0

/* Moments of G's samples for the collapse check, per observable: sums of
 * x and x^2 (bounded, unbounded), of cos a and sin a (periodic, a the
 * angle). */
typedef struct {
  double s1[EF_SPACE_MAX_DIM], s2[EF_SPACE_MAX_DIM];
  long long n;
} moments;

struct ef_gan_ws {
  int latent, bo, bf, rows; /* G noise, outer batch, blind batch, D rows */
  int samples;              /* G samples pooled per training */
  ef_featmap *fm;           /* the event space's network view */
  /* widths: observables, categories, seen categories, detector features,
   * embedding, G's raw output, MMD coordinates; D's channels 1 + NS, its
   * input NCH + NE, an MMD point NM + NS (coordinates, then the channel) */
  int D, K, NS, NF, NE, NG, NM, NCH, ND, MD;
  ef_mlp *g, *d;
  ef_adam *adam_g, *adam_d;
  ef_surrogate *det[2];     /* by ef_surrogate_kind; those the campaign uses */
  /* data sampling */
  double *cdf;              /* (n_data) cumulative weights of measured events */
  int32_t *meas;            /* (n_data) indices of measured data events */
  size_t n_data, n_mc;
  /* outer-step buffers, shapes in rows of the outer batch bo */
  float *z;        /* (bo, latent) */
  float *gu;       /* (bo, NG) G's raw output u: v = ef_featmap_gen(u) */
  float *v;        /* (bo, D) generated vertices */
  float *feat;     /* (bo, NF) */
  float *jac;      /* (bo, NF, D) d feat / d v */
  float *prob;     /* (bo, K) P(category | v) */
  float *reco;     /* (NS, bo, D) reco per seen category (noised in place) */
  float *nz;       /* (bo, D) instance noise of one row group */
  float *vn;       /* (bo, D) the blind rows' noised vertices */
  float *rv;       /* (bo, D) the data rows' noised points */
  int32_t *dch;    /* (bo) the data rows' channels */
  float *dx;       /* (rows, ND) discriminator input */
  float *w;        /* (rows) per-row weight (sums: 1 per channel group) */
  float *dlogit;   /* (rows) */
  float *ddx;      /* (rows, ND) gradient wrt D inputs */
  float *dreco;    /* (NS, bo, D) gradient wrt reco */
  float *dfeat;    /* (bo, NF) */
  float *dv;       /* (bo, D) */
  float *draw;     /* (bo, NG) gradient wrt G's raw output */
  double *fcdf;    /* (NS bo) cumulative weights of the fake measured rows */
  float *mx, *my, *mdx; /* (bo, MD) MMD points: fake (resampled by weight), data; dMMD/dmx */
  int32_t *msel;   /* (bo) the fake measured row behind each MMD point */
  float *mgrad;    /* (NS bo, D) MMD gradient per fake measured row's reco */
  unsigned char *inblind; /* (bo) generated event in a blind bin */
  unsigned char *blind;   /* (nv_cap) set at run time */
  int nv_cap;
  double *hsum, *esum;    /* (nv_cap) histogram and efficiency sums */
  /* G's pooled samples (gan.samples), in the order they were drawn */
  float *pool_v;   /* (samples, D) vertices */
  float *pool_p0;  /* (samples) P(blind | v) (pi0: P(T0 | v)) */
  float *pool_nu;  /* (samples) refinement weights */
  long long pool_n;
  /* gan.refine: G's samples outside the vertex binning, from the back of
   * the pool (index samples - 1 downwards, pool_n + pool_nout <= samples);
   * the refinement moves them behind the pool_n binned ones, which it
   * needs because the data hold the events those vertices produce */
  long long pool_nout;
  double pool_out;  /* summed P(seen | v) of the samples outside the vertex binning (with
                     * gan.refine: times their weights nu) */
  ef_refine *refine; /* gan.refine (NULL: no refinement) */
  /* gan.bias_correction (NULL / empty without): the first training's
   * samples outside the vertex binning, the MC reweighted to its answer and
   * the pseudo-data drawn from it, the second training's pool (swapped in
   * while it runs) and the first training's sums */
  float *out_v;      /* (n_data, D) a uniform subsample of the samples outside the binning */
  long long out_n;   /* samples outside the binning seen (out_v holds min(out_n, n_data)) */
  int collect_out;   /* sample_generator keeps them (the first training only) */
  ef_rng out_rng;    /* the subsample's and the pseudo-data's stream (not the training's) */
  ef_events pseudo;  /* (n_data) reco, topology, weight */
  ef_mcweight *mcwf; /* the MC reweighted to the first training's answer */
  double *mcw;       /* (n_mc) its weight per MC event */
  double *mcdf;      /* (n_mc) cumulative weights of the measured MC events */
  int32_t *mcseen;   /* (n_mc) their indices */
  float *pool2_v, *pool2_p0, *pool2_nu; /* (samples, D), (samples), (samples) */
  double *hraw;      /* (3 nv_cap) the first training's hsum, its esum, the pseudo-truth's
                      * share per bin (per seen pseudo-data event); gan.polish: the
                      * unpolished hsum */
  ef_polish *polish; /* gan.polish (NULL without; out_v and hraw then allocated too) */
  double *pcorr;     /* (nv_cap) the polish's factor per bin */
  /* gan.partly_blind fill (NULL otherwise): per vertex bin the factor of
   * its measured content (partly_blind_factors), the summed weight of G's
   * pooled samples in its seen part, the fill model's samples in the bin
   * and in its seen part */
  double *pbsum;     /* (4 nv_cap) the factor per bin, g_seen, f_all, f_seen */
  /* The last outer training on this rank. A unit that differs from it only
   * by the fill model, with the fill not entering training, reuses it: the
   * sums above are still its own (nothing else writes them). */
  int outer_valid;
  ef_gan_params outer_gp;               /* the settings it was trained with */
  uint64_t outer_seed;
  int outer_attempt, outer_detector, outer_n_loss;
  int64_t outer_det_key;
  double outer_total;
  ef_rng outer_rng;                     /* the stream after training (the efficiency map) */
  moments outer_mo;                     /* its samples' moments (the collapse check) */
  double outer_loss[2][OUTER_LOSS_MAX]; /* discriminator, generator loss curves */
  long outer_trainings;                 /* trainings run, for tests and logs */
};

/* ---- workspace ----------------------------------------------------------- */

/* The workspace's plain buffers into out (room for 40); their number. One
 * list for the allocation check and for freeing. */
static size_t ws_buffers(const ef_gan_ws *ws, void **out) {
  void *b[] = {ws->cdf,  ws->meas,  ws->z,     ws->gu,   ws->v,     ws->feat,    ws->jac,
               ws->prob, ws->reco,  ws->nz,    ws->vn,   ws->dx,    ws->w,       ws->dlogit,
               ws->ddx,  ws->dreco, ws->dfeat, ws->dv,   ws->draw,  ws->fcdf,    ws->mx,
               ws->my,   ws->mdx,   ws->msel,  ws->mgrad, ws->inblind, ws->blind, ws->hsum,
               ws->esum, ws->pool_v, ws->pool_p0, ws->pool_nu, ws->rv, ws->dch};
  memcpy(out, b, sizeof b);
  return sizeof b / sizeof b[0];
}

void ef_gan_ws_destroy(ef_gan_ws *ws) {
  if (!ws) return;
  ef_mlp_destroy(ws->g);
  ef_mlp_destroy(ws->d);
  ef_adam_destroy(ws->adam_g);
  ef_adam_destroy(ws->adam_d);
  for (int k = 0; k < 2; k++) ef_surrogate_destroy(ws->det[k]);
  ef_refine_destroy(ws->refine);
  ef_polish_destroy(ws->polish);
  free(ws->pcorr);
  ef_events_free(&ws->pseudo);
  ef_mcweight_destroy(ws->mcwf);
  free(ws->mcw);
  free(ws->mcdf);
  free(ws->mcseen);
  free(ws->out_v);
  free(ws->pool2_v);
  free(ws->pool2_p0);
  free(ws->pool2_nu);
  free(ws->hraw);
  free(ws->pbsum);
  void *bufs[40];
  for (size_t i = 0, n = ws_buffers(ws, bufs); i < n; i++) free(bufs[i]);
  ef_featmap_destroy(ws->fm);
  free(ws);
}

static void *falloc(size_t n) { return malloc(n * sizeof(float)); }

static int alloc_buffers(ef_ctx *ctx, ef_gan_ws *ws) {
  size_t bo = (size_t)ws->bo, rows = (size_t)ws->rows, nd = ws->n_data ? ws->n_data : 1;
  size_t D = (size_t)ws->D, NS = (size_t)ws->NS, NF = (size_t)ws->NF, ND = (size_t)ws->ND,
         MD = (size_t)ws->MD, NG = (size_t)ws->NG, S = (size_t)ws->samples;
  ws->cdf = malloc(nd * sizeof *ws->cdf);
  ws->meas = malloc(nd * sizeof *ws->meas);
  ws->z = falloc(bo * (size_t)ws->latent);
  ws->gu = falloc(bo * NG);
  ws->v = falloc(bo * D);
  ws->feat = falloc(bo * NF);
  ws->jac = falloc(bo * NF * D);
  ws->prob = falloc(bo * (size_t)ws->K);
  ws->reco = falloc(NS * bo * D);
  ws->nz = falloc(bo * D);
  ws->vn = falloc(bo * D);
  ws->rv = falloc(bo * D);
  ws->dch = malloc(bo * sizeof(int32_t));
  ws->dx = falloc(rows * ND);
  ws->w = falloc(rows);
  ws->dlogit = falloc(rows);
  ws->ddx = falloc(rows * ND);
  ws->dreco = falloc(NS * bo * D);
  ws->dfeat = falloc(bo * NF);
  ws->dv = falloc(bo * D);
  ws->draw = falloc(bo * NG);
  ws->fcdf = malloc(NS * bo * sizeof(double));
  ws->mx = falloc(bo * MD);
  ws->my = falloc(bo * MD);
  ws->mdx = falloc(bo * MD);
  ws->msel = malloc(bo * sizeof(int32_t));
  ws->mgrad = falloc(NS * bo * D);
  ws->inblind = malloc(bo);
  ws->blind = malloc((size_t)ws->nv_cap);
  ws->hsum = malloc((size_t)ws->nv_cap * sizeof(double));
  ws->esum = malloc((size_t)ws->nv_cap * sizeof(double));
  ws->pool_v = falloc(S * D);
  ws->pool_p0 = falloc(S);
  ws->pool_nu = falloc(S);
  void *bufs[40];
  for (size_t i = 0, n = ws_buffers(ws, bufs); i < n; i++)
    if (!bufs[i]) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the GAN workspace");
  return EF_OK;
}

/* The MC reweighting's classifier settings: the refinement's, its ratio
 * all but unclipped. */
static ef_refine_params mcweight_params(const ef_gan_params *gp) {
  ef_refine_params rp = gp->refine;
  rp.clip = EF_GAN_MCWEIGHT_CLIP;
  return rp;
}

/* What the bias correction and the polish both need: the subsample of G's
 * samples outside the binning, the first (unpolished) sums. */
static int alloc_outside(ef_ctx *ctx, ef_gan_ws *ws) {
  size_t nd = ws->n_data ? ws->n_data : 1, D = (size_t)ws->D;
  ws->out_v = falloc(nd * D);
  ws->hraw = malloc(3 * (size_t)ws->nv_cap * sizeof(double));
  if (!ws->out_v || !ws->hraw)
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the GAN's first sums");
  return EF_OK;
}

/* gan.polish's workspace (polish.h), OmniFold as op configures it with
 * gp->polish iterations. */
static int alloc_polish(ef_ctx *ctx, ef_gan_ws *ws, const ef_gan_params *gp,
                        const ef_omnifold_params *op, const ef_events *mc, double beam_energy) {
  if (!op) return ef_error_set(ctx, EF_ERR_INTERNAL, "gan.polish without OmniFold's settings");
  ef_omnifold_params o = *op;
  o.iterations = gp->polish;
  ef_refine_params rp = mcweight_params(gp);
  EF_CHECK(ef_polish_create(ctx, &ws->polish, &o, &rp, ws->fm, mc, beam_energy, ws->n_data,
                            ws->nv_cap));
  if (!(ws->pcorr = malloc((size_t)ws->nv_cap * sizeof(double))))
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for gan.polish's factors");
  return alloc_outside(ctx, ws);
}

/* gan.bias_correction's buffers: the pseudo-data of n_data events (the
 * data's space), the MC's weights, the outside subsample, a second pool,
 * the first sums. */
static int alloc_bias(ef_ctx *ctx, ef_gan_ws *ws, const ef_gan_params *gp,
                      const ef_space *space) {
  size_t nd = ws->n_data ? ws->n_data : 1, S = (size_t)ws->samples, D = (size_t)ws->D,
         nm = ws->n_mc ? ws->n_mc : 1;
  ef_refine_params rp = mcweight_params(gp);
  EF_CHECK(ef_events_alloc(ctx, &ws->pseudo, space, nd, EF_KIND_DATA, EF_EVENTS_WEIGHT));
  EF_CHECK(ef_mcweight_create(ctx, &ws->mcwf, &rp, ws->fm));
  ws->mcw = malloc(nm * sizeof(double));
  ws->mcdf = malloc(nm * sizeof(double));
  ws->mcseen = malloc(nm * sizeof(int32_t));
  if (!ws->mcw || !ws->mcdf || !ws->mcseen)
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for gan.bias_correction's MC weights");
  ws->pool2_v = falloc(S * D);
  ws->pool2_p0 = falloc(S);
  ws->pool2_nu = falloc(S);
  if (!ws->pool2_v || !ws->pool2_p0 || !ws->pool2_nu)
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for gan.bias_correction's buffers");
  return alloc_outside(ctx, ws);
}

/* The widths of ws->fm's space. */
static void set_widths(ef_gan_ws *ws) {
  const ef_featmap *fm = ws->fm;
  ws->D = ef_featmap_dim(fm);
  ws->K = ef_featmap_n_cat(fm);
  ws->NS = ef_featmap_n_seen(fm);
  ws->NF = ef_featmap_n_feat(fm);
  ws->NE = ef_featmap_n_embed(fm);
  ws->NG = ef_featmap_n_gen(fm);
  ws->NM = ef_featmap_n_mmd(fm);
  ws->NCH = 1 + ws->NS;
  ws->ND = ws->NCH + ws->NE;
  ws->MD = ws->NM + ws->NS;
}

int ef_gan_ws_create(ef_ctx *ctx, ef_gan_ws **out, const ef_gan_params *gp,
                     const ef_omnifold_params *polish, unsigned detectors, const ef_events *mc,
                     const ef_events *data, double beam_energy, int n_vertex) {
  *out = NULL;
  ef_gan_ws *ws = calloc(1, sizeof *ws);
  if (!ws) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the GAN workspace");
  int rc = EF_OK;
  EF_GOTO(rc, ef_featmap_create(ctx, &ws->fm, &mc->space, mc, data, beam_energy), fail);
  set_widths(ws);
  ws->latent = gp->latent;
  ws->bo = gp->outer.batch;
  ws->bf = (gp->outer.batch + 1) / 2;
  ws->rows = ws->bo + ws->bf + ws->NS * ws->bo + ws->bo;
  ws->n_data = data->n;
  ws->n_mc = mc->n;
  ws->nv_cap = n_vertex;
  ws->samples = gp->samples;
  const ef_net_params *o = &gp->outer;
  EF_GOTO(rc, ef_mlp_create_plain(ctx, &ws->g, ws->latent, o->hidden, o->layers, ws->NG, ws->bo),
          fail);
  EF_GOTO(rc, ef_mlp_create_plain(ctx, &ws->d, ws->ND, o->hidden, o->layers, 1, ws->rows), fail);
  EF_GOTO(rc, ef_adam_create_lr(ctx, &ws->adam_g, ef_mlp_n_params(ws->g), o->lr, 0.5f), fail);
  EF_GOTO(rc, ef_adam_create_lr(ctx, &ws->adam_d, ef_mlp_n_params(ws->d), o->lr, 0.5f), fail);
  for (int k = 0; k < 2; k++)
    if (detectors >> k & 1u)
      EF_GOTO(rc, ef_surrogate_create(ctx, &ws->det[k], (ef_surrogate_kind)k, &gp->detector,
                                      ws->fm, ws->bo, mc->n), fail);
  if (gp->refine.iterations > 0)
    EF_GOTO(rc, ef_refine_create(ctx, &ws->refine, &gp->refine, ws->fm, ws->bo), fail);
  EF_GOTO(rc, alloc_buffers(ctx, ws), fail);
  if (gp->bias_correction) EF_GOTO(rc, alloc_bias(ctx, ws, gp, &mc->space), fail);
  if (gp->polish > 0) EF_GOTO(rc, alloc_polish(ctx, ws, gp, polish, mc, beam_energy), fail);
  if (gp->partly_blind == EF_GAN_PARTLY_FILL &&
      !(ws->pbsum = malloc(4 * (size_t)ws->nv_cap * sizeof(double)))) {
    rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for gan.partly_blind's sums");
    goto fail;
  }
  *out = ws;
  return EF_OK;
fail:
  ef_gan_ws_destroy(ws);
  return rc;
}

long ef_gan_ws_outer_trainings(const ef_gan_ws *ws) { return ws->outer_trainings; }

/* ---- the outer step ------------------------------------------------------ */

/* Index of a uniform draw u in [0, total) in the cumulative weights. */
typedef struct {
  size_t n_meas;      /* measured data events with weight > 0 */
  double total;       /* their summed weight */
  int use_blind;      /* the blind channel is on */
} outer_setup;

/* What one step's phases pass on. */
typedef struct {
  ef_surrogate *det;
  int B, Bf, off;     /* outer batch, fill rows, first fake row */
  float sn[EF_SPACE_MAX_DIM]; /* instance-noise sigma of this step per observable */
  double esum;        /* sum of the fake measured rows' efficiencies */
} step_state;

/* Discriminator row: channel one-hot, then the embedding of v (D). */
static void d_row(const ef_gan_ws *ws, float *row, int ch, const float *v) {
  for (int i = 0; i < ws->NCH; i++) row[i] = i == ch ? 1.0f : 0.0f;
  ef_featmap_embed(ws->fm, v, row + ws->NCH);
}

/* Vertex v (D, float) as doubles, for the detector features. */
static void to_double(int D, const float *v, double *x) {
  for (int d = 0; d < D; d++) x[d] = v[d];
}

/* The probability that v is in a blind category, from its prob (K). */
static float p_blind(const ef_gan_ws *ws, const float *prob) {
  float p = 0.0f;
  for (int t = 0; t < ws->K; t++)
    if (ef_featmap_blind(ws->fm, t)) p += prob[t];
  return p;
}

/* B vertices from G, their features (with Jacobians) and their response. */
static void generate(ef_gan_ws *ws, step_state *st, ef_rng *r) {
  const int B = st->B, D = ws->D, NF = ws->NF, NG = ws->NG;
  ef_nn_fill_normal(r, ws->z, (size_t)B * ws->latent);
  const float *raw = ef_mlp_forward(ws->g, ws->z, B);
  memcpy(ws->gu, raw, (size_t)B * NG * sizeof(float));
  for (int s = 0; s < B; s++) {
    double x[EF_SPACE_MAX_DIM];
    ef_featmap_gen(ws->fm, raw + (size_t)NG * s, ws->v + (size_t)D * s);
    to_double(D, ws->v + (size_t)D * s, x);
    ef_featmap_feat(ws->fm, x, ws->feat + (size_t)s * NF, ws->jac + (size_t)s * NF * D);
  }
  ef_surrogate_forward(st->det, ws->v, ws->feat, B, r, ws->prob, ws->reco);
}

/* The real rows: [0, B) data drawn by weight, [B, B + Bf) fill-model
 * events in the blind bins. Coordinates get instance noise (Gaussian, on
 * every row's coordinates before the embedding). */
static void real_rows(const ef_gan_params *gp, const ef_gan_problem *pb, ef_gan_ws *ws,
                      const outer_setup *os, const step_state *st, ef_rng *r) {
  const int B = st->B, Bf = st->Bf, D = ws->D, ND = ws->ND;
  const float *sn = st->sn;
  float *nz = ws->nz;
  const ef_events *data = pb->data;
  double wb = os->use_blind ? gp->fill_weight : 0.0;
  ef_nn_fill_normal(r, nz, (size_t)D * B);
  for (int i = 0; i < B; i++) {
    size_t e = (size_t)ws->meas[ef_rng_pick(r, ws->cdf, os->n_meas)];
    float *p = ws->rv + (size_t)D * i;
    for (int d = 0; d < D; d++) p[d] = (float)data->reco[(size_t)D * e + d] + sn[d] * nz[D * i + d];
    ws->dch[i] = 1 + ef_space_seen_index(&data->space, data->topology[e]);
    d_row(ws, ws->dx + (size_t)i * ND, ws->dch[i], p);
    ws->w[i] = 1.0f / B;
  }
  ef_nn_fill_normal(r, nz, (size_t)D * B);
  for (int i = 0; i < Bf; i++) {
    double x[EF_SPACE_MAX_DIM];
    int tries = 0, kb;
    do { /* a fill vertex in a blind bin (outside the binning: none) */
      pb->fill_sample(pb->fill_arg, pb->fill_model, r, x);
      kb = ef_binning_index(pb->vtx, x);
    } while ((kb < 0 || !ws->blind[kb]) && ++tries < 100000);
    float p[EF_SPACE_MAX_DIM];
    for (int d = 0; d < D; d++) p[d] = (float)x[d] + sn[d] * nz[D * i + d];
    d_row(ws, ws->dx + (size_t)(B + i) * ND, 0, p);
    ws->w[B + i] = (float)(wb / Bf);
  }
}

/* The fake rows from st->off: NS B measured (category-major: G folded
 * through the detector, weight eps_t(v) / sum eps), then B blind (G's
 * vertex, weight gan.fill_weight / (G's events in blind bins) on those in
 * blind bins). */
static void fake_rows(const ef_gan_params *gp, const ef_gan_problem *pb, ef_gan_ws *ws,
                      const outer_setup *os, step_state *st, ef_rng *r) {
  const int B = st->B, off = st->off, D = ws->D, K = ws->K, NS = ws->NS, ND = ws->ND;
  int nv = ef_binning_count(pb->vtx);
  const float *sn = st->sn;
  float *nz = ws->nz, *dx = ws->dx, *w = ws->w;
  double wb = os->use_blind ? gp->fill_weight : 0.0, esum = 0.0, bsum = 0.0;
  for (int t = 0; t < NS; t++) {
    int c = ef_featmap_seen(ws->fm, t);
    ef_nn_fill_normal(r, nz, (size_t)D * B);
    for (int s = 0; s < B; s++) {
      float *rc = ws->reco + ((size_t)t * B + s) * D; /* noised in place: the backward's point */
      for (int d = 0; d < D; d++) rc[d] += sn[d] * nz[D * s + d];
      d_row(ws, dx + (size_t)(off + t * B + s) * ND, t + 1, rc);
      esum += ws->prob[K * s + c];
    }
  }
  ef_nn_fill_normal(r, nz, (size_t)D * B);
  for (int s = 0; s < B; s++) {
    int kb = ef_binning_index_f(pb->vtx, ws->v + (size_t)D * s);
    ws->inblind[s] = kb >= 0 && kb < nv && ws->blind[kb];
    bsum += ws->inblind[s];
    float *vn = ws->vn + (size_t)D * s;
    for (int d = 0; d < D; d++) vn[d] = ws->v[D * s + d] + sn[d] * nz[D * s + d];
    d_row(ws, dx + (size_t)(off + NS * B + s) * ND, 0, vn);
  }
  for (int t = 0; t < NS; t++) {
    int c = ef_featmap_seen(ws->fm, t);
    for (int s = 0; s < B; s++)
      w[off + t * B + s] = esum > 0 ? (float)(ws->prob[K * s + c] / esum) : 0.0f;
  }
  for (int s = 0; s < B; s++)
    w[off + NS * B + s] = bsum > 0 && st->Bf > 0 ? (float)(wb * ws->inblind[s] / bsum) : 0.0f;
  st->esum = esum;
}

/* D's step: real rows target 1, fake rows target 0. */
static int d_update(ef_ctx *ctx, ef_gan_ws *ws, const step_state *st, float lr, int step,
                    double *ld) {
  int rows = st->off + (ws->NS + 1) * st->B;
  const float *x = ef_mlp_forward(ws->d, ws->dx, rows);
  *ld = ef_loss_bce_sum(rows, st->off, x, ws->w, ws->dlogit);
  EF_CHECK(ef_loss_check(ctx, *ld, "discriminator", step));
  ef_mlp_zero_grad(ws->d);
  ef_mlp_backward(ws->d, ws->dlogit, NULL, EF_MLP_GRAD_PARAMS);
  ef_adam_set_lr(ws->adam_d, lr);
  ef_adam_step(ws->adam_d, ef_mlp_params(ws->d), ef_mlp_grads(ws->d));
  return EF_OK;
}

/* An MMD point: the map's coordinates of v, then channel ch (1..NS) as a
 * label of 3 in its slot. */
static void mmd_point(const ef_gan_ws *ws, float *p, int ch, const float *v) {
  ef_featmap_mmd(ws->fm, v, p);
  for (int t = 1; t <= ws->NS; t++) p[ws->NM + t - 1] = t == ch ? 3.0f : 0.0f;
}

/* The MMD term of G's loss: B fake measured rows drawn with probability
 * proportional to their weight eps_t(v) against the step's B data rows,
 * points (ef_featmap_mmd: pi0 cos theta*, cos phi*, sin phi*) grouped by
 * channel (kernels never mix channels). Its gradient, times
 * gan.mmd_weight, goes into ws->mgrad (NS B, D), per fake measured row and
 * reco coordinate. */
static void mmd_term(const ef_gan_params *gp, ef_gan_ws *ws, ef_rng *r, int B) {
  static const float sig0[3] = {0.05f, 0.15f, 0.45f};
  const int D = ws->D, K = ws->K, NS = ws->NS, MD = ws->MD;
  float sig[3], scale = ef_featmap_mmd_scale(ws->fm);
  for (int k = 0; k < 3; k++) sig[k] = sig0[k] * scale;
  double acc = 0.0;
  memset(ws->mgrad, 0, (size_t)NS * B * D * sizeof(float));
  for (int t = 0; t < NS; t++) {
    int c = ef_featmap_seen(ws->fm, t);
    for (int s = 0; s < B; s++) ws->fcdf[t * B + s] = (acc += ws->prob[K * s + c]);
  }
  for (int i = 0; i < B; i++) {
    mmd_point(ws, ws->my + (size_t)i * MD, ws->dch[i], ws->rv + (size_t)D * i);
    size_t k = ef_rng_pick(r, ws->fcdf, (size_t)NS * B);
    ws->msel[i] = (int32_t)k;
    int t = (int)(k / (size_t)B), s = (int)(k % (size_t)B);
    mmd_point(ws, ws->mx + (size_t)i * MD, t + 1, ws->reco + ((size_t)t * B + s) * D);
  }
  /* NM <= 64 coordinates and 3 kernels are within its limits: it cannot refuse */
  if (ef_loss_mmd_grad_grouped(B, B, MD, ws->NM, ws->mx, ws->my, 3, sig, ws->mdx) != 0)
    memset(ws->mdx, 0, (size_t)B * MD * sizeof(float));
  float lam = (float)gp->mmd_weight;
  for (int i = 0; i < B; i++) {
    int k = ws->msel[i];
    float gv[EF_SPACE_MAX_DIM];
    ef_featmap_mmd_back(ws->fm, ws->reco + (size_t)k * D, ws->mdx + (size_t)i * MD, gv);
    for (int d = 0; d < D; d++) ws->mgrad[(size_t)D * k + d] += lam * gv[d];
  }
}

/* G's loss through the updated D: the non-saturating loss sum_r w_r
 * softplus(-x_r) over the fake rows; its gradient wrt D's inputs into
 * ws->ddx (fake rows from 0). */
static int g_loss(ef_ctx *ctx, ef_gan_ws *ws, const step_state *st, int step, double *lgen) {
  int nf = (ws->NS + 1) * st->B;
  const float *x = ef_mlp_forward(ws->d, ws->dx + (size_t)st->off * ws->ND, nf);
  *lgen = ef_loss_gen_sum(nf, x, ws->w + st->off, ws->dlogit);
  EF_CHECK(ef_loss_check(ctx, *lgen, "generator", step));
  ef_mlp_backward(ws->d, ws->dlogit, ws->ddx, 0);
  return EF_OK;
}

/* The gradients wrt the fake rows' points: dreco (NS B, D) from D's input
 * gradient (and the MMD's), dv (B, D) from the blind rows'. */
static void point_grads(const ef_gan_ws *ws, int B, int use_mmd) {
  const int D = ws->D, NS = ws->NS, ND = ws->ND, NCH = ws->NCH;
  for (int i = 0; i < NS * B; i++) {
    const float *rc = ws->reco + (size_t)i * D;
    float *d = ws->dreco + (size_t)i * D;
    ef_featmap_embed_back(ws->fm, ws->ddx + (size_t)i * ND + NCH, rc, d);
    for (int j = 0; use_mmd && j < D; j++) d[j] += ws->mgrad[(size_t)D * i + j];
  }
  memset(ws->dv, 0, (size_t)B * D * sizeof(float));
  memset(ws->dfeat, 0, (size_t)B * ws->NF * sizeof(float));
}

/* G's gradient from D's input gradient (and the MMD's): through the
 * embedding to the reco points, the detector surrogate to v and the
 * features, the features to v, the map to G's raw output; then G's step.
 * The weights eps_t(v_s) / sum eps are held fixed: G moves its samples
 * along D's gradient at the folded events, and the efficiency only says
 * how much each sample counts. Following the weights' own derivative
 * drives samples along the sharp acceptance edges (coils, dead paddles) and
 * made training noisier in tests; the fixed point (weighted fake = data,
 * D = 1/2) is the same. */
static void g_backward(const ef_gan_params *gp, ef_gan_ws *ws, const step_state *st, ef_rng *r,
                       float lr) {
  const int B = st->B, D = ws->D, NF = ws->NF, NG = ws->NG;
  int use_mmd = gp->mmd_weight > 0 && st->esum > 0 && ws->NM > 0;
  if (use_mmd) mmd_term(gp, ws, r, B);
  point_grads(ws, B, use_mmd);
  ef_surrogate_backward(st->det, B, ws->dreco, ws->dv, ws->dfeat);
  /* blind rows: G's vertex itself */
  for (int s = 0; s < B; s++) {
    float g[EF_SPACE_MAX_DIM];
    ef_featmap_embed_back(ws->fm, ws->ddx + (size_t)(ws->NS * B + s) * ws->ND + ws->NCH,
                          ws->vn + (size_t)D * s, g);
    for (int d = 0; d < D; d++) ws->dv[(size_t)D * s + d] += g[d];
  }
  for (int s = 0; s < B; s++) {
    const float *J = ws->jac + (size_t)s * NF * D, *df = ws->dfeat + (size_t)s * NF;
    float g[EF_SPACE_MAX_DIM];
    for (int d = 0; d < D; d++) {
      g[d] = ws->dv[(size_t)D * s + d];
      for (int j = 0; j < NF; j++) g[d] += J[(size_t)j * D + d] * df[j];
    }
    ef_featmap_gen_back(ws->fm, ws->gu + (size_t)NG * s, g, ws->draw + (size_t)NG * s);
  }
  ef_mlp_zero_grad(ws->g);
  ef_mlp_backward(ws->g, ws->draw, NULL, EF_MLP_GRAD_PARAMS);
  ef_adam_set_lr(ws->adam_g, lr);
  ef_adam_step(ws->adam_g, ef_mlp_params(ws->g), ef_mlp_grads(ws->g));
}

/* One outer step: D update, then G update. Returns the losses. */
static int outer_step(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                      ef_gan_ws *ws, const outer_setup *os, ef_rng *r, int step, double *ld,
                      double *lgen) {
  step_state st = {ws->det[pb->detector], ws->bo, os->use_blind ? ws->bf : 0, 0, {0}, 0.0};
  st.off = st.B + st.Bf;
  /* instance noise annealed linearly to a tenth over the training, in each
   * observable's unit (featmap.h) */
  float sn = (float)(gp->instance_noise * (1.0 - 0.9 * step / (double)gp->outer.steps));
  for (int d = 0; d < ws->D; d++) st.sn[d] = (float)(sn * ef_featmap_unit(ws->fm, d));
  float lr = ef_adam_lr_linear(gp->outer.lr, gp->lr_final, step, gp->outer.steps);
  generate(ws, &st, r);
  real_rows(gp, pb, ws, os, &st, r);
  fake_rows(gp, pb, ws, os, &st, r);
  EF_CHECK(d_update(ctx, ws, &st, lr, step, ld));
  EF_CHECK(g_loss(ctx, ws, &st, step, lgen));
  g_backward(gp, ws, &st, r, lr);
  return EF_OK;
}

/* ---- training and the result --------------------------------------------- */

static void add_moments(const ef_gan_ws *ws, const float *v, moments *mo) {
  const ef_space *sp = ef_featmap_space(ws->fm);
  for (int d = 0; d < ws->D; d++) {
    if (sp->axis[d].kind == EF_AXIS_PERIODIC) {
      float a = (float)ef_featmap_scaled(ws->fm, d, v[d]);
      mo->s1[d] += cosf(a);
      mo->s2[d] += sinf(a);
    } else {
      mo->s1[d] += v[d];
      mo->s2[d] += (double)v[d] * v[d];
    }
  }
}

/* A sample outside the vertex binning into ws->out_v: a uniform subsample
 * of them all (reservoir sampling, on its own stream). */
static void keep_outside(ef_gan_ws *ws, const float *v) {
  size_t cap = ws->n_data ? ws->n_data : 1;
  long long j = ws->out_n++;
  if ((size_t)j >= cap) {
    j = (long long)(ef_rng_uniform(&ws->out_rng) * (double)ws->out_n);
    if ((size_t)j >= cap) return;
  }
  memcpy(ws->out_v + (size_t)ws->D * (size_t)j, v, (size_t)ws->D * sizeof(float));
}

/* Pool n samples of the current G (those inside the vertex binning) with
 * their P(blind | v); accumulate their moments. A sample outside the
 * binning is in no bin, but the data hold the events such vertices
 * produce: its P(seen | v) goes into ws->pool_out for the normalisation. */
static void sample_generator(ef_gan_ws *ws, const ef_gan_problem *pb, ef_rng *r, long long n,
                             moments *mo) {
  const int D = ws->D, K = ws->K, NF = ws->NF, NG = ws->NG;
  ef_surrogate *det = ws->det[pb->detector];
  long long done = 0;
  while (done < n) {
    int m = n - done < ws->bo ? (int)(n - done) : ws->bo;
    ef_nn_fill_normal(r, ws->z, (size_t)m * ws->latent);
    const float *raw = ef_mlp_forward(ws->g, ws->z, m);
    for (int s = 0; s < m; s++) {
      double x[EF_SPACE_MAX_DIM];
      ef_featmap_gen(ws->fm, raw + (size_t)NG * s, ws->v + (size_t)D * s);
      to_double(D, ws->v + (size_t)D * s, x);
      ef_featmap_feat(ws->fm, x, ws->feat + (size_t)s * NF, NULL);
    }
    ef_surrogate_forward(det, ws->v, ws->feat, m, r, ws->prob, NULL);
    for (int s = 0; s < m; s++) {
      const float *v = ws->v + (size_t)D * s;
      if (ef_binning_index_f(pb->vtx, v) < 0) {
        ws->pool_out += 1.0 - p_blind(ws, ws->prob + (size_t)K * s);
        if (ws->collect_out) keep_outside(ws, v);
        if (ws->refine) {
          size_t j = (size_t)(ws->samples - 1 - ws->pool_nout++);
          memcpy(ws->pool_v + (size_t)D * j, v, (size_t)D * sizeof(float));
          ws->pool_p0[j] = p_blind(ws, ws->prob + (size_t)K * s);
        }
        continue;
      }
      memcpy(ws->pool_v + (size_t)D * ws->pool_n, v, (size_t)D * sizeof(float));
      ws->pool_p0[ws->pool_n++] = p_blind(ws, ws->prob + (size_t)K * s);
      add_moments(ws, v, mo);
    }
    done += m;
  }
  mo->n += n;
}

/* The refinement (refine.h) of every pooled sample, those outside the
 * vertex binning included: they are moved from the back of the pool to
 * behind the pool_n binned ones, and pool_out becomes their refined
 * summed efficiency. Without them the data's events from outside the
 * binning would pull the binned samples next to its edges up. */
static int refine_pool(ef_ctx *ctx, const ef_gan_problem *pb, ef_gan_ws *ws,
                       const outer_setup *os, ef_rng *r) {
  if (!ws->refine)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "GAN workspace made without the refinement");
  const size_t D = (size_t)ws->D, in = (size_t)ws->pool_n, out = (size_t)ws->pool_nout,
               back = (size_t)ws->samples - out;
  memmove(ws->pool_v + D * in, ws->pool_v + D * back, D * out * sizeof(float));
  memmove(ws->pool_p0 + in, ws->pool_p0 + back, out * sizeof(float));
  ef_refine_problem rp = {pb->data, ws->meas, ws->cdf, os->n_meas, ws->det[pb->detector],
                          pb->seed, REFINE_UNIT + 2u * (uint32_t)pb->attempt};
  EF_CHECK(ef_refine_run(ctx, ws->refine, &rp, ws->pool_v, ws->pool_p0, (int)(in + out), r,
                         ws->pool_nu));
  if (out == 0) return EF_OK; /* pool_out stays as summed (0 or unrefined bits) */
  ws->pool_out = 0.0;
  for (size_t i = in; i < in + out; i++)
    ws->pool_out += (double)ws->pool_nu[i] * (1.0 - ws->pool_p0[i]);
  return EF_OK;
}

/* G's pooled samples into ws->hsum (events) and ws->esum (their summed
 * efficiency) per vertex bin, each sample weighted by the refinement
 * (refine.h) when gan.refine is on. */
static int histogram_pool(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                          ef_gan_ws *ws, const outer_setup *os, ef_rng *r) {
  int nv = ef_binning_count(pb->vtx), refine = gp->refine.iterations > 0;
  memset(ws->hsum, 0, (size_t)nv * sizeof(double));
  memset(ws->esum, 0, (size_t)nv * sizeof(double));
  if (refine) EF_CHECK(refine_pool(ctx, pb, ws, os, r));
  for (long long i = 0; i < ws->pool_n; i++) {
    int kb = ef_binning_index_f(pb->vtx, ws->pool_v + (size_t)ws->D * i);
    double w = refine ? ws->pool_nu[i] : 1.0;
    ws->hsum[kb] += w;
    ws->esum[kb] += w * (1.0 - ws->pool_p0[i]); /* 1.0 * x == x: unrefined bits kept */
  }
  return EF_OK;
}

/* The collapse check (docs/methods.md): in every observable G's spread
 * must stay above a tenth of its unit (featmap.h: pi0's cos theta* 0.1),
 * and along a periodic one its mean resultant length below 0.9. */
static int collapse_check(ef_ctx *ctx, const ef_gan_ws *ws, const moments *mo) {
  const ef_space *sp = ef_featmap_space(ws->fm);
  double n = (double)mo->n;
  for (int d = 0; d < ws->D; d++) {
    const char *name = sp->axis[d].name;
    if (sp->axis[d].kind == EF_AXIS_PERIODIC) {
      double rlen = sqrt(mo->s1[d] * mo->s1[d] + mo->s2[d] * mo->s2[d]) / n;
      if (!(rlen <= 0.9))
        return ef_error_set(ctx, EF_ERR_NUMERIC, "GAN unit: the generator collapsed (%s "
                            "concentrated: mean resultant length %.3f, above 0.9)", name, rlen);
      continue;
    }
    double m = mo->s1[d] / n, sd = sqrt(fmax(mo->s2[d] / n - m * m, 0.0));
    double rel = sd / ef_featmap_unit(ws->fm, d);
    if (!(rel >= 0.1))
      return ef_error_set(ctx, EF_ERR_NUMERIC, "GAN unit: the generator collapsed (std of %s "
                          "%.3g, below 0.1 of its unit %.3g)", name, sd,
                          ef_featmap_unit(ws->fm, d));
  }
  return EF_OK;
}

/* Train the outer GAN of pb from its seed and attempt: loss curves
 * (n_loss points), G's pooled samples in ws->hsum / ws->esum, their
 * moments (the collapse check's) in *mo; *r is the stream afterwards. */
static int train_outer(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                       ef_gan_ws *ws, const outer_setup *os, ef_rng *r, int n_loss,
                       double *loss_d, double *loss_g, moments *mo) {
  uint32_t s0 = (uint32_t)pb->attempt * N_ROLES;
  ef_mlp_init(ws->g, pb->seed, s0 + ROLE_G);
  ef_mlp_init(ws->d, pb->seed, s0 + ROLE_D);
  ef_adam_reset(ws->adam_g);
  ef_adam_reset(ws->adam_d);
  ef_rng_init(r, pb->seed, EF_RNG_NN_TRAIN, s0 + ROLE_G);
  int steps = gp->outer.steps;
  for (int p = 0; p < n_loss; p++) loss_d[p] = loss_g[p] = 0.0;
  ws->pool_n = 0;
  ws->pool_nout = 0;
  ws->pool_out = 0.0;
  /* the result: samples of G at n_snap snapshots over the last part of
   * the training, pooled (a GAN's generator oscillates around the
   * solution; pooling snapshots averages that out at the level of the
   * distribution) */
  memset(mo, 0, sizeof *mo);
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
      long long want = (long long)gp->samples * (snap + 1) / n_snap - mo->n;
      sample_generator(ws, pb, r, want, mo);
      snap++;
    }
  }
  return histogram_pool(ctx, gp, pb, ws, os, r);
}

/* G's content of seen vertex bin kb as the result takes it: its sum, times
 * gan.partly_blind fill's factor when that is on. */
static double seen_content(const ef_gan_ws *ws, int kb) {
  return ws->pbsum ? ws->hsum[kb] * ws->pbsum[kb] : ws->hsum[kb];
}

/* The unit's histogram from G's pooled samples (ws->hsum, ws->esum):
 * collapse checks, then measured bins keep G's shape and blind bins take
 * the fill model's own shape, scaled to its blind/measured ratio (the IBU
 * rule: nothing of G's there enters the result; own gets G's answer in
 * every bin, blind ones included, at the same scale); everything is scaled so
 * that G itself, folded with its efficiency, predicts the data (G's own
 * blind-bin mass and its samples outside the binning included: the data
 * hold the events those make), so the measured bins do not depend on the
 * fill model. */
static int assemble(ef_ctx *ctx, const ef_gan_problem *pb, const ef_gan_ws *ws, double total,
                    double fill_blind, double fill_meas, const moments *mo, double *hist,
                    double *own, double *scale_out) {
  int nv = ef_binning_count(pb->vtx);
  EF_CHECK(collapse_check(ctx, ws, mo));
  double hm = 0.0, folded = 0.0;
  for (int kb = 0; kb < nv; kb++) {
    if (!ws->blind[kb]) hm += seen_content(ws, kb);
    folded += ws->esum[kb]; /* sum over G's samples of their efficiency */
  }
  folded += ws->pool_out; /* and over those outside the binning */
  if (hm <= 0)
    return ef_error_set(ctx, EF_ERR_NUMERIC, "GAN unit: no generated event in a measured bin");
  if (!(folded > 0))
    return ef_error_set(ctx, EF_ERR_NUMERIC, "GAN unit: the generator predicts no measured event");
  double rho = fill_blind / fill_meas, scale = total / folded;
  *scale_out = scale;
  for (int kb = 0; kb < nv; kb++) {
    hist[kb] = scale * (!ws->blind[kb] ? seen_content(ws, kb)
                                       : pb->fill_prior[kb] / fill_blind * rho * hm);
    own[kb] = scale * ws->hsum[kb]; /* G's own answer, blind bins included */
  }
  return EF_OK;
}

/* Blind bins and the fill's mass in and out of them; the data's measured
 * events with weight > 0 as a cumulative distribution. */
static int setup(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb, ef_gan_ws *ws,
                 outer_setup *os, double *fill_blind, double *fill_meas) {
  const ef_events *data = pb->data;
  int nv = ef_binning_count(pb->vtx);
  *fill_blind = *fill_meas = 0.0;
  for (int kb = 0; kb < nv; kb++) {
    ws->blind[kb] = pb->efficiency[kb] < gp->blind_efficiency;
    if (ws->blind[kb]) *fill_blind += pb->fill_prior[kb];
    else *fill_meas += pb->fill_prior[kb];
  }
  os->use_blind = *fill_blind > 1e-6 && gp->fill_weight > 0;
  for (size_t i = 0; i < data->n; i++) {
    if (!ef_events_measured(data, i)) continue;
    double wi = (pb->data_weights ? pb->data_weights[i] : 1.0) *
                (data->weight ? data->weight[i] : 1.0);
    if (!(wi > 0)) continue;
    os->total += wi;
    ws->meas[os->n_meas] = (int32_t)i;
    ws->cdf[os->n_meas++] = os->total;
  }
  if (os->n_meas == 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "GAN unit: no measured data events (in a seen "
                        "category, every observable finite)");
  if (*fill_meas <= 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "GAN unit: every vertex bin is blind "
                        "(efficiency below gan.blind_efficiency)");
  return EF_OK;
}

/* Can this unit reuse the rank's last outer training (common random
 * numbers: it differs at most by the fill model, which is out of training)? */
static int reuses_outer(const ef_gan_ws *ws, const ef_gan_params *gp, const ef_gan_problem *pb,
                        const outer_setup *os, int n_loss) {
  return !os->use_blind && n_loss <= OUTER_LOSS_MAX && ws->outer_valid &&
         ws->outer_seed == pb->seed && ws->outer_attempt == pb->attempt &&
         ws->outer_detector == (int)pb->detector && ws->outer_det_key == pb->det_key &&
         ws->outer_total == os->total && ws->outer_n_loss == n_loss &&
         memcmp(&ws->outer_gp, gp, sizeof *gp) == 0;
}

static void keep_outer(ef_gan_ws *ws, const ef_gan_params *gp, const ef_gan_problem *pb,
                       const outer_setup *os, const ef_rng *r, int n_loss, const double *loss_d,
                       const double *loss_g, const moments *mo) {
  ws->outer_valid = 1;
  memcpy(&ws->outer_gp, gp, sizeof *gp); /* bytes, padding too: reuses_outer compares them */
  ws->outer_seed = pb->seed;
  ws->outer_attempt = pb->attempt;
  ws->outer_detector = (int)pb->detector;
  ws->outer_det_key = pb->det_key;
  ws->outer_total = os->total;
  ws->outer_n_loss = n_loss;
  ws->outer_mo = *mo;
  ws->outer_rng = *r;
  memcpy(ws->outer_loss[0], loss_d, (size_t)n_loss * sizeof *loss_d);
  memcpy(ws->outer_loss[1], loss_g, (size_t)n_loss * sizeof *loss_g);
}

/* ---- gan.bias_correction -------------------------------------------------- */

/* Pooled sample i's weight in the result (the refinement's, else 1). */
static double pool_weight(const ef_gan_params *gp, const ef_gan_ws *ws, long long i) {
  return gp->refine.iterations > 0 ? ws->pool_nu[i] : 1.0;
}

/* One vertex of the first training's answer into v (D): a pooled sample
 * (by its weight, rejection against nu_max) with probability
 * sum_nu / (sum_nu + out_w), else one of the samples outside the binning
 * (out_w: their summed weight, as in the normalisation; drawn uniformly
 * from the subsample out_v). */
static void pseudo_vertex(const ef_gan_params *gp, const ef_gan_ws *ws, ef_rng *r, double sum_nu,
                          double nu_max, double out_w, float *v) {
  size_t keep = (size_t)ws->out_n < ws->n_data ? (size_t)ws->out_n : ws->n_data;
  const float *src;
  if (keep > 0 && ef_rng_uniform(r) * (sum_nu + out_w) >= sum_nu) {
    src = ws->out_v + (size_t)ws->D * ef_rng_below(r, (uint32_t)keep);
  } else {
    long long i;
    do i = (long long)ef_rng_below(r, (uint32_t)ws->pool_n);
    while (ef_rng_uniform(r) * nu_max > pool_weight(gp, ws, i));
    src = ws->pool_v + (size_t)ws->D * (size_t)i;
  }
  memcpy(v, src, (size_t)ws->D * sizeof(float));
}

/* G_1's answer for the MC reweighting's classifier (ef_mcweight_draw). */
typedef struct {
  const ef_gan_params *gp;
  const ef_gan_ws *ws;
  double sum_nu, nu_max, out_w; /* pooled samples' summed and largest weight; those outside */
} g1_draw;

static void draw_g1(void *arg, ef_rng *r, float *v) {
  const g1_draw *a = arg;
  pseudo_vertex(a->gp, a->ws, r, a->sum_nu, a->nu_max, a->out_w, v);
}

/* The draw of G_1's answer over the pool's weights; what for names the
 * option in the error. */
static int g1_draw_init(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_ws *ws,
                        const char *what, g1_draw *a) {
  *a = (g1_draw){gp, ws, 0.0, 0.0, (double)ws->out_n};
  for (long long i = 0; i < ws->pool_n; i++) {
    double nu = pool_weight(gp, ws, i);
    a->sum_nu += nu;
    a->nu_max = nu > a->nu_max ? nu : a->nu_max;
  }
  if (gp->refine.iterations > 0) { /* refined: behind pool_n (refine_pool) */
    a->out_w = 0.0;
    for (long long i = ws->pool_n; i < ws->pool_n + ws->pool_nout; i++) a->out_w += ws->pool_nu[i];
  }
  if (!(a->nu_max > 0))
    return ef_error_set(ctx, EF_ERR_NUMERIC, "GAN unit: no pooled sample to reweight the MC "
                        "to (%s)", what);
  return EF_OK;
}

/* The MC reweighted to G_1's answer (ws->mcw); the measured MC events'
 * cumulative weights (ws->mcdf, ws->mcseen: *n_seen of them) and the
 * pseudo-truth's share per vertex bin per seen event (ws->hraw + 2 nv). */
static int reweight_mc(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                       ef_gan_ws *ws, ef_rng *r, size_t *n_seen) {
  const ef_events *mc = pb->mc;
  const int D = ws->D, nv = ef_binning_count(pb->vtx);
  g1_draw a;
  EF_CHECK(g1_draw_init(ctx, gp, ws, "gan.bias_correction", &a));
  EF_CHECK(ef_mcweight_fit(ctx, ws->mcwf, draw_g1, &a, mc, pb->mc_weights, pb->seed,
                           (uint32_t)pb->attempt * N_ROLES + ROLE_PSEUDO, r, ws->mcw));
  double *share = ws->hraw + 2 * nv, wseen = 0.0;
  size_t ns = 0;
  memset(share, 0, (size_t)nv * sizeof(double));
  for (size_t e = 0; e < mc->n; e++) {
    int kb = ef_binning_index(pb->vtx, mc->vertex + (size_t)D * e);
    if (kb >= 0) share[kb] += ws->mcw[e];
    if (!(ws->mcw[e] > 0) || !ef_events_measured(mc, e)) continue;
    ws->mcdf[ns] = (wseen += ws->mcw[e]);
    ws->mcseen[ns++] = (int32_t)e;
  }
  if (ns == 0)
    return ef_error_set(ctx, EF_ERR_NUMERIC, "GAN unit: the MC reweighted to G's answer has no "
                        "measured event (gan.bias_correction)");
  for (int kb = 0; kb < nv; kb++) share[kb] /= wseen;
  *n_seen = ns;
  return EF_OK;
}

/* The pseudo-data: round(total) seen events (at most n_data, each weighing
 * total / their number), the measured MC events drawn by their weight in
 * the MC reweighted to G_1's answer: the detector itself, as the MC
 * simulates it, folds them (not the unit's detector networks). */
static int make_pseudo(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                       ef_gan_ws *ws, double total, ef_rng *r) {
  const int D = ws->D;
  const ef_events *mc = pb->mc;
  ef_events *ps = &ws->pseudo;
  double want = floor(total + 0.5);
  size_t n = want < 1 ? 1 : want > (double)ws->n_data ? ws->n_data : (size_t)want, ns = 0;
  EF_CHECK(reweight_mc(ctx, gp, pb, ws, r, &ns));
  for (size_t i = 0; i < n; i++) {
    size_t e = (size_t)ws->mcseen[ef_rng_pick(r, ws->mcdf, ns)];
    for (int d = 0; d < D; d++) ps->reco[i * D + d] = mc->reco[e * D + d];
    ps->topology[i] = mc->topology[e];
    ps->weight[i] = total / (double)n;
  }
  ps->n = n;
  return EF_OK;
}

/* Swap the pool with the second training's. */
static void swap_pools(ef_gan_ws *ws) {
  float *t;
  t = ws->pool_v, ws->pool_v = ws->pool2_v, ws->pool2_v = t;
  t = ws->pool_p0, ws->pool_p0 = ws->pool2_p0, ws->pool2_p0 = t;
  t = ws->pool_nu, ws->pool_nu = ws->pool2_nu, ws->pool2_nu = t;
}

/* G's pooled samples' summed efficiency, those outside the binning included
 * (the normalisation's denominator: assemble). */
static double folded_sum(const ef_gan_ws *ws, int nv) {
  double f = ws->pool_out;
  for (int kb = 0; kb < nv; kb++) f += ws->esum[kb];
  return f;
}

/* gan.bias_correction (docs/methods.md): a second G, trained from the same
 * seed on pseudo-data made from the MC reweighted to the first G's answer,
 * measures the method's bias there (result2 - the pseudo-truth, at the same
 * total); the first G's sums become hsum = hsum1 - f1 (hsum2 / f2 - share)
 * (f: folded_sum; share: the pseudo-truth per seen event), that is result =
 * result1 - (result2 - pseudo-truth). The first training's pool, esum and
 * pool_out (pool_n, pool_nout) stay (unbinned output and the normalisation), its hsum goes to
 * hraw. */
static int correct_bias(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                        ef_gan_ws *ws, const outer_setup *os, int n_loss) {
  int nv = ef_binning_count(pb->vtx);
  double f1 = folded_sum(ws, nv), pool_out1 = ws->pool_out;
  long long pool_n1 = ws->pool_n, pool_nout1 = ws->pool_nout;
  memcpy(ws->hraw, ws->hsum, (size_t)nv * sizeof(double));
  memcpy(ws->hraw + nv, ws->esum, (size_t)nv * sizeof(double));
  ef_rng r; /* train_outer starts it as the first training's */
  EF_CHECK(make_pseudo(ctx, gp, pb, ws, os->total, &ws->out_rng));
  ef_gan_problem pb2 = *pb;
  pb2.data = &ws->pseudo;
  pb2.data_weights = NULL;
  outer_setup os2 = {0, 0.0, 0};
  double fb, fm, ld[OUTER_LOSS_MAX], lg[OUTER_LOSS_MAX];
  moments mo2;
  EF_CHECK(setup(ctx, gp, &pb2, ws, &os2, &fb, &fm));
  ws->collect_out = 0;
  swap_pools(ws);
  int n2 = n_loss < OUTER_LOSS_MAX ? n_loss : OUTER_LOSS_MAX; /* its curves are not kept */
  int rc = train_outer(ctx, gp, &pb2, ws, &os2, &r, n2, ld, lg, &mo2);
  double f2 = folded_sum(ws, nv);
  swap_pools(ws);
  ws->pool_n = pool_n1;
  ws->pool_nout = pool_nout1;
  ws->pool_out = pool_out1;
  if (rc != EF_OK) return rc;
  EF_CHECK(collapse_check(ctx, ws, &mo2));
  if (!(f2 > 0))
    return ef_error_set(ctx, EF_ERR_NUMERIC, "GAN unit: gan.bias_correction's second "
                        "generator predicts no measured event");
  for (int kb = 0; kb < nv; kb++) {
    ws->hsum[kb] = ws->hraw[kb] - f1 * (ws->hsum[kb] / f2 - ws->hraw[2 * nv + kb]);
    ws->esum[kb] = ws->hraw[nv + kb];
  }
  return EF_OK;
}

/* gan.polish (polish.h): G's answer through the MC's own response. The
 * unpolished hsum goes to hraw (the unbinned output's scale), hsum and
 * esum of each bin take the polish's factor. */
static int polish(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                  ef_gan_ws *ws) {
  int nv = ef_binning_count(pb->vtx);
  g1_draw a;
  EF_CHECK(g1_draw_init(ctx, gp, ws, "gan.polish", &a));
  ef_polish_problem pp = {pb->data, pb->data_weights, pb->mc, pb->mc_weights, pb->vtx,
                          ws->blind, ws->hsum, ws->esum, draw_g1, &a, pb->seed,
                          (uint32_t)pb->attempt * N_ROLES + ROLE_PSEUDO, pb->attempt};
  EF_CHECK(ef_polish_run(ctx, ws->polish, &pp, &ws->out_rng, ws->pcorr));
  memcpy(ws->hraw, ws->hsum, (size_t)nv * sizeof(double));
  for (int kb = 0; kb < nv; kb++) {
    ws->hsum[kb] *= ws->pcorr[kb];
    ws->esum[kb] *= ws->pcorr[kb];
  }
  return EF_OK;
}

/* ---- gan.partly_blind ----------------------------------------------------- */

/* The stream of gan.partly_blind's fill samples: units above every
 * attempt's roles and the refinement's. */
#define PARTLY_UNIT (1u << 21)

/* Is a vertex whose blind probability is p0 in the detector's blind part
 * (its efficiency below gan.blind_efficiency, the blind bins' rule)? */
static int in_blind_part(const ef_gan_params *gp, float p0) {
  return 1.0 - (double)p0 < gp->blind_efficiency;
}

/* gp->samples vertices of the fill model through the unit's efficiency
 * (det): per seen vertex bin their number (f_all, nv) and those in its
 * seen part (f_seen, nv). */
static void fill_seen(const ef_gan_params *gp, const ef_gan_problem *pb, ef_gan_ws *ws,
                      ef_surrogate *det, double *f_all, double *f_seen) {
  const int D = ws->D, NF = ws->NF;
  int nv = ef_binning_count(pb->vtx);
  int32_t *bin = ws->msel; /* (bo) scratch (the MMD's, idle now): each row's vertex bin */
  ef_rng r;
  ef_rng_init(&r, pb->seed, EF_RNG_NN_TRAIN, PARTLY_UNIT + (uint32_t)pb->attempt);
  memset(f_all, 0, (size_t)nv * sizeof *f_all);
  memset(f_seen, 0, (size_t)nv * sizeof *f_seen);
  for (long long done = 0, n = gp->samples; done < n;) {
    int m = n - done < ws->bo ? (int)(n - done) : ws->bo;
    for (int s = 0; s < m; s++) {
      double x[EF_SPACE_MAX_DIM];
      pb->fill_sample(pb->fill_arg, pb->fill_model, &r, x);
      bin[s] = ef_binning_index(pb->vtx, x);
      for (int d = 0; d < D; d++) ws->v[(size_t)D * s + d] = (float)x[d];
      ef_featmap_feat(ws->fm, x, ws->feat + (size_t)s * NF, NULL);
    }
    ef_surrogate_forward(det, ws->v, ws->feat, m, &r, ws->prob, NULL);
    for (int s = 0; s < m; s++) {
      if (bin[s] < 0 || ws->blind[bin[s]]) continue;
      f_all[bin[s]] += 1.0;
      if (!in_blind_part(gp, p_blind(ws, ws->prob + (size_t)ws->K * s))) f_seen[bin[s]] += 1.0;
    }
    done += m;
  }
}

/* gan.partly_blind fill: per seen vertex bin the factor c (ws->pbsum, nv)
 * that takes G's content to its seen part plus the fill model's share of
 * the bin beside it, c = (G's seen share of the bin) / (the fill's seen
 * share); 1 where the bin has no blind part for the fill, or the fill
 * nothing seen in it. */
static int partly_blind_factors(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                                ef_gan_ws *ws, ef_surrogate *det) {
  int nv = ef_binning_count(pb->vtx);
  if (!pb->fill_sample)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "gan.partly_blind fill without a fill sampler");
  double *c = ws->pbsum, *g_seen = c + nv, *f_all = g_seen + nv, *f_seen = f_all + nv;
  fill_seen(gp, pb, ws, det, f_all, f_seen);
  memset(c, 0, (size_t)nv * sizeof *c); /* G's pooled weight per bin first */
  memset(g_seen, 0, (size_t)nv * sizeof *g_seen);
  for (long long i = 0; i < ws->pool_n; i++) {
    int kb = ef_binning_index_f(pb->vtx, ws->pool_v + (size_t)ws->D * i);
    double w = pool_weight(gp, ws, i);
    c[kb] += w;
    if (!in_blind_part(gp, ws->pool_p0[i])) g_seen[kb] += w;
  }
  for (int kb = 0; kb < nv; kb++) {
    int partly = f_seen[kb] > 0 && f_seen[kb] < f_all[kb] && c[kb] > 0;
    c[kb] = partly ? g_seen[kb] / c[kb] * (f_all[kb] / f_seen[kb]) : 1.0;
  }
  return EF_OK;
}

/* Does a second step correct G's answer per bin (gan.bias_correction or
 * gan.polish)? Then the first sums are kept in hraw. */
static int corrects_answer(const ef_gan_params *gp) {
  return gp->bias_correction || gp->polish > 0;
}

/* n of G's pooled samples, spread over the pool, into x (n, D) with
 * weights w (n) that histogram to own (own = scale x the pool's weighted
 * histogram; with gan.bias_correction or gan.polish each sample's weight is
 * scaled by its bin's correction, hsum / hraw). */
static void unbinned(const ef_gan_params *gp, const ef_gan_ws *ws, const ef_binning *vtx,
                     double scale, int n, double *x, double *w) {
  const int D = ws->D;
  for (int j = 0; j < n; j++) {
    long long i = (long long)j * ws->pool_n / n;
    for (int d = 0; d < D; d++) x[(size_t)D * j + d] = ws->pool_v[(size_t)D * i + d];
    double nu = pool_weight(gp, ws, i);
    w[j] = nu * scale * (double)ws->pool_n / n;
    if (corrects_answer(gp)) {
      int kb = ef_binning_index_f(vtx, ws->pool_v + (size_t)D * i);
      w[j] = ws->hraw[kb] > 0 ? w[j] * ws->hsum[kb] / ws->hraw[kb] : 0.0;
    }
  }
}

int ef_gan_unit_run(ef_ctx *ctx, const ef_gan_params *gp, const ef_gan_problem *pb,
                    ef_gan_ws *ws, double *hist, double *own, double *eff, int n_loss,
                    double *loss_d, double *loss_g, int n_unb, double *ux, double *uw) {
  int nv = ef_binning_count(pb->vtx);
  ef_surrogate *det = (unsigned)pb->detector < 2 ? ws->det[pb->detector] : NULL;
  const ef_space *sp = ef_featmap_space(ws->fm);
  if (nv > ws->nv_cap || pb->data->n > ws->n_data || pb->mc->n > ws->n_mc || !det ||
      !ef_space_same(&pb->data->space, sp) || !ef_space_same(&pb->mc->space, sp) ||
      ef_binning_dim(pb->vtx) != ws->D)
    return ef_error_set(ctx, EF_ERR_INTERNAL, "GAN workspace not made for this problem");
  uint32_t s0 = (uint32_t)pb->attempt * N_ROLES;
  int64_t key = pb->det_key >= 0 ? pb->det_key * 64 + pb->attempt : -1;
  EF_CHECK(ef_surrogate_train(ctx, det, pb->mc, pb->mc_weights, pb->det_seed, s0 + ROLE_DETECTOR,
                              key));
  outer_setup os = {0, 0.0, 0};
  double fill_blind, fill_meas;
  moments mo;
  EF_CHECK(setup(ctx, gp, pb, ws, &os, &fill_blind, &fill_meas));
  ef_rng r;
  if (reuses_outer(ws, gp, pb, &os, n_loss)) {
    /* the same generator: only the fill's part of the result differs */
    r = ws->outer_rng;
    mo = ws->outer_mo;
    memcpy(loss_d, ws->outer_loss[0], (size_t)n_loss * sizeof *loss_d);
    memcpy(loss_g, ws->outer_loss[1], (size_t)n_loss * sizeof *loss_g);
  } else {
    ws->outer_valid = 0;
    ws->out_n = 0;
    ws->collect_out = corrects_answer(gp);
    if (ws->collect_out) ef_rng_init(&ws->out_rng, pb->seed, EF_RNG_NN_TRAIN, s0 + ROLE_PSEUDO);
    EF_CHECK(train_outer(ctx, gp, pb, ws, &os, &r, n_loss, loss_d, loss_g, &mo));
    ws->outer_trainings++;
    if (gp->bias_correction) EF_CHECK(correct_bias(ctx, gp, pb, ws, &os, n_loss));
    if (gp->polish > 0) EF_CHECK(polish(ctx, gp, pb, ws));
    if (!os.use_blind && n_loss <= OUTER_LOSS_MAX)
      keep_outer(ws, gp, pb, &os, &r, n_loss, loss_d, loss_g, &mo);
  }
  if (ws->pbsum) EF_CHECK(partly_blind_factors(ctx, gp, pb, ws, det));
  double scale = 0.0;
  EF_CHECK(assemble(ctx, pb, ws, os.total, fill_blind, fill_meas, &mo, hist, own, &scale));
  if (n_unb > 0) unbinned(gp, ws, pb->vtx, scale, n_unb, ux, uw);
  ef_surrogate_map(det, pb->vtx, &r, ws->bo, eff);
  return EF_OK;
}
