#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# lookup_v41.sh - a V4.1-shaped checkpoint (scripts/make_v41_checkpoint.py), imported with
# --checkpoint, looked up with a dead span: rows equal numpy's dequantization of the
# checkpoint's tensors at numpy's row ids, the live mask marks the span; for both table
# layouts (issue 11 #5): a planar import gives the same lookup output, raw and dequantized,
# and a re-run skips only the same layout. 77 when a piece
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
uri2=emul:ep-lookup-v41p-$$
trap '"$ep" destroy "$uri" >/dev/null 2>&1 || true; "$ep" destroy "$uri2" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
/usr/bin/python3 "$src/scripts/make_v41_checkpoint.py" "$tmp/ck" --cli "$ep" --vocab 20000 >/dev/null
"$ep" create "$uri" --size 512M >/dev/null
"$ep" import "$uri" --checkpoint "$tmp/ck" >/dev/null
"$ep" model --from-checkpoint "$tmp/ck" --out "$tmp/v41.json" >/dev/null
tokens='[[300,301,302,303,304,305,306],[7,8],[9,10,11]]'
dead='[[0,0,1,1,0,0,1],[0,0],[1,0,0]]'
"$ep" lookup "$uri" --model "$tmp/v41.json" --tokens "$tokens" --dead "$dead" --out "$tmp/rows.npy"
/usr/bin/python3 "$src/tests/agent/lookup_v41_check.py" "$tmp/v41.json" "$tmp/ck" "$tmp/rows.npy" "$tokens" "$dead"

# The same checkpoint imported planar into a second pool: same rows through the agent.
"$ep" create "$uri2" --size 512M >/dev/null
"$ep" import "$uri2" --checkpoint "$tmp/ck" --layout planar >/dev/null
"$ep" ls "$uri2" --json | /usr/bin/python3 -c '
import json, sys
t = json.load(sys.stdin)["tables"]
assert len(t) == 2 and all(x["layout"] == "planar" for x in t), t'
"$ep" lookup "$uri2" --model "$tmp/v41.json" --tokens "$tokens" --dead "$dead" --out "$tmp/rows_planar.npy"
cmp "$tmp/rows.npy" "$tmp/rows_planar.npy"
/usr/bin/python3 "$src/tests/agent/lookup_v41_check.py" "$tmp/v41.json" "$tmp/ck" "$tmp/rows_planar.npy" "$tokens" "$dead"
"$ep" lookup "$uri" --model "$tmp/v41.json" --tokens "$tokens" --raw --out "$tmp/raw.npy"
"$ep" lookup "$uri2" --model "$tmp/v41.json" --tokens "$tokens" --raw --out "$tmp/raw_planar.npy"
cmp "$tmp/raw.npy" "$tmp/raw_planar.npy"
"$ep" verify "$uri2" --json | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["ok"] and all(x["layout"] == "planar" for x in d["tables"]), d'

# Re-runs: the same layout is skipped; the other layout is another table (refused
# without --replace, replaced with it).
"$ep" import "$uri2" --checkpoint "$tmp/ck" --layout planar --json | /usr/bin/python3 -c '
import json, sys
assert all(x["skipped"] for x in json.load(sys.stdin)["tables"])'
if "$ep" import "$uri2" --checkpoint "$tmp/ck" --layout packed >"$tmp/err" 2>&1; then
	echo "FAIL: a packed re-run over planar tables was not refused"; exit 1
fi
grep -q "planar" "$tmp/err" || { echo "FAIL: refusal does not name the layout:"; cat "$tmp/err"; exit 1; }
"$ep" import "$uri2" --checkpoint "$tmp/ck" --layout packed --replace --json | /usr/bin/python3 -c '
import json, sys
t = json.load(sys.stdin)["tables"]
assert all(not x["skipped"] and x["replaced"] and x["layout"] == "packed" for x in t), t'
"$ep" lookup "$uri2" --model "$tmp/v41.json" --tokens "$tokens" --raw --out "$tmp/raw_back.npy"
cmp "$tmp/raw.npy" "$tmp/raw_back.npy"
echo PASS
