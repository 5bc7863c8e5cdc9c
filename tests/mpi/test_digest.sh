#!/usr/bin/env bash
# The same bits as the stored reference (tests/mpi/reference-digests.txt),
# each at -n 1 and -n 2: the quickstart (IBU); a small GAN campaign
# (tests/mpi/gan-small.yaml with 2 ensemble members); the same with the
# blind channel on (gan.fill_weight 1); the classical methods on the cos-phi
# binning with the MC resampled (tests/mpi/classic-small.yaml); and IBU on
# data and MC read from event files that `ensfold generate` writes
# (tests/mpi/files-small.yaml). Refactors must keep these; a change that is
# meant to change results updates the reference (tests/mpi/digest.py
# --update) in its own commit and says so.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
. "$src/tests/mpi/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { /usr/bin/python3 "$src/tests/mpi/digest.py" --check "$1" "$2" || fail=1; }
"$exe" generate --model M1 --kind data -n 20000 -o "$tmp/files-data.h5" --seed 5 --quiet \
  --config "$src/tests/mpi/gan-small.yaml" >/dev/null
"$exe" generate --model PS --kind mc -n 100000 -o "$tmp/files-mc.h5" --seed 6 --quiet \
  --config "$src/tests/mpi/gan-small.yaml" >/dev/null
cp "$src/tests/mpi/files-small.yaml" "$tmp/"
for n in 1 2; do
  mpirun -n $n "$exe" run "$src/configs/quickstart.yaml" -o "$tmp/q$n.h5" --quiet
  /usr/bin/python3 "$src/tests/mpi/digest.py" --check quickstart "$tmp/q$n.h5" || fail=1
  mpirun -n $n "$exe" run "$src/tests/mpi/gan-small.yaml" -o "$tmp/g$n.h5" --quiet \
    --set campaign.ensemble=2 2>"$tmp/g$n.err" || { cat "$tmp/g$n.err"; exit 1; }
  /usr/bin/python3 "$src/tests/mpi/digest.py" --check gan-small "$tmp/g$n.h5" || fail=1
  mpirun -n $n "$exe" run "$src/tests/mpi/gan-small.yaml" -o "$tmp/w$n.h5" --quiet \
    --set gan.fill_weight=1 2>"$tmp/w$n.err" || { cat "$tmp/w$n.err"; exit 1; }
  check gan-small-fill "$tmp/w$n.h5"
  mpirun -n $n "$exe" run "$src/tests/mpi/classic-small.yaml" -o "$tmp/c$n.h5" --quiet
  check classic-small "$tmp/c$n.h5"
  (cd "$tmp" && mpirun -n $n "$exe" run files-small.yaml -o "f$n.h5" --quiet)
  check files-small "$tmp/f$n.h5"
done
exit $fail
