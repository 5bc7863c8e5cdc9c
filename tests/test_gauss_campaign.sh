#!/bin/bash
# Campaigns on the gauss process (issue 19): observables other than pi0's,
# binned by the product scheme, end to end.
#  1. D = 2, standard acceptance (blind, partial, full), event files written
#     by `ensfold generate` and read back through data.file / mc.file: IBU
#     runs; the result file has the product layout (edges
#     and projections per observable, the process and its model names) and
#     `summary` names the gauss fill models; ensfold-plot draws every
#     observable's projections.
#  2. tools/marginal-closure on IBU with generated D = 2 pseudo-data. The GAN methods on
#     gauss: D = 2 with the standard acceptance runs and learns the efficiency maps; D = 1
#     (OmniFold's Gaussian example) unfolds to the data's mean and width, and with a vertex
#     range that leaves out a third of it, to the truth's total in that range; with a training
#     too short, gan.bias_correction takes back most of G's width bias; with a vertex range of
#     [-1, 1] the refinement leaves the edge bins where G put them (it sees G's samples outside).
#  3. Closure: D = 1 (OmniFold's Gaussian example with smearing 0.2), MC
#     from the data model so the response's within-bin shape is the data's,
#     50 IBU iterations, 20 replicas: the per-bin pulls of the mean against
#     the exact truth are standard (mean pull^2 < 3, the expectation being
#     (R-1)/(R-3) = 1.12 with an sd of about 0.45 over 12 bins; |pull| < 5).
#     With an MC thinner than the data IBU warns and closes with campaign.bootstrap_mc; on
#     OmniFold's Gaussian example with it, IBU closes with either fill; with bins twice as
#     wide as the smearing it closes with the MC reweighted inside the bins (ibu.reweight).
#  4. A fill model from an MC file (campaign.fill_models: [alt, alt-gen.h5]).
#  5. Unbinned output (campaign.unbinned).
#  6. gan.partly_blind fill: the blind part of a measured bin follows the fill model.
#  Refolding (/summary/refold_chi2) is checked in 3., on IBU.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
here=$(cd "$(dirname "$0")" && pwd) # tests/: gauss_moments.py, measured_pulls.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/g2.yaml" <<'Y'
seed: 11
process: gauss
gauss: {dim: 2, acceptance: standard, data: {correlation: 0.4}, resolution: [0.2, 0.3]}
data: {source: file, file: data.h5}
mc: {source: file, file: mc.h5}
campaign: {replicas: 3, methods: [ibu]}
binning:
  vertex: {bins: [8, 6], lo: -3.5, hi: 3.5}
  detector: {bins: [8, 6], lo: -3.5, hi: 3.5}
  pairs: true
Y
"$exe" generate --config "$tmp/g2.yaml" --model data --kind data -n 20000 -o "$tmp/data.h5" -q \
  >/dev/null
"$exe" generate --config "$tmp/g2.yaml" --model mc --kind mc -n 100000 -o "$tmp/mc.h5" -q \
  >/dev/null
"$exe" run "$tmp/g2.yaml" -o "$tmp/g2.h5" --quiet 2>"$tmp/run.err" || { cat "$tmp/run.err"; exit 1; }
"$exe" summary "$tmp/g2.h5" >"$tmp/sum.txt"
for row in "ibu +mc +3" "ibu +alt +3"; do
  grep -qE "^$row" "$tmp/sum.txt" || { echo "FAIL: summary lacks a row '$row':"; cat "$tmp/sum.txt"; exit 1; }
