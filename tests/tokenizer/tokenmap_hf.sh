#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tokenmap_hf.sh - `engrampool tokenmap` against Hugging Face's tokenizers library (the npm
# package `tokenizers`, the Node binding of the Rust library) on generated tokenizers.
# Skips (77) when node or the package is absent: `npm install tokenizers` in some DIR and
# run with NODE_PATH=DIR/node_modules.
# Usage: tokenmap_hf.sh ENGRAMPOOL_CLI TESTS_TOKENIZER_DIR
set -eu
cli=$1
here=$2
command -v node >/dev/null 2>&1 || { echo "SKIP: no node"; exit 77; }
if ! node -e "require('tokenizers')" >/dev/null 2>&1; then
	echo "SKIP: the npm package 'tokenizers' is not installed (npm install tokenizers; NODE_PATH=.../node_modules)"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for style in bytelevel spm; do
	for seed in 11 12 13; do
		/usr/bin/python3 "$here/token_map_ref.py" gen "$seed" "$tmp/t.json" 4000 "$style"
		"$cli" tokenmap "$tmp/t.json" --out "$tmp/m.npy" --force >/dev/null
		printf '%s seed %s: ' "$style" "$seed"
		node "$here/token_map_hf.js" "$tmp/t.json" "$tmp/m.npy"
	done
done
# A real model tokenizer when one is at hand (scripts/fetch_deepseek_tokenizer.sh puts
# DeepSeek-V3's, the vocabulary DeepSeek-V4.1 extends, in ~/.cache/engrampool/deepseek):
# the whole map must equal Hugging Face's, id for id.
real=${EP_DEEPSEEK_TOKENIZER:-$HOME/.cache/engrampool/deepseek/tokenizer.json}
if [ -f "$real" ]; then
	"$cli" tokenmap "$real" --out "$tmp/real.npy" --force >/dev/null
	printf 'DeepSeek tokenizer %s: ' "$real"
	node "$here/token_map_hf.js" "$real" "$tmp/real.npy"
else
	echo "no DeepSeek tokenizer at $real (scripts/fetch_deepseek_tokenizer.sh): generated tokenizers only"
fi
