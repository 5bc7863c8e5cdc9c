/* Campaign inputs: the same samples, priors and response on every rank. */
#include "ensfold/inputs.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/method.h"
#include "ensfold/process.h"

struct ef_inputs {
  ef_events data, mc;
  ef_process *proc;       /* the physics behind the events */
  ef_binning *vtx, *det;  /* vertex and detector binnings */
  double *prior[EF_N_FILLS];  /* (n_vtx) each, for fill slots in the plan */
  ef_events fill[EF_FILL_FILES_MAX];      /* campaign.fill_models' event files */
  double *fill_cdf[EF_FILL_FILES_MAX];    /* (n) each: running sums of their weights */
  char fill_name[EF_FILL_FILES_MAX][64];  /* the files' names as fill models */
  int n_models;                           /* the process's models: the first file's slot */
  int n_unbinned;                         /* campaign.unbinned */
  size_t n_event_weights;                 /* n_mc with campaign.event_weights, else 0 */
  int n_iterations;                       /* the methods' most recorded iterations */
  double *truth;              /* (n_vtx) or NULL */
  int *data_bins;             /* (n_data) */
  double *mc_eff;             /* (4, n_vtx) */
  double *exact_eff;          /* (4, n_vtx) or NULL */
  double *mc_vertex;          /* (n_vtx) MC weight per vertex bin */
  double *attributed;         /* (n_vtx) measured data events attributed per vertex bin */
  double *mc_seen;            /* (n_vtx) seen MC events per vertex bin, Kish's effective number */
  unsigned char *unfolded;    /* (n_vtx) 1: the "measured" bins of the closure */
  unsigned char *iterated;    /* (n_vtx) 1: bins IBU iterates (efficiency >= min_efficiency) */
  unsigned char *twins;       /* (n_vtx) 1: twins outside the binning IBU unfolds */
  ef_response *response;
};

int ef_inputs_n_cat(const ef_inputs *in) { return in->data.space.n_cat; }
int ef_inputs_n_unbinned(const ef_inputs *in) { return in->n_unbinned; }
size_t ef_inputs_n_event_weights(const ef_inputs *in) { return in->n_event_weights; }
int ef_inputs_n_iterations(const ef_inputs *in) { return in->n_iterations; }

const ef_events *ef_inputs_data(const ef_inputs *in) { return &in->data; }
const ef_events *ef_inputs_mc(const ef_inputs *in) { return &in->mc; }
const ef_process *ef_inputs_process(const ef_inputs *in) { return in->proc; }
const ef_binning *ef_inputs_vertex_binning(const ef_inputs *in) { return in->vtx; }
const ef_binning *ef_inputs_detector_binning(const ef_inputs *in) { return in->det; }
const double *ef_inputs_prior(const ef_inputs *in, int fill) { return in->prior[fill]; }

const char *ef_inputs_fill_name(const ef_inputs *in, int fill) {
  int j = fill - in->n_models;
  return j >= 0 && j < EF_FILL_FILES_MAX ? in->fill_name[j] : ef_process_model_name(in->proc, fill);
}

void ef_inputs_fill_sample(const void *inputs, int fill, ef_rng *r, double *v) {
  const ef_inputs *in = inputs;
  int j = fill - in->n_models;
  if (j < 0) {
    ef_process_sample(in->proc, fill, r, v);
    return;
  }
  const ef_events *ev = &in->fill[j];
  size_t e = ef_rng_pick(r, in->fill_cdf[j], ev->n), D = (size_t)ev->space.dim;
  memcpy(v, ev->vertex + D * e, D * sizeof *v);
}
const double *ef_inputs_truth(const ef_inputs *in) { return in->truth; }
const ef_response *ef_inputs_response(const ef_inputs *in) { return in->response; }
const int *ef_inputs_data_bins(const ef_inputs *in) { return in->data_bins; }
const double *ef_inputs_mc_efficiency(const ef_inputs *in) { return in->mc_eff; }
const double *ef_inputs_exact_efficiency(const ef_inputs *in) { return in->exact_eff; }
const unsigned char *ef_inputs_unfolded(const ef_inputs *in) { return in->unfolded; }
const unsigned char *ef_inputs_iterated(const ef_inputs *in) { return in->iterated; }
const double *ef_inputs_attributed(const ef_inputs *in) { return in->attributed; }
const double *ef_inputs_mc_seen(const ef_inputs *in) { return in->mc_seen; }
const unsigned char *ef_inputs_unfolded_twins(const ef_inputs *in) { return in->twins; }

void ef_inputs_destroy(ef_inputs *in) {
  if (!in) return;
  ef_events_free(&in->data);
  ef_events_free(&in->mc);
  for (int m = 0; m < EF_N_FILLS; m++) free(in->prior[m]);
  for (int j = 0; j < EF_FILL_FILES_MAX; j++) {
    ef_events_free(&in->fill[j]);
    free(in->fill_cdf[j]);
  }
  free(in->truth);
  free(in->data_bins);
  free(in->mc_eff);
  free(in->exact_eff);
  free(in->mc_vertex);
  free(in->attributed);
  free(in->mc_seen);
  free(in->twins);
  free(in->unfolded);
  free(in->iterated);
  ef_response_destroy(in->response);
  ef_binning_free(in->vtx);
  ef_binning_free(in->det);
  ef_process_destroy(in->proc);
  free(in);
}

