/* ensfold generate --model M1|PS|M2 --kind data|mc -n N -o FILE.h5 ... */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "ensfold/process.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: ensfold generate --model MODEL --kind data|mc -n N -o FILE.h5\n"
          "                        [--config CONFIG] [--set KEY=VALUE ...] [--seed S]\n"
          "                        [--quiet]\n\n"
          "Generate N events of the configured process (the `process` key) from one\n"
          "of its models through its detector and write an event file\n"
          "(docs/formats.md). pi0 (the default): gamma p -> pi0 p through the\n"
          "CLAS-like detector, models M1, PS, M2; gauss: D Gaussian observables\n"
          "(the gauss.* keys), models data, mc, alt. MC files also hold the true\n"
          "vertex and the exact category probabilities.\n"
          "Settings come from CONFIG (docs/config.md) and --set; the seed from\n"
          "--seed, else the config's seed, else 1.\n"
          "Prints the category table on stdout. An existing FILE is replaced only\n"
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

/* The command line of `ensfold generate`. */
typedef struct {
  const char *model_s, *kind_s, *n_s, *outp, *cfgp, *seed_s;
  int quiet, help;
  char **sets; /* (argc + 1) --set assignments, then seed=... */
  int n_sets;
  int model; /* slot of the process's model named --model */
  ef_event_kind kind;
  unsigned long long n;
  char seed_set[64];
} gen_args;

static int parse_args(ef_ctx *ctx, int argc, char **argv, gen_args *g) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      g->help = 1;
      return EF_OK;
    } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
      g->quiet = 1;
      continue;
    } else if (!strcmp(a, "--model")) slot = &g->model_s;
    else if (!strcmp(a, "--kind")) slot = &g->kind_s;
    else if (!strcmp(a, "-n")) slot = &g->n_s;
    else if (!strcmp(a, "-o") || !strcmp(a, "--output")) slot = &g->outp;
    else if (!strcmp(a, "--config")) slot = &g->cfgp;
    else if (!strcmp(a, "--seed")) slot = &g->seed_s;
    else if (!strcmp(a, "--set")) {
      if (i + 1 >= argc) return ef_error_set(ctx, EF_ERR_INPUT, "--set needs KEY=VALUE");
      g->sets[g->n_sets++] = argv[++i];
      continue;
    } else {
      return ef_error_set(ctx, EF_ERR_INPUT, "generate: unknown argument '%s' (see --help)", a);
    }
    if (i + 1 >= argc) return ef_error_set(ctx, EF_ERR_INPUT, "generate: %s needs a value", a);
    *slot = argv[++i];
  }
  return EF_OK;
}

/* The values: model, kind, event count, and the seed as a --set. */
static int check_args(ef_ctx *ctx, gen_args *g) {
  if (!g->model_s || !g->kind_s || !g->n_s || !g->outp)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "generate: --model, --kind, -n and -o are required (see --help)");
  if (strcmp(g->kind_s, "data") && strcmp(g->kind_s, "mc"))
    return ef_error_set(ctx, EF_ERR_INPUT, "generate: --kind '%s' (allowed: data, mc)",
                        g->kind_s);
  g->kind = strcmp(g->kind_s, "mc") ? EF_KIND_DATA : EF_KIND_MC;
  char *end = NULL;
  errno = 0;
  g->n = strtoull(g->n_s, &end, 10);
  if (*g->n_s == '-' || !*g->n_s || *end || errno || g->n < 1 || g->n > 1000000000ull)
    return ef_error_set(ctx, EF_ERR_INPUT, "generate: -n '%s' (allowed: an integer in [1, 1e9])",
                        g->n_s);
  if (g->seed_s) {
    snprintf(g->seed_set, sizeof g->seed_set, "seed=%s", g->seed_s);
    g->sets[g->n_sets++] = g->seed_set;
  }
  return EF_OK;
}

