#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# demo.sh - the main job on the embedded default: build, create an emulated CXL pool,
# import both Engram tables of the reference model, list/verify them, hash a token
# stream and look its rows up through the library.
#   POOL=emul:NAME?node=N  MODEL=path.json  KEEP=1 (keep the pool afterwards)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILD_DIR:-build}
"$here/scripts/build.sh" "$builddir"
cd "$here"
ep="$builddir/pool_manager/engrampool"
pool=${POOL:-emul:engram-demo?node=0}
model=${MODEL:-examples/models/engram_demo_v1.json}
size=${SIZE:-6G}

"$ep" destroy "$pool" >/dev/null 2>&1 || true
[ "${KEEP:-0}" = 1 ] || trap '"$ep" destroy "$pool" >/dev/null 2>&1 || true' EXIT

echo "== create an emulated CXL pool"
"$ep" create "$pool" --size "$size"
echo "== import one table per Engram layer (deterministic --random rows)"
layers=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["layer_ids"])))' "$model")
for l in $layers; do
  "$ep" import "$pool" --model "$model" --layer "$l" --random --seed 1
done
echo "== list"
"$ep" ls "$pool"
echo "== verify"
"$ep" verify "$pool"
echo "== stat"
"$ep" stat "$pool"
if "$ep" hash --help >/dev/null 2>&1; then
  echo "== hash a token stream into row ids (reference layout)"
  tokens='[[15,270,3,1996,88,270,3]]'
  "$ep" hash --model "$model" --tokens "$tokens" --json > /tmp/engrampool-demo-hash.json
  read -r table rows < <(/usr/bin/python3 - "$model" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
h = json.load(open("/tmp/engrampool-demo-hash.json"))
layer = h["layers"][0]
rows = layer["row_ids"][0][-1]          # last token, every (order, head)
print(f'{m["name"]}/layer{layer["layer_id"]}', " ".join(map(str, rows)))
PY
)
  echo "== look the last token's rows up through the C ABI ($table)"
  "$builddir/examples/attach_lookup" "$pool" "$table" $rows
fi
echo "== one agent prefetch (engrampool lookup) written as .npy"
"$ep" lookup "$pool" --model "$model" --tokens '[[15,270,3,1996],[88,270]]' --out /tmp/engrampool-demo-rows.npy --force

echo "== emulated multi-host run: 4 hosts share the pool, one table replaced mid-run, every row checked"
small=emul:engram-demo-hosts
"$ep" destroy "$small" >/dev/null 2>&1 || true
"$ep" create "$small" --size 64M --lease-ms 500 >/dev/null
"$ep" emulate "$small" --model tests/dax/small_model.json --hosts 4 --steps 300 --replace-at 150 --seed 7 --prepare
"$ep" destroy "$small" >/dev/null

echo "== DeepSeek-V4.1: a V4.1-shaped checkpoint (scaled engram_vocab_size, synthetic tokenizer and tensors)"
v41=emul:engram-demo-v41
v41dir=$(mktemp -d /tmp/engrampool-demo-v41.XXXXXX)
cleanup_v41() { "$ep" destroy "$v41" >/dev/null 2>&1 || true; rm -rf "$v41dir"; }
cleanup_v41_and_pool() { cleanup_v41; [ "${KEEP:-0}" = 1 ] || "$ep" destroy "$pool" >/dev/null 2>&1 || true; }
trap cleanup_v41_and_pool EXIT
ck="$v41dir/DeepSeek-V4.1-mini"
/usr/bin/python3 scripts/make_v41_checkpoint.py "$ck" --cli "$ep" --vocab 20000
"$ep" destroy "$v41" >/dev/null 2>&1 || true
"$ep" create "$v41" --size 512M >/dev/null
echo "== import --checkpoint: token map from tokenizer.json, every Engram layer, one publish each"
"$ep" import "$v41" --checkpoint "$ck"
echo "== the same again: layers already published from this checkpoint are skipped"
"$ep" import "$v41" --checkpoint "$ck"
"$ep" verify "$v41"
echo "== model --from-checkpoint: the model file + token map that hash, lookup and the agent take"
"$ep" model --from-checkpoint "$ck" --out "$v41dir/v41.json"
echo "== lookup with a dead (image) span: positions 2-3 are dead, rows dequantized to float32"
"$ep" lookup "$v41" --model "$v41dir/v41.json" --tokens '[[300,301,302,303,304,305],[7,8]]' \
  --dead '[[0,0,1,1,0,0],[0,0]]' --out /tmp/engrampool-demo-v41-rows.npy --force
cleanup_v41

# The demo pool's huge pages go back first (unless KEEP=1): the benchmark's own pool then
# gets 2 MiB pages like the rest, instead of the 4 KiB fallback.
[ "${KEEP:-0}" = 1 ] || "$ep" destroy "$pool" >/dev/null 2>&1 || true
echo "== throughput loss (short version of bench/throughput_loss; 'bash scripts/bench.sh' runs the full set)"
"$builddir/bench/throughput_loss/throughput_loss" --quick --no-progress --json /tmp/engrampool-demo-throughput.json
echo "== done (pool removed unless KEEP=1)"
