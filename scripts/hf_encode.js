#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// hf_encode.js - encode texts with Hugging Face's own tokenizers library (the npm package
// `tokenizers`, a Node binding of the Rust library): the exact ids of a tokenizer.json.
// scripts/make_trace.py runs it when the Python package is absent but node has the npm one.
//
//   node scripts/hf_encode.js TOKENIZER.json   (NODE_PATH=DIR/node_modules)
//   stdin:  one JSON string per line (a text);  stdout: one JSON array of ids per line.
// No special tokens are added (a trace holds the text's own tokens).
'use strict';
const readline = require('readline');
let hf;
try {
	hf = require('tokenizers');
} catch (e) {
	process.stderr.write('hf_encode: the npm package "tokenizers" is not installed (npm install tokenizers; NODE_PATH=.../node_modules)\n');
	process.exit(3);
}
if (process.argv.length !== 3) {
	process.stderr.write('usage: hf_encode.js TOKENIZER.json\n');
	process.exit(2);
}
const tok = hf.Tokenizer.fromFile(process.argv[2]);
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
// Lines are answered in order: a chain of promises keeps the order while encoding runs.
let chain = Promise.resolve();
rl.on('line', (line) => {
	chain = chain.then(async () => {
		const enc = await tok.encode(JSON.parse(line), null, { addSpecialTokens: false });
		process.stdout.write(JSON.stringify(Array.from(enc.getIds())) + '\n');
	});
});
rl.on('close', () => chain.then(() => process.stdout.end()));
