#!/usr/bin/env bash
# Install what ensfold needs from Debian 12's packages, only what is missing.
# Run as root (or with sudo). Safe to run again.
set -euo pipefail
pkgs=(meson ninja-build pkg-config gcc libc6-dev
      libopenmpi-dev openmpi-bin libopenblas-dev libhdf5-openmpi-dev
      libyaml-dev libcmocka-dev python3-h5py python3-numpy python3-matplotlib
      slurm-wlm munge iproute2 iputils-ping procps util-linux valgrind clang libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all packages present" >&2
fi
