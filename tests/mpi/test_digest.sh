#!/usr/bin/env bash
# The same bits as the stored reference (tests/mpi/reference-digests.txt):
# the quickstart (IBU) and a small GAN campaign (tests/mpi/gan-small.yaml
# with 2 ensemble members), each at -n 1 and -n 2. Refactors must keep
# these; a change that is meant to change results updates the reference
# (tests/mpi/digest.py --update) in its own commit and says so.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
. "$src/tests/mpi/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for n in 1 2; do
  mpirun -n $n "$exe" run "$src/configs/quickstart.yaml" -o "$tmp/q$n.h5" --quiet
  /usr/bin/python3 "$src/tests/mpi/digest.py" --check quickstart "$tmp/q$n.h5" || fail=1
  mpirun -n $n "$exe" run "$src/tests/mpi/gan-small.yaml" -o "$tmp/g$n.h5" --quiet \
    --set campaign.ensemble=2 2>"$tmp/g$n.err" || { cat "$tmp/g$n.err"; exit 1; }
  /usr/bin/python3 "$src/tests/mpi/digest.py" --check gan-small "$tmp/g$n.h5" || fail=1
done
exit $fail
