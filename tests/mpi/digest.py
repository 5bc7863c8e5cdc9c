#!/usr/bin/python3
"""Digest of an ensfold result file: SHA-256 over every dataset's name, shape, dtype and bytes
(sorted by name), and the seed and n_units attributes. Timing and rank columns (/units/wall_s,
/units/rank) are left out, as compare_results.py does, and so are attributes that name paths
or versions (config, ensfold_version, n_ranks).

  digest.py FILE                  print the digest
  digest.py --check NAME FILE     compare with NAME's line in reference-digests.txt (exit 1 if
                                  it differs or is missing)
  digest.py --update NAME FILE    write NAME's line there (after a change that is meant to
                                  change results: say so in the commit)

Results that go through the networks depend on the rounding of OpenBLAS's kernel for the CPU
(the same bits for any number of ranks, not across kernels), so their references are kept per
kernel, as NAME@KERNEL (the kernel openblas_get_corename() names, which OPENBLAS_CORETYPE can
set); a NAME with such lines but none for this machine's kernel exits 3 with a note (the
caller then compares its runs with each other), and --update writes NAME@KERNEL for it.
"""
import ctypes
import ctypes.util
import hashlib
import os
import sys

import h5py

# /refold_bins and /summary/refold_* (issue 19's refolding check) are statistics of datasets
# hashed here (/inputs/data_hist, the response triplets, the groups' means) and were added after
# the references were stored: left out, so the references still check the results' bits.
SKIP = {"units/wall_s", "units/rank", "refold_bins", "summary/refold_chi2", "summary/refold_ndf"}
# Datasets added after references were stored, hashed only when they hold something other than
# zeros (all zeros says what files without them meant): /inputs/unfolded_twins, IBU's twins
# outside the vertex binning (docs/methods.md), all 0 when the binning covers the MC.
ZERO_IS_ABSENT = {"inputs/unfolded_twins"}


def old_name(name):
    """The name a dataset had before /ibu became /inputs (see digest)."""
    return "ibu/" + name[len("inputs/"):] if name.startswith("inputs/") else name


REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference-digests.txt")


def digest(path):
    h = hashlib.sha256()
    with h5py.File(path, "r") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        # the shared inputs moved from /ibu to /inputs (a change of layout, not of
        # results: the bits are the same), so a dataset under inputs/ is hashed under
        # the name it had before, ibu/..., and sorted by it: the stored digests made
        # before the move still check the bytes
        hashed = {old_name(n): n for n in set(names) - SKIP}
        if len(hashed) != len(set(names) - SKIP):
            sys.exit("%s: has both /ibu and /inputs datasets of one name" % path)
        for name in sorted(hashed):
            x = f[hashed[name]][()]
            if hashed[name] in ZERO_IS_ABSENT and not x.any():
                continue
            h.update(("%s %s %s\n" % (name, x.shape, x.dtype.str)).encode())
            h.update(x.tobytes())
        for key in ("seed", "n_units"):
            h.update(("%s=%s\n" % (key, f.attrs[key])).encode())
    return h.hexdigest()


def load():
    out = {}
    if os.path.exists(REF):
        for line in open(REF):
            if line.strip() and not line.startswith("#"):
                k, v = line.split()
                out[k] = v
    return out


def kernel():
    """The OpenBLAS kernel this machine runs (what ensfold's log names), or 'unknown'."""
    lib = ctypes.util.find_library("openblas")
    try:
        f = ctypes.CDLL(lib).openblas_get_corename
    except (OSError, AttributeError, TypeError):
        return "unknown"
    f.restype = ctypes.c_char_p
    return f().decode().strip() or "unknown"


def key(name, ref):
    """NAME's key in ref: NAME@KERNEL when NAME's references are kept per kernel."""
    per_kernel = any(k.startswith(name + "@") for k in ref)
    return "%s@%s" % (name, kernel()) if per_kernel else name


def main(argv):
    if len(argv) == 2:
        print(digest(argv[1]))
        return 0
    if len(argv) != 4 or argv[1] not in ("--check", "--update"):
        sys.exit(__doc__)
    name, path = argv[2], argv[3]
    d, ref = digest(path), load()
    name = key(name, ref)
    if argv[1] == "--update":
        ref[name] = d
        with open(REF, "w") as f:
            f.write("# tests/mpi/digest.py --update NAME FILE writes these; a change of results "
                    "updates them in its own commit\n")
            for k in sorted(ref):
                f.write("%s %s\n" % (k, ref[k]))
        print("%s: %s written to %s" % (name, d, REF))
        return 0
    if "@" in name and name not in ref:
        print("%s: digest %s, no reference for this kernel (references kept: %s)"
              % (name, d, " ".join(k for k in sorted(ref) if k.startswith(name.split("@")[0] + "@"))))
        return 3
    if ref.get(name) != d:
        print("%s: digest %s, reference %s: the results changed (if that is meant, run "
              "tests/mpi/digest.py --update %s FILE and say so in the commit)"
              % (name, d, ref.get(name, "(none)"), name))
        return 1
    print("%s: digest %s equals the reference" % (name, d))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
