/* Append-only, checksummed journal of finished units. */
#include "ensfold/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JOURNAL_MAGIC 0x324a4645u /* "EFJ2" */
#define RECORD_MAGIC 0x52464545u  /* "EEFR" */
#define JOURNAL_VERSION 2         /* 1: the config hash only; 2: ef_identity + owner */

typedef struct {
  uint32_t magic, version;
  ef_identity identity;
  uint32_t n_units, result_len;
  ef_journal_owner owner; /* the run that holds it (rewritten on every resume) */
} file_header;

typedef struct {
  uint32_t magic;
  int32_t kind, unit, status, rank, attempts;
  double wall_s;
  uint64_t checksum; /* FNV-1a of the fields above (checksum = 0) and the result */
} record_header;     /* followed by result_len doubles for DONE records */

struct ef_journal {
  int fd;
  char *path;
  uint32_t result_len;
  double last_sync;
  unsigned char *buf; /* one record: header + result */
};

static uint64_t record_checksum(const record_header *h, const double *result, uint32_t n) {
  record_header c = *h;
  c.checksum = 0;
  uint64_t a = ef_hash64(&c, sizeof c);
  return a ^ (ef_hash64(result, (size_t)n * sizeof(double)) * 31u);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

static ssize_t read_full(int fd, void *buf, size_t len) {
  char *p = buf;
  size_t got = 0;
  while (got < len) {
    ssize_t r = read(fd, p + got, len - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

/* Every whole, valid record from the current position; returns the bytes
 * they take. buf holds one record. */
static off_t read_records(int fd, unsigned char *buf, uint32_t result_len, uint32_t n_units,
                          ef_journal_visit visit, void *arg) {
  record_header *rh = (record_header *)buf;
  double *res = (double *)(buf + sizeof *rh);
  size_t payload = (size_t)result_len * sizeof(double);
  off_t used = 0;
  for (;;) {
    if (read_full(fd, rh, sizeof *rh) != (ssize_t)sizeof *rh) break;
    if (rh->magic != RECORD_MAGIC || rh->unit < 0 || (uint32_t)rh->unit >= n_units ||
        (rh->kind != EF_JOURNAL_STARTED && rh->kind != EF_JOURNAL_DONE))
      break;
    uint32_t n = rh->kind == EF_JOURNAL_DONE ? result_len : 0;
    if (n && read_full(fd, res, payload) != (ssize_t)payload) break;
    if (rh->checksum != record_checksum(rh, res, n)) break;
    ef_journal_record r = {rh->kind, rh->unit, rh->status, rh->rank, rh->attempts, rh->wall_s};
    if (visit) visit(arg, &r, n ? res : NULL);
    used += (off_t)(sizeof *rh + (n ? payload : 0));
  }
  return used;
}

int ef_journal_scan(ef_ctx *ctx, const char *path, uint32_t *n_units, uint32_t *result_len,
                    ef_journal_visit visit, void *arg) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: cannot open the journal: %s", path, strerror(errno));
  file_header h;
  int rc = EF_OK;
  if (read_full(fd, &h, sizeof h) != (ssize_t)sizeof h || h.magic != JOURNAL_MAGIC ||
      h.version != JOURNAL_VERSION) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: not an ensfold journal of this version", path);
  } else {
    *n_units = h.n_units;
    *result_len = h.result_len;
    unsigned char *buf = malloc(sizeof(record_header) + (size_t)h.result_len * sizeof(double));
    if (!buf) rc = ef_error_set(ctx, EF_ERR_NOMEM, "out of memory");
    else read_records(fd, buf, h.result_len, h.n_units, visit, arg);
    free(buf);
  }
  close(fd);
  return rc;
}

static void owner_now(ef_journal_owner *o) {
  memset(o, 0, sizeof *o);
  if (gethostname(o->host, sizeof o->host - 1) != 0) snprintf(o->host, sizeof o->host, "?");
  o->pid = (int32_t)getpid();
  o->since = (int64_t)time(NULL);
}

ef_journal_state ef_journal_probe(const char *path, ef_journal_owner *owner) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? EF_JOURNAL_ABSENT : EF_JOURNAL_FOREIGN;
  ef_journal_state s = EF_JOURNAL_IDLE;
  if (flock(fd, LOCK_SH | LOCK_NB) != 0) s = EF_JOURNAL_LIVE;
  else flock(fd, LOCK_UN);
  file_header h;
  ssize_t got = read_full(fd, &h, sizeof h);
  if (got != (ssize_t)sizeof h) {
    /* a live run writes its header just after taking the lock */
    if (s != EF_JOURNAL_LIVE) s = got >= 0 && got < 8 ? EF_JOURNAL_EMPTY : EF_JOURNAL_FOREIGN;
    if (owner) memset(owner, 0, sizeof *owner);
  } else if (h.magic != JOURNAL_MAGIC || h.version != JOURNAL_VERSION) {
    if (s != EF_JOURNAL_LIVE) s = EF_JOURNAL_FOREIGN;
    if (owner) memset(owner, 0, sizeof *owner);
  } else if (owner) {
    *owner = h.owner;
    owner->host[sizeof owner->host - 1] = '\0';
  }
  close(fd);
  return s;
}

static int held_elsewhere(ef_ctx *ctx, const char *path) {
  ef_journal_owner o;
  ef_journal_probe(path, &o);
  return ef_error_set(ctx, EF_ERR_INPUT,
                      "%s: another ensfold run is using this journal now (host %s, pid %d); "
                      "wait for it to finish (ensfold status shows its progress) or choose "
                      "another output", path, o.host[0] ? o.host : "?", (int)o.pid);
}

/* The header of a journal being resumed: the same campaign, or an error. */
static int check_header(ef_ctx *ctx, const char *path, const file_header *h,
                        const file_header *want, const char *const names[2]) {
  if (h->magic != JOURNAL_MAGIC)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: not an ensfold journal (or corrupt header)", path);
  if (h->version != JOURNAL_VERSION)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: a journal of format %u (this ensfold writes %u, which also records "
                        "the input events): it cannot tell whether the inputs changed; finish "
                        "it with the ensfold that started it, or start again with --overwrite",
                        path, h->version, want->version);
  char why[512];
  if (!ef_identity_same(&h->identity, &want->identity, names ? names[0] : NULL,
                        names ? names[1] : NULL, why, sizeof why))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: the journal belongs to a different campaign: %s changed since it "
                        "was started; resume with the same config and input files, or start "
                        "again with --overwrite", path, why);
  if (h->n_units != want->n_units || h->result_len != want->result_len)
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: the journal belongs to a different campaign (%u units of %u "
                        "values, this ensfold plans %u of %u: written by another version?); "
                        "start again with --overwrite", path, h->n_units, h->result_len,
                        want->n_units, want->result_len);
  return EF_OK;
}