done
/usr/bin/python3 - "$tmp/g2.h5" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
def want(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
want(f.attrs["process"] == "gauss", "process attribute %r" % f.attrs.get("process"))
want(f["summary"].attrs["model_names"] == "0=data 1=mc 2=alt",
     "model_names %r" % f["summary"].attrs.get("model_names"))
b = f["binning_vertex"]
want(b.attrs["scheme"] == "product" and b.attrs["observables"] == "x1,x2", "binning attributes")
want(b["edges_x1"].shape == (9,) and b["edges_x2"].shape == (7,), "edges shapes")
want(abs(b["edges_x2"][0] + 3.5) < 1e-12 and abs(b["edges_x2"][-1] - 3.5) < 1e-12, "edges range")
u = f["units"]
nu = u["id"].shape[0]
want(u["proj_x1"].shape == (nu, 8) and u["proj_x2"].shape == (nu, 6), "projections")
want(abs(u["proj_x1"][0].sum() - u["hist"][0].sum()) < 1e-6 * u["hist"][0].sum(), "projection sum")
# binning.pairs: per unit the 2-D projection, per group every projection's mean, sigma and cov,
# each the projection of the full histogram / covariance (numpy's sums)
import numpy as np
h = u["hist"][()].reshape(nu, 8, 6)
want(u["pair_x1_x2"].shape == (nu, 48) and np.allclose(u["pair_x1_x2"][()], h.reshape(nu, 48)),
     "unit pair = the histogram for D = 2")
g = f["groups/ibu_mc"]
C = g["cov"][()].reshape(8, 6, 8, 6)
want(np.allclose(g["proj_x2/mean"][()], g["mean"][()].reshape(8, 6).sum(0)), "group proj mean")
want(np.allclose(g["proj_x1/cov"][()], C.sum(axis=(1, 3))), "group proj cov")
want(np.allclose(g["proj_x2/sigma"][()], np.sqrt(np.diag(C.sum(axis=(0, 2))))), "group proj sigma")
want(np.allclose(g["pair_x1_x2/cov"][()], g["cov"][()]), "group pair cov = cov for D = 2")
want(u["efficiency"].shape == (nu, 3, 48), "efficiency (units, K = 3, bins)")
want(sorted(f["inputs/prior"].keys()) == ["alt", "mc"], "priors %r" % list(f["inputs/prior"].keys()))
want(f["unmeasured_class"].shape == (48,), "classes")
print("gauss D = 2 from files: product layout, %d units, model names data/mc/alt" % nu)
PY
"$(dirname "$0")/../tools/ensfold-plot" "$tmp/g2.h5" -o "$tmp/plots" -q >"$tmp/plots.txt"
for p in proj_x1.png proj_x2.png proj_x1_ibu_mc.png proj_x2_ibu_alt.png plotdata.npz; do
  [ -s "$tmp/plots/$p" ] || { echo "FAIL: ensfold-plot wrote no $p:"; cat "$tmp/plots.txt"; exit 1; }
done
# 2. GAN methods on the gauss observables (the generic feature map, featmap.h)
#  a. D = 2 with the standard acceptance (a blind region, a partial category that loses x2):
#     both GAN methods run on the event files; their efficiency maps (K = 3) are learnt within
#     0.15 of the exact ones in every cell (seen at these settings: 0.03-0.06)
sed -e 's/^data: .*/data: {events: 20000}/' -e 's/^mc: .*/mc: {events: 100000}/' \
  "$tmp/g2.yaml" >"$tmp/g2gen.yaml" # generated: the file then holds the exact efficiency
#     tools/marginal-closure on IBU's campaign of the generated pseudo-data (its truth known):
#     every group's marginals and pair over the measured bins, and its all-bins line equal
#     to the mean pull^2 over /measured at sigma_central computed here
"$exe" run "$tmp/g2gen.yaml" -o "$tmp/ibu2.h5" --quiet 2>"$tmp/ibu2.err" ||
  { echo "FAIL: IBU on generated gauss D = 2:"; cat "$tmp/ibu2.err"; exit 1; }
"$(dirname "$0")/../tools/marginal-closure" "$tmp/ibu2.h5" --pairs >"$tmp/mc.txt" ||
  { echo "FAIL: marginal-closure:"; cat "$tmp/mc.txt"; exit 1; }
/usr/bin/python3 - "$tmp/ibu2.h5" "$tmp/mc.txt" <<'PY'
import sys, h5py, numpy as np
f, out = h5py.File(sys.argv[1], "r"), open(sys.argv[2]).read()
for g in ("ibu_mc", "ibu_alt"):
    blk = out.split(g + ":")[1].split("\n")
    labels = [l.split()[0] for l in blk[1:4]]
    if labels != ["x1", "x2", "x1:x2"]:
        sys.exit("FAIL: marginal-closure %s lines %r:\n%s" % (g, labels, out))
    m = f["measured"][()].astype(bool)
    gr = f["groups/" + g]
    ok = m & (gr["sigma_central"][()] > 0)
    c2 = np.mean(((gr["mean"][()] - f["truth/hist"][()]) / gr["sigma_central"][()])[ok] ** 2)
    fields = blk[4].split()
    if int(fields[1]) != ok.sum() or abs(float(fields[5].rstrip(",")) / c2 - 1) > 1e-2:
        sys.exit("FAIL: marginal-closure %s: %r, expected %d bins, %.3g" % (g, blk[4], ok.sum(), c2))
print("marginal-closure: marginals and pair of both groups, all-bins chi2/ndf as computed here")
PY
#     --truth: the truth from a .npy (pseudo-data made outside ensfold) gives the same report
#     as the file's own /truth/hist, a truth 10 % higher another; a truth of the wrong size is
#     refused, naming the file.
/usr/bin/python3 -c "import sys, h5py, numpy as np; t = h5py.File(sys.argv[1], 'r')['truth/hist'][()]; np.save(sys.argv[2], t); np.save(sys.argv[3], t[:-1]); np.save(sys.argv[4], 1.1 * t)" \
  "$tmp/ibu2.h5" "$tmp/truth.npy" "$tmp/short.npy" "$tmp/high.npy"
"$(dirname "$0")/../tools/marginal-closure" "$tmp/ibu2.h5" --pairs --truth "$tmp/high.npy" >"$tmp/mch.txt" &&
  ! cmp -s "$tmp/mc.txt" "$tmp/mch.txt" || { echo "FAIL: marginal-closure --truth has no effect:"; cat "$tmp/mch.txt"; exit 1; }
"$(dirname "$0")/../tools/marginal-closure" "$tmp/ibu2.h5" --pairs --truth "$tmp/truth.npy" >"$tmp/mct.txt" ||
  { echo "FAIL: marginal-closure --truth:"; cat "$tmp/mct.txt"; exit 1; }
cmp -s "$tmp/mc.txt" "$tmp/mct.txt" || { echo "FAIL: marginal-closure --truth differs from /truth/hist:"; diff "$tmp/mc.txt" "$tmp/mct.txt"; exit 1; }
! "$(dirname "$0")/../tools/marginal-closure" "$tmp/ibu2.h5" --truth "$tmp/short.npy" >/dev/null 2>"$tmp/mcs.err" &&
  grep -q "short.npy: want 48 finite numbers" "$tmp/mcs.err" ||
  { echo "FAIL: marginal-closure --truth of the wrong size:"; cat "$tmp/mcs.err"; exit 1; }
echo "marginal-closure --truth: the same report as /truth/hist; a short truth refused"
#     --chance: the simulated chance of an unbiased result's chi2/ndf per marginal. Its
#     simulator against the exact law: 4 uncorrelated bins with a sigma known from 2000
#     replicas give chi2_4 / 4, P(> 2) = 0.0916 (seen 0.089 with the tool's fixed seed);
#     with the sigma from 20 replicas the tail is heavier (seen 0.130; 0.086 if the sigma
#     were not estimated, which fails here). On the file: one line per group, every
#     probability in [0, 1].
"$(dirname "$0")/../tools/marginal-closure" "$tmp/ibu2.h5" --chance 500 >"$tmp/ch.txt" ||
  { echo "FAIL: marginal-closure --chance:"; cat "$tmp/ch.txt"; exit 1; }
/usr/bin/python3 - "$(dirname "$0")/../tools/marginal-closure" "$tmp/ch.txt" <<'PY'
import re, sys, importlib.machinery, importlib.util, numpy as np
loader = importlib.machinery.SourceFileLoader("mclosure", sys.argv[1])
spec = importlib.util.spec_from_loader("mclosure", loader)
mc = importlib.util.module_from_spec(spec)
loader.exec_module(mc)
known = np.mean(mc.chance(np.eye(4), [slice(0, 4)], 2000, 4000)[:, 0] > 2)
est = np.mean(mc.chance(np.eye(4), [slice(0, 4)], 20, 4000)[:, 0] > 2)
if abs(known - 0.0916) > 0.02 or not est > known + 0.02:
    sys.exit("FAIL: marginal-closure chance(): P(chi2/ndf > 2) %.4f with 2000 replicas (exact "
             "0.0916), %.4f with 20 (expected heavier)" % (known, est))
lines = [l for l in open(sys.argv[2]) if "if unbiased at this sigma" in l]
probs = [float(x) for l in lines for x in re.findall(r"(?:x\d |<= 2\) |\) )([01]\.\d+)", l)]
if len(lines) != 2 or len(probs) != 2 * 4 or not all(0 <= p <= 1 for p in probs):
    sys.exit("FAIL: marginal-closure --chance lines %r, probabilities %r" % (lines, probs))
print("marginal-closure --chance: P(chi2/ndf > 2) %.4f (exact 0.0916), %.4f from 20 replicas"
      % (known, est))
PY
"$exe" run "$tmp/g2gen.yaml" -o "$tmp/gan2.h5" --quiet --set 'campaign.methods=[gan-topo, gan-mixed]' \
  --set campaign.replicas=1 --set gan.steps=300 --set gan.hidden=32 --set gan.samples=20000 \
  --set gan.efficiency.steps=300 --set gan.smearing.steps=200 --set gan.refine.steps=50 \
  2>"$tmp/gan2.err" || { echo "FAIL: GAN methods on gauss D = 2:"; cat "$tmp/gan2.err"; exit 1; }
#  b. D = 1, OmniFold's Gaussian example (MC truth N(0.2, 0.8), data N(0, 1), smearing 0.5),
#     small networks, 5 units per method: the unfolded distribution is the data's, not the MC's:
#     the median over the units of the unfolded mean is within 0.1 of the truth's (the MC's is
#     0.2 off) and of the width within 0.2 (the MC's: 0.2 narrower). Measured over seeds 1-8
#     (80 units, the networks in the data's frame: docs/methods.md): medians within 0.020 in
#     the mean and 0.134 in the width (median widths 0.875-1.010, a few % narrow at these
#     sizes; units 0.83-1.16), every unit's mean within 0.11. (In the MC's frame, before: 0.040,
#     0.126, 0.88-0.99, 0.09.)
cat >"$tmp/g1gan.yaml" <<'Y'
seed: 5
process: gauss
data: {events: 100000}
mc: {events: 100000}
campaign: {replicas: 4, methods: [gan-topo, gan-mixed]}
binning:
  vertex: {bins: 16, lo: -4, hi: 4}
  detector: {bins: 16, lo: -4, hi: 4}
gan:
  steps: 600
  batch: 128
  hidden: 32
  samples: 20000
  snapshots: 3
  efficiency: {steps: 1000, hidden: 16, batch: 256}
  smearing: {steps: 1500, hidden: 32, batch: 128}
  refine: {steps: 100, hidden: 16, batch: 64, samples: 5000}
Y
"$exe" run "$tmp/g1gan.yaml" -o "$tmp/g1gan.h5" --quiet 2>"$tmp/gan1.err" ||
  { echo "FAIL: GAN methods on the Gaussian example:"; cat "$tmp/gan1.err"; exit 1; }
/usr/bin/python3 - "$tmp/gan2.h5" "$tmp/g1gan.h5" "$here" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
ex, u = f["truth/efficiency"][()], f["units"]
worst = float(np.abs(u["efficiency"][()] - ex[None]).max())
print("gauss D = 2, GAN methods: efficiency maps within %.3f of the exact ones" % worst)
if not worst < 0.15:
    sys.exit("FAIL: efficiency maps off by %.3f" % worst)
f = h5py.File(sys.argv[2], "r")
e = f["binning_vertex/edges_x1"][()]
sys.path.insert(0, sys.argv[-1])
from gauss_moments import moments as moments_e
def moments(h):
    return moments_e(h, e)
mt, st = moments(f["truth/hist"][()])
u = f["units"]
names = dict(x.split("=") for x in f["summary"].attrs["method_names"].split())
for meth in sorted(set(u["method"][()])):
    sel = np.where((u["method"][()] == meth) & (u["fill_model"][()] == 1))[0]
    mom = np.array([moments(u["hist"][i]) for i in sel])
    m, s = np.median(mom[:, 0]), np.median(mom[:, 1])
    print("%s: median over %d units: unfolded mean %.3f width %.3f (truth %.3f %.3f, MC 0.2 0.8)"
          % (names[str(meth)], len(sel), m, s, mt, st))
    if not (abs(m - mt) < 0.1 and abs(s - st) < 0.2):
        sys.exit("FAIL: %s does not unfold the Gaussian example" % names[str(meth)])
PY
#  c. The same with a vertex binning that starts at -0.5: 31 % of the data's vertices lie below
#     it. The GAN's normalisation must count G's samples there (the data hold the events they
#     make): the unfolded total over the binned range is within 10 % of the truth's. Counting
#     only the samples inside the range put every bin 1 / 0.69 = 1.45 high (measured over the 4
#     units: 1.446-1.448 with the binary before the fix, 0.979-1.006 after it).
"$exe" run "$tmp/g1gan.yaml" -o "$tmp/g1cut.h5" --quiet --set 'campaign.methods=[gan-topo]' \
  --set campaign.replicas=1 --set binning.vertex.lo=-0.5 2>"$tmp/gancut.err" ||
  { echo "FAIL: gan-topo on a cut vertex range:"; cat "$tmp/gancut.err"; exit 1; }
/usr/bin/python3 - "$tmp/g1cut.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
truth, hist = f["truth/hist"][()], f["units/hist"][()]
ratio = hist.sum(axis=1) / truth.sum()
print("gan-topo, vertex range [-0.5, 4]: unfolded total / truth per unit " +
      " ".join("%.3f" % r for r in ratio))
if not np.all(np.abs(ratio - 1) < 0.1):
    sys.exit("FAIL: the GAN's normalisation misses G's samples outside the vertex range")
PY
#  c2. The refinement with a vertex binning of [-1, 1] (a third of the data's vertices outside):
#     its classifiers must see G's samples outside the binning too, or the data's events from
#     there pull the samples next to the edges up. Refined (3 iterations) against unrefined, the
#     same G: the edge bins' factor over the two centre bins' stays near 1, and the refined edge
#     bins stay within 50 % of the truth. Measured (3 replicas x 2 fills): edge shift 0.94-1.01,
#     refined edge bins 1.00-1.21 of the truth; before the fix 2.39-3.21 and 1.91-2.08.
for it in 0 3; do
  "$exe" run "$tmp/g1gan.yaml" -o "$tmp/g1ref$it.h5" --quiet --set 'campaign.methods=[gan-topo]' \
    --set campaign.replicas=3 --set binning.vertex.lo=-1 --set binning.vertex.hi=1 \
    --set binning.vertex.bins=8 --set gan.refine.iterations=$it --set gan.refine.steps=1000 \
    --set gan.refine.hidden=32 --set gan.refine.batch=256 --set gan.refine.samples=20000 \
    2>"$tmp/ganref.err" || { echo "FAIL: gan-topo refined on [-1, 1]:"; cat "$tmp/ganref.err"; exit 1; }
done
/usr/bin/python3 - "$tmp/g1ref0.h5" "$tmp/g1ref3.h5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(x, "r") for x in sys.argv[1:3])
truth, h0, h3 = a["truth/hist"][()], a["units/hist"][()], b["units/hist"][()]
q = h3 / h0
shift = (q[:, 0] + q[:, -1]) / (q[:, 3] + q[:, 4])
edge = np.concatenate([h3[:, 0] / truth[0], h3[:, -1] / truth[-1]])
print("gan-topo refined on [-1, 1]: edge shift " + " ".join("%.3f" % s for s in shift) +
      "; refined edge bins / truth %.3f-%.3f" % (edge.min(), edge.max()))
if not (np.all(np.abs(shift - 1) < 0.3) and np.all(edge < 1.5)):
    sys.exit("FAIL: the refinement pulls the samples at the binning's edges up (it misses G's "
             "samples outside the vertex binning)")
PY
#  d. gan.bias_correction (docs/methods.md): a training too short to reach the data (gan.steps
#     150) leaves G narrow; a second training on pseudo-data from the MC reweighted to G's
#     answer shows that bias. The first training is the same with and without it (loss curves,
#     efficiency maps equal in the units that ran at their first try: 16-20 of 20 at seeds
#     5-8), and per method the median over the units of |width - truth's| drops below 0.6 of
#     the uncorrected one. Measured at seeds 5-8 in the data's frame: gan-topo 0.30, 0.46,
#     0.22, 1.01 of it, gan-mixed 0.55, 0.40, 0.13, 0.41 (median widths 0.46-0.91 -> 0.85-1.00,
#     truth 1.01); at seed 8 gan-topo's short training is already within 0.10 of the truth's
#     width (0.91 -> 0.97, the median deviation 0.104 -> 0.105), so there it has little to take
#     back. Seed 5 (here) leaves both narrow. (In the MC's frame, before: 0.08-0.49 of it,
#     median widths 0.40-0.74 -> 0.82-0.96.)
#     gan.polish 4 (the same short training, its answer polished through the MC's response by
#     four OmniFold iterations of small classifiers; from a G this far off OmniFold needs them:
#     gan-topo 0.544 -> 0.335 with 2, 0.204 with 4): the same first training, and the median
#     |width - truth's| below 0.6 of the uncorrected one as well (seen: gan-topo 0.544 -> 0.204,
#     gan-mixed 0.101 -> 0.016, seed 5).
"$exe" run "$tmp/g1gan.yaml" -o "$tmp/bc0.h5" --quiet --set gan.steps=150 2>"$tmp/bc0.err" ||
  { echo "FAIL: GAN methods at 150 steps:"; cat "$tmp/bc0.err"; exit 1; }
"$exe" run "$tmp/g1gan.yaml" -o "$tmp/bc1.h5" --quiet --set gan.steps=150 \
  --set gan.bias_correction=true 2>"$tmp/bc1.err" ||
  { echo "FAIL: GAN methods with gan.bias_correction:"; cat "$tmp/bc1.err"; exit 1; }
# the config has no campaign.bootstrap_mc: one warning that sigma leaves the MC's statistics out
n=$(grep -c "gan.bias_correction: the result carries the MC's statistics" "$tmp/bc1.err")
[ "$n" = 1 ] || { echo "FAIL: $n warnings about the MC's statistics (want 1):"; cat "$tmp/bc1.err"; exit 1; }
! grep -q "carries the MC's statistics" "$tmp/bc0.err" ||
  { echo "FAIL: the MC-statistics warning without gan.bias_correction"; exit 1; }
"$exe" run "$tmp/g1gan.yaml" -o "$tmp/bc2.h5" --quiet --set gan.steps=150 --set gan.polish=4 \
  --set omnifold.steps=400 --set omnifold.hidden=32 --set omnifold.batch=512 2>"$tmp/bc2.err" ||
  { echo "FAIL: GAN methods with gan.polish:"; cat "$tmp/bc2.err"; exit 1; }
n=$(grep -c "gan.polish: the result carries the MC's statistics" "$tmp/bc2.err")
[ "$n" = 1 ] || { echo "FAIL: $n polish warnings about the MC's statistics (want 1):"; cat "$tmp/bc2.err"; exit 1; }
for fix in "bc1.h5 gan.bias_correction" "bc2.h5 gan.polish"; do
/usr/bin/python3 - "$tmp/bc0.h5" "$tmp/${fix% *}" "${fix#* }" "$here" <<'PY'
import sys, h5py, numpy as np
sys.path.insert(0, sys.argv[4])
from gauss_moments import moments
a, b, fix = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), sys.argv[3]
# a unit retried (a collapse of either training: both start again on fresh streams) differs
same = (a["units/attempts"][()] == 1) & (b["units/attempts"][()] == 1)
if same.sum() < len(same) // 2:
    sys.exit("FAIL: %d of %d units ran at their first try" % (same.sum(), len(same)))