/* Broadcast count elements in pieces below INT_MAX. */
static int bcast(ef_ctx *ctx, void *buf, size_t count, MPI_Datatype type, size_t elem) {
  MPI_Comm comm = ef_ctx_comm(ctx);
  if (comm == MPI_COMM_NULL) return EF_OK;
  const size_t piece = (size_t)1 << 28;
  for (size_t off = 0; off < count; off += piece) {
    size_t n = count - off < piece ? count - off : piece;
    EF_CHECK_MPI(ctx, MPI_Bcast((char *)buf + off * elem, (int)n, type, 0, comm));
  }
  return EF_OK;
}

/* What a campaign asks of an input file beyond ef_events_read: MC has truth
 * and probabilities. */
static int check_role(ef_ctx *ctx, const char *path, const char *key, ef_event_kind want,
                      const ef_events *ev) {
  if (want == EF_KIND_MC && (!ev->vertex || !ev->prob))
    return ef_error_set(ctx, EF_ERR_INPUT, "%s (%s): MC needs /events/vertex and /events/prob",
                        path, key);
  return EF_OK;
}

/* Messages about file key name the key. */
static int with_key(ef_ctx *ctx, int rc, const char *key) {
  if (rc == EF_ERR_INPUT && !strstr(ef_error_message(ctx), key)) ef_error_wrap(ctx, "%s: ", key);
  return rc;
}

/* Read and check one input file (serial); messages name the key. */
static int read_input(ef_ctx *ctx, const ef_config *cfg, const char *file, const char *key,
                      ef_event_kind want, ef_events *ev) {
  char path[2 * EF_PATH_MAX];
  ef_config_resolve_path(cfg, file, path, sizeof path);
  int rc = ef_events_read(ctx, path, ev);
  if (rc == EF_OK) rc = check_role(ctx, path, key, want, ev);
  if (rc != EF_OK) ef_events_free(ev);
  return with_key(ctx, rc, key);
}

/* Does the file of key fit the process (its space; pi0 also the beam energy)? */
static int check_process(ef_ctx *ctx, const ef_config *cfg, const ef_process *proc,
                         const char *file, const char *key, const ef_events *ev) {
  char path[2 * EF_PATH_MAX];
  ef_config_resolve_path(cfg, file, path, sizeof path);
  return with_key(ctx, ef_process_check_events(ctx, proc, ev, path, key), key);
}

/* The process of cfg, made after the files are read (the files process
 * takes its space from the MC), and every file checked against it. */
static int process_for(ef_ctx *ctx, const ef_config *cfg, const ef_events *data,
                       const ef_events *mc, ef_process **out) {
  int dfile = cfg->data.source == EF_SOURCE_FILE, mfile = cfg->mc.source == EF_SOURCE_FILE;
  EF_CHECK(ef_process_create(ctx, out, cfg, mfile ? mc : NULL));
  int rc = EF_OK;
  if (dfile) rc = check_process(ctx, cfg, *out, cfg->data.file, "data.file", data);
  if (rc == EF_OK && mfile) rc = check_process(ctx, cfg, *out, cfg->mc.file, "mc.file", mc);
  return rc;
}

/* Every detector array (data histogram, IBU's work) holds seen categories x
 * detector bins doubles: 400 MB at this many. */
#define MAX_DETECTOR_BINS 50000000LL

/* The config's binnings for space sp, within the limits. */
static int binnings_for(ef_ctx *ctx, const ef_config *cfg, const ef_space *sp, ef_binning **vtx,
                        ef_binning **det) {
  EF_CHECK(ef_binning_from_params(ctx, vtx, &cfg->vertex_bins, sp, "binning.vertex"));
  EF_CHECK(ef_binning_from_params(ctx, det, &cfg->detector_bins, sp, "binning.detector"));
  char d[96];
  if (ef_binning_count(*vtx) > EF_CONFIG_MAX_VERTEX_BINS) {
    ef_binning_describe(*vtx, d, sizeof d);
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "binning.vertex: %s = %d vertex bins; at most %d allowed (the result "
                        "file holds (V, V) covariance matrices)", d, ef_binning_count(*vtx),
                        EF_CONFIG_MAX_VERTEX_BINS);
  }
  long long nd = (long long)ef_space_n_seen(sp) * ef_binning_count(*det);
  if (nd > MAX_DETECTOR_BINS) {
    ef_binning_describe(*det, d, sizeof d);
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "binning.detector: %s bins x %d seen categories = %lld detector bins; at "
                        "most %lld allowed (every detector array holds them)", d,
                        ef_space_n_seen(sp), nd, MAX_DETECTOR_BINS);
  }
  return EF_OK;
}

static int check_fill_file(ef_ctx *ctx, const char *file, const ef_events *ev,
                           const ef_space *sp);

