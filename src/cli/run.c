/* mpirun -n N ensfold run CONFIG [-o FILE.h5] [--resume] [--overwrite] ... */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ensfold/journal.h"
#include "ensfold/output.h"
#include "ensfold/scheduler.h"
#include "ensfold/unit.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: mpirun -n N ensfold run CONFIG [-o FILE.h5] [--resume] [--overwrite]\n"
          "                               [--set KEY=VALUE ...] [--quiet]\n"
          "                               [--stall-warn SECONDS] [--stall-stop SECONDS]\n\n"
          "Run an unfolding campaign: every (method, fill model, bootstrap replica)\n"
          "unit of CONFIG, spread over the MPI ranks (rank 0 coordinates and works),\n"
          "into one HDF5 result file (docs/formats.md). Finished units go to\n"
          "FILE.h5.journal as they come in: after a crash or a kill, rerun with\n"
          "--resume to redo only the unfinished units; the result is the same bits.\n"
          "  -o FILE       result file (default: the config's 'output')\n"
          "  --resume      continue from FILE.h5.journal\n"
          "  --overwrite   replace an existing FILE (and discard a journal)\n"
          "  --set K=V     override a config key (repeatable)\n"
          "  --quiet       no progress or info lines on stderr (warnings and errors stay)\n"
          "  --stall-warn S  warn when a unit has run past max(S, 10 x the longest unit\n"
          "                so far), naming the unit, its rank and host (default 600 s)\n"
          "  --stall-stop S  past max(S, 30 x the longest unit so far), stop the job\n"
          "                (exit 3) naming the units in flight; --resume reruns them\n"
          "                (default 3600 s; 0 = never; --stall-warn 0: no warnings).\n"
          "                Until a unit has finished only S counts: the defaults sit\n"
          "                far above the longest units measured (GAN: 7-40 s) and far\n"
          "                below a lost allocation. Not config keys: raise and --resume\n"
          "Exit codes: 0 ok, 1 some units failed, 2 bad input, 3 internal error.\n");
}

typedef struct {
  ef_ctx *ctx;
  const ef_config *cfg;
  const ef_plan *plan;
  const ef_inputs *in;
  ef_unit_ws *ws;
  long delay_ms;        /* test hook ENSFOLD_TEST_UNIT_DELAY_MS: slow every unit */
  const char *nan_units; /* test hook ENSFOLD_TEST_NAN_UNITS="3,17": NaN on a first try */
  size_t result_len;     /* doubles per result row: ef_unit_result_len */
} work_state;

#define MAX_ATTEMPTS 3

/* Is unit listed in the comma-separated hook list? */
static int listed(const char *list, int32_t unit) {
  for (const char *p = list; p && *p;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p) return 0;
    if (v == unit) return 1;
    p = *end == ',' ? end + 1 : NULL;
  }
  return 0;
}

/* A unit whose result is not finite (a training that diverged) is tried
 * again, up to MAX_ATTEMPTS; the tries are recorded in /units/attempts. */
