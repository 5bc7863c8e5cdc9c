#!/bin/bash
# Each projection's own training share phi in the result file and in `ensfold summary`
# (docs/methods.md, "The training share of a projection"). A small gauss D = 2 campaign with
# pairs, IBU and OmniFold (short trainings, 8 replicas x 2 members: its shares lie between 0
# and 1, where a wrong one shows). Checked against numpy from /units/hist:
#  - /groups/<g>/proj_*/training_fraction: the share of the members projected over every vertex
#    bin and over the measured ones; replicas; sigma_stat = sqrt(1 - phi) sigma and
#    sigma_central = sqrt(1 - phi + phi / R) sigma; IBU 0 and sigma_stat = sigma;
#  - the shares are the projections' own: one differs from the product bins' by more than 0.05
#    (seen: x1 0.27, x2 0.65, x1:x2 0.45 against 0.45);
#  - summary's marginal table: every row's chi2/ndf (every bin, measured bins) is the projected
#    mean against the projected truth at the projected replica variance x (1 - phi + phi / R)
#    of that row's own share (before: every bin at its product share);
#  - a projection's share at its clamp (1) is marked '^' in that row, with a footnote.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/p.yaml" <<'Y'
seed: 7
process: gauss
gauss: {dim: 2, acceptance: standard, data: {correlation: 0.4}}
data: {events: 20000}
mc: {events: 100000}
campaign: {replicas: 8, ensemble: 2, methods: [ibu, omnifold], fill_models: [mc]}
omnifold: {steps: 100, iterations: 2}
binning:
  vertex: {bins: [6, 5], lo: -3, hi: 3}
  detector: {bins: [6, 5], lo: -3, hi: 3}
  pairs: true
