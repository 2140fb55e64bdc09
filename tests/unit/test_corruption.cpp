// SPDX-License-Identifier: Apache-2.0
// test_corruption.cpp - random bytes in each pool area give the right error (library and CLI), never a crash.
#include "pool_fixture.hpp"

#include <filesystem>
#include <set>

#include "util/units.hpp"

using namespace engrampool;
using namespace engrampool::format;
using namespace eptest;

namespace {

// A file: pool with two tables: tiny/layer1 (seed 1) and t15 (seed 2).
class Corruption : public ::testing::Test {
protected:
	void SetUp() override
	{
		sp_ = std::make_unique<ScopedPool>("file", 32ull << 20);
		cfg_ = tinyModel();
		auto w = openPool(sp_->uri(), true);
		auto a = importRandom(*w, cfg_, 1, 1);
		auto b = importRandom(*w, cfg_, 15, 2, "t15");
		ASSERT_TRUE(a && b);
		t1_ = a->table;
		t15_ = b->table;
		auto s = w->snapshot();
		ASSERT_TRUE(s);
		ASSERT_EQ(s->models.size(), 1u);
		modelSlot_ = s->models[0].slot;
		modelFile_ = sp_->tmpFile("tiny.json");
		writeFile(modelFile_, tinyModelJson().dump());
	}
	std::string path() const { return sp_->backingPath(); }
	uint64_t entryOffset(uint32_t slot) const { return kCatalogOffset + (uint64_t)slot * kEntrySize; }

	Status openStatus(bool write) const
	{
		OpenOptions o;
		o.write = write;
		o.lockWaitMs = 500;
		auto p = Pool::open(sp_->uri(), o);
		return p.status();
	}
	Status snapshotStatus() const
	{
		auto p = openPool(sp_->uri(), false);
		return p->snapshot().status();
	}
	// The CLI fails with exactly one "engrampool: error: " line, a small exit code, no crash.
	void expectCliFails(const std::string &args, const std::string &needle = "")
	{
		CliResult r = runCli(args);
		EXPECT_NE(r.rc, 0) << args;
		EXPECT_LT(r.rc, 128) << args << ": killed by a signal?\n" << r.err;
		auto lines = r.errLines();
		ASSERT_EQ(lines.size(), 1u) << args << ":\n" << r.err;
		EXPECT_EQ(lines[0].rfind("engrampool: error: ", 0), 0u) << lines[0];
		if (!needle.empty()) {
			EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
		}
	}
	void expectCliReadersFail(const std::string &needle = "")
	{
		for (const char *cmd : {"ls", "stat", "verify"}) {
			expectCliFails(std::string(cmd) + " " + sp_->uri(), needle);
			expectCliFails(std::string(cmd) + " --json " + sp_->uri(), needle);
		}
	}

	std::unique_ptr<ScopedPool> sp_;
	ModelConfig cfg_;
	TableInfo t1_, t15_;
	uint32_t modelSlot_ = 0;
	std::string modelFile_;
};

} // namespace

TEST_F(Corruption, SuperblockRandomBytes)
{
	for (uint64_t seed = 1; seed <= 4; seed++) {
		pokeRandom(path(), 0, sizeof(Superblock), seed);
		for (bool write : {false, true}) {
			Status s = openStatus(write);
			EXPECT_TRUE(s.code() == EP_E_NOT_POOL || s.code() == EP_E_CORRUPT) << s.code() << " " << s.message();
			EXPECT_NE(s.message().find(sp_->uri()), std::string::npos) << "the error names the pool";
		}
	}
	expectCliReadersFail();
	expectCliFails("rm " + sp_->uri() + " t15");
	expectCliFails("import " + sp_->uri() + " --model " + modelFile_ + " --layer 1 --random --name x");
}

TEST_F(Corruption, SuperblockBodyKeepsMagicFailsCrc)
{
	pokeRandom(path(), 16, sizeof(Superblock) - 16, 99);
	for (bool write : {false, true}) {
		Status s = openStatus(write);
		EXPECT_EQ(s.code(), EP_E_CORRUPT) << s.message();
		EXPECT_NE(s.message().find("CRC"), std::string::npos) << s.message();
	}
	expectCliReadersFail("superblock");
}