for k in ("loss_d", "loss_g", "efficiency"):
    if not np.array_equal(a["units/" + k][()][same], b["units/" + k][()][same]):
        sys.exit("FAIL: %s changed the first training's %s" % (fix, k))
e = a["binning_vertex/edges_x1"][()]
st = moments(a["truth/hist"][()], e)[1]
u = a["units"]
names = dict(x.split("=") for x in a["summary"].attrs["method_names"].split())
for meth in sorted(set(u["method"][()])):
    sel = np.where((u["method"][()] == meth) & (u["fill_model"][()] == 1))[0]
    off, on = ([moments(f["units/hist"][i], e)[1] for i in sel] for f in (a, b))
    d0, d1 = np.nanmedian(np.abs(np.array(off) - st)), np.nanmedian(np.abs(np.array(on) - st))
    print("%s, 150 steps: median |width - truth| %.3f, with %s %.3f (truth %.3f)"
          % (names[str(meth)], d0, fix, d1, st))
    if not d1 < 0.6 * d0:
        sys.exit("FAIL: %s does not reduce %s's width bias" % (fix, names[str(meth)]))
PY
done
# 3. closure, D = 1
cat >"$tmp/g1.yaml" <<'Y'
seed: 5
process: gauss
gauss: {resolution: 0.2}
data: {events: 100000}
mc: {events: 400000, model: data}
campaign: {replicas: 20, methods: [ibu]}
ibu: {iterations: 50}
binning:
  vertex: {bins: 12, lo: -4, hi: 4}
  detector: {bins: 12, lo: -4, hi: 4}
