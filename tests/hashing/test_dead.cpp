// SPDX-License-Identifier: Apache-2.0
// test_dead.cpp - dead tokens (DeepSeek-V4.1): batch and streaming against numpy, every kernel.
//
// The reference is scripts/engram_numpy.py, which restates DEEPSEEK_V41.md's blocking
// rule as one mask per lookback (primes from python3-sympy where installed). The C++
// side is hashed in batch and in random streaming chunkings (decode steps of 0..few
// tokens and long prefill chunks), so dead spans cross step boundaries.
#include "hash_test_util.hpp"

#include <fstream>
#include <random>

using namespace hashtest;

namespace {

const char *kPython = "/usr/bin/python3";

bool haveNumpy(std::string *why)
{
	std::string out;
	int rc = eptest::runCommand(std::string(kPython) + " -c 'import numpy'", &out);
	if (rc != 0)
		*why = "python3-numpy not importable by " + std::string(kPython) + ": " + out;
	return rc == 0;
}

struct Batch {
	std::vector<std::vector<int64_t>> seqs;
	std::vector<std::vector<uint8_t>> dead;
	std::vector<int64_t> tokens;
	std::vector<uint8_t> flags;
	std::vector<uint64_t> offsets{ 0 };
};

// Random sequences with dead spans (image-like runs, single dead tokens, dead at the
// start and the end, all-dead sequences). Dead positions hold ids outside the vocabulary
// now and then: they must be neither read nor checked.
Batch randomBatch(std::mt19937_64 &rng, size_t seqs, size_t maxLen, uint64_t vocab)
{
	Batch b;
	for (size_t s = 0; s < seqs; s++) {
		const size_t len = rng() % (maxLen + 1);
		std::vector<int64_t> t(len);
		std::vector<uint8_t> d(len, 0);
		const int style = rng() % 5;
		for (size_t i = 0; i < len; i++)
			t[i] = static_cast<int64_t>(rng() % vocab);
		if (style == 4)
			std::fill(d.begin(), d.end(), 1);
		else
			for (size_t i = 0; i < len;) {
				if (rng() % 8 == 0) {
					const size_t run = 1 + (rng() % 3 == 0 ? rng() % 40 : rng() % 3);
					for (size_t k = i; k < std::min(len, i + run); k++)
						d[k] = 1;
					i += run;
				} else {
					i++;
				}
			}
		for (size_t i = 0; i < len; i++)
			if (d[i] && rng() % 4 == 0)
				t[i] = static_cast<int64_t>(vocab + rng() % 1000); // ignored
		b.seqs.push_back(t);
		b.dead.push_back(d);
		b.tokens.insert(b.tokens.end(), t.begin(), t.end());
		b.flags.insert(b.flags.end(), d.begin(), d.end());
		b.offsets.push_back(b.tokens.size());
	}
	return b;
}

// Feed the batch to hashStream in random chunks; returns the output in batch layout.
std::vector<uint64_t> streamed(const EngramHasher &h, const Batch &full, std::mt19937_64 &rng, HashOutput what)
{
	const size_t B = full.seqs.size(), T = full.tokens.size(), L = h.layerCount();
	const uint32_t J = h.columns();
	std::vector<StreamState> states(B);
	for (auto &s : states)
		h.beginSequence(s);
	std::vector<size_t> fed(B, 0);
	std::vector<uint64_t> res(h.outputSize(T), ~0ULL);
	for (bool busy = true; busy;) {
		busy = false;
		std::vector<int64_t> tok;
		std::vector<uint8_t> dead;
		std::vector<uint64_t> off{ 0 }, first;
		for (size_t b = 0; b < B; b++) {
			const size_t len = full.seqs[b].size();
			const size_t n = std::min<size_t>(len - fed[b], rng() % 4 == 0 ? rng() % 300 : rng() % 3);
			first.push_back(full.offsets[b] + fed[b]);
			for (size_t i = 0; i < n; i++) {
				tok.push_back(full.seqs[b][fed[b] + i]);
				dead.push_back(full.dead[b][fed[b] + i]);
			}
			off.push_back(tok.size());
			fed[b] += n;
			busy |= fed[b] < len;
		}
		std::vector<uint64_t> out(h.outputSize(tok.size()));
		Status s = h.hashStream(states, tok, off, out, what, dead);
		EXPECT_TRUE(s.isOk()) << s.message();
		const size_t Ts = tok.size();
		for (size_t b = 0; b < B; b++)
			for (size_t i = off[b]; i < off[b + 1]; i++)
				for (size_t l = 0; l < L; l++)
					std::copy_n(&out[(l * Ts + i) * J], J, &res[(l * T + first[b] + i - off[b]) * J]);
	}
	return res;
}

} // namespace

