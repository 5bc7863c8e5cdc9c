#!/bin/bash
# Campaigns on the gauss process (issue 19): observables other than pi0's,
# binned by the product scheme, end to end.
#  1. D = 2, standard acceptance (blind, partial, full), event files written
#     by `ensfold generate` and read back through data.file / mc.file: IBU
#     runs; the result file has the product layout (edges
#     and projections per observable, the process and its model names) and
#     `summary` names the gauss fill models; ensfold-plot draws every
#     observable's projections.
#  2. The GAN methods refuse the gauss observables with a clear message.
#  3. Closure: D = 1 (OmniFold's Gaussian example with smearing 0.2), MC
#     from the data model so the response's within-bin shape is the data's,
#     50 IBU iterations, 20 replicas: the per-bin pulls of the mean against
#     the exact truth are standard (mean pull^2 < 3, the expectation being
#     (R-1)/(R-3) = 1.12 with an sd of about 0.45 over 12 bins; |pull| < 5).
set -euo pipefail
exe=${ENSFOLD_EXE:?}
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
want(u["efficiency"].shape == (nu, 3, 48), "efficiency (units, K = 3, bins)")
want(sorted(f["inputs/prior"].keys()) == ["alt", "mc"], "priors %r" % list(f["inputs/prior"].keys()))
want(f["unmeasured_class"].shape == (48,), "classes")
print("gauss D = 2 from files: product layout, %d units, model names data/mc/alt" % nu)
PY
"$(dirname "$0")/../tools/ensfold-plot" "$tmp/g2.h5" -o "$tmp/plots" -q >"$tmp/plots.txt"
for p in proj_x1.png proj_x2.png proj_x1_ibu_mc.png proj_x2_ibu_alt.png plotdata.npz; do
  [ -s "$tmp/plots/$p" ] || { echo "FAIL: ensfold-plot wrote no $p:"; cat "$tmp/plots.txt"; exit 1; }
done
# 2. GAN methods refused
if "$exe" run "$tmp/g2.yaml" -o "$tmp/gan.h5" --quiet --set 'campaign.methods=[gan-topo]' \
     2>"$tmp/gan.err"; then
  echo "FAIL: gan-topo ran on the gauss process"; exit 1
fi
grep -q "gan-topo and gan-mixed unfold the pi0 observables only" "$tmp/gan.err" ||
  { echo "FAIL: message:"; cat "$tmp/gan.err"; exit 1; }
[ ! -e "$tmp/gan.h5" ] || { echo "FAIL: a result file was left"; exit 1; }
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
