// SPDX-License-Identifier: Apache-2.0
// test_token_map_pool.cpp - the pool stores a model's token map (format 1.1): import,
// read back (C++, C ABI, CLI), damage, quarantine, reclaim, `model --from-pool`.
#include "pool_fixture.hpp"

#include <engrampool/engrampool.h>

#include "agent/agent.hpp"
#include "io/npy.hpp"
#include "pool/model_record.hpp"
#include "util/host_identity.hpp"
#include "util/units.hpp"

using namespace engrampool;
using namespace engrampool::format;
using namespace eptest;

namespace {

uint64_t entryOffset(uint32_t slot)
{
	return kCatalogOffset + (uint64_t)slot * kEntrySize;
}

CatalogEntry readEntry(const std::string &path, uint32_t slot)
{
	auto b = peekBytes(path, entryOffset(slot), sizeof(CatalogEntry));
	CatalogEntry e;
	std::memcpy(&e, b.data(), sizeof(e));
	return e;
}

// Rewrite a catalog entry with a fresh CRC: only the changed field is wrong.
void writeEntryResealed(const std::string &path, uint32_t slot, CatalogEntry e)
{
	e.crc = entryCrc(e);
	pokeBytes(path, entryOffset(slot), &e, sizeof(e));
}

const ModelRecord &onlyModel(const Snapshot &s)
{
	if (s.models.size() != 1)
		throw std::runtime_error("expected one model, found " + std::to_string(s.models.size()));
	return s.models[0];
}

// A file: pool with the mapped model's two tables.
class StoredMap : public ::testing::Test {
protected:
	void SetUp() override
	{
		sp_ = std::make_unique<ScopedPool>("file", 32ull << 20);
		cfg_ = mappedModel();
		auto w = openPool(sp_->uri(), true);
		auto a = importRandom(*w, cfg_, 1, 1);
		ASSERT_TRUE(a) << a.status().message();
		auto b = importRandom(*w, cfg_, 15, 2);
		ASSERT_TRUE(b) << b.status().message();
		t1_ = a->table;
		t15_ = b->table;
		auto s = w->snapshot();
		ASSERT_TRUE(s);
		model_ = onlyModel(*s);
	}
	std::string path() const { return sp_->backingPath(); }

	std::unique_ptr<ScopedPool> sp_;
	ModelConfig cfg_;
	TableInfo t1_, t15_;
	ModelRecord model_;
};

} // namespace

TEST_F(StoredMap, ImportStoresTheMapOnceAndReadsItBack)
{
	ASSERT_TRUE(model_.tokenMapStored());
	const ModelBody &b = model_.body;
	EXPECT_EQ(b.vocabMapEntries, 1000u);
	EXPECT_EQ(b.vocabMapExtentBytes, kAlignUnit);
	EXPECT_EQ(b.vocabMapOffset % kAlignUnit, 0u);
	EXPECT_EQ(b.vocabMapHash, cfg_.vocabMapHash);
	EXPECT_EQ(b.compressedVocabSize, 700u);
	// Its own extent, apart from both tables'.
	for (const TableInfo *t : {&t1_, &t15_})
		EXPECT_TRUE(b.vocabMapOffset + b.vocabMapExtentBytes <= t->dataOffset ||
			    t->dataOffset + t->extentBytes <= b.vocabMapOffset)
			<< "map at " << b.vocabMapOffset << " overlaps " << t->name;
	// int64 little-endian on media, exactly the model's map.
	auto raw = peekBytes(path(), b.vocabMapOffset, 1000 * sizeof(int64_t));
	EXPECT_EQ(std::memcmp(raw.data(), mappedTokenMap().data(), raw.size()), 0);

	auto p = openPool(sp_->uri(), false);
	auto map = p->tokenMap("mapped");
	ASSERT_TRUE(map) << map.status().message();
	EXPECT_EQ(*map, mappedTokenMap());
	auto s = p->snapshot();
	ASSERT_TRUE(s);
	EXPECT_EQ(s->usedBytes, t1_.extentBytes + t15_.extentBytes + kAlignUnit) << "the map holds one extent";
	EXPECT_TRUE(s->problems.empty());
	auto v = p->verify();
	ASSERT_TRUE(v);
	int mapChecks = 0;
	for (auto &r : *v) {
		EXPECT_TRUE(r.ok) << r.table << ": " << r.problem;
		mapChecks += r.tokenMap;
	}
	EXPECT_EQ(mapChecks, 1);
}

