#!/usr/bin/env bash
# The user guide's 3-observable walkthrough (issue 19), run as written: the
# fenced bash block after the own-data-3d-walkthrough marker in
# docs/user-guide.md, on CSV exports made here by a stand-in for the user's
# framework (pt bounded, dphi periodic, y unbounded; a blind category where
# |y| >= 2), with ensfold and the tools on PATH, in a clean environment.
# Checks it ends in a result with the product layout and plots for every
# observable, and that IBU follows the data where the detector sees (the
# data's pt is harder than the MC's: the unfolded mean pt is the data's
# truth within 3 sigma of the replicas, not the MC's).
set -euo pipefail
. "$(dirname "$0")/walkthrough_lib.sh"
/usr/bin/python3 - <<'PY'
import numpy as np
rng = np.random.default_rng(7)
def sample(n, mean_pt, a2):
    pt = np.minimum(rng.exponential(mean_pt, n), 499.0)
    dphi = np.empty(0)
    while dphi.size < n:  # 1 + a2 cos 2 dphi by acceptance-rejection
        x = rng.uniform(-np.pi, np.pi, 2 * n)
        dphi = np.concatenate([dphi, x[rng.uniform(0, 1 + a2, 2 * n) < 1 + a2 * np.cos(2 * x)]])
    return pt, dphi[:n], rng.normal(0.0, 1.0, n)
def write(name, n, mean_pt, a2, mc):
    pt, dphi, y = sample(n, mean_pt, a2)
    seen = np.where(np.abs(y) < 2.0, 0.9, 0.0)
    topo = np.where(rng.uniform(0, 1, n) < seen, 0, 1)
    rpt = np.clip(pt * (1 + 0.05 * rng.normal(size=n)), 0, 500)
    rphi = np.angle(np.exp(1j * (dphi + 0.05 * rng.normal(size=n))))
    ry = y + 0.1 * rng.normal(size=n)
    with open(name, "w") as out:
        out.write("topology,pt,dphi,y" + (",true_pt,true_dphi,true_y,p0,p1" if mc else "") + "\n")
        for i in range(n):
            reco = ["%.9g" % v for v in (rpt[i], rphi[i], ry[i])] if topo[i] == 0 else ["", "", ""]
            row = [str(topo[i])] + reco
            if mc:
                row += ["%.9g" % v for v in (pt[i], dphi[i], y[i], seen[i], 1 - seen[i])]
            out.write(",".join(row) + "\n")
    if not mc:  # the data's truth in the seen region (|y| < 2, pt < 300), for the check below
        sel = (np.abs(y) < 2) & (pt < 300)
        np.save("truth_pt.npy", pt[sel])
write("my-data3.csv", 20000, 90.0, 0.3, False)
write("my-mc3.csv", 200000, 80.0, 0.0, True)
PY
run_walkthrough own-data-3d-walkthrough walkthrough.log
for o in pt dphi y; do
  for p in "proj_$o.png" "proj_${o}_ibu_mc.png" "proj_${o}_ibu_flat.png"; do
    [ -s "my-plots3/$p" ] || { echo "FAIL: no plot my-plots3/$p"; cat walkthrough.log; exit 1; }
  done
done
grep -qE "^ibu +flat +20 " walkthrough.log || { echo "FAIL: summary row"; cat walkthrough.log; exit 1; }
/usr/bin/python3 - <<'PY'
import sys, h5py, numpy as np
f = h5py.File("my-results3.h5", "r")
def want(c, what):
    if not c:
        sys.exit("FAIL: " + what)
want(f.attrs["process"] == "files" and f["summary"].attrs["model_names"] == "0=mc 1=flat",
     "process attributes")
want(f["binning_vertex"].attrs["observables"] == "pt,dphi,y", "observables")
e = f["binning_vertex/edges_pt"][()]
want(len(e) == 11 and e[-1] == 300, "pt edges")
# the mean pt over the seen y bins (|y| < 2: the middle 4 of 6), IBU with the mc fill
g = f["groups/ibu_mc"]
m = g["mean"][()].reshape(10, 8, 6)[:, :, 1:5].sum(axis=(1, 2))
centres = 0.5 * (e[1:] + e[:-1])
reps = f["units/hist"][()]
sel = (f["units/method"][()] >= 0) & (f["units/fill_model"][()] == 0) & (f["units/replica"][()] > 0)
per = reps[sel].reshape(-1, 10, 8, 6)[:, :, :, 1:5].sum(axis=(2, 3))
mean_pt = (m * centres).sum() / m.sum()
sd = ((per * centres).sum(1) / per.sum(1)).std(ddof=1)
t = np.load("truth_pt.npy")
tb = np.histogram(t, bins=e)[0]
truth_pt = (tb * centres).sum() / tb.sum()
mc_pt = 80.0 * (1 - (300 / 80.0 + 1) * np.exp(-300 / 80.0)) / (1 - np.exp(-300 / 80.0))
print("binned mean pt where seen: unfolded %.2f +- %.2f, data truth %.2f, MC truth ~%.1f"
      % (mean_pt, sd, truth_pt, mc_pt))
want(abs(mean_pt - truth_pt) < 3 * sd + 0.5, "the unfolded pt is not the data's")
want(abs(mean_pt - truth_pt) < abs(mean_pt - mc_pt), "closer to the MC than to the data")
PY
echo "3-observable walkthrough passed"
