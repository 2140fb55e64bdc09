// SPDX-License-Identifier: Apache-2.0
// test_agent_formats.cpp - the agent's output formats (issue 11 #5): for packed and planar
// tables, with and without the hot-row tier, every format the agent delivers equals what
// Pool::readRowsAs returns for the same row ids; refusals at creation; the C ABI's
// EP_AGENT_OUT is in test_agent_capi.cpp.
#include "agent_test_util.hpp"

using namespace eptest;
using namespace engrampool;

namespace {

// A pool with every layer of `m` imported from makeRandomSource(seed) in `layout`.
struct LayoutPool {
	ScopedPool pool{"emul", 64ull << 20};
	ModelConfig model;
	uint64_t seed;
	std::map<uint32_t, TableInfo> tables;
	LayoutPool(const ModelConfig &m, uint64_t s, format::TableLayout layout) : model(m), seed(s)
	{
		auto w = openPool(pool.uri(), true);
		for (uint32_t l : model.layerIds) {
			uint64_t rows = layerRows(model, l);
			auto src = io::makeRandomSource(model.rowFormat, rows, seed);
			ImportRequest req;
			req.model = &model;
			req.layerId = l;
			req.rows = rows;
			req.layout = layout;
			auto r = w->importTable(req, *src);
			if (!r)
				throw std::runtime_error("import layer " + std::to_string(l) + ": " + r.status().message());
			tables[l] = r->table;
		}
	}
};

AgentConfig formatConfig(const LayoutPool &p, int fmt, size_t cacheRows = 0)
{
	AgentConfig c;
	c.poolUri = p.pool.uri();
	c.model = &p.model;
	c.maxBatchTokens = 64;
	c.maxSequences = 64;
	c.slots = 2;
	c.registerHost = false;
	c.outFormat = fmt;
	c.cacheRows = cacheRows;
	c.cacheAdaptive = false; // the tier on every pass: its rows must convert on output
	return c;
}

// Bytes of n output rows in format fmt (PLANES: both planes).
size_t outputBytes(const RowFormat &f, int fmt, size_t n)
{
	return n * (fmt == EP_OUT_PLANES ? f.rowBytes() : outputRowBytes(f, fmt));
}

// Run `steps` random batches; every layer's output must equal readRowsAs of the expected ids.
void checkFormat(const LayoutPool &p, int fmt, size_t cacheRows, int steps, const std::string &label)
{
	auto a = makeAgent(formatConfig(p, fmt, cacheRows));
	auto reader = openPool(p.pool.uri(), false);
	Expect e(p.model);
	SequenceMix mix(e, p.model.tokenizerVocabSize, 5 + (uint64_t)fmt);
	const RowFormat &f = p.model.rowFormat;
	std::vector<uint8_t> want;
	for (int s = 0; s < steps; s++) {
		// Repeated tokens make repeated rows (dedup) and, with a tier, cache hits.
		mix.next(8, 6, 64, s % 2 == 1);
		uint64_t t = 0;
		ASSERT_EQ(0, a->prefetch(mix.entries.data(), mix.entries.size(), &t)) << label;
		ASSERT_EQ(0, a->wait(t, -1)) << label;
		for (uint32_t l = 0; l < a->layers(); l++) {
			LayerOutput o;
			ASSERT_EQ(0, a->output(t, l, &o)) << label;
			const auto &ids = mix.expected.rows[l];
			ASSERT_EQ((size_t)o.tokens * o.columns, ids.size()) << label;
			EXPECT_EQ((uint32_t)fmt, o.format) << label;
			uint32_t wantRow = fmt == EP_OUT_PACKED	  ? f.rowBytes()
					   : fmt == EP_OUT_PLANES ? f.valueBytes()
								  : (uint32_t)outputRowBytes(f, fmt);
			ASSERT_EQ(wantRow, o.rowBytes) << label;
			const TableInfo &ti = p.tables.at(p.model.layerIds[l]);
			want.assign(outputBytes(f, fmt, ids.size()), 0);
			ASSERT_TRUE(reader->readRowsAs(ti, ids.data(), ids.size(), fmt, want.data(), want.size()).isOk());
			if (fmt == EP_OUT_PACKED) {
				for (size_t i = 0; i < ids.size(); i++)
					ASSERT_EQ(0, std::memcmp(o.rows + i * o.rowStride, want.data() + i * f.rowBytes(),
								 f.rowBytes()))
						<< label << " step " << s << " layer " << l << " slot " << i;
			} else {
				ASSERT_EQ(o.rowStride, o.rowBytes) << label << ": converted rows have an exact pitch";
				size_t bad = 0;
				for (size_t i = 0; i < want.size(); i++)
					bad += o.rows[i] != want[i];
				ASSERT_EQ(0u, bad) << label << " step " << s << " layer " << l;
			}
		}
		ASSERT_EQ(0, a->release(t));
	}
	if (cacheRows) {
		auto j = metrics(*a);
		EXPECT_GT(j["cache"]["hits"].get<uint64_t>(), 0u) << label << ": the tier served rows";
	}
}

ModelConfig fp8Model()
{
	// fp8-e4m3 x 256 + e8m0 x 8 = 264 B, padded to 320 in a packed table.
	return makeModel(agentModelJson("fp8-e4m3", 256, 2, 64, true));
}

} // namespace

TEST(AgentFormats, EveryFormatEqualsReadRowsAsForPackedAndPlanarTables)
{
	ModelConfig m = fp8Model();
	for (auto layout : {format::TableLayout::Packed, format::TableLayout::Planar}) {
		LayoutPool p(m, 23, layout);
		const char *ln = layout == format::TableLayout::Planar ? "planar" : "packed";
		for (int fmt = EP_OUT_PACKED; fmt <= EP_OUT_PLANES; fmt++)
			checkFormat(p, fmt, 0, 4, std::string(ln) + " format " + std::to_string(fmt));
	}
}

TEST(AgentFormats, HotRowTierStaysPackedAndConvertsOnOutput)
{
	ModelConfig m = fp8Model();
	LayoutPool p(m, 29, format::TableLayout::Planar);
	for (int fmt : {EP_OUT_F32, EP_OUT_BF16, EP_OUT_PLANES})
		checkFormat(p, fmt, 4096, 8, "cached format " + std::to_string(fmt));
}

TEST(AgentFormats, UnscaledTablesWidenAndRefuseScaleFormats)
{
	ModelConfig m = makeModel(agentModelJson("bf16", 40, 4, 64));
	LayoutPool p(m, 31, format::TableLayout::Packed);
	for (int fmt : {EP_OUT_VALUES, EP_OUT_F32, EP_OUT_BF16})
		checkFormat(p, fmt, 0, 3, "bf16 format " + std::to_string(fmt));
	for (int fmt : {EP_OUT_SCALES, EP_OUT_PLANES}) {
		auto a = HostAgent::create(formatConfig(p, fmt));
		ASSERT_FALSE(a) << fmt;
		EXPECT_EQ(-EINVAL, a.code());
		EXPECT_NE(a.status().message().find("needs a scale block"), std::string::npos) << a.status().message();
	}
	for (int fmt : {-1, 6, 15}) {
		auto a = HostAgent::create(formatConfig(p, fmt));
		ASSERT_FALSE(a) << fmt;
		EXPECT_EQ(-EINVAL, a.code());
		EXPECT_NE(a.status().message().find("is unknown"), std::string::npos) << a.status().message();
	}
}
