/* surrogate-check: how well the GAN methods' detector networks learn the
 * smearing, from the MC alone (no truth needed, so it works on a user's own
 * MC). Trains one detector surrogate with a config's gan.* settings on an
 * MC file, folds the MC's own vertices through it and prints, per seen
 * category and observable, the mean and rms of reco - vertex of the MC and
 * of the surrogate and the ratio of the rms (1 is right), over every event
 * of the category, over those with |vertex| > 1.5 in that observable and
 * per bin of the config's vertex binning in that observable, and the
 * largest correlation between two observables' residuals;
 * then, per observable and bin of the config's vertex binning, the mean
 * probability to be seen (any seen category) the surrogate gives the MC's
 * vertices against their exact one (the efficiency the methods fold with;
 * events inside the binning's box).
 * docs/results.md ("The gauss process", D = 3 and D = 6) uses it.
 *
 * usage: surrogate-check CONFIG MC.h5 topo|mixed SEED [KEY=VALUE ...]
 * (KEY=VALUE as `ensfold run --set`; gan.efficiency.steps=300 saves time
 * when only the smearing is of interest: the networks have their own
 * random streams). Built by meson as build/surrogate-check. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensfold/binning.h"
#include "ensfold/config.h"
#include "ensfold/ctx.h"
#include "ensfold/error.h"
#include "ensfold/events.h"
#include "ensfold/featmap.h"
#include "ensfold/rng.h"
#include "ensfold/surrogate.h"

enum { ROWS = 1024, MAX_EVENTS = 400000, MAX_BINS = 64 };

typedef struct {
  double s1[2][2][EF_SPACE_MAX_DIM], s2[2][2][EF_SPACE_MAX_DIM]; /* [MC|surrogate][all|tail][d] */
  double n[2][EF_SPACE_MAX_DIM];                                  /* [all|tail][d] */
  /* the same per bin of the vertex binning's axis d (the first MAX_BINS) */
  double b1[2][EF_SPACE_MAX_DIM][MAX_BINS], b2[2][EF_SPACE_MAX_DIM][MAX_BINS];
  double bn[EF_SPACE_MAX_DIM][MAX_BINS];
  double cx[2][EF_SPACE_MAX_DIM][EF_SPACE_MAX_DIM]; /* [MC|surrogate] sums of r_a r_b, all events */
} moments;

static void add(moments *m, int d, int tail, int bin, double rm, double rs) {
  for (int g = 0; g <= tail; g++) {
    m->s1[0][g][d] += rm, m->s2[0][g][d] += rm * rm;
    m->s1[1][g][d] += rs, m->s2[1][g][d] += rs * rs;
    m->n[g][d]++;
  }
  if (bin < 0 || bin >= MAX_BINS) return;
  m->b1[0][d][bin] += rm, m->b2[0][d][bin] += rm * rm;
  m->b1[1][d][bin] += rs, m->b2[1][d][bin] += rs * rs;
  m->bn[d][bin]++;
}

/* The bin of value x along axis d of vb alone, or -1 outside it. */
static int axis_bin(const ef_binning *vb, int d, double x) {
  for (int k = 0; k < ef_binning_axis(vb, d)->n; k++) {
    double a = ef_binning_edge(vb, d, k), b = ef_binning_edge(vb, d, k + 1);
    if ((x >= fmin(a, b) && x < fmax(a, b)) || (x == fmax(a, b) && k == ef_binning_axis(vb, d)->n - 1))
      return k;
  }
  return -1;
}

