#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# boot.sh - boot one TCG guest with a CXL Type-3 device backed by a host file, the host
# root shared read-only and the build dir read-write over 9p; exit with the guest's
# verdict (console marker): 0 PASS, 77 SKIP, 1 FAIL / no marker / timeout.
# Usage: boot.sh --dir RUNDIR --pool FILE --build BUILD_ROOT [--pool-size 256M]
#                [--timeout SECONDS] [--mem 1G]
# RUNDIR (inside BUILD_ROOT) holds guest.env (read by guest.sh); the console log and a
# fresh label area (LSA) are written there. Needs EP_QEMU_KERNEL and EP_QEMU_INITRD.
set -euo pipefail
source "$(dirname "$0")/common.sh"

dir="" pool="" build="" pool_size=256M timeout_s=180 mem=1G
while [ $# -gt 0 ]; do
	case "$1" in
	--dir) dir=$2; shift 2 ;;
	--pool) pool=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--pool-size) pool_size=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	*) ep_die "boot.sh: unknown argument $1" ;;
	esac
done
[ -n "$dir" ] && [ -n "$pool" ] && [ -n "$build" ] || ep_die "usage: boot.sh --dir RUNDIR --pool FILE --build BUILD_ROOT"
: "${EP_QEMU_KERNEL:?run prepare.sh first}" "${EP_QEMU_INITRD:?run prepare.sh first}"
[ -r "$dir/guest.env" ] || ep_die "no $dir/guest.env"
name=$(basename "$dir")
console=$dir/console.log
lsa=$dir/lsa.raw
# A fresh, private label area every boot: Linux 6.1 cannot re-assemble a CXL pmem
# namespace from old labels ("invalid interleave-set-cookie").
rm -f "$lsa" "$console"
truncate -s 1M "$lsa"
[ -e "$pool" ] || truncate -s "$pool_size" "$pool"

t0=$(date +%s%N)
rc=0
qpid=""
# timeout(1) runs QEMU in its own process group: pass a TERM from meson or run.sh on.
trap '[ -n "$qpid" ] && kill -TERM "$qpid" 2>/dev/null; exit 143' TERM INT
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
	-accel tcg -cpu max -smp 1 \
	-M q35,cxl=on -m "$mem",maxmem=4G,slots=4 \
	-object memory-backend-file,id=cxl-mem1,share=on,mem-path="$pool",size="$pool_size" \
	-object memory-backend-file,id=cxl-lsa1,share=off,mem-path="$lsa",size=1M \
	-device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 \
	-device cxl-rp,port=0,bus=cxl.1,id=rp0,chassis=0,slot=2 \
	-device cxl-rp,port=1,bus=cxl.1,id=rp1,chassis=0,slot=3 \
	-device cxl-type3,bus=rp0,memdev=cxl-mem1,lsa=cxl-lsa1,id=cxl-pmem0 \
	-M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G \
	-fsdev local,id=fs0,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=fs0,mount_tag=hostroot,bus=pcie.0 \
	-fsdev local,id=fs1,path="$build",security_model=none,multidevs=remap \
	-device virtio-9p-pci,fsdev=fs1,mount_tag=build,bus=pcie.0 \
	-display none -monitor none -serial file:"$console" -no-reboot -net none \
	-kernel "$EP_QEMU_KERNEL" -initrd "$EP_QEMU_INITRD" \
	-append "console=ttyS0 loglevel=4 panic=-1 ep_src=$EP_SOURCE_ROOT ep_build=$build ep_dir=$dir" \
	</dev/null >"$dir/qemu.log" 2>&1 &
qpid=$!
wait "$qpid" || rc=$?
qpid=""
ms=$((($(date +%s%N) - t0) / 1000000))
secs=$((ms / 1000)).$(printf %03d $((ms % 1000)))
verdict=$(grep -a -m1 '^EP-QEMU-VERDICT:' "$console" 2>/dev/null | tr -d '\r' | cut -d' ' -f2- || true)
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	ep_log "$name: guest killed after ${timeout_s} s (hung?); console: $console"
	verdict=${verdict:-"FAIL timeout"}
elif [ "$rc" != 0 ]; then
	ep_log "$name: qemu exited with $rc: $(tail -5 "$dir/qemu.log")"
fi
ep_log "$name: verdict ${verdict:-none} after ${secs} s"
case "$verdict" in
PASS) exit 0 ;;
SKIP) exit 77 ;;
*)
	ep_log "$name: console (last 60 lines):"
	tail -n 60 "$console" | tr -d '\r' >&2 || true
	exit 1
	;;
esac
