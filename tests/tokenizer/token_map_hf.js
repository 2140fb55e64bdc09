// SPDX-License-Identifier: Apache-2.0
// token_map_hf.js - the token map computed with Hugging Face's own tokenizers library (npm
// `tokenizers`, the Node binding of the Rust library), compared with a map .npy.
// Usage: node token_map_hf.js TOKENIZER.json MAP.npy   (exit 0 equal, 1 different, 77 no library)
'use strict';
const fs = require('fs');
let hf;
try {
	hf = require('tokenizers');
} catch (e) {
	console.log('SKIP: the npm package "tokenizers" is not installed (npm install tokenizers; NODE_PATH=.../node_modules)');
	process.exit(77);
}

// The Engram reference's normalizer, as a tokenizers normalizer (Regex needs the JSON form).
const SENTINEL = '\uE000';
function engramNormalizer() {
	const spec = {
		version: '1.0', truncation: null, padding: null, added_tokens: [], pre_tokenizer: null,
		post_processor: null, decoder: null,
		model: { type: 'WordLevel', vocab: { a: 0 }, unk_token: 'a' },
		normalizer: { type: 'Sequence', normalizers: [
			{ type: 'NFKC' }, { type: 'NFD' }, { type: 'StripAccents' }, { type: 'Lowercase' },
			{ type: 'Replace', pattern: { Regex: '[ \\t\\r\\n]+' }, content: ' ' },
			{ type: 'Replace', pattern: { Regex: '^ $' }, content: SENTINEL },
			{ type: 'Strip', strip_left: true, strip_right: true },
			{ type: 'Replace', pattern: { String: SENTINEL }, content: ' ' },
		] },
	};
	return hf.Tokenizer.fromString(JSON.stringify(spec)).getNormalizer();
}

function readNpyInt64(path) {
	const b = fs.readFileSync(path);
	if (b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(path + ': not an .npy file');
	const major = b[6];
	const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
	const off = (major === 1 ? 10 : 12) + hlen;
	const header = b.toString('latin1', major === 1 ? 10 : 12, off);
	if (!header.includes("'<i8'")) throw new Error(path + ': not int64: ' + header);
	const out = [];
	for (let i = off; i + 8 <= b.length; i += 8) out.push(Number(b.readBigInt64LE(i)));
	return out;
}

async function main() {
	const [tokPath, npyPath] = process.argv.slice(2);
	const tok = hf.Tokenizer.fromString(fs.readFileSync(tokPath, 'utf8'));
	const norm = engramNormalizer();
	const n = tok.getVocabSize(true);
	const keys = new Map();
	const map = [];
	for (let id = 0; id < n; id++) {
		const text = await tok.decode([id], false);
		let key;
		if (text.includes('\uFFFD')) {
			key = tok.idToToken(id);
		} else {
			const k = norm.normalizeString(text);
			key = k.length ? k : text;
		}
		if (!keys.has(key)) keys.set(key, keys.size);
		map.push(keys.get(key));
	}
	const ours = readNpyInt64(npyPath);
	if (ours.length !== map.length) {
		console.log(`DIFFER: ${ours.length} ids in ${npyPath}, ${map.length} from tokenizers`);
		process.exit(1);
	}
	let bad = 0;
	for (let id = 0; id < n; id++) {
		if (ours[id] !== map[id]) {
			if (bad++ < 10) {
				const text = await tok.decode([id], false);
				console.log(`DIFFER at id ${id}: ours ${ours[id]}, tokenizers ${map[id]}; token ${JSON.stringify(tok.idToToken(id))} decodes to ${JSON.stringify(text)}`);
			}
		}
	}
	if (bad) {
		console.log(`${bad} of ${n} ids differ`);
		process.exit(1);
	}
	console.log(`OK: ${n} ids, ${keys.size} keys, equal to Hugging Face tokenizers ${require('tokenizers/package.json').version}`);
}
main().catch((e) => { console.log('ERROR: ' + e.message); process.exit(2); });
