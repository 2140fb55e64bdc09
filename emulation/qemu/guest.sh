# SPDX-License-Identifier: Apache-2.0
# guest.sh - runs in the guest (busybox sh, from initramfs-init): load the CXL stack,
# create region0 and a devdax namespace, then run a scenario script chrooted into the
# host root and print the verdict marker the host turns into an exit code.
# Settings come from $ep_dir/guest.env (on the read-write build share):
#   EP_NAME       guest name for the log
#   EP_RUN        scenario script (host path; run with the host's bash in the chroot)
#   EP_RUN_ARGS   its arguments
#   EP_NS_ARGS    create-namespace arguments (default: -m devdax -M mem -a 2M), "none" to skip
#   EP_NS_WAIT    file to wait for before create-namespace (two guests on one device)
#   EP_NS_READY   file to create once /dev/dax0.0 exists
#   EP_RUN_TIMEOUT seconds for the scenario
set -u
t0=$(cut -d' ' -f1 /proc/uptime)
say() { echo "[guest ${EP_NAME:-?} $(cut -d' ' -f1 /proc/uptime)s] $*"; }
verdict() {
	echo "EP-QEMU-VERDICT: $1"
	sync
	poweroff -f
	sleep 10
}
ep_dir= ep_src= ep_build=
for a in $(cat /proc/cmdline); do
	case "$a" in
	ep_dir=*) ep_dir=${a#ep_dir=} ;;
	ep_src=*) ep_src=${a#ep_src=} ;;
	ep_build=*) ep_build=${a#ep_build=} ;;
	esac
done
[ -r "/host$ep_dir/guest.env" ] || verdict "FAIL no $ep_dir/guest.env"
. "/host$ep_dir/guest.env"
H=/host

# Wait up to $2 seconds for path $1.
wait_path() {
	i=0
	while [ ! -e "$1" ]; do
		[ $i -ge $(($2 * 10)) ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
}

modprobe -a cxl_acpi cxl_pci cxl_mem cxl_pmem libnvdimm nd_pmem dax_pmem device_dax kmem ||
	verdict "FAIL modprobe of the CXL/nvdimm/dax modules"
for d in mem0 decoder0.0 nvdimm-bridge0; do
	wait_path /sys/bus/cxl/devices/$d 60 || verdict "FAIL /sys/bus/cxl/devices/$d did not appear"
done
say "CXL devices up"

# The chroot: the host root (read-only) with this guest's /dev, /proc, /sys, a tmpfs
# /tmp and /run, and this kernel's modules where kmod looks for them.
mount -t devtmpfs dev $H/dev
mount -t proc proc $H/proc
mount -t sysfs sys $H/sys
mount -t tmpfs run $H/run
# A tmpfs /tmp would hide a source or build tree under /tmp: use /run then.
tmpdir=/tmp
case "$ep_src/ $ep_build/" in
/tmp/* | *" /tmp/"*) tmpdir=/run ;;
*) mount -t tmpfs tmp $H/tmp ;;
esac
# (only where the host has /lib/modules: the shared root is read-only)
[ -d $H/lib/modules ] && mount --bind /lib/modules $H/lib/modules
in_host() { chroot $H /usr/bin/env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=$tmpdir TMPDIR=$tmpdir "$@"; }

in_host cxl create-region -d decoder0.0 -t pmem -m mem0 -w 1 -g 256 >/tmp/region.json ||
	verdict "FAIL cxl create-region"
say "region0 created"
if [ "${EP_NS_ARGS:-}" != none ]; then
	if [ -n "${EP_NS_WAIT:-}" ]; then
		say "waiting for $EP_NS_WAIT before create-namespace"
		wait_path "$H$EP_NS_WAIT" 180 || verdict "FAIL timed out waiting for $EP_NS_WAIT"
	fi
	in_host ndctl create-namespace -r region0 ${EP_NS_ARGS:--m devdax -M mem -a 2M} >/tmp/ns.json ||
		verdict "FAIL ndctl create-namespace -r region0 ${EP_NS_ARGS:--m devdax -M mem -a 2M}"
	wait_path /dev/dax0.0 30 || verdict "FAIL /dev/dax0.0 did not appear"
	say "devdax ready: $(tr -d ' \n' </tmp/ns.json | grep -o '"chardev":"[^"]*"\|"size":[0-9]*\|"align":[0-9]*' | tr '\n' ' ')"
	[ -n "${EP_NS_READY:-}" ] && touch "$H$EP_NS_READY"
fi

[ -n "${EP_RUN:-}" ] || verdict "FAIL no EP_RUN in guest.env"
say "running $EP_RUN ${EP_RUN_ARGS:-}"
in_host timeout -k 5 "${EP_RUN_TIMEOUT:-240}" /bin/bash "$EP_RUN" ${EP_RUN_ARGS:-}
rc=$?
say "$EP_RUN exited with $rc"
case $rc in
0) verdict PASS ;;
77) verdict SKIP ;;
124 | 137) verdict "FAIL scenario timed out after ${EP_RUN_TIMEOUT:-240} s" ;;
*) verdict "FAIL rc=$rc" ;;
esac