/* --model as a slot of the configured process (case does not matter). */
static int model_slot(ef_ctx *ctx, gen_args *g, const ef_config *cfg) {
  char names[128] = "";
  size_t u = 0;
  for (int j = 0; ef_process_kind_model_name(cfg->process, j); j++) {
    const char *name = ef_process_kind_model_name(cfg->process, j);
    if (!strcasecmp(name, g->model_s)) {
      g->model = j;
      return EF_OK;
    }
    if (u < sizeof names) u += (size_t)snprintf(names + u, sizeof names - u, "%s%s", j ? ", " : "", name);
  }
  return ef_error_set(ctx, EF_ERR_INPUT, "generate: --model '%s' (process %s allows: %s)",
                      g->model_s, ef_process_kind_name(cfg->process), names);
}

/* Generate and write the events, then print what was written. */
static int generate(ef_ctx *ctx, const gen_args *g, ef_config *cfg) {
  ef_process *proc = NULL;
  ef_events ev = {0};
  double t0 = ef_cli_now(), t_gen = 0.0;
  int rc = ef_process_create(ctx, &proc, cfg, NULL);
  if (rc == EF_OK) rc = ef_process_need_detector(ctx, proc);
  double t_table = ef_cli_now() - t0;
  if (rc == EF_OK) {
    ef_rng r;
    ef_rng_init(&r, cfg->seed, EF_RNG_GEN_FILE, (uint32_t)(2 * g->model + g->kind));
    progress_state ps = {ctx, ef_cli_now(), ef_cli_now(), g->quiet};
    rc = ef_process_generate(ctx, proc, g->model, &r, (size_t)g->n, g->kind, 0, progress,
                             &ps, &ev);
    t_gen = ef_cli_now() - ps.t0;
    ev.seed = cfg->seed;
    ev.has_seed = 1;
  }
  if (rc == EF_OK) rc = ef_events_write(ctx, &ev, g->outp);
  if (rc == EF_OK) {
    if (cfg->process == EF_PROCESS_PI0)
      printf("%s %s events, beam %.4g GeV, seed %llu -> %s\n",
             ef_process_model_name(proc, g->model), g->kind_s, cfg->physics.beam_energy,
             (unsigned long long)cfg->seed, g->outp);
    else
      printf("%s %s %s events, seed %llu -> %s\n", ef_process_name(proc),
             ef_process_model_name(proc, g->model), g->kind_s, (unsigned long long)cfg->seed,
             g->outp);
    ef_cli_print_topology_table(stdout, &ev);
    printf("time: %s %.2f s, generation %.2f s (%.0f events/s), total %.2f s\n",
           cfg->process == EF_PROCESS_PI0 ? "pi0 table" : "detector", t_table,
           t_gen, (double)g->n / (t_gen + 1e-12), ef_cli_now() - t0);
  }
  ef_events_free(&ev);
  ef_process_destroy(proc);
  return rc;
}

int ef_cli_generate(ef_ctx *ctx, int argc, char **argv) {
  gen_args g = {.model = 0, .kind = EF_KIND_DATA};
  g.sets = calloc((size_t)argc + 1, sizeof *g.sets);
  if (!g.sets) return ef_cli_fail(ctx, ef_error_set(ctx, EF_ERR_NOMEM, "out of memory"));
  int rc = parse_args(ctx, argc, argv, &g);
  if (rc == EF_OK && g.help) {
    usage(stdout);
    free(g.sets);
    return 0;
  }
  if (rc == EF_OK) rc = check_args(ctx, &g);
  if (rc == EF_OK) rc = ef_cli_check_output(ctx, g.outp);
  ef_config cfg = {0};
  if (rc == EF_OK) rc = ef_cli_load_config(ctx, &cfg, g.cfgp, g.sets, g.n_sets);
  if (rc == EF_OK && !g.cfgp && !g.seed_s) cfg.seed = 1;
  if (rc == EF_OK) rc = model_slot(ctx, &g, &cfg);
  if (rc == EF_OK) rc = generate(ctx, &g, &cfg);
  ef_config_free(&cfg);
  free(g.sets);
  return ef_cli_fail(ctx, rc);
}
