# SPDX-License-Identifier: Apache-2.0
# guest_lib.sh - helpers for the scenario scripts that run in the guest (chrooted into the host root).
# Expects BUILD (the meson build root); sets EP (the CLI), FOLLOW, SRC, MODEL and DEV.
EP=$BUILD/pool_manager/engrampool
FOLLOW=$BUILD/tests/dax/test_dax_follow
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
MODEL=$SRC/tests/dax/small_model.json
DEV=${EP_DAX_DEVICE:-/dev/dax0.0}
export EP_DAX_DEVICE=$DEV

say() { echo "[${EP_GUEST:-guest} $(cut -d' ' -f1 /proc/uptime)s] $*"; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
# Value of a top-level number field in --json output.
jnum() { grep -o "\"$1\": *[0-9]*" | head -1 | grep -o '[0-9]*$'; }
# Wait up to $2 seconds for file $1 (on the read-write build share).
wait_file() {
	local i=0
	while [ ! -e "$1" ]; do
		[ $i -ge $(($2 * 10)) ] && fail "timed out after $2 s waiting for $1"
		sleep 0.1
		i=$((i + 1))
	done
}
# Run a command that must fail with a message matching $1.
expect_error() {
	local want=$1 out
	shift
	if out=$("$@" 2>&1); then
		fail "'$*' succeeded, expected an error matching '$want'"
	fi
	grep -q -- "$want" <<<"$out" || fail "'$*' failed with '$out', expected '$want'"
	say "refused as expected: $* -> $(head -1 <<<"$out")"
}
