/* ensfold inspect FILE.h5: validate an event file, print its table. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: ensfold inspect FILE.h5\n\n"
          "Validate an event file as a campaign would (docs/formats.md) and print\n"
          "its attributes and topology table. A bad file is refused with the\n"
          "dataset and row of the first problem (exit code 2).\n");
}

int ef_cli_inspect(ef_ctx *ctx, int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    usage(stdout);
    return 0;
  }
  if (argc != 2 || argv[1][0] == '-') {
    usage(stderr);
    return 2;
  }
  ef_events ev;
  int rc = ef_events_read(ctx, argv[1], &ev);
  if (rc != EF_OK) return ef_cli_fail(ctx, rc);
  printf("%s: %s file, %s%s, ", argv[1], ef_event_kind_name(ev.kind),
         ev.model[0] ? "model " : "user file (no generator model)", ev.model);
  if (isfinite(ev.beam_energy)) printf("beam %.4g GeV", ev.beam_energy);
  else printf("beam energy not given");
  if (ev.has_seed) printf(", seed %llu", (unsigned long long)ev.seed);
  printf(", %zu events%s\n", ev.n, ev.weight ? " (weighted)" : "");
  ef_cli_print_topology_table(stdout, &ev);
  ef_events_free(&ev);
  return 0;
}
