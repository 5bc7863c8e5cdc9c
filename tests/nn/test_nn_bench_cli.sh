#!/bin/sh
# ensfold bench: output keys on a tiny workload, --help, and exit code 2 for
# a bad command line.
set -u
exe=${ENSFOLD_EXE:?ENSFOLD_EXE not set}
fail() { echo "FAIL: $*"; exit 1; }

out=$("$exe" bench train-step --batch 64 --hidden 16 --steps 5 --warmup 1) || fail "train-step exit $?"
for key in steps_per_s gflops non_gemm_fraction gemm_replay_s_per_step threads; do
  echo "$out" | grep -q "^$key: " || fail "train-step output lacks '$key:'"
done
echo "$out" | grep -q "^threads: 1$" || fail "default is not one BLAS thread"
out=$("$exe" bench gemm --batch 64 --hidden 16 --reps 3) || fail "gemm exit $?"
echo "$out" | grep -q "^gflops: " || fail "gemm output lacks 'gflops:'"
"$exe" bench --help | grep -q "train-step" || fail "--help"
"$exe" bench train-step --help | grep -q "usage" || fail "train-step --help"
for bad in "train-step --batch 0" "train-step --batch x" "train-step --steps" "train-step --frob 1" \
           "nosuch" "train-step --threads 0"; do
  # shellcheck disable=SC2086
  "$exe" bench $bad >/dev/null 2>&1
  rc=$?
  [ "$rc" -eq 2 ] || fail "'bench $bad' exited $rc, expected 2"
done
"$exe" bench >/dev/null 2>&1
[ $? -eq 2 ] || fail "'bench' with no benchmark should exit 2"
echo ok
