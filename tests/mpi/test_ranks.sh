#!/usr/bin/env bash
# The same campaign with -n 1, 2 and 3 (oversubscribed) gives bit-identical
# result datasets; exit codes and the summary table are right.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
src=${ENSFOLD_SOURCE_ROOT:?}
. "$src/tests/mpi/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cfg=$src/tests/mpi/small.yaml
for n in 1 2 3; do
  start=$(date +%s%N)
  mpirun -n $n "$exe" run "$cfg" -o "$tmp/r$n.h5" --quiet
  echo "# -n $n: $(( ($(date +%s%N) - start) / 1000000 )) ms"
done
/usr/bin/python3 "$src/tests/mpi/compare_results.py" "$tmp/r1.h5" "$tmp/r2.h5"
/usr/bin/python3 "$src/tests/mpi/compare_results.py" "$tmp/r1.h5" "$tmp/r3.h5"
# the units really were spread over the ranks
/usr/bin/python3 - "$tmp/r3.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    ranks = f["units/rank"][()]
    status = f["units/status"][()]
    assert (status == 0).all(), status
    used = sorted(set(ranks.tolist()))
    print("# -n 3: units per rank", {r: int((ranks == r).sum()) for r in used})
    assert len(used) >= 2, used
    assert f.attrs["n_ranks"] == 3
PY
"$exe" summary "$tmp/r2.h5" | tee "$tmp/summary.txt"
grep -q "^ibu *PS" "$tmp/summary.txt"
grep -q "^ibu *M2" "$tmp/summary.txt"
# the summary says what each figure should be and whether it is inside:
# recompute every verdict from the file and the printed expectation
/usr/bin/python3 - "$tmp/r2.h5" "$tmp/summary.txt" <<'PY'
import re, sys, h5py, numpy as np
text = open(sys.argv[2]).read()
assert "nan" not in text.lower(), "nan in the summary"
assert "What the figures mean" in text and "unmeasured bins" in text, text
with h5py.File(sys.argv[1], "r") as f:
    s = f["summary"]
    chi = s["chi2_measured"][()] / s["ndf_measured"][()]
    cov = s["coverage_measured"][()]
    R = s["replicas"][()]
    full = s["full_cov_measured"][()]
    # every measured bin counts in the closure, sigma 0 or not (issue 17.4)
    nm = int(f["measured"][()].sum())
    assert (s["ndf_measured"][()] == nm).all(), (s["ndf_measured"][()], nm)
    assert (s["ndf_unmeasured"][()] == len(f["measured"]) - nm).all()
    zero, inf = s["zero_sigma_measured"][()], s["infinite_pulls_measured"][()]
    assert ((inf > 0) == np.isinf(s["chi2_measured"][()])).all(), (inf, s["chi2_measured"][()])
if (full == 0).any():
    assert "chi2 uses each bin's sigma only (the diagonal): %d replicas" % R[0] in text, text
lines = re.findall(r"(chi2/ndf|coverage) ([0-9.]+) \(expected ([0-9.]+) \+- ([0-9.]+)\): (inside|OUTSIDE)", text)
assert len(lines) == int(np.isfinite(chi).sum()) + len(cov), lines
for g in range(len(chi)):
    if inf[g] > 0:
        assert "%d bin(s) with sigma 0, %d of them off the truth (infinite pulls" % (zero[g], inf[g]) in text
        assert "inf (%d sigma 0)" % inf[g] in text
k, f_ = R[0] - 1, 1 + 1 / R[0]
chi_lines = [l for l in lines if l[0] == "chi2/ndf"]
if chi_lines:
    assert abs(float(chi_lines[0][2]) - f_ * k / (k - 2)) < 0.006, chi_lines[0]
want_vals = []
for g in range(len(chi)):
    if np.isfinite(chi[g]):
        want_vals.append(chi[g])
    want_vals.append(cov[g])
for i, (what, val, mu, w, verdict) in enumerate(lines):
    want = want_vals[i]
    assert abs(float(val) - want) < 0.006, (what, val, want)
    inside = abs(float(val) - float(mu)) <= float(w)
    assert (verdict == "inside") == inside, (what, val, mu, w, verdict)
print("# summary verdicts:", "; ".join("%s %s %s" % (l[0], l[1], l[4]) for l in lines))
PY
# an existing result is not overwritten without --overwrite (exit 2, file intact)
sum_before=$(md5sum < "$tmp/r1.h5")
if mpirun -n 1 "$exe" run "$cfg" -o "$tmp/r1.h5" --quiet 2>"$tmp/err"; then
  echo "expected a refusal"; exit 1
else
  rc=$?; [ $rc -eq 2 ] || { echo "exit $rc, expected 2"; exit 1; }
fi
grep -q "exists" "$tmp/err"
[ "$(md5sum < "$tmp/r1.h5")" = "$sum_before" ]
echo "ranks test passed"
