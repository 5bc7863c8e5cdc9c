#!/usr/bin/python3
"""Write the bad event files of the bad-input corpus into a scratch directory.

usage: /usr/bin/python3 make_event_files.py OUTDIR

Each file is named after its case in cases.tsv (OUTDIR/NAME.h5) and breaks
exactly one rule of docs/formats.md ("What the reader checks"); everything
else in it is a valid event file. Two valid files are written as well:
good_data.h5 and good_mc.h5 (the base of every case, and an existing result
file for the runner's "untouched" checks).

Needs Debian's python3-h5py and python3-numpy (run with /usr/bin/python3).
Nothing here is random except through a fixed seed: the files are the same
on every run.
"""
import os
import sys

import h5py
import numpy as np

N = 50          # events per file
BEAM = 1.1      # GeV: physics.beam_energy's default, so a campaign accepts it


def base_arrays(mc):
    """Valid arrays: every topology occurs; T0 rows have NaN reco angles."""
    rng = np.random.default_rng(12345)
    topo = np.array([i % 4 for i in range(N)], dtype=np.int8)   # 0,1,2,3,0,...
    reco = np.column_stack([rng.uniform(-0.9, 0.9, N), rng.uniform(-3.0, 3.0, N)])
    reco[topo == 0] = np.nan
    d = {"topology": topo, "reco": reco}
    if mc:
        vtx = np.column_stack([rng.uniform(-0.9, 0.9, N), rng.uniform(-3.0, 3.0, N)])
        prob = np.full((N, 4), 0.25, dtype=np.float32)
        d["vertex"] = vtx
        d["prob"] = prob
    return d


def write(path, arrays, attrs=None, mc=False, chunked=None):
    """Write /events with the given datasets (None = leave out) and attributes."""
    if attrs is None:
        attrs = {"kind": "mc" if mc else "data", "model": "bad-input", "beam_energy": np.float64(BEAM)}
    with h5py.File(path, "w") as f:
        g = f.create_group("events")
        for name, a in arrays.items():
            if a is None:
                continue
            if chunked and name in chunked:
                g.create_dataset(name, data=a, chunks=True, compression="gzip")
            else:
                g.create_dataset(name, data=a)
        for k, v in attrs.items():
            g.attrs[k] = v


def case(out, name, mc=False, change=None, attrs=None, chunked=None):
    d = base_arrays(mc)
    if change:
        change(d)
    write(os.path.join(out, name + ".h5"), d, attrs=attrs, mc=mc, chunked=chunked)