/* Fold up to MAX_EVENTS MC events of seen category j (n, D buffers of ROWS rows). */
static void fold_category(ef_surrogate *s, const ef_featmap *fm, const ef_events *mc,
                          const ef_binning *vb, int j, ef_rng *r, float *v, float *feat,
                          float *prob, float *reco, moments *m) {
  const int D = mc->space.dim, nf = ef_featmap_n_feat(fm), cat = ef_featmap_seen(fm, j);
  size_t e = 0, done = 0, ids[ROWS];
  while (done < MAX_EVENTS && e < mc->n) {
    int n = 0;
    for (; n < ROWS && e < mc->n; e++)
      if (mc->topology[e] == cat) ids[n++] = e;
    for (int i = 0; i < n; i++) {
      const double *x = mc->vertex + ids[i] * D;
      for (int d = 0; d < D; d++) v[i * D + d] = (float)x[d];
      ef_featmap_feat(fm, x, feat + (size_t)i * nf, NULL);
    }
    ef_surrogate_forward(s, v, feat, n, r, prob, reco);
    for (int i = 0; i < n; i++) {
      double rr[2][EF_SPACE_MAX_DIM];
      for (int d = 0; d < D; d++) {
        double x = mc->vertex[ids[i] * D + d];
        rr[0][d] = mc->reco[ids[i] * D + d] - x;
        rr[1][d] = reco[((size_t)j * n + i) * D + d] - v[i * D + d];
        add(m, d, fabs(x) > 1.5, axis_bin(vb, d, x), rr[0][d], rr[1][d]);
      }
      for (int w = 0; w < 2; w++)
        for (int a = 0; a < D; a++)
          for (int b = 0; b < D; b++) m->cx[w][a][b] += rr[w][a] * rr[w][b];
    }
    done += (size_t)n;
  }
}

/* One line: the MC's and the surrogate's residual mean and rms from count c
 * and the sums s1[w], s2[w] (w 0 the MC, 1 the surrogate). */
static void print_line(const char *head, double c, const double s1[2], const double s2[2]) {
  double mu[2], sd[2];
  for (int w = 0; w < 2; w++) {
    mu[w] = s1[w] / c;
    sd[w] = sqrt(fmax(s2[w] / c - mu[w] * mu[w], 0.0));
  }
  printf("%s n %8.0f  MC mean %+.4f rms %.4f | surrogate mean %+.4f rms %.4f | rms ratio %.3f\n",
         head, c, mu[0], sd[0], mu[1], sd[1], sd[0] > 0 ? sd[1] / sd[0] : NAN);
}

static void print_category(const ef_events *mc, int cat, const moments *m, const char *kind) {
  char head[128];
  for (int d = 0; d < mc->space.dim; d++)
    for (int g = 0; g < 2; g++) {
      if (m->n[g][d] == 0) continue;
      double s1[2] = {m->s1[0][g][d], m->s1[1][g][d]}, s2[2] = {m->s2[0][g][d], m->s2[1][g][d]};
      snprintf(head, sizeof head, "%-6s %-10s %-8s %-9s", kind, mc->space.cat[cat].name,
               mc->space.axis[d].name, g ? "|v|>1.5" : "all");
      print_line(head, m->n[g][d], s1, s2);
    }
}

/* The largest correlation between two observables' residuals (reco -
 * vertex) in the category, the MC's and the surrogate's: gauss smears each
 * observable independently, and a fold made from fewer noise inputs than
 * observables cannot. */
static void print_corr(const ef_events *mc, int cat, const moments *m, const char *kind) {
  const int D = mc->space.dim;
  double worst[2] = {0, 0};
  int pa[2] = {0, 0}, pb[2] = {0, 0};
  for (int w = 0; w < 2; w++)
    for (int a = 0; a < D; a++)
      for (int b = a + 1; b < D; b++) {
        double c = m->n[0][a], ma = m->s1[w][0][a] / c, mb = m->s1[w][0][b] / c;
        double va = m->s2[w][0][a] / c - ma * ma, vb = m->s2[w][0][b] / c - mb * mb;
        if (!(va > 1e-12 && vb > 1e-12)) continue;
        double r = (m->cx[w][a][b] / c - ma * mb) / sqrt(va * vb);
        if (fabs(r) > fabs(worst[w])) worst[w] = r, pa[w] = a, pb[w] = b;
      }
  printf("%-6s %-10s residual correlation, largest: MC %+.4f (%s:%s) | surrogate %+.4f (%s:%s)\n",
         kind, mc->space.cat[cat].name, worst[0], mc->space.axis[pa[0]].name,
         mc->space.axis[pb[0]].name, worst[1], mc->space.axis[pa[1]].name,
         mc->space.axis[pb[1]].name);
}

