#!/bin/bash
# tools/bootstrap-check on IBU (deterministic, its sigma its statistics): the Gaussian example at
# a twentieth of its size on 12 independent data sets of 10 replicas each. The variance of the
# central value over the data sets against sigma_stat^2 + sigma^2/R must come out near 1 (at
# 40 x 20 and 10^4 events: 0.87 +- 0.07); 0.4-2.5 catches a tool that compares the wrong
# things (sigma for its square: 16 here; one data set run N times: 0). N below 3 is refused
# with exit 2.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tool=$src/tools/bootstrap-check
cfg=$src/configs/gauss-example.yaml
set +e
"$tool" "$exe" "$cfg" 2 "$tmp/w2" >"$tmp/n2.out" 2>&1
rc=$?
set -e
if [ $rc != 2 ] || ! grep -q "N must be an integer >= 3" "$tmp/n2.out"; then
  echo "FAIL: N = 2 gave exit $rc:"; cat "$tmp/n2.out"; exit 1
fi
ENSFOLD_MPIRUN="" "$tool" "$exe" "$cfg" 12 "$tmp/w" --set data.events=5000 \
  --set mc.events=50000 --set 'campaign.methods=[ibu]' --set 'campaign.fill_models=[mc]' \
  --set campaign.replicas=10 >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
cat "$tmp/out"
ratio=$(awk '$1 == "ibu_mc" && /12 data sets x 10 replicas/ {for (i = 1; i <= NF; i++)
  if ($i == "+-") print $(i - 1)}' "$tmp/out")
[ -n "$ratio" ] || { echo "FAIL: no ibu_mc line of 12 data sets x 10 replicas"; exit 1; }
if ! awk -v r="$ratio" 'BEGIN {exit !(r >= 0.4 && r <= 2.5)}'; then
  echo "FAIL: IBU's ratio $ratio is outside 0.4-2.5"; exit 1
fi
[ "$(grep -c 'data set .* done' "$tmp/err")" = 12 ] || { echo "FAIL: progress lines"; cat "$tmp/err"; exit 1; }
echo "bootstrap-check: IBU's ratio $ratio"
