#!/usr/bin/python3
"""Run the bad-input corpus (cases.tsv) against ensfold.

usage: /usr/bin/python3 run.py [ENSFOLD_EXE] [-j JOBS] [-k SUBSTRING] [-v]

ENSFOLD_EXE defaults to $ENSFOLD_EXE. The event files are written by
make_event_files.py into a scratch directory (removed afterwards unless
--keep). Every case must:
  - exit with code 2 (not 0, 1, 3, not a signal),
  - not crash: no 'Segmentation', 'Abort', 'Traceback', 'core dumped',
    'Sanitizer', 'on signal' in its output,
  - not hang: killed after --timeout seconds (default 60; flag timeout=S),
  - print an error on stderr containing every expected substring of the
    manifest (the file, and the line:col, key, dataset or row),
  - create no file in its working directory (each case runs in its own empty
    one, with -o inside it), and leave the files that existed before it
    (flags existing, journal) byte-identical (md5).
An event case is up to three commands: ensfold inspect FILE, ensfold validate
of a campaign config naming FILE, and that campaign under mpirun -n 2.
A case flagged locked runs while another process holds its event file open
for writing with h5py (HDF5 1.10 takes a file lock), released afterwards.
Prints one line per case (PASS/FAIL/XFAIL/XPASS/SKIP name: reason), then a
count; exits 1 if any case failed, 0 otherwise.
"""
import argparse
import concurrent.futures
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAST = ["--set", "detector.pi0.table_dtheta=2", "--set", "detector.pi0.table_dphi=2"]
CRASH_MARKS = ["Segmentation", "Abort", "Traceback", "core dumped", "Sanitizer", "on signal",
               "double free", "stack smashing"]


