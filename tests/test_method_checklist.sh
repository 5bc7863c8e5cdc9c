#!/bin/bash
# docs/architecture.md's "how to add a method", held by the method that was
# added by it: outside docs/, the bin-by-bin method is named only in its own
# file and its build line, its registry line, its test and that test's build
# line, and the small campaign config the digest test runs it in. A new place that has to know a method's name (a switch, a name list,
# a special case) makes this fail: it belongs behind the method table.
set -uo pipefail
src=${ENSFOLD_SOURCE_ROOT:?}
cd "$src" || { echo "method checklist: cannot enter $src"; exit 1; }
want='include/ensfold/method_list.h
src/methods/binbybin.c
src/methods/meson.build
tests/meson.build
tests/mpi/classic-small.yaml
tests/test_binbybin.c'
# the project's files: git's list in a checkout, else the tree's
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files -- meson.build src include tools tests configs jobs .ci)
else
  files=$(find meson.build src include tools tests configs jobs .ci -type f 2>/dev/null)
fi
[ -n "$files" ] || { echo "method checklist: no source files found under $src"; exit 1; }
got=$(echo "$files" | grep -v '^tests/test_method_checklist.sh$' |
      xargs grep -lIi -e 'bin-by-bin' -e 'bin_by_bin' -e 'binbybin' 2>/dev/null | sort)
if [ "$got" != "$want" ]; then
  echo "method checklist: the bin-by-bin method is named outside its own files:"
  diff <(echo "$want") <(echo "$got")
  exit 1
fi
# and the registry line is the whole registration: one line in method_list.h
n=$(grep -c 'EF_METHOD(BIN_BY_BIN, "bin-by-bin", ef_method_bin_by_bin)' include/ensfold/method_list.h)
[ "$n" = 1 ] || { echo "method checklist: expected one registry line, found $n"; exit 1; }
echo "method checklist: bin-by-bin is named in its 6 files only"
