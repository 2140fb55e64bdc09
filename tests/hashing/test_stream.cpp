// SPDX-License-Identifier: Apache-2.0
// test_stream.cpp - streaming equals batch, kernels agree, vocab maps, bad input errors.
#include "hash_test_util.hpp"

#include <random>

using namespace hashtest;

namespace {

struct Batch {
	std::vector<int64_t> tokens;
	std::vector<uint64_t> offsets{ 0 };
};

Batch randomBatch(std::mt19937_64 &rng, size_t seqs, size_t maxLen, uint64_t vocab)
{
	Batch b;
	for (size_t s = 0; s < seqs; s++) {
		size_t len = rng() % (maxLen + 1);
		for (size_t i = 0; i < len; i++)
			b.tokens.push_back(static_cast<int64_t>(rng() % vocab));
		b.offsets.push_back(b.tokens.size());
	}
	return b;
}

ModelConfig randomConfig(std::mt19937_64 &rng)
{
	const uint32_t n = 2 + rng() % 4;        // orders 2..5
	const uint32_t heads = rng() % 6 == 0 ? 16 : 1 + rng() % 10; // uniform and mixed SIMD layouts
	std::vector<uint64_t> ev;
	for (uint32_t o = 0; o + 1 < n; o++) {
		/* Small tables (two-round reduction) and large ones. */
		const int bits = 4 + rng() % 26;
		ev.push_back(2 + (rng() >> (64 - bits)));
	}
	std::vector<uint32_t> layers;
	for (uint32_t l = 0, count = 1 + rng() % 3; l < count; l++)
		layers.push_back(static_cast<uint32_t>(l * 7 + rng() % 5));
	const uint64_t vocab = 2 + (rng() >> (64 - (2 + rng() % 30)));
	return makeConfig(ev, n, heads, layers, vocab, static_cast<int64_t>(rng() % vocab), rng() % 100000);
}

} // namespace

TEST(HashStream, KernelsAgreeOnRandomConfigs)
{
	std::mt19937_64 rng(11);
	for (int iter = 0; iter < 60; iter++) {
		ModelConfig cfg = randomConfig(rng);
		ModelLayout layout = mustLayout(cfg);
		Batch b = randomBatch(rng, 1 + rng() % 5, 700, layout.compressedVocab());
		std::vector<uint64_t> ref;
		for (Kernel k : kernels()) {
			EngramHasher h = mustHasher(layout, k);
			std::vector<uint64_t> out(h.outputSize(b.tokens.size()));
			ASSERT_TRUE(h.hashBatch(b.tokens, b.offsets, out).isOk());
			if (k == Kernel::Scalar)
				ref = out;
			else
				ASSERT_EQ(out, ref) << kernelName(k) << " config " << iter << " heads " << cfg.nHeadPerNgram
						    << " N " << cfg.maxNgramSize;
		}
	}
}

