// SPDX-License-Identifier: Apache-2.0
// layout.cpp - everything derived once from a model file: multipliers, primes, offsets, sizes.
#include "hashing/layout.hpp"

#include <algorithm>
#include <set>

#include "hashing/numpy_rng.hpp"
#include "hashing/primes.hpp"

namespace engrampool::hashing {

namespace {

Status fieldError(const char *field, const std::string &why)
{
	return makeError(EP_E_MODEL, std::string("model field '") + field + "' " + why);
}

} // namespace

uint64_t multiplierHalfBound(uint64_t compressedVocab)
{
	const uint64_t maxMult = static_cast<uint64_t>(INT64_MAX) / compressedVocab;
	return std::max<uint64_t>(1, maxMult / 2);
}

std::vector<uint64_t> layerMultipliers(uint64_t seed, uint32_t layerId, uint64_t compressedVocab,
				       uint32_t maxNgram)
{
	/* Python computes seed + 10007 * layer_id with unbounded ints. */
	const uint128 layerSeed = static_cast<uint128>(seed) + static_cast<uint128>(10007) * layerId;
	Pcg64 rng = defaultRng(layerSeed);

	std::vector<int64_t> r(maxNgram);
	integersInt64(rng, 0, static_cast<int64_t>(multiplierHalfBound(compressedVocab)), r);

	std::vector<uint64_t> m(maxNgram);
	for (uint32_t k = 0; k < maxNgram; k++)
		m[k] = 2 * static_cast<uint64_t>(r[k]) + 1;
	return m;
}

Result<ModelLayout> ModelLayout::create(const ModelConfig &cfg)
{
	if (cfg.maxNgramSize < 2 || cfg.maxNgramSize > kMaxOrder)
		return fieldError("max_ngram_size", "must be in [2, " + std::to_string(kMaxOrder) +
							    "], got " + std::to_string(cfg.maxNgramSize));
	if (cfg.nHeadPerNgram == 0)
		return fieldError("n_head_per_ngram", "must be at least 1");
	if (cfg.engramVocabSize.size() != cfg.orders())
		return fieldError("engram_vocab_size", "needs one entry per order 2.." +
							       std::to_string(cfg.maxNgramSize) + " (" +
							       std::to_string(cfg.orders()) + "), got " +
							       std::to_string(cfg.engramVocabSize.size()));
	for (uint64_t v : cfg.engramVocabSize)
		if (v < 2)
			return fieldError("engram_vocab_size", "entries must be at least 2");
	if (cfg.layerIds.empty())
		return fieldError("layer_ids", "must not be empty");
	if (std::set<uint32_t>(cfg.layerIds.begin(), cfg.layerIds.end()).size() != cfg.layerIds.size())
		return fieldError("layer_ids", "has duplicate layer ids");

	ModelLayout out;
	out.cfg_ = cfg;

	if (!cfg.vocabMap.empty()) {
		out.rawLimit_ = cfg.vocabMap.size();
		uint64_t v = cfg.compressedVocabSize;
		if (!v) {
			int64_t mx = *std::max_element(cfg.vocabMap.begin(), cfg.vocabMap.end());
			v = mx >= 0 ? static_cast<uint64_t>(mx) + 1 : 1;
		}
		out.vocab_ = v;
	} else {
		out.vocab_ = cfg.compressedVocabSize ? cfg.compressedVocabSize : cfg.tokenizerVocabSize;
		out.rawLimit_ = cfg.tokenizerVocabSize ? cfg.tokenizerVocabSize : out.vocab_;
	}
	if (out.vocab_ == 0)
		return fieldError("tokenizer_vocab_size", "must be at least 1");

	/* pad_id goes through the vocab map like any token (negative passes through). */
	if (cfg.padId < 0 || cfg.vocabMap.empty())
		out.pad_ = cfg.padId;
	else if (static_cast<uint64_t>(cfg.padId) < cfg.vocabMap.size())
		out.pad_ = cfg.vocabMap[cfg.padId];
	else
		return fieldError("pad_id", "is outside the vocab map (" + std::to_string(cfg.padId) +
						    " >= " + std::to_string(cfg.vocabMap.size()) + ")");

	out.halfBound_ = multiplierHalfBound(out.vocab_);

	auto primes = headPrimes(cfg);
	const uint64_t stride = cfg.rowFormat.rowStride();
	for (size_t l = 0; l < cfg.layerIds.size(); l++) {
		LayerLayout L;
		L.layerId = cfg.layerIds[l];
		L.multipliers = layerMultipliers(cfg.seed, L.layerId, out.vocab_, cfg.maxNgramSize);
		for (const auto &order : primes[l])
			for (uint64_t p : order) {
				L.offsets.push_back(L.rows);
				L.primes.push_back(p);
				// Row ids must stay exact in the kernels (< 2^52) and bytes must fit.
				if (__builtin_add_overflow(L.rows, p, &L.rows) || L.rows >= (1ull << 52))
					return fieldError("engram_vocab_size", "layer " + std::to_string(L.layerId) +
										       " would have more than 2^52 rows");
			}
		if (__builtin_mul_overflow(L.rows, stride, &L.tableBytes))
			return fieldError("engram_vocab_size", "layer " + std::to_string(L.layerId) +
								       "'s table would exceed 2^64 bytes");
		out.layers_.push_back(std::move(L));
	}

	out.fingerprint_ = modelFingerprint(cfg);
	return out;
}

int ModelLayout::layerIndex(uint32_t layerId) const
{
	for (size_t i = 0; i < layers_.size(); i++)
		if (layers_[i].layerId == layerId)
			return static_cast<int>(i);
	return -1;
}

uint64_t ModelLayout::totalRows() const
{
	uint64_t n = 0;
	for (const auto &L : layers_)
		n += L.rows;
	return n;
}

uint64_t ModelLayout::totalBytes() const
{
	uint64_t n = 0;
	for (const auto &L : layers_)
		n += L.tableBytes;
	return n;
}

} // namespace engrampool::hashing
