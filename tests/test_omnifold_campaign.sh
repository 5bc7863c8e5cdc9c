#!/bin/bash
# OmniFold as a campaign method (issue 20), small: 
#  1. OmniFold's Gaussian example (gauss defaults: MC truth N(0.2, 0.8), data N(0, 1),
#     smearing 0.5), 10^5 events each, 3 iterations of small classifiers, 3 replicas: the
#     unfolded distribution is the data's: the median over the 4 units of the unfolded mean
#     within 0.05 of the truth's and of the width within 0.1 (the MC's: 0.2 and 0.21 off).
#     Seen over seeds 1-3: mean within 0.011, width 0.980-0.982 against 1.010. Its per-event
#     weights (campaign.event_weights: /event_weights, the MC's vertices once, a float32 row
#     per unit) histogram to /units/hist (float32: 1e-5 of the largest bin), and so do IBU's
#     in every bin that holds MC events; the settings are recorded beside them. The result
#     after each iteration (/units/iteration_hist): the last is /units/hist bit for bit.
#     omnifold.unreconstructed keep gives the same bits (every event is reconstructed, so
#     step 1b has nothing to do). tools/marginal-closure --iterations prints a line per
#     iteration, and its last iteration's figures are those recomputed here from /units/hist.
#  2. The pi0 process with both fill models beside IBU: the groups, the paired differences.
#     The fill enters the blind bins alone (MC efficiency < omnifold.blind_efficiency): there a
#     unit's result is the fill model's probability times one number (relative spread < 1e-9)
#     with every omnifold.unreconstructed; in the other bins the PS and the M2 unit of a
#     (replica, member) are equal bit for bit, and equal to those of a campaign with the M2
#     fill alone (where no unit reuses another's iterations).
set -euo pipefail
exe=${ENSFOLD_EXE:?}
here=$(cd "$(dirname "$0")" && pwd) # tests/: gauss_moments.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/g1.yaml" <<'Y'
seed: 5
process: gauss
data: {events: 100000}
mc: {events: 100000}
campaign: {replicas: 3, methods: [ibu, omnifold], event_weights: true}
binning:
  vertex: {bins: 16, lo: -4, hi: 4}
  detector: {bins: 16, lo: -4, hi: 4}
omnifold: {iterations: 3, steps: 400, batch: 512, hidden: 32}
Y
"$exe" run "$tmp/g1.yaml" -o "$tmp/g1.h5" --quiet 2>"$tmp/g1.err" ||
  { echo "FAIL: omnifold on the Gaussian example:"; cat "$tmp/g1.err"; exit 1; }
/usr/bin/python3 - "$tmp/g1.h5" "$here" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
e = f["binning_vertex/edges_x1"][()]
sys.path.insert(0, sys.argv[-1])
from gauss_moments import moments as moments_e
def moments(h):
    return moments_e(h, e)
mt, st = moments(f["truth/hist"][()])
u = f["units"]
sel = np.where((u["fill_model"][()] == 1) & (u["method"][()] == 4))[0]
mom = np.array([moments(u["hist"][i]) for i in sel])
m, s = np.median(mom[:, 0]), np.median(mom[:, 1])
print("omnifold: median over %d units: unfolded mean %.3f width %.3f (truth %.3f %.3f, MC 0.2 0.8)"
      % (len(sel), m, s, mt, st))
if not (abs(m - mt) < 0.05 and abs(s - st) < 0.1):
    sys.exit("FAIL: omnifold does not unfold the Gaussian example")
w = f["event_weights"]
x, rows = w["vertex"][()][:, 0], w["unit"][()]
if w["weights"].dtype != np.float32 or w["weights"].shape != (len(rows), len(x)) or \
        sorted(rows) != list(range(len(u["id"]))) or len(x) != 100000:
    sys.exit("FAIL: /event_weights layout: %s %s %s" % (w["weights"].shape, w["weights"].dtype, rows))
if "iterations 3" not in w.attrs["settings_omnifold"] or "iterations" not in w.attrs["settings_ibu"]:
    sys.exit("FAIL: the settings are not recorded beside the weights")