static int work(void *arg, int32_t unit, double *result, int *attempts) {
  work_state *w = arg;
  if (w->delay_ms > 0) {
    struct timespec d = {w->delay_ms / 1000, (w->delay_ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
  }
  int rc = EF_OK;
  for (int a = 0; a < MAX_ATTEMPTS; a++) {
    *attempts = a + 1;
    rc = ef_unit_run(w->ctx, w->cfg, w->in, ef_plan_unit(w->plan, (size_t)unit), a, w->ws,
                     result);
    if (rc == EF_OK && a == 0 && listed(w->nan_units, unit)) result[0] = NAN;
    if (rc != EF_OK && rc != EF_ERR_NUMERIC) return rc;
    size_t bad = 0;
    for (size_t i = 0; rc == EF_OK && i < w->result_len; i++) bad += !isfinite(result[i]);
    if (rc == EF_OK && bad == 0) return EF_OK;
    if (rc == EF_OK)
      rc = ef_error_set(w->ctx, EF_ERR_NUMERIC, "unit %d: %zu non-finite values in the result",
                        unit, bad);
    ef_log(w->ctx, EF_LOG_WARN, "unit %d, try %d of %d: %s%s", unit, a + 1, MAX_ATTEMPTS,
           ef_error_message(w->ctx), a + 1 < MAX_ATTEMPTS ? "; trying again" : "");
  }
  return rc;
}

typedef struct {
  size_t row;      /* doubles per unit result: ef_unit_result_len (unit.h has the layout) */
  double *results; /* (n_units, row) */
  int32_t *status, *rank, *attempts;
  double *wall;
  unsigned char *skip;
  int32_t *in_flight; /* (n_units) rank a unit was handed to with no result yet, or -1 */
  ef_journal *journal;
  size_t failed;
} collect_state;

static void store(collect_state *c, int32_t unit, int status, double wall, int rank,
                  int attempts, const double *result) {
  double *row = c->results + (size_t)unit * c->row;
  if (status == EF_OK) memcpy(row, result, c->row * sizeof *row);
  else
    for (size_t i = 0; i < c->row; i++) row[i] = NAN;
  c->status[unit] = status;
  c->wall[unit] = wall;
  c->rank[unit] = rank;
  c->attempts[unit] = attempts;
}

static void visit(void *arg, const ef_journal_record *rec, const double *result) {
  collect_state *c = arg;
  if (rec->kind == EF_JOURNAL_STARTED) {
    c->in_flight[rec->unit] = rec->rank;
    return;
  }
  c->in_flight[rec->unit] = -1;
  if (rec->status != EF_OK) return; /* failed units are tried again on resume */
  store(c, rec->unit, rec->status, rec->wall_s, rec->rank, rec->attempts, result);
  c->skip[rec->unit] = 1;
}

/* When the job is stopped by a signal (mpirun sends SIGTERM to every rank
 * when one rank dies; a scheduler does at the time limit), rank 0 says which
 * units were running before it goes. The handler only reads this table and
 * calls write(2). Process-wide by nature: signals are. */
static struct {
  volatile int32_t *in_flight; /* collect_state.in_flight */
  size_t n;
} g_running;

static char *put_num(char *p, long v) {
  char tmp[24];
  int k = 0;
  if (v < 0) { *p++ = '-'; v = -v; }
  do tmp[k++] = (char)('0' + v % 10); while ((v /= 10) && k < 23);
  while (k) *p++ = tmp[--k];
  return p;
}

static void on_stop_signal(int sig) {
  static char msg[4096];
  char *p = msg, *end = msg + sizeof msg - 64;
  static const char head[] = "ensfold[r0] error: stopped by signal ";
  memcpy(p, head, sizeof head - 1);
  p += sizeof head - 1;
  p = put_num(p, sig);
  static const char mid[] = " while these units were running:";
  memcpy(p, mid, sizeof mid - 1);
  p += sizeof mid - 1;
  int any = 0;
  for (size_t u = 0; u < g_running.n && p < end; u++) {
    int32_t r = g_running.in_flight[u];
    if (r < 0) continue;
    *p++ = ' ';
    p = put_num(p, (long)u);
    memcpy(p, " (rank ", 7);
    p = put_num(p + 7, r);
    *p++ = ')';
    any = 1;
  }
  if (!any) { memcpy(p, " none", 5); p += 5; }
  static const char tail[] = "; finished units are in the journal: rerun with --resume\n";
  memcpy(p, tail, sizeof tail - 1);
  p += sizeof tail - 1;
  ssize_t w = write(STDERR_FILENO, msg, (size_t)(p - msg));
  (void)w;
  signal(sig, SIG_DFL);
  raise(sig);
}

static int on_start(ef_ctx *ctx, void *arg, int32_t unit, int rank) {
  collect_state *c = arg;
  c->in_flight[unit] = rank;
  ef_journal_record rec = {EF_JOURNAL_STARTED, unit, EF_OK, rank, 0, 0.0};
  return ef_journal_append(ctx, c->journal, &rec, NULL);
}

static int on_stall_stop(ef_ctx *ctx, void *arg) {
  return ef_journal_sync(ctx, ((collect_state *)arg)->journal);
}

static int on_result(ef_ctx *ctx, void *arg, int32_t unit, int status, double wall, int rank,
                     int attempts, const double *result) {
  collect_state *c = arg;
  c->in_flight[unit] = -1;
  store(c, unit, status, wall, rank, attempts, result);
  if (status != EF_OK) {
    c->failed++;
    ef_log(ctx, EF_LOG_WARN, "unit %d (rank %d) failed after %d tries: %s", unit, rank, attempts,
           ef_status_text(status));
  } else if (attempts > 1) {
    ef_log(ctx, EF_LOG_WARN, "unit %d (rank %d) succeeded on try %d", unit, rank, attempts);
  }
  ef_journal_record rec = {EF_JOURNAL_DONE, unit, status, rank, attempts, wall};
  return ef_journal_append(ctx, c->journal, &rec, c->results + (size_t)unit * c->row);
}

/* Rank 0 reads the config text; every rank parses the same text. */
static int load_config(ef_ctx *ctx, const char *path, char **sets, int n_sets, ef_config *cfg) {
  MPI_Comm comm = ef_ctx_comm(ctx);
  int rank = ef_ctx_rank(ctx);
  long long len = -1;
  char *text = NULL;
  char msg[1024] = "";
  if (rank == 0) {
    /* O_NONBLOCK: a FIFO without a writer must not hang the open */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f = NULL;
    if (fd >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0) f = fdopen(fd, "rb");
    if (!f && fd >= 0) close(fd);
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
      snprintf(msg, sizeof msg, "%s: cannot read config: %s", path,
               f ? "is a directory" : strerror(errno));
    } else if (st.st_size > (64 << 20)) {
      snprintf(msg, sizeof msg, "%s: config larger than 64 MiB", path);
    } else {
      text = malloc((size_t)st.st_size + 1);
      if (text && fread(text, 1, (size_t)st.st_size, f) == (size_t)st.st_size) {
        text[st.st_size] = '\0';
        len = st.st_size;
      } else {
        snprintf(msg, sizeof msg, "%s: cannot read config", path);
      }
    }
    if (f) fclose(f);
  }
  EF_CHECK_MPI(ctx, MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, comm));
  if (len < 0) {
    EF_CHECK_MPI(ctx, MPI_Bcast(msg, sizeof msg, MPI_CHAR, 0, comm));
    free(text);
    return ef_error_set(ctx, EF_ERR_INPUT, "%s", msg);
  }
  if (rank != 0) text = malloc((size_t)len + 1);
  if (!text) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory"); /* aborts at the top */
  EF_CHECK_MPI(ctx, MPI_Bcast(text, (int)len + 1, MPI_CHAR, 0, comm));
  if (strlen(text) != (size_t)len) {
    free(text);
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: config contains a NUL byte", path);
  }
  int rc = ef_config_load_string(ctx, cfg, text, path);
  free(text);
  for (int i = 0; rc == EF_OK && i < n_sets; i++) rc = ef_config_set(ctx, cfg, sets[i]);
  return rc;
}