TEST_F(StoredMap, CApiCopiesTheMapAndCounts)
{
	ep_pool *p = nullptr;
	ASSERT_EQ(ep_pool_open(&p, sp_->uri().c_str(), EP_OPEN_READONLY), 0) << ep_errormsg();
	size_t n = 0;
	ASSERT_EQ(ep_pool_model_token_map(p, "mapped", nullptr, 0, &n), 0) << ep_errormsg();
	EXPECT_EQ(n, 1000u);
	std::vector<int64_t> small(10, -1);
	ASSERT_EQ(ep_pool_model_token_map(p, "mapped", small.data(), small.size(), &n), 0);
	EXPECT_EQ(n, 1000u) << "the count is the map's, not the copy's";
	EXPECT_TRUE(std::equal(small.begin(), small.end(), mappedTokenMap().begin()));
	std::vector<int64_t> all(n + 5, -1);
	ASSERT_EQ(ep_pool_model_token_map(p, "mapped", all.data(), all.size(), &n), 0);
	EXPECT_TRUE(std::equal(mappedTokenMap().begin(), mappedTokenMap().end(), all.begin()));
	EXPECT_EQ(all[1000], -1) << "nothing written past the map";
	EXPECT_EQ(ep_pool_model_token_map(p, "mapped", nullptr, 5, &n), -EINVAL);
	EXPECT_EQ(ep_pool_model_token_map(p, "mapped", nullptr, 0, nullptr), -EINVAL);
	EXPECT_EQ(ep_pool_model_token_map(p, "nope", nullptr, 0, &n), -ENOENT);
	EXPECT_NE(std::string(ep_errormsg()).find("no model named 'nope'"), std::string::npos) << ep_errormsg();
	ep_pool_close(&p);
}

TEST(StoredMapIdentity, AnIdentityModelStoresNothingAndSaysSo)
{
	ScopedPool sp("file", 32ull << 20);
	ModelConfig cfg = tinyModel();
	auto w = openPool(sp.uri(), true);
	auto a = importRandom(*w, cfg, 1, 1);
	ASSERT_TRUE(a) << a.status().message();
	auto s = w->snapshot();
	ASSERT_TRUE(s);
	const ModelRecord &m = onlyModel(*s);
	EXPECT_FALSE(m.tokenMapStored());
	EXPECT_EQ(m.body.vocabMapOffset, 0u);
	EXPECT_EQ(m.body.vocabMapExtentBytes, 0u);
	EXPECT_EQ(m.body.vocabMapEntries, 0u);
	EXPECT_EQ(s->usedBytes, a->table.extentBytes);
	auto map = w->tokenMap("tiny");
	ASSERT_FALSE(map);
	EXPECT_EQ(map.code(), -ENOENT);
	EXPECT_NE(map.status().message().find("has no token map"), std::string::npos) << map.status().message();
	EXPECT_NE(map.status().message().find("'tiny'"), std::string::npos);
	auto none = w->tokenMap("absent");
	ASSERT_FALSE(none);
	EXPECT_EQ(none.code(), -ENOENT);
	EXPECT_NE(none.status().message().find("no model named 'absent'"), std::string::npos);
	// A model record of format 1.0 (no map stored, but the model uses one) says what it lacks.
	CatalogEntry e = readEntry(sp.backingPath(), m.slot);
	e.model.vocabMapHash = 0x1234;
	writeEntryResealed(sp.backingPath(), m.slot, e);
	auto old = openPool(sp.uri(), false)->tokenMap("tiny");
	ASSERT_FALSE(old);
	EXPECT_EQ(old.code(), -ENOENT);
	EXPECT_NE(old.status().message().find("does not store"), std::string::npos) << old.status().message();
}

