/* Event files (docs/formats.md): bit-exact write/read round trips, a
 * generated M1 sample, atomic replacement of an existing file, and the
 * reader's refusal of malformed files with the file, dataset and row named.
 * Malformed files are written directly with the HDF5 C API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ef_test.h"
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ensfold/events.h"
#include "ensfold/generator.h"
#include "ensfold/inputs.h"
#include "ensfold_version.h"

static ef_space pi0; /* the pi0 event space: ef_space_pi0 in main */

static ef_ctx *ctx;
static char tmpdir[64];

/* ---- helpers ---------------------------------------------------------- */

static void tmp_path(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[1024];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
    else unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

/* Whole file into memory (caller frees); *len its size. */
static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  assert_true(sz > 0);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)sz);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)sz, f), (size_t)sz);
  fclose(f);
  *len = (size_t)sz;
  return buf;
}

/* Number of entries of dir whose name contains needle. */
static int count_entries(const char *dir, const char *needle) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, needle)) n++;
  closedir(d);
  return n;
}

static void assert_contains(const char *hay, const char *needle) {
  if (!hay || !strstr(hay, needle))
    fail_msg("message \"%s\" does not contain \"%s\"", hay ? hay : "(null)", needle);
}

/* Both samples hold the same bits: every array, NaNs included, and the
 * attributes. */
static void assert_events_identical(const ef_events *a, const ef_events *b) {
  assert_int_equal(a->n, b->n);
  assert_int_equal(a->kind, b->kind);
  size_t n = a->n;
  assert_memory_equal(a->topology, b->topology, n * sizeof *a->topology);
  assert_memory_equal(a->reco, b->reco, 2 * n * sizeof *a->reco);
  assert_int_equal(a->vertex != NULL, b->vertex != NULL);
  if (a->vertex) assert_memory_equal(a->vertex, b->vertex, 2 * n * sizeof *a->vertex);
  assert_int_equal(a->prob != NULL, b->prob != NULL);
  if (a->prob) assert_memory_equal(a->prob, b->prob, 4 * n * sizeof *a->prob);
  assert_int_equal(a->weight != NULL, b->weight != NULL);
  if (a->weight) assert_memory_equal(a->weight, b->weight, n * sizeof *a->weight);
  assert_string_equal(a->model, b->model);
  assert_memory_equal(&a->beam_energy, &b->beam_energy, sizeof a->beam_energy);
  assert_int_equal(a->has_seed, b->has_seed);
  if (a->has_seed) assert_true(a->seed == b->seed);
}

/* Read a string attribute of /events straight from the file. */
static void read_group_str_attr(const char *path, const char *name, char *out, size_t len) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  assert_true(f >= 0);
  hid_t a = H5Aopen_by_name(f, "events", name, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(a >= 0);
  hid_t mt = H5Tcopy(H5T_C_S1);
  H5Tset_size(mt, H5T_VARIABLE);
  H5Tset_cset(mt, H5T_CSET_UTF8);
  char *s = NULL;
  assert_true(H5Aread(a, mt, &s) >= 0);
  snprintf(out, len, "%s", s ? s : "");
  H5free_memory(s);
  H5Tclose(mt);
  H5Aclose(a);
  H5Fclose(f);
}

/* ---- hand-built samples ------------------------------------------------- */

#define NB 6 /* rows of the hand-built sample */

/* A valid MC sample: every topology, a phi of exactly pi, a cos of -1,
 * mixed and one-hot probability vectors, unequal weights. */
typedef struct {
  int8_t topo[NB];
  double reco[NB][2];
  double vertex[NB][2];
  float prob[NB][4];
  double weight[NB];
} raw_sample;

static raw_sample base_sample(void) {
  raw_sample s = {
      .topo = {0, 1, 2, 3, 2, 1},
      .reco = {{NAN, NAN}, {0.5, 1.0}, {-0.3, -2.0}, {0.9, 3.0}, {0.0, M_PI}, {-1.0, -3.1}},
      .vertex = {{0.1, 0.2}, {0.45, 1.05}, {-0.31, -1.98}, {0.88, 3.02}, {0.01, 3.14},
                 {-0.99, -3.09}},
      .prob = {{0.625f, 0.125f, 0.125f, 0.125f},
               {0.0f, 1.0f, 0.0f, 0.0f},
               {0.25f, 0.0f, 0.75f, 0.0f},
               {0.0f, 0.0f, 0.5f, 0.5f},
               {0.0f, 0.0f, 1.0f, 0.0f},
               {0.5f, 0.25f, 0.25f, 0.0f}},
      .weight = {1.0, 0.5, 2.0, 0.0, 1.25, 3.0},
  };
  return s;
}

static void fill_events_from(ef_events *ev, const raw_sample *s) {
  memcpy(ev->topology, s->topo, sizeof s->topo);
  memcpy(ev->reco, s->reco, sizeof s->reco);
  if (ev->vertex) memcpy(ev->vertex, s->vertex, sizeof s->vertex);
  if (ev->prob) memcpy(ev->prob, s->prob, sizeof s->prob);
  if (ev->weight) memcpy(ev->weight, s->weight, sizeof s->weight);
}

/* ---- raw HDF5 writers for malformed files ------------------------------ */

/* Dataset /events/<name> of the native type mem_type, rank 1 (rows) or 2
 * (rows, cols). */
static void put(hid_t grp, const char *name, hid_t mem_type, int rank, hsize_t rows,
                hsize_t cols, const void *data) {
  hsize_t dims[2] = {rows, cols};
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  assert_true(sp >= 0);
  hid_t d = H5Dcreate2(grp, name, mem_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(d >= 0);
  if (rows > 0) assert_true(H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
  H5Dclose(d);
  H5Sclose(sp);
}

static void put_str_attr(hid_t obj, const char *name, const char *value) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(value) + 1); /* fixed length: the reader takes both kinds */
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(a >= 0);
  assert_true(H5Awrite(a, t, value) >= 0);
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(t);
}

enum {
  SKIP_TOPOLOGY = 1u,
  SKIP_RECO = 2u,
  SKIP_VERTEX = 4u,
  SKIP_PROB = 8u,
  SKIP_WEIGHT = 16u,
  SKIP_KIND = 32u,
};

/* Write s as an MC event file with all datasets except those in skip, and
 * return the open /events group (and file) for the caller to add to. */
