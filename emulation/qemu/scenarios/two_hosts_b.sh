#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# two_hosts_b.sh - guest B: a read-only second host on the same CXL memory, following A's pool.
# Usage: two_hosts_b.sh BUILD_ROOT SYNC_DIR. B never writes the device: test_dax_follow
# attaches read-only, polls the committed generation (invalidate before read) until the
# table appears, checks every row against seed 11, reports the generation in B.seen1;
# then waits for a newer generation and checks every row against seed 22 (B.seen2).
set -euo pipefail
BUILD=$1 SYNC=$2
EP_GUEST=B
source "$(dirname "$0")/guest_lib.sh"
export EP_HOST_ID=b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0
uri=dax:$DEV

out=$("$FOLLOW" "$uri" "$MODEL" 1 11 1 120) || fail "following A's first table: $out"
echo "$out"
g1=$(sed -n 's/^EP-FOLLOW generation=\([0-9]*\).*/\1/p' <<<"$out")
echo "$g1" >"$SYNC/B.seen1"
say "read all rows of seed 11 at generation $g1"

out=$("$FOLLOW" "$uri" "$MODEL" 1 22 $((g1 + 1)) 120) || fail "following A's replacement: $out"
echo "$out"
g2=$(sed -n 's/^EP-FOLLOW generation=\([0-9]*\).*/\1/p' <<<"$out")
say "read all rows of seed 22 at generation $g2"
"$EP" ls "$uri"
echo "$g2" >"$SYNC/B.seen2"
