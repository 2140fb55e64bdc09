// SPDX-License-Identifier: Apache-2.0
// test_corruption.cpp - random bytes in each pool area give the right error (library and CLI), never a crash.
#include "pool_fixture.hpp"

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
	expectCliReadersFail("2.0");
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

TEST_F(Corruption, CatalogEntryBodyNamesTheSlot)
{
	for (uint32_t slot : {t1_.slot, t15_.slot, modelSlot_}) {
		auto saved = peekBytes(path(), entryOffset(slot), kEntrySize);
		pokeRandom(path(), entryOffset(slot) + 16, kEntrySize - 16, slot + 5);
		EXPECT_TRUE(openStatus(false).isOk()) << "open reads only the superblock and generation";
		Status s = snapshotStatus();
		EXPECT_EQ(s.code(), EP_E_CORRUPT) << s.message();
		EXPECT_NE(s.message().find("catalog slot " + std::to_string(slot)), std::string::npos) << s.message();
		auto p = openPool(sp_->uri(), false);
		EXPECT_EQ(p->verify().code(), EP_E_CORRUPT);
		expectCliReadersFail("catalog slot " + std::to_string(slot));
		pokeBytes(path(), entryOffset(slot), saved.data(), saved.size());
		EXPECT_TRUE(snapshotStatus().isOk()) << "restored";
	}
}

TEST_F(Corruption, CatalogEntryBodyBlocksTheWriterToo)
{
	pokeRandom(path(), entryOffset(t15_.slot) + 64, 64, 3);
	uint64_t meta = metadataHash(path());
	{
		OpenOptions o;
		o.write = true;
		auto w = Pool::open(sp_->uri(), o);
		if (w) {
			// Recovery may pass (the state words are intact), but nothing is published.
			auto r = importRandom(**w, cfg_, 15, 7, "new");
			EXPECT_EQ(r.code(), EP_E_CORRUPT);
			EXPECT_EQ((*w)->removeTable("tiny/layer1").code(), EP_E_CORRUPT);
		} else {
			EXPECT_EQ(w.code(), EP_E_CORRUPT);
		}
	}
	EXPECT_EQ(metadataHash(path()), meta) << "a writer never builds on a corrupted catalog";
	expectCliFails("rm " + sp_->uri() + " tiny/layer1", "catalog slot");
}

TEST_F(Corruption, CatalogStateAndRemovalWords)
{
	auto saved = peekBytes(path(), entryOffset(t15_.slot), 16);
	pokeRandom(path(), entryOffset(t15_.slot), 8, 21);
	Status s = snapshotStatus();
	EXPECT_EQ(s.code(), EP_E_CORRUPT);
	EXPECT_NE(s.message().find("catalog slot " + std::to_string(t15_.slot)), std::string::npos) << s.message();
	EXPECT_EQ(openStatus(true).code(), EP_E_CORRUPT) << "recovery refuses a corrupted state word";
	expectCliReadersFail("state word");
	pokeBytes(path(), entryOffset(t15_.slot), saved.data(), saved.size());

	pokeRandom(path(), entryOffset(t1_.slot) + 8, 8, 22);
	s = snapshotStatus();
	EXPECT_EQ(s.code(), EP_E_CORRUPT);
	EXPECT_NE(s.message().find("removal word"), std::string::npos) << s.message();
	EXPECT_EQ(openStatus(true).code(), EP_E_CORRUPT);
	expectCliReadersFail("catalog slot " + std::to_string(t1_.slot));
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
		 [](TableBody &t, const TableInfo &o) { t.dataOffset = o.dataOffset; }, "share data"},
	};
	for (auto &c : cases) {
		auto saved = peekBytes(path(), entryOffset(t1_.slot), kEntrySize);
		CatalogEntry e;
		std::memcpy(&e, saved.data(), sizeof(e));
		ASSERT_EQ(e.crc, entryCrc(e));
		c.mutate(e.table, t15_);
		e.crc = entryCrc(e); // a valid CRC: only the bounds checks can catch it
		pokeBytes(path(), entryOffset(t1_.slot), &e, sizeof(e));
		Status s = snapshotStatus();
		EXPECT_EQ(s.code(), EP_E_CORRUPT) << c.what << ": " << s.message();
		EXPECT_NE(s.message().find(c.needle), std::string::npos) << c.what << ": " << s.message();
		auto p = openPool(sp_->uri(), false);
		EXPECT_EQ(p->verify().code(), EP_E_CORRUPT) << c.what << ": verify never hashes out-of-bounds memory";
		expectCliReadersFail();
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
