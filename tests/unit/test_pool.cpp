// SPDX-License-Identifier: Apache-2.0
// test_pool.cpp - pool round trip on file: and emul: regions, rm/replace space reuse, row formats, errors that change nothing.
#include "pool_fixture.hpp"

using namespace engrampool;
using namespace eptest;

namespace {

uint64_t extentOf(uint64_t dataBytes)
{
	return (dataBytes + format::kAlignUnit - 1) / format::kAlignUnit * format::kAlignUnit;
}

class PoolRoundTrip : public ::testing::TestWithParam<std::string> {};

} // namespace

TEST_P(PoolRoundTrip, CreateImportReopenReadVerify)
{
	ScopedPool sp(GetParam());
	ModelConfig cfg = tinyModel();
	{
		auto w = openPool(sp.uri(), true);
		EXPECT_TRUE(w->isWriter());
		ASSERT_EQ(*w->committedGeneration(), 1u) << "a fresh pool is at generation 1";
		auto r1 = importRandom(*w, cfg, 1, 101);
		ASSERT_TRUE(r1) << r1.status().message();
		EXPECT_EQ(r1->generation, 2u);
		EXPECT_EQ(r1->table.name, "tiny/layer1");
		auto r2 = importRandom(*w, cfg, 15, 115, "custom-15");
		ASSERT_TRUE(r2) << r2.status().message();
		EXPECT_EQ(r2->generation, 3u);
	}
	auto r = openPool(sp.uri(), false);
	EXPECT_FALSE(r->isWriter());
	EXPECT_FALSE(r->region().writable());
	auto s = r->snapshot();
	ASSERT_TRUE(s) << s.status().message();
	EXPECT_EQ(s->generation, 3u);
	ASSERT_EQ(s->tables.size(), 2u);
	ASSERT_EQ(s->models.size(), 1u) << "one model record shared by both layers";
	EXPECT_EQ(s->models[0].name, "tiny");
	EXPECT_EQ(s->models[0].fingerprint, modelFingerprint(cfg));
	const TableInfo *t1 = s->findTable("tiny/layer1");
	const TableInfo *t15 = s->findTable("custom-15");
	ASSERT_TRUE(t1 && t15);
	EXPECT_EQ(t1->rows, layerRows(cfg, 1));
	EXPECT_EQ(t15->rows, layerRows(cfg, 15));
	EXPECT_EQ(t1->layerId, 1u);
	EXPECT_EQ(t15->layerId, 15u);
	EXPECT_EQ(t1->model, "tiny");
	EXPECT_EQ(t1->modelFingerprint, modelFingerprint(cfg));
	EXPECT_EQ(t1->rowBytes, 64u);
	EXPECT_EQ(t1->rowStride, 64u);
	EXPECT_EQ(t1->format.dtype, Dtype::Fp32);
	EXPECT_EQ(t1->format.valuesPerRow, 16u);
	EXPECT_EQ(t1->dataBytes, t1->rows * 64);
	EXPECT_EQ(t1->generation, 2u);
	EXPECT_EQ(t15->generation, 3u);
	EXPECT_EQ(t1->dataOffset % format::kAlignUnit, 0u);
	EXPECT_EQ(t1->extentBytes, extentOf(t1->dataBytes));
	EXPECT_GE(t15->dataOffset, t1->dataOffset + t1->extentBytes) << "extents do not overlap";
	EXPECT_EQ(s->usedBytes, t1->extentBytes + t15->extentBytes);
	EXPECT_EQ(s->freeSlots, format::kCatalogSlots - 3);
	EXPECT_EQ(s->pendingReclaim, 0u);
	EXPECT_EQ(rowMismatches(*r, *t1, cfg.rowFormat, 101, 500), 0u);
	EXPECT_EQ(rowMismatches(*r, *t15, cfg.rowFormat, 115, 500), 0u);
	EXPECT_GT(rowMismatches(*r, *t1, cfg.rowFormat, 115, 50), 0u) << "the check can fail: other seed, other rows";
	// The stored checksum is XXH3 of exactly the table bytes.
	EXPECT_EQ(xxh3(r->tableData(*t1), t1->dataBytes), t1->dataXxh3);
	auto v = r->verify();
	ASSERT_TRUE(v) << v.status().message();
	ASSERT_EQ(v->size(), 2u);
	for (auto &rep : *v) {
		EXPECT_TRUE(rep.ok) << rep.table << ": " << rep.problem;
		EXPECT_EQ(rep.expected, rep.actual);
	}
	auto one = r->verify("custom-15");
	ASSERT_TRUE(one);
	ASSERT_EQ(one->size(), 1u);
	EXPECT_EQ((*one)[0].table, "custom-15");
	EXPECT_EQ(r->verify("nope").code(), -ENOENT);
	// A read-only pool refuses writer operations.
	EXPECT_EQ(importRandom(*r, cfg, 1, 5, "x").code(), -EPERM);
	EXPECT_EQ(r->removeTable("custom-15").code(), -EPERM);
	EXPECT_EQ(r->reclaim().code(), -EPERM);
}