TEST_F(StoredMap, DamagedMapBytesAreCorruptAndTheTablesStillServe)
{
	int64_t junk = 5; // entry 0 is 0: a valid id, so only the checksum can tell
	pokeBytes(path(), model_.body.vocabMapOffset, &junk, sizeof(junk));
	auto p = openPool(sp_->uri(), false);
	auto map = p->tokenMap("mapped");
	ASSERT_FALSE(map);
	EXPECT_EQ(map.code(), EP_E_CORRUPT);
	EXPECT_NE(map.status().message().find("model 'mapped'"), std::string::npos) << map.status().message();
	EXPECT_NE(map.status().message().find("checksum"), std::string::npos) << map.status().message();
	// The tables are not touched by it.
	auto s = p->snapshot();
	ASSERT_TRUE(s);
	EXPECT_EQ(s->tables.size(), 2u);
	EXPECT_EQ(s->models.size(), 1u);
	EXPECT_EQ(rowMismatches(*p, *s->findTable(t1_.name), cfg_.rowFormat, 1, 100), 0u);
	EXPECT_EQ(rowMismatches(*p, *s->findTable(t15_.name), cfg_.rowFormat, 2, 100), 0u);
	// verify names it; the C ABI says the same.
	auto v = p->verify();
	ASSERT_TRUE(v);
	int bad = 0;
	for (auto &r : *v)
		if (!r.ok) {
			bad++;
			EXPECT_TRUE(r.tokenMap);
			EXPECT_EQ(r.table, "mapped");
			EXPECT_EQ(r.expected, cfg_.vocabMapHash);
			EXPECT_NE(r.actual, r.expected);
		}
	EXPECT_EQ(bad, 1);
	ep_pool *cp = nullptr;
	ASSERT_EQ(ep_pool_open(&cp, sp_->uri().c_str(), EP_OPEN_READONLY), 0);
	size_t n = 99;
	EXPECT_EQ(ep_pool_model_token_map(cp, "mapped", nullptr, 0, &n), EP_E_CORRUPT);
	EXPECT_EQ(n, 0u);
	EXPECT_NE(std::string(ep_errormsg()).find("'mapped'"), std::string::npos) << ep_errormsg();
	EXPECT_EQ(ep_pool_verify_tables(cp, nullptr, &n), EP_E_CHECKSUM);
	EXPECT_EQ(n, 1u);
	ep_pool_close(&cp);
	CliResult r = runCli("verify " + sp_->uri());
	EXPECT_EQ(r.rc, 1) << r.err;
	EXPECT_NE(r.out.find("mapped (token map)"), std::string::npos) << r.out;
	EXPECT_NE(r.err.find("mapped (token map)"), std::string::npos) << r.err;
}

TEST_F(StoredMap, AnIdOutsideTheCompressedVocabularyIsCorruptEvenWithAMatchingChecksum)
{
	std::vector<int64_t> forged = mappedTokenMap();
	forged[7] = 700; // == V': one past the last compressed id
	pokeBytes(path(), model_.body.vocabMapOffset, forged.data(), forged.size() * sizeof(int64_t));
	CatalogEntry e = readEntry(path(), model_.slot);
	e.model.vocabMapHash = xxh3(forged.data(), forged.size() * sizeof(int64_t));
	writeEntryResealed(path(), model_.slot, e);
	// The record's map checksum no longer adds up to its fingerprint.
	auto map = openPool(sp_->uri(), false)->tokenMap("mapped");
	ASSERT_FALSE(map);
	EXPECT_EQ(map.code(), EP_E_CORRUPT);
	EXPECT_NE(map.status().message().find("fingerprint"), std::string::npos) << map.status().message();
	// Forge the fingerprint too: the id range still gives it away.
	ModelConfig forgedCfg = cfg_;
	forgedCfg.vocabMapHash = e.model.vocabMapHash;
	e.model.fingerprint = modelFingerprint(forgedCfg);
	writeEntryResealed(path(), model_.slot, e);
	map = openPool(sp_->uri(), false)->tokenMap("mapped");
	ASSERT_FALSE(map);
	EXPECT_EQ(map.code(), EP_E_CORRUPT);
	EXPECT_NE(map.status().message().find("entry 7 is 700"), std::string::npos) << map.status().message();
}

// A model body whose map fields are wrong (CRC recomputed, so only they are) is
// quarantined with its tables; readers keep working and repair clears it.
struct BadMapCase {
	const char *name;
	void (*edit)(ModelBody &b, const Superblock &sb);
};

