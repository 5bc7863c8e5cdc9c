/* libFuzzer target: the event-file validator. The bytes are decoded into an
 * event sample (kind, which arrays, then topology, angles, probabilities and
 * weights as raw values, NaN and Inf included) and validated. With
 * EF_FUZZ_HDF5=1 in the environment, inputs with a leading 'H' are instead
 * written to a file and read as HDF5 by ef_events_read: that mode also
 * fuzzes libhdf5 itself, which has crashes of its own on corrupt files
 * (docs/robustness.md), so CI runs the in-memory mode only. Any input must
 * give EF_OK or EF_ERR_INPUT, never a crash; an accepted sample must
 * satisfy the documented rules. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ensfold/events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  const uint8_t *p;
  size_t n;
} cursor;

static int take(cursor *c, void *out, size_t len) {
  if (c->n < len) {
    memset(out, 0, len);
    return 0;
  }
  memcpy(out, c->p, len);
  c->p += len;
  c->n -= len;
  return 1;
}

/* What an accepted sample must satisfy, from its declared space: a category
 * in 0..K-1, NaN in every observable exactly when the category is blind,
 * otherwise each value inside its observable's range. */
static int value_in(const ef_axis *a, double x) {
  if (!isfinite(x)) return 0;
  if (a->kind == EF_AXIS_BOUNDED) return x >= a->lo && x <= a->hi;
  if (a->kind == EF_AXIS_PERIODIC) return x > a->lo && x <= a->hi;
  return 1;
}

static void check_accepted(const ef_events *ev) {
  const ef_space *sp = &ev->space;
  if (sp->dim < 1 || sp->dim > EF_SPACE_MAX_DIM || sp->n_cat < 1 || sp->n_cat > EF_SPACE_MAX_CAT)
    abort();
  for (size_t i = 0; i < ev->n; i++) {
    int t = ev->topology[i];
    if (t < 0 || t >= sp->n_cat) abort();
    for (int d = 0; d < sp->dim; d++) {
      double x = ev->reco[(size_t)sp->dim * i + (size_t)d];
      if (sp->cat[t].blind ? !isnan(x) : !value_in(&sp->axis[d], x)) abort();
    }
    if (ev->weight && !(ev->weight[i] >= 0 && isfinite(ev->weight[i]))) abort();
  }
}

static void fuzz_file(const uint8_t *data, size_t size) {
  static ef_ctx *ctx;
  if (!ctx && ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) abort();
  char path[64];
  snprintf(path, sizeof path, "/tmp/ef-fuzz-%ld.h5", (long)getpid());
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(data, 1, size, f);
  fclose(f);
  ef_events ev;
  int rc = ef_events_read(ctx, path, &ev);
  if (rc != EF_OK && rc != EF_ERR_INPUT) abort();
  if (rc == EF_OK) {
    check_accepted(&ev);
    ef_events_free(&ev);
  }
  unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static ef_ctx *ctx;
  if (!ctx && ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) abort();
  static int hdf5_mode = -1;
  if (hdf5_mode < 0) {
    const char *e = getenv("EF_FUZZ_HDF5");
    hdf5_mode = e && *e == '1';
  }
  if (size > 0 && data[0] == 'H') {
    if (!hdf5_mode) return 0;
    fuzz_file(data + 1, size - 1);
    return 0;
  }
  cursor c = {data, size};
  uint8_t head[2];
  take(&c, head, 2);
  size_t n = head[0] % 64;
  unsigned what = head[1] & 7u;
  ef_event_kind kind = (head[1] & 8u) ? EF_KIND_MC : EF_KIND_DATA;
  ef_events ev;
  ef_space pi0;
  ef_space_pi0(&pi0);
  if (ef_events_alloc(ctx, &ev, &pi0, n, kind, what) != EF_OK) return 0;
  for (size_t i = 0; i < n; i++) {
    take(&c, &ev.topology[i], 1);
    take(&c, &ev.reco[2 * i], 2 * sizeof(double));
    if (ev.vertex) take(&c, &ev.vertex[2 * i], 2 * sizeof(double));
    if (ev.prob) take(&c, &ev.prob[4 * i], 4 * sizeof(float));
    if (ev.weight) take(&c, &ev.weight[i], sizeof(double));
  }
  int rc = ef_events_validate(ctx, &ev, "fuzz");
  if (rc != EF_OK && rc != EF_ERR_INPUT) abort();
  if (rc == EF_OK) check_accepted(&ev);
  ef_events_free(&ev);
  return 0;
}
