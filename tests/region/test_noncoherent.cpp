// SPDX-License-Identifier: Apache-2.0
// test_noncoherent.cpp - the non-coherence checker: a reader sees the writer's
// metadata only where it invalidates, so the protocol's invalidates are exercised.
#include <gtest/gtest.h>

#include <cstring>

#include "format/layout.hpp"
#include "hashing/primes.hpp"
#include "io/row_source.hpp"
#include "pool/pool.hpp"
#include "test_util.hpp"

using namespace engrampool;

namespace {

ModelConfig smallModel()
{
	auto c = parseModelJson(R"({"name":"nc","tokenizer_vocab_size":1000,"compressed_vocab_size":1000,"engram_vocab_size":[3000,4000],
		"max_ngram_size":3,"n_embed_per_ngram":64,"n_head_per_ngram":4,"layer_ids":[1,15],"pad_id":2,"seed":0})",
				"");
	EXPECT_TRUE(c.isOk());
	return c.value();
}

void importLayer(const std::string &uri, const ModelConfig &cfg, uint32_t layer, uint64_t seed, bool replace)
{
	OpenOptions w;
	w.write = true;
	auto p = Pool::open(uri, w);
	ASSERT_TRUE(p.isOk()) << p.status().message();
	size_t li = std::find(cfg.layerIds.begin(), cfg.layerIds.end(), layer) - cfg.layerIds.begin();
	uint64_t rows = hashing::tableRows(cfg)[li];
	auto src = io::makeRandomSource(cfg.rowFormat, rows, seed);
	ImportRequest req;
	req.model = &cfg;
	req.layerId = layer;
	req.rows = rows;
	req.replace = replace;
	auto r = (*p)->importTable(req, *src);
	ASSERT_TRUE(r.isOk()) << r.status().message();
}

} // namespace

TEST(NonCoherent, ReaderSeesUpdatesOnlyThroughInvalidate)
{
	std::string name = eptest::uniqueName("nc");
	std::string uri = "emul:" + name;
	CreateOptions co;
	co.size = 16 << 20;
	ASSERT_TRUE(Pool::create(uri, co).isOk());
	ModelConfig cfg = smallModel();
	importLayer(uri, cfg, 1, 5, false);

	auto reader = Pool::open(uri + "?noncoherent=1", OpenOptions{});
	ASSERT_TRUE(reader.isOk()) << reader.status().message();
	ASSERT_TRUE((*reader)->region().snapshotMetadata());
	auto s1 = (*reader)->snapshot();
	ASSERT_TRUE(s1.isOk());
	EXPECT_EQ(s1->tables.size(), 1u);
	const volatile uint64_t *genWord =
		reinterpret_cast<const volatile uint64_t *>((*reader)->region().base() + format::kGenWordOffset);
	uint64_t before = *genWord;

	importLayer(uri, cfg, 15, 6, false);

	// A read that skips the invalidate sees the stale word: the checker works.
	EXPECT_EQ(*genWord, before);
	// The protocol's reads invalidate first and see the new generation and table.
	auto g = (*reader)->committedGeneration();
	ASSERT_TRUE(g.isOk());
	EXPECT_EQ(*g, s1->generation + 1);
	auto s2 = (*reader)->snapshot();
	ASSERT_TRUE(s2.isOk()) << s2.status().message();
	ASSERT_EQ(s2->tables.size(), 2u);
	// Data rows (not snapshotted) match the deterministic contents.
	const TableInfo *t = s2->findTable("nc/layer15");
	ASSERT_NE(t, nullptr);
	std::vector<uint8_t> got(t->rowStride), want(t->rowStride);
	for (uint64_t r : {0ull, 17ull, (unsigned long long)t->rows - 1}) {
		ASSERT_TRUE((*reader)->readRows(*t, &r, 1, got.data(), got.size()).isOk());
		io::randomRow(cfg.rowFormat, 6, r, want.data());
		EXPECT_EQ(got, want);
	}

	// A replace is followed too, and the checker never lets the reader see a mix.
	importLayer(uri, cfg, 15, 7, true);
	auto s3 = (*reader)->snapshot();
	ASSERT_TRUE(s3.isOk()) << s3.status().message();
	EXPECT_EQ(s3->generation, s2->generation + 1);
	t = s3->findTable("nc/layer15");
	ASSERT_NE(t, nullptr);
	uint64_t r = 3;
	ASSERT_TRUE((*reader)->readRows(*t, &r, 1, got.data(), got.size()).isOk());
	io::randomRow(cfg.rowFormat, 7, r, want.data());
	EXPECT_EQ(got, want);

	reader->reset();
	EXPECT_TRUE(Region::destroy(*parseRegionUri(uri)).isOk());
}

TEST(NonCoherent, OnlyForEmul)
{
	auto u = parseRegionUri("file:/tmp/x?noncoherent=1");
	EXPECT_FALSE(u.isOk());
	EXPECT_EQ(u.code(), EP_E_URI);
}
