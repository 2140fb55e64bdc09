#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# two_hosts_a.sh - guest A (the master): format the shared pool, import, later replace the table.
# Usage: two_hosts_a.sh BUILD_ROOT SYNC_DIR. SYNC_DIR is on the read-write build share:
# A writes A.gen1 / A.gen2 (the generations it published) there and waits for B's
# B.seen1 / B.seen2 before going on. B learns about A's data only from the pool itself.
set -euo pipefail
BUILD=$1 SYNC=$2
EP_GUEST=A
source "$(dirname "$0")/guest_lib.sh"
export EP_HOST_ID=a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0
uri=dax:$DEV

say "waiting for guest B's namespace (it rewrites the namespace's first 2 MiB)"
wait_file "$SYNC/B.ns-ready" 120
"$EP" create "$uri" --force
"$EP" stat "$uri" | grep -E '^(pool|generation|master|dax region)'
gen1=$("$EP" import "$uri" --model "$MODEL" --layer 1 --random --seed 11 --json | jnum generation)
[ -n "$gen1" ] || fail "import printed no generation"
echo "$gen1" >"$SYNC/A.gen1"
say "published table seed 11 at generation $gen1"

wait_file "$SYNC/B.seen1" 120
say "B read generation $(cat "$SYNC/B.seen1"); replacing the table"
gen2=$("$EP" import "$uri" --model "$MODEL" --layer 1 --random --seed 22 --replace --json | jnum generation)
[ -n "$gen2" ] && [ "$gen2" -gt "$gen1" ] || fail "replace published generation '$gen2', not after $gen1"
echo "$gen2" >"$SYNC/A.gen2"
say "published table seed 22 at generation $gen2"

wait_file "$SYNC/B.seen2" 120
say "B read generation $(cat "$SYNC/B.seen2")"
"$EP" ls "$uri"
"$EP" verify "$uri"