reach = np.histogram(x, bins=e)[0] > 0  # IBU's weights cover the bins that hold MC events
worst = {}
for i, unit in enumerate(rows):
    h, _ = np.histogram(x, bins=e, weights=w["weights"][i].astype(np.float64))
    ref, meth = u["hist"][unit], int(u["method"][unit])
    d = np.abs(h - ref)[reach if meth == 0 else slice(None)].max() / ref.max()
    worst[meth] = max(worst.get(meth, 0.0), float(d))
print("per-event weights against /units/hist: worst bin of the largest: ibu %.1e, omnifold %.1e"
      % (worst[0], worst[4]))
if not max(worst.values()) < 1e-5:
    sys.exit("FAIL: the per-event weights do not give the units' histograms")
ih = u["iteration_hist"][()]  # (U, 3 iterations, V): the last is the result, IBU's NaN
of = u["method"][()] == 4
if ih.shape != (len(u["id"]), 3, len(e) - 1) or not np.isnan(ih[~of]).all() or \
        not np.array_equal(ih[of][:, -1], u["hist"][()][of]):
    sys.exit("FAIL: /units/iteration_hist: shape %s or its last iteration is not the result" % (ih.shape,))
step = [np.median([moments(ih[i][k])[0] for i in sel]) for k in range(3)]
print("omnifold: median unfolded mean after iterations 1, 2, 3: %s" % " ".join("%.3f" % x for x in step))
PY
"$here/../tools/marginal-closure" "$tmp/g1.h5" --group omnifold_mc --iterations >"$tmp/it.txt" ||
  { echo "FAIL: marginal-closure --iterations:"; cat "$tmp/it.txt"; exit 1; }
/usr/bin/python3 - "$tmp/g1.h5" "$tmp/it.txt" <<'PY'
import sys, re, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
lines = [l for l in open(sys.argv[2]) if l.lstrip().startswith("iteration ")]
if [int(l.split()[1].rstrip(":")) for l in lines] != [1, 2, 3]:
    sys.exit("FAIL: marginal-closure --iterations: lines %r" % lines)
u, m = f["units"], f["measured"][()].astype(bool)
sel = (u["method"][()] == 4) & (u["fill_model"][()] == 1) & (u["replica"][()] > 0)
H, t = u["hist"][()][sel][:, m], f["truth/hist"][()][m]
mean, s = H.mean(axis=0), H.std(axis=0, ddof=1)
c2 = np.mean(((mean - t) / s) ** 2)
got = float(re.search(r"x1 ([0-9.e+]+),", lines[-1]).group(1))
print("marginal-closure --iterations: 3 lines, last x1 chi2/ndf %.3g (recomputed %.3g)" % (got, c2))
if abs(got - c2) > 0.006 * c2:  # the tool prints 3 significant digits
    sys.exit("FAIL: marginal-closure --iterations: last iteration %.4g, /units/hist gives %.4g" % (got, c2))
PY
for m in keep interpolate; do
  "$exe" run "$tmp/g1.yaml" -o "$tmp/g1$m.h5" --quiet --set omnifold.unreconstructed=$m \
    2>"$tmp/g1$m.err" || { echo "FAIL: omnifold $m:"; cat "$tmp/g1$m.err"; exit 1; }
done
/usr/bin/python3 - "$tmp/g1.h5" "$tmp/g1keep.h5" "$tmp/g1interpolate.h5" <<'PY'
import sys, h5py, numpy as np
a, b, c = (h5py.File(x, "r")["units/hist"][()] for x in sys.argv[1:])
if not (np.array_equal(a, b) and np.array_equal(a, c)):
    sys.exit("FAIL: full acceptance: omnifold.unreconstructed average, keep, interpolate differ")
print("full acceptance: average, keep and interpolate give the same bits")
PY
cat >"$tmp/pi0.yaml" <<'Y'
seed: 777
data: {events: 20000}
mc: {events: 100000}
campaign: {methods: [ibu, omnifold], fill_models: [PS, M2], replicas: 2}
detector:
  pi0: {table_dtheta: 2, table_dphi: 2}
