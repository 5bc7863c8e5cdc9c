#!/usr/bin/env bash
# valgrind memcheck on `ensfold validate` and on a one-unit campaign (an MPI
# singleton): no memory errors, no definite leaks in ensfold's code (Open
# MPI's own allocations at init are suppressed: tests/valgrind/*.supp).
set -uo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
command -v valgrind >/dev/null || { echo "SKIP: valgrind not installed"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
vg=(valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite
    --error-exitcode=9 --suppressions="$src/tests/valgrind/openmpi-init.supp")
[ -f /usr/share/openmpi/openmpi-valgrind.supp ] && vg+=(--suppressions=/usr/share/openmpi/openmpi-valgrind.supp)
"${vg[@]}" "$exe" validate "$src/configs/quickstart.yaml" >/dev/null 2>"$tmp/v1.log"
rc1=$?
grep "ERROR SUMMARY" "$tmp/v1.log" | sed 's/^/# validate: /'
cat > "$tmp/one.yaml" <<'YAML'
seed: 3
data: {events: 2000}
mc: {events: 20000}
campaign: {methods: [ibu], fill_models: [PS], replicas: 0}
detector: {pi0: {table_dtheta: 5, table_dphi: 5}}
YAML
"${vg[@]}" "$exe" run "$tmp/one.yaml" -o "$tmp/one.h5" --quiet 2>"$tmp/v2.log"
rc2=$?
grep "ERROR SUMMARY" "$tmp/v2.log" | sed 's/^/# one-unit run: /'
if [ $rc1 -ne 0 ] || [ $rc2 -ne 0 ] || [ ! -f "$tmp/one.h5" ]; then
  cat "$tmp/v1.log" "$tmp/v2.log"; exit 1
fi
echo "valgrind test passed"
