// SPDX-License-Identifier: Apache-2.0
// layout.hpp - everything derived once from a model file: multipliers, primes, offsets, sizes.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model_config.hpp"
#include "util/status.hpp"

namespace engrampool::hashing {

// Largest max_ngram_size the hasher supports (history of kMaxOrder - 1 ids).
constexpr uint32_t kMaxOrder = 16;

// half_bound of ENGRAM_HASHING.md section 2 for a compressed vocabulary of V' ids.
uint64_t multiplierHalfBound(uint64_t compressedVocab);

// The N multipliers of one Engram layer: 2 * default_rng(seed + 10007 * layerId)
// .integers(0, half_bound, N) + 1. Exact for every seed (the sum is not truncated).
std::vector<uint64_t> layerMultipliers(uint64_t seed, uint32_t layerId, uint64_t compressedVocab,
				       uint32_t maxNgram);

struct LayerLayout {
	uint32_t layerId = 0;
	std::vector<uint64_t> multipliers; // [N], multiplier k applies to the token k back
	std::vector<uint64_t> primes;      // [J] head table sizes, column j' = (n-2)*H + j
	std::vector<uint64_t> offsets;     // [J] first row of each head in the layer's table
	uint64_t rows = 0;                 // sum of primes
	uint64_t tableBytes = 0;           // rows * row stride
};

class ModelLayout {
public:
	// Validates what the hash needs (fields named in the message) and derives the rest.
	static Result<ModelLayout> create(const ModelConfig &cfg);

	const ModelConfig &config() const { return cfg_; }
	const std::vector<LayerLayout> &layers() const { return layers_; }
	// Index of a layer id in layer_ids order, -1 when absent.
	int layerIndex(uint32_t layerId) const;

	uint32_t maxNgram() const { return cfg_.maxNgramSize; }
	uint32_t heads() const { return cfg_.nHeadPerNgram; }
	uint32_t columns() const { return cfg_.orders() * cfg_.nHeadPerNgram; } // J
	uint64_t compressedVocab() const { return vocab_; }                     // V'
	int64_t compressedPad() const { return pad_; }                          // pad'
	uint64_t halfBound() const { return halfBound_; }
	// Raw ids at or above this are out of vocabulary (lookup length, or V' for identity).
	uint64_t rawLimit() const { return rawLimit_; }
	uint64_t rowStride() const { return cfg_.rowFormat.rowStride(); }
	uint64_t totalRows() const;
	uint64_t totalBytes() const;
	uint64_t fingerprint() const { return fingerprint_; }

private:
	ModelConfig cfg_;
	std::vector<LayerLayout> layers_;
	uint64_t vocab_ = 0;
	int64_t pad_ = 0;
	uint64_t halfBound_ = 0;
	uint64_t rawLimit_ = 0;
	uint64_t fingerprint_ = 0;
};

} // namespace engrampool::hashing
