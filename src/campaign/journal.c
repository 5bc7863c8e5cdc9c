/* Append-only, checksummed journal of finished units. */
#include "ensfold/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JOURNAL_MAGIC 0x324a4645u /* "EFJ2" */
#define RECORD_MAGIC 0x52464545u  /* "EEFR" */

typedef struct {
  uint32_t magic, version;
  uint64_t config_hash;
  uint32_t n_units, result_len;
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

uint64_t ef_hash64(const void *data, size_t len) {
  const unsigned char *p = data;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

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
  if (read_full(fd, &h, sizeof h) != (ssize_t)sizeof h || h.magic != JOURNAL_MAGIC) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: not an ensfold journal", path);
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

int ef_journal_open(ef_ctx *ctx, ef_journal **out, const char *path, uint64_t config_hash,
                    uint32_t n_units, uint32_t result_len, int resume, ef_journal_visit visit,
                    void *arg) {
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
  file_header want = {JOURNAL_MAGIC, 1, config_hash, n_units, result_len};
  int rc = EF_OK;
  struct stat st;
  int exists = stat(path, &st) == 0;
  if (resume && exists) {
    j->fd = open(path, O_RDWR);
    if (j->fd < 0) {
      rc = ef_error_set(ctx, EF_ERR_IO, "%s: cannot open the journal: %s", path, strerror(errno));
      goto done;
    }
    file_header h;
    if (read_full(j->fd, &h, sizeof h) != (ssize_t)sizeof h || h.magic != JOURNAL_MAGIC ||
        h.version != 1) {
      rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: not an ensfold journal (or corrupt header)", path);
      goto done;
    }
    if (h.config_hash != config_hash || h.n_units != n_units) {
      rc = ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: the journal belongs to a different campaign (config or binning "
                        "changed); resume with the same config, or remove the journal to "
                        "start again", path);
      goto done;
    }
    /* same config, other record size: an ensfold with another unit result
     * layout (include/ensfold/unit.h) wrote it */
    if (h.result_len != result_len) {
      rc = ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: the journal belongs to a different campaign (its unit results "
                        "hold %u values, this ensfold's %u: written by another version?); "
                        "remove the journal to start again", path, h.result_len, result_len);
      goto done;
    }
    off_t good = (off_t)sizeof h + read_records(j->fd, j->buf, result_len, n_units, visit, arg);
    /* drop a torn tail so appends start on a record boundary */
    if (ftruncate(j->fd, good) != 0 || lseek(j->fd, good, SEEK_SET) != good) {
      rc = ef_error_set(ctx, EF_ERR_IO, "%s: cannot truncate the journal: %s", path,
                        strerror(errno));
      goto done;
    }
  } else {
    if (exists) {
      rc = ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: a journal of an interrupted run exists; use --resume to finish it",
                        path);
      goto done;
    }
    j->fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (j->fd < 0 || write_all(j->fd, &want, sizeof want) != 0 || fdatasync(j->fd) != 0) {
      rc = ef_error_set(ctx, EF_ERR_IO, "%s: cannot create the journal: %s", path, strerror(errno));
      goto done;
    }
  }
  /* one run per journal: a second run on the same output is refused */
  if (flock(j->fd, LOCK_EX | LOCK_NB) != 0) {
    rc = ef_error_set(ctx, EF_ERR_INPUT, "%s: another ensfold run is using this journal", path);
    goto done;
  }
  j->last_sync = now_s();
done:
  if (rc != EF_OK) {
    ef_journal_close(j);
    return rc;
  }
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