TEST(HashStream, StreamingEqualsBatch)
{
	std::mt19937_64 rng(12);
	for (int iter = 0; iter < 40; iter++) {
		ModelConfig cfg = iter == 0 ? makeConfig({ 2262400, 2262400 }, 3, 8, { 1, 15 }, 129280)
					    : randomConfig(rng);
		ModelLayout layout = mustLayout(cfg);
		const size_t B = 1 + rng() % 6;
		Batch full = randomBatch(rng, B, 600, layout.compressedVocab());
		const size_t T = full.tokens.size();
		const uint32_t J = layout.columns();
		const size_t L = layout.layers().size();

		for (Kernel k : kernels()) {
			EngramHasher h = mustHasher(layout, k);
			std::vector<uint64_t> batchOut(h.outputSize(T));
			ASSERT_TRUE(h.hashBatch(full.tokens, full.offsets, batchOut).isOk());

			/* Feed every sequence in random chunk sizes (zero allowed) until all are done. */
			std::vector<StreamState> states(B);
			for (auto &s : states)
				h.beginSequence(s);
			std::vector<size_t> fed(B, 0);
			std::vector<uint64_t> streamOut(batchOut.size(), ~0ULL);
			for (bool busy = true; busy;) {
				busy = false;
				Batch step;
				std::vector<std::pair<size_t, size_t>> where; // (sequence, first token index)
				for (size_t b = 0; b < B; b++) {
					const size_t len = full.offsets[b + 1] - full.offsets[b];
					size_t n = std::min<size_t>(len - fed[b], rng() % 4 == 0 ? rng() % 300 : rng() % 3);
					where.push_back({ b, full.offsets[b] + fed[b] });
					for (size_t i = 0; i < n; i++)
						step.tokens.push_back(full.tokens[full.offsets[b] + fed[b] + i]);
					step.offsets.push_back(step.tokens.size());
					fed[b] += n;
					busy |= fed[b] < len;
				}
				std::vector<uint64_t> out(h.outputSize(step.tokens.size()));
				ASSERT_TRUE(h.hashStream(states, step.tokens, step.offsets, out).isOk());
				const size_t Ts = step.tokens.size();
				for (size_t b = 0; b < B; b++)
					for (size_t i = step.offsets[b]; i < step.offsets[b + 1]; i++)
						for (size_t l = 0; l < L; l++)
							std::copy_n(&out[(l * Ts + i) * J], J,
								    &streamOut[(l * T + where[b].second + i - step.offsets[b]) * J]);
			}
			ASSERT_EQ(streamOut, batchOut) << kernelName(k) << " config " << iter;
		}
	}
}

TEST(HashStream, SequencesStartAndEndIndependently)
{
	ModelConfig cfg = makeConfig({ 646400, 646400 }, 3, 8, { 1, 15 }, 129280);
	ModelLayout layout = mustLayout(cfg);
	EngramHasher h = mustHasher(layout, Kernel::Auto);
	const uint32_t J = layout.columns();

	/* Slot 0 continues a sequence, slot 1 restarts: restarting must equal a fresh sequence. */
	std::vector<StreamState> st(2);
	h.beginSequence(st[0]);
	h.beginSequence(st[1]);
	std::vector<int64_t> first{ 10, 20, 30, 40, 50, 60 };
	std::vector<uint64_t> off{ 0, 3, 6 }, out(h.outputSize(6));
	ASSERT_TRUE(h.hashStream(st, first, off, out).isOk());
	h.beginSequence(st[1]);
	std::vector<int64_t> next{ 70, 80 };
	std::vector<uint64_t> off2{ 0, 1, 2 }, out2(h.outputSize(2));
	ASSERT_TRUE(h.hashStream(st, next, off2, out2).isOk());

	std::vector<int64_t> seq0{ 10, 20, 30, 70 }, seq1{ 80 };
	std::vector<uint64_t> ref0(h.outputSize(4)), ref1(h.outputSize(1));
	ASSERT_TRUE(h.hashBatch(seq0, {}, ref0).isOk());
	ASSERT_TRUE(h.hashBatch(seq1, {}, ref1).isOk());
	for (size_t l = 0; l < 2; l++) {
		for (uint32_t j = 0; j < J; j++) {
			EXPECT_EQ(out2[(l * 2 + 0) * J + j], ref0[(l * 4 + 3) * J + j]);
			EXPECT_EQ(out2[(l * 2 + 1) * J + j], ref1[(l * 1 + 0) * J + j]);
		}
	}
}

// The vocabulary check reads 8 ids per step where the CPU has AVX-512: one bad id at any
// position of batches of any length (full vectors and every tail) must still be found,
// with every kernel, and an id just under the limit must pass.
TEST(HashStream, OutOfVocabularyIsFoundAtEveryPositionAndLength)
{
	ModelConfig cfg = makeConfig({ 5000, 7000 }, 3, 4, { 1, 15 }, 1000);
	ModelLayout layout = mustLayout(cfg);
	for (Kernel k : { Kernel::Scalar, Kernel::Avx2, Kernel::Avx512 }) {
		auto hk = EngramHasher::create(layout, k);
		if (!hk)
			continue; // this CPU lacks the kernel: the other kernels still run the check
		EngramHasher &h = hk.value();
		for (size_t n = 1; n <= 27; n++) {
			std::vector<int64_t> tok(n);
			for (size_t i = 0; i < n; i++)
				tok[i] = (int64_t)((i * 37) % 1000);
			std::vector<uint64_t> out(h.outputSize(n));
			ASSERT_TRUE(h.hashBatch(tok, {}, out).isOk()) << "n " << n;
			tok[n - 1] = 999;
			ASSERT_TRUE(h.hashBatch(tok, {}, out).isOk()) << "999 is the last id inside, n " << n;
			for (size_t at = 0; at < n; at++) {
				auto bad = tok;
				bad[at] = 1000 + (int64_t)at;
				Status s = h.hashBatch(bad, {}, out);
				ASSERT_EQ(s.code(), EP_E_TOKEN) << kernelName(k) << " n " << n << " at " << at;
				EXPECT_NE(s.message().find(std::to_string(1000 + at)), std::string::npos) << s.message();
			}
		}
	}
}

