#!/usr/bin/env bash
# A campaign killed with SIGKILL (the whole job: mpirun and its ranks) at
# several points and rerun with --resume ends bit-identical to an
# uninterrupted run, and redoes only the unfinished units.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
. "$src/tests/mpi/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cfg=$src/tests/mpi/small.yaml
sets=(--set campaign.replicas=40)
# test hook: each unit sleeps this long, so kills land between units
export ENSFOLD_TEST_UNIT_DELAY_MS=40
mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$tmp/ref.h5" --quiet
units=$(/usr/bin/python3 -c "import h5py; print(len(h5py.File('$tmp/ref.h5','r')['units/id']))")
# kill points: before any unit (during input creation), after ~10, ~40 and ~70 units
for point in start 10 40 70; do
  out=$tmp/kill-$point.h5
  setsid mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$out" --quiet &
  pid=$!
  if [ "$point" = start ]; then
    sleep 0.5
  else
    for _ in $(seq 1 600); do
      d=$(done_units "$out")
      [ "${d:-0}" -ge "$point" ] && break
      sleep 0.05
    done
  fi
  # the whole job: every process of mpirun's session (ranks may sit in
  # process groups of their own)
  pkill -KILL -s "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do pgrep -s "$pid" >/dev/null || break; sleep 0.05; done
  if pgrep -s "$pid" >/dev/null; then echo "processes survived the kill"; exit 1; fi
  [ ! -e "$out" ] || { echo "a result file appeared before the run finished"; exit 1; }
  done_before=0
  if [ -e "$out.journal" ]; then
    done_before=$(done_units "$out")
  fi
  mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$out" --resume 2>"$tmp/err-$point" || {
    cat "$tmp/err-$point"; exit 1; }
  redone=$(/usr/bin/python3 -c "
import h5py, numpy as np
f = h5py.File('$out', 'r')
print(int((f['units/status'][()] == 0).sum()))")
  echo "# killed at '$point': $done_before of $units units were in the journal; resumed run completed $redone units in total"
  if [ "$point" != start ]; then
    grep -q "resuming: $done_before of $units units already done" "$tmp/err-$point" || {
      echo "resume did not report $done_before done units:"; cat "$tmp/err-$point"; exit 1; }
  fi
  [ ! -e "$out.journal" ] || { echo "journal left after a completed run"; exit 1; }
  /usr/bin/python3 "$src/tests/mpi/compare_results.py" "$tmp/ref.h5" "$out"
done
echo "resume test passed"
