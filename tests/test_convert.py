#!/usr/bin/python3
"""tools/ensfold-convert on generated inputs: what it must accept and how it must refuse.

usage: /usr/bin/python3 test_convert.py        (ENSFOLD_EXE, ENSFOLD_SOURCE_ROOT from meson)

ENSFOLD_CONVERT overrides the converter under test (e.g. an older version, to see these tests
fail: git show main:tools/ensfold-convert > /tmp/old; ENSFOLD_CONVERT=/tmp/old ...).

Accepted: a UTF-8 BOM, CRLF and CR line endings, blank lines (the result equals the plain file's
and passes `ensfold inspect`). Refused, each case run with -o OUT.h5 where an OUT.h5 already
exists: duplicate column names, Latin-1, UTF-16 (with and without BOM), a 200 kB field, NUL bytes,
an unbalanced quote, ';' separators, NPZ files that are no zip / a pickle / a .npy / hold objects,
a full disk (a 64 KiB tmpfs; skipped when mount is refused), SIGTERM, SIGINT and an internal
error half-way through writing (ENSFOLD_CONVERT_TEST_HOOK). Every refusal must: exit with the
stated code, print one line 'ensfold-convert: error: ...' naming the file and containing the
expected words, print no traceback, leave no new file in the directory and OUT.h5 byte-identical.
Prints PASS / FAIL / SKIP per case; exits 1 if any failed.
"""
import codecs
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