TEST_F(Corruption, SuperblockOfAFutureMajorVersion)
{
	auto raw = peekBytes(path(), 0, sizeof(Superblock));
	Superblock sb;
	std::memcpy(&sb, raw.data(), sizeof(sb));
	sb.major = 2;
	sb.crc = superblockCrc(sb);
	pokeBytes(path(), 0, &sb, sizeof(sb));
	EXPECT_EQ(openStatus(false).code(), EP_E_VERSION);
	EXPECT_EQ(openStatus(true).code(), EP_E_VERSION);
	expectCliReadersFail("format 2.");
}

TEST_F(Corruption, GenerationWord)
{
	for (uint64_t seed = 1; seed <= 4; seed++) {
		pokeRandom(path(), kGenWordOffset, 8, seed);
		for (bool write : {false, true}) {
			Status s = openStatus(write);
			EXPECT_EQ(s.code(), EP_E_CORRUPT) << s.message();
			EXPECT_NE(s.message().find("generation"), std::string::npos) << s.message();
		}
	}
	// A torn store: the low half of generation 4's word over generation 3's.
	uint64_t g3 = encodeGenWord(3), g4 = encodeGenWord(4);
	uint64_t torn = (g4 & 0xffffffffull) | (g3 & ~0xffffffffull);
	pokeBytes(path(), kGenWordOffset, &torn, 8);
	EXPECT_EQ(openStatus(false).code(), EP_E_CORRUPT);
	expectCliReadersFail("generation");
	expectCliFails("rm " + sp_->uri() + " t15", "generation");
	// Restoring the word restores the pool.
	pokeBytes(path(), kGenWordOffset, &g3, 8);
	EXPECT_TRUE(snapshotStatus().isOk());
}

// A damaged catalog entry is quarantined: the other tables keep serving, verify names
// the slot, the writer keeps publishing, and repair unpublishes only what is damaged.
TEST_F(Corruption, CatalogEntryBodyIsQuarantined)
{
	for (uint32_t slot : {t1_.slot, t15_.slot}) {
		SCOPED_TRACE("slot " + std::to_string(slot));
		auto saved = peekBytes(path(), entryOffset(slot), kEntrySize);
		pokeRandom(path(), entryOffset(slot) + 16, kEntrySize - 16, slot + 5);
		auto p = openPool(sp_->uri(), false);
		auto s = p->snapshot();
		ASSERT_TRUE(s) << s.status().message();
		ASSERT_EQ(s->problems.size(), 1u);
		EXPECT_EQ(s->problems[0].slot, slot);
		EXPECT_NE(s->problems[0].problem.find("CRC"), std::string::npos) << s->problems[0].problem;
		const TableInfo &healthy = slot == t1_.slot ? t15_ : t1_;
		ASSERT_EQ(s->tables.size(), 1u);
		ASSERT_NE(s->findTable(healthy.name), nullptr) << "the healthy table keeps serving";
		EXPECT_EQ(rowMismatches(*p, *s->findTable(healthy.name), cfg_.rowFormat, healthy.name == "t15" ? 2 : 1, 100),
			  0u);
		auto v = p->verify();
		ASSERT_TRUE(v) << v.status().message();
		int bad = 0;
		for (auto &r : *v) {
			bad += !r.ok;
			if (!r.ok)
				EXPECT_NE(r.table.find("catalog slot " + std::to_string(slot)), std::string::npos) << r.table;
		}
		EXPECT_EQ(bad, 1);
		EXPECT_EQ(runCli("ls " + sp_->uri()).rc, 0);
		expectCliFails("verify " + sp_->uri(), "catalog slot " + std::to_string(slot));
		pokeBytes(path(), entryOffset(slot), saved.data(), saved.size());
		EXPECT_TRUE(openPool(sp_->uri(), false)->snapshot()->problems.empty()) << "restored";
	}
}

TEST_F(Corruption, DamagedModelEntryQuarantinesItsTablesOnly)
{
	// A second model with its own table stays readable when the first model's entry breaks.
	ModelConfig other = tinyModel();
	other.name = "other";
	{
		auto w = openPool(sp_->uri(), true);
		ASSERT_TRUE(importRandom(*w, other, 1, 9));
	}
	pokeRandom(path(), entryOffset(modelSlot_) + 64, 32, 3);
	auto s = openPool(sp_->uri(), false)->snapshot();
	ASSERT_TRUE(s) << s.status().message();
	ASSERT_EQ(s->tables.size(), 1u);
	EXPECT_EQ(s->tables[0].model, "other");
	EXPECT_GE(s->problems.size(), 3u) << "the model slot and both of its tables";
}