omnifold: {iterations: 2, steps: 200, batch: 256, hidden: 16}
Y
"$exe" run "$tmp/pi0.yaml" -o "$tmp/pi0.h5" --quiet 2>"$tmp/pi0.err" ||
  { echo "FAIL: omnifold on pi0:"; cat "$tmp/pi0.err"; exit 1; }
"$exe" summary "$tmp/pi0.h5" >"$tmp/sum.txt"
for row in "omnifold +PS +2" "omnifold +M2 +2"; do
  grep -qE "^$row" "$tmp/sum.txt" || { echo "FAIL: summary lacks '$row'"; cat "$tmp/sum.txt"; exit 1; }
done
/usr/bin/python3 - "$tmp/pi0.h5" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
for g in ("groups/omnifold_PS/mean", "differences/omnifold_PS-M2"):
    if g not in f:
        sys.exit("FAIL: no %s" % g)
print("omnifold on pi0: groups and the paired difference PS - M2 written")
PY
for m in keep interpolate; do
  "$exe" run "$tmp/pi0.yaml" -o "$tmp/pi0$m.h5" --quiet --set omnifold.unreconstructed=$m \
    2>"$tmp/pi0$m.err" || { echo "FAIL: omnifold $m on pi0:"; cat "$tmp/pi0$m.err"; exit 1; }
done
"$exe" run "$tmp/pi0.yaml" -o "$tmp/pi0m2.h5" --quiet --set "campaign.fill_models=[M2]" \
  2>"$tmp/pi0m2.err" || { echo "FAIL: omnifold, fill M2 alone:"; cat "$tmp/pi0m2.err"; exit 1; }
/usr/bin/python3 - "$tmp/pi0.h5" "$tmp/pi0keep.h5" "$tmp/pi0interpolate.h5" "$tmp/pi0m2.h5" <<'PY'
import sys, h5py, numpy as np
def spread(path):
    f = h5py.File(path, "r")
    u = f["units"]
    attr = f["summary"].attrs["model_names"]  # "0=M1 1=PS 2=M2"
    attr = attr.decode() if isinstance(attr, bytes) else attr
    names = {int(k): v for k, v in (x.split("=") for x in attr.split())}
    blind = (f["inputs/efficiency"][()] < 0.05)
    worst = 0.0
    for i in np.where(u["method"][()] == 4)[0]:
        prior = f["inputs/prior/" + names[u["fill_model"][i]]][()]
        sel = blind & (prior > 0)
        q = u["hist"][i][sel] / prior[sel]
        worst = max(worst, float(q.std() / q.mean()))
    return int(sel.sum()), worst
n, avg = spread(sys.argv[1])
_, keep = spread(sys.argv[2])
_, interp = spread(sys.argv[3])
print("blind bins (%d): result / fill prior, worst relative spread over units: average %.1e, "
      "keep %.1e, interpolate %.1e" % (n, avg, keep, interp))
if not (n > 0 and avg < 1e-9 and interp < 1e-9 and keep < 1e-9):
    sys.exit("FAIL: omnifold's blind bins are not the fill model's shape")
def seen_bins(path):  # OmniFold's seen bins by (replica, member, fill)
    f = h5py.File(path, "r")
    u = f["units"]
    blind = (f["inputs/efficiency"][()] < 0.05)
    return {(int(u["replica"][i]), int(u["member"][i]), int(u["fill_model"][i])):
            u["hist"][i][~blind] for i in np.where(u["method"][()] == 4)[0]}
both, m2 = seen_bins(sys.argv[1]), seen_bins(sys.argv[4])
pairs = [(k, (k[0], k[1], 2)) for k in both if k[2] == 1]
same = sum(np.array_equal(both[a], both[b]) and np.array_equal(both[b], m2[b]) for a, b in pairs)
print("seen bins: PS, M2 and the M2-only campaign's unit equal bit for bit in %d of %d "
      "(replica, member)" % (same, len(pairs)))
if not (pairs and same == len(pairs)):
    sys.exit("FAIL: the fill model reaches OmniFold's seen bins, or reusing the iterations "
             "changes a unit")
