// SPDX-License-Identifier: Apache-2.0
// fuzz_model.cpp - libFuzzer target: model files (MODEL.json + vocab-map .npy) through layout and hashing.
//
// Input: the model JSON, optionally followed by a NUL byte and the bytes of a
// vocab-map .npy that is written as "vocab.npy" next to the model (so a model with
// "vocab_map": "vocab.npy" reads it). A model that parses goes through
// ModelLayout::create and, when that succeeds, the hasher: every available kernel
// must give the scalar kernel's row ids, streaming must equal batch hashing, and
// every row id must fall inside its layer's table.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "hashing/hasher.hpp"
#include "hashing/layout.hpp"
#include "io/npy.hpp"
#include "model/model_config.hpp"

using namespace engrampool;
using namespace engrampool::hashing;

namespace {

// The primes walk costs about one Miller-Rabin run per candidate; keep each input fast.
constexpr uint64_t kMaxHeadsTotal = 2048;

void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_model: invariant violated: %s\n", what);
		abort();
	}
}

void exerciseHasher(const ModelLayout &layout)
{
	auto scalar = EngramHasher::create(layout, Kernel::Scalar);
	if (!scalar)
		return; // e.g. a layout the hasher refuses: an error is fine
	const ModelConfig &c = layout.config();
	// Tokens: small ids, pad, the last in-vocabulary id, the first out-of-vocabulary one.
	std::vector<int64_t> tokens = {0, 1, c.padId, (int64_t)layout.rawLimit() - 1, 2, 0, 1};
	if (c.clipOutOfVocab)
		tokens.push_back((int64_t)layout.rawLimit());
	for (auto &t : tokens)
		if (t < 0)
			t = 0;
	std::vector<uint64_t> seq = {0, 3, tokens.size()};
	size_t outN = scalar->outputSize(tokens.size());
	std::vector<uint64_t> ref(outN), got(outN);
	Status st = scalar->hashBatch(tokens, seq, ref);
	if (!st)
		return;
	// Row ids stay inside the layer's table.
	size_t T = tokens.size(), J = scalar->columns();
	for (size_t l = 0; l < scalar->layerCount(); l++)
		for (size_t i = 0; i < T * J; i++)
			check(ref[l * T * J + i] < layout.layers()[l].rows, "row id outside the layer's table");
	for (Kernel k : {Kernel::Auto, Kernel::Avx2, Kernel::Avx512}) {
		if (!kernelSupported(k))
			continue;
		auto h = EngramHasher::create(layout, k);
		if (!h)
			continue;
		std::fill(got.begin(), got.end(), 0);
		check(h->hashBatch(tokens, seq, got).isOk(), "a kernel refused tokens the scalar kernel hashed");
		check(got == ref, "a SIMD kernel disagrees with the scalar kernel");
	}
	// Streaming, one token at a time per sequence, equals batch hashing.
	StreamState states[2];
	scalar->beginSequence(states[0]);
	scalar->beginSequence(states[1]);
	std::vector<uint64_t> one(scalar->outputSize(1));
	for (size_t b = 0; b < 2; b++)
		for (size_t t = seq[b]; t < seq[b + 1]; t++) {
			std::vector<uint64_t> off = {0, 1};
			check(scalar->hashStream(std::span<StreamState>(&states[b], 1), std::span<const int64_t>(&tokens[t], 1),
						 off, one)
				      .isOk(),
			      "streaming refused a token batch hashing accepted");
			for (size_t l = 0; l < scalar->layerCount(); l++)
				check(std::memcmp(&one[l * J], &ref[(l * T + t) * J], J * sizeof(uint64_t)) == 0,
				      "streaming row ids differ from batch row ids");
		}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = static_cast<const uint8_t *>(memchr(data, 0, size));
	size_t jsonLen = nul ? (size_t)(nul - data) : size;
	const std::string &dir = fuzz::scratchDir();
	static const std::string vocab = dir + "/vocab.npy";
	if (nul)
		fuzz::writeFile(vocab, nul + 1, size - jsonLen - 1);
	else
		unlink(vocab.c_str());

	// FUZZ_SKIP_KNOWN=1: step around the open bugs of fuzz/crashes/fuzz_model (a vocab map
	// whose largest id is far beyond its length; layer row counts that overflow) to look for others.
	static const bool skipKnown = getenv("FUZZ_SKIP_KNOWN") != nullptr;
	if (skipKnown && nul) {
		auto m = io::loadNpyInt64(vocab);
		if (m)
			for (int64_t v : *m)
				if (v > 0 && (uint64_t)v > m->size())
					return 0;
	}

	std::string text(reinterpret_cast<const char *>(data), jsonLen);
	auto cfg = parseModelJson(text, dir);
	if (!cfg)
		return 0;
	(void)modelFingerprint(*cfg);
	(void)cfg->compressedPadId();
	if (skipKnown)
		for (uint64_t v : cfg->engramVocabSize)
			if (v > (1ull << 40))
				return 0; // the open row-count overflow of fuzz/crashes/fuzz_model
	if ((uint64_t)cfg->layerIds.size() * cfg->orders() * cfg->nHeadPerNgram > kMaxHeadsTotal)
		return 0;
	auto layout = ModelLayout::create(*cfg);
	if (!layout)
		return 0;
	(void)layout->totalRows();
	(void)layout->totalBytes();
	for (const auto &L : layout->layers()) {
		check(L.primes.size() == layout->columns(), "a layer has the wrong number of head tables");
		check(L.multipliers.size() == layout->maxNgram(), "a layer has the wrong number of multipliers");
		for (size_t j = 0; j < L.primes.size(); j++)
			check(L.offsets[j] < L.rows || L.primes[j] == 0, "a head's first row is outside its layer");
	}
	exerciseHasher(*layout);
	return 0;
}