int ef_inputs_check_files(ef_ctx *ctx, const ef_config *cfg) {
  ef_events data = {0}, mc = {0};
  ef_process *proc = NULL;
  int rc = EF_OK;
  if (cfg->data.source == EF_SOURCE_FILE)
    rc = read_input(ctx, cfg, cfg->data.file, "data.file", EF_KIND_DATA, &data);
  if (rc == EF_OK && cfg->mc.source == EF_SOURCE_FILE)
    rc = read_input(ctx, cfg, cfg->mc.file, "mc.file", EF_KIND_MC, &mc);
  if (rc == EF_OK) rc = process_for(ctx, cfg, &data, &mc, &proc);
  ef_binning *vtx = NULL, *det = NULL; /* refused here, not only when the campaign runs */
  if (rc == EF_OK) rc = binnings_for(ctx, cfg, ef_process_space(proc), &vtx, &det);
  for (int j = 0; rc == EF_OK && j < cfg->campaign.n_fill_files; j++) {
    ef_events fill = {0};
    const char *file = cfg->campaign.fill_file[j];
    rc = read_input(ctx, cfg, file, "campaign.fill_models", EF_KIND_DATA, &fill);
    if (rc == EF_OK) rc = check_fill_file(ctx, file, &fill, ef_process_space(proc));
    ef_events_free(&fill);
  }
  ef_binning_free(vtx);
  ef_binning_free(det);
  ef_process_destroy(proc);
  ef_events_free(&data);
  ef_events_free(&mc);
  return rc;
}

/* Rank 0 reads the file; every rank gets the events or rank 0's error. */
static int read_and_bcast(ef_ctx *ctx, const ef_config *cfg, const char *file, const char *key,
                          ef_event_kind want, ef_events *ev) {
  int rank = ef_ctx_rank(ctx);
  int rc = EF_OK;
  if (rank == 0) rc = read_input(ctx, cfg, file, key, want, ev);
  if (ef_ctx_comm(ctx) == MPI_COMM_NULL) return rc;
  /* header: status, n, kind, which arrays; then rank 0's message on error */
  long long hdr[6] = {rc, rank == 0 && rc == EF_OK ? (long long)ev->n : 0,
                      rank == 0 ? ev->kind : 0, rank == 0 && ev->vertex != NULL,
                      rank == 0 && ev->weight != NULL, rank == 0 && ev->prob != NULL};
  EF_CHECK(bcast(ctx, hdr, 6, MPI_LONG_LONG, sizeof hdr[0]));
  if (hdr[0] != EF_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", rank == 0 ? ef_error_message(ctx) : "");
    EF_CHECK(bcast(ctx, msg, sizeof msg, MPI_CHAR, 1));
    if (rank != 0) ef_error_set(ctx, (int)hdr[0], "%s", msg);
    return (int)hdr[0];
  }
  ef_space space;
  double beam = NAN; /* every rank checks the file against the process with these */
  char model[sizeof ev->model] = "";
  if (rank == 0) {
    space = ev->space;
    beam = ev->beam_energy;
    memcpy(model, ev->model, sizeof model);
  }
  EF_CHECK(bcast(ctx, &space, sizeof space, MPI_BYTE, 1));
  EF_CHECK(bcast(ctx, &beam, 1, MPI_DOUBLE, sizeof beam));
  EF_CHECK(bcast(ctx, model, sizeof model, MPI_CHAR, 1));
  if (rank != 0) {
    unsigned what = (hdr[3] ? EF_EVENTS_VERTEX : 0) | (hdr[5] ? EF_EVENTS_PROB : 0) |
                    (hdr[4] ? EF_EVENTS_WEIGHT : 0); /* the arrays rank 0 has, each */
    rc = ef_events_alloc(ctx, ev, &space, (size_t)hdr[1], (ef_event_kind)hdr[2], what);
    ev->beam_energy = beam;
    memcpy(ev->model, model, sizeof model);
  }
  /* every rank must agree the allocation worked before the broadcasts */
  int bad = rc != EF_OK, any = 0;
  EF_CHECK_MPI(ctx, MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, ef_ctx_comm(ctx)));
  if (any) return rc != EF_OK ? rc : ef_error_set(ctx, EF_ERR_NOMEM, "another rank ran out of memory");
  size_t n = ev->n;
  EF_CHECK(bcast(ctx, ev->topology, n, MPI_INT8_T, 1));
  size_t D = (size_t)ev->space.dim, K = (size_t)ev->space.n_cat;
  EF_CHECK(bcast(ctx, ev->reco, D * n, MPI_DOUBLE, sizeof(double)));
  if (ev->vertex) EF_CHECK(bcast(ctx, ev->vertex, D * n, MPI_DOUBLE, sizeof(double)));
  if (ev->prob) EF_CHECK(bcast(ctx, ev->prob, K * n, MPI_FLOAT, sizeof(float)));
  if (ev->weight) EF_CHECK(bcast(ctx, ev->weight, n, MPI_DOUBLE, sizeof(double)));
  return EF_OK;
}

