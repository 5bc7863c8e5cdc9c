#!/usr/bin/env bash
# The user guide's "your own data" walkthrough, run as written: the fenced
# bash block after the own-data-walkthrough marker in docs/user-guide.md,
# on CSV exports made here from generated events (standing in for a user's
# framework), with ensfold and the tools on PATH. Checks it ends in plots.
# The block runs in a clean environment (env -i: no Open MPI variables, as
# for a user who just opened a terminal, root included); only PATH, HOME and
# the machine's OPENBLAS_* settings pass.
set -euo pipefail
. "$(dirname "$0")/walkthrough_lib.sh"
# the "user's" exports: M1 data and PS Monte Carlo through the detector, as CSV
fast=(--set detector.pi0.table_dtheta=2 --set detector.pi0.table_dphi=2 -q)
ensfold generate --model M1 --kind data -n 20000 --seed 3 -o gen-data.h5 "${fast[@]}" >/dev/null
ensfold generate --model PS --kind mc -n 100000 --seed 4 -o gen-mc.h5 "${fast[@]}" >/dev/null
/usr/bin/python3 - <<'PY'
import h5py, numpy as np
for src, dst, mc in (("gen-data.h5", "my-data.csv", False), ("gen-mc.h5", "my-mc.csv", True)):
    e = h5py.File(src, "r")["events"]
    t, r = e["topology"][()], e["reco"][()]
    cols = ["topology", "cos_theta", "phi"]
    data = [t, r[:, 0], r[:, 1]]
    if mc:
        v, p = e["vertex"][()], e["prob"][()]
        cols += ["vertex_cos_theta", "vertex_phi", "p0", "p1", "p2", "p3"]
        data += [v[:, 0], v[:, 1]] + [p[:, k] for k in range(4)]
    with open(dst, "w") as out:
        out.write(",".join(cols) + "\n")
        for i in range(len(t)):
            out.write(",".join("" if (isinstance(x[i], float) and np.isnan(x[i])) or
                               (np.issubdtype(type(x[i]), np.floating) and np.isnan(x[i]))
                               else repr(x[i].item()) for x in data) + "\n")
PY
# the walkthrough block, exactly as the guide has it
run_walkthrough own-data-walkthrough: walkthrough.log
cat walkthrough.log
# a converted file has no generator model: inspect says so in words
grep -q "my-data.h5: data file, user file (no generator model), beam 1.1 GeV" walkthrough.log
# it ended in a result and plots
[ -f my-results.h5 ] && [ -d my-plots ]
n=$(find my-plots -name '*.png' -size +10k | wc -l)
echo "# walkthrough: my-results.h5 and $n plots"
[ "$n" -ge 4 ]
echo "own-data walkthrough passed"
