// SPDX-License-Identifier: Apache-2.0
// hashing.cpp - tokens/s per core of Engram row addressing, batch (prefill) and streaming (decode).
//
// Workloads (scripts/bench_hashing.py runs the same ones in numpy and prints the ratio):
//   batch:  8 sequences x 512 tokens per call, every layer, row ids out
//   stream: 256 sequences x 1 new token per call (a decode step), state carried
// Configs: "demo" (reference default: 646400 x 2 orders, 8 heads, layers 1 and 15) and
// "27b" (Engram-27B: 2262400, 8 heads, orders 2..3, two layers); V' = 129280.
// Single-threaded; items = tokens. Pin with taskset for stable numbers.
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "hashing/hasher.hpp"

using namespace engrampool;
using namespace engrampool::hashing;

namespace {

constexpr uint64_t kVocab = 129280;

ModelConfig benchConfig(uint64_t engramVocab, uint32_t embed)
{
	ModelConfig c;
	c.name = "bench";
	c.engramVocabSize = { engramVocab, engramVocab };
	c.maxNgramSize = 3;
	c.nHeadPerNgram = 8;
	c.nEmbedPerNgram = embed;
	c.layerIds = { 1, 15 };
	c.padId = 2;
	c.tokenizerVocabSize = kVocab;
	c.compressedVocabSize = kVocab;
	c.rowFormat.valuesPerRow = embed / 8;
	return c;
}

std::vector<int64_t> randomTokens(size_t n, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	std::vector<int64_t> t(n);
	for (auto &v : t)
		v = static_cast<int64_t>(rng() % kVocab);
	return t;
}

void batch(benchmark::State &state, ModelConfig cfg, Kernel kernel)
{
	auto layout = ModelLayout::create(cfg);
	auto h = EngramHasher::create(layout.value(), kernel);
	if (!h) {
		state.SkipWithError(h.status().message().c_str());
		return;
	}
	constexpr size_t kSeqs = 8, kLen = 512;
	std::vector<int64_t> tokens = randomTokens(kSeqs * kLen, 1);
	std::vector<uint64_t> offs;
	for (size_t b = 0; b <= kSeqs; b++)
		offs.push_back(b * kLen);
	std::vector<uint64_t> out(h->outputSize(tokens.size()));
	for (auto _ : state) {
		Status s = h->hashBatch(tokens, offs, out);
		benchmark::DoNotOptimize(out.data());
		if (!s)
			state.SkipWithError(s.message().c_str());
	}
	state.SetItemsProcessed(state.iterations() * tokens.size());
	state.SetBytesProcessed(state.iterations() * out.size() * sizeof(uint64_t));
	state.SetLabel(kernelName(h->kernel()));
}

void stream(benchmark::State &state, ModelConfig cfg, Kernel kernel)
{
	auto layout = ModelLayout::create(cfg);
	auto h = EngramHasher::create(layout.value(), kernel);
	if (!h) {
		state.SkipWithError(h.status().message().c_str());
		return;
	}
	constexpr size_t kSeqs = 256, kSteps = 64;
	std::vector<int64_t> tokens = randomTokens(kSeqs * kSteps, 2);
	std::vector<uint64_t> offs;
	for (size_t b = 0; b <= kSeqs; b++)
		offs.push_back(b);
	std::vector<StreamState> states(kSeqs);
	for (auto &s : states)
		h->beginSequence(s);
	std::vector<uint64_t> out(h->outputSize(kSeqs));
	size_t step = 0;
	for (auto _ : state) {
		std::span<const int64_t> now(tokens.data() + (step++ % kSteps) * kSeqs, kSeqs);
		Status s = h->hashStream(states, now, offs, out);
		benchmark::DoNotOptimize(out.data());
		if (!s)
			state.SkipWithError(s.message().c_str());
	}
	state.SetItemsProcessed(state.iterations() * kSeqs);
	state.SetBytesProcessed(state.iterations() * out.size() * sizeof(uint64_t));
	state.SetLabel(kernelName(h->kernel()));
}

const int registered = [] {
	const std::pair<const char *, ModelConfig> configs[] = {
		{ "demo", benchConfig(646400, 512) },
		{ "27b", benchConfig(2262400, 1280) },
	};
	for (const auto &[name, cfg] : configs) {
		for (Kernel k : { Kernel::Scalar, Kernel::Avx2, Kernel::Avx512 }) {
			if (!kernelSupported(k))
				continue;
			std::string suffix = std::string(name) + "/" + kernelName(k);
			benchmark::RegisterBenchmark(("batch/" + suffix).c_str(), batch, cfg, k);
			benchmark::RegisterBenchmark(("stream/" + suffix).c_str(), stream, cfg, k);
		}
	}
	return 0;
}();

} // namespace

BENCHMARK_MAIN();
