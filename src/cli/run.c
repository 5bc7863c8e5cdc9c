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
          "                               [--stall-warn SECONDS] [--stall-stop SECONDS]\n"
          "                               [--blas-threads N]\n\n"
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
          "                far above the longest units measured (7-40 s) and far\n"
          "                below a lost allocation. Not config keys: a run stopped for\n"
          "                a stall resumes with a larger S under the same identity.\n"
          "  --blas-threads N  OpenBLAS threads in each rank (default: OPENBLAS_NUM_THREADS\n"
          "                if set, else 1: ranks already fill the cores)\n"
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
 * again, up to MAX_ATTEMPTS, when a retry draws other random numbers (a
 * trained method; the NaN test hook stands for such a divergence); a
 * deterministic method's unit would fail the same way again, so it is not
 * retried. The tries are recorded in /units/attempts. */
static int work(void *arg, int32_t unit, double *result, int *attempts) {
  work_state *w = arg;
  if (w->delay_ms > 0) {
    struct timespec d = {w->delay_ms / 1000, (w->delay_ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
  }
  const ef_unit *u = ef_plan_unit(w->plan, (size_t)unit);
  int hook = listed(w->nan_units, unit);
  int tries = ef_unit_retry_differs(u) || hook ? MAX_ATTEMPTS : 1;
  int rc = EF_OK;
  for (int a = 0; a < tries; a++) {
    *attempts = a + 1;
    rc = ef_unit_run(w->ctx, w->cfg, w->in, u, a, w->ws, result);
    if (rc == EF_OK && a == 0 && hook) result[0] = NAN;
    if (rc != EF_OK && rc != EF_ERR_NUMERIC) return rc;
    size_t bad = 0, len = ef_unit_finite_len(u, w->in);
    for (size_t i = 0; rc == EF_OK && i < len; i++) bad += !isfinite(result[i]);
    if (rc == EF_OK && bad == 0) return EF_OK;
    if (rc == EF_OK)
      rc = ef_error_set(w->ctx, EF_ERR_NUMERIC, "unit %d: %zu non-finite values in the result",
                        unit, bad);
    ef_log(w->ctx, EF_LOG_WARN, "unit %d, try %d of %d: %s%s", unit, a + 1, tries,
           ef_error_message(w->ctx),
           a + 1 < tries ? "; trying again"
           : tries == 1 ? " (a deterministic method: not tried again)" : "");
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

/* Agree on rank 0's status (and message) across the ranks. */
static int agree(ef_ctx *ctx, int rc) {
  MPI_Comm comm = ef_ctx_comm(ctx);
  if (comm == MPI_COMM_NULL) return rc;
  int r0 = rc;
  EF_CHECK_MPI(ctx, MPI_Bcast(&r0, 1, MPI_INT, 0, comm));
  if (r0 == EF_OK) return EF_OK;
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", ef_ctx_rank(ctx) == 0 ? ef_error_message(ctx) : "");
  EF_CHECK_MPI(ctx, MPI_Bcast(msg, sizeof msg, MPI_CHAR, 0, comm));
  return ef_error_set(ctx, r0, "%s", msg);
}

/* Fail on every rank when any rank failed (its own message where it has
 * one). */
static int agree_all(ef_ctx *ctx, int rc) {
  int bad = rc != EF_OK, any = 0;
  EF_CHECK_MPI(ctx, MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, ef_ctx_comm(ctx)));
  if (!any || rc != EF_OK) return rc;
  return ef_error_set(ctx, EF_ERR_INTERNAL, "another rank failed (see its message)");
}

/* Rank 0 reads and checks the config (the file, then every --set); the
 * other ranks parse the resolved text it broadcasts (a config is read once,
 * and a huge one costs memory on rank 0 only). *text: that text, on every
 * rank. */
static int load_config(ef_ctx *ctx, const char *path, char **sets, int n_sets, ef_config *cfg,
                       char **text) {
  MPI_Comm comm = ef_ctx_comm(ctx);
  int rank = ef_ctx_rank(ctx), rc = EF_OK;
  long long len = -1;
  if (rank == 0) {
    rc = ef_cli_load_config(ctx, cfg, path, sets, n_sets);
    if (rc == EF_OK) rc = ef_config_dump(ctx, cfg, text);
    if (rc == EF_OK) len = (long long)strlen(*text);
  }
  if (comm == MPI_COMM_NULL) return rc;
  EF_CHECK_MPI(ctx, MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, comm));
  if (len < 0) return agree(ctx, rc == EF_OK ? EF_ERR_INTERNAL : rc);
  if (rank != 0) *text = malloc((size_t)len + 1);
  int bad = *text == NULL, any = 0;
  EF_CHECK_MPI(ctx, MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm));
  if (any) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the config text");
  EF_CHECK_MPI(ctx, MPI_Bcast(*text, (int)len + 1, MPI_CHAR, 0, comm));
  if (rank != 0) rc = ef_config_load_string(ctx, cfg, *text, path);
  return agree_all(ctx, rc);
}

/* Refuse an output (or its journal) that is one of the run's own inputs:
 * the config, the data or the MC file (the same inode, whatever the path). */
static int check_not_input(ef_ctx *ctx, const ef_config *cfg, const char *cfg_path,
                           const char *path) {
  struct stat out;
  if (stat(path, &out) != 0) return EF_OK;
  char data[2 * EF_PATH_MAX], mc[2 * EF_PATH_MAX];
  const struct {
    const char *path, *what;
    int used;
  } in[3] = {{cfg_path, "the config file", 1},
             {data, "the data file (data.file)", ef_inputs_source(cfg, 0, data, sizeof data)},
             {mc, "the MC file (mc.file)", ef_inputs_source(cfg, 1, mc, sizeof mc)}};
  for (int k = 0; k < 3; k++) {
    struct stat st;
    if (!in[k].used || stat(in[k].path, &st) != 0) continue;
    if (st.st_dev == out.st_dev && st.st_ino == out.st_ino)
      return ef_error_set(ctx, EF_ERR_INPUT,
                          "%s is %s '%s': a run never writes over its own inputs; choose "
                          "another -o", path, in[k].what, in[k].path);
  }
  return EF_OK;
}

typedef enum { PLAN_NEW, PLAN_RESUME, PLAN_CHECK_COMPLETE } run_mode;

/* Rank 0 decides what to do with an existing result and journal. */
static int check_paths(ef_ctx *ctx, const ef_config *cfg, const char *cfg_path, const char *out,
                       const char *journal, int resume, int overwrite, run_mode *mode) {
  *mode = resume ? PLAN_RESUME : PLAN_NEW;
  EF_CHECK(ef_cli_check_output(ctx, out));
  EF_CHECK(check_not_input(ctx, cfg, cfg_path, out));
  EF_CHECK(check_not_input(ctx, cfg, cfg_path, journal));
  if (resume && overwrite)
    return ef_error_set(ctx, EF_ERR_INPUT, "--resume and --overwrite contradict each other");
  ef_journal_owner o;
  ef_journal_state js = ef_journal_probe(journal, &o);
  struct stat st;
  int have_out = stat(out, &st) == 0;
  if (js == EF_JOURNAL_LIVE)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: a run is writing this result now (host %s, pid %d); wait for it to "
                        "finish (ensfold status %s) or choose another -o", out,
                        o.host[0] ? o.host : "?", (int)o.pid, out);
  if (js == EF_JOURNAL_FOREIGN && !overwrite && !resume) /* --resume: refused after the inputs */
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s is not a journal this ensfold can read; remove it, or --overwrite "
                        "to start again", journal);
  if (resume && js == EF_JOURNAL_ABSENT && have_out) *mode = PLAN_CHECK_COMPLETE;
  if (!resume && js == EF_JOURNAL_IDLE && !overwrite)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: a journal of an interrupted run exists (last taken by host %s, pid "
                        "%d, no longer running); rerun with --resume to finish it, or "
                        "--overwrite to discard it and start again", journal,
                        o.host[0] ? o.host : "?", (int)o.pid);
  if (!resume && have_out && !overwrite)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s exists; choose another -o, or --overwrite to replace it", out);
  /* --overwrite removes an old journal only once the inputs are good (just
   * before the new journal is opened): bad input must leave files untouched */
  return EF_OK;
}