static void print_bins(const ef_events *mc, int cat, const moments *m, const ef_binning *vb,
                       const char *kind) {
  char head[128];
  for (int d = 0; d < mc->space.dim; d++)
    for (int k = 0; k < ef_binning_axis(vb, d)->n && k < MAX_BINS; k++) {
      if (m->bn[d][k] == 0) continue;
      double s1[2] = {m->b1[0][d][k], m->b1[1][d][k]}, s2[2] = {m->b2[0][d][k], m->b2[1][d][k]};
      snprintf(head, sizeof head, "%-6s %-10s %-8s bin %2d [%+.3f, %+.3f]", kind,
               mc->space.cat[cat].name, mc->space.axis[d].name, k, ef_binning_edge(vb, d, k),
               ef_binning_edge(vb, d, k + 1));
      print_line(head, m->bn[d][k], s1, s2);
    }
}

/* Mean P(seen | v) of the surrogate and of the MC's exact probabilities per
 * observable and bin of vb's axes, over the first MAX_EVENTS MC events
 * (those inside vb's box in every observable). */
static int efficiency_by_bin(ef_ctx *ctx, ef_surrogate *s, const ef_featmap *fm,
                             const ef_events *mc, const ef_binning *vb, ef_rng *r, float *v,
                             float *feat, float *prob) {
  const int D = mc->space.dim, K = mc->space.n_cat, nf = ef_featmap_n_feat(fm);
  const int ns = ef_featmap_n_seen(fm);
  int nb = 0;
  for (int d = 0; d < D; d++) nb += ef_binning_axis(vb, d)->n;
  double *acc = calloc((size_t)nb * 3, sizeof(double)); /* (nb, [n|exact|surrogate]) */
  if (!acc) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  int bin[EF_SPACE_MAX_DIM];
  for (size_t e0 = 0; e0 < mc->n && e0 < MAX_EVENTS; e0 += ROWS) {
    int n = (int)(mc->n - e0 < ROWS ? mc->n - e0 : ROWS);
    for (int i = 0; i < n; i++) {
      const double *x = mc->vertex + (e0 + i) * D;
      for (int d = 0; d < D; d++) v[i * D + d] = (float)x[d];
      ef_featmap_feat(fm, x, feat + (size_t)i * nf, NULL);
    }
    ef_surrogate_forward(s, v, feat, n, r, prob, NULL);
    for (int i = 0; i < n; i++) {
      double pe = 0, ps = 0;
      for (int j = 0; j < ns; j++) {
        int c = ef_featmap_seen(fm, j);
        pe += mc->prob[(e0 + i) * K + c], ps += prob[i * K + c];
      }
      int k = ef_binning_index(vb, mc->vertex + (e0 + i) * D);
      for (int d = 0; d < D; d++) bin[d] = k < 0 ? -1 : ef_binning_axis_index(vb, k, d);
      for (int d = 0, off = 0; d < D; off += ef_binning_axis(vb, d)->n, d++)
        if (bin[d] >= 0) {
          double *a = acc + (size_t)(off + bin[d]) * 3;
          a[0]++, a[1] += pe, a[2] += ps;
        }
    }
  }
  for (int d = 0, off = 0; d < D; off += ef_binning_axis(vb, d)->n, d++)
    for (int k = 0; k < ef_binning_axis(vb, d)->n; k++) {
      const double *a = acc + (size_t)(off + k) * 3;
      if (a[0] == 0) continue;
      printf("eff    %-8s bin %2d [%+.3f, %+.3f] n %7.0f  exact %.4f | surrogate %.4f | ratio %.3f\n",
             mc->space.axis[d].name, k, ef_binning_edge(vb, d, k), ef_binning_edge(vb, d, k + 1),
             a[0], a[1] / a[0], a[2] / a[0], a[1] > 0 ? a[2] / a[1] : NAN);
    }
  free(acc);
  return EF_OK;
}

