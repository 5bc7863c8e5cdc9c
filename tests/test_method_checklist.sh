#!/bin/bash
# docs/architecture.md's "how to add a method", held by the method that was
# added by it: outside docs/, the bin-by-bin method is named only in its own
# file and its build line, its registry line, its test and that test's build
# line. A new place that has to know a method's name (a switch, a name list,
# a special case) makes this fail: it belongs behind the method table.
set -euo pipefail
src=${ENSFOLD_SOURCE_ROOT:?}
cd "$src"
want='include/ensfold/method_list.h
src/methods/binbybin.c
src/methods/meson.build
tests/meson.build
tests/test_binbybin.c'
got=$(grep -rlIi -e 'bin-by-bin' -e 'bin_by_bin' -e 'binbybin' \
        meson.build src include tools tests configs jobs .ci 2>/dev/null |
      grep -v '^tests/test_method_checklist.sh$' | sort)
if [ "$got" != "$want" ]; then
  echo "method checklist: the bin-by-bin method is named outside its own files:"
  diff <(echo "$want") <(echo "$got") || true
  exit 1
fi
# and the registry line is the whole registration: one line in method_list.h
n=$(grep -c 'EF_METHOD(BIN_BY_BIN, "bin-by-bin", ef_method_bin_by_bin)' include/ensfold/method_list.h)
[ "$n" = 1 ] || { echo "method checklist: expected one registry line, found $n"; exit 1; }
echo "method checklist: bin-by-bin is named in its 5 files only"
