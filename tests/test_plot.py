#!/usr/bin/python3
"""tools/ensfold-plot end to end: a small campaign, the plots, the numbers.

Usage: test_plot.py ENSFOLD_EXE SCRATCH_DIR
(env ENSFOLD_SOURCE_ROOT: the source tree; defaults to this file's parent.)

1. runs tests/mpi/small.yaml with `mpirun -n 2 ensfold run` (IBU, PS and M2
   fills, 6 replicas);
2. runs tools/ensfold-plot on it (through its shebang, with NO_COLOR=1);
3. checks every expected PNG exists, is > 10 KB and is not blank (pixel
   standard deviation > 0), that stdout lists exactly the written files and
   that plotdata.json indexes exactly the PNGs;
4. recomputes from the HDF5 file, here, every number drawn: projections of
   the group means, their +-1 sigma bands from the full covariance
   (sqrt(1^T C 1) over each projected bin's vertex bins), truth and
   fill-model projections, maps, correlations, efficiencies (the
   per-topology maps must add up to /inputs/efficiency), the model-dependence
   significance map and its projections;
4b. a file with generic loss curves (/units/loss_generator) gets them drawn
   as they are; a file made to look like a GAN campaign (the PS units
   relabelled gan-topo, per-unit efficiency maps and /units/loss_d,
   /units/loss_g of shape (U, 50)) gets one loss line per GAN group (its
   replica-0 unit) and the group's own efficiency maps against
   /truth/efficiency, while the IBU group gets none;
4e. a file in the layout before /inputs (the shared inputs under /ibu, as
   older ensfold wrote them) is plotted as the new one: the same plots and
   every array drawn equal, the datasets named where they are; `ensfold
   summary` prints the same for both;
5. bad input exits 2 with a message naming the file (and the dataset), no
   traceback: a missing file, a text file, an event file, a result file
   with a dataset removed.
Exit 0 pass, 1 fail, 77 skip (no mpirun or no matplotlib)."""
import json
import os
import shutil
import subprocess
import sys
import time

try:
    import h5py
    import numpy as np
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.image as mpimg
except ImportError as e:
    print("SKIP: needs python3-h5py, python3-numpy, python3-matplotlib: %s" % e)
    sys.exit(77)

FAILS = []


def check(cond, what):
    if cond:
        print("ok   %s" % what)
    else:
        print("FAIL %s" % what)
        FAILS.append(what)
    return cond


def close(a, b, what, rtol=1e-12):
    """Equal up to summation order: |a - b| <= rtol x (|b| + scale of b)."""
    if a is None or b is None:
        return check(False, "%s: nothing to compare (array missing)" % what)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return check(False, "%s: shape %s, expected %s" % (what, a.shape, b.shape))
    nan_ok = np.array_equal(np.isnan(a), np.isnan(b))
    fa, fb = np.nan_to_num(a), np.nan_to_num(b)
    scale = np.max(np.abs(fb)) if fb.size else 0.0
    err = np.max(np.abs(fa - fb)) if fa.size else 0.0
    return check(nan_ok and err <= rtol * (scale + 1e-300),
                 "%s (max |diff| %.3g of scale %.3g)" % (what, err, scale))


def not_blank(path):
    """A PNG that shows something: pixels vary, and more than 2 % of them are
    not the white background."""
    img = mpimg.imread(path)
    rgb = img[..., :3] if img.ndim == 3 else img
    ink = float(np.mean(np.any(rgb < 0.95, axis=-1))) if img.ndim == 3 else 0.0
    return check(img.ndim == 3 and float(np.std(rgb)) > 0 and ink > 0.02,
                 "%s is not blank (pixel std %.3f, %.0f %% ink)"
                 % (os.path.basename(path), float(np.std(rgb)), 100 * ink))


def svg_texts(path):
    """Every text drawn in an SVG written by matplotlib (it writes each text
    artist's string as a comment before its glyphs)."""
    import html
    import re
    with open(path) as fh:
        return [html.unescape(t) for t in re.findall(r"<!-- (.*?) -->", fh.read(), re.S)]


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