// Issue 10 #2: a bad body CRC on one table used to block rm of that very table.
TEST_F(Corruption, DamagedTableIsRemovedByNameOrSlot)
{
	// Bytes under the CRC that leave the name and extent readable (importTimeNs).
	pokeRandom(path(), entryOffset(t15_.slot) + offsetof(CatalogEntry, table) + offsetof(TableBody, importTimeNs), 8, 3);
	{
		auto w = openPool(sp_->uri(), true);
		auto r = importRandom(*w, cfg_, 15, 7, "new");
		ASSERT_TRUE(r) << "the writer publishes around a quarantined slot: " << r.status().message();
		EXPECT_NE(r->table.slot, t15_.slot) << "a quarantined slot is never reused";
		EXPECT_NE(r->table.dataOffset, t15_.dataOffset) << "nor its extent";
	}
	CliResult rm = runCli("rm " + sp_->uri() + " t15");
	ASSERT_EQ(rm.rc, 0) << rm.err;
	auto p = openPool(sp_->uri(), false);
	auto s = p->snapshot();
	ASSERT_TRUE(s);
	EXPECT_TRUE(s->problems.empty());
	EXPECT_NE(s->findTable("new"), nullptr);
	EXPECT_NE(s->findTable("tiny/layer1"), nullptr);
	auto v = p->verify();
	ASSERT_TRUE(v);
	for (auto &r : *v)
		EXPECT_TRUE(r.ok) << r.table << ": " << r.problem;
	// And by slot, for an entry whose name is unreadable.
	auto s2 = openPool(sp_->uri(), false)->snapshot();
	uint32_t slot = s2->findTable("new")->slot;
	pokeRandom(path(), entryOffset(slot) + 16, kEntrySize - 16, 4);
	CliResult bySlot = runCli("rm " + sp_->uri() + " --slot " + std::to_string(slot));
	ASSERT_EQ(bySlot.rc, 0) << bySlot.err;
	EXPECT_EQ(runCli("verify " + sp_->uri()).rc, 0);
	// No host reads it, so its slot was reclaimed at once.
	expectCliFails("rm " + sp_->uri() + " --slot " + std::to_string(slot), "is free");
	expectCliFails("rm " + sp_->uri() + " --slot 100000", "outside");
	expectCliFails("rm " + sp_->uri() + " t15 --slot 3", "not both");
}

// Issue 10 #2: one bad byte in the state word of an UNUSED slot (the reproducer's offset
// 65536 + 10 * 512) used to fail every command; only 'create --force' recovered.
TEST_F(Corruption, UnusedSlotStateWordIsQuarantinedAndRepaired)
{
	const uint32_t slot = 10;
	ASSERT_NE(slot, t1_.slot);
	ASSERT_NE(slot, t15_.slot);
	ASSERT_NE(slot, modelSlot_);
	uint8_t bad = 0x5a;
	pokeBytes(path(), entryOffset(slot), &bad, 1);
	for (const char *cmd : {"ls", "stat", "hosts", "gc"}) {
		CliResult r = runCli(std::string(cmd) + " " + sp_->uri());
		EXPECT_EQ(r.rc, 0) << cmd << ": " << r.err;
	}
	auto p = openPool(sp_->uri(), false);
	auto s = p->snapshot();
	ASSERT_TRUE(s) << s.status().message();
	EXPECT_EQ(s->tables.size(), 2u);
	EXPECT_EQ(rowMismatches(*p, *s->findTable("t15"), cfg_.rowFormat, 2, 100), 0u);
	CliResult v = runCli("verify --json " + sp_->uri());
	EXPECT_EQ(v.rc, 1);
	auto doc = v.json();
	ASSERT_FALSE(doc.is_discarded()) << v.out;
	EXPECT_EQ(doc["ok"], false);
	ASSERT_EQ(doc["problems"].size(), 1u) << doc.dump();
	EXPECT_EQ(doc["problems"][0]["table"], "catalog slot 10");
	EXPECT_NE(doc["problems"][0]["problem"].get<std::string>().find("state word"), std::string::npos);
	EXPECT_EQ(doc["tables"].size(), 2u);
	// Writers keep working around it, and repair clears it (one publish, journaled).
	{
		auto w = openPool(sp_->uri(), true);
		ASSERT_TRUE(importRandom(*w, cfg_, 1, 5, "more"));
	}
	CliResult rep = runCli("verify --repair --json " + sp_->uri());
	ASSERT_EQ(rep.rc, 0) << rep.err << rep.out;
	auto rj = rep.json();
	ASSERT_EQ(rj["repaired"].size(), 1u) << rj.dump();
	EXPECT_NE(rj["repaired"][0].get<std::string>().find("catalog slot 10"), std::string::npos);
	EXPECT_EQ(rj["ok"], true);
	EXPECT_EQ(peekBytes(path(), entryOffset(slot), 8), std::vector<uint8_t>(8, 0)) << "the slot is free again";
	EXPECT_EQ(openPool(sp_->uri(), false)->snapshot()->tables.size(), 3u);
}