TEST(HashStream, OutOfVocabularyIsAnErrorNamingIdAndLimit)
{
	ModelConfig cfg = makeConfig({ 5000, 7000 }, 3, 4, { 1, 15 }, 1000);
	ModelLayout layout = mustLayout(cfg);
	EngramHasher h = mustHasher(layout, Kernel::Auto);
	std::vector<int64_t> tok{ 1, 2, 3, 999, 5, 1000, 7 };
	std::vector<uint64_t> off{ 0, 4, 7 };
	std::vector<uint64_t> out(h.outputSize(tok.size()), 0);
	Status s = h.hashBatch(tok, off, out);
	EXPECT_EQ(s.code(), EP_E_TOKEN);
	EXPECT_NE(s.message().find("1000"), std::string::npos) << s.message();
	EXPECT_NE(s.message().find("< 1000"), std::string::npos) << s.message();
	EXPECT_NE(s.message().find("sequence 1, token 1"), std::string::npos) << s.message();
	EXPECT_EQ(std::count(out.begin(), out.end(), 0u), static_cast<long>(out.size())) << "wrote on error";

	/* Streaming leaves states untouched on error. */
	std::vector<StreamState> st(2);
	h.beginSequence(st[0]);
	h.beginSequence(st[1]);
	auto before = st[1].recent;
	EXPECT_EQ(h.hashStream(st, tok, off, out).code(), EP_E_TOKEN);
	EXPECT_EQ(st[1].recent, before);

	/* Clip policy: ids at or above the limit hash as the last lookup entry. */
	cfg.clipOutOfVocab = true;
	EngramHasher hc = mustHasher(mustLayout(cfg), Kernel::Auto);
	std::vector<int64_t> big{ 5, 1000, 123456789 }, clipped{ 5, 999, 999 };
	std::vector<uint64_t> a(hc.outputSize(3)), b(hc.outputSize(3));
	ASSERT_TRUE(hc.hashBatch(big, {}, a).isOk());
	ASSERT_TRUE(hc.hashBatch(clipped, {}, b).isOk());
	EXPECT_EQ(a, b);
}

TEST(HashStream, BadCallsAreRejected)
{
	ModelLayout layout = mustLayout(makeConfig({ 5000, 7000 }, 3, 4, { 1 }, 1000));
	EngramHasher h = mustHasher(layout, Kernel::Auto);
	std::vector<int64_t> tok{ 1, 2, 3 };
	std::vector<uint64_t> small(h.outputSize(3) - 1), out(h.outputSize(3));
	EXPECT_EQ(h.hashBatch(tok, {}, small).code(), -EINVAL);
	std::vector<uint64_t> badOff{ 0, 5 }, decreasing{ 0, 2, 1, 3 };
	EXPECT_EQ(h.hashBatch(tok, badOff, out).code(), -EINVAL);
	EXPECT_EQ(h.hashBatch(tok, decreasing, out).code(), -EINVAL);
	std::vector<StreamState> st(2);
	std::vector<uint64_t> one{ 0, 3 };
	EXPECT_EQ(h.hashStream(st, tok, one, out).code(), -EINVAL);
}