def main(exe, scratch):
    t0 = time.time()
    src = os.environ.get("ENSFOLD_SOURCE_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # ENSFOLD_PLOT_TOOL: another version of the tool (e.g. main's, to see which
    # checks it fails)
    tool = os.environ.get("ENSFOLD_PLOT_TOOL") or os.path.join(src, "tools", "ensfold-plot")
    mpirun = shutil.which("mpirun")
    if not mpirun:
        print("SKIP: no mpirun")
        return 77
    work = os.path.join(os.path.abspath(scratch), "plot-test")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", NO_COLOR="1")
    check(os.access(tool, os.X_OK), "tools/ensfold-plot is executable")

    # 1. campaign
    h5 = os.path.join(work, "small.h5")
    r = run([mpirun, "-n", "2", exe, "run", os.path.join(src, "tests", "mpi", "small.yaml"),
             "-o", h5, "--quiet", "--overwrite"], env=env)
    if not check(r.returncode == 0 and os.path.exists(h5), "campaign ran (rc %d)" % r.returncode):
        print(r.stdout, r.stderr)
        return 1
    print("# campaign: %.1f s" % (time.time() - t0))

    # 2. plots
    out = os.path.join(work, "plots")
    t1 = time.time()
    r = run([tool, h5, "-o", out], env=env)
    print("# ensfold-plot: %.1f s" % (time.time() - t1))
    sys.stderr.write(r.stderr)
    if not check(r.returncode == 0, "ensfold-plot exit 0 (got %d)" % r.returncode):
        return 1
    check("Traceback" not in r.stderr and "\x1b[" not in r.stderr + r.stdout,
          "no traceback, no colour escapes (NO_COLOR=1)")
    check("loss" in r.stderr and "skipped" in r.stderr, "stderr says the loss plots were skipped")
    listed = [l for l in r.stdout.splitlines() if l.strip()]

    # 3. the files
    with h5py.File(h5, "r") as f:
        groups = sorted(f["groups"])
        diffs = sorted(f["differences"])
    expected = ["efficiency.png", "efficiency_topologies.png", "proj_polar.png", "proj_phi.png"]
    for g in groups:
        expected += ["proj_polar_%s.png" % g, "proj_phi_%s.png" % g, "map_%s.png" % g, "corr_%s.png" % g]
    for d in diffs:
        expected += ["model_dependence_%s.png" % d, "model_dependence_%s_proj.png" % d]
    check(len(groups) == 2 and len(diffs) == 1, "small.yaml gives 2 groups and 1 difference")
    for png in expected:
        p = os.path.join(out, png)
        if not check(os.path.isfile(p), "%s exists" % png):
            continue
        size = os.path.getsize(p)
        check(size > 10 * 1024, "%s is > 10 KB (%d bytes)" % (png, size))
        not_blank(p)
    written = sorted(os.listdir(out))
    check(sorted(expected + ["plotdata.npz", "plotdata.json"]) == written,
          "the output directory holds exactly the expected files")
    check(sorted(os.path.normpath(p) for p in listed) ==
          sorted(os.path.normpath(os.path.join(out, w)) for w in written),
          "stdout lists exactly the written files")
    with open(os.path.join(out, "plotdata.json")) as fh:
        index = json.load(fh)
    check(sorted(index["plots"]) == sorted(expected), "plotdata.json indexes every PNG")
    pd = np.load(os.path.join(out, "plotdata.npz"))

    def arr(png, name):
        key = index["plots"].get(png, {}).get("arrays", {}).get(name)
        if key is None or key not in pd.files:
            check(False, "%s: array %s in plotdata" % (png, name))
            return None
        return pd[key]

    # 4. the numbers, recomputed from the HDF5 file
    with h5py.File(h5, "r") as f:
        th = f["binning_vertex/theta_edges_deg"][()]
        ph = f["binning_vertex/phi_edges_deg"][()]
        nt, nf = len(th) - 1, len(ph) - 1
        V = nt * nf
        truth = f["truth/hist"][()]
        measured = f["measured"][()] != 0
        check("inputs" in f and "ibu" not in f, "the shared inputs are under /inputs, no /ibu")
        priors = {m: f["inputs/prior"][m][()] for m in f["inputs/prior"]}
        blocks = {"polar": [np.arange(a * nf, (a + 1) * nf) for a in range(nt)],
                  "phi": [np.arange(nt) * nf + j for j in range(nf)]}
        edges = {"polar": np.cos(np.radians(th)), "phi": ph}
        summ = {}
        names = {0: "ibu", 1: "gan-topo", 2: "gan-mixed"}
        models = {0: "M1", 1: "PS", 2: "M2"}
        for k in range(len(f["summary/method"])):
            summ["%s_%s" % (names[int(f["summary/method"][k])], models[int(f["summary/fill_model"][k])])] = {
                c: f["summary/" + c][k] for c in ("replicas", "chi2_measured", "ndf_measured")}
        n_events = 20000                                      # tests/mpi/small.yaml data.events

        def chi2_text(row):
            """How the annotation gives chi2: chi2/ndf, or, when bins with sigma 0
            sit off the truth (chi2 = inf), how many of the measured bins."""
            if np.isinf(row["chi2_measured"]):
                return "of %d measured bins with" % row["ndf_measured"]
            return "%.1f/%d" % (row["chi2_measured"], row["ndf_measured"])
        width = {"polar": np.abs(np.diff(np.cos(np.radians(th)))), "phi": np.radians(np.diff(ph))}
        omega = np.outer(width["polar"], width["phi"])
        for g in groups:
            mean = f["groups/%s/mean" % g][()]
            cov = f["groups/%s/cov" % g][()]
            for axis in ("polar", "phi"):
                for png, pre in (("proj_%s_%s.png" % (axis, g), ""), ("proj_%s.png" % axis, g + "_")):
                    y = np.array([mean[b].sum() for b in blocks[axis]])
                    sig = np.array([np.sqrt(cov[np.ix_(b, b)].sum()) for b in blocks[axis]])
                    close(arr(png, "x_edges"), edges[axis], "%s x edges" % png)
                    close(arr(png, pre + "y"), y, "%s %smean projection" % (png, pre))
                    d = arr(png, pre + "density")
                    # the density: divided by the bin width in the plotted
                    # variable, so that its integral is the histogram total
                    close(d, y / width[axis], "%s %sdensity = events / bin width" % (png, pre))
                    close(None if d is None else np.sum(d * width[axis]), mean.sum(),
                          "%s %sintegral of the density = histogram total %.1f" % (png, pre, mean.sum()),
                          rtol=1e-10)
                    close(arr(png, pre + "sigma"), sig / width[axis],
                          "%s %ssigma = sqrt(1^T C 1) / width" % (png, pre))
                    close(arr(png, pre + "band_lo"), (y - sig) / width[axis], "%s %sband lo" % (png, pre))
                    close(arr(png, pre + "band_hi"), (y + sig) / width[axis], "%s %sband hi" % (png, pre))
                    # the band is not the naive quadrature sum (correlations matter)
                    naive = np.array([np.sqrt(np.diag(cov)[b].sum()) for b in blocks[axis]])
                    check(not np.allclose(sig, naive), "%s band uses the off-diagonal covariance" % png)
                    tr = np.array([truth[b].sum() for b in blocks[axis]])
                    close(arr(png, "truth"), tr, "%s truth" % png)
                    close(arr(png, "truth_density"), tr / width[axis], "%s truth density" % png)
                    close(arr(png, pre + "ratio"), (y / width[axis]) / (tr / width[axis]),
                          "%s %sratio to the truth" % (png, pre), rtol=1e-10)
                    close(arr(png, "unmeasured_bin_fraction"),
                          [(~measured[b]).mean() for b in blocks[axis]], "%s unmeasured fraction" % png)
                    # the campaign's numbers on the plot
                    ann = index["plots"].get(png, {}).get("annotation", "")
                    row = summ[g]
                    for want in ("N = %d" % n_events, "R = %d" % row["replicas"], chi2_text(row)):
                        check(want in ann, "%s annotation has '%s'" % (png, want))
                png = "proj_%s_%s.png" % (axis, g)
                for m, p in priors.items():
                    scaled = p * mean.sum() / p.sum()
                    close(arr(png, "model_" + m), [scaled[b].sum() for b in blocks[axis]],
                          "%s fill model %s scaled to the unfolded total" % (png, m))
            png = "map_%s.png" % g
            z = arr(png, "z")
            close(z, mean.reshape(nt, nf) / omega, "%s: dN/dOmega = events / solid angle" % png)
            close(None if z is None else np.sum(z * omega), mean.sum(), "%s: integral of dN/dOmega = histogram total" % png,
                  rtol=1e-10)
            close(arr(png, "y_edges"), th, "map_%s theta edges" % g, rtol=0)
            close(arr(png, "x_edges"), ph, "map_%s phi edges" % g, rtol=0)
            # correlations: R = 6 replicas, so R - 1 = 5 < 18 and < 36 bins: no
            # matrix, only the neighbour summary (recomputed for two lags)
            png = "corr_%s.png" % g
            check(arr(png, "shown") is not None and list(arr(png, "shown")) == [False, False],
                  "%s: no projection matrix at R - 1 = %d < bins" % (png, summ[g]["replicas"] - 1))
            check("not shown" in index["plots"].get(png, {}).get("annotation", ""), "%s says why" % png)
            c = f["groups/%s/corr" % g][()].reshape(nt, nf, nt, nf)
            lag = arr(png, "lag")
            m2 = measured.reshape(nt, nf)
            for a_, b_ in ((0, 1), (1, 0)) if lag is not None else ():
                v = [c[i, j, i + a_, (j + b_) % nf] for i in range(nt - a_) for j in range(nf)
                     if m2[i, j] and m2[i + a_, (j + b_) % nf]]
                close(lag[a_, b_ + 3], np.mean(v), "%s: mean correlation at lag (%d, %d)" % (png, a_, b_),
                      rtol=1e-10)

        eff = f["inputs/efficiency"][()]
        close(arr("efficiency.png", "z"), eff.reshape(nt, nf), "efficiency map", rtol=0)
        j = f["inputs/response_detector_bin"][()]
        i = f["inputs/response_vertex_bin"][()]
        v = f["inputs/response_value"][()]
        nd = (len(f["binning_detector/theta_edges_deg"]) - 1) * (len(f["binning_detector/phi_edges_deg"]) - 1)
        tot = np.zeros(V)
        for t in (1, 2, 3):
            e = np.zeros(V)
            sel = (j // nd) == t - 1
            np.add.at(e, i[sel], v[sel])
            tot += e
            close(arr("efficiency_topologies.png", "z_T%d" % t), e.reshape(nt, nf),
                  "efficiency of topology T%d" % t)
        close(tot, eff, "per-topology efficiencies add up to /inputs/efficiency", rtol=1e-9)

        for d in diffs:
            png = "model_dependence_%s.png" % d
            sgn = f["differences/%s/significance" % d][()]
            close(arr(png, "z"), sgn.reshape(nt, nf), "%s significance map" % d, rtol=0)
            zc = arr(png, "z_clipped")
            close(zc, np.clip(sgn, -5, 5).reshape(nt, nf), "%s significance drawn clipped to +-5" % d,
                  rtol=0)
            check(zc is not None and np.nanmax(np.abs(sgn)) > 5 and np.nanmax(np.abs(zc)) <= 5,
                  "%s: |significance| up to %.0f in the file, <= 5 on the plot" % (d, np.nanmax(np.abs(sgn))))
            check("clipped" in index["plots"].get(png, {}).get("annotation", ""), "%s says it is clipped" % png)
            dm = f["differences/%s/mean" % d][()]
            dc = f["differences/%s/cov" % d][()]
            png = "model_dependence_%s_proj.png" % d
            for axis in ("polar", "phi"):
                y = np.array([dm[b].sum() for b in blocks[axis]])
                sig = np.array([np.sqrt(dc[np.ix_(b, b)].sum()) for b in blocks[axis]])
                close(arr(png, axis + "_y"), y, "%s %s projected difference" % (d, axis))
                close(arr(png, axis + "_sigma"), sig, "%s %s sigma" % (d, axis))
                close(arr(png, axis + "_density"), y / width[axis], "%s %s difference density" % (d, axis))
                close(arr(png, axis + "_band_lo"), (y - sig) / width[axis], "%s %s band lo" % (d, axis))
                close(arr(png, axis + "_band_hi"), (y + sig) / width[axis], "%s %s band hi" % (d, axis))
                with np.errstate(invalid="ignore", divide="ignore"):
                    s = np.where(sig > 0, y / sig, np.nan)
                close(arr(png, axis + "_significance"), s, "%s %s projected significance" % (d, axis),
                      rtol=1e-10)
                close(arr(png, axis + "_significance_clipped"), np.clip(s, -5, 5),
                      "%s %s projected significance, clipped to +-5" % (d, axis), rtol=1e-10)

    # 4b. loss curves: a result file that has them (as GAN units will write)
    lossy = os.path.join(work, "lossy.h5")
    shutil.copy(h5, lossy)
    with h5py.File(lossy, "r+") as f:
        nu = f["units/id"].shape[0]
        curves = np.exp(-np.outer(np.arange(1, nu + 1), np.linspace(0, 1, 50)) / 10.0)
        f["units/loss_generator"] = curves
    lout = os.path.join(work, "lossplots")
    r = run([tool, lossy, "-o", lout], env=env)
    if check(r.returncode == 0, "ensfold-plot on a file with loss curves (rc %d)" % r.returncode):
        png = os.path.join(lout, "loss_units_loss_generator.png")
        check(os.path.isfile(png) and os.path.getsize(png) > 10 * 1024, "loss plot written")
        with open(os.path.join(lout, "plotdata.json")) as fh:
            li = json.load(fh)
        lp = np.load(os.path.join(lout, "plotdata.npz"))
        entry = li["plots"].get("loss_units_loss_generator.png", {})
        ykey = entry.get("arrays", {}).get("y")
        check(ykey is not None and np.array_equal(np.asarray(lp[ykey]).ravel(), curves.ravel()),
              "the loss curves drawn are the file's")

    # 4c. a GAN-like file: the PS units become gan-topo units with their own
    # efficiency maps and loss curves (the layout ensfold run writes)
    gan = os.path.join(work, "gan.h5")
    shutil.copy(h5, gan)
    with h5py.File(gan, "r+") as f:
        check("units/efficiency" in f and f["units/efficiency"].shape == (f["units/id"].shape[0], 4, V)
              and f["truth/efficiency"].shape == (4, V),
              "the result file has /units/efficiency (U, 4, V) and /truth/efficiency (4, V)")
        fill = f["units/fill_model"][()]
        rep_ = f["units/replica"][()]
        meth = f["units/method"][()]
        nu = len(meth)
        gan_units = fill == 1                                   # PS
        meth[gan_units] = 1
        f["units/method"][...] = meth
        f.copy(f["groups/ibu_PS"], "groups/gan-topo_PS")
        del f["groups/ibu_PS"]
        # its uncertainty parts, separated (docs/methods.md): the band drawn is
        # sigma_central, here half the replica sigma
        gg = f["groups/gan-topo_PS"]
        for k in ("sigma_central", "sigma_stat", "own_mean"):
            if k in gg:
                del gg[k]
        gg["sigma_central"] = 0.5 * gg["sigma"][()]
        gg["sigma_stat"] = 0.45 * gg["sigma"][()]
        gg["own_mean"] = gg["mean"][()]
        rng = np.random.default_rng(3)
        eff = f["units/efficiency"][()]
        eff[gan_units] += rng.normal(0, 0.01, eff[gan_units].shape)
        f["units/efficiency"][...] = eff
        ld = np.zeros((nu, 50))
        lg = np.zeros((nu, 50))
        ld[gan_units] = 1.4 - np.exp(-np.outer(np.arange(1, gan_units.sum() + 1), np.linspace(0, 1, 50)))
        lg[gan_units] = 0.7 + 0.01 * np.arange(gan_units.sum())[:, None] * np.ones(50)
        f["units/loss_d"] = ld
        f["units/loss_g"] = lg
        exact = f["truth/efficiency"][()]
    gout = os.path.join(work, "ganplots")
    r = run([tool, gan, "-o", gout], env=env)
    sys.stderr.write(r.stderr)
    if check(r.returncode == 0, "ensfold-plot on a GAN-like file (rc %d)" % r.returncode):
        with open(os.path.join(gout, "plotdata.json")) as fh:
            gi = json.load(fh)
        gp = np.load(os.path.join(gout, "plotdata.npz"))
        want = ["efficiency_gan-topo_PS.png", "loss_units_loss_d.png", "loss_units_loss_g.png"]
        for png in want:
            p = os.path.join(gout, png)
            check(os.path.isfile(p) and os.path.getsize(p) > 10 * 1024, "%s written" % png)
        check(not os.path.exists(os.path.join(gout, "efficiency_ibu_M2.png")),
              "no per-group efficiency plot for the IBU group")
        a0 = index["plots"].get("proj_polar_ibu_PS.png", {}).get("arrays", {}).get("sigma")
        a1 = gi["plots"].get("proj_polar_gan-topo_PS.png", {}).get("arrays", {}).get("sigma")
        if check(a0 is not None and a1 is not None, "proj_polar sigma arrays indexed"):
            close(gp[a1], 0.5 * pd[a0], "the GAN band is sigma_central (half the replica sigma)")
        rep0 = np.nonzero(gan_units & (rep_ == 0))[0]
        for name, curves in (("loss_d", ld), ("loss_g", lg)):
            a = gi["plots"].get("loss_units_%s.png" % name, {}).get("arrays", {})
            ok = "y" in a and "units" in a
            check(ok and list(gp[a["units"]]) == [rep0[0]] and
                  np.array_equal(gp[a["y"]], curves[rep0[:1]]),
                  "/units/%s: one line, the gan-topo_PS replica-0 unit's curve" % name)
        a = gi["plots"].get("efficiency_gan-topo_PS.png", {}).get("arrays", {})
        if check(all(k in a for k in ("units", "z_total", "z_T1", "z_T2", "z_T3", "diff_T2")),
                 "efficiency_gan-topo_PS arrays"):
            check(list(gp[a["units"]]) == list(rep0), "the maps average the replica-0 units")
            m = eff[rep0].mean(axis=0)
            close(gp[a["z_total"]], (1 - m[0]).reshape(nt, nf), "gan-topo_PS total efficiency")
            for t in (1, 2, 3):
                close(gp[a["z_T%d" % t]], m[t].reshape(nt, nf), "gan-topo_PS P(T%d | bin)" % t)
                close(gp[a["diff_T%d" % t]], (m[t] - exact[t]).reshape(nt, nf),
                      "gan-topo_PS P(T%d) minus exact" % t)


    # 4d. formats, the shape normalisation, the cos-phi scheme and a total band
    for fmt in ("pdf", "svg"):
        fo = os.path.join(work, "plots-" + fmt)
        args = [tool, h5, "-o", fo, "--format", fmt, "-q"] + (["--density", "shape"] if fmt == "svg" else [])
        r = run(args, env=env)
        if not check(r.returncode == 0, "--format %s (rc %d: %s)" % (fmt, r.returncode, r.stderr.strip())):
            continue
        files = sorted(x for x in os.listdir(fo) if x.endswith("." + fmt))
        check(sorted(x[:-len(fmt)] for x in files) == sorted(x[:-3] for x in expected),
              "--format %s writes the same %d plots as .%s" % (fmt, len(expected), fmt))
        for x in files:
            with open(os.path.join(fo, x), "rb") as fh:
                data = fh.read()
            if fmt == "pdf":
                ok = data.startswith(b"%PDF-") and b"%%EOF" in data[-64:] and len(data) > 5000
            else:
                import xml.etree.ElementTree as ET
                try:
                    ok = ET.fromstring(data).tag.endswith("svg") and len(data) > 5000
                except ET.ParseError:
                    ok = False
            if not ok:
                check(False, "%s is a valid %s" % (x, fmt.upper()))
                break
        else:
            check(True, "every .%s is a valid %s (%d files)" % (fmt, fmt.upper(), len(files)))
        if fmt == "svg":
            with open(os.path.join(fo, "plotdata.json")) as fh:
                si = json.load(fh)
            sp = np.load(os.path.join(fo, "plotdata.npz"))
            with h5py.File(h5, "r") as f:
                for g in groups:
                    for axis in ("polar", "phi"):
                        a = si["plots"]["proj_%s_%s.svg" % (axis, g)]["arrays"]
                        close(np.sum(sp[a["density"]] * width[axis]), 1.0,
                              "--density shape: proj_%s_%s integrates to 1" % (axis, g), rtol=1e-10)
                    a = si["plots"]["map_%s.svg" % g]["arrays"]
                    close(np.sum(sp[a["z"]] * omega), 1.0, "--density shape: map_%s integrates to 1" % g,
                          rtol=1e-10)
                    texts = "\n".join(svg_texts(os.path.join(fo, "proj_polar.svg")))
                    row = summ[g]
                    for want in ("N = %d" % n_events, "R = %d bootstrap" % row["replicas"],
                                 chi2_text(row)):
                        check(want in texts, "proj_polar.svg shows '%s' (%s)" % (want, g))
                md = "\n".join(svg_texts(os.path.join(fo, "model_dependence_%s.svg" % diffs[0])))
                check("clipped" in md and "5" in md, "model_dependence_%s.svg says the scale is clipped"
                      % diffs[0])

    cp = os.path.join(work, "cosphi.h5")
    shutil.copy(h5, cp)
    cedges = np.array([-1.0, -0.9, -0.7, -0.4, 0.0, 0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9,
                       0.92, 0.95, 0.97, 0.99, 1.0])              # 18 bins of unequal width
    with h5py.File(cp, "r+") as f:
        bv = f["binning_vertex"]
        del bv["theta_edges_deg"]
        bv["cos_theta_edges"] = cedges
        bv.attrs["scheme"] = "cos-phi"
        g0 = groups[0]
        f["groups/%s/cov_total" % g0] = 4.0 * f["groups/%s/cov" % g0][()]
        mean0 = f["groups/%s/mean" % g0][()]
    co = os.path.join(work, "plots-cosphi")
    r = run([tool, cp, "-o", co, "-q"], env=env)
    if check(r.returncode == 0, "cos-phi scheme file plotted (rc %d: %s)" % (r.returncode, r.stderr.strip())):
        with open(os.path.join(co, "plotdata.json")) as fh:
            ci = json.load(fh)
        cpd = np.load(os.path.join(co, "plotdata.npz"))
        a = ci["plots"].get("proj_polar_%s.png" % g0, {}).get("arrays", {})
        y = mean0.reshape(nt, nf).sum(axis=1)
    if check(r.returncode == 0 and "density" in a and "sigma_total" in a,
             "cos-phi file: density and sigma_total drawn"):
        close(cpd[a["density"]], y / np.diff(cedges), "cos-phi: density = events / delta cos theta*")
        close(np.sum(cpd[a["density"]] * np.diff(cedges)), mean0.sum(), "cos-phi: integral = total",
              rtol=1e-10)
        a = ci["plots"]["map_%s.png" % g0]["arrays"]
        om = np.outer(np.diff(cedges), np.radians(np.diff(ph)))
        close(cpd[a["z"]], mean0.reshape(nt, nf) / om, "cos-phi: map = events / solid angle")
        a = ci["plots"]["proj_polar_%s.png" % g0]["arrays"]
        check("sigma_total" in a and np.allclose(cpd[a["sigma_total"]], 2 * cpd[a["sigma"]]),
              "a file with cov_total gets a total band beside the statistical one")
        not_blank(os.path.join(co, "proj_polar_%s.png" % g0))

    # 4e. a file written before the shared inputs moved to /inputs: they are
    # under /ibu; the tool falls back to it and draws the same
    old = os.path.join(work, "old-layout.h5")
    shutil.copy(h5, old)
    with h5py.File(old, "r+") as f:
        f.move("inputs", "ibu")
    oout = os.path.join(work, "plots-old-layout")
    r = run([tool, old, "-o", oout], env=env)
    if check(r.returncode == 0, "a file with /ibu instead of /inputs plotted (rc %d: %s)"
             % (r.returncode, r.stderr.strip()[-300:])):
        with open(os.path.join(oout, "plotdata.json")) as fh:
            oi = json.load(fh)
        op = np.load(os.path.join(oout, "plotdata.npz"))
        check(sorted(oi["plots"]) == sorted(expected),
              "old layout: the same plots, the efficiency maps included")
        same = sorted(op.files) == sorted(pd.files) and all(
            np.array_equal(op[k], pd[k], equal_nan=True) for k in pd.files)
        check(same, "old layout: every array drawn equals the new layout's (%d arrays)" % len(pd.files))
        for png, want in (("efficiency.png", "/ibu/efficiency"),
                          ("efficiency_topologies.png", "/ibu/response_value"),
                          ("proj_polar_%s.png" % groups[0], "/ibu/prior/*")):
            check(want in oi["plots"].get(png, {}).get("datasets", []),
                  "old layout: %s names %s" % (png, want))
        check(any(k.endswith(".model_PS") for k in op.files),
              "old layout: the fill models' priors drawn")
    # ensfold summary reads neither group today; it must print the same for both
    s_new, s_old = (run([exe, "summary", p], env=env) for p in (h5, old))
    check(s_new.returncode == 0 and s_old.returncode == 0 and s_new.stdout == s_old.stdout
          and "ibu" in s_new.stdout,
          "ensfold summary prints the same for the old layout (rc %d, %d)"
          % (s_new.returncode, s_old.returncode))

    # 5. bad input: exit 2, a message naming the file (and dataset), no traceback
    def bad(path, what, must=()):
        r = run([tool, path, "-o", os.path.join(work, "bad-out")], env=env)
        msg = r.stderr.strip()
        check(r.returncode == 2 and "Traceback" not in r.stderr and os.path.basename(path) in msg
              and all(m in msg for m in must) and r.stdout == "",
              "%s: exit 2, message names it%s (rc %d: %s)"
              % (what, " and %s" % ", ".join(must) if must else "", r.returncode, msg))

    bad(os.path.join(work, "missing.h5"), "missing file")
    txt = os.path.join(work, "notes.txt")
    with open(txt, "w") as fh:
        fh.write("not HDF5\n")
    bad(txt, "text file")
    ev = os.path.join(work, "events.h5")
    r = run([exe, "generate", "--model", "M1", "--kind", "data", "-n", "1000", "-o", ev, "--quiet",
             "--set", "detector.pi0.table_dtheta=2", "--set", "detector.pi0.table_dphi=2"], env=env)
    if check(r.returncode == 0, "event file generated"):
        bad(ev, "event file", ["/groups"])
    cut = os.path.join(work, "cut.h5")
    shutil.copy(h5, cut)
    with h5py.File(cut, "r+") as f:
        del f["groups/%s/cov" % groups[-1]]
    bad(cut, "result file without a group covariance", ["/groups/%s/cov" % groups[-1]])
    mis = os.path.join(work, "mismatch.h5")
    shutil.copy(h5, mis)
    with h5py.File(mis, "r+") as f:
        f["binning_vertex"].attrs["scheme"] = "cos-phi"        # but theta edges
    bad(mis, "scheme attribute cos-phi with theta edges", ["/binning_vertex/cos_theta_edges"])
    check(not os.path.exists(os.path.join(work, "bad-out")), "bad input writes nothing")
    r = run([tool, "--help"], env=env)
    check(r.returncode == 0 and "usage" in r.stdout and "Exit codes" in r.stdout, "--help")

    print("# test_plot: %.1f s, %d failed" % (time.time() - t0, len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(os.path.abspath(sys.argv[1]), sys.argv[2]))
