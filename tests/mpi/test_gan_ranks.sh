#!/usr/bin/env bash
# GAN campaigns with -n 1, 2 and 3 (oversubscribed) give bit-identical
# result datasets (networks depend only on their keys and streams, never on
# the rank that trained them or on which units a rank kept networks for),
# with the per-unit efficiency maps and loss curves in the file; and with
# shared detector networks a rank trains each (method, replica, member) key
# at most once, so ranks keep and reuse them (the affinity dispatch). With
# campaign.bootstrap_mc the detector networks train on the replica's MC:
# -n 1 and -n 2 still agree bit for bit, replica 0 is the run without it,
# every later replica's result and efficiency map differ from it, and the
# fills of a (method, replica) still share one efficiency map.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
. "$src/tests/mpi/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cfg=$src/tests/mpi/gan-small.yaml
for n in 1 2 3; do
  start=$(date +%s%N)
  mpirun -n $n "$exe" run "$cfg" -o "$tmp/r$n.h5" --quiet
  echo "# -n $n: $(( ($(date +%s%N) - start) / 1000000 )) ms"
done
/usr/bin/python3 "$src/tests/mpi/compare_results.py" "$tmp/r1.h5" "$tmp/r2.h5"
/usr/bin/python3 "$src/tests/mpi/compare_results.py" "$tmp/r1.h5" "$tmp/r3.h5"
/usr/bin/python3 - "$tmp/r1.h5" "$tmp/r3.h5" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for name in ("efficiency", "loss_d", "loss_g", "hist"):
    x, y = a["units/" + name][()], b["units/" + name][()]
    assert x.shape == y.shape and np.array_equal(x, y), name
u = b["units"]
assert (u["status"][()] == 0).all(), u["status"][()]
assert u["efficiency"].shape[1] == 4 and u["loss_d"].shape[1] == 50
assert np.all(np.isfinite(u["loss_d"][()])) and np.any(u["loss_d"][()] != 0)
# efficiency maps are probability vectors
s = u["efficiency"][()].sum(axis=1)
assert np.allclose(s, 1, atol=1e-4), s.min()
ranks = u["rank"][()]
print("# -n 3: units per rank", {int(r): int((ranks == r).sum()) for r in set(ranks.tolist())})
# units sharing a (method, replica, member) key that ran on the same rank could
# reuse its networks: with affinity, most keys stay on one rank. A retried
# unit (attempts > 1) trains its networks under a new key wherever it runs,
# so only first-try units count here.
method, rep, tries = u["method"][()], u["replica"][()], u["attempts"][()]
member = u["member"][()]
keys = {}
for m, r, e, k, a in zip(method, rep, member, ranks, tries):
    if a == 1:
        keys.setdefault((int(m), int(r), int(e)), set()).add(int(k))
spread = sum(len(v) for v in keys.values())
print("# -n 3: %d (method, replica, member) keys, %d (key, rank) pairs over %d first-try units "
      "(%d retried)" % (len(keys), spread, int((tries == 1).sum()), int((tries > 1).sum())))
assert spread <= len(keys) + 2, keys
PY
for n in 1 2; do
  mpirun -n $n "$exe" run "$cfg" -o "$tmp/b$n.h5" --quiet --set campaign.bootstrap_mc=true
done
/usr/bin/python3 "$src/tests/mpi/compare_results.py" "$tmp/b1.h5" "$tmp/b2.h5"
/usr/bin/python3 - "$tmp/r1.h5" "$tmp/b1.h5" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r")["units"], h5py.File(sys.argv[2], "r")["units"]
rep, method, fill = b["replica"][()], b["method"][()], b["fill_model"][()]
assert (b["status"][()] == 0).all(), b["status"][()]
for name in ("hist", "efficiency"):
    x, y = a[name][()], b[name][()]
    same = np.array([np.array_equal(x[i], y[i]) for i in range(len(rep))])
    assert same[rep == 0].all() and not same[rep > 0].any(), (name, same, rep)
eff = b["efficiency"][()]
for m in set(method.tolist()):
    for r in set(rep.tolist()):
        rows = np.flatnonzero((method == m) & (rep == r))
        assert len(set(fill[rows].tolist())) > 1
        for i in rows[1:]:
            assert np.array_equal(eff[i], eff[rows[0]]), (m, r)
print("# bootstrap_mc: replica 0 unchanged, %d later units differ, fills share their maps"
      % int((rep > 0).sum()))
PY
echo "gan ranks test passed"