TEST(HashDead, BatchAndStreamingMatchNumpy)
{
	std::string why;
	if (!haveNumpy(&why))
		GTEST_SKIP() << why;
	eptest::TempDir dir;
	const std::string script = eptest::sourceRoot() + "/scripts/engram_numpy.py";
	std::mt19937_64 rng(4141);
	size_t ids = 0, deadTokens = 0;
	std::string primeSource;

	for (int iter = 0; iter < 16; iter++) {
		const uint32_t n = 2 + rng() % 4;
		const uint32_t heads = iter % 4 == 0 ? 8 : 1 + rng() % 9;
		std::vector<uint64_t> ev;
		for (uint32_t o = 0; o + 1 < n; o++)
			ev.push_back(3 + (rng() >> (64 - (4 + rng() % 22))));
		std::vector<uint32_t> layers;
		for (uint32_t l = 0, c = 1 + rng() % 2; l < c; l++)
			layers.push_back(static_cast<uint32_t>(l * 13 + rng() % 13));
		const uint64_t vocab = 3 + (rng() >> (64 - (2 + rng() % 20)));
		const int64_t pad = static_cast<int64_t>(rng() % vocab);
		ModelConfig cfg = makeConfig(ev, n, heads, layers, vocab, pad, rng() % 1000);
		ModelLayout layout = mustLayout(cfg);
		Batch b = randomBatch(rng, 1 + rng() % 4, iter % 3 == 0 ? 400 : 60, vocab);

		nlohmann::json req;
		req["config"] = { { "engram_vocab_size", ev },	    { "max_ngram_size", n },
				  { "n_head_per_ngram", heads },    { "layer_ids", layers },
				  { "tokenizer_vocab_size", vocab }, { "pad_id", pad },
				  { "seed", cfg.seed } };
		req["sequences"] = b.seqs;
		req["dead"] = b.dead;
		const std::string path = dir.file("req" + std::to_string(iter) + ".json");
		std::ofstream(path) << req.dump();
		std::string out;
		ASSERT_EQ(eptest::runCommand(std::string(kPython) + " " + script + " " + path, &out, false), 0) << out;
		nlohmann::json res = nlohmann::json::parse(out);
		primeSource = res["prime_source"].get<std::string>();

		const size_t T = b.tokens.size();
		const uint32_t J = layout.columns();
		std::vector<uint64_t> expHash(layout.layers().size() * T * J), expRow(expHash.size());
		for (size_t l = 0; l < layers.size(); l++) {
			const auto &e = res["layers"][l];
			ASSERT_EQ(layout.layers()[l].primes, e["primes"].get<std::vector<uint64_t>>());
			size_t t = 0;
			for (size_t s = 0; s < b.seqs.size(); s++)
				for (size_t i = 0; i < b.seqs[s].size(); i++, t++)
					for (uint32_t j = 0; j < J; j++) {
						uint64_t v = e["hash_ids"][s][i][j].get<uint64_t>();
						expHash[(l * T + t) * J + j] = v;
						expRow[(l * T + t) * J + j] = v + layout.layers()[l].offsets[j];
					}
		}
		for (Kernel k : kernels()) {
			EngramHasher h = mustHasher(layout, k);
			std::vector<uint64_t> got(h.outputSize(T));
			Status s = h.hashBatch(b.tokens, b.offsets, got, HashOutput::HashIds, b.flags);
			ASSERT_TRUE(s.isOk()) << s.message();
			ASSERT_EQ(got, expHash) << kernelName(k) << " batch, config " << iter;
			ASSERT_TRUE(h.hashBatch(b.tokens, b.offsets, got, HashOutput::RowIds, b.flags).isOk());
			ASSERT_EQ(got, expRow) << kernelName(k) << " batch rows, config " << iter;
			for (int rep = 0; rep < 3; rep++) {
				ASSERT_EQ(streamed(h, b, rng, HashOutput::RowIds), expRow)
					<< kernelName(k) << " streaming, config " << iter << " chunking " << rep;
			}
			ASSERT_EQ(streamed(h, b, rng, HashOutput::HashIds), expHash) << kernelName(k);
			ids += 2 * got.size();
		}
		deadTokens += std::count(b.flags.begin(), b.flags.end(), 1);
	}
	std::cout << ids << " ids with " << deadTokens << " dead tokens equal numpy's (primes: " << primeSource << ")\n";
}

