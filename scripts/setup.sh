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
  python3 python3-numpy python3-sympy python3-dev pybind11-dev python3-torch python3-pytest
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

# Huge pages for emul: pools (lib/region/hugepages.hpp): a devdax pool is mapped with
# 2 MiB pages, so an emulated one should be too, or every random row gathered costs a
# TLB miss on top of its cache miss. As root: mount hugetlbfs at /dev/hugepages if no
# hugetlbfs is mounted, and raise vm.nr_hugepages to enough 2 MiB pages for the demo
# (scripts/demo.sh: 6 GiB + 512 MiB + 64 MiB pools) and the test suites (small pools,
# a few at a time: 256 MiB), capped at 40 % of RAM so builds and tmpfs keep the rest.
# Never lowered, never fatal: a pool that finds no free huge page falls back to
# /dev/shm with 4 KiB pages and a one-line warning. EP_HUGEPAGES_RESERVE=N asks for N
# pages instead (0: leave huge pages alone).
hugepages_setup() {
  local want=${EP_HUGEPAGES_RESERVE:-$(( (6144 + 512 + 64 + 256) / 2 ))}
  if [ "$want" = 0 ]; then echo "setup: huge pages: left alone (EP_HUGEPAGES_RESERVE=0)" >&2; return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "setup: huge pages: not root, not reserved (emul: pools use them where an admin did; else 4 KiB pages)" >&2
    return 0
  fi
  local size_kb mem_kb cap have got
  size_kb=$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo 2>/dev/null || true)
  if [ "${size_kb:-0}" != 2048 ]; then
    echo "setup: huge pages: default huge page size is ${size_kb:-unknown} kB, not 2048; not reserved" >&2
    return 0
  fi
  if ! grep -qs ' hugetlbfs ' /proc/mounts; then
    mkdir -p /dev/hugepages 2>/dev/null || true
    if mount -t hugetlbfs -o pagesize=2M,mode=1777 none /dev/hugepages 2>/dev/null; then
      echo "setup: huge pages: mounted hugetlbfs at /dev/hugepages" >&2
    else
      echo "setup: huge pages: cannot mount hugetlbfs at /dev/hugepages; emul: pools use 4 KiB pages" >&2
      return 0
    fi
  fi
  mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  cap=$(( mem_kb * 2 / 5 / 2048 ))
  [ "$want" -le "$cap" ] || want=$cap
  have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
  if [ "$have" -lt "$want" ]; then
    echo "$want" > /proc/sys/vm/nr_hugepages 2>/dev/null ||
      echo "$want" > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2>/dev/null || true
  fi
  got=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
  echo "setup: huge pages: $got x 2 MiB reserved ($(( got * 2 )) MiB; asked $want: demo 6.6 GiB + tests 256 MiB," \
       "at most 40 % of RAM), $(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo) free" >&2
  if [ "$got" -lt "$want" ]; then
    echo "setup: huge pages: the kernel gave $got of $want (fragmented memory); larger pools fall back to 4 KiB pages" >&2
  fi
  return 0
}
hugepages_setup || true

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
