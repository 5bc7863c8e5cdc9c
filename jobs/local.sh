#!/usr/bin/env bash
# A campaign on this machine: one rank per core, resumable.
#   jobs/local.sh CONFIG OUTPUT.h5 [RANKS]
# ENSFOLD: the executable (default build-release/ensfold). One BLAS thread
# per rank unless OPENBLAS_NUM_THREADS says otherwise.
set -euo pipefail
CONFIG=${1:?usage: jobs/local.sh CONFIG OUTPUT.h5 [RANKS]}
OUTPUT=${2:?usage: jobs/local.sh CONFIG OUTPUT.h5 [RANKS]}
# cores this process may use (nproc alone follows OMP_NUM_THREADS, set below)
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
N=${3:-$cores}
ENSFOLD=${ENSFOLD:-$(dirname "$0")/../build-release/ensfold}
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
extra=()
[ "$N" -gt "$cores" ] && extra=(--oversubscribe)
errlog=$(mktemp "${TMPDIR:-/tmp}/ensfold-local-XXXXXX")
trap 'rm -f "$errlog"' EXIT
rc=0
mpirun -n "$N" "${extra[@]}" "$ENSFOLD" run "$CONFIG" -o "$OUTPUT" --resume \
  2> >(tee -a "$errlog" >&2) || rc=$?
# Open MPI exits 1 when it cannot start the ranks, the code ensfold uses for
# "some units failed": say what happened and exit 3 (environment) instead.
if [ "$rc" -ne 0 ]; then
  for _ in 1 2 3 4 5; do grep -q "not enough slots" "$errlog" && break; sleep 0.2; done
  if grep -q "not enough slots" "$errlog"; then
    echo "jobs/local.sh: mpirun could not start $N ranks: Open MPI counts fewer slots here" \
         "(physical cores, or a hostfile) than $N; give RANKS (the third argument) <= the" \
         "cores, or run mpirun with --oversubscribe yourself. No unit ran: exit 3, not 1" >&2
    rc=3
  fi
fi
exit "$rc"