// A state word that breaks while its entry is intact is restored from the entry: the
// table comes back, nothing is lost.
TEST_F(Corruption, StateWordRestoredFromAnIntactEntry)
{
	pokeRandom(path(), entryOffset(t15_.slot), 8, 21);
	auto s = openPool(sp_->uri(), false)->snapshot();
	ASSERT_TRUE(s);
	EXPECT_EQ(s->findTable("t15"), nullptr) << "quarantined while the word is bad";
	ASSERT_EQ(s->problems.size(), 1u);
	EXPECT_NE(s->problems[0].problem.find("state word"), std::string::npos);
	EXPECT_TRUE(openStatus(true).isOk()) << "recovery skips a quarantined slot";
	CliResult rep = runCli("verify --repair " + sp_->uri());
	ASSERT_EQ(rep.rc, 0) << rep.err;
	EXPECT_NE(rep.out.find("restored"), std::string::npos) << rep.out;
	auto p = openPool(sp_->uri(), false);
	auto s2 = p->snapshot();
	ASSERT_TRUE(s2 && s2->findTable("t15"));
	EXPECT_EQ(s2->findTable("t15")->slot, t15_.slot);
	EXPECT_EQ(rowMismatches(*p, *s2->findTable("t15"), cfg_.rowFormat, 2, 200), 0u);

	// A broken removal word on a live table: repair makes it live again (its name is free).
	pokeRandom(path(), entryOffset(t1_.slot) + 8, 8, 22);
	auto s3 = openPool(sp_->uri(), false)->snapshot();
	ASSERT_TRUE(s3);
	EXPECT_EQ(s3->findTable("tiny/layer1"), nullptr);
	EXPECT_NE(s3->problems.at(0).problem.find("removal word"), std::string::npos);
	ASSERT_EQ(runCli("verify --repair " + sp_->uri()).rc, 0);
	EXPECT_NE(openPool(sp_->uri(), false)->snapshot()->findTable("tiny/layer1"), nullptr);
}

TEST_F(Corruption, CatalogOffsetOutsideTheRegionIsCaughtByBounds)
{
	struct Case {
		const char *what;
		void (*mutate)(TableBody &, const TableInfo &other);
		const char *needle;
	} cases[] = {
		{"far outside", [](TableBody &t, const TableInfo &) { t.dataOffset = 1ull << 45; }, "outside the data area"},
		{"past the end", [](TableBody &t, const TableInfo &) { t.dataOffset = 32ull << 20; }, "outside the data area"},
		{"into metadata", [](TableBody &t, const TableInfo &) { t.dataOffset = 0; }, "outside the data area"},
		{"extent overruns", [](TableBody &t, const TableInfo &) { t.extentBytes = 64ull << 20; }, "outside"},
		{"wrapping extent",
		 [](TableBody &t, const TableInfo &) { t.extentBytes = ~0ull - (2ull << 20) + 1; }, "outside"},
		{"rows beyond extent",
		 [](TableBody &t, const TableInfo &) { t.rows = 1ull << 40, t.dataBytes = t.rows * t.rowStride; }, "row"},
		{"overlaps another table",
		 [](TableBody &t, const TableInfo &o) { t.dataOffset = o.dataOffset; }, "overlaps"},
	};
	for (auto &c : cases) {
		SCOPED_TRACE(c.what);
		auto saved = peekBytes(path(), entryOffset(t1_.slot), kEntrySize);
		CatalogEntry e;
		std::memcpy(&e, saved.data(), sizeof(e));
		ASSERT_EQ(e.crc, entryCrc(e));
		c.mutate(e.table, t15_);
		e.crc = entryCrc(e); // a valid CRC: only the bounds checks can catch it
		pokeBytes(path(), entryOffset(t1_.slot), &e, sizeof(e));
		auto p = openPool(sp_->uri(), false);
		auto s = p->snapshot();
		ASSERT_TRUE(s) << s.status().message();
		EXPECT_EQ(s->findTable("tiny/layer1"), nullptr) << "never served";
		ASSERT_FALSE(s->problems.empty());
		bool named = false;
		for (auto &pr : s->problems)
			named |= pr.problem.find(c.needle) != std::string::npos;
		EXPECT_TRUE(named) << s->problems[0].problem;
		auto v = p->verify();
		ASSERT_TRUE(v) << "verify never hashes out-of-bounds memory: " << v.status().message();
		bool reported = false;
		for (auto &r : *v)
			reported |= !r.ok && r.table == "tiny/layer1";
		EXPECT_TRUE(reported) << "verify names the table";
		expectCliFails("verify " + sp_->uri(), "tiny/layer1");
		pokeBytes(path(), entryOffset(t1_.slot), saved.data(), saved.size());
	}
	EXPECT_TRUE(snapshotStatus().isOk());
}