TEST_P(PoolRoundTrip, CreateTwiceAndOpenMissing)
{
	ScopedPool sp(GetParam());
	CreateOptions o;
	o.size = 32ull << 20;
	if (GetParam() == "emul") {
		EXPECT_EQ(Pool::create(sp.uri(), o).code(), -EEXIST) << "an emul pool is never formatted over silently";
	}
	ScopedPool missing(GetParam(), 32ull << 20, false);
	OpenOptions ro;
	auto p = Pool::open(missing.uri(), ro);
	EXPECT_EQ(p.code(), -ENOENT) << p.status().message();
	o.size = 1ull << 20;
	ScopedPool small(GetParam(), 0, false);
	EXPECT_EQ(Pool::create(small.uri(), o).code(), -EINVAL) << "below the 4 MiB minimum";
}

TEST_P(PoolRoundTrip, RemoveFreesTheExtentForTheNextImport)
{
	ScopedPool sp(GetParam());
	ModelConfig cfg = tinyModel();
	auto w = openPool(sp.uri(), true);
	auto a = importRandom(*w, cfg, 1, 1, "a");
	auto b = importRandom(*w, cfg, 15, 2, "b");
	ASSERT_TRUE(a && b);
	uint64_t offA = a->table.dataOffset;
	EXPECT_EQ(offA, format::kDataOffset) << "first fit";
	ASSERT_TRUE(w->removeTable("a").isOk());
	auto s = w->snapshot();
	ASSERT_TRUE(s);
	EXPECT_EQ(s->generation, 4u);
	EXPECT_EQ(s->findTable("a"), nullptr);
	ASSERT_NE(s->findTable("b"), nullptr);
	EXPECT_EQ(s->pendingReclaim, 0u) << "no host reads the pool: reclaimed at once";
	EXPECT_EQ(s->usedBytes, b->table.extentBytes);
	EXPECT_EQ(s->models.size(), 1u) << "the model stays while 'b' uses it";
	EXPECT_EQ(w->removeTable("a").code(), -ENOENT);
	// The next import of the same size lands in a's old extent.
	auto c = importRandom(*w, cfg, 1, 3, "c");
	ASSERT_TRUE(c) << c.status().message();
	EXPECT_EQ(c->table.dataOffset, offA);
	EXPECT_EQ(rowMismatches(*w, c->table, cfg.rowFormat, 3, 300), 0u);
	EXPECT_EQ(rowMismatches(*w, *w->snapshot()->findTable("b"), cfg.rowFormat, 2, 300), 0u);
	// Removing the last table of a model removes the model too.
	ASSERT_TRUE(w->removeTable("b").isOk());
	ASSERT_TRUE(w->removeTable("c").isOk());
	auto empty = w->snapshot();
	ASSERT_TRUE(empty);
	EXPECT_TRUE(empty->tables.empty());
	EXPECT_TRUE(empty->models.empty());
	EXPECT_EQ(empty->usedBytes, 0u);
	EXPECT_EQ(empty->freeSlots, format::kCatalogSlots) << "every catalog slot is free again";
}

