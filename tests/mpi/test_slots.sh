#!/usr/bin/env bash
# When mpirun cannot start the ranks ("not enough slots"), it exits 1, the
# code ensfold uses for "some units failed". jobs/local.sh and jobs/demo.sh
# say what happened and exit 3 instead (issue 16.3 point 6). A hostfile of
# one slot makes the slot error on any machine for local.sh; the demo asks
# for one rank more than the cores.
set -uo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset OMPI_MCA_rmaps_base_oversubscribe
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "localhost slots=1" > "$tmp/hostfile"
fail=0
OMPI_MCA_orte_default_hostfile=$tmp/hostfile ENSFOLD=$exe \
  bash "$src/jobs/local.sh" "$src/tests/mpi/small.yaml" "$tmp/local.h5" 2 > "$tmp/local.log" 2>&1
rc=$?
echo "# jobs/local.sh, 2 ranks on 1 slot: exit $rc; $(grep "^jobs/local.sh:" "$tmp/local.log" | cut -c1-100)..."
[ "$rc" -eq 3 ] && grep -q "could not start 2 ranks" "$tmp/local.log" || { echo "local.sh: want exit 3 and the explanation"; cat "$tmp/local.log"; fail=1; }
n=$(( $(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) + 1 ))
(cd "$tmp" && ENSFOLD=$exe ENSFOLD_RANKS=$n bash "$src/jobs/demo.sh" "$tmp/demo" > "$tmp/demo.log" 2>&1)
rc=$?
echo "# jobs/demo.sh, $n ranks: exit $rc; $(grep "^demo:" "$tmp/demo.log" | cut -c1-100)..."
[ "$rc" -eq 3 ] && grep -q "could not start $n ranks" "$tmp/demo.log" || { echo "demo.sh: want exit 3 and the explanation"; cat "$tmp/demo.log"; fail=1; }
[ "$fail" -eq 0 ] && echo "slots test passed"
exit "$fail"