TEST(HashDead, DeadPositionHashesPadAndBlocksLaterLookbacks)
{
	/* The reference geometry, identity map, pad 2. */
	ModelLayout layout = mustLayout(makeConfig({ 646400, 646400, 646400 }, 4, 8, { 1, 14 }, 129280));
	const uint32_t J = layout.columns();
	for (Kernel k : kernels()) {
		EngramHasher h = mustHasher(layout, k);
		std::vector<int64_t> tok{ 11, 12, 13, 129264, 129264, 14, 15, 16, 17 };
		std::vector<uint8_t> dead{ 0, 0, 0, 1, 1, 0, 0, 0, 0 };
		std::vector<uint64_t> got(h.outputSize(tok.size()));
		ASSERT_TRUE(h.hashBatch(tok, {}, got, HashOutput::RowIds, dead).isOk());

		/* Dead positions: the ids of a window of pad' only (= a pad token at a sequence start). */
		std::vector<int64_t> padOnly{ 2 };
		std::vector<uint64_t> padIds(h.outputSize(1));
		ASSERT_TRUE(h.hashBatch(padOnly, {}, padIds).isOk());
		/* After the span: as if the sequence started at position 5. */
		std::vector<int64_t> after{ 14, 15, 16, 17 }, before{ 11, 12, 13 };
		std::vector<uint64_t> afterIds(h.outputSize(4)), beforeIds(h.outputSize(3));
		ASSERT_TRUE(h.hashBatch(after, {}, afterIds).isOk());
		ASSERT_TRUE(h.hashBatch(before, {}, beforeIds).isOk());
		for (size_t l = 0; l < 2; l++)
			for (uint32_t j = 0; j < J; j++) {
				for (size_t t = 0; t < 3; t++)
					EXPECT_EQ(got[(l * 9 + t) * J + j], beforeIds[(l * 3 + t) * J + j]);
				for (size_t t : { 3, 4 })
					EXPECT_EQ(got[(l * 9 + t) * J + j], padIds[l * J + j]) << kernelName(k);
				for (size_t t = 0; t < 4; t++)
					EXPECT_EQ(got[(l * 9 + 5 + t) * J + j], afterIds[(l * 4 + t) * J + j]) << kernelName(k);
			}

		/* No flags and all-zero flags agree. */
		std::vector<uint64_t> plain(got.size()), zeros(got.size());
		ASSERT_TRUE(h.hashBatch(tok, {}, plain).isOk());
		ASSERT_TRUE(h.hashBatch(tok, {}, zeros, HashOutput::RowIds, std::vector<uint8_t>(tok.size(), 0)).isOk());
		EXPECT_EQ(plain, zeros);
	}
}

TEST(HashDead, DeadCarriesAcrossDecodeSteps)
{
	ModelLayout layout = mustLayout(makeConfig({ 5003, 7001, 9001 }, 4, 4, { 3 }, 1000, 7));
	EngramHasher h = mustHasher(layout, Kernel::Auto);
	const uint32_t J = layout.columns();
	/* One token per step: 1 2 [D] 3 4 5, the dead token in a step of its own. */
	std::vector<int64_t> all{ 1, 2, 999999, 3, 4, 5 };
	std::vector<uint8_t> dead{ 0, 0, 1, 0, 0, 0 };
	std::vector<uint64_t> ref(h.outputSize(all.size()));
	ASSERT_TRUE(h.hashBatch(all, {}, ref, HashOutput::RowIds, dead).isOk());
	std::vector<StreamState> st(1);
	h.beginSequence(st[0]);
	for (size_t t = 0; t < all.size(); t++) {
		std::vector<uint64_t> out(h.outputSize(1));
		std::vector<uint64_t> off{ 0, 1 };
		ASSERT_TRUE(h.hashStream(st, std::span(&all[t], 1), off, out, HashOutput::RowIds, std::span(&dead[t], 1)).isOk());
		for (uint32_t j = 0; j < J; j++)
			EXPECT_EQ(out[j], ref[t * J + j]) << "step " << t;
	}
	/* The state after the dead token holds pad' only. */
	StreamState s;
	h.beginSequence(s);
	std::vector<uint64_t> out(h.outputSize(3)), off{ 0, 3 };
	std::vector<int64_t> three{ 1, 2, 0 };
	std::vector<uint8_t> d3{ 0, 0, 1 };
	ASSERT_TRUE(h.hashStream(std::span(&s, 1), three, off, out, HashOutput::RowIds, d3).isOk());
	for (size_t i = 0; i < 3; i++)
		EXPECT_EQ(s.recent[i], 7);
}

TEST(HashDead, FlagsOfAnotherLengthAreRejectedAndDeadIdsUnchecked)
{
	ModelLayout layout = mustLayout(makeConfig({ 5000, 7000 }, 3, 4, { 1 }, 1000));
	EngramHasher h = mustHasher(layout, Kernel::Auto);
	std::vector<int64_t> tok{ 1, 5000, 3 };
	std::vector<uint64_t> out(h.outputSize(3), 0);
	std::vector<uint8_t> shortFlags{ 0, 1 };
	Status s = h.hashBatch(tok, {}, out, HashOutput::RowIds, shortFlags);
	EXPECT_EQ(s.code(), -EINVAL);
	EXPECT_NE(s.message().find("2 dead flags for 3 tokens"), std::string::npos) << s.message();
	std::vector<StreamState> st(1);
	h.beginSequence(st[0]);
	auto before = st[0].recent;
	EXPECT_EQ(h.hashStream(st, tok, {}, out, HashOutput::RowIds, shortFlags).code(), -EINVAL);
	EXPECT_EQ(st[0].recent, before);
	EXPECT_EQ(std::count(out.begin(), out.end(), 0u), static_cast<long>(out.size()));

	/* 5000 is out of vocabulary: an error when live, ignored when dead. */
	EXPECT_EQ(h.hashBatch(tok, {}, out).code(), EP_E_TOKEN);
	std::vector<uint8_t> flags{ 0, 1, 0 };
	EXPECT_TRUE(h.hashBatch(tok, {}, out, HashOutput::RowIds, flags).isOk());
	EXPECT_TRUE(h.hashStream(st, tok, {}, out, HashOutput::RowIds, flags).isOk());
}
