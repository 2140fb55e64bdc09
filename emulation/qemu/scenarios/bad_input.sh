#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bad_input.sh - in the guest: devdax devices the pool must refuse, each with a clear error.
# Usage: bad_input.sh BUILD_ROOT. Recreates the namespace on region0 for each case:
# too small for --size, too small for a table, 1 GiB alignment (does not divide the
# pool's 2 MiB unit), 4 KiB alignment (accepted: it divides 2 MiB), system-ram mode.
set -euo pipefail
BUILD=$1
EP_GUEST=bad-input
source "$(dirname "$0")/guest_lib.sh"

# Replace the namespace on region0; prints the new /dev/daxX.Y.
renew_ns() {
	local out dev
	ndctl destroy-namespace -f all >/dev/null 2>&1 || true
	out=$(ndctl create-namespace -r region0 -m devdax -M mem "$@" 2>&1) || {
		echo "create-namespace $*: $out" >&2
		return 1
	}
	dev=/dev/$(tr -d ' \n' <<<"$out" | grep -o '"chardev":"[^"]*"' | head -1 | cut -d'"' -f4)
	for _ in $(seq 50); do [ -e "$dev" ] && break; sleep 0.1; done
	[ -e "$dev" ] || fail "$dev did not appear after create-namespace $*"
	echo "$dev"
}
dax_line() { daxctl list -d "$(basename "$1")" | tr -d ' \n'; }

say "case 1: the whole region, 2 MiB alignment: --size larger than the device, no pool on it"
dev=$DEV
say "$dev: $(dax_line "$dev")"
expect_error "but the pool needs" "$EP" create "dax:$dev" --size 3G
expect_error "pool" "$EP" stat "dax:$dev"

say "case 2: a 16 MiB namespace (the region's 16 MiB granule): too small for --size 64M, and for a big table"
dev=$(renew_ns -a 2M -s 16M)
say "$dev: $(dax_line "$dev")"
expect_error "but the pool needs" "$EP" create "dax:$dev" --size 64M
"$EP" create "dax:$dev" --force
expect_error "the pool is full" "$EP" import "dax:$dev" --model "$SRC/examples/models/engram_demo_v1.json" \
	--layer 1 --random

say "case 3: 1 GiB alignment: does not divide the pool's 2 MiB unit"
if dev=$(renew_ns -a 1G); then
	say "$dev: $(dax_line "$dev")"
	expect_error "does not divide the pool's 2 MiB unit" "$EP" create "dax:$dev"
else
	fail "could not create a namespace with 1 GiB alignment"
fi

say "case 4: 4 KiB alignment divides 2 MiB: accepted, and the pool works"
dev=$(renew_ns -a 4K -s 64M)
say "$dev: $(dax_line "$dev")"
"$EP" create "dax:$dev" --force
gen=$("$EP" import "dax:$dev" --model "$MODEL" --layer 1 --random --seed 5 --json | jnum generation)
"$FOLLOW" "dax:$dev" "$MODEL" 1 5 "$gen" 10
"$EP" stat "dax:$dev" | grep '^dax region'

say "case 5: system-ram mode (onlined as memory by kmem), not devdax"
dev=$(renew_ns -a 2M -s 256M)
daxctl reconfigure-device --mode=system-ram "$(basename "$dev")" >/dev/null ||
	fail "daxctl reconfigure-device --mode=system-ram $(basename "$dev")"
say "$dev: $(dax_line "$dev")"
expect_error "system-ram mode" "$EP" create "dax:$dev"
expect_error "system-ram mode" "$EP" stat "dax:$dev"

say "case 6: a device that does not exist"
expect_error "does not exist" "$EP" create dax:/dev/dax42.0
say "bad input: every case refused with a clear error"