static hid_t raw_create(const char *path, const raw_sample *s, unsigned skip, hid_t *file) {
  *file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(*file >= 0);
  hid_t g = H5Gcreate2(*file, "events", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(g >= 0);
  if (!(skip & SKIP_TOPOLOGY)) put(g, "topology", H5T_NATIVE_INT8, 1, NB, 1, s->topo);
  if (!(skip & SKIP_RECO)) put(g, "reco", H5T_NATIVE_DOUBLE, 2, NB, 2, s->reco);
  if (!(skip & SKIP_VERTEX)) put(g, "vertex", H5T_NATIVE_DOUBLE, 2, NB, 2, s->vertex);
  if (!(skip & SKIP_PROB)) put(g, "prob", H5T_NATIVE_FLOAT, 2, NB, 4, s->prob);
  if (!(skip & SKIP_WEIGHT)) put(g, "weight", H5T_NATIVE_DOUBLE, 1, NB, 1, s->weight);
  if (!(skip & SKIP_KIND)) put_str_attr(g, "kind", "mc");
  put_str_attr(g, "model", "M1");
  return g;
}

static void raw_close(hid_t g, hid_t file) {
  H5Gclose(g);
  assert_true(H5Fclose(file) >= 0);
}

static void raw_write(const char *path, const raw_sample *s, unsigned skip) {
  hid_t f, g = raw_create(path, s, skip, &f);
  raw_close(g, f);
}

/* ---- bad-file cases ------------------------------------------------------ */

typedef struct {
  const char *file;    /* file name in tmpdir */
  void (*make)(const char *path);
  const char *what;    /* the message must contain this (dataset or attribute) */
  int row;             /* the message must contain "row <row>"; -1: no row */
  const char *also;    /* and this, if not NULL */
} bad_case;

static void mk_no_group(const char *path) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t g = H5Gcreate2(f, "evts", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  raw_sample s = base_sample();
  put(g, "topology", H5T_NATIVE_INT8, 1, NB, 1, s.topo);
  raw_close(g, f);
}
static void mk_no_topology(const char *path) {
  raw_sample s = base_sample();
  raw_write(path, &s, SKIP_TOPOLOGY);
}
static void mk_no_reco(const char *path) {
  raw_sample s = base_sample();
  raw_write(path, &s, SKIP_RECO);
}
static void mk_reco_3cols(const char *path) {
  raw_sample s = base_sample();
  double r3[NB][3] = {{0}};
  for (int i = 0; i < NB; i++) r3[i][0] = s.reco[i][0], r3[i][1] = s.reco[i][1];
  hid_t f, g = raw_create(path, &s, SKIP_RECO, &f);
  put(g, "reco", H5T_NATIVE_DOUBLE, 2, NB, 3, r3);
  raw_close(g, f);
}
static void mk_reco_int(const char *path) {
  raw_sample s = base_sample();
  int32_t ri[NB][2] = {{0}};
  hid_t f, g = raw_create(path, &s, SKIP_RECO, &f);
  put(g, "reco", H5T_NATIVE_INT32, 2, NB, 2, ri);
  raw_close(g, f);
}
static void mk_topology_float(const char *path) {
  raw_sample s = base_sample();
  float tf[NB];
  for (int i = 0; i < NB; i++) tf[i] = s.topo[i];
  hid_t f, g = raw_create(path, &s, SKIP_TOPOLOGY, &f);
  put(g, "topology", H5T_NATIVE_FLOAT, 1, NB, 1, tf);
  raw_close(g, f);
}
/* topology as int32 with value v at row: int8 storage could not hold 260
 * etc., int32 shows that the reader sees the value and does not clamp. */
static void mk_topology_i32(const char *path, int row, int32_t v) {
  raw_sample s = base_sample();
  int32_t ti[NB];
  for (int i = 0; i < NB; i++) ti[i] = s.topo[i];
  ti[row] = v;
  hid_t f, g = raw_create(path, &s, SKIP_TOPOLOGY, &f);
  put(g, "topology", H5T_NATIVE_INT32, 1, NB, 1, ti);
  raw_close(g, f);
}
static void mk_topology_4(const char *path) { mk_topology_i32(path, 3, 4); }
static void mk_topology_m1(const char *path) { mk_topology_i32(path, 2, -1); }
static void mk_topology_260(const char *path) { mk_topology_i32(path, 4, 260); }
static void mk_t0_angles(const char *path) {
  raw_sample s = base_sample();
  s.topo[3] = 0; /* row 3 keeps finite angles; prob row 3 has P(T0) = 0 too */
  raw_write(path, &s, 0);
}
static void mk_t2_nan(const char *path) {
  raw_sample s = base_sample();
  s.reco[2][0] = NAN;
  s.reco[2][1] = NAN;
  raw_write(path, &s, 0);
}
static void mk_t2_half_nan(const char *path) {
  raw_sample s = base_sample();
  s.reco[4][1] = NAN;
  raw_write(path, &s, 0);
}
static void mk_cos_15(const char *path) {
  raw_sample s = base_sample();
  s.reco[1][0] = 1.5;
  raw_write(path, &s, 0);
}
static void mk_phi_4(const char *path) {
  raw_sample s = base_sample();
  s.reco[3][1] = 4.0;
  raw_write(path, &s, 0);
}
static void mk_phi_below_minus_pi(const char *path) {
  raw_sample s = base_sample();
  s.reco[5][1] = -3.2;
  raw_write(path, &s, 0);
}
static void mk_reco_inf(const char *path) {
  raw_sample s = base_sample();
  s.reco[4][1] = INFINITY;
  raw_write(path, &s, 0);
}
static void mk_vertex_nan(const char *path) {
  raw_sample s = base_sample();
  s.vertex[5][0] = NAN;
  raw_write(path, &s, 0);
}
static void mk_prob_sum(const char *path) {
  raw_sample s = base_sample();
  s.prob[2][2] = 0.5f; /* 0.25 + 0.5 = 0.75 */
  raw_write(path, &s, 0);
}
static void mk_prob_negative(const char *path) {
  raw_sample s = base_sample();
  s.prob[1][0] = -0.25f;
  s.prob[1][1] = 1.25f; /* sums to 1, but not probabilities */
  raw_write(path, &s, 0);
}
static void mk_prob_zero_at_topology(const char *path) {
  raw_sample s = base_sample();
  s.prob[3][2] = 1.0f; /* T3 event with P(T3) = 0 */
  s.prob[3][3] = 0.0f;
  raw_write(path, &s, 0);
}
static void mk_weight_negative(const char *path) {
  raw_sample s = base_sample();
  s.weight[4] = -1.0;
  raw_write(path, &s, 0);
}
static void mk_weight_nan(const char *path) {
  raw_sample s = base_sample();
  s.weight[2] = NAN;
  raw_write(path, &s, 0);
}
static void mk_vertex_rows(const char *path) {
  raw_sample s = base_sample();
  hid_t f, g = raw_create(path, &s, SKIP_VERTEX, &f);
  put(g, "vertex", H5T_NATIVE_DOUBLE, 2, NB - 1, 2, s.vertex);
  raw_close(g, f);
}
static void mk_reco_rows(const char *path) {
  raw_sample s = base_sample();
  hid_t f, g = raw_create(path, &s, SKIP_RECO, &f);
  put(g, "reco", H5T_NATIVE_DOUBLE, 2, NB + 0 - 2, 2, s.reco);
  raw_close(g, f);
}
static void mk_kind_foo(const char *path) {
  raw_sample s = base_sample();
  hid_t f, g = raw_create(path, &s, SKIP_KIND, &f);
  put_str_attr(g, "kind", "foo");
  raw_close(g, f);
}
static void mk_mc_no_prob(const char *path) {
  raw_sample s = base_sample();
  raw_write(path, &s, SKIP_PROB);
}
static void mk_empty(const char *path) {
  raw_sample s = base_sample();
  hid_t f, g = raw_create(path, &s, SKIP_TOPOLOGY | SKIP_RECO | SKIP_VERTEX | SKIP_PROB |
                                        SKIP_WEIGHT, &f);
  put(g, "topology", H5T_NATIVE_INT8, 1, 0, 1, NULL);
  put(g, "reco", H5T_NATIVE_DOUBLE, 2, 0, 2, NULL);
  put(g, "vertex", H5T_NATIVE_DOUBLE, 2, 0, 2, NULL);
  put(g, "prob", H5T_NATIVE_FLOAT, 2, 0, 4, NULL);
  raw_close(g, f);
}
/* An empty topology beside full datasets must not take its N from them. */
static void mk_empty_topology_only(const char *path) {
  raw_sample s = base_sample();
  hid_t f, g = raw_create(path, &s, SKIP_TOPOLOGY, &f);
  put(g, "topology", H5T_NATIVE_INT8, 1, 0, 1, NULL);
  raw_close(g, f);
}
static void mk_truncated(const char *path) {
  raw_sample s = base_sample();
  raw_write(path, &s, 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(truncate(path, st.st_size / 2), 0);
}
/* reco kept in an external raw file that is then deleted: the file opens
 * and the shapes check out, but reading the data fails. */
static void mk_reco_unreadable(const char *path) {
  raw_sample s = base_sample();
  char raw[300];
  snprintf(raw, sizeof raw, "%s.raw", path);
  hid_t f, g = raw_create(path, &s, SKIP_RECO, &f);
  hsize_t dims[2] = {NB, 2};
  hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  assert_true(H5Pset_external(dcpl, raw, 0, sizeof s.reco) >= 0);
  hid_t d = H5Dcreate2(g, "reco", H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  assert_true(d >= 0);
  assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.reco) >= 0);
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(sp);
  raw_close(g, f);
  assert_int_equal(unlink(raw), 0);
}
static void mk_text(const char *path) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("topology,cos_theta,phi\n2,0.5,1.0\n", f);
  fclose(f);
}
/* /events/<name> chunked (and gzip-compressed if gzip), of the native type
 * mem_type and shape (rows, cols), nothing written: h5py's
 * create_dataset(shape=...) without data. Returns the open dataset. */