TEST_F(Corruption, TableDataBytesFailOnlyThatTable)
{
	pokeRandom(path(), t15_.dataOffset + 1000 * t15_.rowStride, 100, 8);
	auto p = openPool(sp_->uri(), false);
	auto s = p->snapshot();
	ASSERT_TRUE(s) << "data corruption leaves the catalog readable";
	auto v = p->verify();
	ASSERT_TRUE(v) << v.status().message();
	ASSERT_EQ(v->size(), 2u);
	for (auto &r : *v) {
		if (r.table == "t15") {
			EXPECT_FALSE(r.ok);
			EXPECT_NE(r.expected, r.actual);
			EXPECT_NE(r.problem.find("checksum"), std::string::npos) << r.problem;
		} else {
			EXPECT_TRUE(r.ok) << r.table;
		}
	}
	EXPECT_EQ(rowMismatches(*p, *s->findTable("tiny/layer1"), cfg_.rowFormat, 1, 100), 0u);
	expectCliFails("verify " + sp_->uri(), "t15");
	CliResult j = runCli("verify --json " + sp_->uri());
	EXPECT_EQ(j.rc, 1);
	auto doc = j.json();
	ASSERT_FALSE(doc.is_discarded()) << j.out;
	EXPECT_EQ(doc["ok"], false);
	EXPECT_EQ(doc["bad_tables"], 1);
	ASSERT_EQ(doc["tables"].size(), 2u);
	for (auto &t : doc["tables"])
		EXPECT_EQ(t["ok"].get<bool>(), t["table"] != "t15") << t.dump();
	CliResult one = runCli("verify " + sp_->uri() + " --table tiny/layer1");
	EXPECT_EQ(one.rc, 0) << one.err;
	EXPECT_EQ(runCli("ls " + sp_->uri()).rc, 0) << "listing still works";
}

TEST_F(Corruption, MasterRecordsBlockWritersNotReaders)
{
	pokeRandom(path(), kMasterOffset, 2 * sizeof(MasterRecord), 4);
	Status s = openStatus(true);
	EXPECT_EQ(s.code(), EP_E_CORRUPT) << s.message();
	EXPECT_NE(s.message().find("master"), std::string::npos) << s.message();
	EXPECT_TRUE(snapshotStatus().isOk());
	auto p = openPool(sp_->uri(), false);
	EXPECT_EQ(p->master().code(), EP_E_CORRUPT);
	expectCliFails("rm " + sp_->uri() + " t15", "master");
	expectCliFails("master " + sp_->uri(), "master");
	EXPECT_EQ(runCli("ls " + sp_->uri()).rc, 0);
	// Taking mastership writes a fresh record: the pool is writable again.
	CliResult take = runCli("master --take --json " + sp_->uri());
	ASSERT_EQ(take.rc, 0) << take.err;
	EXPECT_EQ(take.json()["this_host"], true);
	auto w = openPool(sp_->uri(), true);
	EXPECT_TRUE(w->removeTable("t15").isOk());
}

