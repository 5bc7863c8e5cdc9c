/* ensfold summary FILE.h5 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ensfold/output.h"

int ef_cli_summary(ef_ctx *ctx, int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    printf("usage: ensfold summary FILE.h5\n\n"
           "Print the group table of a campaign result file: method, fill model,\n"
           "replicas, chi2/ndf of the group mean against the truth in measured and in\n"
           "unmeasured bins, the +-1 sigma coverage (pseudo-data only) and the mean\n"
           "wall time per unit; then, where the file has the exact efficiency maps\n"
           "(/truth/efficiency), the efficiency closure of each group: largest and\n"
           "mean |P(T | bin) - exact| and the cells off by more than 0.03, for\n"
           "replica 0 and for replicas 1..R (docs/formats.md).\n");
    return 0;
  }
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: ensfold summary FILE.h5\n");
    return 2;
  }
  return ef_cli_fail(ctx, ef_output_summary(ctx, argv[1], stdout));
}
