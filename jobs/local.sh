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
. "$(dirname "$0")/lib.sh"
rc=0
mpirun_explained jobs/local.sh "$N" "give RANKS (the third argument) <= the cores, or run mpirun with --oversubscribe yourself" \
  mpirun -n "$N" "${extra[@]}" "$ENSFOLD" run "$CONFIG" -o "$OUTPUT" --resume || rc=$?
exit "$rc"
