#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh - the QEMU CXL scenarios: boot guest(s) on an emulated CXL Type-3 device and
# run engrampool's dax tests on the real kernel devdax path. Exit: 0 pass, 77 skip, 1 fail.
# Usage: run.sh SCENARIO BUILD_ROOT
#   dax-suite   one guest: the meson `dax` suite against /dev/dax0.0, then `engrampool stat`
#   two-hosts   two guests on one backing file: A writes and replaces, B follows read-only
#   bad-input   one guest: device too small, wrong alignment, system-ram mode -> clear errors
#   all         the three in turn
# Environment: EP_QEMU_CACHE (kernel/initramfs cache, default /var/tmp/engrampool-qemu),
# EP_QEMU_BOOT_TIMEOUT (seconds per guest, default 150), EP_QEMU_KEEP=1 keeps pool files.
set -euo pipefail
source "$(dirname "$0")/common.sh"

[ $# -eq 2 ] || ep_die "usage: run.sh dax-suite|two-hosts|bad-input|all BUILD_ROOT"
scenario=$1
build=$(realpath "$2")
boot_timeout=${EP_QEMU_BOOT_TIMEOUT:-150}
[ -x "$build/pool_manager/engrampool" ] || ep_die "no $build/pool_manager/engrampool: build first (ninja -C $build)"
[ -x "$build/tests/dax/test_dax_follow" ] || ep_die "no $build/tests/dax/test_dax_follow: build first (ninja -C $build)"
if grep -q 'EP_HAVE_DAXCTL 0\|EP_HAVE_PMEM2 0' "$build/ep_config.h" 2>/dev/null; then
	ep_skip "this build has no libdaxctl or libpmem2 (see $build/ep_config.h): the dax: backend is not built"
fi
case "$build" in
*[[:space:]]*) ep_skip "the build dir path has spaces ($build): not passable on the kernel command line" ;;
esac

prep=$("$EP_QEMU_DIR/prepare.sh") || exit $?
EP_QEMU_KERNEL=$(sed -n 's/^KERNEL=//p' <<<"$prep")
EP_QEMU_INITRD=$(sed -n 's/^INITRD=//p' <<<"$prep")
export EP_QEMU_KERNEL EP_QEMU_INITRD
scen=$EP_SOURCE_ROOT/emulation/qemu/scenarios

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# guest_env DIR NAME RUN ARGS [KEY=VALUE...]: write DIR/guest.env for guest.sh.
guest_env() {
	local dir=$1 name=$2 run=$3 args=$4
	shift 4
	mkdir -p "$dir"
	{
		echo "EP_NAME=$name"
		echo "EP_RUN='$run'"
		echo "EP_RUN_ARGS='$args'"
		echo "EP_RUN_TIMEOUT=$((boot_timeout - 20))"
		for kv in "$@"; do echo "$kv"; done
	} >"$dir/guest.env"
}

finish() { # DIR RC: drop the (sparse) pool file of a passing run
	[ "$2" = 0 ] && [ "${EP_QEMU_KEEP:-0}" != 1 ] && rm -f "$1"/*.raw "$1"/*/*.raw
	return "$2"
}

run_dax_suite() {
	local d=$build/qemu/dax-suite rc=0
	rm -rf "$d"
	mkdir -p "$d/guest"
	"$EP_QEMU_DIR/suite_script.py" "$build" dax >"$d/guest/dax_tests.sh" || ep_die "cannot list the dax suite"
	guest_env "$d/guest" dax-suite "$scen/dax_suite.sh" "$build $d/guest/dax_tests.sh"
	"$EP_QEMU_DIR/boot.sh" --dir "$d/guest" --pool "$d/pool.raw" --build "$build" --timeout "$boot_timeout" || rc=$?
	finish "$d" $rc
}

run_two_hosts() {
	local d=$build/qemu/two-hosts rc=0 rca=0 rcb=0
	rm -rf "$d"
	mkdir -p "$d/sync"
	# B creates its namespace only once A's exists (it rewrites the namespace's info
	# block); A formats the pool only once B's namespace exists.
	guest_env "$d/A" A "$scen/two_hosts_a.sh" "$build $d/sync" "EP_NS_READY=$d/sync/A.ns-ready"
	guest_env "$d/B" B "$scen/two_hosts_b.sh" "$build $d/sync" "EP_NS_WAIT=$d/sync/A.ns-ready" \
		"EP_NS_READY=$d/sync/B.ns-ready"
	truncate -s 256M "$d/pool.raw"
	"$EP_QEMU_DIR/boot.sh" --dir "$d/A" --pool "$d/pool.raw" --build "$build" --timeout "$boot_timeout" &
	local pa=$!
	pids+=($pa)
	"$EP_QEMU_DIR/boot.sh" --dir "$d/B" --pool "$d/pool.raw" --build "$build" --timeout "$boot_timeout" &
	local pb=$!
	pids+=($pb)
	wait $pa || rca=$?
	wait $pb || rcb=$?
	ep_log "guest A: $rca, guest B: $rcb"
	if [ $rca != 0 ] || [ $rcb != 0 ]; then
		for g in A B; do
			ep_log "--- guest $g console: $d/$g/console.log"
		done
		return 1
	fi
	# What B observed must be exactly what A published.
	for ph in 1 2; do
		local a b
		a=$(cat "$d/sync/A.gen$ph" 2>/dev/null || echo "?")
		b=$(cat "$d/sync/B.seen$ph" 2>/dev/null || echo "?")
		ep_log "phase $ph: A published generation $a, B read it at generation $b"
		[ "$a" = "$b" ] || rc=1
	done
	finish "$d" $rc
}

run_bad_input() {
	local d=$build/qemu/bad-input rc=0
	rm -rf "$d"
	# 2 GiB (sparse): room for a namespace with 1 GiB alignment.
	guest_env "$d/guest" bad-input "$scen/bad_input.sh" "$build"
	"$EP_QEMU_DIR/boot.sh" --dir "$d/guest" --pool "$d/pool.raw" --pool-size 2G --build "$build" \
		--timeout "$boot_timeout" || rc=$?
	finish "$d" $rc
}

t0=$SECONDS
rc=0
case "$scenario" in
dax-suite) run_dax_suite || rc=$? ;;
two-hosts) run_two_hosts || rc=$? ;;
bad-input) run_bad_input || rc=$? ;;
all)
	for s in run_dax_suite run_two_hosts run_bad_input; do
		r=0
		$s || r=$?
		ep_log "$s: exit $r"
		if [ $r != 0 ] && { [ $rc = 0 ] || [ $rc = 77 ]; }; then rc=$r; fi
	done
	;;
*) ep_die "unknown scenario $scenario (dax-suite, two-hosts, bad-input, all)" ;;
esac
ep_log "$scenario: exit $rc after $((SECONDS - t0)) s"
exit $rc
