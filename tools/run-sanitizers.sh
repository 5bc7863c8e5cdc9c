#!/usr/bin/env bash
# Build with AddressSanitizer and UndefinedBehaviorSanitizer (meson's
# b_sanitize option) into BUILD_DIR (default build-asan), run the unit suite
# and one small MPI campaign under them. Any sanitizer report fails.
# Prints "N passed, N failed" for what it ran.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-asan}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false >/dev/null ||
    { echo "sanitizer build: meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi
meson compile -C "$build" >"$build/compile.log" 2>&1 ||
  { cat "$build/compile.log"; echo "0 passed, 1 failed"; exit 1; }
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
# Under the sanitizers the unit tests run 3-5 times slower than the timeouts in
# tests/meson.build allow for (test_surrogate: 23 s in the debug build, 103 s
# alone under ASan, past its 120 s beside another test): three times the time.
meson test -C "$build" --suite unit --print-errorlogs --num-processes 2 --timeout-multiplier 3
rc=$?
read -r pass fail skip < <(/usr/bin/python3 tools/testlog-counts.py "$build/meson-logs/testlog.json")
# the config path and one small campaign (Open MPI's own allocations look
# like leaks at exit, so leak detection is off for the MPI run only)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
if "$build/ensfold" validate configs/quickstart.yaml >/dev/null; then
  pass=$((pass + 1)); echo "asan: ensfold validate OK"
else
  fail=$((fail + 1)); echo "asan: ensfold validate FAILED"
fi
if ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 mpirun -n 2 "$build/ensfold" run \
     tests/mpi/small.yaml -o "$tmp/asan.h5" --quiet && [ -f "$tmp/asan.h5" ]; then
  pass=$((pass + 1)); echo "asan: 2-rank campaign OK"
else
  fail=$((fail + 1)); echo "asan: 2-rank campaign FAILED"
fi
rm -rf "$tmp"
[ "${skip:-0}" -gt 0 ] && echo "sanitizers: $skip skipped"
echo "sanitizers: ${pass:-0} passed, ${fail:-0} failed"
[ "$rc" -eq 0 ] && [ "${fail:-0}" -eq 0 ]
