#!/usr/bin/env bash
# ensfold builds from a cluster-style install (issue 16.3 point 2): HDF5 and
# MPI that pkg-config does not know, as after `module load` on a site.
#   A  no hdf5*/mpi* pkg-config files: HDF5 through h5pcc on PATH, MPI
#      through mpicc (meson's config tools)
#   B  no hdf5*/mpi* pkg-config files, -Dhdf5_dir=PREFIX (a module's
#      $HDF5_DIR: PREFIX/include, PREFIX/lib)
#   C  -Dhdf5_dir pointing at a serial HDF5 (this parallel one with
#      H5_HAVE_PARALLEL taken out of H5pubconf.h): meson setup stops with a
#      message that says so
# A and B each build ensfold and run a small campaign on 2 ranks.
# Skips (77) with the reason when a tool is missing; both layouts must be
# available for the test to pass, one is enough for it to run.
set -uo pipefail
src=${ENSFOLD_SOURCE_ROOT:?}
skip() { echo "SKIP: $*"; exit 77; }
for b in meson ninja pkg-config mpirun; do
  command -v "$b" >/dev/null || skip "$b not installed"
done
tmp=$(mktemp -d /tmp/ef-build-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 143' TERM INT

# pkg-config without HDF5 and MPI: every other .pc file of the system
mkdir -p "$tmp/pc"
for d in $(pkg-config --variable pc_path pkg-config | tr ':' ' '); do
  [ -d "$d" ] || continue
  for f in "$d"/*.pc; do
    [ -e "$f" ] || continue
    case $(basename "$f") in hdf5*|mpi*|ompi*|mpich*) continue ;; esac
    [ -e "$tmp/pc/$(basename "$f")" ] || ln -s "$f" "$tmp/pc/"
  done
done
export PKG_CONFIG_LIBDIR=$tmp/pc PKG_CONFIG_PATH=
pkg-config --exists hdf5 hdf5-openmpi ompi-c 2>/dev/null && { echo "pkg-config still finds HDF5/MPI"; exit 1; }

# the prefix of the parallel HDF5 this machine has (Debian:
# /usr/lib/x86_64-linux-gnu/hdf5/openmpi, with include/ and lib/ in it)
prefix=${HDF5_DIR:-}
if [ -z "$prefix" ]; then
  for d in $(env -u PKG_CONFIG_LIBDIR pkg-config --libs-only-L hdf5-openmpi hdf5 2>/dev/null); do
    p=${d#-L}
    [ -e "$p/include/hdf5.h" ] && [ -d "$p/lib" ] && { prefix=$p; break; }
  done
fi

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# build NAME MESON_ARGS...: configure, build ensfold, run a small campaign
build() {
  local name=$1; shift
  local b=$tmp/$name t0=$(date +%s)
  if ! meson setup "$b" "$src" --buildtype=release "$@" > "$tmp/$name.setup" 2>&1; then
    echo "$name: meson setup failed:"; tail -20 "$tmp/$name.setup"; return 1
  fi
  grep -E "^Message: HDF5|dependency MPI|HDF5 found" "$tmp/$name.setup" | sed "s/^/# $name: /"
  if ! meson compile -C "$b" ensfold:executable > "$tmp/$name.compile" 2>&1; then
    echo "$name: build failed:"; tail -20 "$tmp/$name.compile"; return 1
  fi
  if ! mpirun -n 2 "$b/ensfold" run "$src/tests/mpi/small.yaml" --set campaign.replicas=2 \
       -o "$tmp/$name.h5" --quiet || ! "$b/ensfold" summary "$tmp/$name.h5" > /dev/null; then
    echo "$name: the campaign failed"; return 1
  fi
  echo "# $name: built and ran a campaign in $(( $(date +%s) - t0 )) s;" \
       "libhdf5: $(ldd "$b/ensfold" | awk '/libhdf5/ {print $3}' | tr '\n' ' ')"
}

ran=0 fail=0 missing=()
if command -v h5pcc >/dev/null && command -v mpicc >/dev/null; then
  build A-h5pcc || fail=1
  grep -q "HDF5 .* from config-tool" "$tmp/A-h5pcc.setup" || { echo "A: HDF5 not found through h5pcc"; fail=1; }
  ran=$((ran + 1))
else
  missing+=("h5pcc or mpicc not on PATH (Debian: libhdf5-openmpi-dev, libopenmpi-dev)")
fi
if [ -n "$prefix" ]; then
  build B-prefix "-Dhdf5_dir=$prefix" || fail=1
  ran=$((ran + 1))
  # C: the same prefix made serial
  mkdir -p "$tmp/serial/include"
  for f in "$prefix"/include/*; do ln -s "$f" "$tmp/serial/include/"; done
  rm "$tmp/serial/include/H5pubconf.h"
  grep -v "H5_HAVE_PARALLEL" "$prefix/include/H5pubconf.h" > "$tmp/serial/include/H5pubconf.h"
  ln -s "$(cd "$prefix/lib" && pwd -P)" "$tmp/serial/lib"
  if meson setup "$tmp/C-serial" "$src" "-Dhdf5_dir=$tmp/serial" > "$tmp/C.setup" 2>&1; then
    echo "C: meson setup accepted a serial HDF5"; fail=1
  elif ! grep -q "is serial: its H5pubconf.h does not define H5_HAVE_PARALLEL" "$tmp/C.setup"; then
    echo "C: meson setup failed without the serial-HDF5 message:"; tail -5 "$tmp/C.setup"; fail=1
  else
    echo "# C-serial: $(grep -o "ERROR: .*" "$tmp/C.setup" | cut -c1-160)..."
  fi
else
  missing+=("no parallel HDF5 prefix with include/ and lib/ (set HDF5_DIR)")
fi
[ "$ran" -eq 0 ] && skip "${missing[*]}"
[ "$ran" -lt 2 ] && { echo "only $ran of 2 layouts could be tried: ${missing[*]}"; exit 1; }
[ "$fail" -eq 0 ] || exit 1
echo "cluster build test passed"