PY
# 3. A GAN method beside OmniFold in one campaign: every unit succeeds (until this check's
#    commit a GAN unit counted OmniFold's per-iteration parts, NaN for it by design, as
#    non-finite, and all 6 failed).
"$exe" run "$here/mpi/gan-small.yaml" -o "$tmp/gm.h5" --quiet --set omnifold.steps=50 \
  --set omnifold.iterations=2 --set "campaign.methods=[gan-topo, omnifold]" \
  --set "campaign.fill_models=[PS]" 2>"$tmp/gm.err" ||
  { echo "FAIL: gan-topo beside omnifold:"; cat "$tmp/gm.err"; exit 1; }
/usr/bin/python3 - "$tmp/gm.h5" <<'PY'
import sys, h5py, numpy as np
u = h5py.File(sys.argv[1], "r")["units"]
st, me = u["status"][()], u["method"][()]
print("gan-topo beside omnifold: %d of %d GAN units and %d of %d OmniFold units succeeded"
      % ((st[me == 1] == 0).sum(), (me == 1).sum(), (st[me == 4] == 0).sum(), (me == 4).sum()))
if (st != 0).any() or not (me == 1).any():
    sys.exit("FAIL: a unit failed beside OmniFold")
PY
# 4. The MC weights' effective size (/units/iteration_effective_mc, Kish, per iteration) and
#    the warning when it is below the data's measured events: the Gaussian example with an
#    MC 5 times the data covers it (no warning); an MC of width 0.3 against the data's 1
#    does not (its importance weights have infinite variance): after 4 iterations (clip 100)
#    its weights are worth fewer events than the data's 20000, warned. The fill does not enter
#    the weights: both fills' units have the same effective sizes. Seen (seed 5): width 0.8
#    80,959-84,011, width 0.3 9,586-11,995 after iteration 4.
for w in 0.8 0.3; do
  "$exe" run "$tmp/g1.yaml" -o "$tmp/ess$w.h5" --set data.events=20000 --set campaign.replicas=2 \
    --set omnifold.steps=400 --set omnifold.iterations=4 --set omnifold.clip=100 \
    --set gauss.mc.width=$w --set "campaign.fill_models=[mc, alt]" 2>"$tmp/ess$w.err" >/dev/null ||
    { echo "FAIL: omnifold, MC width $w:"; cat "$tmp/ess$w.err"; exit 1; }
done
if grep -q "reweighted MC is worth fewer" "$tmp/ess0.8.err"; then
  echo "FAIL: warned of the MC's effective size with an MC that covers the data:"
  cat "$tmp/ess0.8.err"; exit 1
fi
grep -q "omnifold, fill alt: the reweighted MC is worth fewer events than the 20000 measured" \
  "$tmp/ess0.3.err" || { echo "FAIL: no warning with an MC of width 0.3:"; cat "$tmp/ess0.3.err"; exit 1; }
/usr/bin/python3 - "$tmp/ess0.8.h5" "$tmp/ess0.3.h5" <<'PY'
import sys, h5py, numpy as np
for path, lo, hi in ((sys.argv[1], 4e4, 1e5), (sys.argv[2], 0, 2e4)):
    u = h5py.File(path, "r")["units"]
    e, me, fill = u["iteration_effective_mc"][()], u["method"][()], u["fill_model"][()]
    of = me == 4
    alt, mc = e[of & (fill == fill.max())][:, -1], e[of & (fill == fill.min())][:, -1]
    print("%s: effective size after the last iteration, fill alt: %s of 1e5 MC events"
          % (path.split("/")[-1], " ".join("%.0f" % x for x in alt)))
    if e.shape != (len(me), 4) or not np.isnan(e[~of]).all() or \
            not (np.isfinite(e[of]).all() and (e[of] <= 1e5 + 1e-6).all()):
        sys.exit("FAIL: /units/iteration_effective_mc: shape %s, or NaN where it should not be" % (e.shape,))
    if not ((alt > lo) & (alt < hi)).all() or not np.array_equal(alt, mc):
        sys.exit("FAIL: the effective size outside (%g, %g), or the fills' differ" % (lo, hi))
PY