/* Bin k's exact P(T | v) averaged over the efficiency maps' grid
 * (binning.h), the points where a GAN unit averages its own networks, so
 * that the two compare like for like (a bin average against a grid of 2
 * points per axis put gauss D = 6's steepest bins 6 % apart with an exact
 * network); 0 if the process gives no P(T | v) at a point. eff (K). */
static int grid_efficiency(const ef_inputs *in, int k, int K, double *eff) {
  int D = ef_binning_dim(in->vtx), side = ef_binning_map_side(D), per = 1;
  for (int j = 0; j < D; j++) per *= side;
  double x[EF_SPACE_MAX_DIM], p[EF_SPACE_MAX_CAT];
  for (int t = 0; t < K; t++) eff[t] = 0.0;
  for (int gi = 0; gi < per; gi++) {
    ef_binning_map_point(in->vtx, k, gi, side, x);
    if (!ef_process_efficiency_at(in->proc, x, p)) return 0;
    for (int t = 0; t < K; t++) eff[t] += p[t] / per;
  }
  return 1;
}

/* The process's exact P(T | v) per vertex bin: (K, nv), on the maps' grid
 * where it can (grid_efficiency), else its own bin average. */
static int exact_efficiency(ef_ctx *ctx, ef_inputs *in) {
  int nv = ef_binning_count(in->vtx), K = ef_process_space(in->proc)->n_cat;
  in->exact_eff = calloc((size_t)K * (size_t)nv, sizeof(double));
  double eff[EF_SPACE_MAX_CAT];
  if (!in->exact_eff) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for efficiency maps");
  for (int k = 0; k < nv; k++) {
    if (!grid_efficiency(in, k, K, eff)) ef_process_bin_efficiency(in->proc, in->vtx, k, eff);
    for (int t = 0; t < K; t++) in->exact_eff[(size_t)t * nv + k] = eff[t];
  }
  return EF_OK;
}

/* Mean MC probability vector per vertex bin: (K, nv). */
static int mc_efficiency(ef_ctx *ctx, ef_inputs *in) {
  int nv = ef_binning_count(in->vtx), K = in->mc.space.n_cat;
  in->mc_eff = calloc((size_t)K * (size_t)nv, sizeof(double));
  double *wsum = calloc((size_t)nv, sizeof(double));
  if (!in->mc_eff || !wsum) {
    free(wsum);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for efficiency maps");
  }
  const ef_events *mc = &in->mc;
  for (size_t i = 0; i < mc->n; i++) {
    int k = ef_binning_index(in->vtx, mc->vertex + (size_t)mc->space.dim * i);
    if (k < 0) continue;
    double w = mc->weight ? mc->weight[i] : 1.0;
    wsum[k] += w;
    for (int t = 0; t < K; t++)
      in->mc_eff[(size_t)t * nv + k] += w * mc->prob[(size_t)K * i + (size_t)t];
  }
  for (int k = 0; k < nv; k++)
    for (int t = 0; t < K; t++)
      if (wsum[k] > 0) in->mc_eff[(size_t)t * nv + k] /= wsum[k];
  in->mc_vertex = wsum;
  return EF_OK;
}

/* Add the nominal data's measured events, by their file weights, to their
 * detector bins (out: n_detector, zeroed by the caller). */
static void nominal_data(const ef_inputs *in, double *out) {
  for (size_t i = 0; i < in->data.n; i++)
    if (in->data_bins[i] >= 0) out[in->data_bins[i]] += in->data.weight ? in->data.weight[i] : 1.0;
}

/* "x1 [-3.2, -3] x2 [0, 0.5]": vertex bin k's ranges, for messages. */
static void bin_text(const ef_inputs *in, int k, char *buf, size_t len) {
  double lo[EF_SPACE_MAX_DIM], hi[EF_SPACE_MAX_DIM];
  ef_binning_range(in->vtx, k, lo, hi);
  size_t n = 0;
  buf[0] = '\0';
  for (int a = 0; a < ef_binning_dim(in->vtx) && n < len; a++) {
    int w = snprintf(buf + n, len - n, "%s%s [%.4g, %.4g]", a ? " " : "",
                     in->data.space.axis[a].name, lo[a], hi[a]);
    if (w < 0) break;
    n += (size_t)w;
  }
}

/* Per vertex bin the Kish effective number, (sum w)^2 / sum w^2, of the MC
 * events the response counts as measured (n_eff, nv; w2: nv of scratch). */
static void seen_mc_per_bin(const ef_inputs *in, double *n_eff, double *w2) {
  int nv = ef_binning_count(in->vtx), D = in->mc.space.dim;
  memset(n_eff, 0, (size_t)nv * sizeof *n_eff);
  memset(w2, 0, (size_t)nv * sizeof *w2);
  for (size_t e = 0; e < in->mc.n; e++) {
    int k = ef_binning_index(in->vtx, in->mc.vertex + (size_t)D * e);
    if (k < 0 || !ef_events_measured(&in->mc, e)) continue;
    double w = in->mc.weight ? in->mc.weight[e] : 1.0;
    n_eff[k] += w;
    w2[k] += w * w;
  }
  for (int k = 0; k < nv; k++) n_eff[k] = w2[k] > 0.0 ? n_eff[k] * n_eff[k] / w2[k] : 0.0;
}

