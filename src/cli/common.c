/* Helpers shared by the subcommands. */
#include "cli.h"

int ef_cli_load_config(ef_ctx *ctx, ef_config *cfg, const char *path,
                       char **sets, int n_sets) {
  int rc = path ? ef_config_load(ctx, cfg, path) : ef_config_defaults(ctx, cfg);
  if (rc == EF_OK) rc = ef_config_set_all(ctx, cfg, sets, n_sets);
  return rc;
}

#include <math.h>
#include <time.h>

#include "ensfold/generator.h"

double ef_cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A space other than pi0: its observables, then one row per category. */
static void print_space(FILE *out, const ef_space *sp) {
  fprintf(out, "observables:");
  for (int d = 0; d < sp->dim; d++) {
    char what[96];
    ef_axis_describe(&sp->axis[d], what, sizeof what);
    fprintf(out, "%s %s (%s)", d ? "," : "", what, ef_axis_kind_name(sp->axis[d].kind));
  }
  fputc('\n', out);
}

void ef_cli_print_topology_table(FILE *out, const ef_events *ev) {
  const ef_space *sp = &ev->space;
  int K = sp->n_cat, pi0 = ef_space_is_pi0(sp);
  double counts[EF_SPACE_MAX_CAT], total = 0.0, mean[EF_SPACE_MAX_CAT] = {0}, mixed = 0.0;
  ef_events_topology_counts(ev, counts);
  for (int k = 0; k < K; k++) total += counts[k];
  if (ev->prob) ef_events_prob_summary(ev, mean, &mixed);
  static const char *what[4] = {"nothing seen", "pi0 only", "proton only", "both"};
  if (!pi0) print_space(out, sp);
  fprintf(out, "%-9s %-13s %12s %9s%s\n", pi0 ? "topology" : "category", "",
          ev->weight ? "weighted" : "events", "fraction", ev->prob ? "  mean P(T|v)" : "");
  for (int k = 0; k < K; k++) {
    fprintf(out, "%-9s %-13s %12.0f %9.4f", sp->cat[k].name,
            pi0 ? what[k] : sp->cat[k].blind ? "blind" : "seen", counts[k],
            total > 0 ? counts[k] / total : 0.0);
    if (ev->prob) fprintf(out, "  %11.4f", mean[k]);
    fputc('\n', out);
  }
  fprintf(out, "%-23s %12.0f\n", "total", total);
  if (ev->prob)
    fprintf(out, "mixed events (probability vector not one-hot): %.4f\n", mixed);
}

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ef_cli_check_output(ef_ctx *ctx, const char *path) {
  struct stat st;
  if (!*path) return ef_error_set(ctx, EF_ERR_INPUT, "output path is empty");
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: is a directory; give a file name", path);
  char *dir = strdup(path);
  if (!dir) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  char *slash = strrchr(dir, '/');
  const char *d = ".";
  if (slash == dir) d = "/";
  else if (slash) {
    *slash = '\0';
    d = dir;
  }
  int rc = EF_OK;
  if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: directory '%s' does not exist", path, d);
  else if (access(d, W_OK) != 0)
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: directory '%s' is not writable: %s", path, d,
                      strerror(errno));
  free(dir);
  return rc;
}