def setrow(ds, row, value):
    def f(d):
        d[ds][row] = value
    return f


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    j = lambda n: os.path.join(out, n)

    # the valid bases
    case(out, "good_data")
    case(out, "good_mc", mc=True)

    # --- structure: groups and datasets --------------------------------------
    with h5py.File(j("ev_no_events_group.h5"), "w") as f:
        g = f.create_group("evts")                     # misspelt group
        for k, v in base_arrays(False).items():
            g.create_dataset(k, data=v)
    with h5py.File(j("ev_events_is_dataset.h5"), "w") as f:
        f.create_dataset("events", data=np.zeros(N))   # /events is a dataset
    with h5py.File(j("ev_hdf5_without_events.h5"), "w") as f:
        f.attrs["note"] = "an HDF5 file with nothing in it"
    case(out, "ev_missing_topology", change=lambda d: d.update(topology=None))
    case(out, "ev_missing_reco", change=lambda d: d.update(reco=None))
    with h5py.File(j("ev_topology_is_group.h5"), "w") as f:
        g = f.create_group("events")
        g.create_group("topology")
        g.create_dataset("reco", data=base_arrays(False)["reco"])

    # --- types and shapes --------------------------------------------------
    case(out, "ev_topology_float", change=lambda d: d.update(topology=d["topology"].astype(np.float64)))
    case(out, "ev_reco_int", change=lambda d: d.update(reco=np.zeros((N, 2), dtype=np.int32)))
    case(out, "ev_reco_string", change=lambda d: d.update(reco=np.array([[b"0.1", b"0.2"]] * N)))
    case(out, "ev_reco_3cols", change=lambda d: d.update(reco=np.zeros((N, 3))))
    case(out, "ev_reco_rank1", change=lambda d: d.update(reco=d["reco"].reshape(-1)))
    case(out, "ev_reco_rank3", change=lambda d: d.update(reco=d["reco"].reshape(N, 2, 1)))
    case(out, "ev_topology_2d", change=lambda d: d.update(topology=d["topology"].reshape(N, 1)))
    case(out, "ev_topology_scalar", change=lambda d: d.update(topology=np.int8(2)))
    case(out, "ev_reco_fewer_rows", change=lambda d: d.update(reco=d["reco"][:-1]))
    case(out, "ev_vertex_more_rows", mc=True,
         change=lambda d: d.update(vertex=np.vstack([d["vertex"], d["vertex"][:1]])))
    case(out, "ev_prob_3cols", mc=True, change=lambda d: d.update(prob=d["prob"][:, :3]))
    case(out, "ev_weight_2d", change=lambda d: d.update(weight=np.ones((N, 2))))
    case(out, "ev_empty_topology", change=lambda d: d.update(topology=np.zeros(0, np.int8)))
    case(out, "ev_empty_all", change=lambda d: d.update(topology=np.zeros(0, np.int8),
                                                         reco=np.zeros((0, 2))))

    # --- values: topology -----------------------------------------------------
    case(out, "ev_topology_7", change=setrow("topology", 17, 7))
    case(out, "ev_topology_negative", change=setrow("topology", 3, -1))
    case(out, "ev_topology_260_int16",
         change=lambda d: (d.update(topology=d["topology"].astype(np.int16)),
                           d["topology"].__setitem__(9, 260)))
    case(out, "ev_topology_uint64_max",
         change=lambda d: (d.update(topology=d["topology"].astype(np.uint64)),
                           d["topology"].__setitem__(11, np.iinfo(np.uint64).max)))

    # --- values: reco (row 5 is T1, row 6 T2, row 8 T0) ---------------------
    case(out, "ev_reco_nan_t2", change=setrow("reco", 6, [np.nan, np.nan]))
    case(out, "ev_reco_half_nan_t1", change=setrow("reco", 5, [0.5, np.nan]))
    case(out, "ev_reco_inf", change=setrow("reco", 6, [np.inf, 1.0]))
    case(out, "ev_reco_t0_finite", change=setrow("reco", 8, [0.9, 3.0]))
    case(out, "ev_reco_cos_above_1", change=setrow("reco", 7, [1.5, 0.0]))
    case(out, "ev_reco_phi_degrees", change=setrow("reco", 10, [0.2, 170.0]))
    case(out, "ev_reco_phi_below_minus_pi", change=setrow("reco", 13, [0.2, -3.2]))

    # --- values: vertex, prob, weight (MC) -----------------------------------
    case(out, "ev_vertex_nan", mc=True, change=setrow("vertex", 4, [np.nan, 0.0]))
    case(out, "ev_vertex_inf", mc=True, change=setrow("vertex", 12, [0.1, -np.inf]))
    case(out, "ev_prob_sum", mc=True, change=setrow("prob", 2, [0.25, 0.25, 0.25, 0.0]))
    case(out, "ev_prob_nan", mc=True, change=setrow("prob", 14, [0.25, np.nan, 0.25, 0.25]))
    case(out, "ev_prob_negative", mc=True, change=setrow("prob", 21, [0.5, -0.25, 0.5, 0.25]))
    case(out, "ev_prob_own_topology_zero", mc=True, change=setrow("prob", 3, [0.5, 0.25, 0.25, 0.0]))
    case(out, "ev_weight_negative", change=lambda d: d.update(weight=np.where(np.arange(N) == 4, -1.0, 1.0)))
    case(out, "ev_weight_inf", change=lambda d: d.update(weight=np.where(np.arange(N) == 30, np.inf, 1.0)))
    case(out, "ev_weight_nan", change=lambda d: d.update(weight=np.where(np.arange(N) == 31, np.nan, 1.0)))

    # --- attributes ----------------------------------------------------------
    case(out, "ev_kind_foo", attrs={"kind": "foo", "beam_energy": np.float64(BEAM)})
    case(out, "ev_kind_not_string", attrs={"kind": np.int32(1), "beam_energy": np.float64(BEAM)})
    case(out, "ev_mc_without_vertex", attrs={"kind": "mc", "beam_energy": np.float64(BEAM)})
    # valid as a file, refused by a campaign: made at another beam energy
    case(out, "ev_beam_energy_0p9", attrs={"kind": "data", "beam_energy": np.float64(0.9)})

    # --- damaged files ---------------------------------------------------------
    good = open(j("good_data.h5"), "rb").read()
    open(j("ev_truncated_half.h5"), "wb").write(good[: len(good) // 2])
    open(j("ev_truncated_superblock.h5"), "wb").write(good[:40])
    bad = bytearray(good)
    bad[0:8] = b"\x00GARBAGE"                               # the HDF5 signature
    open(j("ev_corrupt_signature.h5"), "wb").write(bytes(bad))
    # a gzip-compressed /events/reco whose first chunk is overwritten: the file
    # opens, the shapes are fine, reading the data fails
    case(out, "ev_corrupt_chunk", chunked={"reco"})
    with h5py.File(j("ev_corrupt_chunk.h5"), "r") as f:
        info = f["events/reco"].id.get_chunk_info(0)
        off, size = info.byte_offset, info.size
    with open(j("ev_corrupt_chunk.h5"), "r+b") as fh:
        fh.seek(off)
        fh.write(bytes((0x5A + i) & 0xFF for i in range(size)))
    # a contiguous dataset whose storage lies past the end of the file
    case(out, "ev_data_past_eof")
    with h5py.File(j("ev_data_past_eof.h5"), "r") as f:
        off = f["events/reco"].id.get_offset()
    with open(j("ev_data_past_eof.h5"), "r+b") as fh:
        fh.truncate(off + 16)
    rng = np.random.default_rng(7)
    open(j("ev_binary_garbage.h5"), "wb").write(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    open(j("ev_empty_file.h5"), "wb").close()
    open(j("ev_text_file.h5"), "w").write("seed: 1\n# a YAML file, not HDF5\n")

    # --- files that declare more than they hold ---------------------------------
    # 10^8 and 2^40 rows of gzip-compressed chunks that were never written: a
    # 7 KB file; the reader must not size memory from the declaration
    for name, n in (("ev_declared_1e8_unwritten", 10**8), ("ev_declared_2p40_unwritten", 1 << 40)):
        with h5py.File(j(name + ".h5"), "w") as f:
            g = f.create_group("events")
            g.create_dataset("topology", shape=(n,), dtype=np.int8, chunks=(1 << 16,),
                             compression="gzip")
            g.create_dataset("reco", shape=(n, 2), dtype=np.float64, chunks=(1 << 15, 2),
                             compression="gzip")
            g.attrs.update({"kind": "data", "beam_energy": np.float64(BEAM)})
    # 5000 rows of which only the first 1000 (chunks of 500) were written
    with h5py.File(j("ev_partly_written.h5"), "w") as f:
        g = f.create_group("events")
        t = g.create_dataset("topology", shape=(5000,), dtype=np.int8, chunks=(500,))
        t[:1000] = np.arange(1000) % 4
        reco = np.zeros((5000, 2))
        reco[np.arange(5000) % 4 == 0] = np.nan
        g.create_dataset("reco", data=reco)
        g.attrs.update({"kind": "data", "beam_energy": np.float64(BEAM)})
    # a contiguous /events/reco that was declared and never written
    with h5py.File(j("ev_contiguous_unwritten.h5"), "w") as f:
        g = f.create_group("events")
        g.create_dataset("topology", data=base_arrays(False)["topology"])
        g.create_dataset("reco", shape=(N, 2), dtype=np.float64)
        g.attrs.update({"kind": "data", "beam_energy": np.float64(BEAM)})

    # --- files libhdf5 cannot read as they are -----------------------------------
    # held open for writing by another program during the case (flag locked)
    case(out, "ev_locked")
    # h5py's LZF filter (id 32000), which libhdf5 does not have
    with h5py.File(j("ev_lzf.h5"), "w") as f:
        g = f.create_group("events")
        for k, v in base_arrays(False).items():
            g.create_dataset(k, data=v, compression="lzf")
        g.attrs.update({"kind": "data", "beam_energy": np.float64(BEAM)})

    # --- valid rows, nothing to unfold -------------------------------------------
    case(out, "ev_weights_all_zero", change=lambda d: d.update(weight=np.zeros(N)))
    case(out, "ev_weights_sum_inf", change=lambda d: d.update(weight=np.full(N, 1e308)))
    case(out, "ev_weights_measured_zero",
         change=lambda d: d.update(weight=(d["topology"] == 0).astype(np.float64)))
    def all_t0(d):
        d["topology"][:] = 0
        d["reco"][:] = np.nan
    case(out, "ev_all_t0", change=all_t0)
    case(out, "ev_mc_all_t0", mc=True, change=all_t0)
    case(out, "ev_one_t0", change=lambda d: d.update(topology=d["topology"][:1], reco=d["reco"][:1]))
    # valid files a campaign cannot unfold: MC whose one measured event shares
    # its vertex bin with 49 T0 events (efficiency 0.02 < ibu.min_efficiency
    # 0.05 everywhere); data whose events are all T1 at cos theta* = -0.5, where
    # this detector never sees a T1 (MC T1 events have cos theta* > 0.2)
    def low_eff(d):
        d["topology"][:] = 0
        d["reco"][:] = np.nan
        d["topology"][7] = 1
        d["reco"][7] = [0.5, 1.0]
        d["vertex"][:] = [0.5, 1.0]
    case(out, "ev_mc_low_efficiency", mc=True, change=low_eff)
    case(out, "ev_data_unreachable", change=lambda d: d.update(
        topology=np.ones(N, np.int8), reco=np.tile([-0.5, 1.0], (N, 1))))
    # float32 beam_energy: 1.1 must pass (float32 storage), 1.1001 not
    case(out, "ev_beam_energy_f32_1p1001",
         attrs={"kind": "data", "beam_energy": np.float32(1.1001)})

    # --- not files -------------------------------------------------------------
    os.makedirs(j("ev_directory.h5"), exist_ok=True)
    if os.path.lexists(j("ev_fifo.h5")):
        os.unlink(j("ev_fifo.h5"))
    os.mkfifo(j("ev_fifo.h5"))
    for a, b in (("ev_symlink_loop.h5", "ev_symlink_loop2.h5"), ("ev_symlink_loop2.h5", "ev_symlink_loop.h5")):
        if os.path.lexists(j(a)):
            os.unlink(j(a))
        os.symlink(b, j(a))
    if os.path.lexists(j("ev_dangling_symlink.h5")):
        os.unlink(j("ev_dangling_symlink.h5"))
    os.symlink("no-such-target.h5", j("ev_dangling_symlink.h5"))
    # ev_missing.h5 is deliberately never written


if __name__ == "__main__":
    main()