static hid_t put_unwritten(hid_t grp, const char *name, hid_t mem_type, int rank, hsize_t rows,
                           hsize_t cols, hsize_t chunk_rows, int gzip) {
  hsize_t dims[2] = {rows, cols}, chunk[2] = {chunk_rows, cols};
  hid_t sp = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  assert_true(sp >= 0 && dcpl >= 0);
  assert_true(H5Pset_chunk(dcpl, rank, chunk) >= 0);
  if (gzip) assert_true(H5Pset_deflate(dcpl, 4) >= 0);
  hid_t d = H5Dcreate2(grp, name, mem_type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  assert_true(d >= 0);
  H5Pclose(dcpl);
  H5Sclose(sp);
  return d;
}
/* 10^8 rows declared, none written: a few KB that once cost 1.7 GB to refuse */
static void mk_declared_unwritten(const char *path) {
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t g = H5Gcreate2(file, "events", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(file >= 0 && g >= 0);
  H5Dclose(put_unwritten(g, "topology", H5T_NATIVE_INT8, 1, 100000000, 1, 65536, 1));
  H5Dclose(put_unwritten(g, "reco", H5T_NATIVE_DOUBLE, 2, 100000000, 2, 32768, 1));
  raw_close(g, file);
}
/* topology in 3 chunks of 2 rows, only the first written */
static void mk_partly_written(const char *path) {
  raw_sample s = base_sample();
  hid_t f, g = raw_create(path, &s, SKIP_TOPOLOGY, &f);
  hid_t d = put_unwritten(g, "topology", H5T_NATIVE_INT8, 1, NB, 1, 2, 0);
  hsize_t start = 0, count = 2;
  hid_t fsp = H5Dget_space(d), msp = H5Screate_simple(1, &count, NULL);
  assert_true(H5Sselect_hyperslab(fsp, H5S_SELECT_SET, &start, NULL, &count, NULL) >= 0);
  assert_true(H5Dwrite(d, H5T_NATIVE_INT8, msp, fsp, H5P_DEFAULT, s.topo) >= 0);
  H5Sclose(msp);
  H5Sclose(fsp);
  H5Dclose(d);
  raw_close(g, f);
}
/* a contiguous reco created and never written */
static void mk_contiguous_unwritten(const char *path) {
  raw_sample s = base_sample();
  hid_t f, g = raw_create(path, &s, SKIP_RECO, &f);
  hsize_t dims[2] = {NB, 2};
  hid_t sp = H5Screate_simple(2, dims, NULL);
  hid_t d = H5Dcreate2(g, "reco", H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(d >= 0);
  H5Dclose(d);
  H5Sclose(sp);
  raw_close(g, f);
}
/* h5py's LZF (filter 32000), which libhdf5 lacks: chunks stored with the
 * filter applied (filter mask 0), as h5py writes them */
static void mk_lzf(const char *path) {
  raw_sample s = base_sample();
  hid_t f, g = raw_create(path, &s, SKIP_RECO, &f);
  hsize_t dims[2] = {NB, 2}, off[2] = {0, 0};
  hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  assert_true(H5Pset_chunk(dcpl, 2, dims) >= 0);
  assert_true(H5Pset_filter(dcpl, 32000, H5Z_FLAG_OPTIONAL, 0, NULL) >= 0);
  hid_t d = H5Dcreate2(g, "reco", H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  assert_true(d >= 0);
  unsigned char junk[40] = "not really LZF";
  assert_true(H5Dwrite_chunk(d, H5P_DEFAULT, 0, off, sizeof junk, junk) >= 0);
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(sp);
  raw_close(g, f);
}
static void mk_weights_zero(const char *path) {
  raw_sample s = base_sample();
  memset(s.weight, 0, sizeof s.weight);
  raw_write(path, &s, 0);
}
static void mk_weights_overflow(const char *path) {
  raw_sample s = base_sample();
  for (int i = 0; i < NB; i++) s.weight[i] = 1e308;
  raw_write(path, &s, 0);
}
static void mk_nothing_measured(const char *path) {
  raw_sample s = base_sample();
  for (int i = 0; i < NB; i++) {
    s.topo[i] = 0;
    s.reco[i][0] = s.reco[i][1] = NAN;
    for (int k = 0; k < 4; k++) s.prob[i][k] = 0.25f;
  }
  raw_write(path, &s, 0);
}
/* only the T0 event has weight: the measured ones count for nothing */
static void mk_measured_weight_zero(const char *path) {
  raw_sample s = base_sample();
  for (int i = 0; i < NB; i++) s.weight[i] = s.topo[i] == 0 ? 1.0 : 0.0;
  raw_write(path, &s, 0);
}
static void mk_directory(const char *path) { assert_int_equal(mkdir(path, 0755), 0); }
static void mk_nothing(const char *path) { (void)path; }

static const bad_case bad_cases[] = {
    {"no_group.h5", mk_no_group, "/events", -1, NULL},
    {"no_topology.h5", mk_no_topology, "/events/topology", -1, NULL},
    {"no_reco.h5", mk_no_reco, "/events/reco", -1, NULL},
    {"reco_3cols.h5", mk_reco_3cols, "/events/reco", -1, NULL},
    {"reco_int.h5", mk_reco_int, "/events/reco", -1, NULL},
    {"topology_float.h5", mk_topology_float, "/events/topology", -1, NULL},
    {"topology_4.h5", mk_topology_4, "/events/topology", 3, NULL},
    {"topology_minus1.h5", mk_topology_m1, "/events/topology", 2, NULL},
    {"topology_260.h5", mk_topology_260, "/events/topology", 4, NULL},
    {"t0_angles.h5", mk_t0_angles, "/events/reco", 3, NULL},
    {"t2_nan.h5", mk_t2_nan, "/events/reco", 2, NULL},
    {"t2_half_nan.h5", mk_t2_half_nan, "/events/reco", 4, NULL},
    {"cos_1.5.h5", mk_cos_15, "/events/reco", 1, NULL},
    {"phi_4.h5", mk_phi_4, "/events/reco", 3, NULL},
    {"phi_below_minus_pi.h5", mk_phi_below_minus_pi, "/events/reco", 5, NULL},
    {"reco_inf.h5", mk_reco_inf, "/events/reco", 4, NULL},
    {"vertex_nan.h5", mk_vertex_nan, "/events/vertex", 5, NULL},
    {"prob_sum.h5", mk_prob_sum, "/events/prob", 2, NULL},
    {"prob_negative.h5", mk_prob_negative, "/events/prob", 1, NULL},
    {"prob_zero_at_topology.h5", mk_prob_zero_at_topology, "/events/prob", 3, NULL},
    {"weight_negative.h5", mk_weight_negative, "/events/weight", 4, NULL},
    {"weight_nan.h5", mk_weight_nan, "/events/weight", 2, NULL},
    {"vertex_rows.h5", mk_vertex_rows, "/events/vertex", -1, NULL},
    {"reco_rows.h5", mk_reco_rows, "/events/reco", -1, NULL},
    {"kind_foo.h5", mk_kind_foo, "kind", -1, NULL},
    {"mc_no_prob.h5", mk_mc_no_prob, "/events/prob", -1, NULL},
    {"empty.h5", mk_empty, "/events/topology", -1, NULL},
    {"empty_topology_only.h5", mk_empty_topology_only, "/events/topology", -1, NULL},
    {"reco_unreadable.h5", mk_reco_unreadable, "/events/reco", -1, NULL},
    {"declared_unwritten.h5", mk_declared_unwritten, "/events/topology", -1,
     "declares 100000000 rows (100000000 bytes) but the file holds none of its 1526 chunks"},
    {"partly_written.h5", mk_partly_written, "/events/topology", -1,
     "declares 6 rows (6 bytes) but the file holds only 1 of its 3 chunks"},
    {"contiguous_unwritten.h5", mk_contiguous_unwritten, "/events/reco", -1,
     "declares 6 rows (96 bytes) but the file holds none of them"},
    {"lzf.h5", mk_lzf, "/events/reco", -1, "filter 32000 (LZF), which this HDF5 library"},
    {"weights_zero.h5", mk_weights_zero, "/events/weight", -1, "every one of the 6 weights is 0"},
    {"weights_overflow.h5", mk_weights_overflow, "/events/weight", -1, "sum to inf"},
    {"nothing_measured.h5", mk_nothing_measured, "/events/topology", -1,
     "nothing measured: every event is in a blind category (T0)"},
    {"measured_weight_zero.h5", mk_measured_weight_zero, "/events/topology", -1,
     "every event of a seen category has weight 0 (T1, T2, T3)"},
    {"truncated.h5", mk_truncated, NULL, -1, NULL},
    {"text.h5", mk_text, NULL, -1, NULL},
    {"a_directory.h5", mk_directory, NULL, -1, NULL},
    {"does_not_exist.h5", mk_nothing, NULL, -1, NULL},
};
#define N_BAD (sizeof bad_cases / sizeof bad_cases[0])

static void test_bad_file(void **state) {
  const bad_case *c = *state;
  char path[256];
  tmp_path(path, sizeof path, c->file);
  c->make(path);
  ef_events ev;
  memset(&ev, 0xab, sizeof ev);
  ef_error_clear(ctx);
  int rc = ef_events_read(ctx, path, &ev);
  const char *msg = ef_error_message(ctx);
  printf("# %s -> %s\n", c->file, msg);
  if (rc != EF_ERR_INPUT)
    fail_msg("%s: rc = %s (%s), expected EF_ERR_INPUT", c->file, ef_status_name(rc), msg);
  assert_int_equal(ef_error_code(ctx), EF_ERR_INPUT);
  assert_contains(msg, path);
  /* once: a message is never garbled by being written over itself */
  assert_null(strstr(strstr(msg, path) + strlen(path), path));
  if (c->what) assert_contains(msg, c->what);
  if (c->also) assert_contains(msg, c->also);
  if (c->row >= 0) {
    char row[32];
    snprintf(row, sizeof row, "row %d:", c->row);
    assert_contains(msg, row);
  } else {
    assert_null(strstr(msg, "row "));
  }
  /* out is left empty: freeing it is harmless */
  assert_int_equal(ev.n, 0);
  assert_null(ev.topology);
  ef_events_free(&ev);
}

/* The base sample itself is valid, so each case fails only for its defect. */
static void test_raw_base_is_valid(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "raw_base.h5");
  raw_sample s = base_sample();
  raw_write(path, &s, 0);
  ef_events ev;
  int rc = ef_events_read(ctx, path, &ev);
  if (rc != EF_OK) fail_msg("%s", ef_error_message(ctx));
  assert_int_equal(ev.n, NB);
  assert_int_equal(ev.kind, EF_KIND_MC);
  assert_memory_equal(ev.topology, s.topo, sizeof s.topo);
  assert_memory_equal(ev.reco, s.reco, sizeof s.reco);
  assert_memory_equal(ev.prob, s.prob, sizeof s.prob);
  assert_string_equal(ev.model, "M1");
  assert_true(isnan(ev.beam_energy)); /* absent attribute */
  assert_int_equal(ev.has_seed, 0);
  ef_events_free(&ev);
  unlink(path);
}

/* Foreign but convertible types are accepted (int32 topology, float32 reco),
 * and phi = -pi is read as pi: (-pi, pi] is the format's range. */
static void test_foreign_types_and_minus_pi(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "foreign.h5");
  raw_sample s = base_sample();
  s.reco[3][1] = -M_PI;
  s.vertex[1][1] = -M_PI;
  int32_t ti[NB];
  float rf[NB][2];
  for (int i = 0; i < NB; i++) {
    ti[i] = s.topo[i];
    rf[i][0] = (float)s.reco[i][0];
    rf[i][1] = (float)s.reco[i][1];
  }
  rf[3][1] = -3.0f; /* (float)-pi would be below -pi in double: out of range */
  rf[4][1] = 3.0f;  /* and (float)pi above pi */
  s.reco[4][1] = 3.0;
  hid_t f, g = raw_create(path, &s, SKIP_TOPOLOGY | SKIP_RECO | SKIP_KIND, &f);
  put(g, "topology", H5T_NATIVE_INT32, 1, NB, 1, ti);
  put(g, "reco", H5T_NATIVE_FLOAT, 2, NB, 2, rf);
  raw_close(g, f);
  ef_events ev;
  int rc = ef_events_read(ctx, path, &ev);
  if (rc != EF_OK) fail_msg("%s", ef_error_message(ctx));
  assert_int_equal(ev.kind, EF_KIND_MC); /* no kind attribute: vertex + prob -> mc */
  assert_memory_equal(ev.topology, s.topo, sizeof s.topo);
  assert_true(ev.reco[2 * 3 + 1] == -3.0);
  assert_true(ev.vertex[2 * 1 + 1] == M_PI); /* exactly -pi became pi */
  ef_events_free(&ev);

  /* now a float64 reco with exactly -pi */
  raw_write(path, &s, 0);
  rc = ef_events_read(ctx, path, &ev);
  if (rc != EF_OK) fail_msg("%s", ef_error_message(ctx));
  assert_true(ev.reco[2 * 3 + 1] == M_PI);
  assert_true(ev.vertex[2 * 1 + 1] == M_PI);
  ef_events_free(&ev);
  unlink(path);
}

/* A dataset with an optional filter this library lacks, whose chunks were
 * stored without it (filter mask set), reads: the filter is named only when
 * a read fails. */
static void test_optional_filter_skipped(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "optional_filter.h5");
  raw_sample s = base_sample();
  hid_t f, g = raw_create(path, &s, SKIP_RECO, &f);
  hsize_t dims[2] = {NB, 2};
  hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  assert_true(H5Pset_chunk(dcpl, 2, dims) >= 0);
  assert_true(H5Pset_filter(dcpl, 32000, H5Z_FLAG_OPTIONAL, 0, NULL) >= 0);
  hid_t d = H5Dcreate2(g, "reco", H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  assert_true(d >= 0);
  assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.reco) >= 0);
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(sp);
  raw_close(g, f);
  ef_events ev;
  if (ef_events_read(ctx, path, &ev) != EF_OK) fail_msg("%s", ef_error_message(ctx));
  assert_memory_equal(ev.reco, s.reco, sizeof s.reco);
  ef_events_free(&ev);
  unlink(path);
}

