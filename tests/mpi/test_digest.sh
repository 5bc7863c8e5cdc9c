#!/usr/bin/env bash
# The same bits as the stored reference (tests/mpi/reference-digests.txt),
# each at -n 1 and -n 2: the quickstart (IBU); a small GAN campaign
# (tests/mpi/gan-small.yaml with 2 ensemble members); the same with the
# blind channel on (gan.fill_weight 1); the classical methods on the cos-phi
# binning with the MC resampled (tests/mpi/classic-small.yaml); and IBU on
# data and MC read from event files that `ensfold generate` writes
# (tests/mpi/files-small.yaml). Refactors must keep these; a change that is
# meant to change results updates the reference (tests/mpi/digest.py
# --update) in its own commit and says so. The GAN campaigns' references are
# kept per OpenBLAS kernel (digest.py); on a kernel without one, the -n 1
# and -n 2 runs must still give the same bits.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
. "$src/tests/mpi/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {
  local rc=0
  /usr/bin/python3 "$src/tests/mpi/digest.py" --check "$1" "$2" || rc=$?
  if [ $rc = 3 ]; then # no reference for this kernel: compared across -n below
    echo "$1 $(/usr/bin/python3 "$src/tests/mpi/digest.py" "$2")" >>"$tmp/unreferenced"
  elif [ $rc != 0 ]; then
    fail=1
  fi
}
"$exe" generate --model M1 --kind data -n 20000 -o "$tmp/files-data.h5" --seed 5 --quiet \
  --config "$src/tests/mpi/gan-small.yaml" >/dev/null
"$exe" generate --model PS --kind mc -n 100000 -o "$tmp/files-mc.h5" --seed 6 --quiet \
  --config "$src/tests/mpi/gan-small.yaml" >/dev/null
cp "$src/tests/mpi/files-small.yaml" "$tmp/"
for n in 1 2; do
  mpirun -n $n "$exe" run "$src/configs/quickstart.yaml" -o "$tmp/q$n.h5" --quiet
  check quickstart "$tmp/q$n.h5"
  mpirun -n $n "$exe" run "$src/tests/mpi/gan-small.yaml" -o "$tmp/g$n.h5" --quiet \
    --set campaign.ensemble=2 2>"$tmp/g$n.err" || { cat "$tmp/g$n.err"; exit 1; }
  check gan-small "$tmp/g$n.h5"
  mpirun -n $n "$exe" run "$src/tests/mpi/gan-small.yaml" -o "$tmp/w$n.h5" --quiet \
    --set gan.fill_weight=1 2>"$tmp/w$n.err" || { cat "$tmp/w$n.err"; exit 1; }
  check gan-small-fill "$tmp/w$n.h5"
  mpirun -n $n "$exe" run "$src/tests/mpi/classic-small.yaml" -o "$tmp/c$n.h5" --quiet
  check classic-small "$tmp/c$n.h5"
  (cd "$tmp" && mpirun -n $n "$exe" run files-small.yaml -o "f$n.h5" --quiet)
  check files-small "$tmp/f$n.h5"
done
if [ -s "$tmp/unreferenced" ]; then
  for name in $(cut -d' ' -f1 "$tmp/unreferenced" | sort -u); do
    if [ "$(grep "^$name " "$tmp/unreferenced" | cut -d' ' -f2 | sort -u | wc -l)" != 1 ]; then
      echo "$name: -n 1 and -n 2 differ:"; grep "^$name " "$tmp/unreferenced"; fail=1
    else
      echo "$name: -n 1 and -n 2 give the same bits (no reference for this kernel)"
    fi
  done
fi
exit $fail
