// SPDX-License-Identifier: Apache-2.0
// test_planar.cpp - planar tables (issue 11 #5): import, geometry, checksums, reads in
// every output format, plane pointers of head ranges, refusals and corrupted geometry.
#include "pool_fixture.hpp"

#include <engrampool/engrampool.h>

#include "format/records.hpp"
#include "model/widen.hpp"

using namespace engrampool;
using namespace eptest;
using format::TableLayout;

namespace {

// fp8-e4m3 x 64 + e8m0 x 2 = 66-byte rows; 2 orders x 12 heads = 24 heads per layer, so
// tensor-parallel splits 1, 2, 3, 4, 8 and 24 all divide the heads.
nlohmann::json fp8ModelJson()
{
	nlohmann::json j = tinyModelJson();
	j["name"] = "fp8";
	j["engram_vocab_size"] = {1500, 1700};
	j["n_head_per_ngram"] = 12;
	j["n_embed_per_ngram"] = 12 * 64;
	j["dtype"] = "fp8-e4m3";
	j["scale"] = {{"dtype", "e8m0"}, {"block", 32}};
	return j;
}

ModelConfig fp8Model()
{
	return makeModel(fp8ModelJson());
}

Result<ImportResult> importAs(Pool &p, const ModelConfig &cfg, const std::string &name, TableLayout layout,
			      uint64_t seed = 7)
{
	uint64_t rows = layerRows(cfg, 1);
	auto src = io::makeRandomSource(cfg.rowFormat, rows, seed);
	ImportRequest req;
	req.tableName = name;
	req.model = &cfg;
	req.layerId = 1;
	req.rows = rows;
	req.layout = layout;
	return p.importTable(req, *src);
}

struct Tables {
	ScopedPool sp{"file", 64ull << 20};
	ModelConfig cfg = fp8Model();
	TableInfo packed, planar;
	std::unique_ptr<Pool> pool;
	Tables()
	{
		auto w = openPool(sp.uri(), true);
		auto a = importAs(*w, cfg, "packed", TableLayout::Packed);
		auto b = importAs(*w, cfg, "planar", TableLayout::Planar);
		if (!a || !b)
			throw std::runtime_error("import: " + (a ? b.status() : a.status()).message());
		packed = a->table;
		planar = b->table;
		pool = openPool(sp.uri(), false);
	}
};

TEST(Planar, GeometryAndChecksumCoverBothPlanes)
{
	Tables t;
	const RowFormat &f = t.cfg.rowFormat;
	ASSERT_EQ(f.rowBytes(), 66u);
	EXPECT_FALSE(t.packed.planar());
	ASSERT_TRUE(t.planar.planar());
	EXPECT_EQ(t.planar.rowBytes, 66u);
	EXPECT_EQ(t.planar.rowStride, 64u); // the values plane's pitch
	EXPECT_EQ(t.planar.dataBytes, t.planar.rows * 66);
	// Values at a 2 MiB boundary, scales at the first 2 MiB boundary after the values.
	EXPECT_EQ(t.planar.dataOffset % format::kAlignUnit, 0u);
	EXPECT_EQ(t.planar.scalesOffset % format::kAlignUnit, 0u);
	EXPECT_GE(t.planar.scalesOffset, t.planar.dataOffset + t.planar.rows * 64);
	EXPECT_LT(t.planar.scalesOffset, t.planar.dataOffset + t.planar.rows * 64 + format::kAlignUnit);
	EXPECT_LE(t.planar.scalesOffset + t.planar.rows * 2, t.planar.dataOffset + t.planar.extentBytes);
	// The checksum: the rows packed (values then scales), built from randomRow, the same
	// as the packed table's when that one has no row padding.
	Xxh3Stream h;
	std::vector<uint8_t> row(66);
	for (uint64_t r = 0; r < t.planar.rows; r++) {
		io::randomRow(f, 7, r, row.data());
		h.update(row.data(), 66);
	}
	EXPECT_EQ(h.digest(), t.planar.dataXxh3);
	EXPECT_EQ(t.packed.dataXxh3, t.planar.dataXxh3) << "one checksum for the same rows in either layout";
	auto v = t.pool->verify();
	ASSERT_TRUE(v.isOk()) << v.status().message();
	int seen = 0;
	for (auto &r : *v)
		if (r.table == "planar") {
			EXPECT_TRUE(r.ok) << r.problem;
			EXPECT_EQ(r.layout, "planar");
			seen++;
		}
	EXPECT_EQ(seen, 1);
	// A flipped byte in the scales plane is a checksum failure.
	uint8_t b = peekBytes(t.sp.backingPath(), t.planar.scalesOffset + 5, 1)[0] ^ 0x40;
	pokeBytes(t.sp.backingPath(), t.planar.scalesOffset + 5, &b, 1);
	v = t.pool->verify("planar");
	ASSERT_TRUE(v.isOk());
	ASSERT_EQ(v->size(), 1u);
	EXPECT_FALSE((*v)[0].ok);
}

TEST(Planar, ReadsInEveryFormatEqualThePackedTable)
{
	Tables t;
	const RowFormat &f = t.cfg.rowFormat;
	std::vector<uint64_t> rows = {0, t.planar.rows - 1, 5, 1234, 5, t.planar.rows / 2};
	const size_t n = rows.size();
	for (int fmt = EP_OUT_PACKED; fmt <= EP_OUT_PLANES; fmt++) {
		SCOPED_TRACE("format " + std::to_string(fmt));
		uint64_t rb = outputRowBytes(f, fmt);
		ASSERT_GT(rb, 0u);
		std::vector<uint8_t> a(n * rb), b(n * rb);
		ASSERT_TRUE(t.pool->readRowsAs(t.packed, rows.data(), n, fmt, a.data(), a.size()).isOk());
		ASSERT_TRUE(t.pool->readRowsAs(t.planar, rows.data(), n, fmt, b.data(), b.size()).isOk());
		EXPECT_EQ(a, b);
		// Against the source rows.
		std::vector<uint8_t> want(n * rb), row(66);
		std::vector<float> deq(64);
		for (size_t i = 0; i < n; i++) {
			io::randomRow(f, 7, rows[i], row.data());
			dequantizeRow(f, row.data(), deq.data());
			uint8_t *w = want.data() + i * rb;
			switch (fmt) {
			case EP_OUT_PACKED: std::memcpy(w, row.data(), 66); break;
			case EP_OUT_VALUES: std::memcpy(w, row.data(), 64); break;
			case EP_OUT_SCALES: std::memcpy(w, row.data() + 64, 2); break;
			case EP_OUT_F32: std::memcpy(w, deq.data(), 256); break;
			case EP_OUT_BF16:
				for (int k = 0; k < 64; k++) {
					uint16_t h = floatToBf16(deq[k]);
					std::memcpy(w + 2 * k, &h, 2);
				}
				break;
			case EP_OUT_PLANES:
				std::memcpy(want.data() + i * 64, row.data(), 64);
				std::memcpy(want.data() + n * 64 + i * 2, row.data() + 64, 2);
				break;
			}
		}
		EXPECT_EQ(b, want);
	}
	// Dequantization: e4m3 x 2^(e-127), checked by hand on one value.
	std::vector<uint8_t> row(66);
	io::randomRow(f, 7, 5, row.data());
	float got[64];
	uint64_t r5 = 5;
	ASSERT_TRUE(t.pool->readRowsAs(t.planar, &r5, 1, EP_OUT_F32, got, sizeof(got)).isOk());
	EXPECT_EQ(got[40], std::ldexp(fp8e4m3ToFloat(row[40]), (int)row[65] - 127));
	// bf16 rounding: to nearest even.
	EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
	EXPECT_EQ(floatToBf16(std::nextafter(1.0f, 2.0f)), 0x3f80);
	float halfway;
	uint32_t hb = 0x3f818000u; // exactly between 0x3f81 and 0x3f82: rounds to even 0x3f82
	std::memcpy(&halfway, &hb, 4);
	EXPECT_EQ(floatToBf16(halfway), 0x3f82);
	// Refusals.
	std::vector<uint8_t> small(65);
	EXPECT_EQ(t.pool->readRowsAs(t.planar, rows.data(), 1, EP_OUT_PACKED, small.data(), small.size()).code(), -ENOSPC);
	EXPECT_EQ(t.pool->readRowsAs(t.planar, rows.data(), 1, 9, small.data(), small.size()).code(), -EINVAL);
	uint64_t out = t.planar.rows;
	EXPECT_EQ(t.pool->readRowsAs(t.planar, &out, 1, EP_OUT_VALUES, small.data(), small.size()).code(), -ERANGE);
}

// A model with padded rows (row_align): the source yields rows at the padded stride; a
// planar import drops the padding (exact pitch) and reads back the same rows.
TEST(Planar, PaddedRowsImportPlanar)
{
	ScopedPool sp{"file", 64ull << 20};
	nlohmann::json j = fp8ModelJson();
	j["name"] = "fp8pad";
	j["row_align"] = 128;
	ModelConfig cfg = makeModel(j);
	const RowFormat &f = cfg.rowFormat;
	ASSERT_EQ(f.rowBytes(), 66u);
	ASSERT_EQ(f.rowStride(), 128u);
	auto w = openPool(sp.uri(), true);
	auto a = importAs(*w, cfg, "packed", TableLayout::Packed);
	auto b = importAs(*w, cfg, "planar", TableLayout::Planar);
	ASSERT_TRUE(a) << a.status().message();
	ASSERT_TRUE(b) << b.status().message();
	EXPECT_EQ(b->table.rowStride, 64u);
	Xxh3Stream h;
	std::vector<uint8_t> row(128);
	for (uint64_t r = 0; r < b->table.rows; r++) {
		io::randomRow(f, 7, r, row.data());
		h.update(row.data(), 66);
	}
	EXPECT_EQ(h.digest(), b->table.dataXxh3);
	std::vector<uint64_t> rows = {0, 1, b->table.rows - 1, b->table.rows / 3};
	std::vector<uint8_t> pa(rows.size() * 66), pb(rows.size() * 66);
	ASSERT_TRUE(w->readRowsAs(a->table, rows.data(), rows.size(), EP_OUT_PACKED, pa.data(), pa.size()).isOk());
	ASSERT_TRUE(w->readRowsAs(b->table, rows.data(), rows.size(), EP_OUT_PACKED, pb.data(), pb.size()).isOk());
	EXPECT_EQ(pa, pb);
	auto v = w->verify();
	ASSERT_TRUE(v.isOk()) << v.status().message();
	for (auto &r : *v)
		EXPECT_TRUE(r.ok) << r.table << ": " << r.problem;
}

// Prefix sums of the layer's head primes, computed here from the model file.
std::vector<uint64_t> headOffsets(const ModelConfig &cfg, uint32_t layerIndex)
{
	std::vector<uint64_t> off = {0};
	const auto primes = hashing::headPrimes(cfg);
	for (auto &order : primes[layerIndex])
		for (uint64_t p : order)
			off.push_back(off.back() + p);
	return off;
}

TEST(Planar, TablePlanesOfHeadRanges)
{
	Tables t;
	ep_pool *p = nullptr;
	ASSERT_EQ(ep_pool_open(&p, t.sp.uri().c_str(), EP_OPEN_READONLY), 0) << ep_errormsg();
	const auto off = headOffsets(t.cfg, 0);
	const uint32_t heads = 24;
	ASSERT_EQ(off.size(), heads + 1u);
	ASSERT_EQ(off.back(), t.planar.rows);
	// The pool mapping of the C handle: its own mapping, found from the table's values.
	ep_table_planes all{};
	ASSERT_EQ(ep_pool_table_planes(p, "planar", 0, 0, &all), 0) << ep_errormsg();
	EXPECT_EQ(all.row_begin, 0u);
	EXPECT_EQ(all.row_end, t.planar.rows);
	EXPECT_EQ(all.layout, (uint32_t)EP_LAYOUT_PLANAR);
	EXPECT_EQ(all.values_bytes, 64u);
	EXPECT_EQ(all.scales_bytes, 2u);
	EXPECT_EQ(all.values_pitch, 64u);
	EXPECT_EQ(all.scales_pitch, 2u);
	const auto *cbase = static_cast<const uint8_t *>(all.values) - t.planar.dataOffset;
	EXPECT_EQ(static_cast<const uint8_t *>(all.scales), cbase + t.planar.scalesOffset);
	ep_pool_info info;
	ASSERT_EQ(ep_pool_info_get(p, &info), 0);
	for (const char *name : {"planar", "packed"}) {
		const TableInfo &ti = std::string(name) == "planar" ? t.planar : t.packed;
		for (uint32_t tp : {1u, 2u, 3u, 4u, 8u, 24u}) {
			ASSERT_EQ(heads % tp, 0u);
			for (uint32_t rank = 0; rank < tp; rank++) {
				SCOPED_TRACE(std::string(name) + " tp " + std::to_string(tp) + " rank " + std::to_string(rank));
				uint32_t h0 = rank * heads / tp, h1 = (rank + 1) * heads / tp;
				ep_table_planes pl{};
				ASSERT_EQ(ep_pool_table_planes(p, name, h0, h1, &pl), 0) << ep_errormsg();
				EXPECT_EQ(pl.row_begin, off[h0]);
				EXPECT_EQ(pl.row_end, off[h1]);
				auto *v = static_cast<const uint8_t *>(pl.values);
				auto *s = static_cast<const uint8_t *>(pl.scales);
				// Inside the pool mapping, the whole range.
				ASSERT_GE(v, cbase + info.data_offset);
				ASSERT_LE(v + (pl.row_end - pl.row_begin) * pl.values_pitch, cbase + info.size);
				ASSERT_LE(s + (pl.row_end - pl.row_begin) * pl.scales_pitch, cbase + info.size);
				// base + row * pitch is the row: first, last and a middle row of the range.
				std::vector<uint8_t> want(66);
				for (uint64_t r : {pl.row_begin, pl.row_end - 1, (pl.row_begin + pl.row_end) / 2}) {
					io::randomRow(t.cfg.rowFormat, 7, r, want.data());
					uint64_t k = r - pl.row_begin;
					EXPECT_EQ(std::memcmp(v + k * pl.values_pitch, want.data(), pl.values_bytes), 0) << r;
					EXPECT_EQ(std::memcmp(s + k * pl.scales_pitch, want.data() + 64, pl.scales_bytes), 0) << r;
				}
				if (!ti.planar()) {
					EXPECT_EQ(pl.values_pitch, 66u);
					EXPECT_EQ(s, v + 64);
				}
			}
		}
	}
	// Bad ranges and names.
	ep_table_planes pl{};
	EXPECT_EQ(ep_pool_table_planes(p, "planar", 3, 2, &pl), -EINVAL);
	EXPECT_NE(std::string(ep_errormsg()).find("head range"), std::string::npos);
	EXPECT_EQ(ep_pool_table_planes(p, "planar", 0, 25, &pl), -EINVAL);
	EXPECT_EQ(ep_pool_table_planes(p, "nope", 0, 0, &pl), -ENOENT);
	ASSERT_EQ(ep_pool_table_planes(p, "planar", 24, 24, &pl), 0);
	EXPECT_EQ(pl.row_begin, t.planar.rows);
	EXPECT_EQ(pl.row_end, t.planar.rows);
	// ep_table_info carries the layout; ep_pool_read_rows_as reads through the C ABI.
	ep_table_info ti;
	ASSERT_EQ(ep_pool_find_table(p, "planar", &ti), 0);
	EXPECT_EQ(ti.layout, (uint32_t)EP_LAYOUT_PLANAR);
	ASSERT_EQ(ep_pool_find_table(p, "packed", &ti), 0);
	EXPECT_EQ(ti.layout, (uint32_t)EP_LAYOUT_PACKED);
	uint64_t rows[2] = {3, 77};
	float a[128], b[128];
	ASSERT_EQ(ep_pool_read_rows_as(p, "planar", rows, 2, EP_OUT_F32, a, sizeof(a)), 0) << ep_errormsg();
	ASSERT_EQ(ep_pool_read_rows_as(p, "packed", rows, 2, EP_OUT_F32, b, sizeof(b)), 0);
	EXPECT_EQ(std::memcmp(a, b, sizeof(a)), 0);
	EXPECT_EQ(ep_pool_read_rows_as(p, "planar", rows, 2, 17, a, sizeof(a)), -EINVAL);
	EXPECT_EQ(ep_pool_read_rows_as(p, "planar", rows, 2, EP_OUT_F32, a, sizeof(a) - 1), -ENOSPC);
	ep_pool_close(&p);
}

TEST(Planar, UnscaledFormatsAreRefused)
{
	ScopedPool sp("file");
	ModelConfig cfg = tinyModel(); // fp32, no scale block
	auto w = openPool(sp.uri(), true);
	auto r = importAs(*w, cfg, "", TableLayout::Planar);
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), -EINVAL);
	EXPECT_NE(r.status().message().find("scale block"), std::string::npos) << r.status().message();
	auto s = w->snapshot();
	ASSERT_TRUE(s.isOk());
	EXPECT_TRUE(s->tables.empty());
}

