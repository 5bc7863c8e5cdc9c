#!/usr/bin/env bash
# Build (if needed) and run every meson test; end with "N passed, N failed".
# Usage: tools/run-tests.sh [BUILD_DIR]   (default: build)
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" >/dev/null || { echo "meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! meson compile -C "$build" >"$build/compile.log" 2>&1; then
  cat "$build/compile.log"
  echo "0 passed, 1 failed"
  exit 1
fi
if grep -q "warning:" "$build/compile.log"; then
  echo "tools/run-tests.sh: the build has warnings:"; grep "warning:" "$build/compile.log"
fi
meson test -C "$build" --print-errorlogs --num-processes 2
rc=$?
log="$build/meson-logs/testlog.json"
read -r pass fail skip < <(/usr/bin/python3 tools/testlog-counts.py "$log")
[ "${skip:-0}" -gt 0 ] && echo "$skip skipped"
if [ "$rc" -ne 0 ] && [ "${fail:-0}" -eq 0 ]; then fail=1; fi
echo "main build: ${pass:-0} passed, ${fail:-0} failed"
# extra stages, each ending with "... N passed, N failed":
#   the unit suite and a small campaign again under ASan + UBSan;
#   the libFuzzer targets (60 s each) and the regression inputs
stage() { # name script args...
  local name=$1; shift
  bash "$@" > "$build/$name.log" 2>&1
  local src=$? line sp sf
  tail -n 12 "$build/$name.log"
  line=$(grep -E "[0-9]+ passed, [0-9]+ failed$" "$build/$name.log" | tail -1)
  sp=$(echo "$line" | sed -E 's/.*[^0-9]([0-9]+) passed.*/\1/; s/^([0-9]+) passed.*/\1/')
  sf=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
  [ -n "$line" ] || { sp=0; sf=1; }
  [ "$src" -ne 0 ] && [ "${sf:-0}" -eq 0 ] && sf=1
  pass=$((pass + sp)); fail=$((fail + sf))
}
if [ "${ENSFOLD_SKIP_SANITIZERS:-0}" != 1 ]; then
  stage sanitizers tools/run-sanitizers.sh "$build-asan"
fi
if [ "${ENSFOLD_SKIP_FUZZ:-0}" != 1 ]; then
  stage fuzz tools/run-fuzz.sh "${ENSFOLD_FUZZ_SECONDS:-60}" "$build-fuzz"
fi
echo "${pass:-0} passed, ${fail:-0} failed"
[ "$rc" -eq 0 ] && [ "${fail:-0}" -eq 0 ]