Y
"$exe" run "$tmp/p.yaml" -o "$tmp/p.h5" --quiet 2>"$tmp/run.err" || { cat "$tmp/run.err"; exit 1; }
"$exe" summary "$tmp/p.h5" >"$tmp/sum.txt"
/usr/bin/python3 - "$tmp/p.h5" "$tmp/sum.txt" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
def want(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
def share(Y):
    """phi of members Y (R, M, n) as docs/methods.md pools it, clamped; NaN without spread."""
    R, M = Y.shape[:2]
    ym = Y.mean(axis=1)
    s2, w = ym.var(axis=0, ddof=1), Y.var(axis=1, ddof=1).mean(axis=0)
    mu, ok = np.maximum(np.abs(ym.mean(axis=0)), 1.0), s2 > 0
    return min(max(np.sum(w[ok] / M / mu[ok]) / np.sum(s2[ok] / mu[ok]), 0.0), 1.0) if ok.any() else np.nan
names = f["binning_vertex"].attrs["observables"].split(",")
shape = [len(f["binning_vertex/edges_" + n][()]) - 1 for n in names]
V = int(np.prod(shape))
ix = np.array(np.unravel_index(np.arange(V), shape))
projs = {"proj_x1": ix[0], "proj_x2": ix[1], "pair_x1_x2": ix[0] * shape[1] + ix[1]}
labels = {"proj_x1": "x1", "proj_x2": "x2", "pair_x1_x2": "x1:x2"}
meas = f["measured"][()].astype(bool)
truth = f["truth/hist"][()]
u = f["units"]
methods = dict(x.split("=") for x in f["summary"].attrs["method_names"].split())
rows = {}
for line in open(sys.argv[2]):
    t = line.split()
    if len(t) == 8 and t[0] in ("ibu_mc", "omnifold_mc"):
        rows[(t[0], t[1])] = (float(t[2]), float(t[5]))
seen_diff = 0.0
for gi, (me, fi) in enumerate(zip(f["summary/method"][()], f["summary/fill_model"][()])):
    gname = "%s_mc" % methods[str(me)]
    g = f["groups/" + gname]
    sel = (u["method"][()] == me) & (u["fill_model"][()] == fi) & (u["replica"][()] > 0)
    rep, mem = u["replica"][()][sel], u["member"][()][sel]
    R, M = len(set(rep)), len(set(mem))
    Y = u["hist"][()][sel][np.lexsort((mem, rep))].reshape(R, M, V)
    prod = f["summary/training_fraction_measured"][gi]
    for p, idx in projs.items():
        m = idx.max() + 1
        P = np.zeros((m, V)); P[idx, np.arange(V)] = 1
        Pm = P * meas[None, :]
        pg = g[p]
        got = pg["training_fraction"][()]
        if methods[str(me)] == "ibu":  # deterministic: one member, no training share
            want(np.all(got == 0), "%s %s: IBU's share %r, not 0" % (gname, p, got))
        else:
            phi = np.array([share(np.einsum("iv,rmv->rmi", Q, Y)) for Q in (P, Pm)])
            want(np.allclose(got, phi, rtol=1e-10, atol=1e-12),
                 "%s %s: training_fraction %r, numpy %r" % (gname, p, got, phi))
            seen_diff = max(seen_diff, abs(got[1] - prod))
        want(int(pg["replicas"][0]) == R, "%s %s: replicas %r, %d used" % (gname, p, pg["replicas"][()], R))
        sig, ph = pg["sigma"][()], got[0]
        want(np.allclose(pg["sigma_stat"][()], np.sqrt(1 - ph) * sig, rtol=1e-12) and
             np.allclose(pg["sigma_central"][()], np.sqrt(1 - ph + ph / R) * sig, rtol=1e-12),
             "%s %s: sigma_stat / sigma_central not at the projection's phi" % (gname, p))
        cov = g["cov"][()]
        fig = []
        for Q, c in ((P, got[0]), (Pm, got[1])):
            var = np.einsum("iv,vw,iw->i", Q, cov, Q) * (1 - c + c / R)
            res = Q @ g["mean"][()] - Q @ truth
            k = var > 0
            fig.append(np.sum(res[k] ** 2 / var[k]) / k.sum())
        row = rows.get((gname, labels[p]))
        want(row is not None, "summary has no row %s %s" % (gname, labels[p]))
        want(all(abs(a - b) <= 0.006 + 1e-4 * b for a, b in zip(row, fig)),
             "summary %s %s: chi2/ndf %r, numpy at the projection's own phi %r" % (gname, labels[p], row, fig))
        print("%-12s %-6s phi %.3f / %.3f (product bins %.3f), summary chi2/ndf %.2f / %.2f"
              % (gname, labels[p], got[0], got[1], prod, row[0], row[1]))
want(seen_diff > 0.05, "OmniFold's projections all at the product bins' share (largest "
     "difference %.3f): not their own" % seen_diff)
PY
# a projection's share at its clamp (phi = 1, as a campaign whose training noise dominates
# writes it) is marked '^' with a footnote; none before
! grep -q "at its clamp" "$tmp/sum.txt" || { echo "FAIL: clamp footnote for phi < 1:"; cat "$tmp/sum.txt"; exit 1; }
/usr/bin/python3 - "$tmp/p.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["groups/omnifold_mc/proj_x2/training_fraction"][...] = [1.0, 1.0]
PY
"$exe" summary "$tmp/p.h5" >"$tmp/clamp.txt"
n=$(grep -cE "^omnifold_mc +x2 .*\)\^ .*\)\^ " "$tmp/clamp.txt" || true)
m=$(grep -c ")^ " "$tmp/clamp.txt" || true)
if [ "$n" != 1 ] || [ "$m" != 1 ] || ! grep -q "training share at its clamp (phi = 1)" "$tmp/clamp.txt"; then
  echo "FAIL: expected omnifold_mc x2 alone marked at the clamp, with the footnote ($n, $m):"
  cat "$tmp/clamp.txt"; exit 1
fi
echo "summary: a projection's phi at its clamp marked, with the footnote; none before"
