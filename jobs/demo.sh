#!/usr/bin/env bash
# The README demo: the quickstart campaign on all local cores, then its
# summary table. Builds build-release/ first when needed.
# Usage: jobs/demo.sh [OUTPUT_DIR]   (ENSFOLD=path/to/ensfold skips the build;
#        ENSFOLD_RANKS=N runs N ranks instead of one per core)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-demo-out}
# build (release) unless an ensfold executable is given
if [ -z "${ENSFOLD:-}" ]; then
  [ -f build-release/build.ninja ] || meson setup build-release --buildtype=release >/dev/null
  meson compile -C build-release >/dev/null
fi
exe=${ENSFOLD:-$PWD/build-release/ensfold}
mkdir -p "$out"
n=${ENSFOLD_RANKS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
# Open MPI refuses root unless told; these only take effect when run as root.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
"$exe" validate configs/quickstart.yaml >/dev/null
start=$(date +%s)
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
. jobs/lib.sh
rc=0
mpirun_explained demo "$n" "rerun with ENSFOLD_RANKS set to the number of cores" \
  mpirun -n "$n" "$exe" run configs/quickstart.yaml -o "$out/quickstart-results.h5" --overwrite \
  || rc=$?
if [ "$rc" -ne 0 ]; then
  [ "$mpirun_slot_error" -eq 1 ] ||
    echo "demo: the campaign exited with code $rc (1: some units failed, 2: bad input, 3:" \
         "internal error)" >&2
  exit "$rc"
fi
echo "demo: campaign on $n ranks took $(( $(date +%s) - start )) s"
"$exe" summary "$out/quickstart-results.h5"
/usr/bin/python3 tools/ensfold-plot "$out/quickstart-results.h5" -o "$out/plots" >/dev/null
echo "demo: results in $out/quickstart-results.h5 (layout: docs/formats.md), plots in $out/plots/ (docs/plots.md)"
