#!/usr/bin/env bash
# The README demo: the quickstart campaign on all local cores, then its
# summary table. Builds build-release/ first when needed.
# Usage: jobs/demo.sh [OUTPUT_DIR]   (ENSFOLD=path/to/ensfold skips the build)
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
n=$(nproc)
# Open MPI refuses root unless told; these only take effect when run as root.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
"$exe" validate configs/quickstart.yaml >/dev/null
start=$(date +%s)
mpirun -n "$n" "$exe" run configs/quickstart.yaml -o "$out/quickstart-results.h5" --overwrite
echo "demo: campaign on $n ranks took $(( $(date +%s) - start )) s"
"$exe" summary "$out/quickstart-results.h5"
/usr/bin/python3 tools/ensfold-plot "$out/quickstart-results.h5" -o "$out/plots" >/dev/null
echo "demo: results in $out/quickstart-results.h5 (layout: docs/formats.md), plots in $out/plots/ (docs/plots.md)"
