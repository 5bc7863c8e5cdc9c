/* The event space: observables and categories (include/ensfold/space.h). */
#include "ensfold/space.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ensfold/error.h"

static const char *const KIND_NAMES[3] = {"bounded", "periodic", "unbounded"};

const char *ef_axis_kind_name(ef_axis_kind k) {
  return k >= EF_AXIS_BOUNDED && k <= EF_AXIS_UNBOUNDED ? KIND_NAMES[k] : "?";
}

int ef_axis_kind_parse(const char *name, ef_axis_kind *k) {
  for (int i = 0; i < 3; i++)
    if (!strcmp(name, KIND_NAMES[i])) {
      *k = (ef_axis_kind)i;
      return 0;
    }
  return -1;
}

void ef_space_pi0(ef_space *s) {
  memset(s, 0, sizeof *s);
  s->dim = 2;
  s->n_cat = 4;
  s->axis[0] = (ef_axis){"cos_theta", EF_AXIS_BOUNDED, -1.0, 1.0};
  s->axis[1] = (ef_axis){"phi", EF_AXIS_PERIODIC, -M_PI, M_PI};
  for (int t = 0; t < 4; t++) {
    snprintf(s->cat[t].name, sizeof s->cat[t].name, "T%d", t);
    s->cat[t].blind = t == 0;
  }
}

int ef_space_same(const ef_space *a, const ef_space *b) {
  if (a->dim != b->dim || a->n_cat != b->n_cat) return 0;
  for (int d = 0; d < a->dim; d++) {
    const ef_axis *x = &a->axis[d], *y = &b->axis[d];
    if (strcmp(x->name, y->name) || x->kind != y->kind || x->lo != y->lo || x->hi != y->hi)
      return 0;
  }
  for (int k = 0; k < a->n_cat; k++)
    if (strcmp(a->cat[k].name, b->cat[k].name) || a->cat[k].blind != b->cat[k].blind) return 0;
  return 1;
}

int ef_space_is_pi0(const ef_space *s) {
  ef_space p;
  ef_space_pi0(&p);
  return ef_space_same(s, &p);
}

int ef_space_n_seen(const ef_space *s) {
  int n = 0;
  for (int k = 0; k < s->n_cat; k++) n += !s->cat[k].blind;
  return n;
}

int ef_space_seen_index(const ef_space *s, int t) {
  if (t < 0 || t >= s->n_cat || s->cat[t].blind) return -1;
  int i = 0;
  for (int k = 0; k < t; k++) i += !s->cat[k].blind;
  return i;
}

int ef_axis_value_ok(const ef_axis *a, double x) {
  if (!isfinite(x)) return 0;
  switch (a->kind) {
  case EF_AXIS_BOUNDED: return x >= a->lo && x <= a->hi;
  case EF_AXIS_PERIODIC: return x > a->lo && x <= a->hi;
  default: return 1;
  }
}

void ef_axis_describe(const ef_axis *a, char *buf, size_t len) {
  if (a->kind == EF_AXIS_BOUNDED) snprintf(buf, len, "%s in [%g, %g]", a->name, a->lo, a->hi);
  else if (a->kind == EF_AXIS_PERIODIC && a->lo == -M_PI && a->hi == M_PI)
    snprintf(buf, len, "%s in (-pi, pi] radians", a->name);
  else if (a->kind == EF_AXIS_PERIODIC)
    snprintf(buf, len, "%s in (%g, %g]", a->name, a->lo, a->hi);
  else snprintf(buf, len, "%s finite", a->name);
}

/* A name: non-empty, letters, digits, '_', '-', '.', not too long. */
static int name_ok(const char *s) {
  if (!s[0] || strlen(s) >= EF_SPACE_NAME_LEN) return 0;
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') return 0;
  return 1;
}

/* Name i of a list (what: "observable", "category") is well formed and
 * not one of the names before it; name j is at first + j * stride. */
static int check_name(ef_ctx *ctx, const char *where, const char *what, int i,
                      const char *first, size_t stride) {
  const char *name = first + (size_t)i * stride;
  if (!name_ok(name))
    return ef_error_set(ctx, EF_ERR_INPUT,
                        "%s: %s %d is named '%s' (allowed: 1-%d letters, digits, '_', '-', '.')",
                        where, what, i, name, EF_SPACE_NAME_LEN - 1);
  for (int e = 0; e < i; e++)
    if (!strcmp(first + (size_t)e * stride, name))
      return ef_error_set(ctx, EF_ERR_INPUT, "%s: %s name '%s' appears twice", where, what, name);
  return EF_OK;
}

static int check_axes(ef_ctx *ctx, const ef_space *s, const char *where) {
  for (int d = 0; d < s->dim; d++) {
    const ef_axis *a = &s->axis[d];
    EF_CHECK(check_name(ctx, where, "observable", d, s->axis[0].name, sizeof(ef_axis)));
    if (a->kind < EF_AXIS_BOUNDED || a->kind > EF_AXIS_UNBOUNDED)
      return ef_error_set(ctx, EF_ERR_INPUT, "%s: observable '%s' has no kind (allowed: bounded, "
                          "periodic, unbounded)", where, a->name);
    int finite = isfinite(a->lo) && isfinite(a->hi);
    if (a->kind != EF_AXIS_UNBOUNDED && !(finite && a->lo < a->hi))
      return ef_error_set(ctx, EF_ERR_INPUT,
                          "%s: observable '%s' (%s) has the range [%g, %g] (allowed: finite lo "
                          "< hi)", where, a->name, ef_axis_kind_name(a->kind), a->lo, a->hi);
  }
  return EF_OK;
}

static int check_categories(ef_ctx *ctx, const ef_space *s, const char *where) {
  int seen = 0;
  for (int k = 0; k < s->n_cat; k++) {
    EF_CHECK(check_name(ctx, where, "category", k, s->cat[0].name, sizeof(ef_category)));
    seen += !s->cat[k].blind;
  }
  if (!seen)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: every one of the %d categories is blind; at "
                        "least one must reconstruct something", where, s->n_cat);
  return EF_OK;
}

int ef_space_check(ef_ctx *ctx, const ef_space *s, const char *where) {
  if (s->dim < 1 || s->dim > EF_SPACE_MAX_DIM)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: %d observables (allowed 1..%d)", where, s->dim,
                        EF_SPACE_MAX_DIM);
  if (s->n_cat < 1 || s->n_cat > EF_SPACE_MAX_CAT)
    return ef_error_set(ctx, EF_ERR_INPUT, "%s: %d categories (allowed 1..%d)", where, s->n_cat,
                        EF_SPACE_MAX_CAT);
  EF_CHECK(check_axes(ctx, s, where));
  return check_categories(ctx, s, where);
}