/* A file that holds all its rows (gzip-compressed fill chunks, allocated
 * at creation) but more than the memory limit: refused before allocating,
 * with the limit's origin named. RLIMIT_DATA is lowered for the read only
 * (not under AddressSanitizer, whose shadow memory counts against it). */
static void test_memory_limit(void **state) {
  (void)state;
#if defined(__SANITIZE_ADDRESS__)
  skip();
#endif
  char path[256];
  tmp_path(path, sizeof path, "too_big.h5");
  const hsize_t n = 4u << 20; /* 4 Mi events: 4 Mi x (1 + 16 + 8) bytes = 100 MiB to read */
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t g = H5Gcreate2(file, "events", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(file >= 0 && g >= 0);
  for (int k = 0; k < 2; k++) {
    hsize_t dims[2] = {n, 2}, chunk[2] = {1u << 19, 2};
    hid_t sp = H5Screate_simple(k + 1, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    assert_true(H5Pset_chunk(dcpl, k + 1, chunk) >= 0);
    assert_true(H5Pset_deflate(dcpl, 1) >= 0);
    assert_true(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) >= 0);
    hid_t d = H5Dcreate2(g, k ? "reco" : "topology", k ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT8,
                         sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(d >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
  }
  raw_close(g, file);
  struct rlimit old, low;
  assert_int_equal(getrlimit(RLIMIT_DATA, &old), 0);
  low = old;
  low.rlim_cur = (rlim_t)256 << 20; /* limit: a quarter, 64 MiB */
  if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < low.rlim_cur) low.rlim_cur = old.rlim_cur;
  assert_int_equal(setrlimit(RLIMIT_DATA, &low), 0);
  ef_events ev;
  int rc = ef_events_read(ctx, path, &ev);
  assert_int_equal(setrlimit(RLIMIT_DATA, &old), 0);
  const char *msg = ef_error_message(ctx);
  printf("# too_big.h5 -> %s\n", msg);
  assert_int_equal(rc, EF_ERR_INPUT);
  assert_contains(msg, path);
  assert_contains(msg, "/events/topology declares 4194304 rows");
  assert_contains(msg, "a quarter of the RLIMIT_DATA");
  assert_null(ev.topology);
  unlink(path);
}

/* What `ensfold validate` checks of the files a config names: relative to
 * the config file, the key named; a float32 beam_energy of the configured
 * value accepted, another value refused with enough digits to see why. */
static void test_inputs_check_files(void **state) {
  (void)state;
  char path[256], cfg_name[256];
  tmp_path(path, sizeof path, "beam32.h5");
  tmp_path(cfg_name, sizeof cfg_name, "campaign.yaml");
  raw_sample s = base_sample();
  const float beams[2] = {1.1f, 1.1001f};
  for (int b = 0; b < 2; b++) {
    hid_t f, g = raw_create(path, &s, 0, &f);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(g, "beam_energy", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_FLOAT, &beams[b]) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
    raw_close(g, f);
    ef_config cfg;
    assert_int_equal(ef_config_load_string(ctx, &cfg,
                                           "seed: 1\nmc: {source: file, file: beam32.h5}\n",
                                           cfg_name), EF_OK);
    int rc = ef_inputs_check_files(ctx, &cfg);
    if (b == 0 && rc != EF_OK) fail_msg("float32 1.1 refused: %s", ef_error_message(ctx));
    if (b == 1) {
      assert_int_equal(rc, EF_ERR_INPUT);
      assert_contains(ef_error_message(ctx), "beam32.h5 (mc.file): made at beam energy "
                                             "1.10010004 GeV but physics.beam_energy is 1.1");
    }
    ef_config_free(&cfg);
  }
  ef_config cfg;
  assert_int_equal(ef_config_load_string(ctx, &cfg,
                                         "seed: 1\ndata: {source: file, file: nope.h5}\n",
                                         cfg_name), EF_OK);
  assert_int_equal(ef_inputs_check_files(ctx, &cfg), EF_ERR_INPUT);
  assert_contains(ef_error_message(ctx), "data.file: ");
  assert_contains(ef_error_message(ctx), "/nope.h5: cannot open event file");
  ef_config_free(&cfg);
  unlink(path);
}

/* ---- round trips --------------------------------------------------------- */

static void test_roundtrip_mc(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "roundtrip_mc.h5");
  raw_sample s = base_sample();
  ef_events ev, back;
  assert_int_equal(ef_events_alloc(ctx, &ev, &pi0, NB, EF_KIND_MC,
                                   EF_EVENTS_VERTEX | EF_EVENTS_PROB | EF_EVENTS_WEIGHT),
                   EF_OK);
  fill_events_from(&ev, &s);
  snprintf(ev.model, sizeof ev.model, "PS");
  ev.beam_energy = 1.1;
  ev.seed = 0xfedcba9876543210ull; /* above INT64_MAX: must stay unsigned */
  ev.has_seed = 1;
  assert_int_equal(ef_events_validate(ctx, &ev, "hand-built"), EF_OK);
  int rc = ef_events_write(ctx, &ev, path);
  if (rc != EF_OK) fail_msg("%s", ef_error_message(ctx));
  rc = ef_events_read(ctx, path, &back);
  if (rc != EF_OK) fail_msg("%s", ef_error_message(ctx));
  assert_events_identical(&ev, &back);
  assert_true(isnan(back.reco[0]) && isnan(back.reco[1]));
  for (size_t i = 1; i < NB; i++) assert_false(isnan(back.reco[2 * i]));
  char buf[64];
  read_group_str_attr(path, "kind", buf, sizeof buf);
  assert_string_equal(buf, "mc");
  read_group_str_attr(path, "model", buf, sizeof buf);
  assert_string_equal(buf, "PS");
  read_group_str_attr(path, "ensfold_version", buf, sizeof buf);
  assert_string_equal(buf, EF_VERSION);
  ef_events_free(&back);
  ef_events_free(&ev);
  unlink(path);
}

static void test_roundtrip_data(void **state) {
  (void)state;
  char path[256];
  tmp_path(path, sizeof path, "roundtrip_data.h5");
  raw_sample s = base_sample();
  ef_events ev, back;
  assert_int_equal(ef_events_alloc(ctx, &ev, &pi0, NB, EF_KIND_DATA, 0), EF_OK);
  fill_events_from(&ev, &s);
  /* model "" and beam energy NaN (unknown), no seed */
  assert_int_equal(ef_events_write(ctx, &ev, path), EF_OK);
  int rc = ef_events_read(ctx, path, &back);
  if (rc != EF_OK) fail_msg("%s", ef_error_message(ctx));
  assert_events_identical(&ev, &back);
  assert_null(back.vertex);
  assert_null(back.prob);
  assert_null(back.weight);
  assert_true(isnan(back.beam_energy));
  assert_int_equal(back.has_seed, 0);
  char buf[64];
  read_group_str_attr(path, "kind", buf, sizeof buf);
  assert_string_equal(buf, "data");
  ef_events_free(&back);

  /* data with weights and a seed of 0 */
  ef_events_free(&ev);
  assert_int_equal(ef_events_alloc(ctx, &ev, &pi0, NB, EF_KIND_DATA, EF_EVENTS_WEIGHT), EF_OK);
  fill_events_from(&ev, &s);
  snprintf(ev.model, sizeof ev.model, "M2");
  ev.beam_energy = 1.3;
  ev.seed = 0;
  ev.has_seed = 1;
  assert_int_equal(ef_events_write(ctx, &ev, path), EF_OK);
  assert_int_equal(ef_events_read(ctx, path, &back), EF_OK);
  assert_events_identical(&ev, &back);
  ef_events_free(&back);
  ef_events_free(&ev);
  unlink(path);
}

/* ---- a generated sample --------------------------------------------------- */

static void test_generated_m1(void **state) {
  (void)state;
  ef_config cfg;
  ef_detector *det = NULL;
  assert_int_equal(ef_config_defaults(ctx, &cfg), EF_OK);
  int rc = ef_detector_create(ctx, &det, &cfg.physics, &cfg.detector);
  if (rc != EF_OK) fail_msg("%s", ef_error_message(ctx));
  ef_model m;
  ef_model_init(&m, EF_MODEL_M1, &cfg.physics);
  ef_rng r;
  ef_rng_init(&r, 12345, EF_RNG_TEST, 77);
  ef_events ev, back;
  const size_t n = 20000;
  assert_int_equal(ef_generate(ctx, det, &m, &r, n, EF_KIND_MC, 0, NULL, NULL, &ev), EF_OK);
  assert_non_null(ev.vertex);
  assert_non_null(ev.prob);
  assert_string_equal(ev.model, "M1");
  assert_close(ev.beam_energy, cfg.physics.beam_energy, 1e-12);
  ev.seed = 12345;
  ev.has_seed = 1;
  assert_int_equal(ef_events_validate(ctx, &ev, "generated"), EF_OK);

  char path[256];
  tmp_path(path, sizeof path, "generated_m1.h5");
  rc = ef_events_write(ctx, &ev, path);
  if (rc != EF_OK) fail_msg("%s", ef_error_message(ctx));
  rc = ef_events_read(ctx, path, &back);
  if (rc != EF_OK) fail_msg("%s", ef_error_message(ctx));
  assert_events_identical(&ev, &back);
  assert_int_equal(ef_events_validate(ctx, &back, path), EF_OK);

  static const double expect[4] = {0.222, 0.021, 0.696, 0.062};
  double counts[4], pmean[4], mixed;
  ef_events_topology_counts(&back, counts);
  ef_events_prob_summary(&back, pmean, &mixed);
  size_t nan_rows = 0;
  for (size_t i = 0; i < n; i++) nan_rows += isnan(back.reco[2 * i]);
  printf("# M1 sample of %zu: T0..T3 = %.4f %.4f %.4f %.4f (expected %.3f %.3f %.3f %.3f), "
         "mean P = %.4f %.4f %.4f %.4f, mixed %.4f\n", n, counts[0] / n, counts[1] / n,
         counts[2] / n, counts[3] / n, expect[0], expect[1], expect[2], expect[3], pmean[0],
         pmean[1], pmean[2], pmean[3], mixed);
  assert_int_equal(nan_rows, (size_t)counts[0]); /* NaN exactly for T0 */
  for (int t = 0; t < 4; t++) {
    assert_close(counts[t] / (double)n, expect[t], 0.02);
    assert_close(pmean[t], expect[t], 0.02);
  }
  ef_events_free(&back);
  ef_events_free(&ev);
  ef_detector_destroy(det);
  ef_config_free(&cfg);
  unlink(path);
}

/* ---- atomic writes -------------------------------------------------------- */

static void test_atomic_write(void **state) {
  (void)state;
  char dir[256], path[300];
  tmp_path(dir, sizeof dir, "atomic");
  assert_int_equal(mkdir(dir, 0755), 0);
  snprintf(path, sizeof path, "%s/events.h5", dir);
  raw_sample s = base_sample();

  ef_events big, small, back;
  /* big enough (~17 kB of data) that its file outgrows HDF5's 2 kB
   * allocation blocks, so the replacement must be smaller */
  enum { COPIES = 50 };
  assert_int_equal(ef_events_alloc(ctx, &big, &pi0, COPIES * NB, EF_KIND_MC,
                                   EF_EVENTS_VERTEX | EF_EVENTS_PROB | EF_EVENTS_WEIGHT),
                   EF_OK);
  for (int k = 0; k < COPIES; k++) {
    memcpy(big.topology + k * NB, s.topo, sizeof s.topo);
    memcpy(big.reco + 2 * k * NB, s.reco, sizeof s.reco);
    memcpy(big.vertex + 2 * k * NB, s.vertex, sizeof s.vertex);
    memcpy(big.prob + 4 * k * NB, s.prob, sizeof s.prob);
    memcpy(big.weight + k * NB, s.weight, sizeof s.weight);
  }
  snprintf(big.model, sizeof big.model, "M1");
  big.beam_energy = 1.1;
  assert_int_equal(ef_events_write(ctx, &big, path), EF_OK);
  size_t len0, len1;
  unsigned char *before = slurp(path, &len0);

  /* a write that fails inside HDF5 (no reco buffer for 6 rows) leaves the
   * old file byte-identical and no temporary file behind */
  assert_int_equal(ef_events_alloc(ctx, &small, &pi0, NB, EF_KIND_DATA, 0), EF_OK);
  fill_events_from(&small, &s);
  double *reco = small.reco;
  small.reco = NULL;
  ef_error_clear(ctx);
  int rc = ef_events_write(ctx, &small, path);
  small.reco = reco;
  printf("# failed write -> %s: %s\n", ef_status_name(rc), ef_error_message(ctx));
  assert_true(rc == EF_ERR_HDF5 || rc == EF_ERR_IO);
  assert_contains(ef_error_message(ctx), path);
  assert_contains(ef_error_message(ctx), "/events/reco");
  unsigned char *after = slurp(path, &len1);
  assert_int_equal(len0, len1);
  assert_memory_equal(before, after, len0);
  free(after);
  assert_int_equal(count_entries(dir, ".tmp"), 0);
  assert_int_equal(count_entries(dir, ""), 1);

  /* a directory that does not exist: EF_ERR_IO naming the path, nothing made */
  char nowhere[400];
  snprintf(nowhere, sizeof nowhere, "%s/no/such/dir/events.h5", dir);
  ef_error_clear(ctx);
  rc = ef_events_write(ctx, &small, nowhere);
  printf("# write into a missing directory -> %s: %s\n", ef_status_name(rc),
         ef_error_message(ctx));
  assert_int_equal(rc, EF_ERR_IO);
  assert_contains(ef_error_message(ctx), nowhere);
  assert_int_equal(count_entries(dir, ""), 1);

  /* the path is a directory: rename cannot replace it; nothing left behind */
  char subdir[400];
  snprintf(subdir, sizeof subdir, "%s/sub.h5", dir);
  assert_int_equal(mkdir(subdir, 0755), 0);
  ef_error_clear(ctx);
  rc = ef_events_write(ctx, &small, subdir);
  printf("# write over a directory -> %s: %s\n", ef_status_name(rc), ef_error_message(ctx));
  assert_int_equal(rc, EF_ERR_IO);
  assert_contains(ef_error_message(ctx), subdir);
  assert_int_equal(count_entries(dir, ".tmp"), 0);
  assert_int_equal(rmdir(subdir), 0);

  /* a successful write over the file replaces it completely */
  assert_int_equal(ef_events_write(ctx, &small, path), EF_OK);
  assert_int_equal(count_entries(dir, ""), 1);
  after = slurp(path, &len1);
  printf("# old file %zu bytes, new file %zu bytes\n", len0, len1);
  assert_true(len1 < len0); /* nothing of the bigger old file survives */
  free(after);
  assert_int_equal(ef_events_read(ctx, path, &back), EF_OK);
  assert_events_identical(&small, &back);
  assert_null(back.vertex);
  assert_null(back.weight);
  ef_events_free(&back);

  free(before);
  ef_events_free(&small);
  ef_events_free(&big);
  unlink(path);
  rmdir(dir);
}

/* In-memory validation names the given name and the row as well. */
static void test_validate_in_memory(void **state) {
  (void)state;
  raw_sample s = base_sample();
  ef_events ev;
  assert_int_equal(ef_events_alloc(ctx, &ev, &pi0, NB, EF_KIND_MC, EF_EVENTS_VERTEX | EF_EVENTS_PROB),
                   EF_OK);
  fill_events_from(&ev, &s);
  assert_int_equal(ef_events_validate(ctx, &ev, "mem"), EF_OK);
  ev.topology[5] = 7;
  assert_int_equal(ef_events_validate(ctx, &ev, "mem"), EF_ERR_INPUT);
  assert_contains(ef_error_message(ctx), "mem: /events/topology row 5:");
  ev.topology[5] = 1;
  ev.reco[2 * 2 + 1] = -M_PI; /* in memory -pi is outside (-pi, pi] */
  assert_int_equal(ef_events_validate(ctx, &ev, "mem"), EF_ERR_INPUT);
  assert_contains(ef_error_message(ctx), "mem: /events/reco row 2:");
  ef_events_free(&ev);
  /* an MC sample without prob */
  assert_int_equal(ef_events_alloc(ctx, &ev, &pi0, NB, EF_KIND_MC, EF_EVENTS_VERTEX), EF_OK);
  fill_events_from(&ev, &s);
  assert_int_equal(ef_events_validate(ctx, &ev, "mem"), EF_ERR_INPUT);
  assert_contains(ef_error_message(ctx), "/events/prob");
  ef_events_free(&ev);
  ef_events_free(&ev); /* twice is harmless */
}

/* ef_events_lost: a category whose measured events all record one value for
 * an observable loses it; one event, a blind category or a varying value do
 * not; the listed events (repeats counted) decide. */
static void test_lost(void **state) {
  (void)state;
  ef_events ev;
  assert_int_equal(ef_events_alloc(ctx, &ev, &pi0, 7, EF_KIND_DATA, 0), EF_OK);
  const int8_t top[7] = {0, 1, 1, 2, 2, 2, 3};
  const double reco[7][2] = {{NAN, NAN}, {0.1, 1.0}, {0.2, 1.0}, {0.3, 0.5},
                             {0.3, -0.5}, {0.3, 2.0}, {-0.4, 0.7}};
  for (int e = 0; e < 7; e++) {
    ev.topology[e] = top[e];
    ev.reco[2 * e] = reco[e][0];
    ev.reco[2 * e + 1] = reco[e][1];
  }
  unsigned char lost[4 * 2];
  double val[4 * 2];
  ef_events_lost(&ev, NULL, ev.n, lost, val);
  const unsigned char want[8] = {0, 0, /* T0 blind */ 0, 1, /* T1: phi 1.0 twice */
                                 1, 0, /* T2: cos 0.3 thrice */ 0, 0 /* T3: one event */};
  for (int i = 0; i < 8; i++) assert_int_equal(lost[i], want[i]);
  assert_true(val[1 * 2 + 1] == 1.0 && val[2 * 2] == 0.3);
  const int32_t idx[4] = {6, 6, 3, 4}; /* T3 listed twice; T2's third event not listed */
  ef_events_lost(&ev, idx, 4, lost, NULL);
  const unsigned char want2[8] = {0, 0, 0, 0, 1, 0, 1, 1};
  for (int i = 0; i < 8; i++) assert_int_equal(lost[i], want2[i]);
  ev.reco[2 * 5] = 0.31; /* T2's cos no longer one value */
  ef_events_lost(&ev, NULL, ev.n, lost, NULL);
  assert_int_equal(lost[2 * 2], 0);
  ef_events_free(&ev);
}

/* ---- main ----------------------------------------------------------------- */

static int setup(void **state) {
  (void)state;
  if (ef_ctx_create(&ctx, MPI_COMM_NULL) != EF_OK) return -1;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/ensfold_test_events.XXXXXX");
  if (!mkdtemp(tmpdir)) return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  remove_tree(tmpdir);
  ef_ctx_destroy(ctx);
  return 0;
}

int main(void) {
  ef_space_pi0(&pi0);
  struct CMUnitTest tests[16 + N_BAD];
  size_t k = 0;
  const struct CMUnitTest fixed[] = {
      cmocka_unit_test(test_roundtrip_mc),
      cmocka_unit_test(test_roundtrip_data),
      cmocka_unit_test(test_raw_base_is_valid),
      cmocka_unit_test(test_foreign_types_and_minus_pi),
      cmocka_unit_test(test_validate_in_memory),
      cmocka_unit_test(test_atomic_write),
      cmocka_unit_test(test_generated_m1),
      cmocka_unit_test(test_optional_filter_skipped),
      cmocka_unit_test(test_memory_limit),
      cmocka_unit_test(test_inputs_check_files),
      cmocka_unit_test(test_lost),
  };
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) tests[k++] = fixed[i];
  static char names[N_BAD][64];
  for (size_t i = 0; i < N_BAD; i++) {
    snprintf(names[i], sizeof names[i], "test_bad_file(%s)", bad_cases[i].file);
    struct CMUnitTest t = {names[i], test_bad_file, NULL, NULL, (void *)&bad_cases[i]};
    tests[k++] = t;
  }
  return _cmocka_run_group_tests("test_events", tests, k, setup, teardown);
}