def load_cases(path):
    cases = []
    for lineno, line in enumerate(open(path, encoding="utf-8"), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.rstrip("\n").split("\t")
        if len(cols) != 6:
            sys.exit("%s:%d: expected 6 tab-separated columns, got %d" % (path, lineno, len(cols)))
        name, kind, target, args, expect, flags = cols
        if kind not in ("validate", "run", "event"):
            sys.exit("%s:%d: unknown kind '%s'" % (path, lineno, kind))
        cases.append({"name": name, "kind": kind, "target": target, "args": args,
                      "expect": [e for e in expect.split(" && ") if e],
                      "flags": flags.split(), "line": lineno})
    names = [c["name"] for c in cases]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit("%s: duplicate case names: %s" % (path, ", ".join(sorted(dup))))
    return cases


def flag_value(case, key, default=None):
    for f in case["flags"]:
        if f.startswith(key + "="):
            return f[len(key) + 1:]
    return default


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def make_specials(d):
    """The special config paths a manifest target can name with @."""
    os.makedirs(d, exist_ok=True)
    sp = {}
    sp["@dir"] = os.path.join(d, "a-directory.yaml")
    os.makedirs(sp["@dir"], exist_ok=True)
    sp["@missing"] = os.path.join(d, "no-such-config.yaml")
    sp["@fifo"] = os.path.join(d, "fifo.yaml")  # a FIFO nobody writes to
    os.mkfifo(sp["@fifo"])
    # as root, chmod 000 does not stop reading: /proc/self/mem opens and then
    # fails every read at offset 0 with EIO, a clean "unreadable file"
    sp["@procmem"] = "/proc/self/mem"
    a, b = os.path.join(d, "loop-a.yaml"), os.path.join(d, "loop-b.yaml")
    os.symlink(b, a)
    os.symlink(a, b)
    sp["@symloop"] = a
    plain = os.path.join(d, "plain-file.yaml")
    open(plain, "w").write("seed: 1\n")
    sp["@notdir"] = os.path.join(plain, "config.yaml")
    # binary garbage with NUL bytes, and without (invalid UTF-8)
    sp["@binary"] = os.path.join(d, "garbage.yaml")
    open(sp["@binary"], "wb").write(bytes((i * 7919 + 13) % 256 for i in range(4096)))
    sp["@binary_nonul"] = os.path.join(d, "garbage-nonul.yaml")
    open(sp["@binary_nonul"], "wb").write(bytes(0x80 + (i * 31) % 128 for i in range(4096)))
    # a 65 MiB config (sparse: costs no disk)
    sp["@huge"] = os.path.join(d, "huge.yaml")
    with open(sp["@huge"], "wb") as f:
        f.write(b"seed: 1\n")
        f.truncate(65 << 20)
    # a real (not sparse) config of 2 MiB: one flow mapping, the shape that
    # cost libyaml 2.6 GB per rank at 16 MB
    sp["@flow2m"] = os.path.join(d, "flow-2MiB.yaml")
    with open(sp["@flow2m"], "w") as f:
        f.write("seed: 1\nphysics: {")
        f.write("".join("k%d: 1, " % i for i in range(230000)))
        f.write("}\n")
    return sp


HOLD = "import sys, h5py\nf = h5py.File(sys.argv[1], 'a')\nprint('open', flush=True)\n" \
       "sys.stdin.read()\nf.close()\n"


def hold_open(path):
    """A process that keeps path open for writing (and so HDF5-locked) until released."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, path], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    if p.stdout.readline().strip() != "open":
        p.kill()
        p.wait()
        raise RuntimeError("could not hold %s open for writing" % path)
    return p


def release(p):
    p.stdin.close()
    p.wait(timeout=60)


def make_campaign(work, role, evfile):
    """A small campaign whose data.file (or mc.file) is the event file."""
    other = "mc" if role == "data" else "data"
    path = os.path.join(work, "campaign.yaml")
    with open(path, "w") as f:
        f.write("seed: 1\n%s: {source: file, file: '%s'}\n%s: {events: 1000}\n"
                "campaign: {replicas: 0}\n" % (role, evfile.replace("'", "''"), other))
    return path


def execute(cmd, cwd, timeout):
    """Run cmd in its own session; on timeout kill the whole group."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        hung = False
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        hung = True
    return (p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
            hung, time.monotonic() - t0)


def check(case, sub, cmd, work, subs, preexisting, timeout, allowed_files):
    """Run one command of a case; return a list of problems (empty = pass)."""
    rc, out, err, hung, wall = execute(cmd, work, timeout)
    problems = []
    if hung:
        problems.append("hung: killed after %d s" % timeout)
    elif rc < 0:
        problems.append("killed by signal %d" % -rc)
    elif rc != 2:
        problems.append("exit code %d, expected 2" % rc)
    for mark in CRASH_MARKS:
        if mark in err or mark in out:
            problems.append("output contains '%s'" % mark)
    if "error:" not in err:
        problems.append("no 'error:' line on stderr")
    for e in case["expect"]:
        want = e
        for k, v in subs.items():
            want = want.replace("{%s}" % k, v)
        if want not in err:
            problems.append("stderr lacks %r" % want)
    if sub in ("run", "validate") and case["kind"] == "event" and "(%s" % subs["key"] not in err \
            and subs["key"] + ":" not in err:
        problems.append("stderr does not name the key %s" % subs["key"])
    # nothing created, nothing changed
    now = set()
    for root, dirs, files in os.walk(work):
        for n in dirs + files:
            now.add(os.path.relpath(os.path.join(root, n), work))
    extra = sorted(now - set(preexisting) - set(allowed_files))
    if extra:
        problems.append("created %s" % ", ".join(extra))
    for rel, digest in preexisting.items():
        p = os.path.join(work, rel)
        if not os.path.exists(p):
            problems.append("%s was removed" % rel)
        elif md5(p) != digest:
            problems.append("%s was changed" % rel)
    return problems, rc, err, wall, cmd


def run_case(case, opts, exe, mpirun, evdir, specials, scratch):
    """Run a case (an event case is two sub-cases); returns result dicts."""
    results = []
    subs_list = []
    if case["kind"] == "event":
        if "run-only" not in case["flags"]:
            subs_list.append("inspect")
        if "inspect-only" not in case["flags"] and "no-validate" not in case["flags"]:
            subs_list.append("validate")
        if "inspect-only" not in case["flags"]:
            subs_list.append("run")
    else:
        subs_list.append(case["kind"])
    timeout = int(flag_value(case, "timeout", opts.timeout))
    for sub in subs_list:
        name = case["name"] + ("/" + sub if case["kind"] == "event" else "")
        res = {"name": name, "case": case}
        if sub == "run" and not mpirun:
            res.update(status="SKIP", reason="no mpirun")
            results.append(res)
            continue
        work = tempfile.mkdtemp(prefix="case-", dir=scratch)
        out = os.path.join(work, "out.h5")
        subs = {"work": work, "out": out}
        # target as passed on the command line
        t = case["target"]
        if t.startswith("@"):
            t = specials[t]
        elif t.startswith("configs/"):
            t = os.path.join(HERE, t)
        if case["kind"] == "event":
            subs["file"] = os.path.join(evdir, case["target"])
            t = subs["file"]
        subs["target"] = t
        args = [a.replace("{work}", work).replace("{out}", out) for a in shlex.split(case["args"])]
        args = [os.path.join(HERE, a) if a.startswith("configs/") else a for a in args]
        preexisting = {}
        if "existing" in case["flags"]:
            shutil.copy(os.path.join(evdir, "good_data.h5"), out)
        if "journal" in case["flags"]:
            with open(out + ".journal", "wb") as f:
                f.write(b"ENSFOLD-JOURNAL-PLACEHOLDER " * 100)
        for n in os.listdir(work):
            preexisting[n] = md5(os.path.join(work, n))
        allowed = []
        if sub == "validate" and case["kind"] == "event":
            # the campaign's config: validate reads the event file it names
            subs["key"] = flag_value(case, "role", "data") + ".file"
            t = make_campaign(work, flag_value(case, "role", "data"), subs["file"])
            allowed.append("campaign.yaml")
            cmd = [exe, "validate", t]
        elif sub == "validate":
            cmd = [exe, "validate"] + ([t] if t != "-" else []) + args
        elif sub == "inspect":
            cmd = [exe, "inspect", t]
        else:
            if case["kind"] == "event":
                role = flag_value(case, "role", "data")
                subs["key"] = role + ".file"
                t = make_campaign(work, role, subs["file"])
                allowed.append("campaign.yaml")
            cmd = [mpirun, "-n", "2", exe, "run"] + ([t] if t != "-" else [])
            if "no-o" not in case["flags"]:
                cmd += ["-o", out]
            cmd += FAST + args
        holder = hold_open(subs["file"]) if "locked" in case["flags"] else None
        try:
            problems, rc, err, wall, cmd = check(case, sub, cmd, work, subs, preexisting,
                                                 timeout, allowed)
        finally:
            if holder:
                release(holder)
        known = "known-bug" in case["flags"]
        if problems:
            res.update(status="XFAIL" if known else "FAIL", reason="; ".join(problems))
        else:
            res.update(status="XPASS" if known else "PASS",
                       reason="exit 2, %.1f s" % wall)
        res.update(cmd=cmd, err=err, wall=wall)
        results.append(res)
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("exe", nargs="?", default=os.environ.get("ENSFOLD_EXE"))
    ap.add_argument("-j", "--jobs", type=int, default=2, help="cases run at once (default 2)")
    ap.add_argument("-k", "--filter", default="", help="only cases whose name contains this")
    ap.add_argument("-v", "--verbose", action="store_true", help="print stderr of failures")
    ap.add_argument("--timeout", type=int, default=60, help="seconds per command (default 60)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--manifest", default=os.path.join(HERE, "cases.tsv"))
    opts = ap.parse_args()
    if not opts.exe:
        sys.exit("usage: run.py ENSFOLD_EXE (or set ENSFOLD_EXE)")
    exe = os.path.abspath(opts.exe)
    if not os.access(exe, os.X_OK):
        sys.exit("run.py: %s is not executable" % exe)
    mpirun = shutil.which("mpirun")
    for k, v in (("OMPI_ALLOW_RUN_AS_ROOT", "1"), ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
                 ("OMPI_MCA_rmaps_base_oversubscribe", "1"), ("NO_COLOR", "1")):
        os.environ.setdefault(k, v)
    cases = [c for c in load_cases(opts.manifest) if opts.filter in c["name"]]
    t0 = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="ensfold-bad-input-")
    try:
        evdir = os.path.join(scratch, "events")
        gen = subprocess.run([sys.executable, os.path.join(HERE, "make_event_files.py"), evdir],
                             capture_output=True, text=True)
        if gen.returncode != 0:
            print(gen.stdout + gen.stderr)
            sys.exit("run.py: make_event_files.py failed")
        specials = make_specials(os.path.join(scratch, "special"))
        counts = {}
        n_cases = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
            futs = [pool.submit(run_case, c, opts, exe, mpirun, evdir, specials, scratch)
                    for c in cases]
            for fut in futs:   # in manifest order
                for r in fut.result():
                    n_cases += 1
                    counts[r["status"]] = counts.get(r["status"], 0) + 1
                    print("%s %s: %s" % (r["status"], r["name"], r["reason"]), flush=True)
                    if r["status"] in ("FAIL", "XPASS") or (opts.verbose and r["status"] != "PASS"):
                        if "cmd" in r:
                            print("    command: %s" % " ".join(shlex.quote(a) for a in r["cmd"]))
                            for line in r["err"].strip().splitlines()[:12]:
                                print("    | " + line)
    finally:
        if not opts.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print("scratch kept in %s" % scratch)
    summary = ", ".join("%d %s" % (counts[k], k) for k in ("PASS", "FAIL", "XFAIL", "XPASS", "SKIP")
                        if counts.get(k))
    print("bad-input: %d checks from %d manifest cases: %s (%.0f s)"
          % (n_cases, len(cases), summary or "none", time.monotonic() - t0))
    return 1 if counts.get("FAIL") else 0


if __name__ == "__main__":
    sys.exit(main())