class BadMapBody : public StoredMap, public ::testing::WithParamInterface<BadMapCase> {};

TEST_P(BadMapBody, QuarantinesTheModelAndItsTables)
{
	auto sb = openPool(sp_->uri(), false)->superblock();
	CatalogEntry e = readEntry(path(), model_.slot);
	GetParam().edit(e.model, sb);
	writeEntryResealed(path(), model_.slot, e);

	auto p = openPool(sp_->uri(), false);
	auto s = p->snapshot();
	ASSERT_TRUE(s) << s.status().message();
	EXPECT_TRUE(s->models.empty());
	EXPECT_TRUE(s->tables.empty()) << "the tables of a quarantined model are not served";
	bool modelProblem = false;
	int tableProblems = 0;
	for (auto &pr : s->problems) {
		if (pr.kind == "model" && pr.slot == model_.slot) {
			modelProblem = true;
			EXPECT_NE(pr.problem.find("token map"), std::string::npos) << pr.problem;
		}
		if (pr.kind == "table") {
			tableProblems++;
			EXPECT_NE(pr.problem.find("is quarantined"), std::string::npos) << pr.problem;
		}
	}
	EXPECT_TRUE(modelProblem);
	EXPECT_EQ(tableProblems, 2);
	auto map = p->tokenMap("mapped");
	ASSERT_FALSE(map);
	EXPECT_EQ(map.code(), EP_E_CORRUPT);
	EXPECT_NE(map.status().message().find("model 'mapped' is quarantined"), std::string::npos)
		<< map.status().message();
	p.reset();

	// The CLI readers report, never crash.
	for (const char *cmd : {"ls", "stat", "verify", "ls --json", "verify --json"}) {
		CliResult r = runCli(std::string(cmd) + " " + sp_->uri());
		EXPECT_LT(r.rc, 2) << cmd << ": " << r.err;
	}
	CliResult fromPool = runCli("model --from-pool " + sp_->uri() + " --name mapped --out " + sp_->tmpFile("m.json"));
	EXPECT_EQ(fromPool.rc, 1);
	EXPECT_NE(fromPool.err.find("quarantined"), std::string::npos) << fromPool.err;

	// Repair unpublishes the model and its tables; the model imports again after it.
	{
		auto w = openPool(sp_->uri(), true);
		auto done = w->repair();
		ASSERT_TRUE(done) << done.status().message();
		auto s2 = w->snapshot();
		ASSERT_TRUE(s2);
		EXPECT_TRUE(s2->problems.empty());
		auto again = importRandom(*w, cfg_, 1, 3);
		ASSERT_TRUE(again) << again.status().message();
		auto m2 = w->tokenMap("mapped");
		ASSERT_TRUE(m2) << m2.status().message();
		EXPECT_EQ(*m2, mappedTokenMap());
	}
}

INSTANTIATE_TEST_SUITE_P(
	Fields, BadMapBody,
	::testing::Values(
		BadMapCase{"offset_past_the_data_area",
			   [](ModelBody &b, const Superblock &sb) { b.vocabMapOffset = sb.dataOffset + sb.dataBytes; }},
		BadMapCase{"offset_in_the_metadata", [](ModelBody &b, const Superblock &) { b.vocabMapOffset = kAlignUnit / 2; }},
		BadMapCase{"offset_misaligned", [](ModelBody &b, const Superblock &) { b.vocabMapOffset += 4096; }},
		BadMapCase{"extent_runs_past_the_end",
			   [](ModelBody &b, const Superblock &sb) {
				   b.vocabMapOffset = sb.dataOffset + sb.dataBytes - kAlignUnit;
				   b.vocabMapExtentBytes = 2 * kAlignUnit;
			   }},
		BadMapCase{"extent_zero", [](ModelBody &b, const Superblock &) { b.vocabMapExtentBytes = 0; }},
		BadMapCase{"extent_too_small_for_the_entries",
			   [](ModelBody &b, const Superblock &) {
				   b.tokenizerVocabSize = b.vocabMapEntries = kAlignUnit / 8 + 1;
			   }},
		BadMapCase{"entries_not_the_tokenizer_size", [](ModelBody &b, const Superblock &) { b.vocabMapEntries = 999; }},
		BadMapCase{"offset_zero_with_entries", [](ModelBody &b, const Superblock &) { b.vocabMapOffset = 0; }}),
	[](const ::testing::TestParamInfo<BadMapCase> &i) { return std::string(i.param.name); });