Y
"$exe" run "$tmp/g1.yaml" -o "$tmp/g1.h5" --quiet 2>"$tmp/run1.err" || { cat "$tmp/run1.err"; exit 1; }
# summary's marginal table (with a truth): one row per group and observable, and with a full
# acceptance the marginal over all bins is the measured one
"$exe" summary "$tmp/g1.h5" >"$tmp/sum1.txt"
grep -q "1-D marginals (product binning)" "$tmp/sum1.txt" || { echo "FAIL: no marginals"; exit 1; }
if grep -q "coil gaps" "$tmp/sum1.txt"; then echo "FAIL: pi0's wording for gauss"; exit 1; fi
for g in ibu_mc ibu_alt; do
  line=$(grep -E "^$g +x1 " "$tmp/sum1.txt") || { echo "FAIL: no marginal of $g"; cat "$tmp/sum1.txt"; exit 1; }
  set -- $line
  [ "$3 $5" = "$6 $8" ] || { echo "FAIL: all and measured differ: $line"; exit 1; }
done
/usr/bin/python3 - "$tmp/g1.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
t = f["truth/hist"][()]
for g in ("ibu_mc", "ibu_alt"):
    m, s = f["groups/%s/mean" % g][()], f["groups/%s/sigma" % g][()]
    pull = (m - t) / s
    q = float(np.mean(pull ** 2))
    print("%s: mean pull^2 %.2f, max |pull| %.2f over %d bins" % (g, q, np.abs(pull).max(), len(t)))
    if not (q < 3 and np.abs(pull).max() < 5):
        sys.exit("FAIL: IBU does not close on the gauss example")
