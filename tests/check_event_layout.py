#!/usr/bin/python3
"""Check the event files that `ensfold generate` writes against the layout
documented in docs/formats.md, reading them with h5py (an independent
reader), and check the CLI's refusals.

usage: /usr/bin/python3 check_event_layout.py ENSFOLD_EXE TMPDIR

Works in a fresh directory under TMPDIR, removed at the end when every
check passed (kept, and named, when one failed). Prints each check; exits 0
when all pass, 1 when one fails, 2 on bad usage.
"""
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

N = 5000
SEED = 4242
BEAM = 1.1  # the default physics.beam_energy (docs/config.md)

failures = []


def check(cond, what):
    """Record one check; print it either way."""
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def run(exe, *args):
    p = subprocess.run([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def str_attr_ok(grp, name):
    """A variable-length UTF-8 string attribute (h5py reads it as str)."""
    info = h5py.check_string_dtype(grp.attrs.get_id(name).dtype)
    return (info is not None and info.encoding == "utf-8" and info.length is None
            and isinstance(grp.attrs[name], str))


def check_file(path, kind, model, seed, version, table_out):
    print(f"--- {path} ({kind}, {model})")
    with h5py.File(path, "r") as f:
        check(list(f.keys()) == ["events"], f"{kind}: the root holds exactly /events "
              f"(found {list(f.keys())})")
        g = f["events"]
        check(isinstance(g, h5py.Group), f"{kind}: /events is a group")
        want = {"topology", "reco"} | ({"vertex", "prob"} if kind == "mc" else set())
        check(set(g.keys()) == want,
              f"{kind}: datasets {sorted(g.keys())} == {sorted(want)} (no weight from generate)")
        for name in g:
            check(isinstance(g[name], h5py.Dataset), f"{kind}: /events/{name} is a dataset")
        layout = {"topology": ("|i1", (N,)), "reco": ("<f8", (N, 2)),
                  "vertex": ("<f8", (N, 2)), "prob": ("<f4", (N, 4))}
        for name in sorted(want):
            dt, shape = layout[name]
            d = g[name]
            check(d.dtype.str == dt, f"{kind}: /events/{name} dtype {d.dtype.str} == {dt}")
            check(d.shape == shape, f"{kind}: /events/{name} shape {d.shape} == {shape}")

        topo = g["topology"][()]
        reco = g["reco"][()]
        check(bool(np.all((topo >= 0) & (topo <= 3))), f"{kind}: topology values in 0..3")
        counts = np.bincount(topo.astype(np.int64), minlength=4)
        check(bool(np.all(counts > 0)), f"{kind}: every topology occurs (counts {counts.tolist()})")
        t0 = topo == 0
        nan = np.isnan(reco)
        check(bool(np.all(nan[t0])), f"{kind}: reco is NaN (both columns) in all {t0.sum()} T0 rows")
        check(not bool(np.any(nan[~t0])) and bool(np.all(np.isfinite(reco[~t0]))),
              f"{kind}: reco is finite in all {(~t0).sum()} T1..T3 rows")
        r = reco[~t0]
        check(bool(np.all((r[:, 0] >= -1.0) & (r[:, 0] <= 1.0))),
              f"{kind}: reco cos theta* in [-1, 1] (min {r[:, 0].min():.6f}, max {r[:, 0].max():.6f})")
        check(bool(np.all((r[:, 1] > -math.pi) & (r[:, 1] <= math.pi))),
              f"{kind}: reco phi* in (-pi, pi] radians (min {r[:, 1].min():.6f}, "
              f"max {r[:, 1].max():.6f})")
        check(r[:, 1].max() - r[:, 1].min() > 6.0, f"{kind}: reco phi* spans the circle (radians, "
              "not degrees)")

        if kind == "mc":
            v = g["vertex"][()]
            check(bool(np.all(np.isfinite(v))), f"{kind}: vertex finite in every row")
            check(bool(np.all((v[:, 0] >= -1.0) & (v[:, 0] <= 1.0)
                              & (v[:, 1] > -math.pi) & (v[:, 1] <= math.pi))),
                  f"{kind}: vertex cos theta* in [-1, 1], phi* in (-pi, pi]")
            p = g["prob"][()]
            check(bool(np.all((p >= 0) & (p <= 1))), f"{kind}: prob entries in [0, 1]")
            s = p.astype(np.float64).sum(axis=1)
            check(float(np.max(np.abs(s - 1.0))) <= 1e-4,
                  f"{kind}: prob rows sum to 1 within 1e-4 (worst {np.max(np.abs(s - 1.0)):.2e})")
            pt = p[np.arange(N), topo.astype(np.int64)]
            check(bool(np.all(pt > 0)), f"{kind}: prob[i, topology[i]] > 0 in every row")

        attrs = set(g.attrs.keys())
        want_attrs = {"kind", "model", "ensfold_version", "beam_energy", "seed",
                      "format_version", "observables", "observable_kinds", "observable_range",
                      "categories", "blind"}
        check(attrs == want_attrs, f"{kind}: attributes {sorted(attrs)} == {sorted(want_attrs)}")
        check(len(f.attrs.keys()) == 0, f"{kind}: no attributes on the root")
        for name in ("kind", "model", "ensfold_version"):
            if name in attrs:
                check(str_attr_ok(g, name), f"{kind}: @{name} is a variable-length UTF-8 string")
        check(g.attrs.get("kind") == kind, f"{kind}: @kind == {kind!r} ({g.attrs.get('kind')!r})")
        check(g.attrs.get("model") == model,
              f"{kind}: @model == {model!r} ({g.attrs.get('model')!r})")
        check(g.attrs.get("ensfold_version") == version,
              f"{kind}: @ensfold_version == {version!r} ({g.attrs.get('ensfold_version')!r})")
        be = g.attrs.get("beam_energy")
        check(isinstance(be, np.float64) and g.attrs.get_id("beam_energy").dtype.str == "<f8"
              and g.attrs.get_id("beam_energy").shape == ()
              and abs(float(be) - BEAM) < 1e-12,
              f"{kind}: @beam_energy is a float64 scalar == {BEAM} GeV ({be!r})")
        # format version 2: the event space declared (docs/formats.md)
        check(int(g.attrs.get("format_version", 0)) == 2, f"{kind}: @format_version == 2")
        check(list(g.attrs.get("observables", [])) == ["cos_theta", "phi"],
              f"{kind}: @observables == ['cos_theta', 'phi'] ({g.attrs.get('observables')!r})")
        check(list(g.attrs.get("observable_kinds", [])) == ["bounded", "periodic"],
              f"{kind}: @observable_kinds == ['bounded', 'periodic']")
        rg = np.asarray(g.attrs.get("observable_range", []))
        check(rg.shape == (2, 2) and np.array_equal(rg, [[-1, 1], [-np.pi, np.pi]]),
              f"{kind}: @observable_range == [[-1, 1], [-pi, pi]] ({rg!r})")
        check(list(g.attrs.get("categories", [])) == ["T0", "T1", "T2", "T3"],
              f"{kind}: @categories == T0..T3")
        check(list(np.asarray(g.attrs.get("blind", []))) == [1, 0, 0, 0],
              f"{kind}: @blind == [1, 0, 0, 0]")
        sd = g.attrs.get("seed")
        check(isinstance(sd, np.uint64) and g.attrs.get_id("seed").dtype.str == "<u8"
              and g.attrs.get_id("seed").shape == () and int(sd) == seed,
              f"{kind}: @seed is a uint64 scalar == {seed} ({sd!r})")

    # the table generate printed agrees with the file
    printed = {}
    for line in table_out.splitlines():
        m = re.match(r"T([0-3])\s+.*?\s(\d+)\s+([0-9.]+)", line)
        if m:
            printed[int(m.group(1))] = int(m.group(2))
    check(printed == {t: int(counts[t]) for t in range(4)},
          f"{kind}: the printed topology table matches the file ({printed})")
    return counts


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    exe, base = os.path.abspath(sys.argv[1]), sys.argv[2]
    os.makedirs(base, exist_ok=True)
    work = tempfile.mkdtemp(prefix="check_event_layout.", dir=base)
    print(f"ensfold: {exe}\nworking in {work}")

    rc, out, err = run(exe, "--version")
    m = re.search(r"(\d+\.\d+\.\d+\S*)", out)
    check(rc == 0 and m is not None, f"ensfold --version prints a version ({out.strip()!r})")
    version = m.group(1) if m else "?"

    mc = os.path.join(work, "mc.h5")
    data = os.path.join(work, "data.h5")
    rc, out_mc, err = run(exe, "generate", "--model", "M1", "--kind", "mc", "-n", str(N),
                          "-o", mc, "--seed", str(SEED), "--quiet")
    ok = check(rc == 0 and os.path.isfile(mc), f"generate M1 mc -n {N} --seed {SEED}: exit {rc}")
    if not ok:
        print(err, file=sys.stderr)
    else:
        check_file(mc, "mc", "M1", SEED, version, out_mc)
    # without --seed or --config the seed is 1 (ensfold generate --help)
    rc, out_data, err = run(exe, "generate", "--model", "PS", "--kind", "data", "-n", str(N),
                            "-o", data, "--quiet")
    ok = check(rc == 0 and os.path.isfile(data), f"generate PS data -n {N}: exit {rc}")
    if not ok:
        print(err, file=sys.stderr)
    else:
        check_file(data, "data", "PS", 1, version, out_data)
    leftovers = sorted(x for x in os.listdir(work) if x not in ("mc.h5", "data.h5"))
    check(leftovers == [], f"generate leaves no temporary files ({leftovers})")

    print("--- ensfold inspect")
    for path, kind in ((mc, "mc"), (data, "data")):
        if os.path.isfile(path):
            rc, out, err = run(exe, "inspect", path)
            check(rc == 0 and f"{path}: {kind} file" in out and f"{N} events" in out,
                  f"inspect {os.path.basename(path)}: exit {rc}, names a {kind} file of {N} events")

    if os.path.isfile(mc):
        with h5py.File(mc, "r") as f:
            topo = f["events/topology"][()]
        # a topology out of range
        bad = os.path.join(work, "bad_topology.h5")
        shutil.copyfile(mc, bad)
        row = 1234
        with h5py.File(bad, "r+") as f:
            f["events/topology"][row] = 7
        rc, out, err = run(exe, "inspect", bad)
        print(f"      stderr: {err.strip()}")
        check(rc == 2, f"inspect with topology 7 in row {row}: exit {rc} == 2")
        check(bad in err and "/events/topology" in err and f"row {row}" in err,
              "its stderr names the file, /events/topology and the row")
        # NaN angles in a row that is not T0
        bad2 = os.path.join(work, "bad_reco.h5")
        shutil.copyfile(mc, bad2)
        row2 = int(np.nonzero(topo == 2)[0][10])
        with h5py.File(bad2, "r+") as f:
            f["events/reco"][row2] = [np.nan, np.nan]
        rc, out, err = run(exe, "inspect", bad2)
        print(f"      stderr: {err.strip()}")
        check(rc == 2 and bad2 in err and "/events/reco" in err and f"row {row2}" in err,
              f"inspect with NaN reco in T2 row {row2}: exit {rc} == 2, names /events/reco and the row")

    print("--- refusals of generate")
    nomodel = os.path.join(work, "nomodel.h5")
    rc, out, err = run(exe, "generate", "--model", "M3", "--kind", "mc", "-n", "100",
                       "-o", nomodel)
    print(f"      stderr: {err.strip()}")
    check(rc == 2, f"generate --model M3: exit {rc} == 2")
    check("M3" in err, "its stderr names the bad model")
    made = sorted(x for x in os.listdir(work) if x.startswith("nomodel"))
    check(made == [], f"it creates no output file ({made})")
    rc, out, err = run(exe, "generate", "--model", "M1", "--kind", "truth", "-n", "100",
                       "-o", nomodel)
    check(rc == 2 and not os.path.exists(nomodel), f"generate --kind truth: exit {rc} == 2, no file")

    if failures:
        print(f"\n{len(failures)} check(s) FAILED (files kept in {work}):")
        for w in failures:
            print("  " + w)
        return 1
    shutil.rmtree(work)
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