TEST_F(StoredMap, AMapOverlappingATableQuarantinesBoth)
{
	CatalogEntry e = readEntry(path(), model_.slot);
	e.model.vocabMapOffset = t15_.dataOffset;
	writeEntryResealed(path(), model_.slot, e);
	auto s = openPool(sp_->uri(), false)->snapshot();
	ASSERT_TRUE(s) << s.status().message();
	EXPECT_TRUE(s->models.empty());
	EXPECT_TRUE(s->tables.empty());
	bool named = false;
	for (auto &pr : s->problems)
		named |= pr.kind == "model" && pr.problem.find("overlaps") != std::string::npos;
	EXPECT_TRUE(named);
}

// A pool with room for exactly one table of the mapped model and its map.
TEST(StoredMapSpace, TheMapHoldsItsExtentUntilTheModelIsReclaimed)
{
	ModelConfig mapped = mappedModel();
	const uint64_t tableExtent = (layerRows(mapped, 1) * mapped.rowFormat.rowStride() + kAlignUnit - 1) / kAlignUnit *
				     kAlignUnit;
	ScopedPool sp("file", kDataOffset + tableExtent + kAlignUnit);
	// A model whose one table fits in one 2 MiB extent.
	nlohmann::json sj = tinyModelJson();
	sj["name"] = "small";
	sj["engram_vocab_size"] = {500, 700};
	ModelConfig small = makeModel(sj);
	ASSERT_LE(layerRows(small, 1) * small.rowFormat.rowStride(), kAlignUnit);

	auto w = openPool(sp.uri(), true);
	auto a = importRandom(*w, mapped, 1, 1);
	ASSERT_TRUE(a) << a.status().message();
	auto full = importRandom(*w, small, 1, 2);
	ASSERT_FALSE(full) << "the map's extent is held";
	EXPECT_EQ(full.code(), -ENOSPC);

	// A live host that has not seen the removal keeps both extents held.
	HostSlot h{};
	Uuid id{};
	ASSERT_TRUE(parseUuid("11111111-2222-3333-4444-555555555555", id));
	std::memcpy(h.hostUuid, id.data(), 16);
	h.pid = 1;
	h.state = 1;
	h.attachTimeNs = h.heartbeatNs = nowRealtimeNs();
	h.observedGen = a->generation;
	h.leaseMs = 60000;
	ASSERT_TRUE(w->writeHostSlot(3, h).isOk());
	ASSERT_TRUE(w->removeTable(a->table.name).isOk());
	auto s = w->snapshot();
	ASSERT_TRUE(s);
	EXPECT_TRUE(s->models.empty()) << "the model goes with its last table";
	EXPECT_EQ(s->usedBytes, tableExtent + kAlignUnit) << "table and map await reclaim";
	auto blocked = importRandom(*w, small, 1, 2);
	ASSERT_FALSE(blocked) << "a removed model's map is held until no host can read it";
	EXPECT_EQ(blocked.code(), -ENOSPC);

	// The host moves on: both extents are free, and the same model fits again.
	h.observedGen = *w->committedGeneration();
	ASSERT_TRUE(w->writeHostSlot(3, h).isOk());
	auto freed = w->reclaim();
	ASSERT_TRUE(freed);
	EXPECT_EQ(*freed, 2u) << "the table and its model";
	s = w->snapshot();
	ASSERT_TRUE(s);
	EXPECT_EQ(s->usedBytes, 0u);
	auto again = importRandom(*w, mapped, 1, 3);
	ASSERT_TRUE(again) << again.status().message();
	auto map = w->tokenMap("mapped");
	ASSERT_TRUE(map) << map.status().message();
	EXPECT_EQ(*map, mappedTokenMap());
	ASSERT_TRUE(w->writeHostSlot(3, HostSlot{}).isOk());
}