/* Rank 0 decides what to do with an existing result / journal. */
static int check_paths(ef_ctx *ctx, const char *out, const char *journal, int resume,
                       int overwrite, int *nothing_to_do) {
  *nothing_to_do = 0;
  EF_CHECK(ef_cli_check_output(ctx, out));
  struct stat st;
  int have_out = stat(out, &st) == 0, have_journal = stat(journal, &st) == 0;
  if (resume && overwrite)
    return ef_error_set(ctx, EF_ERR_INPUT, "--resume and --overwrite contradict each other");
  if (resume && !have_journal && have_out) {
    *nothing_to_do = 1;
    return EF_OK;
  }
  if (!resume && have_journal && !overwrite)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: a journal of an interrupted run exists; rerun with --resume to "
                        "finish it, or --overwrite to start again", journal);
  if (!resume && have_out && !overwrite)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s exists; choose another -o, or --overwrite to replace it", out);
  /* --overwrite removes an old journal only once the inputs are good (just
   * before the new journal is opened): bad input must leave files untouched */
  return EF_OK;
}

/* Agree on rank 0's status (and message) across the ranks. */
static int agree(ef_ctx *ctx, int rc) {
  MPI_Comm comm = ef_ctx_comm(ctx);
  int r0 = rc;
  EF_CHECK_MPI(ctx, MPI_Bcast(&r0, 1, MPI_INT, 0, comm));
  if (r0 == EF_OK) return EF_OK;
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", ef_ctx_rank(ctx) == 0 ? ef_error_message(ctx) : "");
  EF_CHECK_MPI(ctx, MPI_Bcast(msg, sizeof msg, MPI_CHAR, 0, comm));
  return ef_error_set(ctx, r0, "%s", msg);
}