// Rewrite the planar table's catalog entry (with a valid CRC: only the geometry checks
// can catch it) and expect the table quarantined with `why` in the problem.
void expectQuarantined(void (*edit)(format::TableBody &), const std::string &why)
{
	Tables t;
	const uint64_t at = format::kCatalogOffset + (uint64_t)t.planar.slot * format::kEntrySize;
	auto bytes = peekBytes(t.sp.backingPath(), at, sizeof(format::CatalogEntry));
	format::CatalogEntry e;
	std::memcpy(&e, bytes.data(), sizeof(e));
	edit(e.table);
	e.crc = format::entryCrc(e);
	pokeBytes(t.sp.backingPath(), at, &e, sizeof(e));
	auto r = openPool(t.sp.uri(), false);
	auto s = r->snapshot();
	ASSERT_TRUE(s.isOk()) << s.status().message();
	EXPECT_EQ(s->findTable("planar"), nullptr);
	EXPECT_NE(s->findTable("packed"), nullptr); // the healthy table keeps serving
	bool found = false;
	for (auto &p : s->problems)
		if (p.problem.find(why) != std::string::npos)
			found = true;
	EXPECT_TRUE(found) << why;
	ep_pool *p = nullptr;
	ASSERT_EQ(ep_pool_open(&p, t.sp.uri().c_str(), EP_OPEN_READONLY), 0);
	ep_table_planes pl;
	EXPECT_EQ(ep_pool_table_planes(p, "planar", 0, 0, &pl), -ENOENT);
	EXPECT_EQ(ep_pool_verify(p, nullptr), EP_E_CHECKSUM);
	EXPECT_NE(std::string(ep_errormsg()).find(why), std::string::npos) << ep_errormsg();
	ep_pool_close(&p);
}