SRC = os.environ.get("ENSFOLD_SOURCE_ROOT", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
EXE = os.environ.get("ENSFOLD_EXE", os.path.join(SRC, "build", "ensfold"))
TOOL = os.environ.get("ENSFOLD_CONVERT", os.path.join(SRC, "tools", "ensfold-convert"))
PY = "/usr/bin/python3"

failures = []


def result(ok, name, why=""):
    print(("PASS " if ok else "FAIL ") + name + (": " + why if why and not ok else ""), flush=True)
    if not ok:
        failures.append(name)


def convert(args, cwd, env=None):
    e = dict(os.environ)
    e.pop("ENSFOLD_CONVERT_DEBUG", None)
    e.update(env or {})
    return subprocess.run([PY, TOOL] + args, cwd=cwd, env=e, capture_output=True, text=True,
                          errors="replace", timeout=120)


def md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


# ---- inputs -----------------------------------------------------------------------------------
DATA_HEAD = "topology,cos_theta,phi"
MC_HEAD = "topology,cos_theta,phi,vertex_cos_theta,vertex_phi,p0,p1,p2,p3"


def data_rows(n=40):
    rows = []
    for i in range(n):
        t = i % 4
        reco = ("", "") if t == 0 else (f"{-0.9 + 1.8 * i / n:.4f}", f"{-3.0 + 6.0 * i / n:.4f}")
        rows.append(f"{t},{reco[0]},{reco[1]}")
    return rows


def mc_rows(n=40):
    rows = []
    for i, r in enumerate(data_rows(n)):
        rows.append(r + f",{0.95 - 1.9 * i / n:.4f},{3.1 - 6.2 * i / n:.4f},0.1,0.2,0.3,0.4")
    return rows


def text(head, rows, nl="\n"):
    return (nl.join([head] + rows) + nl).encode("ascii")


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ---- accepted inputs ----------------------------------------------------------------------------
def events(path):
    with h5py.File(path, "r") as f:
        return {k: f["events"][k][()] for k in f["events"]}


def same_events(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)


def accepted(work):
    plain = os.path.join(work, "plain.csv")
    write(plain, text(DATA_HEAD, data_rows()))
    r = convert(["plain.csv", "-o", "plain.h5", "--kind", "data"], work)
    if r.returncode != 0:
        result(False, "plain_csv", f"exit {r.returncode}: {r.stderr.strip()}")
        return
    ref = events(os.path.join(work, "plain.h5"))
    variants = {
        "bom_csv": codecs.BOM_UTF8 + text(DATA_HEAD, data_rows()),
        "bom_crlf_csv": codecs.BOM_UTF8 + text(DATA_HEAD, data_rows(), "\r\n"),
        "cr_csv": text(DATA_HEAD, data_rows(), "\r"),
        "blank_lines_csv": b"\n" + text(DATA_HEAD, data_rows()[:20] + [""] + data_rows()[20:]) + b"\n  \n",
    }
    for name, data in variants.items():
        write(os.path.join(work, name + ".csv"), data)
        r = convert([name + ".csv", "-o", name + ".h5", "--kind", "data"], work)
        out = os.path.join(work, name + ".h5")
        if r.returncode != 0 or not os.path.exists(out):
            result(False, name, f"exit {r.returncode}: {r.stderr.strip()[-400:]}")
            continue
        if not same_events(events(out), ref):
            result(False, name, "events differ from the same file without BOM / with LF")
            continue
        ins = subprocess.run([EXE, "inspect", out], capture_output=True, text=True, timeout=60)
        result(ins.returncode == 0 and "40 events" in ins.stdout, name,
               f"ensfold inspect exit {ins.returncode}: {ins.stdout[-300:]} {ins.stderr[-300:]}")
    # MC as a spreadsheet writes it: BOM, CRLF
    write(os.path.join(work, "bom_mc.csv"), codecs.BOM_UTF8 + text(MC_HEAD, mc_rows(), "\r\n"))
    r = convert(["bom_mc.csv", "-o", "bom_mc.h5", "--kind", "mc"], work)
    out = os.path.join(work, "bom_mc.h5")
    ok = r.returncode == 0 and os.path.exists(out)
    if ok:
        ins = subprocess.run([EXE, "inspect", out], capture_output=True, text=True, timeout=60)
        ok = ins.returncode == 0
    result(ok, "bom_mc_csv", f"exit {r.returncode}: {r.stderr.strip()[-400:]}")


# ---- refused inputs -----------------------------------------------------------------------------
def refused(name, work, make, expect, code=2, kind="data", env=None):
    """make(dir) writes the input and returns its file name; expect: substrings of the message."""
    d = os.path.join(work, name)
    os.mkdir(d)
    # an earlier good result under the output name must survive
    write(os.path.join(d, "good.csv"), text(DATA_HEAD, data_rows()))
    r0 = convert(["good.csv", "-o", "out.h5", "--kind", "data"], d)
    if r0.returncode != 0:
        result(False, name, f"could not make the earlier output: {r0.stderr.strip()}")
        return
    os.remove(os.path.join(d, "good.csv"))
    inp = make(d)
    before_md5 = md5(os.path.join(d, "out.h5"))
    before = sorted(os.listdir(d))
    r = convert([inp, "-o", "out.h5", "--kind", kind], d, env)
    after = sorted(os.listdir(d))
    err = r.stderr.strip()
    problems = []
    if r.returncode != code:
        problems.append(f"exit {r.returncode}, expected {code}")
    if "Traceback" in r.stderr + r.stdout:
        problems.append("a Python traceback")
    lines = err.splitlines()
    if len(lines) != 1 or not lines[0].startswith("ensfold-convert: error: "):
        problems.append("not one 'ensfold-convert: error: ...' line")
    for s in [inp] + expect:
        if s not in err:
            problems.append(f"no '{s}' in the message")
    if after != before:
        problems.append(f"files left behind: {sorted(set(after) - set(before))}, "
                        f"gone: {sorted(set(before) - set(after))}")
    elif md5(os.path.join(d, "out.h5")) != before_md5:
        problems.append("the existing out.h5 changed")
    result(not problems, name, "; ".join(problems) + f" -- stderr: {err[-500:]!r}")


def csv_case(fname, data):
    def make(d):
        write(os.path.join(d, fname), data)
        return fname
    return make


def npz_case(fname, **arrays):
    def make(d):
        np.savez(os.path.join(d, fname), **arrays)
        return fname
    return make


def refusals(work):
    rows = data_rows()
    refused("duplicate_column", work,
            csv_case("dup.csv", text("topology,cos_theta,phi,cos_theta", [r + ",0.5" for r in rows])),
            ["dup.csv:1:", "cos_theta", "columns 2 and 4"])
    latin = text("topology,cos_theta,phi,comment", [r + ",ok" for r in rows[:2]]) + \
        ("1,0.5,0.1,caf\xe9\n").encode("latin-1")
    refused("latin1", work, csv_case("latin1.csv", latin), ["latin1.csv:4:", "UTF-8"])
    utf16 = "\n".join([DATA_HEAD] + rows).encode("utf-16")  # with BOM
    refused("utf16_bom", work, csv_case("utf16.csv", utf16),
            ["utf16.csv:1:", "UTF-16 detected, save as UTF-8"])
    refused("utf16_no_bom", work, csv_case("utf16le.csv", "\n".join([DATA_HEAD] + rows).encode("utf-16-le")),
            ["utf16le.csv:1:", "UTF-16 detected, save as UTF-8"])
    huge = text(DATA_HEAD, rows[:3] + ["1,0.5," + "1" * 200000])
    refused("huge_field", work, csv_case("huge.csv", huge), ["huge.csv:5:", "131072"])
    nul = text(DATA_HEAD, rows[:3]) + b"1,0.5\x00,0.1\n"
    refused("nul_byte", work, csv_case("nul.csv", nul), ["nul.csv:5:", "NUL"])
    refused("unbalanced_quote", work, csv_case("quote.csv", text(DATA_HEAD, rows[:3] + ['1,"0.5,0.1'] + rows[3:6])),
            ["quote.csv:", "quote"])
    refused("semicolons", work, csv_case("semi.csv", text("topology;cos_theta;phi", ["1;0.5;0.1"])),
            ["semi.csv:1:", "';'"])
    refused("empty_file", work, csv_case("empty.csv", b""), ["empty"])
    refused("bom_only", work, csv_case("bomonly.csv", codecs.BOM_UTF8 + b"\r\n"), ["empty"])
    refused("header_only", work, csv_case("head.csv", codecs.BOM_UTF8 + text(DATA_HEAD, [])), ["no events"])
    refused("topology_huge", work, csv_case("topo.csv", text(DATA_HEAD, rows[:3] + ["1e20,0.5,0.1"])),
            ["topo.csv:5:", "topology", "0..3"])
    refused("ragged_row", work, csv_case("ragged.csv", text(DATA_HEAD, rows[:3] + ["1,0.5"])),
            ["ragged.csv:5:", "2 fields"])
    refused("npz_not_zip", work, csv_case("text.npz", b"topology,reco\n"), ["not an .npz", "zip"])
    refused("npz_pickle", work, csv_case("pick.npz", pickle.dumps({"topology": [1, 2]})),
            ["not an .npz", "pickle"])
    topo = np.array([1, 2, 3], dtype=np.int64)
    refused("npz_object_array", work,
            npz_case("obj.npz", topology=topo, reco=np.array([[0.1, None], [0.2, 0.3], [0.1, 0.1]], dtype=object)),
            ["reco", "objects"])
    refused("npz_string_array", work,
            npz_case("str.npz", topology=topo, reco=np.array([["a", "b"]] * 3)), ["reco", "numbers"])
    refused("npz_scalar_topology", work, npz_case("scalar.npz", topology=np.int64(1), reco=np.zeros((1, 2))),
            ["topology", "shape"])

    def npy(d):
        np.save(os.path.join(d, "single.npy"), topo)
        os.rename(os.path.join(d, "single.npy"), os.path.join(d, "single.npz"))
        return "single.npz"
    refused("npz_is_npy", work, npy, [".npy"])

    def truncated(d):
        np.savez(os.path.join(d, "t.npz"), topology=topo, reco=np.zeros((3, 2)))
        b = open(os.path.join(d, "t.npz"), "rb").read()
        write(os.path.join(d, "t.npz"), b[:len(b) // 2])
        return "t.npz"
    refused("npz_truncated", work, truncated, ["not a readable .npz"])
    # failures while the output is being written
    good = text(DATA_HEAD, rows)
    refused("sigterm_while_writing", work, csv_case("in.csv", good), ["SIGTERM"], code=143,
            env={"ENSFOLD_CONVERT_TEST_HOOK": "sigterm-in-write"})
    refused("sigint_while_writing", work, csv_case("in.csv", good), ["SIGINT"], code=130,
            env={"ENSFOLD_CONVERT_TEST_HOOK": "sigint-in-write"})
    refused("internal_error_while_writing", work, csv_case("in.csv", good),
            ["internal error", "RuntimeError"], code=3, env={"ENSFOLD_CONVERT_TEST_HOOK": "raise-in-write"})
    d = os.path.join(work, "nodir")
    os.mkdir(d)
    write(os.path.join(d, "in.csv"), good)
    r = convert(["in.csv", "-o", "missing/out.h5", "--kind", "data"], d)
    result(r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
           and sorted(os.listdir(d)) == ["in.csv"], "output_dir_missing",
           f"exit {r.returncode}: {r.stderr.strip()}")


def full_disk(work):
    d = os.path.join(work, "full")
    os.mkdir(d)
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d], capture_output=True, text=True)
    if m.returncode != 0:
        why = " ".join(m.stderr.split()) or f"exit {m.returncode}"
        print(f"SKIP full_disk: cannot mount a tmpfs ({why})", flush=True)
        return
    try:
        rows = data_rows(20000)  # about 340 KB of datasets: does not fit 64 KiB
        big = os.path.join(work, "big.csv")
        write(big, text(DATA_HEAD, rows))
        refused_on(d, big)  # the earlier output lives on the full disk itself
    finally:
        u = subprocess.run(["umount", d], capture_output=True, text=True)
        if u.returncode != 0:
            subprocess.run(["umount", "-l", d])


def refused_on(d, big):
    write(os.path.join(d, "good.csv"), text(DATA_HEAD, data_rows()))
    r0 = convert(["good.csv", "-o", "out.h5", "--kind", "data"], d)
    os.remove(os.path.join(d, "good.csv"))
    if r0.returncode != 0:
        result(False, "full_disk", f"could not make the earlier output: {r0.stderr.strip()}")
        return
    before_md5, before = md5(os.path.join(d, "out.h5")), sorted(os.listdir(d))
    r = convert([big, "-o", "out.h5", "--kind", "data"], d)
    err = r.stderr.strip()
    problems = []
    if r.returncode != 3:
        problems.append(f"exit {r.returncode}, expected 3")
    if "Traceback" in r.stderr:
        problems.append("a Python traceback")
    if len(err.splitlines()) != 1 or not err.startswith("ensfold-convert: error: "):
        problems.append("not one 'ensfold-convert: error: ...' line")
    for s in ("no space left on device", "out.h5"):
        if s not in err:
            problems.append(f"no '{s}' in the message")
    after = sorted(os.listdir(d))
    if after != before:
        problems.append(f"files left behind: {sorted(set(after) - set(before))}")
    elif md5(os.path.join(d, "out.h5")) != before_md5:
        problems.append("the existing out.h5 changed")
    result(not problems, "full_disk", "; ".join(problems) + f" -- stderr: {err[-500:]!r}")


# ---- declared event spaces (format version 2) ---------------------------------------------------
SPACE_YAML = """observables:
  - {name: x, kind: bounded, range: [0, 10]}
  - {name: angle, kind: periodic, range: [0, 6.283185307179586]}
  - {name: y, kind: unbounded}
categories:
  - {name: seen}
  - {name: lost, blind: true}
"""
SPACE_ARGS = ["--observable", "x:bounded:0:10", "--observable", "angle:periodic:0:6.283185307179586",
              "--observable", "y:unbounded", "--category", "seen", "--category", "lost:blind"]
S3_HEAD = "topology,x,angle,y,true_x,true_angle,true_y,p0,p1,weight"


def s3_rows(n=30, x_hi=9.0):
    rows = []
    for i in range(n):
        t = int(i % 5 == 4)
        v = (x_hi * i / n, 0.1 + 6.0 * i / n, -3.0 + 0.2 * i)
        r = ("", "", "") if t else (f"{v[0]:.4f}", f"{v[1]:.4f}", f"{v[2] + 0.5:.4f}")
        rows.append(f"{t},{r[0]},{r[1]},{r[2]},{v[0]:.4f},{v[1]:.4f},{v[2]:.4f},0.7,0.3,{1 + i % 2}")
    return rows


def spaces(work):
    write(os.path.join(work, "s3.csv"), text(S3_HEAD, s3_rows()))
    write(os.path.join(work, "space.yaml"), SPACE_YAML.encode())
    ra = convert(["s3.csv", "-o", "s3a.h5", "--kind", "mc", "--space", "space.yaml"], work)
    rb = convert(["s3.csv", "-o", "s3b.h5", "--kind", "mc"] + SPACE_ARGS, work)
    if ra.returncode or rb.returncode:
        result(False, "space_csv", f"exit {ra.returncode} / {rb.returncode}: {ra.stderr} {rb.stderr}")
        return
    a, b = events(os.path.join(work, "s3a.h5")), events(os.path.join(work, "s3b.h5"))
    ok = same_events(a, b) and a["reco"].shape == (30, 3) and a["prob"].shape == (30, 2)
    ok = ok and bool(np.all(np.isnan(a["reco"][a["topology"] == 1])))
    ok = ok and np.allclose(a["vertex"][:, 2], -3.0 + 0.2 * np.arange(30))
    with h5py.File(os.path.join(work, "s3a.h5"), "r") as f:
        g = f["events"]
        ok = ok and int(g.attrs["format_version"]) == 2 and list(g.attrs["observables"]) == ["x", "angle", "y"]
        ok = ok and list(g.attrs["categories"]) == ["seen", "lost"] and list(g.attrs["blind"]) == [0, 1]
    ins = subprocess.run([EXE, "inspect", os.path.join(work, "s3a.h5")], capture_output=True, text=True,
                         timeout=60)
    ok = ok and ins.returncode == 0 and "x in [0, 10] (bounded)" in ins.stdout and "lost      blind" in ins.stdout
    result(ok, "space_csv_yaml_and_cli", f"{ins.stdout[-400:]} {ins.stderr[-300:]}")
    np.savez(os.path.join(work, "s3.npz"), topology=a["topology"], reco=a["reco"], vertex=a["vertex"],
             prob=a["prob"], weight=a["weight"])
    r = convert(["s3.npz", "-o", "s3n.h5", "--kind", "mc", "--space", "space.yaml"], work)
    result(r.returncode == 0 and same_events(events(os.path.join(work, "s3n.h5")), a), "space_npz",
           f"exit {r.returncode}: {r.stderr[-300:]}")
    # the pi0 truth may be named true_cos_theta, true_phi
    write(os.path.join(work, "true.csv"), text(MC_HEAD.replace("vertex_", "true_"), mc_rows()))
    write(os.path.join(work, "vert.csv"), text(MC_HEAD, mc_rows()))
    r1 = convert(["true.csv", "-o", "true.h5", "--kind", "mc"], work)
    r2 = convert(["vert.csv", "-o", "vert.h5", "--kind", "mc"], work)
    result(r1.returncode == 0 and r2.returncode == 0 and
           same_events(events(os.path.join(work, "true.h5")), events(os.path.join(work, "vert.h5"))),
           "pi0_true_columns", f"{r1.stderr} {r2.stderr}")
    # refusals: exit 2, the source named, no output file
    bad = [
        ("space_value_out_of_range", ["s3x.csv", "--space", "space.yaml"],
         ["s3x.h5: /events/reco row", "allowed x in [0, 10]", "nothing written"]),
        ("space_yaml_kind", ["s3.csv", "--space", "badkind.yaml"],
         ["badkind.yaml: observable 'x' has kind 'circular' (allowed: bounded, periodic, unbounded)"]),
        ("space_half_declared", ["s3.csv", "--observable", "x:bounded:0:10"],
         ["--observable and --category go together"]),
        ("space_topology_range", ["s3.csv", "--observable", "x:bounded:0:10", "--observable",
                                  "angle:periodic:0:7", "--observable", "y:unbounded", "--category", "seen"],
         ["s3.csv:6: topology '1': must be an integer 0..0"]),
        ("space_missing_column", ["s3.csv", "--observable", "z:unbounded", "--category", "seen",
                                  "--category", "lost:blind"], ["missing column(s) z, true_z"]),
    ]
    write(os.path.join(work, "s3x.csv"), text(S3_HEAD, s3_rows(x_hi=12.0)))
    write(os.path.join(work, "badkind.yaml"), SPACE_YAML.replace("bounded, range: [0, 10]",
                                                                 "circular, range: [0, 10]").encode())
    for name, args, want in bad:
        out = os.path.join(work, name + ".h5")
        r = convert([args[0], "-o", name + ".h5" if name != "space_value_out_of_range" else "s3x.h5",
                     "--kind", "mc"] + args[1:], work)
        left = os.path.exists(out) or os.path.exists(os.path.join(work, "s3x.h5"))
        result(r.returncode == 2 and all(w in r.stderr for w in want) and not left, name,
               f"exit {r.returncode}, left {left}: {r.stderr.strip()[-400:]}")


def main():
    print(f"# converter: {TOOL}", flush=True)
    work = tempfile.mkdtemp(prefix="test_convert.")
    try:
        accepted(work)
        spaces(work)
        refusals(work)
        full_disk(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"# {len(failures)} failed" + (": " + ", ".join(failures) if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