PY
#  b. The same with the vertex range cut at -2/3 (25 % of the data's vertices below it, 7 bins
#     to 4): IBU unfolds the region outside the range in twin columns (docs/methods.md), so with
#     the MC of the data's model it still closes over the measured bins. Without the twins the
#     events from below were unfolded into the border bin: 2.17 x its truth, mean pull^2 1949
#     (measured with the binary before the change; with it 1.51 / 0.73).
"$exe" run "$tmp/g1.yaml" -o "$tmp/ibucut.h5" --quiet --set binning.vertex.lo=-0.6666666666666666 \
  --set binning.vertex.bins=7 2>"$tmp/run1cut.err" || { cat "$tmp/run1cut.err"; exit 1; }
/usr/bin/python3 - "$tmp/ibucut.h5" "$here" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from measured_pulls import measured_pulls
for g in ("ibu_mc", "ibu_alt"):
    q, most, n, m, t = measured_pulls(sys.argv[1], g)
    print("%s, vertex range [-2/3, 4]: mean pull^2 %.2f, max |pull| %.2f over %d measured bins, "
          "border bin %.3f of its truth" % (g, q, most, n, m[0] / t[0]))
    if not (n >= 5 and q < 3 and most < 5):
        sys.exit("FAIL: IBU unfolds the data from outside the vertex range into the binned range")
PY
#  Refolding (docs/methods.md, "Refolding"): /summary/refold_chi2 is each group's mean folded
#  through the stored response against /inputs/data_hist over /refold_bins, as computed here;
#  IBU with the MC of the data's model describes its data (chi2/ndf below 2; seen 0.065 over 10
#  bins: 50 iterations fit the data); a mean 5 % high does not (seen 26.8); with the vertex
#  range cut at -2/3 the detector bins below it are left out (5 used).
/usr/bin/python3 - "$tmp/g1.h5" "$tmp/ibucut.h5" <<'PY'
import sys, h5py, numpy as np
def refold(f, mean):
    d, use = f["inputs/data_hist"][()], f["refold_bins"][()].astype(bool)
    R = np.zeros((d.size, mean.size))
    np.add.at(R, (f["inputs/response_detector_bin"][()], f["inputs/response_vertex_bin"][()]),
              f["inputs/response_value"][()])
    return float(np.sum(((R @ mean - d) ** 2 / d)[use])), int(use.sum()), d, use
for path in sys.argv[1:]:
    f = h5py.File(path, "r")
    for k, g in enumerate(("ibu_mc", "ibu_alt")):
        mean = f["groups/%s/mean" % g][()]
        c2, ndf, d, use = refold(f, mean)
        got, gndf = f["summary/refold_chi2"][k], f["summary/refold_ndf"][k]
        print("%s %s: refold chi2/ndf %.3f (%.2f/%d), here %.2f/%d; mean x 1.05: %.1f" %
              (path.split("/")[-1], g, got / gndf, got, gndf, c2, ndf, refold(f, 1.05 * mean)[0] / ndf))
        if gndf != ndf or ndf < 5 or abs(got - c2) > 1e-9 * c2 or (d[use] < 10).any():
            sys.exit("FAIL: refold chi2 %r over %r bins, computed here %r over %r" % (got, gndf, c2, ndf))
        if not (got / gndf < 2 and refold(f, 1.05 * mean)[0] / ndf > 4):
            sys.exit("FAIL: refold does not tell IBU's answer from one 5 % high")
        if path.endswith("ibucut.h5") and use[:5].any():
            sys.exit("FAIL: refold uses detector bins outside the vertex range: %r" % use)
