#!/usr/bin/env bash
# `ensfold run` gives each rank one BLAS thread unless asked (issue 16.3):
# the threads of the running ranks, read from /proc/PID/status, are those
# of a run whose OpenBLAS never started its pool (OPENBLAS_NUM_THREADS=1
# before the library loads), and --blas-threads 3 / OPENBLAS_NUM_THREADS=2
# add exactly 2 / 1 threads to every rank. mpirun --bind-to none, so that
# OpenBLAS sees every core as it does on a cluster node (Open MPI binds each
# rank to one core only for -n <= 2). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
# stay as the environment sets them.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
. "$src/tests/mpi/lib.sh"
tmp=$(mktemp -d)
job=
cleanup() {
  [ -n "$job" ] && pkill -KILL -s "$job" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
# the test hook keeps every unit alive for a second: time to read /proc
export ENSFOLD_TEST_UNIT_DELAY_MS=1000
cfg=$src/tests/mpi/small.yaml

# threads NAME [ENV...] -- [ARGS...]: run the campaign, wait until a unit is
# done (the coordinator and every worker are up), print the ranks' thread
# counts sorted, one line; the run's log goes to $tmp/NAME.log
threads() {
  local name=$1; shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  local out=$tmp/$name.h5
  env -u OPENBLAS_NUM_THREADS "${envs[@]}" setsid mpirun -n 2 --bind-to none \
    "$exe" run "$cfg" -o "$out" "$@" 2>"$tmp/$name.log" &
  job=$!
  for _ in $(seq 1 400); do
    [ "$(done_units "$out")" -ge 1 ] 2>/dev/null && break
    sleep 0.05
  done
  local counts=() p
  for p in $(pgrep -s "$job" -x ensfold); do
    counts+=("$(awk '/^Threads:/ {print $2}' "/proc/$p/status")")
  done
  pkill -TERM -s "$job" 2>/dev/null || true
  wait "$job" 2>/dev/null || true
  job=
  [ "${#counts[@]}" -eq 2 ] || { echo "$name: found ${#counts[@]} ranks, not 2"; cat "$tmp/$name.log"; exit 1; }
  printf '%s\n' "${counts[@]}" | sort -n | tr '\n' ' '
}
echo "# $(nproc) cores; OpenBLAS unbound would start $(nproc) threads per rank"
pre=$(threads preloaded OPENBLAS_NUM_THREADS=1 --)
def=$(threads default --)
three=$(threads three -- --blas-threads 3)
two=$(threads env2 OPENBLAS_NUM_THREADS=2 --)
echo "# threads per rank (sorted): OPENBLAS_NUM_THREADS=1 before load: $pre; default: $def;"
echo "#   --blas-threads 3: $three; OPENBLAS_NUM_THREADS=2: $two"
grep -h "BLAS:" "$tmp"/default.log "$tmp"/three.log "$tmp"/env2.log | sed 's/^/# /'
grep -q "BLAS: 1 thread per rank (the default" "$tmp/default.log" || { echo "no BLAS line for the default"; exit 1; }
grep -q "BLAS: 3 threads per rank (--blas-threads)" "$tmp/three.log" || { echo "no BLAS line for --blas-threads 3"; exit 1; }
grep -q "BLAS: 2 threads per rank (OPENBLAS_NUM_THREADS)" "$tmp/env2.log" || { echo "OPENBLAS_NUM_THREADS=2 not honoured"; exit 1; }
[ "$def" = "$pre" ] || { echo "default run has threads $def, a one-thread OpenBLAS $pre: idle BLAS threads left"; exit 1; }
plus() { local r=() x; for x in $1; do r+=($((x + $2))); done; echo "${r[*]} "; }
[ "$three" = "$(plus "$def" 2)" ] || { echo "--blas-threads 3: $three, expected $(plus "$def" 2)"; exit 1; }
[ "$two" = "$(plus "$def" 1)" ] || { echo "OPENBLAS_NUM_THREADS=2: $two, expected $(plus "$def" 1)"; exit 1; }
echo "blas threads test passed"
