#!/usr/bin/python3
"""Compare two ensfold result files dataset by dataset, bit for bit.

Usage: compare_results.py A.h5 B.h5
Timing and rank columns (/units/wall_s, /units/rank) and the n_ranks
attribute are allowed to differ; every other dataset must have the same
shape, dtype and bytes (NaN compared as bits). Exit 0 when identical."""
import sys

import h5py
import numpy as np

SKIP = {"units/wall_s", "units/rank"}


def datasets(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return out


def main(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        da, db = datasets(fa), datasets(fb)
        if set(da) != set(db):
            print("dataset sets differ:", sorted(set(da) ^ set(db)))
            return 1
        bad = 0
        for name in sorted(da):
            if name in SKIP:
                continue
            x, y = da[name][()], db[name][()]
            if x.shape != y.shape or x.dtype != y.dtype or x.tobytes() != y.tobytes():
                diff = ""
                if x.shape == y.shape and x.dtype.kind == "f":
                    diff = " max |diff| %.3g" % np.nanmax(np.abs(x - y))
                print("differs: /%s%s" % (name, diff))
                bad += 1
        for key in ("config", "seed", "n_units", "ensfold_version"):
            if fa.attrs[key] != fb.attrs[key]:
                print("attribute differs:", key)
                bad += 1
        print("%d datasets compared, %d differ" % (len(da) - len(SKIP & set(da)), bad))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