PY
#  An MC narrower than the data (N(0, 0.5)) and a vertex range of [-2.5, 2.5]: the MC puts next
#  to nothing outside the range, the data do, so the detector bins that reach past it ([-2.67,
#  -2] and [2, 2.67]) are left out by the range, not by the MC's share (6 bins used, 3 to 8).
"$exe" run "$tmp/g1.yaml" -o "$tmp/narrow.h5" --quiet --set mc.model=mc --set gauss.mc.mean=0 \
  --set gauss.mc.width=0.5 --set binning.vertex.lo=-2.5 --set binning.vertex.hi=2.5 \
  --set binning.vertex.bins=10 --set campaign.replicas=2 2>"$tmp/narrow.err" ||
  { cat "$tmp/narrow.err"; exit 1; }
/usr/bin/python3 -c "import sys, h5py, numpy as np; u = np.nonzero(h5py.File(sys.argv[1], 'r')['refold_bins'][()])[0]; print('refold bins with a narrow MC:', u); sys.exit(0 if list(u) == list(range(3, 9)) else 'FAIL: refold bins %r, want 3..8' % u)" "$tmp/narrow.h5"
"$exe" summary "$tmp/g1.h5" | grep -qE "^ +ibu mc +[0-9.]+ \([0-9.]+/10\)" ||
  { echo "FAIL: summary prints no refold row"; "$exe" summary "$tmp/g1.h5"; exit 1; }
#  c. An MC thinner than the data (docs/methods.md, "The MC's statistics"): the MC's own model,
#     N(0.2, 0.8), with as many events as the data. Its response rests on fewer MC events than
#     the data give in most measured bins: rank 0 warns once, naming the worst bin (in the
#     left tail, where the MC falls off fastest); the run of 3. (MC of the data's model, 4 x the
#     data) does not warn, nor does this one with campaign.bootstrap_mc, whose replicas carry the
#     MC's statistics, so IBU closes. 10 of the 12 seen bins are measured: the two left-most
#     rest on fewer than ibu.min_mc = 10 MC events. Measured at seeds 1-8: mean pull^2 over the
#     measured bins 0.61-5.47 without the MC in sigma (above 2 at seeds 1, 3 and 8), 0.23-2.40
#     with it; seed 5 (here) 0.61 -> 0.23 (before ibu.min_mc, 12 bins: 0.53 -> 0.17; with the
#     plain response, ibu.reweight 0: 3.27-15.55, 2.8e9 at seed 2, without and 0.81-2.17 with
#     it; seed 5 3.48 -> 1.09).
! grep -q "rest on fewer seen MC events" "$tmp/run1.err" ||
  { echo "FAIL: warned of the MC's statistics with 4 x the data from the data's model:"; cat "$tmp/run1.err"; exit 1; }
for b in false true; do
  "$exe" run "$tmp/g1.yaml" -o "$tmp/thin$b.h5" --quiet --set mc.model=mc --set mc.events=100000 \
    --set campaign.bootstrap_mc=$b 2>"$tmp/thin$b.err" || { cat "$tmp/thin$b.err"; exit 1; }
done
n=$(grep -c "of 10 measured vertex bins rest on fewer seen MC events than the data events they give (worst: x1 \[-" \
  "$tmp/thinfalse.err" || true)
[ "$n" = 1 ] || { echo "FAIL: $n warnings of a thin MC (want 1, in the left tail):"; cat "$tmp/thinfalse.err"; exit 1; }
! grep -q "rest on fewer seen MC events" "$tmp/thintrue.err" ||
  { echo "FAIL: warned of the MC's statistics with campaign.bootstrap_mc:"; cat "$tmp/thintrue.err"; exit 1; }
/usr/bin/python3 - "$here" "$tmp/thinfalse.h5" "$tmp/thintrue.h5" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from measured_pulls import measured_pulls
q = [measured_pulls(path, "ibu_mc")[0] for path in sys.argv[2:]]
print("thin MC: mean pull^2 over the measured bins %.3g without the MC in sigma, %.2f with it"
      % tuple(q))
if not q[1] < 3:
    sys.exit("FAIL: IBU with campaign.bootstrap_mc does not close on a thin MC")
PY
#  d. IBU iterates every bin the detector sees (docs/methods.md, "Fill models and normalisation"):
#     on the Gaussian example as configured (configs/gauss-example.yaml: 40 bins, 33 measured, 30
#     iterations) with campaign.bootstrap_mc, both fills close over the measured bins. When the
#     seen tail bins with fewer than ibu.min_expected data events kept the fill's shape, the fill
#     alt (N(-0.2, 1.2), far heavier tails than the data's) leaked into the border bins: mean
#     pull^2 3.35, the right border bin -9.3 sigma (seeds 7, 11, 2025, 2026: 1.12-2.51, up to
#     -4.5 sigma); iterated, 1.02 / 1.14 (mc), max |pull| 3.6 (other seeds 0.49-1.38, max 3.8).
"$exe" run "$here/../configs/gauss-example.yaml" -o "$tmp/gex.h5" --quiet --set 'campaign.methods=[ibu]' \
  --set campaign.bootstrap_mc=true 2>"$tmp/gex.err" || { cat "$tmp/gex.err"; exit 1; }
/usr/bin/python3 - "$tmp/gex.h5" "$here" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from measured_pulls import measured_pulls
for g in ("ibu_mc", "ibu_alt"):
    q, most, n, _, _ = measured_pulls(sys.argv[1], g)
    print("Gaussian example, %s: mean pull^2 %.2f, max |pull| %.2f over %d measured bins"
          % (g, q, most, n))
    if not (q < 2 and most < 5):
        sys.exit("FAIL: the fill leaks into IBU's measured bins on the Gaussian example")
