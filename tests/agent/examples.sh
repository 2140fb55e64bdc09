#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# examples.sh - the agent examples run against a small emulated pool: agent_lookup prints the
# rows of every layer, decode_loop runs its continuous-batching loop and prints the metrics.
# Usage: examples.sh BUILD_ROOT
set -eu
build=$1
cli=$build/pool_manager/engrampool
lookup=$build/examples/agent_lookup
loop=$build/examples/decode_loop
for x in "$cli" "$lookup" "$loop"; do
	[ -x "$x" ] || { echo "SKIP: $x not built"; exit 77; }
done
tmp=$(mktemp -d)
uri=emul:ep-agent-examples-$$
trap '"$cli" destroy "$uri" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
cat >"$tmp/model.json" <<'JSON'
{"name": "ex_small", "tokenizer_vocab_size": 1000, "compressed_vocab_size": 1000, "engram_vocab_size": [3000, 4000],
 "max_ngram_size": 3, "n_embed_per_ngram": 64, "n_head_per_ngram": 4, "layer_ids": [1, 3],
 "pad_id": 2, "seed": 0}
JSON
"$cli" create "$uri" --size 64M >/dev/null
"$cli" import "$uri" --model "$tmp/model.json" --layer 1 --random --seed 1 >/dev/null
"$cli" import "$uri" --model "$tmp/model.json" --layer 3 --random --seed 2 >/dev/null

"$lookup" "$uri" "$tmp/model.json" 5 6 7 >"$tmp/lookup.txt"
cat "$tmp/lookup.txt"
grep -q '^layer 1: 3 tokens x 8 rows of 64 bytes' "$tmp/lookup.txt"
grep -q '^layer 3: 3 tokens x 8 rows of 64 bytes' "$tmp/lookup.txt"
[ "$(grep -c '  token ' "$tmp/lookup.txt")" -eq 6 ]
# A dead token (dID): its id is not checked, the live mask marks it.
"$lookup" "$uri" "$tmp/model.json" 5 d100000 7 >"$tmp/dead.txt"
cat "$tmp/dead.txt"
[ "$(grep -c 'token 100000 (dead):' "$tmp/dead.txt")" -eq 2 ]
[ "$(grep -c '  token ' "$tmp/dead.txt")" -eq 6 ]
# A bad token id is a clear error, not a crash.
if "$lookup" "$uri" "$tmp/model.json" 5 1000 2>"$tmp/err.txt"; then
	echo "FAIL: token 1000 accepted"; exit 1
fi
grep -qi 'token' "$tmp/err.txt"

"$loop" "$uri" "$tmp/model.json" 60 8 6 5 >"$tmp/loop.txt"
cat "$tmp/loop.txt"
grep -q '^steps 60, tokens ' "$tmp/loop.txt"
grep -q 'steps/s' "$tmp/loop.txt"
grep -q '"tickets": 60' "$tmp/loop.txt"
grep -q '"errors": 0' "$tmp/loop.txt"
echo PASS
