#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# setup.sh - install every Debian package engrampool needs and configure the build.
# Idempotent; runs as root on a fresh Debian 12 (or via sudo). Usage:
#   scripts/setup.sh [BUILD_DIR] [extra meson args...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-build}
shift || true

pkgs=(
  build-essential g++ pkg-config meson ninja-build git ca-certificates
  libnuma-dev numactl
  libdaxctl-dev libndctl-dev ndctl
  libpmem2-dev
  libhwloc-dev hwloc
  libgtest-dev libgmock-dev
  libbenchmark-dev
  nlohmann-json3-dev libcli11-dev
  libxxhash-dev libicu-dev
  python3 python3-numpy python3-sympy
  qemu-system-x86 busybox-static cpio kmod daxctl
  clang libclang-rt-14-dev
  gnuplot-nox
)

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all Debian packages present" >&2
fi

# The CUDA toolkit (nvcc) is optional; add it to PATH where it is installed.
if [ -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then
  export PATH=/usr/local/cuda/bin:$PATH
fi

cd "$here"
if [ -f "$builddir/build.ninja" ]; then
  out=$(meson setup --reconfigure "$builddir" "$@" 2>&1) || { echo "$out" >&2; exit 1; }
else
  out=$(meson setup "$builddir" --buildtype=release "$@" 2>&1) || { echo "$out" >&2; exit 1; }
fi
# Show what the build found (the summary() block).
echo "$out" | sed -n '/^engrampool /,$p' | grep -v '^Found ninja' >&2 || true
echo "setup: configured $builddir" >&2
