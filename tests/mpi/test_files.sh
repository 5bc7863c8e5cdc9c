#!/usr/bin/env bash
# A campaign on the user's own event files (data and MC from `ensfold
# generate`), paths relative to the config; bad files are refused before
# any work with exit code 2 and no output.
set -euo pipefail
exe=${ENSFOLD_EXE:?}
. "${ENSFOLD_SOURCE_ROOT:?}/tests/mpi/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/in"
fast=(--set detector.pi0.table_dtheta=2 --set detector.pi0.table_dphi=2)
"$exe" generate --model M1 --kind data -n 20000 --seed 5 -o "$tmp/in/data.h5" -q "${fast[@]}" >/dev/null
"$exe" generate --model PS --kind mc -n 100000 --seed 6 -o "$tmp/in/mc.h5" -q "${fast[@]}" >/dev/null
cat > "$tmp/in/files.yaml" <<'YAML'
seed: 9
data: {source: file, file: data.h5}
mc: {source: file, file: mc.h5}
campaign: {methods: [ibu], fill_models: [PS, M2], replicas: 4}
YAML
cd "$tmp"   # the files are found relative to the config, not the working directory
mpirun -n 2 "$exe" run in/files.yaml -o out.h5 --quiet
/usr/bin/python3 - out.h5 <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    assert "truth" not in f, "no truth for the user's data"
    assert (f["units/status"][()] == 0).all()
    h = f["units/hist"][()]
    assert np.isfinite(h).all() and h.shape == (10, 648), h.shape
    print("# file inputs: 10 units, replica-0 PS total %.1f events" % h[0].sum())
PY
"$exe" summary out.h5 | tee summary.txt
grep -q "this file has none (your own data), so they are '-'" summary.txt
! grep -qi nan summary.txt
# a bad data file: refused before any work, exit 2, the message names the
# file, dataset and row; nothing written
/usr/bin/python3 - in/data.h5 in/bad.h5 <<'PY'
import sys, shutil, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    f["events/topology"][17] = 7
PY
sed 's/file: data.h5/file: bad.h5/' in/files.yaml > in/bad.yaml
set +e
mpirun -n 2 "$exe" run in/bad.yaml -o bad-out.h5 --quiet 2>err.txt
rc=$?
set -e
cat err.txt
[ $rc -eq 2 ] || { echo "exit $rc, expected 2"; exit 1; }
grep -q "bad.h5" err.txt && grep -q "/events/topology row 17" err.txt
[ ! -e bad-out.h5 ] && [ ! -e bad-out.h5.journal ] && [ ! -e bad-out.h5.tmp ]
# the beam energy of a file must match the config
set +e
mpirun -n 1 "$exe" run in/files.yaml -o e.h5 --quiet --set physics.beam_energy=0.9 2>err.txt
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "beam energy" err.txt
# a missing file
set +e
mpirun -n 1 "$exe" run in/files.yaml -o m.h5 --quiet --set data.file=nope.h5 2>err.txt
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "nope.h5" err.txt
echo "files test passed"
