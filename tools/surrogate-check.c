/* surrogate-check: how well the GAN methods' detector networks learn the
 * smearing, from the MC alone (no truth needed, so it works on a user's own
 * MC). Trains one detector surrogate with a config's gan.* settings on an
 * MC file, folds the MC's own vertices through it and prints, per seen
 * category and observable, the mean and rms of reco - vertex of the MC and
 * of the surrogate and the ratio of the rms (1 is right), over every event
 * of the category and over those with |vertex| > 1.5 in that observable.
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

#include "ensfold/config.h"
#include "ensfold/ctx.h"
#include "ensfold/error.h"
#include "ensfold/events.h"
#include "ensfold/featmap.h"
#include "ensfold/rng.h"
#include "ensfold/surrogate.h"

enum { ROWS = 1024, MAX_EVENTS = 400000 };

typedef struct {
  double s1[2][2][EF_SPACE_MAX_DIM], s2[2][2][EF_SPACE_MAX_DIM]; /* [MC|surrogate][all|tail][d] */
  double n[2][EF_SPACE_MAX_DIM];                                  /* [all|tail][d] */
} moments;

static void add(moments *m, int d, int tail, double rm, double rs) {
  for (int g = 0; g <= tail; g++) {
    m->s1[0][g][d] += rm, m->s2[0][g][d] += rm * rm;
    m->s1[1][g][d] += rs, m->s2[1][g][d] += rs * rs;
    m->n[g][d]++;
  }
}

/* Fold up to MAX_EVENTS MC events of seen category j (n, D buffers of ROWS rows). */
static void fold_category(ef_surrogate *s, const ef_featmap *fm, const ef_events *mc, int j,
                          ef_rng *r, float *v, float *feat, float *prob, float *reco, moments *m) {
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
    for (int i = 0; i < n; i++)
      for (int d = 0; d < D; d++) {
        double x = mc->vertex[ids[i] * D + d];
        add(m, d, fabs(x) > 1.5, mc->reco[ids[i] * D + d] - x,
            reco[((size_t)j * n + i) * D + d] - v[i * D + d]);
      }
    done += (size_t)n;
  }
}

static void print_category(const ef_events *mc, int cat, const moments *m, const char *kind) {
  for (int d = 0; d < mc->space.dim; d++)
    for (int g = 0; g < 2; g++) {
      double c = m->n[g][d], mu[2], sd[2];
      if (c == 0) continue;
      for (int w = 0; w < 2; w++) {
        mu[w] = m->s1[w][g][d] / c;
        sd[w] = sqrt(fmax(m->s2[w][g][d] / c - mu[w] * mu[w], 0.0));
      }
      printf("%-6s %-10s %-8s %-9s n %8.0f  MC mean %+.4f rms %.4f | surrogate mean %+.4f rms %.4f"
             " | rms ratio %.3f\n", kind, mc->space.cat[cat].name, mc->space.axis[d].name,
             g ? "|v|>1.5" : "all", c, mu[0], sd[0], mu[1], sd[1], sd[0] > 0 ? sd[1] / sd[0] : NAN);
    }
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
  int rc = ef_featmap_create(ctx, &fm, &mc->space, mc, isfinite(mc->beam_energy) ? mc->beam_energy : 0);
  if (rc == EF_OK)
    rc = ef_surrogate_create(ctx, &s, topo ? EF_SURROGATE_TOPO : EF_SURROGATE_MIXED,
                             &cfg->gan.detector, fm, ROWS, mc->n);
  if (rc == EF_OK) rc = ef_surrogate_train(ctx, s, mc, strtoull(argv[4], NULL, 10), 0, -1);
  const int D = mc->space.dim, ns = rc == EF_OK ? ef_featmap_n_seen(fm) : 0;
  float *v = malloc(sizeof(float) * ROWS * D), *prob = malloc(sizeof(float) * ROWS * mc->space.n_cat),
        *feat = fm ? malloc(sizeof(float) * ROWS * ef_featmap_n_feat(fm)) : NULL,
        *reco = malloc(sizeof(float) * (size_t)(ns ? ns : 1) * ROWS * D);
  if (rc == EF_OK && (!v || !prob || !feat || !reco))
    rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  ef_rng r;
  ef_rng_init(&r, 99, EF_RNG_TEST, 1);
  for (int j = 0; j < ns && rc == EF_OK; j++) {
    moments m;
    memset(&m, 0, sizeof m);
    fold_category(s, fm, mc, j, &r, v, feat, prob, reco, &m);
    print_category(mc, ef_featmap_seen(fm, j), &m, argv[3]);
  }
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