/* Rank 0 says how many seen bins with enough data ibu.min_mc left out of
 * the measured ones, and the one with the most data. */
static void log_thin_mc(ef_ctx *ctx, const ef_inputs *in, const ef_config *cfg) {
  int thin = 0, worst = -1;
  for (int k = 0; k < ef_binning_count(in->vtx); k++) {
    if (!in->iterated[k] || in->attributed[k] < cfg->ibu.min_expected || in->unfolded[k]) continue;
    thin++;
    if (worst < 0 || in->attributed[k] > in->attributed[worst]) worst = k;
  }
  if (thin == 0 || ef_ctx_rank(ctx) != 0) return;
  char where[512];
  bin_text(in, worst, where, sizeof where);
  ef_log(ctx, EF_LOG_INFO,
         "%d seen vertex bins rest on fewer than ibu.min_mc = %g seen MC events and are not "
         "measured (the most data: %s, %.0f data events attributed to %.1f MC events)",
         thin, cfg->ibu.min_mc, where, in->attributed[worst], in->mc_seen[worst]);
}

/* The bins the closure calls measured: efficiency >= ibu.min_efficiency,
 * at least ibu.min_expected measured data events attributed to the bin
 * by one Bayes step with the MC's vertex distribution as prior
 * (ef_ibu_attribute), and a response that rests on at least ibu.min_mc
 * seen MC events (Kish's effective number): from fewer the column's
 * efficiency and migrations are a few points, the bootstrap of a handful
 * of events does not hold their error, and a bin that the MC barely reaches
 * keeps the prior's small share in every replica alike (docs/methods.md). Below ~10 events a bin's count is far from Gaussian
 * and IBU's multiplicative update drives a bin whose detector bins happen
 * to be empty geometrically to 0 (docs/methods.md). IBU iterates every bin
 * with efficiency >= ibu.min_efficiency (in->iterated): a seen bin with few
 * events is not measured, but kept at the fill's shape it would leak the
 * fill into its measured neighbours' fold. Computed once from the nominal
 * data and response, so every replica and fill model unfolds the same
 * bins. The bins' twins outside the binning (ef_ibu_choose_twins) follow
 * the measured rule. */
static int unfolded_bins(ef_ctx *ctx, ef_inputs *in, const ef_config *cfg) {
  int nv = ef_binning_count(in->vtx), nd = ef_response_n_detector(in->response);
  size_t nw = ef_ibu_work_size(in->response);
  in->attributed = calloc((size_t)nv, sizeof(double));
  in->mc_seen = calloc((size_t)nv, sizeof(double));
  in->unfolded = calloc((size_t)nv, 1);
  in->iterated = calloc((size_t)nv, 1);
  in->twins = calloc((size_t)nv, 1);
  double *buf = calloc((size_t)nd + nw, sizeof(double)); /* (nd) data, then work */
  if (!in->attributed || !in->mc_seen || !in->unfolded || !in->iterated || !in->twins || !buf) {
    free(buf);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory choosing the unfolded bins");
  }
  nominal_data(in, buf);
  ef_ibu_attribute(in->response, buf, in->mc_vertex, buf + nd, in->attributed);
  ef_ibu_mask_efficiency(in->response, cfg->ibu.min_efficiency, in->iterated);
  seen_mc_per_bin(in, in->mc_seen, buf + nd); /* the work's first nv as scratch */
  for (int k = 0; k < nv; k++)
    in->unfolded[k] = in->iterated[k] && in->attributed[k] >= cfg->ibu.min_expected &&
                      in->mc_seen[k] >= cfg->ibu.min_mc;
  log_thin_mc(ctx, in, cfg);
  ef_ibu_choose_twins(in->response, buf, in->mc_vertex, cfg->ibu.min_efficiency,
                      cfg->ibu.min_expected, buf + nd, in->twins);
  free(buf);
  return EF_OK;
}

/* The measured data events the nominal data give each vertex bin (seen,
 * nv): IBU's nominal answer at ibu.iterations from the MC's vertex
 * distribution, times the efficiency. (The one Bayes step of the measured
 * rule attributes a bin at the MC's shape, too little where the MC falls
 * off faster than the data.) */
static int data_per_bin(ef_ctx *ctx, const ef_inputs *in, const ef_config *cfg, double *seen) {
  int nd = ef_response_n_detector(in->response);
  size_t nw = ef_ibu_work_size(in->response);
  double *buf = calloc((size_t)nd + nw, sizeof *buf); /* data (nd), work */
  if (!buf) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory counting the data per bin");
  nominal_data(in, buf);
  int rc = ef_ibu_unfold(ctx, in->response, buf, in->mc_vertex, cfg->ibu.iterations, in->iterated,
                         in->twins, buf + nd, seen);
  const double *eps = ef_response_efficiency(in->response);
  for (int k = 0; rc == EF_OK && k < ef_binning_count(in->vtx); k++) seen[k] *= eps[k];
  free(buf);
  return rc;
}

