# SPDX-License-Identifier: Apache-2.0
# common.sh - shared settings and helpers for the QEMU CXL scripts (sourced, not run).
# Host tools from Debian packages; guest kernel and busybox unpacked into a cache dir.

EP_QEMU_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EP_SOURCE_ROOT=$(cd "$EP_QEMU_DIR/../.." && pwd)
# Kernel, busybox and initramfs are kept here between runs (never installed on the host).
EP_QEMU_CACHE=${EP_QEMU_CACHE:-/var/tmp/engrampool-qemu}
# Debian packages the host needs (the guest chroots into the host root and uses them).
EP_QEMU_HOST_PACKAGES="qemu-system-x86 cpio kmod ndctl daxctl"
# Guest modules: 9p for the shares, the CXL/nvdimm/dax stack, kmem for system-ram mode.
EP_QEMU_MODULES="virtio_pci 9pnet_virtio 9p cxl_acpi cxl_pci cxl_mem cxl_port cxl_pmem libnvdimm nd_pmem dax_pmem device_dax kmem"

ep_log() { printf '[qemu %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
ep_die() { ep_log "ERROR: $*"; exit 1; }
ep_skip() { ep_log "SKIP: $*"; exit 77; }

# Wait up to $2 seconds for file $1; 0 when it appeared.
ep_wait_file() {
	local f=$1 t=$2 i=0
	while [ ! -e "$f" ]; do
		[ "$i" -ge $((t * 5)) ] && return 1
		sleep 0.2
		i=$((i + 1))
	done
}
