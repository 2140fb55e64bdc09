#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# prepare.sh - install the host packages, unpack the guest kernel and busybox into the
# cache, and build the initramfs. Prints KERNEL=... INITRD=... KVER=...; exit 77 when
# something needed can be neither found nor installed (no network, not root).
set -euo pipefail
source "$(dirname "$0")/common.sh"

missing_tools() {
	local m=""
	command -v qemu-system-x86_64 >/dev/null || m+=" qemu-system-x86"
	command -v cpio >/dev/null || m+=" cpio"
	{ command -v depmod && command -v modinfo; } >/dev/null 2>&1 || [ -x /usr/sbin/depmod ] || m+=" kmod"
	command -v cxl >/dev/null && command -v ndctl >/dev/null || m+=" ndctl"
	command -v daxctl >/dev/null || m+=" daxctl"
	echo "$m"
}
export PATH=$PATH:/usr/sbin:/sbin

apt_updated=0
apt_update() {
	[ "$apt_updated" = 1 ] && return 0
	timeout 180 apt-get update -qq >&2 || return 1
	apt_updated=1
}

need=$(missing_tools)
if [ -n "$need" ]; then
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || ep_skip "missing$need and cannot install (not root or no apt-get)"
	ep_log "installing$need"
	apt_update || ep_skip "apt-get update failed (no network?); missing$need"
	DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends $need >&2 ||
		ep_skip "apt-get install$need failed"
	need=$(missing_tools)
	[ -z "$need" ] || ep_skip "still missing$need after apt-get install"
fi

mkdir -p "$EP_QEMU_CACHE"
exec 9>"$EP_QEMU_CACHE/.lock"
flock -w 900 9 || ep_die "timed out waiting for the cache lock $EP_QEMU_CACHE/.lock"

# Download a package's .deb into the cache (apt-get download; never installed).
fetch_deb() {
	local pkg=$1 dir=$2
	mkdir -p "$dir"
	if ! ls "$dir"/"${pkg}"_*.deb >/dev/null 2>&1; then
		ep_log "downloading $pkg"
		(cd "$dir" && timeout 300 apt-get download "$pkg" >&2 2>/dev/null) ||
			{ apt_update && (cd "$dir" && timeout 300 apt-get download "$pkg" >&2); } ||
			return 1
	fi
	ls "$dir"/"${pkg}"_*.deb | tail -1
}

# The guest kernel: linux-image-amd64's dependency. A cached one is reused offline.
kpkg=""
if [ -z "${EP_QEMU_KERNEL_PKG:-}" ]; then
	kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1 || true)
	if [ -z "$kpkg" ]; then
		kpkg=$(ls -d "$EP_QEMU_CACHE"/linux-image-*/ 2>/dev/null | tail -1 | xargs -r basename || true)
	fi
else
	kpkg=$EP_QEMU_KERNEL_PKG
fi
[ -n "$kpkg" ] || { apt_update || true; kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1 || true); }
[ -n "$kpkg" ] || ep_skip "no guest kernel: apt-cache knows no linux-image-amd64 and none is cached"
kdir=$EP_QEMU_CACHE/$kpkg
if [ ! -e "$kdir/.unpacked" ]; then
	deb=$(fetch_deb "$kpkg" "$EP_QEMU_CACHE/debs") || ep_skip "cannot download $kpkg (no network?)"
	ep_log "unpacking $(basename "$deb")"
	rm -rf "$kdir"
	mkdir -p "$kdir"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$kdir" --wildcards './boot/vmlinuz-*' './lib/modules/*'
	kver=$(ls "$kdir/lib/modules" | head -1)
	depmod -b "$kdir" "$kver"
	touch "$kdir/.unpacked"
fi
kver=$(ls "$kdir/lib/modules" | head -1)
kernel=$(ls "$kdir"/boot/vmlinuz-* | head -1)

bbdir=$EP_QEMU_CACHE/busybox-static
if [ ! -x "$bbdir/bin/busybox" ]; then
	deb=$(fetch_deb busybox-static "$EP_QEMU_CACHE/debs") || ep_skip "cannot download busybox-static (no network?)"
	rm -rf "$bbdir"
	mkdir -p "$bbdir"
	dpkg -x "$deb" "$bbdir"
	[ -x "$bbdir/bin/busybox" ] || ep_die "busybox-static has no bin/busybox"
fi

# The initramfs: busybox, the module closure (indexed with depmod -b), and /init.
# Rebuilt when init or the module list changes.
stamp=$( { echo "$kver $EP_QEMU_MODULES"; cat "$EP_QEMU_DIR/initramfs-init" "$bbdir/bin/busybox"; } | sha256sum | cut -c1-16)
initrd=$EP_QEMU_CACHE/initramfs-$kver-$stamp.cpio.gz
if [ ! -s "$initrd" ]; then
	ep_log "building $(basename "$initrd")"
	tmp=$(mktemp -d "$EP_QEMU_CACHE/initramfs.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp"/{bin,dev,proc,sys,host,run,tmp,lib/modules/$kver}
	cp "$bbdir/bin/busybox" "$tmp/bin/busybox"
	cp "$EP_QEMU_DIR/initramfs-init" "$tmp/init"
	chmod 755 "$tmp/init"
	declare -A seen=()
	queue=($EP_QEMU_MODULES)
	while [ ${#queue[@]} -gt 0 ]; do
		m=${queue[0]}
		queue=("${queue[@]:1}")
		[ -n "${seen[$m]:-}" ] && continue
		seen[$m]=1
		f=$(modinfo -b "$kdir" -k "$kver" -F filename "$m" 2>/dev/null | head -1) || ep_die "module $m not found in $kpkg"
		case "$f" in
		/*) ;;
		*) continue ;; # built in
		esac
		rel=${f#"$kdir"/lib/modules/$kver/}
		mkdir -p "$tmp/lib/modules/$kver/$(dirname "$rel")"
		cp "$f" "$tmp/lib/modules/$kver/$rel"
		for d in $(modinfo -b "$kdir" -k "$kver" -F depends "$m" | tr ',' ' '); do
			queue+=("$d")
		done
	done
	cp "$kdir/lib/modules/$kver"/modules.{builtin,builtin.modinfo,order} "$tmp/lib/modules/$kver/" 2>/dev/null || true
	depmod -b "$tmp" "$kver"
	(cd "$tmp" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) >"$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
	rm -rf "$tmp"
	trap - EXIT
	# Old initramfs images of other stamps are not needed any more.
	find "$EP_QEMU_CACHE" -maxdepth 1 -name 'initramfs-*.cpio.gz' ! -name "$(basename "$initrd")" -delete
fi
echo "KERNEL=$kernel"
echo "INITRD=$initrd"
echo "KVER=$kver"