static int run(ef_ctx *ctx, int argc, char **argv, ef_config *cfg, ef_events *mc) {
  EF_CHECK(ef_config_load(ctx, cfg, argv[1]));
  EF_CHECK(ef_config_set_all(ctx, cfg, argv + 5, argc - 5));
  EF_CHECK(ef_events_read(ctx, argv[2], mc));
  if (!mc->vertex || !mc->prob)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: not an MC file (no vertex or prob)", argv[2]);
  int topo = strcmp(argv[3], "topo") == 0;
  if (!topo && strcmp(argv[3], "mixed") != 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "kind '%s': topo or mixed", argv[3]);
  ef_featmap *fm = NULL;
  ef_surrogate *s = NULL;
  int rc = ef_featmap_create(ctx, &fm, &mc->space, mc, NULL, isfinite(mc->beam_energy) ? mc->beam_energy : 0);
  if (rc == EF_OK)
    rc = ef_surrogate_create(ctx, &s, topo ? EF_SURROGATE_TOPO : EF_SURROGATE_MIXED,
                             &cfg->gan.detector, fm, ROWS, mc->n);
  if (rc == EF_OK) rc = ef_surrogate_train(ctx, s, mc, NULL, strtoull(argv[4], NULL, 10), 0, -1);
  const int D = mc->space.dim, ns = rc == EF_OK ? ef_featmap_n_seen(fm) : 0;
  float *v = malloc(sizeof(float) * ROWS * D), *prob = malloc(sizeof(float) * ROWS * mc->space.n_cat),
        *feat = fm ? malloc(sizeof(float) * ROWS * ef_featmap_n_feat(fm)) : NULL,
        *reco = malloc(sizeof(float) * (size_t)(ns ? ns : 1) * ROWS * D);
  if (rc == EF_OK && (!v || !prob || !feat || !reco))
    rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  ef_binning *vb = NULL;
  if (rc == EF_OK)
    rc = ef_binning_from_params(ctx, &vb, &cfg->vertex_bins, &mc->space, "binning.vertex");
  moments *m = rc == EF_OK ? malloc(sizeof *m) : NULL;
  if (rc == EF_OK && !m) rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  ef_rng r;
  ef_rng_init(&r, 99, EF_RNG_TEST, 1);
  for (int j = 0; j < ns && rc == EF_OK; j++) {
    memset(m, 0, sizeof *m);
    fold_category(s, fm, mc, vb, j, &r, v, feat, prob, reco, m);
    print_category(mc, ef_featmap_seen(fm, j), m, argv[3]);
    print_corr(mc, ef_featmap_seen(fm, j), m, argv[3]);
    print_bins(mc, ef_featmap_seen(fm, j), m, vb, argv[3]);
  }
  free(m);
  if (rc == EF_OK) rc = efficiency_by_bin(ctx, s, fm, mc, vb, &r, v, feat, prob);
  ef_binning_free(vb);
  free(v), free(prob), free(feat), free(reco);
  ef_surrogate_destroy(s);
  ef_featmap_destroy(fm);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: surrogate-check CONFIG MC.h5 topo|mixed SEED [KEY=VALUE ...]\n");
    return 2;
  }
  ef_ctx *ctx = NULL;
  if (ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) return 3;
  ef_config cfg;
  ef_events mc;
  memset(&cfg, 0, sizeof cfg);
  memset(&mc, 0, sizeof mc);
  int rc = run(ctx, argc, argv, &cfg, &mc);
  if (rc != EF_OK) fprintf(stderr, "surrogate-check: %s\n", ef_error_message(ctx));
  ef_events_free(&mc);
  ef_config_free(&cfg);
  ef_ctx_destroy(ctx);
  return rc == EF_OK ? 0 : rc == EF_ERR_INPUT ? 2 : 3;
}
