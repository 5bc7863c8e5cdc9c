/* The registry of unfolding methods: include/ensfold/method_list.h, one
 * line per method; its index is its id. */
#include "ensfold/method.h"

#define EF_METHOD(id, name, table) extern const ef_method table;
#include "ensfold/method_list.h"
#undef EF_METHOD

static const ef_method *const REGISTRY[] = {
#define EF_METHOD(id, name, table) &table,
#include "ensfold/method_list.h"
#undef EF_METHOD
};

int ef_method_count(void) { return (int)(sizeof REGISTRY / sizeof REGISTRY[0]); }

const ef_method *ef_method_get(int id) {
  return id >= 0 && id < ef_method_count() ? REGISTRY[id] : NULL;
}