PY
#  e. The MC's shape inside wide bins (ibu.reweight, docs/methods.md "IBU"): the same example with
#     8 vertex bins of 1.0 (twice the smearing), where the data's slope differs from the MC's
#     inside a bin. With the plain response (ibu.reweight 0) IBU converges to a biased answer:
#     mean pull^2 over the 8 measured bins 7.1 / 7.9 (mc / alt) here, 6.9-15.2 at seeds 1-3;
#     with the MC reweighted inside the bins to the answer's slope (the default, one pass)
#     0.39 / 0.50, and at seeds 1-8 0.37-1.39 except seed 2 (3.75 / 3.24).
for rw in 0 1; do
  "$exe" run "$here/../configs/gauss-example.yaml" -o "$tmp/wide$rw.h5" --quiet \
    --set 'campaign.methods=[ibu]' --set binning.vertex.bins=8 --set binning.detector.bins=16 \
    --set ibu.reweight=$rw 2>"$tmp/wide$rw.err" || { cat "$tmp/wide$rw.err"; exit 1; }
done
/usr/bin/python3 - "$here" "$tmp/wide0.h5" "$tmp/wide1.h5" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from measured_pulls import measured_pulls
for g in ("ibu_mc", "ibu_alt"):
    (q0, _, n, _, _), (q1, most, _, _, _) = [measured_pulls(p, g) for p in sys.argv[2:]]
    print("wide bins, %s: mean pull^2 %.2f with the plain response, %.2f reweighted (max |pull| "
          "%.2f) over %d measured bins" % (g, q0, q1, most, n))
    if not q0 > 4:
        sys.exit("FAIL: the plain response closes with wide bins: the check cannot tell")
    if not (q1 < 3 and most < 5):
        sys.exit("FAIL: IBU with ibu.reweight does not close with wide bins")
PY
# 4. A fill model from the user's own MC file (campaign.fill_models naming an event file): the
#    gauss alt model written by `ensfold generate` as alt-gen.h5 stands beside the built-in alt.
#    The file's prior is its vertex histogram, so in the measured bins the two fills' results
#    agree within their statistics (bound 0.5 sigma; seen 0.19 with 10^6 events) and the
#    result names the file's fill alt-gen; the GAN's blind channel samples the file's events.
"$exe" generate --config "$tmp/g2gen.yaml" --model alt --kind mc -n 1000000 -o "$tmp/alt-gen.h5" \
  -q >/dev/null
"$exe" run "$tmp/g2gen.yaml" -o "$tmp/fill.h5" --quiet --set 'campaign.methods=[ibu]' \
  --set campaign.replicas=4 --set 'campaign.fill_models=[alt, alt-gen.h5]' 2>"$tmp/fill.err" ||
  { echo "FAIL: a fill file:"; cat "$tmp/fill.err"; exit 1; }
"$exe" summary "$tmp/fill.h5" >"$tmp/fillsum.txt"
grep -qE "^ibu +alt-gen +4 " "$tmp/fillsum.txt" ||
  { echo "FAIL: summary lacks the alt-gen fill"; head "$tmp/fillsum.txt"; exit 1; }
grep -qE "^ibu_alt-gen +x1:x2 " "$tmp/fillsum.txt" ||
  { echo "FAIL: summary lacks the pair x1:x2 (binning.pairs)"; cat "$tmp/fillsum.txt"; exit 1; }
/usr/bin/python3 - "$tmp/fill.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
names = f["summary"].attrs["model_names"]
if names != "0=data 1=mc 2=alt 3=alt-gen":
    sys.exit("FAIL: model_names %r" % names)
if "ibu_alt-alt-gen" not in f["differences"]:
    sys.exit("FAIL: no paired difference alt - alt-gen: %r" % list(f["differences"].keys()))
m = f["measured"][()].astype(bool)
a, b = f["groups/ibu_alt/mean"][()], f["groups/ibu_alt-gen/mean"][()]
s = f["groups/ibu_alt/sigma"][()]
d = float(np.max(np.abs(a - b)[m] / s[m]))
print("fill file alt-gen.h5 against the built-in alt: measured bins within %.3f sigma" % d)
if not d < 0.5:
    sys.exit("FAIL: the file's fill differs from the model it was drawn from by %.2f sigma" % d)
PY
"$exe" run "$tmp/g2gen.yaml" -o "$tmp/fillgan.h5" --quiet --set 'campaign.methods=[gan-topo]' \
  --set campaign.replicas=1 --set 'campaign.fill_models=[alt-gen.h5]' --set gan.fill_weight=0.5 \
  --set gan.steps=200 --set gan.samples=5000 --set gan.efficiency.steps=100 \
  --set gan.smearing.steps=100 --set gan.refine.iterations=0 2>"$tmp/fillgan.err" ||
  { echo "FAIL: the GAN with a fill file:"; cat "$tmp/fillgan.err"; exit 1; }
echo "fill files: IBU and gan-topo (blind channel on) ran with alt-gen.h5"
# 5. Unbinned output (campaign.unbinned): IBU stores every MC event (N = the MC's 100000)
#    reweighted to its result, and their weighted histogram in the campaign's binning is the
#    unit's histogram in every bin the MC reaches (float32: 1e-5; a bin no MC event falls in
#    cannot be carried by MC events: its content is missing from the unbinned output, as
#    docs/formats.md says); a GAN unit stores N = 20000 of its
#    generator's samples whose weighted histogram is its own answer up to the subsample's
#    statistics (total within 1 %, every bin within 10 % of the largest; seen 0.4 % and 2.1 %),
#    with gan.polish too (its samples weighted by their bin's polish factor).
"$exe" run "$tmp/g2gen.yaml" -o "$tmp/unb.h5" --quiet --set 'campaign.methods=[ibu]' \
  --set campaign.replicas=1 --set campaign.unbinned=100000 2>"$tmp/unb.err" ||
  { echo "FAIL: unbinned IBU:"; cat "$tmp/unb.err"; exit 1; }