/* Measured bins whose response rests on fewer seen MC events than the
 * measured data events the bin gives: there the MC's statistical error on
 * the result is larger than the data's, and the replicas leave it out
 * unless campaign.bootstrap_mc. One warning per campaign (rank 0) with the
 * number of such bins and the worst; none with campaign.bootstrap_mc
 * (docs/methods.md, "The MC's statistics"). Runs after the methods' input
 * checks, so their refusals come first; it fails the campaign only for
 * want of memory. */
static int warn_thin_mc(ef_ctx *ctx, const ef_inputs *in, const ef_config *cfg) {
  if (cfg->campaign.bootstrap_mc || ef_ctx_rank(ctx) != 0) return EF_OK;
  int nv = ef_binning_count(in->vtx);
  const double *n_eff = in->mc_seen;
  double *seen = malloc((size_t)nv * sizeof *seen);
  if (!seen) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory counting the data per bin");
  int rc = data_per_bin(ctx, in, cfg, seen);
  if (rc != EF_OK && rc != EF_ERR_NOMEM) { /* no nominal answer (no IBU in the campaign to
                                            * refuse such inputs): nothing to compare */
    ef_error_clear(ctx);
    free(seen);
    return EF_OK;
  }
  int n_meas = 0, n_low = 0, worst = -1;
  double worst_ratio = 1.0;
  for (int k = 0; rc == EF_OK && k < nv; k++) {
    if (!in->unfolded[k]) continue;
    n_meas++;
    if (!(n_eff[k] < seen[k])) continue;
    n_low++;
    if (n_eff[k] / seen[k] < worst_ratio) {
      worst_ratio = n_eff[k] / seen[k];
      worst = k;
    }
  }
  if (n_low > 0) {
    char where[512];
    bin_text(in, worst, where, sizeof where);
    ef_log(ctx, EF_LOG_WARN,
           "%d of %d measured vertex bins rest on fewer seen MC events than the data events "
           "they give (worst: %s, %.0f MC events for %.0f data events), so the MC's "
           "statistics are not negligible there and sigma leaves them out: set "
           "campaign.bootstrap_mc: true to put them in, or use more MC (docs/methods.md, \"The "
           "MC's statistics\")", n_low, n_meas, where, n_eff[worst], seen[worst]);
  }
  free(seen);
  return rc;
}

int ef_inputs_source(const ef_config *cfg, int mc, char *path, size_t len) {
  const ef_sample_params *s = mc ? &cfg->mc : &cfg->data;
  if (len) path[0] = '\0';
  if (s->source != EF_SOURCE_FILE) return 0;
  ef_config_resolve_path(cfg, s->file, path, len);
  return 1;
}

void ef_inputs_name(const ef_config *cfg, int mc, char *out, size_t len) {
  char path[2 * EF_PATH_MAX];
  if (ef_inputs_source(cfg, mc, path, sizeof path))
    snprintf(out, len, "%s: %s", mc ? "mc.file" : "data.file", path);
  else
    snprintf(out, len, "generated %s", mc ? "MC" : "data");
}

int ef_inputs_check_efficiency(ef_ctx *ctx, const ef_config *cfg, const ef_inputs *in,
                               const char *key, double need, const char *method) {
  const double *eps = ef_response_efficiency(in->response);
  double best = 0.0;
  for (int i = 0; i < ef_binning_count(in->vtx); i++)
    if (eps[i] > best) best = eps[i];
  if (best > 0.0 && best >= need) return EF_OK;
  char mc[2 * EF_PATH_MAX + 16];
  ef_inputs_name(cfg, 1, mc, sizeof mc);
  return ef_error_set(ctx, EF_ERR_INPUT,
                      "%s: /events/topology, /events/vertex: no vertex bin has an MC efficiency "
                      "(weighted fraction of its events measured as T1..T3) >= %s = %g; the "
                      "largest is %.3g, so every %s unit would fail", mc, key, need, best,
                      method);
}

/* Inputs that pass every file check yet make every unit of a method fail
 * are refused before any unit runs: each method of the campaign checks
 * them (ef_method.check_inputs). */
static int check_methods(ef_ctx *ctx, const ef_inputs *in, const ef_config *cfg) {
  unsigned files = (cfg->data.source == EF_SOURCE_FILE ? 1u : 0u) |
                   (cfg->mc.source == EF_SOURCE_FILE ? 2u : 0u);
  for (int id = 0; id < ef_method_count(); id++) {
    const ef_method *m = ef_method_get(id);
    if ((cfg->campaign.methods & (1u << id)) && m->check_inputs)
      EF_CHECK(m->check_inputs(ctx, cfg, in, files));
  }
  return EF_OK;
}

/* ---- fill models from event files ---------------------------------------- */

/* "alt-gen" for "runs/alt-gen.h5": a fill file's name as a fill model,
 * refused when it is a model's or an earlier file's name. */