TEST_F(Corruption, HostSlotIsReportedNotTrusted)
{
	pokeRandom(path(), kHostsOffset + 3 * kHostSlotSize, sizeof(HostSlot), 6);
	auto p = openPool(sp_->uri(), false);
	auto hs = p->hosts();
	ASSERT_EQ(hs.size(), 1u);
	EXPECT_EQ(hs[0].index, 3u);
	EXPECT_TRUE(hs[0].corrupt);
	EXPECT_FALSE(hs[0].live);
	CliResult r = runCli("hosts --json " + sp_->uri());
	ASSERT_EQ(r.rc, 0) << r.err;
	auto j = r.json();
	ASSERT_FALSE(j.is_discarded());
	ASSERT_EQ(j["hosts"].size(), 1u);
	EXPECT_EQ(j["hosts"][0]["state"], "corrupt");
	// A writer still works: a corrupt slot blocks nothing.
	auto w = openPool(sp_->uri(), true);
	ASSERT_TRUE(w->removeTable("t15").isOk());
}

TEST_F(Corruption, TruncatedAndForeignFiles)
{
	ASSERT_EQ(truncate(path().c_str(), 16ull << 20), 0);
	Status s = openStatus(false);
	EXPECT_EQ(s.code(), EP_E_CORRUPT) << s.message();
	EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.message();
	expectCliReadersFail("truncated");
	ASSERT_EQ(truncate(path().c_str(), 1ull << 20), 0);
	EXPECT_EQ(openStatus(false).code(), EP_E_NOT_POOL);
	expectCliReadersFail();
	// A file of random bytes is not a pool, and destroy refuses to delete it.
	std::string foreign = sp_->tmpFile("foreign");
	writeFile(foreign, std::string(8u << 20, 'x'));
	pokeRandom(foreign, 0, 4096, 1);
	OpenOptions o;
	EXPECT_EQ(Pool::open("file:" + foreign, o).code(), EP_E_NOT_POOL);
	expectCliFails("ls file:" + foreign, "superblock");
	expectCliFails("destroy file:" + foreign);
	EXPECT_EQ(access(foreign.c_str(), F_OK), 0) << "destroy never unlinks a non-pool";
}

// Issue 10 #7: verify checks everything and names every problem; --json always prints.
TEST_F(Corruption, VerifyReportsEveryProblemByName)
{
	// One bad master record beside the valid one used to report "0 bad", rc 0.
	pokeRandom(path(), kMasterOffset + sizeof(MasterRecord), sizeof(MasterRecord), 5);
	CliResult m = runCli("verify --json " + sp_->uri());
	EXPECT_EQ(m.rc, 1);
	auto mj = m.json();
	ASSERT_FALSE(mj.is_discarded()) << m.out;
	ASSERT_EQ(mj["problems"].size(), 1u) << mj.dump();
	EXPECT_EQ(mj["problems"][0]["table"], "master record B");
	ASSERT_EQ(runCli("verify --repair " + sp_->uri()).rc, 0);
	EXPECT_EQ(runCli("verify " + sp_->uri()).rc, 0) << "the record was rewritten from the valid one";

	// CRC-valid tables that disagree with their model: layer, row format, fingerprint.
	auto rewrite = [&](uint32_t slot, void (*mutate)(TableBody &)) {
		auto raw = peekBytes(path(), entryOffset(slot), kEntrySize);
		CatalogEntry e;
		std::memcpy(&e, raw.data(), sizeof(e));
		mutate(e.table);
		e.crc = entryCrc(e);
		pokeBytes(path(), entryOffset(slot), &e, sizeof(e));
	};
	rewrite(t1_.slot, [](TableBody &t) { t.layerId = 7; });
	rewrite(t15_.slot, [](TableBody &t) { t.modelFingerprint ^= 1; });
	// And two damaged entries: an unused slot's state word and a third slot's body.
	uint8_t junk = 0x77;
	pokeBytes(path(), entryOffset(20), &junk, 1);
	pokeBytes(path(), entryOffset(21) + 100, &junk, 1);
	pokeBytes(path(), entryOffset(21), &junk, 1);
	CliResult r = runCli("verify --json " + sp_->uri());
	EXPECT_EQ(r.rc, 1);
	auto j = r.json();
	ASSERT_FALSE(j.is_discarded()) << r.out;
	std::set<std::string> named;
	for (auto &p : j["problems"])
		named.insert(p["table"].get<std::string>() + ": " + p["problem"].get<std::string>());
	auto has = [&](const std::string &who, const std::string &what) {
		for (auto &n : named)
			if (n.rfind(who + ": ", 0) == 0 && n.find(what) != std::string::npos)
				return true;
		return false;
	};
	EXPECT_TRUE(has("tiny/layer1", "layer 7")) << j.dump(1);
	EXPECT_TRUE(has("t15", "fingerprint")) << j.dump(1);
	EXPECT_TRUE(has("catalog slot 20", "state word")) << j.dump(1);
	EXPECT_TRUE(has("catalog slot 21", "state word")) << j.dump(1);
	EXPECT_EQ(named.size(), 4u) << j.dump(1);
	CliResult text = runCli("verify " + sp_->uri());
	EXPECT_EQ(text.rc, 1);
	for (const char *who : {"tiny/layer1", "t15", "catalog slot 20", "catalog slot 21"})
		EXPECT_NE(text.err.find(who), std::string::npos) << who << ": " << text.err;
	// Row format: a dtype that is not the model's.
	rewrite(t1_.slot, [](TableBody &t) {
		t.layerId = 1;
		t.dtype = (uint32_t)Dtype::Fp16;
	});
	CliResult f = runCli("verify --json " + sp_->uri());
	EXPECT_NE(f.out.find("row format"), std::string::npos) << f.out;
	// An unopenable pool still gets a JSON document.
	pokeRandom(path(), 0, 64, 9);
	CliResult gone = runCli("verify --json " + sp_->uri());
	EXPECT_EQ(gone.rc, 1);
	auto gj = gone.json();
	ASSERT_FALSE(gj.is_discarded()) << gone.out;
	EXPECT_EQ(gj["ok"], false);
	EXPECT_FALSE(gj["error"].get<std::string>().empty());
}

