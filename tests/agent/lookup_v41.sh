#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# lookup_v41.sh - a V4.1-shaped checkpoint (scripts/make_v41_checkpoint.py), imported with
# --checkpoint, looked up with a dead span: rows equal numpy's dequantization of the
# checkpoint's tensors at numpy's row ids, the live mask marks the span. 77 when a piece
# (the CLI, numpy, the checkpoint generator) is missing.
# Usage: lookup_v41.sh BUILD_ROOT SOURCE_ROOT
set -eu
build=$1
src=$2
ep=$build/pool_manager/engrampool
[ -x "$ep" ] || { echo "SKIP: $ep not built"; exit 77; }
[ -f "$src/scripts/make_v41_checkpoint.py" ] || { echo "SKIP: no make_v41_checkpoint.py"; exit 77; }
/usr/bin/python3 -c 'import numpy' 2>/dev/null || { echo "SKIP: no numpy"; exit 77; }
tmp=$(mktemp -d)
uri=emul:ep-lookup-v41-$$
trap '"$ep" destroy "$uri" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
/usr/bin/python3 "$src/scripts/make_v41_checkpoint.py" "$tmp/ck" --cli "$ep" --vocab 20000 >/dev/null
"$ep" create "$uri" --size 512M >/dev/null
"$ep" import "$uri" --checkpoint "$tmp/ck" >/dev/null
"$ep" model --from-checkpoint "$tmp/ck" --out "$tmp/v41.json" >/dev/null
tokens='[[300,301,302,303,304,305,306],[7,8],[9,10,11]]'
dead='[[0,0,1,1,0,0,1],[0,0],[1,0,0]]'
"$ep" lookup "$uri" --model "$tmp/v41.json" --tokens "$tokens" --dead "$dead" --out "$tmp/rows.npy"
/usr/bin/python3 "$src/tests/agent/lookup_v41_check.py" "$tmp/v41.json" "$tmp/ck" "$tmp/rows.npy" "$tokens" "$dead"
echo PASS