/* --resume on a result with no journal: "nothing to do" only when the
 * result is of this very campaign (config and input events). */
static int check_complete(ef_ctx *ctx, const char *out, const ef_identity *id,
                          const char *const names[2]) {
  ef_identity have;
  char why[512];
  if (ef_output_identity(ctx, out, &have) != EF_OK) {
    snprintf(why, sizeof why, "%s", ef_error_message(ctx));
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "--resume: %s; it cannot be taken for the result of this campaign: "
                        "choose another -o, or --overwrite to replace it", why);
  }
  if (!ef_identity_same(&have, id, names[0], names[1], why, sizeof why))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "--resume: %s is a complete result of another campaign (not the same "
                        "as this request: %s); choose another -o, or --overwrite to replace it",
                        out, why);
  return EF_OK;
}

/* What the previous run was doing when it stopped, and how much is done. */
static void report_resume(ef_ctx *ctx, const collect_state *c, size_t nu) {
  char list[512] = "";
  size_t k = 0, nf = 0, used = 0;
  for (size_t u = 0; u < nu; u++) {
    if (c->in_flight[u] < 0) continue;
    nf++;
    if (used + 32 < sizeof list)
      used += (size_t)snprintf(list + used, sizeof list - used, "%s%zu (rank %d)",
                               nf > 1 ? ", " : "", u, c->in_flight[u]);
  }
  if (nf)
    ef_log(ctx, EF_LOG_WARN, "the previous run stopped while %zu unit(s) were running: %s%s; "
           "they run again", nf, list, used + 32 >= sizeof list ? ", ..." : "");
  for (size_t u = 0; u < nu; u++) k += c->skip[u];
  if (k) ef_log(ctx, EF_LOG_INFO, "resuming: %zu of %zu units already done", k, nu);
  else ef_log(ctx, EF_LOG_INFO, "no finished units to resume: starting from the first");
}