TEST_P(PoolRoundTrip, ReplacePublishesANewGenerationAndReclaimsTheOld)
{
	ScopedPool sp(GetParam());
	ModelConfig cfg = tinyModel();
	auto w = openPool(sp.uri(), true);
	auto a = importRandom(*w, cfg, 1, 10, "a");
	ASSERT_TRUE(a);
	auto r = openPool(sp.uri(), false);
	auto before = r->snapshot();
	ASSERT_TRUE(before);
	auto rep = importRandom(*w, cfg, 1, 20, "a", true);
	ASSERT_TRUE(rep) << rep.status().message();
	EXPECT_EQ(rep->generation, a->generation + 1);
	EXPECT_EQ(rep->replacedSlot, a->table.slot);
	EXPECT_NE(rep->table.dataOffset, a->table.dataOffset) << "new data goes to free space, never over live rows";
	auto s = r->snapshot();
	ASSERT_TRUE(s);
	EXPECT_EQ(s->generation, rep->generation);
	ASSERT_EQ(s->tables.size(), 1u);
	const TableInfo &t = s->tables[0];
	EXPECT_EQ(t.generation, rep->generation);
	EXPECT_EQ(t.dataOffset, rep->table.dataOffset);
	EXPECT_EQ(rowMismatches(*r, t, cfg.rowFormat, 20, 300), 0u);
	EXPECT_EQ(s->pendingReclaim, 0u);
	EXPECT_EQ(s->usedBytes, t.extentBytes) << "the old extent is free again";
	EXPECT_EQ(s->freeSlots, format::kCatalogSlots - 2);
	// The freed extent is the first fit for the next table.
	auto b = importRandom(*w, cfg, 15, 30, "b");
	ASSERT_TRUE(b);
	EXPECT_EQ(b->table.dataOffset, a->table.dataOffset);
	auto v = r->verify();
	ASSERT_TRUE(v);
	for (auto &x : *v)
		EXPECT_TRUE(x.ok) << x.table;
	// --replace of a missing table is refused.
	EXPECT_EQ(importRandom(*w, cfg, 1, 1, "zzz", true).code(), -ENOENT);
}

INSTANTIATE_TEST_SUITE_P(Backends, PoolRoundTrip, ::testing::Values("file", "emul"));

// --- row formats ----------------------------------------------------------------------

namespace {

struct FormatCase {
	const char *name;
	nlohmann::json fields;  // merged into the model JSON
	uint32_t values, rowBytes, rowStride;
	Dtype dtype, scale;
};

class PoolRowFormats : public ::testing::TestWithParam<FormatCase> {};

} // namespace

TEST_P(PoolRowFormats, StoredPackedAsDescribed)
{
	const FormatCase &fc = GetParam();
	nlohmann::json j = tinyModelJson();
	for (auto &[k, v] : fc.fields.items())
		j[k] = v;
	ModelConfig cfg = makeModel(j);
	ASSERT_EQ(cfg.rowFormat.rowBytes(), fc.rowBytes);
	ScopedPool sp("emul", 32ull << 20);
	{
		auto w = openPool(sp.uri(), true);
		auto r = importRandom(*w, cfg, 15, 77);
		ASSERT_TRUE(r) << r.status().message();
	}
	auto r = openPool(sp.uri(), false);
	auto s = r->snapshot();
	ASSERT_TRUE(s);
	ASSERT_EQ(s->tables.size(), 1u);
	const TableInfo &t = s->tables[0];
	EXPECT_EQ(t.format.dtype, fc.dtype);
	EXPECT_EQ(t.format.scaleDtype, fc.scale);
	EXPECT_EQ(t.format.valuesPerRow, fc.values);
	EXPECT_EQ(t.rowBytes, fc.rowBytes);
	EXPECT_EQ(t.rowStride, fc.rowStride);
	EXPECT_EQ(t.dataBytes, t.rows * fc.rowStride) << "packed: no padding unless row_align asks";
	EXPECT_EQ(t.format.rowStride(), fc.rowStride);
	EXPECT_EQ(t.format.scalesPerRow(), cfg.rowFormat.scalesPerRow());
	EXPECT_EQ(rowMismatches(*r, t, cfg.rowFormat, 77, 400), 0u);
	auto v = r->verify();
	ASSERT_TRUE(v);
	ASSERT_EQ(v->size(), 1u);
	EXPECT_TRUE((*v)[0].ok);
}

