#!/usr/bin/env bash
# Coordinator load test: campaigns of 1,000 and 10,000 tiny IBU units
# through the MPI coordinator. Prints units/s, the coordinator's CPU share
# and peak memory for each size; fails if memory grows beyond the results
# themselves: 10x the units may add the 9,000 more result rows (5 V + 2 x 50
# doubles each, include/ensfold/unit.h: histogram, efficiency map, loss
# curves; V = 12 vertex bins here, so 160 doubles) plus at most 10 MiB.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
ranks=${1:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
declare -A mem
for units in 1000 10000; do
  reps=$((units / 2 - 1))
  mpirun -n "$ranks" "$exe" run "$src/tests/load/load.yaml" -o "$tmp/l$units.h5" \
    --set campaign.replicas=$reps 2>"$tmp/log$units"
  rate=$(grep -o "[0-9.]* units/s" "$tmp/log$units" | tail -1)
  coord=$(grep -o "coordinator: .*" "$tmp/log$units")
  peak=$(grep -o "peak memory: .*" "$tmp/log$units")
  n=$(/usr/bin/python3 -c "import h5py; f=h5py.File('$tmp/l$units.h5','r'); s=f['units/status'][()]; print(len(s), int((s==0).sum()))")
  echo "# $units units on $ranks ranks: $rate; $coord; $peak; units in file (total ok): $n"
  mem[$units]=$(sed -n "s/.*peak memory: rank 0 \([0-9.]*\) MiB.*/\1/p" "$tmp/log$units")
done
growth=$(/usr/bin/python3 -c "print(${mem[10000]} - ${mem[1000]})")
rows=$(/usr/bin/python3 -c "
import h5py
v = h5py.File('$tmp/l10000.h5', 'r')['units/hist'].shape[1]
print(9000 * (5 * v + 2 * 50) * 8 / 2**20)")
echo "# rank-0 peak memory growth from 1,000 to 10,000 units: $growth MiB ($rows MiB of them the 9,000 more result rows)"
/usr/bin/python3 -c "import sys; sys.exit(0 if ${mem[10000]} - ${mem[1000]} < $rows + 10 else 1)" || {
  echo "memory grew beyond the results"; exit 1; }
echo "load test passed"
