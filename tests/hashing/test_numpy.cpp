// SPDX-License-Identifier: Apache-2.0
// test_numpy.cpp - random configs against numpy itself: multipliers, primes and hash ids.
//
// Runs /usr/bin/python3 with scripts/engram_numpy.py (numpy.random.default_rng and
// plain numpy int64 arithmetic). Skips, saying why, only when numpy is absent.
#include "hash_test_util.hpp"

#include <fstream>
#include <random>

using namespace hashtest;

namespace {

const char *kPython = "/usr/bin/python3";

bool haveNumpy(std::string *why)
{
	std::string out;
	int rc = eptest::runCommand(std::string(kPython) + " -c 'import numpy; print(numpy.__version__)'", &out);
	if (rc != 0)
		*why = "python3-numpy not importable by " + std::string(kPython) + ": " + out;
	return rc == 0;
}

} // namespace

TEST(HashNumpy, RandomConfigsMatchNumpy)
{
	std::string why;
	if (!haveNumpy(&why))
		GTEST_SKIP() << why;

	eptest::TempDir dir;
	const std::string script = eptest::sourceRoot() + "/scripts/engram_numpy.py";
	std::mt19937_64 rng(2024);
	size_t multipliers = 0, hashes = 0;

	for (int iter = 0; iter < 24; iter++) {
		const uint32_t n = 2 + rng() % 3;
		const uint32_t heads = 1 + rng() % 8;
		std::vector<uint64_t> ev;
		for (uint32_t o = 0; o + 1 < n; o++)
			ev.push_back(3 + (rng() >> (64 - (6 + rng() % 20))));
		std::vector<uint32_t> layers;
		for (uint32_t l = 0, c = 1 + rng() % 3; l < c; l++)
			layers.push_back(static_cast<uint32_t>(l * 11 + rng() % 11));
		/* V' spans numpy's 64-bit path (small V') and 32-bit path (V' > ~2^31). */
		const int vbits = iter % 3 == 0 ? 31 + rng() % 30 : 1 + rng() % 30;
		const uint64_t vocab = 2 + (rng() >> (64 - vbits));
		/* Seeds past 2^32 and 2^64 - 10007 * layer exercise multi-word SeedSequence entropy. */
		const uint64_t seed = iter % 4 == 1 ? rng() : iter % 4 == 2 ? UINT64_MAX - rng() % 1000 : rng() % 1000;
		ModelConfig cfg = makeConfig(ev, n, heads, layers, vocab, static_cast<int64_t>(rng() % std::min<uint64_t>(vocab, 1000)), seed);
		ModelLayout layout = mustLayout(cfg);
		EngramHasher h = mustHasher(layout, Kernel::Auto);

		std::vector<std::vector<int64_t>> seqs(1 + rng() % 3);
		std::vector<int64_t> tokens;
		std::vector<uint64_t> offs{ 0 };
		for (auto &s : seqs) {
			size_t len = rng() % 40;
			for (size_t i = 0; i < len; i++)
				s.push_back(static_cast<int64_t>(rng() % vocab));
			tokens.insert(tokens.end(), s.begin(), s.end());
			offs.push_back(tokens.size());
		}

		nlohmann::json req;
		req["config"] = { { "engram_vocab_size", ev },	   { "max_ngram_size", n },
				  { "n_head_per_ngram", heads },   { "layer_ids", layers },
				  { "tokenizer_vocab_size", vocab }, { "pad_id", cfg.padId },
				  { "seed", seed } };
		req["sequences"] = seqs;
		const std::string path = dir.file("req" + std::to_string(iter) + ".json");
		std::ofstream(path) << req.dump();
		std::string out;
		ASSERT_EQ(eptest::runCommand(std::string(kPython) + " " + script + " " + path, &out, false), 0) << out;
		nlohmann::json res = nlohmann::json::parse(out);

		std::vector<uint64_t> got(h.outputSize(tokens.size()));
		ASSERT_TRUE(h.hashBatch(tokens, offs, got, HashOutput::HashIds).isOk());
		const uint32_t J = layout.columns();
		for (size_t l = 0; l < layers.size(); l++) {
			const auto &e = res["layers"][l];
			const auto &L = layout.layers()[l];
			ASSERT_EQ(L.multipliers, e["multipliers"].get<std::vector<uint64_t>>())
				<< "seed " << seed << " layer " << L.layerId << " V' " << vocab;
			ASSERT_EQ(L.primes, e["primes"].get<std::vector<uint64_t>>());
			ASSERT_EQ(L.offsets, e["offsets"].get<std::vector<uint64_t>>());
			multipliers += n;
			size_t t = 0;
			for (size_t b = 0; b < seqs.size(); b++)
				for (size_t i = 0; i < seqs[b].size(); i++, t++)
					for (uint32_t j = 0; j < J; j++) {
						ASSERT_EQ(got[(l * tokens.size() + t) * J + j],
							  e["hash_ids"][b][i][j].get<uint64_t>())
							<< "config " << iter << " layer " << L.layerId;
						hashes++;
					}
		}
	}
	std::cout << multipliers << " multipliers and " << hashes << " hash ids equal numpy's\n";
}
