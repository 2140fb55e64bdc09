// SPDX-License-Identifier: Apache-2.0
// test_crash_checkpoint.cpp - import --checkpoint SIGKILLed at every persist point: a whole committed generation.
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <set>

#include "../io/checkpoint_fixture.hpp"
#include "emu_util.hpp"

using namespace eptest;

namespace {

// Every visible table is whole and equals the checkpoint; the set is a prefix of the
// layers in import order; verify finds nothing. Returns "" when all is well.
std::string checkWhole(const std::string &uri, const GeneratedCheckpoint &ck, const std::string &model,
		       size_t &published)
{
	auto p = openPool(uri, false);
	auto s = p->snapshot();
	if (!s)
		return "snapshot: " + s.status().message();
	if (!s->problems.empty())
		return "quarantined slot: " + s->problems[0].problem;
	published = 0;
	bool gap = false;
	for (uint32_t L : {1u, 14u}) {
		const TableInfo *t = s->findTable(model + "/layer" + std::to_string(L));
		if (!t) {
			gap = true;
			continue;
		}
		if (gap)
			return "layer " + std::to_string(L) + " is published but an earlier layer is not";
		published++;
		auto want = ck.packedRows(L);
		if (t->rows * t->rowStride != want.size() || std::memcmp(p->tableData(*t), want.data(), want.size()) != 0)
			return "layer " + std::to_string(L) + "'s rows differ from the checkpoint";
	}
	auto v = p->verify();
	if (!v)
		return "verify: " + v.status().message();
	for (auto &r : *v)
		if (!r.ok)
			return "verify: " + r.table + ": " + r.problem;
	return "";
}

} // namespace

TEST(CrashCheckpoint, ImportKilledAtEveryPersistPoint)
{
	const std::string faulty = buildRoot() + "/tests/emu/engrampool_faulty";
	if (access(faulty.c_str(), X_OK) != 0)
		GTEST_SKIP() << faulty << " not built";
	TempDir dir;
	const std::string ckDir = dir.file("v41");
	std::filesystem::create_directory(ckDir);
	auto ck = makeCheckpoint(ckDir);
	int kills = 0;
	size_t lastPublished = 0;
	std::set<size_t> seen;
	for (uint64_t k = 1; k <= 200; k++) {
		SCOPED_TRACE("k=" + std::to_string(k));
		ScopedPool sp("emul", 64ull << 20);
		uint64_t g0 = *openPool(sp.uri(), false)->committedGeneration();
		CliResult r = runCliBinary(faulty, "import " + sp.uri() + " --checkpoint " + ckDir,
					   "EP_FAULT_KILL_AFTER_PERSIST=" + std::to_string(k) + " ");
		if (r.rc == 0) {
			size_t n = 0;
			ASSERT_EQ(checkWhole(sp.uri(), ck, "v41", n), "");
			EXPECT_EQ(n, 2u);
			break;
		}
		ASSERT_EQ(r.rc, 128 + SIGKILL) << r.err;
		kills++;
		size_t published = 0;
		ASSERT_EQ(checkWhole(sp.uri(), ck, "v41", published), "");
		uint64_t g = *openPool(sp.uri(), false)->committedGeneration();
		EXPECT_EQ(g, g0 + published) << "one generation per published layer";
		EXPECT_GE(published, lastPublished) << "a later kill published less";
		lastPublished = published;
		seen.insert(published);
		// The re-run recovers, skips what was published and completes the rest.
		CliResult rerun = runCli("import " + sp.uri() + " --checkpoint " + ckDir + " --json");
		ASSERT_EQ(rerun.rc, 0) << rerun.err;
		const nlohmann::json j = rerun.json();
		ASSERT_TRUE(j.is_object()) << rerun.out;
		size_t skipped = 0;
		for (const auto &t : j["tables"])
			skipped += t["skipped"].get<bool>();
		EXPECT_EQ(skipped, published);
		size_t n = 0;
		ASSERT_EQ(checkWhole(sp.uri(), ck, "v41", n), "");
		EXPECT_EQ(n, 2u);
		CliResult gc = runCli("gc --json " + sp.uri());
		ASSERT_EQ(gc.rc, 0) << gc.err;
		EXPECT_EQ(gc.json()["pending_reclaim"], 0);
	}
	EXPECT_GE(kills, 8) << "data, entries, state words, commit: for each of two layers";
	// Kills before layer 1's commit, and between the two layers' commits, both happened.
	EXPECT_TRUE(seen.count(0) && seen.count(1)) << "published counts seen: " << seen.size();
}