"$exe" run "$tmp/g2gen.yaml" -o "$tmp/unbg.h5" --quiet --set 'campaign.methods=[gan-mixed]' \
  --set campaign.replicas=1 --set campaign.unbinned=20000 --set gan.steps=200 \
  --set gan.samples=50000 --set gan.efficiency.steps=100 --set gan.smearing.steps=100 \
  2>"$tmp/unbg.err" || { echo "FAIL: unbinned GAN:"; cat "$tmp/unbg.err"; exit 1; }
"$exe" run "$tmp/g2gen.yaml" -o "$tmp/unbp.h5" --quiet --set 'campaign.methods=[gan-mixed]' \
  --set campaign.replicas=1 --set campaign.unbinned=20000 --set gan.steps=200 \
  --set gan.samples=50000 --set gan.efficiency.steps=100 --set gan.smearing.steps=100 \
  --set gan.polish=1 --set omnifold.steps=200 --set omnifold.hidden=16 \
  2>"$tmp/unbp.err" || { echo "FAIL: unbinned GAN with gan.polish:"; cat "$tmp/unbp.err"; exit 1; }
/usr/bin/python3 - "$tmp/unb.h5" "$tmp/unbg.h5" "$tmp/unbp.h5" <<'PY'
import sys, h5py, numpy as np
for path, part in ((sys.argv[1], "hist"), (sys.argv[2], "own"), (sys.argv[3], "own")):
    f = h5py.File(path, "r")
    u, names = f["units"], f["binning_vertex"].attrs["observables"].split(",")
    edges = [f["binning_vertex/edges_" + n][()] for n in names]
    x, w = u["unbinned_x"][()], u["unbinned_w"][()]
    if x.dtype != np.float32 or x.shape[2] != len(names):
        sys.exit("FAIL: unbinned_x %s %s" % (x.dtype, x.shape))
    worst, tot = 0.0, 0.0
    for i in range(x.shape[0]):
        h, _ = np.histogramdd(x[i], bins=edges, weights=w[i])
        ref = u[part][i].reshape(h.shape)
        if part == "hist": # the bins the MC reaches
            ref = np.where(np.histogramdd(x[i], bins=edges)[0] > 0, ref, 0.0)
        worst = max(worst, float(np.max(np.abs(h - ref)) / ref.max()))
        tot = max(tot, abs(h.sum() / ref.sum() - 1))
    print("%s: unbinned histogram against /units/%s: worst bin %.2e of the largest, total %.2e"
          % (path.split("/")[-1], part, worst, tot))
    if part == "hist" and not worst < 1e-5:
        sys.exit("FAIL: IBU's reweighted MC does not give its histogram")
    if part == "own" and not (worst < 0.1 and tot < 0.01):
        sys.exit("FAIL: the GAN's samples do not give its own answer")
PY
# 6. gan.partly_blind fill (docs/methods.md, "Partly blind bins"): D = 1 with the standard
#    acceptance, the hard edge at 1.5 in the middle of the vertex bin [1, 2]. Per replica the
#    fills mc and alt share one training: the bins with no blind part are equal bit for bit,
#    G's own answer too, and the edge bin is G's seen part over the fill's seen share of the
#    bin, so hist(mc) / hist(alt) = share(alt) / share(mc) with the shares the Gaussians'
#    mass below the edge (0.882; log within 0.04; the surrogate's edge 0.05 off moves it by
#    0.014; the default, G's samples there, gives 1).
cat >"$tmp/pb.yaml" <<'Y'
seed: 5
process: gauss
gauss: {dim: 1, acceptance: standard}
data: {events: 20000}
mc: {events: 100000}
campaign: {replicas: 1, methods: [gan-topo], fill_models: [mc, alt]}
binning:
  vertex: {bins: 8, lo: -4, hi: 4}
  detector: {bins: 16, lo: -4, hi: 4}
gan:
  steps: 300
  batch: 128
  hidden: 32
  samples: 50000
  snapshots: 3
  partly_blind: fill
  efficiency: {steps: 1000, hidden: 16, batch: 256}
  smearing: {steps: 500, hidden: 32, batch: 128}
  refine: {iterations: 0}
Y
"$exe" run "$tmp/pb.yaml" -o "$tmp/pb.h5" --quiet 2>"$tmp/pb.err" ||
  { echo "FAIL: gan.partly_blind fill:"; cat "$tmp/pb.err"; exit 1; }
/usr/bin/python3 - "$tmp/pb.h5" <<'PY'
import sys, math, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
u = f["units"]
e = f["binning_vertex/edges_x1"][()]
edge_bin, clean = 5, [2, 3, 4] # [1, 2] holds the edge; [-2, 1] have no blind part
assert e[edge_bin] == 1 and e[edge_bin + 1] == 2
names = dict(x.split("=") for x in f["summary"].attrs["model_names"].split())
fill = {v: int(k) for k, v in names.items()}
def share(mean, sd):  # the fill's mass in [1, 2] below the edge, over its mass in [1, 2]
    cdf = lambda x: 0.5 * (1 + math.erf((x - mean) / (sd * math.sqrt(2))))
    return (cdf(1.5) - cdf(1.0)) / (cdf(2.0) - cdf(1.0))
want = math.log(share(-0.2, 1.2) / share(0.2, 0.8))
for rep in sorted(set(u["replica"][()])):
    row = {int(u["fill_model"][i]): i for i in np.where(u["replica"][()] == rep)[0]}
    a, b = row[fill["mc"]], row[fill["alt"]]
    ha, hb = u["hist"][a], u["hist"][b]
    if not (np.array_equal(ha[clean], hb[clean]) and np.array_equal(u["own"][a], u["own"][b])):
        sys.exit("FAIL: replica %d: the fills differ in bins with no blind part" % rep)
    got = math.log(ha[edge_bin] / hb[edge_bin])
    print("gan.partly_blind fill, replica %d: edge bin mc / alt %.3f (want %.3f), bins %s equal"
          % (rep, math.exp(got), math.exp(want), clean))
    if not abs(got - want) < 0.04:
        sys.exit("FAIL: the edge bin does not take the fill's share")
PY