typedef struct {
  const char *cfgp, *outp;
  int resume, overwrite, quiet, help;
  double stall_warn, stall_stop; /* s: --help says why */
  int blas_threads;              /* --blas-threads, 0: not given */
  char **sets; /* (argc) the --set values, n_sets of them */
  int n_sets;
} run_opts;

static int parse_args(ef_ctx *ctx, int argc, char **argv, run_opts *o) {
  o->sets = calloc((size_t)argc + 1, sizeof *o->sets);
  if (!o->sets) return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) o->help = 1;
    else if (!strcmp(a, "--resume")) o->resume = 1;
    else if (!strcmp(a, "--overwrite")) o->overwrite = 1;
    else if (!strcmp(a, "--stall-warn") || !strcmp(a, "--stall-stop")) {
      char *end = NULL;
      double v = i + 1 < argc ? strtod(argv[i + 1], &end) : -1.0;
      if (i + 1 >= argc || end == argv[i + 1] || *end || !(v >= 0.0 && v <= 1e9))
        return ef_error_set(ctx, EF_ERR_INPUT, "run: %s needs a number of seconds >= 0, got '%s'",
                            a, i + 1 < argc ? argv[i + 1] : "");
      *(a[8] == 'w' ? &o->stall_warn : &o->stall_stop) = v;
      i++;
    }
    else if (!strcmp(a, "--blas-threads")) {
      char *end = NULL;
      long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
      if (i + 1 >= argc || end == argv[i + 1] || *end || v < 1 || v > 1024)
        return ef_error_set(ctx, EF_ERR_INPUT, "run: --blas-threads needs an integer in [1, "
                            "1024], got '%s'", i + 1 < argc ? argv[i + 1] : "");
      o->blas_threads = (int)v;
      i++;
    }
    else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
      o->quiet = 1;
      ef_ctx_set_log_level(ctx, EF_LOG_WARN);
    } else if (!strcmp(a, "-o") || !strcmp(a, "--set")) {
      if (i + 1 >= argc) return ef_error_set(ctx, EF_ERR_INPUT, "run: %s needs a value", a);
      if (a[1] == 'o') o->outp = argv[++i];
      else o->sets[o->n_sets++] = argv[++i];
    } else if (a[0] == '-' && a[1]) {
      return ef_error_set(ctx, EF_ERR_INPUT, "run: unknown option '%s' (see --help)", a);
    } else if (o->cfgp) {
      return ef_error_set(ctx, EF_ERR_INPUT, "run: one CONFIG only, got '%s' and '%s'", o->cfgp, a);
    } else {
      o->cfgp = a;
    }
  }
  if (!o->help && !o->cfgp) return ef_error_set(ctx, EF_ERR_INPUT, "run: missing CONFIG (see --help)");
  return EF_OK;
}

