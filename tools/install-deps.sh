#!/usr/bin/env bash
# Install what ensfold needs from Debian 12's packages, only what is missing.
# Run as root (or with sudo). Safe to run again.
#   bash tools/install-deps.sh          build and run: the demo, campaigns, plots
#   bash tools/install-deps.sh --test   also what the test suite needs (cmocka,
#                                       a local Slurm, valgrind, clang for the
#                                       sanitizer and fuzz builds, network tools)
set -euo pipefail
runtime=(meson ninja-build pkg-config gcc libc6-dev
         libopenmpi-dev openmpi-bin libopenblas-dev libhdf5-openmpi-dev libyaml-dev
         python3-h5py python3-numpy python3-matplotlib python3-yaml procps)
testonly=(libcmocka-dev slurm-wlm munge iproute2 iputils-ping util-linux valgrind
          clang libclang-rt-14-dev)
case "${1:-}" in
  "") pkgs=("${runtime[@]}") ;;
  --test) pkgs=("${runtime[@]}" "${testonly[@]}") ;;
  -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
  *) echo "install-deps: unknown option '$1' (--test or nothing)" >&2; exit 2 ;;
esac
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
  echo "install-deps: all ${#pkgs[@]} packages present" >&2
fi