INSTANTIATE_TEST_SUITE_P(
	Formats, PoolRowFormats,
	::testing::Values(
		FormatCase{"fp32", {{"dtype", "fp32"}}, 16, 64, 64, Dtype::Fp32, Dtype::None},
		FormatCase{"bf16", {{"dtype", "bf16"}}, 16, 32, 32, Dtype::Bf16, Dtype::None},
		FormatCase{"fp16", {{"dtype", "fp16"}}, 16, 32, 32, Dtype::Fp16, Dtype::None},
		FormatCase{"fp8_e8m0_264",
			   {{"dtype", "fp8-e4m3"}, {"n_embed_per_ngram", 256}, {"n_head_per_ngram", 1},
			    {"scale", {{"dtype", "e8m0"}, {"block", 32}}}},
			   256, 264, 264, Dtype::Fp8E4M3, Dtype::E8M0},
		FormatCase{"fp8_e8m0_264_align64",
			   {{"dtype", "fp8-e4m3"}, {"n_embed_per_ngram", 256}, {"n_head_per_ngram", 1},
			    {"scale", {{"dtype", "e8m0"}, {"block", 32}}}, {"row_align", 64}},
			   256, 264, 320, Dtype::Fp8E4M3, Dtype::E8M0},
		FormatCase{"bf16_24_align64", {{"dtype", "bf16"}, {"n_embed_per_ngram", 96}, {"row_align", 64}}, 24, 48, 64, Dtype::Bf16,
			   Dtype::None}),
	[](const ::testing::TestParamInfo<FormatCase> &i) { return std::string(i.param.name); });

// --- errors change nothing ----------------------------------------------------------

namespace {

// A pool holding tiny/layer1 (seed 1); the tests try bad operations on it.
class PoolErrors : public ::testing::Test {
protected:
	void SetUp() override
	{
		sp_ = std::make_unique<ScopedPool>("file", 8ull << 20); // 6 MiB of data: room for one 4 MiB table
		cfg_ = tinyModel();
		w_ = openPool(sp_->uri(), true);
		auto r = importRandom(*w_, cfg_, 1, 1);
		ASSERT_TRUE(r) << r.status().message();
		gen_ = r->generation;
		meta_ = metadataHash(sp_->backingPath());
	}
	void expectUnchanged()
	{
		EXPECT_EQ(metadataHash(sp_->backingPath()), meta_) << "superblock, catalog and host table are byte-identical";
		auto s = w_->snapshot();
		ASSERT_TRUE(s);
		EXPECT_EQ(s->generation, gen_);
		ASSERT_EQ(s->tables.size(), 1u);
		EXPECT_EQ(s->tables[0].name, "tiny/layer1");
		EXPECT_EQ(s->models.size(), 1u);
		EXPECT_EQ(rowMismatches(*w_, s->tables[0], cfg_.rowFormat, 1, 100), 0u);
	}
	std::unique_ptr<ScopedPool> sp_;
	ModelConfig cfg_;
	std::unique_ptr<Pool> w_;
	uint64_t gen_ = 0, meta_ = 0;
};

} // namespace

TEST_F(PoolErrors, NoRoomIsENOSPCAndASmallerImportStillFits)
{
	auto r = importRandom(*w_, cfg_, 15, 2);
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), -ENOSPC);
	EXPECT_NE(r.status().message().find("full"), std::string::npos) << r.status().message();
	expectUnchanged();
	// A bf16 model of the same shape needs one 2 MiB extent: it fits.
	nlohmann::json j = tinyModelJson();
	j["name"] = "small";
	j["dtype"] = "bf16";
	ModelConfig small = makeModel(j);
	auto ok = importRandom(*w_, small, 15, 3);
	ASSERT_TRUE(ok) << ok.status().message();
	EXPECT_EQ(ok->generation, gen_ + 1);
	EXPECT_EQ(rowMismatches(*w_, ok->table, small.rowFormat, 3, 100), 0u);
	// Now even the smallest table has no room.
	j["name"] = "small2";
	EXPECT_EQ(importRandom(*w_, makeModel(j), 15, 4).code(), -ENOSPC);
	auto s = w_->snapshot();
	ASSERT_TRUE(s);
	EXPECT_EQ(s->tables.size(), 2u);
	EXPECT_EQ(s->models.size(), 2u) << "no model record of the refused import";
}

TEST_F(PoolErrors, RemoveMissingIsENOENT)
{
	Status s = w_->removeTable("no/such");
	EXPECT_EQ(s.code(), -ENOENT);
	EXPECT_NE(s.message().find("no/such"), std::string::npos);
	expectUnchanged();
}

TEST_F(PoolErrors, ExistingNameWithoutReplaceIsEEXIST)
{
	auto r = importRandom(*w_, cfg_, 1, 9);
	EXPECT_EQ(r.code(), -EEXIST);
	EXPECT_NE(r.status().message().find("--replace"), std::string::npos);
	expectUnchanged();
}