/* Everything a run holds, released by run_free. */
typedef struct {
  ef_config cfg;
  char *text; /* the resolved config, the same on every rank */
  ef_plan *plan;
  ef_inputs *in;
  ef_unit_ws *ws;
  ef_journal *journal;
  collect_state col;
  ef_identity id;                   /* rank 0 */
  char names[2][2 * EF_PATH_MAX + 64]; /* where the data and MC come from, for messages */
  const char *name_ptr[2];
  char out[EF_PATH_MAX], jpath[EF_PATH_MAX + 16];
  run_mode mode;
} run_state;

static void run_free(run_state *r) {
  ef_journal_close(r->journal);
  ef_unit_ws_destroy(r->ws);
  ef_inputs_destroy(r->in);
  ef_plan_destroy(r->plan);
  ef_config_free(&r->cfg);
  free(r->text);
  free(r->col.results);
  free(r->col.status);
  free(r->col.rank);
  free(r->col.wall);
  free(r->col.attempts);
  free(r->col.in_flight);
  free(r->col.skip);
}

/* Where a sample comes from, for the identity's messages. */
static void source_name(const ef_config *cfg, int mc, char *out, size_t len) {
  char path[2 * EF_PATH_MAX];
  const char *role = mc ? "mc" : "data";
  if (ef_inputs_source(cfg, mc, path, sizeof path))
    snprintf(out, len, "%s.file '%s'", role, path);
  else
    snprintf(out, len, "%s generated from the config: another ensfold version?", role);
}

/* Config, paths, plan, inputs, workspace; rank 0 also the identity. */
static int prepare(ef_ctx *ctx, const run_opts *o, run_state *r, double t0) {
  int rank = ef_ctx_rank(ctx);
  EF_CHECK(load_config(ctx, o->cfgp, o->sets, o->n_sets, &r->cfg, &r->text));
  EF_CHECK(ef_cli_blas_threads(ctx, o->blas_threads));
  snprintf(r->out, sizeof r->out, "%s", o->outp ? o->outp : r->cfg.output);
  snprintf(r->jpath, sizeof r->jpath, "%s.journal", r->out);
  int rc = EF_OK;
  if (rank == 0)
    rc = check_paths(ctx, &r->cfg, o->cfgp, r->out, r->jpath, o->resume, o->overwrite, &r->mode);
  EF_CHECK(agree(ctx, rc));
  int mode = (int)r->mode;
  if (ef_ctx_comm(ctx) != MPI_COMM_NULL)
    EF_CHECK_MPI(ctx, MPI_Bcast(&mode, 1, MPI_INT, 0, ef_ctx_comm(ctx)));
  r->mode = (run_mode)mode;
  EF_CHECK(ef_plan_create(ctx, &r->plan, &r->cfg));
  ef_log(ctx, EF_LOG_INFO, "campaign: %zu units (%d groups x %d replicas) on %d ranks -> %s",
         ef_plan_n_units(r->plan), ef_plan_n_groups(r->plan), ef_plan_n_replicas(r->plan),
         ef_ctx_size(ctx), r->out);
  if (rank == 0 && ef_plan_n_replicas(r->plan) - 1 < 2)
    ef_log(ctx, EF_LOG_WARN, "campaign.replicas is %d: a sigma needs at least 2 bootstrap "
           "replicas, so the result holds no statistics (no group mean, sigma, covariance, "
           "chi2 or coverage); the nominal unfolding is /units/hist of replica 0",
           ef_plan_n_replicas(r->plan) - 1);
  EF_CHECK(ef_inputs_create(ctx, &r->in, &r->cfg));
  ef_log(ctx, EF_LOG_INFO, "inputs ready in %.1f s: %zu data events, %zu MC events",
         ef_cli_now() - t0, ef_inputs_data(r->in)->n, ef_inputs_mc(r->in)->n);
  source_name(&r->cfg, 0, r->names[0], sizeof r->names[0]);
  source_name(&r->cfg, 1, r->names[1], sizeof r->names[1]);
  r->name_ptr[0] = r->names[0];
  r->name_ptr[1] = r->names[1];
  if (rank == 0) {
    double th = ef_cli_now();
    ef_identity_make(&r->id, r->text, ef_inputs_data(r->in), ef_inputs_mc(r->in));
    ef_log(ctx, EF_LOG_INFO, "campaign identity %016llx/%016llx/%016llx (config/data/mc), "
           "hashed in %.2f s", (unsigned long long)r->id.config, (unsigned long long)r->id.data,
           (unsigned long long)r->id.mc, ef_cli_now() - th);
    if (r->mode == PLAN_CHECK_COMPLETE) rc = check_complete(ctx, r->out, &r->id, r->name_ptr);
  }
  EF_CHECK(agree(ctx, rc));
  if (r->mode == PLAN_CHECK_COMPLETE) return EF_OK;
  return ef_unit_ws_create(ctx, &r->ws, &r->cfg, r->in);
}

