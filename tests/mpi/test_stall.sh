#!/usr/bin/env bash
# A stalled worker (issue 15.5): rank 1 stopped with SIGSTOP mid-campaign.
#  (a) 2 ranks, --stall-warn 2 --stall-stop 8: a warning names rank 1, its
#      host and its unit; no process of the job spins while it waits; the job
#      stops with exit 3 naming the units in flight, no process survives (the
#      stopped one included); --resume completes, bit-identical;
#  (b) 3 ranks, --stall-stop 0: the ranks that ran out of units wait without
#      spinning (Open MPI's blocking calls busy-poll); after SIGCONT the
#      campaign completes, identical, and the unit is reported finished;
#  (c) slow but steady units with --stall-warn below their length: warned
#      only before the first unit finished (no length known yet), never
#      after (10 x / 30 x the longest unit), not stopped.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
. "$src/tests/mpi/lib.sh"
tmp=$(mktemp -d)
jobs_started=()
cleanup() {
  for j in "${jobs_started[@]}"; do pkill -KILL -s "$j" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
cfg=$src/tests/mpi/small.yaml
# the plain response (ibu.reweight 0) keeps a unit at about 1 ms, so that ENSFOLD_TEST_UNIT_DELAY_MS
# sets the units' length (with the default's rebuilt response they take about 0.1 s here)
sets=(--set campaign.replicas=40 --set ibu.reweight=0)
cmp() { /usr/bin/python3 "$src/tests/mpi/compare_results.py" "$@"; }
host=$(hostname)
mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$tmp/ref.h5" --quiet

# CPU time (ticks) of process $1, all threads
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# per cent of one core used by each process of session $1 over $2 seconds: "pid rank pct" lines
cpu_of_job() {
  local job=$1 secs=$2 p hz
  hz=$(getconf CLK_TCK)
  declare -A t0
  for p in $(pgrep -s "$job" -x ensfold); do t0[$p]=$(ticks "$p"); done
  sleep "$secs"
  for p in "${!t0[@]}"; do
    r=$(tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
    echo "$p ${r:-?} $(awk -v a="${t0[$p]}" -v b="$(ticks "$p")" -v hz="$hz" -v s="$secs" \
      'BEGIN { printf "%.1f", (b - a) * 100 / hz / s }')"
  done
}
# start a command in a session of its own: sets job (its pid, the session id)
start() {
  setsid "$@" &
  job=$!
  jobs_started+=("$job")
}
# pid of rank $2 in session $1 (by session, never by name: other jobs on the
# machine may run ensfold too, and their tests find ranks by name)
rank_pid() {
  for p in $(pgrep -s "$1" -x ensfold); do
    grep -qz "^OMPI_COMM_WORLD_RANK=$2$" "/proc/$p/environ" 2>/dev/null && { echo "$p"; return; }
  done
}
wait_units() { # file, count, its stderr (the job is $job)
  for _ in $(seq 1 600); do
    [ "$(done_units "$1")" -ge "$2" ] 2>/dev/null && return
    kill -0 "$job" 2>/dev/null || break
    sleep 0.05
  done
  set +e; wait "$job"; rc=$?; set -e
  echo "the campaign did not reach $2 units (exit $rc):"; cat "$3"; exit 1
}
wait_grep() { # pattern, file, seconds
  for _ in $(seq 1 $(($3 * 20))); do grep -q "$1" "$2" && return; sleep 0.05; done
  echo "no '$1' within $3 s:"; cat "$2"; exit 1
}
# wait for mpirun $1 at most $2 s (then kill the job and fail); sets rc
wait_job() {
  for _ in $(seq 1 $(($2 * 20))); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$1" 2>/dev/null; then
    echo "the job did not end within $2 s"; pkill -KILL -s "$1" || true; wait "$1" || true; exit 1
  fi
  set +e; wait "$1"; rc=$?; set -e
}
# no process of session $1 left (zombies not yet reaped by init are dead)
no_survivors() {
  for _ in $(seq 1 100); do
    alive=""
    for p in $(pgrep -s "$1"); do
      [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = Z ] || alive="$alive $p"
    done
    [ -z "$alive" ] && return
    sleep 0.05
  done
  echo "processes of the job survived:$alive"; ps -o pid,stat,cmd -p "${alive# }"; exit 1
}
low_cpu() { # label, "pid rank pct" lines
  echo "# $1 CPU per process over 2 s (pid rank %):" $(echo "$2" | tr '\n' ';')
  echo "$2" | awk -v l="$1" '$3 >= 30 { print l ": rank " $2 " used " $3 " % of a core while waiting"; bad = 1 }
                             END { exit bad }'
}

# (a) 2 ranks, rank 1 stopped after 40 of 82 units
export ENSFOLD_TEST_UNIT_DELAY_MS=60
start mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$tmp/stall1.h5" --quiet --stall-warn 2 \
  --stall-stop 8 2>"$tmp/a.err"
wait_units "$tmp/stall1.h5" 40 "$tmp/a.err"
victim=$(rank_pid "$job" 1)
[ -n "$victim" ] || { echo "(a) rank 1 not found"; exit 1; }
kill -STOP "$victim"
wait_grep "stall? unit [0-9]* on rank 1 ($host) has run" "$tmp/a.err" 5
unit=$(sed -n 's/.*stall? unit \([0-9]*\) on rank 1 .*/\1/p' "$tmp/a.err" | head -1)
echo "# (a) $(grep -m1 -o 'stall? .*' "$tmp/a.err")"
sleep 1 # rank 0 runs out of units
low_cpu "(a)" "$(cpu_of_job "$job" 2)"
wait_job "$job" 20
[ "$rc" -eq 3 ] || { echo "(a) exit $rc after the stall, expected 3"; cat "$tmp/a.err"; exit 1; }
grep -q "stall: unit $unit on rank 1 ($host) has run .* past the stop threshold" "$tmp/a.err" &&
  grep -q "in flight: .*unit $unit (rank 1, $host, [0-9.]* s).* in the journal as started: rerun with --resume" \
    "$tmp/a.err" || { echo "(a) the stop message does not name the units in flight"; cat "$tmp/a.err"; exit 1; }
echo "# (a) exit $rc: $(grep -o 'unit(s) in flight: .* rerun with --resume' "$tmp/a.err")"
no_survivors "$job"
[ ! -e "$tmp/stall1.h5" ] || { echo "(a) a result file appeared"; exit 1; }
before=$(done_units "$tmp/stall1.h5")
mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$tmp/stall1.h5" --resume --stall-warn 2 --stall-stop 8 \
  2>"$tmp/a2.err" || { cat "$tmp/a2.err"; exit 1; }
grep -q "stopped while .* unit(s) were running: .*$unit (rank 1)" "$tmp/a2.err" &&
  grep -q "resuming: $before of 82 units already done" "$tmp/a2.err" || {
  echo "(a) resume did not rerun the stalled unit"; cat "$tmp/a2.err"; exit 1; }
! grep -q "stall[?:] " "$tmp/a2.err" || { echo "(a) stall messages on resume"; cat "$tmp/a2.err"; exit 1; }
cmp "$tmp/ref.h5" "$tmp/stall1.h5"
echo "# (a) resumed from $before units, identical to the reference"

# (b) 3 ranks (2 cores), rank 1 stopped, no stop: nobody spins; SIGCONT completes it
start mpirun -n 3 "$exe" run "$cfg" "${sets[@]}" -o "$tmp/stall2.h5" --quiet --stall-warn 2 \
  --stall-stop 0 2>"$tmp/b.err"
wait_units "$tmp/stall2.h5" 40 "$tmp/b.err"
victim=$(rank_pid "$job" 1)
[ -n "$victim" ] || { echo "(b) rank 1 not found"; exit 1; }
kill -STOP "$victim"
wait_grep "stall? unit [0-9]* on rank 1 ($host) .*--stall-stop 0: the job waits" "$tmp/b.err" 5
sleep 1
low_cpu "(b)" "$(cpu_of_job "$job" 2)"
kill -CONT "$victim"
wait_job "$job" 20
[ "$rc" -eq 0 ] || { echo "(b) exit $rc after SIGCONT"; cat "$tmp/b.err"; exit 1; }
grep -q "on rank 1 ($host) reported stalled has finished after" "$tmp/b.err" || {
  echo "(b) the stalled unit was not reported finished"; cat "$tmp/b.err"; exit 1; }
cmp "$tmp/ref.h5" "$tmp/stall2.h5"
echo "# (b) $(grep -o 'unit .* reported stalled has finished.*' "$tmp/b.err"); identical"

# (c) units of ~0.1 s, --stall-warn 0.05: only the first wave (no unit done
# yet: L unknown) may be warned about; afterwards W = 10 L, S = 30 L
export ENSFOLD_TEST_UNIT_DELAY_MS=100
mpirun -n 2 "$exe" run "$cfg" "${sets[@]}" -o "$tmp/stall3.h5" --quiet --stall-warn 0.05 \
  --stall-stop 1 2>"$tmp/c.err" || { echo "(c) a steady campaign failed"; cat "$tmp/c.err"; exit 1; }
warned=$(grep -c "stall? " "$tmp/c.err" || true)
late=$(grep "stall? " "$tmp/c.err" | grep -vc "longest unit so far, 0.000 s" || true)
[ "$warned" -le 2 ] && [ "$late" -eq 0 ] || {
  echo "(c) $warned stall warnings, $late after units had finished"; cat "$tmp/c.err"; exit 1; }
cmp "$tmp/ref.h5" "$tmp/stall3.h5"
echo "# (c) 82 steady units of ~0.1 s with --stall-warn 0.05: $warned warning(s), all before the first unit finished; not stopped"
echo "stall test passed"