TEST(Planar, CorruptedGeometryIsQuarantined)
{
	// Scales plane pushed outside the extent.
	expectQuarantined([](format::TableBody &b) { b.scalesOffset += b.extentBytes; }, "planar geometry");
	// Scales plane overlapping the values plane.
	expectQuarantined([](format::TableBody &b) { b.scalesOffset = b.dataOffset; }, "planar geometry");
	// Extent shrunk below the two planes.
	expectQuarantined([](format::TableBody &b) { b.extentBytes = format::kAlignUnit; }, "planar geometry");
	// More rows than the planes hold.
	expectQuarantined([](format::TableBody &b) { b.rows *= 64; }, "planar geometry");
	// An unknown layout.
	expectQuarantined([](format::TableBody &b) { b.layout = 7; }, "unknown layout 7");
	// Planar without a scale block.
	expectQuarantined(
		[](format::TableBody &b) {
			b.scaleDtype = 0;
			b.scalesPerRow = 0;
		},
		"planar geometry");
}

TEST(Planar, ReplaceSwitchesLayout)
{
	ScopedPool sp("file", 64ull << 20);
	ModelConfig cfg = fp8Model();
	auto w = openPool(sp.uri(), true);
	ASSERT_TRUE(importAs(*w, cfg, "t", TableLayout::Packed).isOk());
	uint64_t rows = layerRows(cfg, 1);
	auto src = io::makeRandomSource(cfg.rowFormat, rows, 9);
	ImportRequest req;
	req.tableName = "t";
	req.model = &cfg;
	req.layerId = 1;
	req.rows = rows;
	req.layout = TableLayout::Planar;
	req.replace = true;
	auto r = w->importTable(req, *src);
	ASSERT_TRUE(r.isOk()) << r.status().message();
	EXPECT_TRUE(r->table.planar());
	EXPECT_NE(r->replacedSlot, UINT64_MAX);
	uint64_t row = 11;
	std::vector<uint8_t> got(66), want(66);
	ASSERT_TRUE(w->readRows(r->table, &row, 1, got.data(), got.size()).isOk());
	io::randomRow(cfg.rowFormat, 9, row, want.data());
	EXPECT_EQ(got, want);
}

} // namespace