/* Resume: take the lock, check the header, read the records, drop a torn
 * tail, record the new owner. A header-less (EMPTY) journal starts afresh. */
static int resume_journal(ef_ctx *ctx, ef_journal *j, file_header *want,
                          const char *const names[2], ef_journal_visit visit, void *arg) {
  const char *path = j->path;
  j->fd = open(path, O_RDWR | O_CLOEXEC);
  if (j->fd < 0)
    return ef_error_set(ctx, EF_ERR_IO, "%s: cannot open the journal: %s", path, strerror(errno));
  if (flock(j->fd, LOCK_EX | LOCK_NB) != 0) return held_elsewhere(ctx, path);
  file_header h;
  ssize_t got = read_full(j->fd, &h, sizeof h);
  off_t good;
  if (got >= 0 && got < 8) { /* nothing whole was ever written: start afresh */
    ef_log(ctx, EF_LOG_WARN, "%s: empty journal (a disk full when it was created?): starting "
           "from the first unit", path);
    if (ftruncate(j->fd, 0) != 0 || pwrite(j->fd, want, sizeof *want, 0) != (ssize_t)sizeof *want)
      return ef_error_set(ctx, EF_ERR_IO, "%s: cannot rewrite the journal: %s", path,
                          strerror(errno));
    good = (off_t)sizeof *want;
  } else {
    if (got != (ssize_t)sizeof h) h.magic = 0;
    EF_CHECK(check_header(ctx, path, &h, want, names));
    good = (off_t)sizeof h + read_records(j->fd, j->buf, want->result_len, want->n_units, visit, arg);
    h.owner = want->owner;
    if (pwrite(j->fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
      return ef_error_set(ctx, EF_ERR_IO, "%s: cannot update the journal: %s", path,
                          strerror(errno));
  }
  /* drop a torn tail so appends start on a record boundary */
  if (ftruncate(j->fd, good) != 0 || lseek(j->fd, good, SEEK_SET) != good)
    return ef_error_set(ctx, EF_ERR_IO, "%s: cannot truncate the journal: %s", path,
                        strerror(errno));
  return EF_OK;
}

/* A new journal, locked before its header is written; removed again when
 * it cannot be written whole (a full disk must not leave a 0-byte journal). */
static int create_journal(ef_ctx *ctx, ef_journal *j, const file_header *want) {
  j->fd = open(j->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (j->fd < 0) {
    if (errno == EEXIST)
      return ef_error_set(ctx, EF_ERR_INPUT,
                          "%s: a journal of an interrupted run exists; use --resume to finish "
                          "it", j->path);
    return ef_error_set(ctx, EF_ERR_IO, "%s: cannot create the journal: %s", j->path,
                        strerror(errno));
  }
  int err = 0;
  if (flock(j->fd, LOCK_EX | LOCK_NB) != 0 || write_all(j->fd, want, sizeof *want) != 0 ||
      fdatasync(j->fd) != 0)
    err = errno;
  if (!err) return EF_OK;
  unlink(j->path);
  return ef_error_set(ctx, EF_ERR_IO, "%s: cannot create the journal: %s", j->path,
                      strerror(err));
}

int ef_journal_remove(ef_ctx *ctx, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return EF_OK;
    return ef_error_set(ctx, EF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  }
  int rc = EF_OK;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) rc = held_elsewhere(ctx, path);
  else if (unlink(path) != 0 && errno != ENOENT)
    rc = ef_error_set(ctx, EF_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
  close(fd);
  return rc;
}

int ef_journal_open(ef_ctx *ctx, ef_journal **out, const char *path, const ef_identity *id,
                    const char *const names[2], uint32_t n_units, uint32_t result_len,
                    int resume, ef_journal_visit visit, void *arg) {
  *out = NULL;
  ef_journal *j = calloc(1, sizeof *j);
  size_t rec_size = sizeof(record_header) + (size_t)result_len * sizeof(double);
  if (j) {
    j->buf = malloc(rec_size);
    j->path = strdup(path);
  }
  if (!j || !j->buf || !j->path) {
    ef_journal_close(j);
    return ef_error_set(ctx, EF_ERR_NOMEM, "out of memory for the journal");
  }
  j->fd = -1;
  j->result_len = result_len;
  file_header want = {.magic = JOURNAL_MAGIC, .version = JOURNAL_VERSION, .identity = *id,
                      .n_units = n_units, .result_len = result_len};
  owner_now(&want.owner);
  ef_journal_state st = ef_journal_probe(path, NULL);
  int rc;
  if (st == EF_JOURNAL_ABSENT) rc = create_journal(ctx, j, &want);
  else if (resume || st == EF_JOURNAL_EMPTY) rc = resume_journal(ctx, j, &want, names, visit, arg);
  else if (st == EF_JOURNAL_LIVE) rc = held_elsewhere(ctx, path);
  else
    rc = ef_error_set(ctx, EF_ERR_INPUT,
                      "%s: a journal of an interrupted run exists; use --resume to finish it",
                      path);
  if (rc != EF_OK) {
    ef_journal_close(j);
    return rc;
  }
  j->last_sync = now_s();
  *out = j;
  return EF_OK;
}

int ef_journal_append(ef_ctx *ctx, ef_journal *j, const ef_journal_record *rec,
                      const double *result) {
  record_header *rh = (record_header *)j->buf;
  *rh = (record_header){RECORD_MAGIC, rec->kind, rec->unit, rec->status, rec->rank,
                        rec->attempts, rec->wall_s, 0};
  uint32_t n = rec->kind == EF_JOURNAL_DONE ? j->result_len : 0;
  if (n) memcpy(j->buf + sizeof *rh, result, (size_t)n * sizeof(double));
  rh->checksum = record_checksum(rh, (const double *)(j->buf + sizeof *rh), n);
  size_t len = sizeof *rh + (size_t)n * sizeof(double);
  if (write_all(j->fd, j->buf, len) != 0)
    return ef_error_set(ctx, EF_ERR_IO, "%s: cannot append to the journal: %s", j->path,
                        strerror(errno));
  /* A killed process loses nothing already written; fdatasync guards
   * against a lost node, at most once a second to keep small units cheap. */
  double t = now_s();
  if (t - j->last_sync > 1.0) {
    if (fdatasync(j->fd) != 0)
      return ef_error_set(ctx, EF_ERR_IO, "%s: cannot sync the journal: %s", j->path,
                          strerror(errno));
    j->last_sync = t;
  }
  return EF_OK;
}

int ef_journal_sync(ef_ctx *ctx, ef_journal *j) {
  if (fdatasync(j->fd) != 0)
    return ef_error_set(ctx, EF_ERR_IO, "%s: cannot sync the journal: %s", j->path,
                        strerror(errno));
  j->last_sync = now_s();
  return EF_OK;
}

void ef_journal_close(ef_journal *j) {
  if (!j) return;
  if (j->fd >= 0) {
    fdatasync(j->fd);
    close(j->fd);
  }
  free(j->buf);
  free(j->path);
  free(j);
}
