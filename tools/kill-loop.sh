#!/usr/bin/env bash
# Kill a whole campaign job (mpirun and every rank: SIGKILL to its session)
# at a random moment, resume it, compare with an uninterrupted run; TRIALS
# times (default 20). Prints one line per trial and the totals.
#   tools/kill-loop.sh [TRIALS] [RANKS]        (ENSFOLD=path/to/ensfold)
set -uo pipefail
cd "$(dirname "$0")/.."
trials=${1:-20}
ranks=${2:-2}
exe=${ENSFOLD:-$PWD/build/ensfold}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cfg=tests/mpi/small.yaml
sets=(--set campaign.replicas=60)
export ENSFOLD_TEST_UNIT_DELAY_MS=${ENSFOLD_TEST_UNIT_DELAY_MS:-25}
start=$(date +%s%N)
mpirun -n "$ranks" "$exe" run "$cfg" "${sets[@]}" -o "$tmp/ref.h5" --quiet || exit 1
full_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "reference run: ${full_ms} ms"
ok=0 bad=0
for t in $(seq 1 "$trials"); do
  out=$tmp/t$t.h5
  delay_ms=$(( RANDOM % (full_ms + 200) ))
  setsid mpirun -n "$ranks" "$exe" run "$cfg" "${sets[@]}" -o "$out" --quiet 2>/dev/null &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  pkill -KILL -s "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  for _ in $(seq 1 100); do pgrep -s "$pid" >/dev/null || break; sleep 0.05; done
  state="finished before the kill"
  if [ ! -e "$out" ]; then
    state=$("$exe" status "$out" 2>/dev/null | sed -n 's/^[^:]*: \([0-9]* of [0-9]*\) units.*/\1 units in the journal/p')
    [ -n "$state" ] || state="no journal yet"
    mpirun -n "$ranks" "$exe" run "$cfg" "${sets[@]}" -o "$out" --resume --quiet 2>/dev/null
  fi
  if /usr/bin/python3 tests/mpi/compare_results.py "$tmp/ref.h5" "$out" >/dev/null 2>&1; then
    ok=$((ok + 1)); echo "trial $t: killed at ${delay_ms} ms ($state): resumed result identical"
  else
    bad=$((bad + 1)); echo "trial $t: killed at ${delay_ms} ms ($state): RESULT DIFFERS"
  fi
done
echo "kill loop: $ok of $trials trials identical, $bad differ"
[ "$bad" -eq 0 ]