// `engrampool model --from-pool` writes a model file and map that load back to the
// pool's fingerprint; ls, stat and verify show the stored map.
TEST(StoredMapCli, ModelFromPoolRoundTrip)
{
	TempDir dir;
	ScopedPool sp("file", 32ull << 20);
	std::vector<uint64_t> shape{mappedTokenMap().size()};
	ASSERT_TRUE(io::writeNpy(dir.file("mapped.npy"), "<i8", shape, mappedTokenMap().data(),
				 mappedTokenMap().size() * sizeof(int64_t)));
	writeFile(dir.file("mapped.json"), mappedModelJson().dump());
	writeFile(dir.file("tiny.json"), tinyModelJson().dump());
	for (auto [model, layer] : {std::pair{"mapped.json", 1}, {"mapped.json", 15}, {"tiny.json", 1}}) {
		CliResult r = runCli("import " + sp.uri() + " --model " + dir.file(model) + " --layer " +
				     std::to_string(layer) + " --random");
		ASSERT_EQ(r.rc, 0) << model << " " << layer << ": " << r.err;
	}
	auto orig = loadModelFile(dir.file("mapped.json"));
	ASSERT_TRUE(orig) << orig.status().message();

	CliResult r = runCli("model --from-pool " + sp.uri() + " --out " + dir.file("back.json"));
	EXPECT_EQ(r.rc, 1) << "two models: --name is needed";
	EXPECT_NE(r.err.find("--name"), std::string::npos) << r.err;
	r = runCli("model --from-pool " + sp.uri() + " --name mapped --out " + dir.file("back.json"));
	ASSERT_EQ(r.rc, 0) << r.err;
	auto back = loadModelFile(dir.file("back.json"));
	ASSERT_TRUE(back) << back.status().message();
	EXPECT_EQ(modelFingerprint(*back), modelFingerprint(*orig));
	EXPECT_EQ(back->vocabMap, mappedTokenMap());
	EXPECT_EQ(back->vocabMapPath, dir.file("back.vocab_map.npy"));
	// The CLI's own view of the written file agrees.
	r = runCli("model --json " + dir.file("back.json"));
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_EQ(r.json()["fingerprint"], fingerprintHex(modelFingerprint(*orig)));
	// Refuses to overwrite without --force; --force rewrites.
	r = runCli("model --from-pool " + sp.uri() + " --name mapped --out " + dir.file("back.json"));
	EXPECT_EQ(r.rc, 1);
	EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
	r = runCli("model --from-pool " + sp.uri() + " --name mapped --force --json --out " + dir.file("back.json"));
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_EQ(r.json()["fingerprint"], fingerprintHex(modelFingerprint(*orig)));
	// An identity model: a model file and no map.
	r = runCli("model --from-pool " + sp.uri() + " --name tiny --out " + dir.file("tiny_back.json"));
	ASSERT_EQ(r.rc, 0) << r.err;
	auto tb = loadModelFile(dir.file("tiny_back.json"));
	ASSERT_TRUE(tb) << tb.status().message();
	EXPECT_EQ(modelFingerprint(*tb), modelFingerprint(tinyModel()));
	EXPECT_FALSE(std::ifstream(dir.file("tiny_back.vocab_map.npy")).good());
	r = runCli("model --from-pool " + sp.uri() + " --name nope --out " + dir.file("x.json"));
	EXPECT_EQ(r.rc, 1);
	EXPECT_NE(r.err.find("no model named 'nope'"), std::string::npos) << r.err;

	r = runCli("ls --json " + sp.uri());
	ASSERT_EQ(r.rc, 0) << r.err;
	const nlohmann::json ls = r.json();
	ASSERT_EQ(ls["models"].size(), 2u);
	for (auto &m : ls["models"]) {
		if (m["name"] == "mapped") {
			EXPECT_EQ(m["token_map"]["stored"], true);
			EXPECT_EQ(m["token_map"]["entries"], 1000);
			EXPECT_EQ(m["token_map"]["bytes"], 8000);
		} else {
			EXPECT_EQ(m["token_map"]["stored"], false);
			EXPECT_EQ(m["token_map"]["identity"], true);
		}
	}
	r = runCli("ls " + sp.uri());
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_NE(r.out.find("token map stored, 1000 ids -> 700"), std::string::npos) << r.out;
	r = runCli("stat --json " + sp.uri());
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_EQ(r.json()["format"], "1.1");
	ASSERT_EQ(r.json()["token_maps"].size(), 2u);
	r = runCli("stat " + sp.uri());
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_NE(r.out.find("token map stored: 1000 ids"), std::string::npos) << r.out;
	r = runCli("verify --json " + sp.uri());
	ASSERT_EQ(r.rc, 0) << r.err;
	ASSERT_EQ(r.json()["token_maps"].size(), 1u);
	EXPECT_EQ(r.json()["token_maps"][0]["table"], "mapped");
	EXPECT_EQ(r.json()["token_maps"][0]["ok"], true);
	EXPECT_EQ(r.json()["token_maps"][0]["expected_xxh3"], fingerprintHex(orig->vocabMapHash));
	// --table MODEL checks only that model's map; a model without one has nothing to check.
	r = runCli("verify --json --table mapped " + sp.uri());
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_EQ(r.json()["token_maps"].size(), 1u);
	EXPECT_EQ(r.json()["tables"].size(), 0u);
	r = runCli("verify --json --table tiny " + sp.uri());
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_EQ(r.json()["token_maps"].size(), 0u);
}

