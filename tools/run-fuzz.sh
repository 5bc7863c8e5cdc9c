#!/usr/bin/env bash
# Build the libFuzzer targets with clang (ASan + UBSan) into BUILD_DIR
# (default build-fuzz), replay the regression inputs, then fuzz each target
# for SECONDS (default 60) from the seed corpus in tests/fuzz/corpus.
# Prints "N passed, N failed"; a crash is a failure and its input is kept
# under BUILD_DIR/fuzz-artifacts/.
#   tools/run-fuzz.sh [SECONDS] [BUILD_DIR]
#   EF_FUZZ_HDF5=1 tools/run-fuzz.sh 600   # also fuzz reading HDF5 bytes (finds libhdf5 bugs)
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
build=${2:-build-fuzz}
command -v clang >/dev/null || { echo "fuzz: clang not installed"; echo "0 passed, 1 failed"; exit 1; }
if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" -Dfuzz=true >/dev/null ||
    { echo "fuzz: meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi
meson compile -C "$build" fuzz_config fuzz_events >"$build/fuzz-compile.log" 2>&1 ||
  { cat "$build/fuzz-compile.log"; echo "0 passed, 1 failed"; exit 1; }
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
art=$build/fuzz-artifacts
mkdir -p "$art"
pass=0 fail=0
# every crash found so far, fixed, must stay fixed
for f in tests/fuzz/regressions/*; do
  [ -f "$f" ] || continue
  target=fuzz_${f##*/}; target=${target%%-*}
  if EF_FUZZ_HDF5=1 "$build/tests/fuzz/$target" "$f" >"$art/regression.log" 2>&1; then
    pass=$((pass + 1)); echo "fuzz: regression ${f##*/} OK"
  else
    fail=$((fail + 1)); echo "fuzz: regression ${f##*/} CRASHES"; tail -20 "$art/regression.log"
  fi
done
for target in config events; do
  work=$(mktemp -d)
  cp tests/fuzz/corpus/"$target"/* "$work"/
  start=$(date +%s)
  "$build/tests/fuzz/fuzz_$target" "$work" -max_total_time="$secs" -max_len=20000 \
      -artifact_prefix="$art/$target-" -print_final_stats=1 >"$art/$target.log" 2>&1
  rc=$?
  runs=$(grep -o "stat::number_of_executed_units: *[0-9]*" "$art/$target.log" | grep -o "[0-9]*$")
  if [ $rc -eq 0 ]; then
    pass=$((pass + 1))
    echo "fuzz: $target: ${runs:-?} inputs in $(( $(date +%s) - start )) s, no crash"
  else
    fail=$((fail + 1))
    echo "fuzz: $target: CRASH after $(( $(date +%s) - start )) s (input kept in $art):"
    grep -E "ERROR|#[0-9]+ 0x" "$art/$target.log" | head -15
  fi
  rm -rf "$work"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
