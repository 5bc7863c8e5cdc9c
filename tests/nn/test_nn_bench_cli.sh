#!/bin/sh
# ensfold bench: output keys on a tiny workload, --help, and exit code 2 for
# a bad command line.
set -u
exe=${ENSFOLD_EXE:?ENSFOLD_EXE not set}
fail() { echo "FAIL: $*"; exit 1; }

out=$("$exe" bench gan-step --batch 64 --hidden 16 --steps 5 --warmup 1) || fail "gan-step exit $?"
for key in steps_per_s gflops non_gemm_fraction gemm_replay_s_per_step threads; do
  echo "$out" | grep -q "^$key: " || fail "gan-step output lacks '$key:'"
done
echo "$out" | grep -q "^threads: 1$" || fail "default is not one BLAS thread"
out=$("$exe" bench gemm --batch 64 --hidden 16 --reps 3) || fail "gemm exit $?"
echo "$out" | grep -q "^gflops: " || fail "gemm output lacks 'gflops:'"
"$exe" bench --help | grep -q "gan-step" || fail "--help"
"$exe" bench gan-step --help | grep -q "usage" || fail "gan-step --help"
for bad in "gan-step --batch 0" "gan-step --batch x" "gan-step --steps" "gan-step --frob 1" \
           "nosuch" "gan-step --threads 0"; do
  # shellcheck disable=SC2086
  "$exe" bench $bad >/dev/null 2>&1
  rc=$?
  [ "$rc" -eq 2 ] || fail "'bench $bad' exited $rc, expected 2"
done
"$exe" bench >/dev/null 2>&1
[ $? -eq 2 ] || fail "'bench' with no benchmark should exit 2"
echo ok
