#!/bin/bash
# ensfold summary flags a training share at its clamp: when the members'
# spread takes all of the replica spread (phi = 1) the statistical part is
# "unres" (unresolved) with a footnote, never a statistical sigma of 0.
# The small GAN campaign of the digest test, then the same file with its
# measured-bin phi set to 1 (h5py), as a campaign whose training noise
# dominates writes it. Then chi2 of 7.27e17 in the unmeasured bins (as a
# fill with next to no spread gives): the table stays aligned.
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

# a fill's unmeasured bins with next to no spread give chi2 of 1e15 and more
# (gauss D = 3's GAN groups): the table's columns stay aligned
/usr/bin/python3 - "$tmp/g.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    f["summary/chi2_unmeasured"][...] = 7.27e17
PY
"$exe" summary "$tmp/g.h5" >"$tmp/big.txt"
/usr/bin/python3 - "$tmp/big.txt" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
head = lines[0]
col = head.index("cov meas") + len("cov meas")  # the column's right edge
rows = [l for l in lines[1:] if l.startswith("gan-")][:4]
bad = [l for l in rows if "e+" not in l or l[col - 5:col] != l[col - 5:col].lstrip() or
       not l[:col].rstrip()[-1].isdigit() or len(l) != len(head)]
if len(rows) != 4 or bad:
    sys.exit("FAIL: summary's table misaligned with chi2 of 7.27e17:\n" + "\n".join([head] + rows))
print("summary: chi2 of 7.27e17 in 3 significant digits, the table aligned")
PY