static int fill_label(ef_ctx *ctx, ef_inputs *in, int j, const char *file) {
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  size_t n = strcspn(base, ".");
  if (n == 0 || n >= sizeof in->fill_name[j]) n = strlen(base) < 63 ? strlen(base) : 63;
  snprintf(in->fill_name[j], sizeof in->fill_name[j], "%.*s", (int)n, base);
  for (size_t c = 0; c < n; c++) /* group names in the result file: no '/' and plain text */
    if (!(isalnum((unsigned char)in->fill_name[j][c]) || strchr("-_+", in->fill_name[j][c])))
      in->fill_name[j][c] = '_';
  for (int q = 0; q < in->n_models + j; q++)
    if (!strcmp(ef_inputs_fill_name(in, q), in->fill_name[j]))
      return ef_error_set(ctx, EF_ERR_INPUT, "campaign.fill_models: the file %s would be the "
                          "fill model '%s', which is already %s: rename the file", file,
                          in->fill_name[j], q < in->n_models ? "a model of the process" : "taken");
  return EF_OK;
}

/* A fill file has vertices, in the campaign's space sp. */
static int check_fill_file(ef_ctx *ctx, const char *file, const ef_events *ev,
                           const ef_space *sp) {
  if (!ev->vertex || ev->n == 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "campaign.fill_models: %s has %s: a fill model is "
                        "the vertices (/events/vertex) of an MC file", file,
                        ev->vertex ? "no events" : "no /events/vertex");
  if (!ef_space_same(&ev->space, sp))
    return ef_error_set(ctx, EF_ERR_INPUT, "campaign.fill_models: %s declares %d observables "
                        "(%s, ...) and %d categories, not the campaign's %d (%s, ...) and %d",
                        file, ev->space.dim, ev->space.axis[0].name, ev->space.n_cat, sp->dim,
                        sp->axis[0].name, sp->n_cat);
  return EF_OK;
}

/* Read campaign.fill_models' event files (rank 0, broadcast): vertices in the
 * campaign's space, finite weights; their cumulative weights for sampling. */
static int fill_files(ef_ctx *ctx, ef_inputs *in, const ef_config *cfg) {
  in->n_models = ef_process_n_models(in->proc);
  const ef_space *sp = ef_process_space(in->proc);
  for (int j = 0; j < cfg->campaign.n_fill_files; j++) {
    const char *file = cfg->campaign.fill_file[j];
    ef_events *ev = &in->fill[j];
    EF_CHECK(read_and_bcast(ctx, cfg, file, "campaign.fill_models", EF_KIND_DATA, ev));
    EF_CHECK(check_fill_file(ctx, file, ev, sp));
    EF_CHECK(fill_label(ctx, in, j, file));
    in->fill_cdf[j] = malloc(ev->n * sizeof(double));
    if (!in->fill_cdf[j]) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for %s", file);
    double acc = 0.0;
    for (size_t i = 0; i < ev->n; i++) in->fill_cdf[j][i] = acc += ev->weight ? ev->weight[i] : 1.0;
    if (!(acc > 0))
      return ef_error_set(ctx, EF_ERR_INPUT, "campaign.fill_models: %s: every weight is 0", file);
  }
  return EF_OK;
}

/* A fill file's prior: its weight per vertex bin over its total weight
 * (vertices outside the binning count in the total, as a model's density
 * outside the binned range does). */
static void file_prior(const ef_inputs *in, int j, double *prior) {
  const ef_events *ev = &in->fill[j];
  size_t D = (size_t)ev->space.dim, n = ev->n;
  int nv = ef_binning_count(in->vtx);
  for (int k = 0; k < nv; k++) prior[k] = 0.0;
  for (size_t i = 0; i < n; i++) {
    int k = ef_binning_index(in->vtx, ev->vertex + D * i);
    if (k >= 0) prior[k] += ev->weight ? ev->weight[i] : 1.0;
  }
  for (int k = 0; k < nv; k++) prior[k] /= in->fill_cdf[j][n - 1];
}

/* campaign.unbinned: at most the MC's events (the binned methods and
 * OmniFold store MC events) and gan.samples (a GAN unit stores its
 * samples). campaign.event_weights: a weight per MC event. */
static int check_unbinned(ef_ctx *ctx, ef_inputs *in, const ef_config *cfg) {
  long long n = cfg->campaign.unbinned, mc = (long long)in->mc.n;
  unsigned gan = 0;
  for (int m = 0; m < ef_method_count(); m++)
    if ((cfg->campaign.methods >> m & 1u) && ef_method_get(m)->has_samples &&
        !ef_method_get(m)->event_weights)
      gan = 1;
  if (n > mc)
    return ef_error_set(ctx, EF_ERR_INPUT, "campaign.unbinned: %lld events per unit, more than "
                        "the MC's %lld (the binned methods store MC events reweighted)", n, mc);
  if (gan && n > cfg->gan.samples)
    return ef_error_set(ctx, EF_ERR_INPUT, "campaign.unbinned: %lld events per unit, more than "
                        "gan.samples %d (a GAN unit stores its generator's samples)", n,
                        cfg->gan.samples);
  in->n_unbinned = (int)n;
  in->n_event_weights = cfg->campaign.event_weights ? in->mc.n : 0;
  in->n_iterations = 0;
  for (int m = 0; m < ef_method_count(); m++) {
    const ef_method *x = ef_method_get(m);
    int k = (cfg->campaign.methods >> m & 1u) && x->n_iterations ? x->n_iterations(cfg) : 0;
    in->n_iterations = k > in->n_iterations ? k : in->n_iterations;
  }
  return EF_OK;
}