TEST(HashStream, VocabMapCompressesAndNegativesPassThrough)
{
	/* A map folding raw ids onto 5 compressed ids; pad 2 maps to 4. */
	ModelConfig cfg = makeConfig({ 64, 64 }, 3, 8, { 0 }, 8, 2);
	cfg.vocabMap = { 0, 1, 4, 1, 2, 3, 0, 2 };
	cfg.compressedVocabSize = 5;
	ModelLayout layout = mustLayout(cfg);
	EXPECT_EQ(layout.compressedPad(), 4);
	EXPECT_EQ(layout.compressedVocab(), 5u);
	EXPECT_EQ(layout.halfBound(), static_cast<uint64_t>(INT64_MAX) / 5 / 2);

	ModelConfig ident = cfg;
	ident.vocabMap.clear();
	ident.tokenizerVocabSize = 5;
	ident.padId = 4;
	ModelLayout identLayout = mustLayout(ident);

	std::vector<int64_t> raw{ 0, 7, 3, 2, 6, 5, -3 };
	std::vector<int64_t> mapped{ 0, 2, 1, 4, 0, 3, -3 };
	for (Kernel k : kernels()) {
		EngramHasher h = mustHasher(layout, k);
		EngramHasher hi = mustHasher(identLayout, k);
		std::vector<int64_t> c(raw.size());
		ASSERT_TRUE(h.compress(raw, c).isOk());
		EXPECT_EQ(c, mapped);
		std::vector<uint64_t> a(h.outputSize(raw.size())), b(a.size());
		ASSERT_TRUE(h.hashBatch(raw, {}, a).isOk());
		ASSERT_TRUE(hi.hashBatch(mapped, {}, b).isOk());
		EXPECT_EQ(a, b) << kernelName(k);
		/* The negative id hashes with floor modulo: every id is within its head. */
		const auto &L = layout.layers()[0];
		for (size_t t = 0; t < raw.size(); t++)
			for (uint32_t j = 0; j < layout.columns(); j++) {
				uint64_t row = a[t * layout.columns() + j];
				EXPECT_GE(row, L.offsets[j]);
				EXPECT_LT(row, L.offsets[j] + L.primes[j]);
			}
	}
}

TEST(HashStream, InvalidLayoutsNameTheField)
{
	auto err = [](ModelConfig c) { return ModelLayout::create(c).status().message(); };
	ModelConfig ok = makeConfig({ 5000, 7000 }, 3, 4, { 1, 15 }, 1000);
	ModelConfig c = ok;
	c.layerIds.clear();
	EXPECT_NE(err(c).find("layer_ids"), std::string::npos);
	c = ok;
	c.layerIds = { 3, 3 };
	EXPECT_NE(err(c).find("duplicate"), std::string::npos);
	c = ok;
	c.engramVocabSize = { 5000 };
	EXPECT_NE(err(c).find("engram_vocab_size"), std::string::npos);
	c = ok;
	c.maxNgramSize = 1;
	EXPECT_NE(err(c).find("max_ngram_size"), std::string::npos);
	c = ok;
	c.nHeadPerNgram = 0;
	EXPECT_NE(err(c).find("n_head_per_ngram"), std::string::npos);
	EXPECT_EQ(ModelLayout::create(c).code(), EP_E_MODEL);
}

TEST(HashStream, LayoutSizesAndFingerprint)
{
	ModelConfig cfg = makeConfig({ 2262400, 2262400 }, 3, 8, { 1, 15 }, 129280);
	cfg.nEmbedPerNgram = 640;
	cfg.rowFormat.valuesPerRow = 80;
	cfg.rowFormat.dtype = Dtype::Bf16;
	ModelLayout a = mustLayout(cfg);
	ASSERT_EQ(a.layers().size(), 2u);
	for (auto &L : a.layers()) {
		EXPECT_EQ(L.primes.size(), 16u);
		EXPECT_EQ(L.tableBytes, L.rows * 160);
		EXPECT_EQ(L.offsets.back() + L.primes.back(), L.rows);
	}
	EXPECT_EQ(a.totalBytes(), a.totalRows() * 160);
	cfg.seed = 1;
	ModelLayout b = mustLayout(cfg);
	EXPECT_NE(a.fingerprint(), b.fingerprint());
	EXPECT_NE(a.layers()[0].multipliers, b.layers()[0].multipliers);
}
