#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# dax_cli.sh - the engrampool CLI on a real device DAX: create, import, stat, verify, replace, lookup, bad sizes.
# Usage: dax_cli.sh ENGRAMPOOL DAX_FOLLOW MODEL.json. Uses $EP_DAX_DEVICE or the first
# /dev/daxX.Y; exits 77 (skip) when there is none. It formats the device.
set -euo pipefail
ep=$1 follow=$2 model=$3
dev=${EP_DAX_DEVICE:-$(ls -d /dev/dax*.* 2>/dev/null | head -1 || true)}
if [ -z "$dev" ]; then
	echo "SKIP: no device DAX (/dev/daxX.Y) on this machine"
	exit 77
fi
uri=dax:$dev
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
# Value of a top-level number field in --json output.
jnum() { grep -o "\"$1\": *[0-9]*" | head -1 | grep -o '[0-9]*$'; }
# Run a command that must fail with a message matching $1.
expect_error() {
	local want=$1 out
	shift
	if out=$("$@" 2>&1); then
		fail "'$*' succeeded, expected an error matching '$want'"
	fi
	grep -q -- "$want" <<<"$out" || fail "'$*' failed with '$out', expected '$want'"
	echo "ok (refused): $* -> $(head -1 <<<"$out")"
}

"$ep" create "$uri" --force
expect_error "already holds a pool" "$ep" create "$uri"
st=$("$ep" stat "$uri" --json)
tr -d ' \n' <<<"$st" | grep -q "\"kind\":\"dax\"" || fail "stat --json: region kind is not dax: $st"
tr -d ' \n' <<<"$st" | grep -q "\"device\":\"$(basename "$dev")\"" || fail "stat --json: no dax device: $st"
tr -d ' \n' <<<"$st" | grep -q '"mode":"devdax"' || fail "stat --json: mode is not devdax: $st"
"$ep" stat "$uri" | grep '^dax region'

gen=$("$ep" import "$uri" --model "$model" --layer 1 --random --seed 7 --json | jnum generation)
[ -n "$gen" ] || fail "import printed no generation"
"$ep" ls "$uri"
"$ep" verify "$uri"
"$follow" "$uri" "$model" 1 7 "$gen" 10
expect_error "already" "$ep" import "$uri" --model "$model" --layer 1 --random --seed 8
gen2=$("$ep" import "$uri" --model "$model" --layer 1 --random --seed 8 --replace --json | jnum generation)
[ "$gen2" -gt "$gen" ] || fail "replace published generation $gen2, not after $gen"
"$follow" "$uri" "$model" 1 8 "$gen2" 10
"$ep" verify "$uri"

# One agent lookup on the device must give the same bytes as on a file: pool with the
# same table (hash -> gather -> scatter on the host device).
if "$ep" lookup --help >/dev/null 2>&1; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	toks='[[1,2,3,4,5,6,7,8],[999,0,17]]'
	"$ep" lookup "$uri" --model "$model" --tokens "$toks" --out "$tmp/dax.npy"
	"$ep" create "file:$tmp/ref.pool" --size 8M >/dev/null
	"$ep" import "file:$tmp/ref.pool" --model "$model" --layer 1 --random --seed 8 >/dev/null
	"$ep" lookup "file:$tmp/ref.pool" --model "$model" --tokens "$toks" --out "$tmp/ref.npy" >/dev/null
	cmp "$tmp/dax.npy" "$tmp/ref.npy" || fail "agent lookup on $uri differs from the same table in a file: pool"
	echo "agent lookup on $uri: same rows as a file: pool"
fi

expect_error "but the pool needs" "$ep" create "$uri" --force --size 1T
expect_error "does not exist" "$ep" stat dax:/dev/dax99.99
echo "dax cli: create, stat, import, verify, replace, follow, lookup, bad sizes: ok"