/* One generated sample of model from stream (role, 0). */
static int generate(ef_ctx *ctx, ef_inputs *in, int model, uint32_t role, size_t n,
                    ef_event_kind kind, uint64_t seed, ef_events *out) {
  ef_rng r;
  ef_rng_init(&r, seed, role, 0);
  return ef_process_generate(ctx, in->proc, model, &r, n, kind, 0, NULL, NULL, out);
}

static int build(ef_ctx *ctx, ef_inputs *in, const ef_config *cfg) {
  int need_det = cfg->data.source == EF_SOURCE_GENERATE || cfg->mc.source == EF_SOURCE_GENERATE;
  /* files first: a bad file is refused before the costly detector table */
  if (cfg->data.source == EF_SOURCE_FILE)
    EF_CHECK(read_and_bcast(ctx, cfg, cfg->data.file, "data.file", EF_KIND_DATA, &in->data));
  if (cfg->mc.source == EF_SOURCE_FILE)
    EF_CHECK(read_and_bcast(ctx, cfg, cfg->mc.file, "mc.file", EF_KIND_MC, &in->mc));
  EF_CHECK(process_for(ctx, cfg, &in->data, &in->mc, &in->proc));
  EF_CHECK(binnings_for(ctx, cfg, ef_process_space(in->proc), &in->vtx, &in->det));
  if (need_det) EF_CHECK(ef_process_need_detector(ctx, in->proc));
  if (cfg->data.source == EF_SOURCE_GENERATE) {
    EF_CHECK(generate(ctx, in, cfg->data.model, EF_RNG_GEN_DATA, (size_t)cfg->data.events,
                      EF_KIND_DATA, cfg->seed, &in->data));
    in->truth = malloc((size_t)ef_binning_count(in->vtx) * sizeof *in->truth);
    if (!in->truth) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the truth histogram");
    for (int k = 0; k < ef_binning_count(in->vtx); k++)
      in->truth[k] =
          cfg->data.events * ef_process_bin_probability(in->proc, cfg->data.model, in->vtx, k);
  }
  if (cfg->mc.source == EF_SOURCE_GENERATE)
    EF_CHECK(generate(ctx, in, cfg->mc.model, EF_RNG_GEN_MC, (size_t)cfg->mc.events, EF_KIND_MC,
                      cfg->seed, &in->mc));
  if (need_det) EF_CHECK(exact_efficiency(ctx, in));
  return EF_OK;
}

int ef_inputs_create(ef_ctx *ctx, ef_inputs **out, const ef_config *cfg) {
  *out = NULL;
  ef_inputs *in = calloc(1, sizeof *in);
  if (!in) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the inputs");
  int rc = build(ctx, in, cfg), nv = rc == EF_OK ? ef_binning_count(in->vtx) : 0;
  if (rc == EF_OK) rc = fill_files(ctx, in, cfg);
  if (rc == EF_OK) rc = check_unbinned(ctx, in, cfg);
  for (int f = 0; rc == EF_OK && f < EF_N_FILLS; f++) {
    if (!(cfg->campaign.fill_models & (1u << f))) continue;
    in->prior[f] = malloc((size_t)nv * sizeof(double));
    EF_GOTO_ALLOC(ctx, rc, in->prior[f], "a prior", fail);
    if (f >= in->n_models) {
      file_prior(in, f - in->n_models, in->prior[f]);
      continue;
    }
    for (int k = 0; k < nv; k++) in->prior[f][k] = ef_process_bin_probability(in->proc, f, in->vtx, k);
  }
  if (rc == EF_OK) {
    in->data_bins = malloc((in->data.n ? in->data.n : 1) * sizeof *in->data_bins);
    EF_GOTO_ALLOC(ctx, rc, in->data_bins, "data bins", fail);
    for (size_t i = 0; i < in->data.n; i++)
      in->data_bins[i] = ef_ibu_detector_bin(in->det, &in->data.space, in->data.topology[i],
                                             in->data.reco + (size_t)in->data.space.dim * i);
    rc = ef_response_build(ctx, &in->response, in->vtx, in->det, &in->mc, in->mc.weight);
  }
  if (rc == EF_OK) rc = mc_efficiency(ctx, in);
  if (rc == EF_OK) rc = unfolded_bins(ctx, in, cfg);
  if (rc == EF_OK) rc = check_methods(ctx, in, cfg);
  if (rc == EF_OK) rc = warn_thin_mc(ctx, in, cfg);
fail:
  if (rc != EF_OK) {
    ef_inputs_destroy(in);
    return rc;
  }
  *out = in;
  return EF_OK;
}
