/* The event space: D observables and K reconstruction categories.
 *
 * An observable has a name, a kind and a range, the same at vertex level
 * and reconstructed:
 *   bounded    lo <= x <= hi          (cos theta*)
 *   periodic   lo < x <= hi, wrapped  (phi*: lo is stored as hi)
 *   unbounded  any finite x           (lo, hi: -inf, inf)
 * A category says what was seen of an event (the topologies T0..T3
 * generalised); a blind one reconstructs nothing, its events carry NaN in
 * every reconstructed observable. The built-in pi0 process is D = 2
 * (cos_theta bounded [-1, 1], phi periodic (-pi, pi]) and K = 4 (T0 blind,
 * T1..T3 seen). Event files of format version 2 declare their space in
 * attributes (docs/formats.md); version 1 files are the pi0 space. */
#ifndef ENSFOLD_SPACE_H
#define ENSFOLD_SPACE_H

#include "ensfold/ctx.h"

#define EF_SPACE_MAX_DIM 32
#define EF_SPACE_MAX_CAT 16
#define EF_SPACE_NAME_LEN 32

typedef enum { EF_AXIS_BOUNDED = 0, EF_AXIS_PERIODIC = 1, EF_AXIS_UNBOUNDED = 2 } ef_axis_kind;

typedef struct {
  char name[EF_SPACE_NAME_LEN];
  ef_axis_kind kind;
  double lo, hi; /* the range (unbounded: -inf, inf) */
} ef_axis;

typedef struct {
  char name[EF_SPACE_NAME_LEN];
  int blind; /* 1: nothing reconstructed */
} ef_category;

/* A plain value: copy it freely. */
typedef struct {
  int dim, n_cat;
  ef_axis axis[EF_SPACE_MAX_DIM];
  ef_category cat[EF_SPACE_MAX_CAT];
} ef_space;

/* The built-in pi0 space (above). */
void ef_space_pi0(ef_space *s);
/* Is s the pi0 space (names, kinds, ranges, categories)? */
int ef_space_is_pi0(const ef_space *s);
int ef_space_same(const ef_space *a, const ef_space *b);

/* The seen (not blind) categories: their number, and category t's index
 * among them in category order (-1 for a blind t). pi0: T1..T3 -> 0..2. */
int ef_space_n_seen(const ef_space *s);
int ef_space_seen_index(const ef_space *s, int t);

/* Is x a value of axis a (its kind's rule above)? */
int ef_axis_value_ok(const ef_axis *a, double x);
/* "cos_theta in [-1, 1]": what axis a allows, for messages. */
void ef_axis_describe(const ef_axis *a, char *buf, size_t len);
const char *ef_axis_kind_name(ef_axis_kind k);
/* 0 and *k set, or -1 for a name that is no kind. */
int ef_axis_kind_parse(const char *name, ef_axis_kind *k);

/* A declaration's own rules: 1 <= dim <= EF_SPACE_MAX_DIM, 1 <= n_cat <=
 * EF_SPACE_MAX_CAT with at least one seen category, names non-empty,
 * printable and unique, ranges lo < hi (finite for bounded and periodic).
 * (1 <= n_cat: a detector with full acceptance has one seen category.)
 * where names the source in the message (a file, a config key). */
int ef_space_check(ef_ctx *ctx, const ef_space *s, const char *where);

#endif
