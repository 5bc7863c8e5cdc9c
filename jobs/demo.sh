#!/usr/bin/env bash
# The README demo: generate pseudo-data (M1) and Monte Carlo (PS, M2) with the
# built-in generator and print their topology tables. Becomes the quickstart
# campaign once the campaign runner lands.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${ENSFOLD:-build/ensfold}
out=${1:-demo-out}
mkdir -p "$out"
cfg=configs/quickstart.yaml
"$exe" validate "$cfg" >/dev/null
"$exe" generate --config "$cfg" --model M1 --kind data -n 100000 -o "$out/data-M1.h5"
for m in PS M2; do
  "$exe" generate --config "$cfg" --model "$m" --kind mc -n 200000 -o "$out/mc-$m.h5"
done
"$exe" inspect "$out/data-M1.h5"
echo "demo: event files in $out/ (layout: docs/formats.md)"