static uint64_t config_hash(const char *text) {
  const char *body = strchr(text, '\n'); /* skip the "source:" comment line */
  body = body ? body + 1 : text;
  return ef_hash64(body, strlen(body));
}

int ef_cli_run(ef_ctx *ctx, int argc, char **argv) {
  const char *cfgp = NULL, *outp = NULL;
  int resume = 0, overwrite = 0, quiet = 0, rc = EF_OK;
  double stall_warn = 600.0, stall_stop = 3600.0; /* s: --help says why */
  char **sets = calloc((size_t)argc + 1, sizeof *sets);
  int n_sets = 0;
  if (!sets) return ef_cli_fail(ctx, ef_error_set(ctx, EF_ERR_NOMEM, "out of memory"));
  for (int i = 1; i < argc && rc == EF_OK; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      if (ef_ctx_rank(ctx) == 0) usage(stdout);
      free(sets);
      return 0;
    } else if (!strcmp(a, "--resume")) resume = 1;
    else if (!strcmp(a, "--overwrite")) overwrite = 1;
    else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
      quiet = 1;
      ef_ctx_set_log_level(ctx, EF_LOG_WARN);
    }
    else if (!strcmp(a, "--stall-warn") || !strcmp(a, "--stall-stop")) {
      char *end = NULL;
      double v = i + 1 < argc ? strtod(argv[i + 1], &end) : -1.0;
      if (i + 1 >= argc || end == argv[i + 1] || *end || !(v >= 0.0 && v <= 1e9))
        rc = ef_error_set(ctx, EF_ERR_INPUT, "run: %s needs a number of seconds >= 0, got '%s'",
                          a, i + 1 < argc ? argv[i + 1] : "");
      else *(a[8] == 'w' ? &stall_warn : &stall_stop) = v;
      i++;
    }
    else if (!strcmp(a, "-o") || !strcmp(a, "--set")) {
      if (i + 1 >= argc) rc = ef_error_set(ctx, EF_ERR_INPUT, "run: %s needs a value", a);
      else if (a[1] == 'o') outp = argv[++i];
      else sets[n_sets++] = argv[++i];
    } else if (a[0] == '-' && a[1]) {
      rc = ef_error_set(ctx, EF_ERR_INPUT, "run: unknown option '%s' (see --help)", a);
    } else if (cfgp) {
      rc = ef_error_set(ctx, EF_ERR_INPUT, "run: one CONFIG only, got '%s' and '%s'", cfgp, a);
    } else {
      cfgp = a;
    }
  }
  if (rc == EF_OK && !cfgp) rc = ef_error_set(ctx, EF_ERR_INPUT, "run: missing CONFIG (see --help)");
  ef_config cfg = {0};
  ef_plan *plan = NULL;
  ef_inputs *in = NULL;
  ef_unit_ws *ws = NULL;
  ef_journal *journal = NULL;
  char *text = NULL;
  collect_state col = {0};
  int rank = ef_ctx_rank(ctx), nothing = 0;
  char out[EF_PATH_MAX], jpath[EF_PATH_MAX + 16];
  double t0 = ef_cli_now();
  if (rc == EF_OK) rc = load_config(ctx, cfgp, sets, n_sets, &cfg);
  if (rc == EF_OK) {
    snprintf(out, sizeof out, "%s", outp ? outp : cfg.output);
    snprintf(jpath, sizeof jpath, "%s.journal", out);
    if (rank == 0) rc = check_paths(ctx, out, jpath, resume, overwrite, &nothing);
    rc = agree(ctx, rc);
    EF_CHECK_MPI(ctx, MPI_Bcast(&nothing, 1, MPI_INT, 0, ef_ctx_comm(ctx)));
  }
  if (rc == EF_OK && nothing) {
    ef_log(ctx, EF_LOG_INFO, "%s is complete (no journal): nothing to resume", out);
    goto done;
  }
  if (rc == EF_OK) rc = ef_config_dump(ctx, &cfg, &text);
  if (rc == EF_OK) rc = ef_plan_create(ctx, &plan, &cfg);
  if (rc == EF_OK)
    ef_log(ctx, EF_LOG_INFO, "campaign: %zu units (%d groups x %d replicas) on %d ranks -> %s",
           ef_plan_n_units(plan), ef_plan_n_groups(plan), ef_plan_n_replicas(plan),
           ef_ctx_size(ctx), out);
  if (rc == EF_OK) rc = ef_inputs_create(ctx, &in, &cfg);
  if (rc == EF_OK)
    ef_log(ctx, EF_LOG_INFO, "inputs ready in %.1f s: %zu data events, %zu MC events",
           ef_cli_now() - t0, ef_inputs_data(in)->n, ef_inputs_mc(in)->n);
  if (rc == EF_OK) rc = ef_unit_ws_create(ctx, &ws, &cfg, in);
  size_t nu = plan ? ef_plan_n_units(plan) : 0;
  if (rc == EF_OK && rank == 0) {
    col.row = ef_unit_result_len(in);
    col.results = malloc(nu * col.row * sizeof(double) + 1);
    col.status = malloc(nu * sizeof(int32_t) + 1);
    col.rank = malloc(nu * sizeof(int32_t) + 1);
    col.wall = malloc(nu * sizeof(double) + 1);
    col.attempts = malloc(nu * sizeof(int32_t) + 1);
    col.in_flight = malloc(nu * sizeof(int32_t) + 1);
    col.skip = calloc(nu + 1, 1);
    if (!col.results || !col.status || !col.rank || !col.wall || !col.skip || !col.attempts ||
        !col.in_flight) {
      rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for %zu unit results", nu);
    } else {
      for (size_t u = 0; u < nu * col.row; u++) col.results[u] = NAN;
      for (size_t u = 0; u < nu; u++) {
        col.status[u] = -1; /* not run */
        col.rank[u] = -1;
        col.wall[u] = 0.0;
        col.attempts[u] = 0;
        col.in_flight[u] = -1;
      }
      if (overwrite && unlink(jpath) != 0 && errno != ENOENT)
        rc = ef_error_set(ctx, EF_ERR_IO, "%s: cannot remove: %s", jpath, strerror(errno));
      if (rc == EF_OK)
        rc = ef_journal_open(ctx, &journal, jpath, config_hash(text), (uint32_t)nu,
                           (uint32_t)col.row, resume, visit, &col);
      col.journal = journal;
      if (rc == EF_OK && resume) {
        /* what the previous run was doing when it stopped */
        char list[512] = "";
        size_t k = 0, nf = 0, used = 0;
        for (size_t u = 0; u < nu; u++) {
          if (col.in_flight[u] < 0) continue;
          nf++;
          if (used + 32 < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%zu (rank %d)",
                                     nf > 1 ? ", " : "", u, col.in_flight[u]);
        }
        if (nf)
          ef_log(ctx, EF_LOG_WARN, "the previous run stopped while %zu unit(s) were running: %s%s; "
                 "they run again", nf, list, used + 32 >= sizeof list ? ", ..." : "");
        for (size_t u = 0; u < nu; u++) k += col.skip[u];
        if (k) ef_log(ctx, EF_LOG_INFO, "resuming: %zu of %zu units already done", k, nu);
        else ef_log(ctx, EF_LOG_INFO, "no finished units to resume: starting from the first");
      }
    }
  }
  if (plan) rc = agree(ctx, rc);
  if (rc == EF_OK) {
    const char *delay = getenv("ENSFOLD_TEST_UNIT_DELAY_MS");
    size_t row = ef_unit_result_len(in);
    work_state w = {ctx, &cfg, plan, in, ws, delay ? atol(delay) : 0,
                    getenv("ENSFOLD_TEST_NAN_UNITS"), row};
    ef_schedule s = {.skip = col.skip, .result_len = row, .work = work, .work_arg = &w,
                     .on_result = on_result, .result_arg = &col, .on_start = on_start,
                     .quiet = quiet, .wall_s = col.wall, .stall_warn_s = stall_warn,
                     .stall_stop_s = stall_stop, .on_stall_stop = on_stall_stop};
    if (rank == 0) {
      g_running.in_flight = col.in_flight;
      g_running.n = nu;
      signal(SIGTERM, on_stop_signal);
      signal(SIGINT, on_stop_signal);
    }
    rc = ef_scheduler_run(ctx, plan, &s);
    if (rank == 0) {
      signal(SIGTERM, SIG_DFL);
      signal(SIGINT, SIG_DFL);
    }
  }
  if (rc == EF_OK) {
    ef_output_data od = {.cfg = &cfg, .config_text = text, .plan = plan, .in = in,
                         .results = col.results, .result_len = ef_unit_result_len(in),
                         .status = col.status, .wall_s = col.wall, .rank = col.rank,
                         .attempts = col.attempts};
    rc = ef_output_write(ctx, out, &od);
  }
  if (rc == EF_OK && rank == 0) {
    ef_journal_close(journal);
    journal = NULL;
    if (unlink(jpath) != 0) ef_log(ctx, EF_LOG_WARN, "%s: cannot remove: %s", jpath, strerror(errno));
    ef_log(ctx, EF_LOG_INFO, "wrote %s in %.1f s%s", out, ef_cli_now() - t0,
           col.failed ? " (some units failed: see /units/status)" : "");
  }
  if (rc == EF_OK && ef_ctx_comm(ctx) != MPI_COMM_NULL) {
    /* peak resident memory, rank 0 and the largest over the ranks */
    struct rusage ru;
    long mine = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0, most = mine;
    MPI_Reduce(&mine, &most, 1, MPI_LONG, MPI_MAX, 0, ef_ctx_comm(ctx));
    ef_log(ctx, EF_LOG_INFO, "peak memory: rank 0 %.1f MiB, largest rank %.1f MiB",
           mine / 1024.0, most / 1024.0);
  }
done:;
  int failed = (int)col.failed;
  ef_journal_close(journal);
  ef_unit_ws_destroy(ws);
  ef_inputs_destroy(in);
  ef_plan_destroy(plan);
  ef_config_free(&cfg);
  free(text);
  free(col.results);
  free(col.status);
  free(col.rank);
  free(col.wall);
  free(col.attempts);
  free(col.in_flight);
  free(col.skip);
  free(sets);
  if (rc != EF_OK) {
    /* every rank holds the same message: report it once */
    if (rank != 0) return ef_status_exit_code(rc);
    return ef_cli_fail(ctx, rc);
  }
  if (ef_ctx_comm(ctx) != MPI_COMM_NULL)
    MPI_Bcast(&failed, 1, MPI_INT, 0, ef_ctx_comm(ctx));
  return failed ? 1 : 0;
}
