// SPDX-License-Identifier: Apache-2.0
// model_config.hpp - an Engram model file (MODEL.json): parse, validate, fingerprint.
//
// Field names follow the reference implementation (engram_demo_v1.py):
//   engram_vocab_size (int or list, one per order 2..N), max_ngram_size,
//   n_embed_per_ngram, n_head_per_ngram, layer_ids, pad_id, seed,
//   tokenizer_vocab_size, optional vocab_map (path of an int64 .npy, relative to
//   the model file), optional out_of_vocab ("error" | "clip"), and the row format:
//   dtype (default fp32), optional scale {"dtype": "e8m0", "block": 32},
//   optional row_align. Optional "name" (default: the file's stem).
//
// Which vocabulary the hash multipliers use must be explicit: a model with a
// vocab_map uses the map's distinct count; a model without one must say
// "compressed_vocab_size" equal to tokenizer_vocab_size (or "identity_vocab": true).
// A model whose compressed size differs from its tokenizer size but that has no map
// would hash raw ids with the wrong multipliers (every row id wrong, no error): it is
// refused. Optional "num_embeddings" (rows per layer, in layer_ids order) is checked
// against the sum of each layer's primes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/row_format.hpp"
#include "util/status.hpp"

namespace engrampool {

struct ModelConfig {
	std::string name;
	std::vector<uint64_t> engramVocabSize; // one per order n = 2..maxNgramSize
	uint32_t maxNgramSize = 0;
	uint32_t nEmbedPerNgram = 0;
	uint32_t nHeadPerNgram = 0;
	std::vector<uint32_t> layerIds;
	int64_t padId = 0;
	uint64_t seed = 0;
	uint64_t tokenizerVocabSize = 0;
	bool clipOutOfVocab = false;

	// Vocabulary compression: lookup[raw] -> compressed id. Empty = identity.
	std::string vocabMapPath;
	std::vector<int64_t> vocabMap;
	uint64_t vocabMapHash = 0;      // XXH3 of the map's int64 contents (0 = identity)
	uint64_t compressedVocabSize = 0; // V'
	// Declared "num_embeddings" (rows per layer, layer_ids order), checked; empty = absent.
	std::vector<uint64_t> numEmbeddings;
	// Only with ModelParseOptions::allowMissingVocabMap: the model needs a token map it
	// does not carry (compressedVocabSize != tokenizerVocabSize, no vocab_map). Such a
	// config describes a layout; it must never hash.
	bool vocabMapMissing = false;

	RowFormat rowFormat;

	uint32_t orders() const { return maxNgramSize - 1; }
	uint32_t headDim() const { return nEmbedPerNgram / nHeadPerNgram; }
	uint32_t headsPerLayer() const { return orders() * nHeadPerNgram; }
	int64_t compressedPadId() const;
};

struct ModelParseOptions {
	// Accept a model that needs a token map it does not carry (for showing its
	// layout); the result has vocabMapMissing set. Never for hashing or importing.
	bool allowMissingVocabMap = false;
	// Use this map (already in memory, e.g. built from a tokenizer.json) instead of
	// loading the "vocab_map" path, which is then only recorded. Checked the same way.
	const std::vector<int64_t> *vocabMap = nullptr;
};

// Parse and validate; relative vocab_map paths resolve against baseDir.
Result<ModelConfig> parseModelJson(const std::string &text, const std::string &baseDir,
				   const std::string &defaultName = "model", const ModelParseOptions &opts = {});
Result<ModelConfig> loadModelFile(const std::string &path, const ModelParseOptions &opts = {});

// What to tell a user whose model lacks its token map.
std::string tokenMapHint();

// 64-bit fingerprint over every field that changes a row id or a row's bytes:
// orders, vocab sizes, heads, dims, layer ids, pad, seed, tokenizer size, the vocab
// map's contents, out-of-vocab policy and the row format.
uint64_t modelFingerprint(const ModelConfig &cfg);
std::string fingerprintHex(uint64_t fp);

} // namespace engrampool
