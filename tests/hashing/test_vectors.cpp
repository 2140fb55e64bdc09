// SPDX-License-Identifier: Apache-2.0
// test_vectors.cpp - every vector of engram_hash_cases.json (made by the reference code) matches.
#include "hash_test_util.hpp"

#include "hashing/numpy_rng.hpp"
#include "hashing/primes.hpp"

using namespace hashtest;

namespace {

ModelConfig configFromJson(const nlohmann::json &c)
{
	std::vector<uint64_t> ev;
	const uint32_t n = c["max_ngram_size"];
	if (c["engram_vocab_size"].is_array())
		ev = c["engram_vocab_size"].get<std::vector<uint64_t>>();
	else
		ev.assign(n - 1, c["engram_vocab_size"].get<uint64_t>());
	return makeConfig(ev, n, c["n_head_per_ngram"], c["layer_ids"].get<std::vector<uint32_t>>(),
			  c["tokenizer_vocab_size"], c["pad_id"], c["seed"], c["n_embed_per_ngram"]);
}

} // namespace

TEST(HashVectors, Pcg64RawOutputs)
{
	auto v = loadVectors();
	ASSERT_FALSE(v["pcg64_raw_first4"].empty());
	for (auto &[seed, outs] : v["pcg64_raw_first4"].items()) {
		Pcg64 rng = defaultRng(std::stoull(seed));
		for (uint64_t expect : outs.get<std::vector<uint64_t>>())
			EXPECT_EQ(rng.next64(), expect) << "seed " << seed;
	}
}

TEST(HashVectors, MultiplierVectors)
{
	auto v = loadVectors();
	size_t n32 = 0, n64 = 0;
	for (auto &mv : v["multiplier_vectors"]) {
		const uint64_t vocab = mv["tokenizer_vocab_size"];
		const uint64_t half = mv["half_bound"];
		EXPECT_EQ(multiplierHalfBound(vocab), half);
		auto m = layerMultipliers(mv["seed"], mv["layer_id"], vocab, mv["max_ngram_size"]);
		EXPECT_EQ(m, mv["multipliers"].get<std::vector<uint64_t>>())
			<< "seed " << mv["seed"] << " layer " << mv["layer_id"] << " V' " << vocab;
		(half - 1 <= 0xffffffffULL ? n32 : n64)++;
	}
	/* The file must exercise both of numpy's bounded paths. */
	EXPECT_GT(n32, 0u);
	EXPECT_GT(n64, 0u);
	std::cout << v["multiplier_vectors"].size() << " multiplier vectors (" << n32
		  << " on the 32-bit path)\n";
}

TEST(HashVectors, PrimeTables)
{
	auto v = loadVectors();
	ASSERT_FALSE(v["prime_tables"].empty());
	for (auto &[name, t] : v["prime_tables"].items()) {
		const uint32_t heads = t["n_head_per_ngram"];
		ModelConfig c = makeConfig(t["engram_vocab_size"].get<std::vector<uint64_t>>(),
					   t["max_ngram_size"], heads,
					   t["layer_ids"].get<std::vector<uint32_t>>(), 1000);
		auto primes = headPrimes(c);
		auto rows = tableRows(c);
		for (size_t l = 0; l < c.layerIds.size(); l++) {
			const std::string id = std::to_string(c.layerIds[l]);
			EXPECT_EQ(primes[l], t["primes"][id].get<std::vector<std::vector<uint64_t>>>()) << name;
			EXPECT_EQ(rows[l], t["rows_per_layer"][id].get<uint64_t>()) << name;
			for (auto &order : primes[l])
				for (uint64_t p : order)
					EXPECT_TRUE(isPrime(p));
		}
	}
}

TEST(HashVectors, CasesLayoutHashAndRows)
{
	auto v = loadVectors();
	ASSERT_FALSE(v["cases"].empty());
	size_t checked = 0;
	for (auto &cs : v["cases"]) {
		const std::string name = cs["name"];
		ModelConfig cfg = configFromJson(cs["config"]);
		ModelLayout layout = mustLayout(cfg);

		EXPECT_EQ(layout.halfBound(), cs["derived"]["half_bound"].get<uint64_t>()) << name;
		EXPECT_EQ(layout.compressedPad(), cs["derived"]["compressed_pad_id"].get<int64_t>()) << name;
		for (size_t l = 0; l < cfg.layerIds.size(); l++) {
			const auto &L = layout.layers()[l];
			const auto &e = cs["layers"][std::to_string(L.layerId)];
			EXPECT_EQ(L.multipliers, e["multipliers"].get<std::vector<uint64_t>>()) << name;
			std::vector<uint64_t> flat;
			for (auto &o : e["head_primes_per_order"])
				for (uint64_t p : o.get<std::vector<uint64_t>>())
					flat.push_back(p);
			EXPECT_EQ(L.primes, flat) << name;
			EXPECT_EQ(L.offsets, e["head_offsets"].get<std::vector<uint64_t>>()) << name;
			EXPECT_EQ(L.rows, e["total_rows"].get<uint64_t>()) << name;
			EXPECT_EQ(cfg.headDim(), e["embedding_dim_per_head"].get<uint32_t>()) << name;
		}

		const uint32_t J = layout.columns();
		for (Kernel k : kernels()) {
			EngramHasher h = mustHasher(layout, k);
			for (size_t batch = 0; batch < cs["inputs"].size(); batch++) {
				/* One batch of the reference: [B][T] (all sequences the same length). */
				const auto seqs = cs["inputs"][batch].get<std::vector<std::vector<int64_t>>>();
				std::vector<int64_t> tokens;
				std::vector<uint64_t> offs{ 0 };
				for (auto &s : seqs) {
					tokens.insert(tokens.end(), s.begin(), s.end());
					offs.push_back(tokens.size());
				}
				std::vector<uint64_t> hashes(h.outputSize(tokens.size()));
				std::vector<uint64_t> rows(h.outputSize(tokens.size()));
				ASSERT_TRUE(h.hashBatch(tokens, offs, hashes, HashOutput::HashIds).isOk());
				ASSERT_TRUE(h.hashBatch(tokens, offs, rows, HashOutput::RowIds).isOk());

				for (size_t l = 0; l < cfg.layerIds.size(); l++) {
					const auto &out = cs["outputs"][std::to_string(cfg.layerIds[l])][batch];
					size_t t = 0;
					for (size_t b = 0; b < seqs.size(); b++) {
						for (size_t i = 0; i < seqs[b].size(); i++, t++) {
							for (uint32_t j = 0; j < J; j++) {
								const size_t at = (l * tokens.size() + t) * J + j;
								ASSERT_EQ(hashes[at], out["hash_ids"][b][i][j].get<uint64_t>())
									<< name << " kernel " << kernelName(k) << " layer "
									<< cfg.layerIds[l] << " b " << b << " t " << i << " j " << j;
								ASSERT_EQ(rows[at], out["row_ids"][b][i][j].get<uint64_t>())
									<< name << " kernel " << kernelName(k);
								checked++;
							}
						}
					}
				}
			}
		}
	}
	std::cout << checked << " hash/row id pairs checked\n";
	EXPECT_GT(checked, 0u);
}
