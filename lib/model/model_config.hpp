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

	RowFormat rowFormat;

	uint32_t orders() const { return maxNgramSize - 1; }
	uint32_t headDim() const { return nEmbedPerNgram / nHeadPerNgram; }
	uint32_t headsPerLayer() const { return orders() * nHeadPerNgram; }
	int64_t compressedPadId() const;
};

// Parse and validate; relative vocab_map paths resolve against baseDir.
Result<ModelConfig> parseModelJson(const std::string &text, const std::string &baseDir,
				   const std::string &defaultName = "model");
Result<ModelConfig> loadModelFile(const std::string &path);

// 64-bit fingerprint over every field that changes a row id or a row's bytes:
// orders, vocab sizes, heads, dims, layer ids, pad, seed, tokenizer size, the vocab
// map's contents, out-of-vocab policy and the row format.
uint64_t modelFingerprint(const ModelConfig &cfg);
std::string fingerprintHex(uint64_t fp);

} // namespace engrampool