/* Rank 0: the result table, the journal (taken over or new), the resume
 * report. */
static int open_results(ef_ctx *ctx, const run_opts *o, run_state *r) {
  collect_state *c = &r->col;
  size_t nu = ef_plan_n_units(r->plan);
  c->row = ef_unit_result_len(r->in);
  c->results = malloc(nu * c->row * sizeof(double) + 1);
  c->status = malloc(nu * sizeof(int32_t) + 1);
  c->rank = malloc(nu * sizeof(int32_t) + 1);
  c->wall = malloc(nu * sizeof(double) + 1);
  c->attempts = malloc(nu * sizeof(int32_t) + 1);
  c->in_flight = malloc(nu * sizeof(int32_t) + 1);
  c->skip = calloc(nu + 1, 1);
  if (!c->results || !c->status || !c->rank || !c->wall || !c->skip || !c->attempts ||
      !c->in_flight)
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for %zu unit results", nu);
  for (size_t u = 0; u < nu * c->row; u++) c->results[u] = NAN;
  for (size_t u = 0; u < nu; u++) {
    c->status[u] = -1; /* not run */
    c->rank[u] = -1;
    c->wall[u] = 0.0;
    c->attempts[u] = 0;
    c->in_flight[u] = -1;
  }
  if (o->overwrite) EF_CHECK(ef_journal_remove(ctx, r->jpath));
  EF_CHECK(ef_journal_open(ctx, &r->journal, r->jpath, &r->id, r->name_ptr, (uint32_t)nu,
                           (uint32_t)c->row, o->resume, visit, c));
  c->journal = r->journal;
  /* the journal's lock is ours: temporary results are an interrupted run's */
  EF_CHECK(ef_output_remove_stale(ctx, r->out));
  if (o->resume) report_resume(ctx, c, nu);
  return EF_OK;
}

static int run_units(ef_ctx *ctx, const run_opts *o, run_state *r) {
  const char *delay = getenv("ENSFOLD_TEST_UNIT_DELAY_MS");
  size_t row = ef_unit_result_len(r->in);
  work_state w = {ctx, &r->cfg, r->plan, r->in, r->ws, delay ? atol(delay) : 0,
                  getenv("ENSFOLD_TEST_NAN_UNITS"), row};
  ef_schedule s = {.skip = r->col.skip, .result_len = row, .work = work, .work_arg = &w,
                   .on_result = on_result, .result_arg = &r->col, .on_start = on_start,
                   .quiet = o->quiet, .wall_s = r->col.wall, .stall_warn_s = o->stall_warn,
                   .stall_stop_s = o->stall_stop, .on_stall_stop = on_stall_stop};
  int rank = ef_ctx_rank(ctx);
  if (rank == 0) {
    g_running.in_flight = r->col.in_flight;
    g_running.n = ef_plan_n_units(r->plan);
    signal(SIGTERM, on_stop_signal);
    signal(SIGINT, on_stop_signal);
  }
  int rc = ef_scheduler_run(ctx, r->plan, &s);
  if (rank == 0) {
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
  }
  return rc;
}