// poolModelConfig: the model a pool stores, map included, rebuilds to its fingerprint;
// an agent given "pool:NAME" (no model file) hashes and gathers exactly like one given
// the model file.
TEST_F(StoredMap, AnAgentTakesItsModelFromThePool)
{
	auto r = openPool(sp_->uri(), false);
	auto cfg = poolModelConfig(*r, "");
	ASSERT_TRUE(cfg) << cfg.status().message();
	EXPECT_EQ(modelFingerprint(*cfg), modelFingerprint(cfg_));
	EXPECT_EQ(cfg->vocabMap, cfg_.vocabMap);
	auto named = poolModelConfig(*r, cfg_.name);
	ASSERT_TRUE(named);
	EXPECT_EQ(poolModelConfig(*r, "nope").code(), -ENOENT);

	AgentConfig fromFile, fromPool;
	fromFile.poolUri = fromPool.poolUri = sp_->uri();
	fromFile.model = &cfg_;
	fromPool.modelPath = std::string(kPoolModelPrefix) + cfg_.name;
	for (AgentConfig *c : {&fromFile, &fromPool}) {
		c->maxBatchTokens = 64;
		c->maxSequences = 4;
		c->slots = 2;
		c->registerHost = false;
	}
	auto a = HostAgent::create(fromFile);
	ASSERT_TRUE(a) << a.status().message();
	auto b = HostAgent::create(fromPool);
	ASSERT_TRUE(b) << b.status().message();
	// Token ids spread over the raw vocabulary, so the map matters.
	std::vector<int64_t> tok;
	for (int i = 0; i < 40; i++)
		tok.push_back((i * 97 + 13) % (int64_t)cfg_.tokenizerVocabSize);
	auto rowsOf = [&](HostAgent &ag) {
		BatchEntry e{};
		e.seqId = 7;
		e.tokens = tok.data();
		e.count = (uint32_t)tok.size();
		e.flags = kSeqStart | kSeqEnd;
		uint64_t ticket = 0;
		EXPECT_EQ(ag.prefetch(&e, 1, &ticket), 0);
		std::vector<uint8_t> all;
		for (uint32_t l = 0; l < cfg_.layerIds.size(); l++) {
			EXPECT_EQ(ag.wait(ticket, (int)l), 0);
			LayerOutput out{};
			EXPECT_EQ(ag.output(ticket, l, &out), 0);
			all.insert(all.end(), out.rows, out.rows + (size_t)out.tokens * out.columns * out.rowStride);
		}
		ag.release(ticket);
		return all;
	};
	auto ra = rowsOf(**a), rb = rowsOf(**b);
	ASSERT_FALSE(ra.empty());
	EXPECT_EQ(ra, rb);

	AgentConfig missing = fromPool;
	missing.modelPath = std::string(kPoolModelPrefix) + "nope";
	auto c = HostAgent::create(missing);
	ASSERT_FALSE(c);
	EXPECT_EQ(c.code(), -ENOENT);
	EXPECT_NE(c.status().message().find("nope"), std::string::npos) << c.status().message();
}