// Issue 10 #15: garbage host slots are cleared by gc; a heartbeat in the future is not
// trusted (the host used to stay "live" until that time plus the lease).
TEST_F(Corruption, GcClearsCorruptHostSlotsAndFutureHeartbeatsAreNotLive)
{
	for (uint32_t i : {3u, 4u, 200u})
		pokeRandom(path(), kHostsOffset + (uint64_t)i * kHostSlotSize, sizeof(HostSlot), i);
	HostSlot future{};
	future.state = 1;
	future.pid = 1;
	future.heartbeatNs = nowRealtimeNs() + 3600ull * 1000000000ull;
	future.leaseMs = 1000;
	future.seq = 2;
	future.crc = hostSlotCrc(future);
	pokeBytes(path(), kHostsOffset + 7ull * kHostSlotSize, &future, sizeof(future));
	{
		auto p = openPool(sp_->uri(), false);
		auto hs = p->hosts();
		ASSERT_EQ(hs.size(), 4u);
		for (auto &h : hs) {
			EXPECT_FALSE(h.live) << h.index;
			if (h.index == 7)
				EXPECT_TRUE(h.futureHeartbeat);
			else
				EXPECT_TRUE(h.corrupt) << h.index;
		}
	}
	CliResult gc = runCli("gc " + sp_->uri());
	ASSERT_EQ(gc.rc, 0) << gc.err;
	EXPECT_TRUE(openPool(sp_->uri(), false)->hosts().empty()) << "corrupt and future-dated slots are cleared";
}

// Issue 10 #12: one byte appended to a pool file made it unopenable (libpmem2 refused
// a length that is not a page multiple). The superblock's size is what is mapped.
TEST_F(Corruption, BytesAppendedToThePoolFileAreIgnored)
{
	uint64_t size = std::filesystem::file_size(path());
	{
		FILE *f = fopen(path().c_str(), "ab");
		ASSERT_NE(f, nullptr);
		fputc('x', f);
		fclose(f);
	}
	EXPECT_EQ(std::filesystem::file_size(path()), size + 1);
	CliResult ls = runCli("ls " + sp_->uri());
	EXPECT_EQ(ls.rc, 0) << ls.err;
	EXPECT_EQ(runCli("verify " + sp_->uri()).rc, 0);
	auto w = openPool(sp_->uri(), true);
	EXPECT_TRUE(importRandom(*w, cfg_, 1, 3, "after"));
	// A page more than the pool is ignored too.
	ASSERT_EQ(truncate(path().c_str(), (off_t)(size + 8192)), 0);
	EXPECT_EQ(runCli("ls " + sp_->uri()).rc, 0);
}
