/* ensfold status FILE.h5: progress of a running (or interrupted) campaign,
 * read from FILE.h5.journal without disturbing the run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "ensfold/journal.h"

typedef struct {
  uint32_t n;
  unsigned char *done;   /* (n) 1 ok, 2 failed */
  int32_t *running;      /* (n) rank, or -1 */
} scan_state;

static void visit(void *arg, const ef_journal_record *rec, const double *result) {
  (void)result;
  scan_state *s = arg;
  if (!s->done) return;
  if (rec->kind == EF_JOURNAL_STARTED) {
    s->running[rec->unit] = rec->rank;
  } else {
    s->running[rec->unit] = -1;
    s->done[rec->unit] = rec->status == EF_OK ? 1 : 2;
  }
}

static void count_units(void *arg, const ef_journal_record *rec, const double *result) {
  (void)arg, (void)rec, (void)result;
}

/* A campaign that has finished has its result and no journal. */
static int complete(const char *result, const char *jpath) {
  struct stat st;
  if (stat(jpath, &st) == 0 || stat(result, &st) != 0) return 0;
  printf("%s: complete (no journal); see 'ensfold summary %s'\n", result, result);
  return 1;
}

/* A journal read while a run starts or ends: the run removes it when it has
 * written the result (the campaign finished meanwhile), and a starting run
 * creates it, locks it, then writes its header. Anything else is an error. */
static int unreadable(ef_ctx *ctx, int rc, const char *result, const char *jpath) {
  if (rc != EF_ERR_INPUT) return ef_cli_fail(ctx, rc); /* not the file's state */
  ef_journal_owner o;
  ef_journal_state js = ef_journal_probe(jpath, &o);
  if (js == EF_JOURNAL_LIVE || js == EF_JOURNAL_EMPTY)
    printf("%s: its journal has no header yet: a run is starting, or one stopped before "
           "writing it (then start again with --overwrite)\n", result);
  else if (js != EF_JOURNAL_ABSENT || !complete(result, jpath))
    return ef_cli_fail(ctx, rc);
  ef_error_clear(ctx);
  return 0;
}

int ef_cli_status(ef_ctx *ctx, int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    printf("usage: ensfold status FILE.h5\n\n"
           "Progress of the campaign writing FILE.h5, read from FILE.h5.journal (safe\n"
           "while the run goes on): units done, failed and running. A complete\n"
           "campaign has no journal: then use 'ensfold summary FILE.h5'.\n");
    return 0;
  }
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: ensfold status FILE.h5\n");
    return 2;
  }
  char jpath[EF_PATH_MAX + 16];
  snprintf(jpath, sizeof jpath, "%s.journal", argv[1]);
  struct stat st;
  if (stat(jpath, &st) != 0) {
    if (complete(argv[1], jpath)) return 0;
    return ef_cli_fail(ctx, ef_error_set(ctx, EF_ERR_INPUT,
                                         "%s: no such result and no journal %s", argv[1], jpath));
  }
  uint32_t n = 0, len = 0;
  int rc = ef_journal_scan(ctx, jpath, &n, &len, count_units, NULL);
  if (rc != EF_OK) return unreadable(ctx, rc, argv[1], jpath);
  scan_state s = {n, calloc(n + 1, 1), malloc((n + 1) * sizeof(int32_t))};
  if (!s.done || !s.running) {
    free(s.done);
    free(s.running);
    return ef_cli_fail(ctx, ef_error_set(ctx, EF_ERR_NOMEM, "out of memory"));
  }
  for (uint32_t u = 0; u < n; u++) s.running[u] = -1;
  rc = ef_journal_scan(ctx, jpath, &n, &len, visit, &s);
  if (rc == EF_OK) {
    uint32_t ok = 0, failed = 0, running = 0;
    for (uint32_t u = 0; u < n; u++) {
      ok += s.done[u] == 1;
      failed += s.done[u] == 2;
      running += s.running[u] >= 0;
    }
    ef_journal_owner o;
    ef_journal_state js = ef_journal_probe(jpath, &o);
    if (js == EF_JOURNAL_ABSENT && complete(argv[1], jpath)) goto out;
    printf("%s: %u of %u units done (%u failed), %u running or interrupted\n", argv[1],
           ok + failed, n, failed, running);
    if (js == EF_JOURNAL_LIVE)
      printf("run by host %s, pid %d: running now\n", o.host, (int)o.pid);
    else
      printf("last run by host %s, pid %d: not running (interrupted: finish it with "
             "'ensfold run ... --resume')\n", o.host, (int)o.pid);
    if (running) {
      printf("running:");
      uint32_t shown = 0;
      for (uint32_t u = 0; u < n && shown < 20; u++)
        if (s.running[u] >= 0) {
          printf(" %u(rank %d)", u, s.running[u]);
          shown++;
        }
      printf("%s\n", running > shown ? " ..." : "");
    }
  }
out:
  free(s.done);
  free(s.running);
  return rc == EF_OK ? 0 : unreadable(ctx, rc, argv[1], jpath);
}