TEST_F(PoolErrors, OtherFingerprintUnderTheSameModelNameIsEP_E_MODEL)
{
	nlohmann::json j = tinyModelJson();
	j["seed"] = 1; // changes every row id
	ModelConfig other = makeModel(j);
	ASSERT_NE(modelFingerprint(other), modelFingerprint(cfg_));
	auto r = importRandom(*w_, other, 15, 2, "other-15");
	EXPECT_EQ(r.code(), EP_E_MODEL);
	EXPECT_NE(r.status().message().find("tiny"), std::string::npos) << r.status().message();
	expectUnchanged();
}

TEST_F(PoolErrors, WrongRowCountIsEP_E_SHAPE)
{
	uint64_t rows = layerRows(cfg_, 15);
	for (uint64_t n : {rows - 1, rows + 1}) {
		auto src = io::makeRandomSource(cfg_.rowFormat, n, 1);
		ImportRequest req;
		req.model = &cfg_;
		req.layerId = 15;
		req.rows = rows;
		auto r = w_->importTable(req, *src);
		EXPECT_EQ(r.code(), EP_E_SHAPE);
		EXPECT_NE(r.status().message().find(std::to_string(rows)), std::string::npos) << r.status().message();
		EXPECT_NE(r.status().message().find(std::to_string(n)), std::string::npos) << r.status().message();
	}
	expectUnchanged();
}

TEST_F(PoolErrors, LayerNotInTheModelAndOverlongName)
{
	EXPECT_EQ(importRandom(*w_, cfg_, 15, 1, std::string(64, 'n')).code(), -ENAMETOOLONG);
	EXPECT_EQ(w_->removeTable("").code(), -ENOENT);
	auto src = io::makeRandomSource(cfg_.rowFormat, 10, 1);
	ImportRequest req;
	req.model = &cfg_;
	req.layerId = 7;
	req.rows = 10;
	EXPECT_EQ(w_->importTable(req, *src).code(), EP_E_MODEL);
	expectUnchanged();
}

namespace {

// A source that fails half way: nothing must be published.
class FailingSource : public io::RowSource {
public:
	FailingSource(const RowFormat &f, uint64_t rows) : inner_(io::makeRandomSource(f, rows, 5)), rows_(rows) {}
	uint64_t rows() const override { return rows_; }
	Status read(uint64_t first, uint64_t count, uint8_t *dst) override
	{
		if (first + count > rows_ / 2)
			return makeError(-EIO, "disk on fire");
		return inner_->read(first, count, dst);
	}
	std::string describe() const override { return "failing"; }

private:
	std::unique_ptr<io::RowSource> inner_;
	uint64_t rows_;
};

} // namespace

TEST_F(PoolErrors, LongestNameFitsExactly)
{
	ASSERT_TRUE(w_->removeTable("tiny/layer1").isOk());
	std::string name(63, 'x');
	auto r = importRandom(*w_, cfg_, 15, 4, name);
	ASSERT_TRUE(r) << r.status().message();
	auto s = w_->snapshot();
	ASSERT_TRUE(s);
	ASSERT_NE(s->findTable(name), nullptr) << "63 bytes + NUL fill the 64-byte field";
	EXPECT_EQ(rowMismatches(*w_, *s->findTable(name), cfg_.rowFormat, 4, 50), 0u);
}

TEST_F(PoolErrors, SourceFailingMidwayPublishesNothing)
{
	ASSERT_TRUE(w_->removeTable("tiny/layer1").isOk());
	uint64_t gen = *w_->committedGeneration();
	uint64_t meta = metadataHash(sp_->backingPath());
	uint64_t rows = layerRows(cfg_, 15);
	FailingSource src(cfg_.rowFormat, rows);
	ImportRequest req;
	req.model = &cfg_;
	req.layerId = 15;
	req.rows = rows;
	auto r = w_->importTable(req, src);
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), -EIO);
	EXPECT_NE(r.status().message().find("disk on fire"), std::string::npos);
	EXPECT_EQ(*w_->committedGeneration(), gen);
	EXPECT_EQ(metadataHash(sp_->backingPath()), meta);
	auto s = w_->snapshot();
	ASSERT_TRUE(s);
	EXPECT_TRUE(s->tables.empty());
	// The half-written extent is free: a full import reuses it.
	auto ok = importRandom(*w_, cfg_, 15, 6);
	ASSERT_TRUE(ok) << ok.status().message();
	EXPECT_EQ(ok->table.dataOffset, format::kDataOffset);
}
