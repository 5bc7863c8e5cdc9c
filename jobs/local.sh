#!/usr/bin/env bash
# A campaign on this machine: one rank per core, resumable.
#   jobs/local.sh CONFIG OUTPUT.h5 [RANKS]
set -euo pipefail
CONFIG=${1:?usage: jobs/local.sh CONFIG OUTPUT.h5 [RANKS]}
OUTPUT=${2:?usage: jobs/local.sh CONFIG OUTPUT.h5 [RANKS]}
N=${3:-$(nproc)}
ENSFOLD=${ENSFOLD:-$(dirname "$0")/../build-release/ensfold}
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
extra=()
[ "$N" -gt "$(nproc)" ] && extra=(--oversubscribe)
exec mpirun -n "$N" "${extra[@]}" "$ENSFOLD" run "$CONFIG" -o "$OUTPUT" --resume
