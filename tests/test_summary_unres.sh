#!/bin/bash
# ensfold summary flags a training share at its clamp: when the members'
# spread takes all of the replica spread (phi = 1) the statistical part is
# "unres" (unresolved) with a footnote, never a statistical sigma of 0.
# The small GAN campaign of the digest test, then the same file with its
# measured-bin phi set to 1 (h5py), as a campaign whose training noise
# dominates writes it.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$exe" run "$src/tests/mpi/gan-small.yaml" -o "$tmp/g.h5" --quiet --set campaign.ensemble=2 \
  2>"$tmp/run.err" || { cat "$tmp/run.err"; exit 1; }
"$exe" summary "$tmp/g.h5" >"$tmp/before.txt"
if grep -q "unres" "$tmp/before.txt"; then
  echo "FAIL: unres shown for phi < 1:"; grep "unres" "$tmp/before.txt"; exit 1
fi
/usr/bin/python3 - "$tmp/g.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    d = f["summary/training_fraction_measured"]
    d[...] = np.where(np.asarray(f["summary/members"]) > 1, 1.0, d[()])
PY
"$exe" summary "$tmp/g.h5" >"$tmp/after.txt"
n=$(grep -cE "^gan-(topo|mixed) +(PS|M2) +2 +1\.00\|.* unres\|" "$tmp/after.txt" || true)
if [ "$n" != 4 ] || ! grep -q "unres (unresolved): in the measured bins" "$tmp/after.txt"; then
  echo "FAIL: expected 4 GAN rows with unres and the footnote, got $n:"; cat "$tmp/after.txt"; exit 1
fi
echo "summary: phi = 1 shown as unres in 4 GAN groups, with the footnote; none before"