/* The result file, then (rank 0) the journal goes. */
static int finish(ef_ctx *ctx, run_state *r, double t0) {
  ef_output_data od = {.cfg = &r->cfg, .config_text = r->text, .identity = &r->id,
                       .plan = r->plan, .in = r->in, .results = r->col.results,
                       .result_len = ef_unit_result_len(r->in), .status = r->col.status,
                       .wall_s = r->col.wall, .rank = r->col.rank, .attempts = r->col.attempts};
  EF_CHECK(ef_output_write(ctx, r->out, &od));
  if (ef_ctx_rank(ctx) == 0) {
    ef_journal_close(r->journal);
    r->journal = NULL;
    if (unlink(r->jpath) != 0)
      ef_log(ctx, EF_LOG_WARN, "%s: cannot remove: %s", r->jpath, strerror(errno));
    ef_log(ctx, EF_LOG_INFO, "wrote %s in %.1f s%s", r->out, ef_cli_now() - t0,
           r->col.failed ? " (some units failed: see /units/status)" : "");
  }
  if (ef_ctx_comm(ctx) != MPI_COMM_NULL) {
    /* peak resident memory, rank 0 and the largest over the ranks */
    struct rusage ru;
    long mine = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0, most = mine;
    EF_CHECK_MPI(ctx, MPI_Reduce(&mine, &most, 1, MPI_LONG, MPI_MAX, 0, ef_ctx_comm(ctx)));
    ef_log(ctx, EF_LOG_INFO, "peak memory: rank 0 %.1f MiB, largest rank %.1f MiB",
           mine / 1024.0, most / 1024.0);
  }
  return EF_OK;
}

int ef_cli_run(ef_ctx *ctx, int argc, char **argv) {
  run_opts o = {.stall_warn = 600.0, .stall_stop = 3600.0};
  run_state r = {0};
  int rank = ef_ctx_rank(ctx);
  double t0 = ef_cli_now();
  int rc = parse_args(ctx, argc, argv, &o);
  if (rc == EF_OK && o.help) {
    if (rank == 0) usage(stdout);
    free(o.sets);
    return 0;
  }
  if (rc == EF_OK) rc = prepare(ctx, &o, &r, t0);
  if (rc == EF_OK && r.mode == PLAN_CHECK_COMPLETE) {
    ef_log(ctx, EF_LOG_INFO, "%s is complete and of this same campaign (config and input "
           "events): nothing to do", r.out);
  } else if (rc == EF_OK) {
    if (rank == 0) rc = open_results(ctx, &o, &r);
    rc = agree(ctx, rc);
    if (rc == EF_OK) rc = run_units(ctx, &o, &r);
    if (rc == EF_OK) rc = finish(ctx, &r, t0);
  }
  int failed = (int)r.col.failed;
  run_free(&r);
  free(o.sets);
  if (rc != EF_OK) {
    /* every rank holds the same message: report it once */
    if (rank != 0) return ef_status_exit_code(rc);
    return ef_cli_fail(ctx, rc);
  }
  if (ef_ctx_comm(ctx) != MPI_COMM_NULL) {
    int mrc = MPI_Bcast(&failed, 1, MPI_INT, 0, ef_ctx_comm(ctx));
    if (mrc != MPI_SUCCESS)
      return ef_cli_fail(ctx, ef_error_mpi(ctx, mrc, "MPI_Bcast (failed units)", __FILE__,
                                           __LINE__));
  }
  return failed ? 1 : 0;
}
