/* ensfold generate --model M1|PS|M2 --kind data|mc -n N -o FILE.h5 ... */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ensfold/generator.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: ensfold generate --model M1|PS|M2 --kind data|mc -n N -o FILE.h5\n"
          "                        [--config CONFIG] [--set KEY=VALUE ...] [--seed S]\n"
          "                        [--quiet]\n\n"
          "Generate N events of gamma p -> pi0 p from a vertex model through the\n"
          "CLAS-like detector and write an event file (docs/formats.md). MC files\n"
          "also hold the true vertex and the probability vector P(T0..T3 | vertex).\n"
          "Physics and detector settings come from CONFIG (docs/config.md) and\n"
          "--set; the seed from --seed, else the config's seed, else 1.\n"
          "Prints the topology table on stdout. An existing FILE is replaced only\n"
          "when the new one is complete.\n"
          "Exit codes: 0 ok, 2 bad input, 3 internal error.\n");
}

typedef struct {
  ef_ctx *ctx;
  double t0, last;
  int quiet;
} progress_state;

static void progress(void *arg, size_t done, size_t total) {
  progress_state *ps = arg;
  double now = ef_cli_now();
  if (ps->quiet || (now - ps->last < 2.0 && done < total)) return;
  ps->last = now;
  double rate = done / (now - ps->t0 + 1e-9);
  ef_log(ps->ctx, EF_LOG_INFO, "generated %zu / %zu events (%.0f/s, ETA %.0f s)", done, total,
         rate, (double)(total - done) / (rate + 1e-9));
}

int ef_cli_generate(ef_ctx *ctx, int argc, char **argv) {
  const char *model_s = NULL, *kind_s = NULL, *n_s = NULL, *outp = NULL, *cfgp = NULL,
             *seed_s = NULL;
  int quiet = 0, rc = EF_OK;
  char **sets = calloc((size_t)argc + 1, sizeof *sets);
  int n_sets = 0;
  if (!sets) return ef_cli_fail(ctx, ef_error_set(ctx, EF_ERR_NOMEM, "out of memory"));
  for (int i = 1; i < argc && rc == EF_OK; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      free(sets);
      return 0;
    } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
      quiet = 1;
      continue;
    } else if (!strcmp(a, "--model")) slot = &model_s;
    else if (!strcmp(a, "--kind")) slot = &kind_s;
    else if (!strcmp(a, "-n")) slot = &n_s;
    else if (!strcmp(a, "-o") || !strcmp(a, "--output")) slot = &outp;
    else if (!strcmp(a, "--config")) slot = &cfgp;
    else if (!strcmp(a, "--seed")) slot = &seed_s;
    else if (!strcmp(a, "--set")) {
      if (i + 1 >= argc) rc = ef_error_set(ctx, EF_ERR_INPUT, "--set needs KEY=VALUE");
      else sets[n_sets++] = argv[++i];
      continue;
    } else {
      rc = ef_error_set(ctx, EF_ERR_INPUT, "generate: unknown argument '%s' (see --help)", a);
      break;
    }
    if (i + 1 >= argc) rc = ef_error_set(ctx, EF_ERR_INPUT, "generate: %s needs a value", a);
    else *slot = argv[++i];
  }
  ef_model_id model_id = EF_MODEL_M1;
  ef_event_kind kind = EF_KIND_DATA;
  unsigned long long n = 0;
  if (rc == EF_OK) {
    if (!model_s || !kind_s || !n_s || !outp)
      rc = ef_error_set(ctx, EF_ERR_INPUT,
                        "generate: --model, --kind, -n and -o are required (see --help)");
    else if (ef_model_parse(model_s, &model_id) != 0)
      rc = ef_error_set(ctx, EF_ERR_INPUT, "generate: --model '%s' (allowed: M1, PS, M2)",
                        model_s);
    else if (strcmp(kind_s, "data") && strcmp(kind_s, "mc"))
      rc = ef_error_set(ctx, EF_ERR_INPUT, "generate: --kind '%s' (allowed: data, mc)", kind_s);
    else {
      kind = strcmp(kind_s, "mc") ? EF_KIND_DATA : EF_KIND_MC;
      char *end = NULL;
      errno = 0;
      n = strtoull(n_s, &end, 10);
      if (*n_s == '-' || !*n_s || *end || errno || n < 1 || n > 1000000000ull)
        rc = ef_error_set(ctx, EF_ERR_INPUT,
                          "generate: -n '%s' (allowed: an integer in [1, 1e9])", n_s);
    }
  }
  char seed_set[64];
  if (rc == EF_OK && seed_s) {
    snprintf(seed_set, sizeof seed_set, "seed=%s", seed_s);
    sets[n_sets++] = seed_set;
  }
  if (rc == EF_OK) rc = ef_cli_check_output(ctx, outp);
  ef_config cfg = {0};
  ef_detector *det = NULL;
  ef_events ev = {0};
  if (rc == EF_OK) rc = ef_cli_load_config(ctx, &cfg, cfgp, sets, n_sets);
  if (rc == EF_OK && !cfgp && !seed_s) cfg.seed = 1;
  double t0 = ef_cli_now(), t_table = 0.0, t_gen = 0.0;
  if (rc == EF_OK) rc = ef_detector_create(ctx, &det, &cfg.physics, &cfg.detector);
  t_table = ef_cli_now() - t0;
  if (rc == EF_OK) {
    ef_model model;
    ef_model_init(&model, model_id, &cfg.physics);
    ef_rng r;
    ef_rng_init(&r, cfg.seed, EF_RNG_GEN_FILE, (uint32_t)(2 * model_id + kind));
    progress_state ps = {ctx, ef_cli_now(), ef_cli_now(), quiet};
    rc = ef_generate(ctx, det, &model, &r, (size_t)n, kind, 0, progress, &ps, &ev);
    t_gen = ef_cli_now() - ps.t0;
    ev.seed = cfg.seed;
    ev.has_seed = 1;
  }
  if (rc == EF_OK) rc = ef_events_write(ctx, &ev, outp);
  if (rc == EF_OK) {
    printf("%s %s events, beam %.4g GeV, seed %llu -> %s\n", ef_model_name(model_id), kind_s,
           cfg.physics.beam_energy, (unsigned long long)cfg.seed, outp);
    ef_cli_print_topology_table(stdout, &ev);
    printf("time: pi0 table %.2f s, generation %.2f s (%.0f events/s), total %.2f s\n", t_table,
           t_gen, (double)n / (t_gen + 1e-12), ef_cli_now() - t0);
  }
  ef_events_free(&ev);
  ef_detector_destroy(det);
  ef_config_free(&cfg);
  free(sets);
  return ef_cli_fail(ctx, rc);
}
