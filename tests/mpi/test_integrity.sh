#!/usr/bin/env bash
# Nothing mixed, nothing overwritten (issue 15, points 1-4 and 7):
#  (1) --resume refuses a journal whose input events changed (same path,
#      other content), naming the file; with the inputs restored it resumes
#      bit-identical;
#  (2) --resume on a complete result is "nothing to do" only for the same
#      campaign (config and input events); any other request is refused;
#  (3) a live run's lock holds against --overwrite, plain reruns and
#      --resume (naming its host and pid); stale temporary results are
#      removed, never written through;
#  (4) an output that is one of the run's inputs (config, data, MC; by
#      inode: hard and symbolic links too) is refused;
#  (7) a 0-byte journal blocks neither rerun nor resume, a full disk at the
#      journal's creation leaves none; replicas 0 warns and writes no
#      statistics.
# Every refusal: exit 2, the message, and the files that existed unchanged.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
. "$src/tests/mpi/lib.sh"
tmp=$(mktemp -d)
mnt=$tmp/small-disk
jobs_started=()
cleanup() {
  for s in "${jobs_started[@]}"; do pkill -KILL -s "$s" 2>/dev/null || true; done
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"
fast=(--set detector.pi0.table_dtheta=2 --set detector.pi0.table_dphi=2)
"$exe" generate --model M1 --kind data -n 20000 --seed 5 -o A.h5 -q "${fast[@]}" >/dev/null
"$exe" generate --model M1 --kind data -n 20000 --seed 7 -o B.h5 -q "${fast[@]}" >/dev/null
"$exe" generate --model PS --kind mc -n 60000 --seed 6 -o mc.h5 -q "${fast[@]}" >/dev/null
"$exe" generate --model PS --kind mc -n 60000 --seed 8 -o mc2.h5 -q "${fast[@]}" >/dev/null
cat > c.yaml <<'YAML'
seed: 9
data: {source: file, file: data.h5}
mc: {source: file, file: mc.h5}
campaign: {methods: [ibu], fill_models: [PS, M2], replicas: 20}
YAML
cp A.h5 data.h5
run() { mpirun -n 2 "$exe" run c.yaml "$@"; }
sum() { md5sum "$@" | cut -c1-32; }
# refused CODE MESSAGE -- ARGS...: run must exit CODE with MESSAGE on stderr
refused() {
  local code=$1 msg=$2; shift 3
  set +e; run "$@" -q 2>err.txt; local rc=$?; set -e
  if [ $rc -ne "$code" ] || ! grep -qF -- "$msg" err.txt; then
    echo "FAIL: run $* exited $rc, expected $code with '$msg':"; cat err.txt; exit 1
  fi
  echo "# run $*: exit $rc: $(grep -m1 'error:' err.txt)"
}
# start a slow run in its own session; waits for N finished units
start_slow() {
  local out=$1 n=$2
  ENSFOLD_TEST_UNIT_DELAY_MS=${DELAY:-150} setsid mpirun -n 2 "$exe" run c.yaml -o "$out" -q \
    2>"$out.err" &
  slow=$!
  jobs_started+=("$slow")
  for _ in $(seq 1 400); do
    [ "$(done_units "$out")" -ge "$n" ] 2>/dev/null && return 0
    sleep 0.05
  done
  echo "FAIL: $out never reached $n units"; cat "$out.err"; exit 1
}
kill_job() {
  pkill -KILL -s "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do pgrep -s "$1" >/dev/null || return 0; sleep 0.05; done
  echo "FAIL: processes of job $1 survived"; exit 1
}
cmp_ref() { /usr/bin/python3 "$src/tests/mpi/compare_results.py" ref.h5 "$1"; }

run -o ref.h5 -q

# (1) the data file's content replaced (same path) between kill and resume
start_slow k.h5 10
kill_job "$slow"
j0=$(sum k.h5.journal)
cp B.h5 data.h5
refused 2 "the data events (data.file 'data.h5') changed since it was started" -- -o k.h5 --resume
cp mc2.h5 mc.h5.new && cp mc.h5 mc.h5.orig && mv mc.h5.new mc.h5 && cp A.h5 data.h5
refused 2 "the MC events (mc.file 'mc.h5') changed" -- -o k.h5 --resume
mv mc.h5.orig mc.h5
[ "$(sum k.h5.journal)" = "$j0" ] || { echo "FAIL: a refused resume changed the journal"; exit 1; }
run -o k.h5 --resume -q
cmp_ref k.h5

# (2) --resume on a complete result
r0=$(sum ref.h5)
refused 2 "ref.h5 is a complete result of another campaign (not the same as this request: the config)" -- \
  -o ref.h5 --resume --set campaign.replicas=30
cp B.h5 data.h5
refused 2 "a complete result of another campaign (not the same as this request: the data events (data.file 'data.h5'))" -- \
  -o ref.h5 --resume
cp A.h5 data.h5
echo "not a result" > text.h5
refused 2 "text.h5 exists and is not an HDF5 result file" -- -o text.h5 --resume
/usr/bin/python3 -c "import h5py; h5py.File('plain.h5', 'w').attrs['x'] = 1"
refused 2 "plain.h5 exists but records no campaign identity" -- -o plain.h5 --resume
run -o ref.h5 --resume 2>err.txt
grep -q "ref.h5 is complete and of this same campaign (config and input events): nothing to do" err.txt || {
  echo "FAIL: the identical request did not say 'nothing to do'"; cat err.txt; exit 1; }
echo "# run -o ref.h5 --resume (identical): exit 0: $(grep -o 'ref.h5 is complete.*' err.txt)"
[ "$(sum ref.h5)" = "$r0" ] || { echo "FAIL: a refused request changed ref.h5"; exit 1; }

# (3) a live run holds its lock against --overwrite, a rerun and --resume
DELAY=600 start_slow live.h5 2
host=$(hostname)
rank0=""
for p in $(pgrep -s "$slow" -f "ensfold run"); do
  grep -qz "^OMPI_COMM_WORLD_RANK=0$" /proc/$p/environ 2>/dev/null && rank0=$p
done
[ -n "$rank0" ] || { echo "FAIL: rank 0 of the live run not found"; exit 1; }
"$exe" status live.h5 | grep -q "run by host $host, pid $rank0: running now" || {
  echo "FAIL: status does not name the live run"; "$exe" status live.h5; exit 1; }
for extra in --overwrite "" --resume; do
  refused 2 "live.h5: a run is writing this result now (host $host, pid $rank0)" -- -o live.h5 $extra
  if grep -q -- "--overwrite" err.txt; then
    echo "FAIL: the message sends the user to --overwrite while the run is alive"; exit 1
  fi
done
wait "$slow"
cmp_ref live.h5
# a stale temporary result of an interrupted run: removed, never written
# through (the old fixed name FILE.tmp as a symlink to another result)
ln -s ref.h5 t.h5.tmp
touch t.h5.tmp.otherhost.123
run -o t.h5 2>err.txt
grep -q "removed ./t.h5.tmp, left by an interrupted run" err.txt || {
  echo "FAIL: the stale temporary result was not removed"; cat err.txt; exit 1; }
[ ! -e t.h5.tmp ] && [ ! -e t.h5.tmp.otherhost.123 ] && [ "$(sum ref.h5)" = "$r0" ] || {
  echo "FAIL: stale temporaries left, or written through"; exit 1; }
echo "# stale t.h5.tmp (symlink to ref.h5) and t.h5.tmp.otherhost.123 removed; ref.h5 unchanged"

# (4) the output is one of the inputs
d0=$(sum data.h5) m0=$(sum mc.h5) c0=$(sum c.yaml)
refused 2 "c.yaml is the config file 'c.yaml': a run never writes over its own inputs" -- -o c.yaml --resume
refused 2 "data.h5 is the data file (data.file) 'data.h5'" -- -o data.h5 --overwrite
ln mc.h5 hard.h5
refused 2 "hard.h5 is the MC file (mc.file) 'mc.h5'" -- -o hard.h5 --overwrite
ln -s "$tmp/data.h5" q.journal   # the journal of -o q would be the data file
refused 2 "q.journal is the data file (data.file) 'data.h5'" -- -o q --overwrite
[ "$(sum data.h5)$(sum mc.h5)$(sum c.yaml)" = "$d0$m0$c0" ] || { echo "FAIL: an input changed"; exit 1; }

# (7) a 0-byte journal: a rerun and a resume both start afresh
for extra in "" --resume; do
  rm -f z.h5; : > z.h5.journal
  run -o z.h5 $extra 2>err.txt
  grep -q "empty journal" err.txt || { echo "FAIL: no word on the empty journal"; cat err.txt; exit 1; }
  cmp_ref z.h5
done
echo "# a 0-byte journal: rerun and --resume both exit 0, result identical"
# a disk full when the journal is created leaves no journal behind
mkdir -p "$mnt"
if mount -t tmpfs -o size=48m tmpfs "$mnt" 2>/dev/null; then
  dd if=/dev/zero of="$mnt/fill" bs=1M 2>/dev/null || true
  set +e; run -o "$mnt/f.h5" -q 2>err.txt; rc=$?; set -e
  [ $rc -eq 3 ] && grep -q "cannot create the journal: No space left on device" err.txt || {
    echo "FAIL: full disk: exit $rc"; cat err.txt; exit 1; }
  [ ! -e "$mnt/f.h5.journal" ] || { echo "FAIL: a journal was left on the full disk"; exit 1; }
  echo "# full disk at journal creation: exit 3, $(grep -o 'cannot create.*' err.txt), no journal left"
  rm "$mnt/fill"
  run -o "$mnt/f.h5" -q --set campaign.replicas=2
  umount "$mnt"
else
  echo "# (skip) cannot mount a tmpfs: full-disk journal case not run"
fi
# replicas 0: a warning, no statistics written, the summary says so
run -o r0.h5 --set campaign.replicas=0 2>err.txt
grep -q "warn: campaign.replicas is 0: a sigma needs at least 2" err.txt || {
  echo "FAIL: no warning for replicas 0"; cat err.txt; exit 1; }
"$exe" summary r0.h5 | tee summary.txt | grep -q "no statistics ('-') for 2 group(s)" || {
  echo "FAIL: summary"; cat summary.txt; exit 1; }
! grep -qi nan summary.txt || { echo "FAIL: nan in the summary"; exit 1; }
/usr/bin/python3 - r0.h5 <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    for g in f["groups"]:
        assert "mean" not in f["groups"][g], g
        v = f["groups"][g].attrs["statistics"]
        assert (v.decode() if isinstance(v, bytes) else v).startswith("none"), g
PY
echo "# replicas 0: exit 0, warned, no /groups/*/mean, summary without nan"
echo "integrity test passed"
