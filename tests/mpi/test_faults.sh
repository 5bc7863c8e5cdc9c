#!/usr/bin/env bash
# Faults during a campaign (issue 7.4):
#  (b) one worker rank killed: the job stops, the journal names the units
#      that were running, --resume recovers with nothing completed lost;
#  (c) the output disk fills up: a clear error, the journal intact, and
#      after space is freed --resume finishes it;
#  (d) a NaN injected into a unit (test hook): the unit is tried again, the
#      tries are recorded, the campaign completes with the same numbers;
#  (e) the result file stays readable by another process during a run, and
#      ensfold status reads a journal that is being created or removed.
# Every recovered result is compared bit for bit with an uninterrupted run.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
. "$src/tests/mpi/lib.sh"
tmp=$(mktemp -d)
mnt=$tmp/small-disk
cleanup() { mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"; rm -rf "$tmp"; }
trap cleanup EXIT
cfg=$src/tests/mpi/small.yaml
sets=(--set campaign.replicas=40)
cmp() { /usr/bin/python3 "$src/tests/mpi/compare_results.py" "$@"; }
mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$tmp/ref.h5" --quiet

# (b) kill one worker rank (rank 1) in the middle of the campaign
export ENSFOLD_TEST_UNIT_DELAY_MS=60
setsid mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$tmp/b.h5" --quiet 2>"$tmp/b.err" &
job=$!
for _ in $(seq 1 400); do [ "$(done_units "$tmp/b.h5")" -ge 20 ] 2>/dev/null && break; sleep 0.05; done
victim=""
for p in $(pgrep -s "$job"); do  # this job's processes only (its own session)
  grep -qz "^OMPI_COMM_WORLD_RANK=1$" /proc/$p/environ 2>/dev/null && victim=$p
done
[ -n "$victim" ] || { echo "(b) rank 1 not found"; exit 1; }
kill -KILL "$victim"
set +e; wait "$job"; rc=$?; set -e
[ $rc -ne 0 ] || { echo "(b) the job did not stop"; exit 1; }
grep -q "rank 1" "$tmp/b.err" || { echo "(b) no message naming the killed rank"; cat "$tmp/b.err"; exit 1; }
grep -q "stopped by signal .* while these units were running: .*(rank 1)" "$tmp/b.err" || {
  echo "(b) the stop message does not name the running units"; cat "$tmp/b.err"; exit 1; }
echo "# (b) $(grep -o 'stopped by signal.*running: [^;]*' "$tmp/b.err")"
"$exe" status "$tmp/b.h5" | tee "$tmp/b.status"
grep -q "rank 1" "$tmp/b.status" || { echo "(b) status does not name the interrupted units"; exit 1; }
before=$(done_units "$tmp/b.h5")
mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$tmp/b.h5" --resume 2>"$tmp/b2.err"
grep -q "stopped while .* unit(s) were running: .*(rank 1)" "$tmp/b2.err" || {
  echo "(b) resume does not name the unit that was running"; cat "$tmp/b2.err"; exit 1; }
grep -q "resuming: $before of 82 units already done" "$tmp/b2.err" || {
  echo "(b) completed units were lost"; cat "$tmp/b2.err"; exit 1; }
echo "# (b) rank 1 killed after $before units; resume named $(grep -o 'running: .*; they' "$tmp/b2.err")"
cmp "$tmp/ref.h5" "$tmp/b.h5"

# (c) the output disk fills up (a 260 KiB tmpfs: the journal outgrows it)
unset ENSFOLD_TEST_UNIT_DELAY_MS
mkdir -p "$mnt"
if mount -t tmpfs -o size=260k tmpfs "$mnt" 2>/dev/null; then
  set +e
  mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$mnt/c.h5" --quiet 2>"$tmp/c.err"
  rc=$?
  set -e
  [ $rc -eq 3 ] || { echo "(c) exit $rc on a full disk, expected 3"; cat "$tmp/c.err"; exit 1; }
  grep -q "No space left on device" "$tmp/c.err" || { echo "(c) unclear message"; cat "$tmp/c.err"; exit 1; }
  [ ! -e "$mnt/c.h5" ] || { echo "(c) a result file appeared"; exit 1; }
  kept=$(done_units "$mnt/c.h5")
  echo "# (c) disk full after $kept units: $(grep -o 'error: .*' "$tmp/c.err" | head -1)"
  mount -o remount,size=64m "$mnt"
  mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$mnt/c.h5" --resume 2>"$tmp/c2.err"
  grep -q "resuming: $kept of 82" "$tmp/c2.err" || { echo "(c) units lost"; cat "$tmp/c2.err"; exit 1; }
  cmp "$tmp/ref.h5" "$mnt/c.h5"
  # and the final write itself failing leaves the previous result intact
  rm -f "$mnt/c.h5"
  cp "$tmp/ref.h5" "$mnt/d.h5"
  before_sum=$(md5sum < "$mnt/d.h5")
  # leave 2 MiB: room for the journal, not for the new result file
  avail=$(df --output=avail -k "$mnt" | tail -1)
  head -c $(( (avail - 2048) * 1024 )) /dev/zero > "$mnt/filler" 2>/dev/null || true
  set +e
  mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$mnt/d.h5" --overwrite --quiet 2>"$tmp/d.err"
  rc=$?
  set -e
  [ $rc -eq 3 ] && [ "$(md5sum < "$mnt/d.h5")" = "$before_sum" ] || {
    echo "(c) a failed write damaged the earlier result (exit $rc)"; cat "$tmp/d.err"; exit 1; }
  echo "# (c) a failed overwrite kept the earlier result byte-identical"
  rm -f "$mnt/filler"
  umount "$mnt"
else
  echo "# (c) skipped: cannot mount a tmpfs here"
fi

# (d) NaN injected into units 3 and 40: tried again, recorded, same numbers
ENSFOLD_TEST_NAN_UNITS=3,40 mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$tmp/d.h5" --quiet 2>"$tmp/d.err"
/usr/bin/python3 - "$tmp/d.h5" "$tmp/ref.h5" <<'PY'
import sys, h5py, numpy as np
d, r = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
att = d["units/attempts"][()]
assert (d["units/status"][()] == 0).all()
assert att[3] == 2 and att[40] == 2 and (np.delete(att, [3, 40]) == 1).all(), att
assert d["units/hist"][()].tobytes() == r["units/hist"][()].tobytes()
assert d["groups/ibu_PS/cov"][()].tobytes() == r["groups/ibu_PS/cov"][()].tobytes()
print("# (d) NaN in units 3 and 40: both retried (attempts 2), results identical to the reference")
PY
grep -q "unit 3, try 1 of 3" "$tmp/d.err"

# (e) while a run replaces a result, the old file stays readable
cp "$tmp/ref.h5" "$tmp/e.h5"
ENSFOLD_TEST_UNIT_DELAY_MS=50 mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$tmp/e.h5" --overwrite --quiet &
job=$!
reads=0
while kill -0 $job 2>/dev/null; do
  /usr/bin/python3 -c "
import h5py, sys
with h5py.File('$tmp/e.h5', 'r') as f:
    assert f['units/hist'].shape[0] == 82 and f['summary/method'].shape == (2,)" || {
    echo "(e) the result file was not readable during the run"; exit 1; }
  "$exe" status "$tmp/e.h5" >/dev/null
  reads=$((reads + 1))
  sleep 0.2
done
wait $job
cmp "$tmp/ref.h5" "$tmp/e.h5"
echo "# (e) $reads reads of the result file (h5py) and of the progress (ensfold status) during the run"
# status where a run starts or ends (the polling above meets these only by
# chance): a journal with no header yet, a result with no journal, a foreign file
: > "$tmp/e.h5.journal"
"$exe" status "$tmp/e.h5" | grep -q "no header yet: a run is starting" || {
  echo "(e) status on a header-less journal"; exit 1; }
rm "$tmp/e.h5.journal"
"$exe" status "$tmp/e.h5" | grep -q "complete (no journal)" || { echo "(e) status of a result"; exit 1; }
head -c 4096 /dev/urandom > "$tmp/e.h5.journal"
set +e; "$exe" status "$tmp/e.h5" 2>"$tmp/e.err"; rc=$?; set -e
[ $rc -ne 0 ] && grep -q "not an ensfold journal" "$tmp/e.err" || {
  echo "(e) status on a foreign journal: exit $rc"; cat "$tmp/e.err"; exit 1; }
echo "# (e) status: header-less journal -> starting, no journal -> complete, foreign -> exit $rc"
echo "faults test passed"
