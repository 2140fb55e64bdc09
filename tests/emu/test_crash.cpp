// SPDX-License-Identifier: Apache-2.0
// test_crash.cpp - crash consistency: a writer SIGKILLed after every persist point (and at random times) leaves the last committed generation whole.
#include "emu_util.hpp"

#include <chrono>
#include <thread>

using namespace engrampool;
using namespace eptest;

namespace {

enum class Op { ImportSameModel, ImportNewModel, ImportMappedModel, Replace, Remove, RemoveLast };

struct OpCase {
	const char *name;
	Op op;
};

// One crash scenario: a pool prepared with `before`, an operation that turns it into `after`.
class CrashPoints : public ::testing::TestWithParam<OpCase> {
protected:
	void SetUp() override
	{
		tiny_ = tinyModel();
		nlohmann::json j = tinyModelJson();
		j["name"] = "other";
		j["dtype"] = "bf16";
		other_ = makeModel(j);
		mapped_ = mappedModel();
		switch (GetParam().op) {
		case Op::ImportSameModel:
			before_ = {{{"base", {&tiny_, 11}}}, 1};
			after_ = {{{"base", {&tiny_, 11}}, {"new", {&tiny_, 12}}}, 1};
			break;
		case Op::ImportNewModel:
			before_ = {{{"base", {&tiny_, 11}}}, 1};
			after_ = {{{"base", {&tiny_, 11}}, {"new", {&other_, 13}}}, 2};
			break;
		case Op::ImportMappedModel: // the model record stores its token map (its own extent)
			before_ = {{{"base", {&tiny_, 11}}}, 1};
			after_ = {{{"base", {&tiny_, 11}}, {"new", {&mapped_, 13}}}, 2};
			break;
		case Op::Replace:
			before_ = {{{"base", {&tiny_, 11}}}, 1};
			after_ = {{{"base", {&tiny_, 14}}}, 1};
			break;
		case Op::Remove:
			before_ = {{{"base", {&tiny_, 11}}, {"keep", {&tiny_, 15}}}, 1};
			after_ = {{{"keep", {&tiny_, 15}}}, 1};
			break;
		case Op::RemoveLast:
			before_ = {{{"base", {&tiny_, 11}}}, 1};
			after_ = {{}, 0};
			break;
		}
	}

	// A fresh pool holding `before_`; returns its generation.
	uint64_t prepare(ScopedPool &sp)
	{
		auto w = openPool(sp.uri(), true);
		if (!importRandom(*w, tiny_, 1, 11, "base"))
			throw std::runtime_error("prepare base");
		if (before_.tables.count("keep") && !importRandom(*w, tiny_, 15, 15, "keep"))
			throw std::runtime_error("prepare keep");
		return *w->committedGeneration();
	}

	// The operation, run by the (possibly killed) writer. `again` = it already
	// committed once: an import is then redone as a replace.
	Status runOp(Pool &w, bool again)
	{
		switch (GetParam().op) {
		case Op::ImportSameModel: return importRandom(w, tiny_, 15, 12, "new", again).status();
		case Op::ImportNewModel: return importRandom(w, other_, 15, 13, "new", again).status();
		case Op::ImportMappedModel: return importRandom(w, mapped_, 15, 13, "new", again).status();
		case Op::Replace: return importRandom(w, tiny_, 1, 14, "base", true).status();
		case Op::Remove:
		case Op::RemoveLast: return again ? Status::ok() : w.removeTable("base");
		}
		return Status::ok();
	}

	// The writer child: the operation, or its redo when generation g0 has moved on.
	int childOp(const std::string &uri, uint64_t g0)
	{
		auto w = openPool(uri, true);
		Status s = runOp(*w, *w->committedGeneration() != g0);
		if (!s)
			fprintf(stderr, "child op: %s\n", s.message().c_str());
		return s ? 0 : 3;
	}

	ModelConfig tiny_, other_, mapped_;
	Expected before_, after_;
};

} // namespace

TEST_P(CrashPoints, KillAfterEveryPersist)
{
	int committed = 0, notCommitted = 0;
	uint64_t k = 1;
	for (;; k++) {
		ASSERT_LE(k, 64u) << "the writer never finished: more than 64 persist points?";
		SCOPED_TRACE("killed after persist " + std::to_string(k));
		ScopedPool sp("emul", 32ull << 20);
		uint64_t g0 = prepare(sp);
		int st = waitChild(forkChild([&] { return childOp(sp.uri(), g0); }, k));
		if (exitedOk(st))
			break; // k is past the last persist point
		ASSERT_TRUE(killedBySigkill(st)) << describeStatus(st);

		// The pool opens at the previous or the new generation, whole either way.
		uint64_t g;
		{
			auto r = openPool(sp.uri(), false);
			auto gr = r->committedGeneration();
			ASSERT_TRUE(gr) << gr.status().message();
			g = *gr;
		}
		ASSERT_TRUE(g == g0 || g == g0 + 1) << "generation " << g << " after a crash from " << g0;
		const Expected &now = g == g0 ? before_ : after_;
		(g == g0 ? notCommitted : committed)++;
		std::string problem = checkPoolHolds(sp.uri(), now, false);
		ASSERT_EQ(problem, "") << "before recovery, at generation " << g;

		// A second crash, during the next writer's recovery, changes nothing either.
		st = waitChild(forkChild([&] { return childOp(sp.uri(), g0); }, 1));
		ASSERT_TRUE(killedBySigkill(st) || exitedOk(st)) << describeStatus(st);
		if (killedBySigkill(st)) {
			uint64_t g2 = *openPool(sp.uri(), false)->committedGeneration();
			ASSERT_EQ(g2, g) << "a writer killed at its first persist committed nothing";
			ASSERT_EQ(checkPoolHolds(sp.uri(), now, false), "") << "after a crash in recovery";
		} else {
			g = g0 + 1; // the op was redone in full
		}

		// Recovery by the next writer, then the operation (again) succeeds.
		{
			auto w = openPool(sp.uri(), true);
			bool again = *w->committedGeneration() != g0;
			Status s = runOp(*w, again);
			ASSERT_TRUE(s.isOk()) << s.message();
		}
		ASSERT_EQ(checkPoolHolds(sp.uri(), after_, true), "") << "after recovery and redo";
	}
	uint64_t points = k - 1;
	RecordProperty("persist_points", (int)points);
	EXPECT_GE(points, 3u) << "data, entry, commit at least";
	EXPECT_GT(committed, 0) << "some kill points fall after the commit";
	EXPECT_GT(notCommitted, 0) << "some kill points fall before the commit";
	std::printf("%s: %llu persist points, %d before and %d after the commit\n", GetParam().name,
		    (unsigned long long)points, notCommitted, committed);
}

INSTANTIATE_TEST_SUITE_P(Ops, CrashPoints,
			 ::testing::Values(OpCase{"import", Op::ImportSameModel}, OpCase{"import_new_model", Op::ImportNewModel},
					   OpCase{"import_mapped_model", Op::ImportMappedModel},
					   OpCase{"replace", Op::Replace}, OpCase{"rm", Op::Remove},
					   OpCase{"rm_last", Op::RemoveLast}),
			 [](const ::testing::TestParamInfo<OpCase> &i) { return std::string(i.param.name); });

// The same through the CLI: EP_FAULT_KILL_AFTER_PERSIST=k engrampool_faulty import --replace
// (the test-only CLI; the shipping engrampool ignores the variable, checked below).
TEST(CrashCli, ImportReplaceKilledAtEveryPersistPoint)
{
	ModelConfig cfg = tinyModel();
	TempDir dir;
	std::string model = dir.file("tiny.json");
	writeFile(model, tinyModelJson().dump());
	ScopedPool sp("emul", 32ull << 20);
	{
		auto w = openPool(sp.uri(), true);
		ASSERT_TRUE(importRandom(*w, cfg, 1, 1, "t"));
	}
	uint64_t seed = 1;
	int kills = 0;
	for (uint64_t k = 1; k <= 64; k++) {
		SCOPED_TRACE("k=" + std::to_string(k));
		uint64_t g0 = *openPool(sp.uri(), false)->committedGeneration();
		CliResult r = runCliBinary(buildRoot() + "/tests/emu/engrampool_faulty",
					   "import " + sp.uri() + " --model " + model +
						   " --layer 1 --name t --replace --random --seed " + std::to_string(seed + 1),
					   "EP_FAULT_KILL_AFTER_PERSIST=" + std::to_string(k) + " ");
		if (r.rc == 0)
			break;
		ASSERT_EQ(r.rc, 128 + SIGKILL) << r.err;
		kills++;
		uint64_t g = *openPool(sp.uri(), false)->committedGeneration();
		ASSERT_TRUE(g == g0 || g == g0 + 1) << g << " from " << g0;
		if (g == g0 + 1)
			seed++;
		Expected e{{{"t", {&cfg, seed}}}, 1};
		ASSERT_EQ(checkPoolHolds(sp.uri(), e, false), "");
		// The CLI's own readers work on the crashed pool.
		EXPECT_EQ(runCli("verify " + sp.uri()).rc, 0);
		// The next CLI writer recovers; gc leaves nothing behind.
		CliResult gc = runCli("gc --json " + sp.uri());
		ASSERT_EQ(gc.rc, 0) << gc.err;
		EXPECT_EQ(gc.json()["pending_reclaim"], 0);
		ASSERT_EQ(checkPoolHolds(sp.uri(), e, true), "");
	}
	EXPECT_GE(kills, 4) << "data, entry, state word, removal word, commit";
	// The shipping CLI has no fault injection: the variable changes nothing.
	CliResult plain = runCli("import " + sp.uri() + " --model " + model + " --layer 1 --name t --replace --random --seed 99",
				 "EP_FAULT_KILL_AFTER_PERSIST=1 ");
	EXPECT_EQ(plain.rc, 0) << plain.err;
}

// A real external SIGKILL at random times during a larger import.
TEST(CrashRandom, ExternalSigkillDuringALargeImport)
{
	nlohmann::json j = tinyModelJson();
	j["name"] = "big";
	j["engram_vocab_size"] = {50000, 70000};
	j["n_embed_per_ngram"] = 512; // 128 fp32 values = 512 B rows
	ModelConfig big = makeModel(j);
	ModelConfig tiny = tinyModel();
	uint64_t bigBytes = layerRows(big, 1) * big.rowFormat.rowStride();
	ASSERT_GT(bigBytes, 200ull << 20);
	ScopedPool sp("emul", 2 * bigBytes + (64ull << 20)); // a replace holds both versions
	{
		auto w = openPool(sp.uri(), true);
		ASSERT_TRUE(importRandom(*w, tiny, 1, 1, "small"));
	}
	auto importBig = [&](uint64_t seed) {
		return [&, seed] {
			auto w = openPool(sp.uri(), true);
			return importRandom(*w, big, 1, seed, "big", true).isOk() || importRandom(*w, big, 1, seed, "big").isOk()
				       ? 0
				       : 3;
		};
	};
	// How long one full import takes here.
	auto t0 = std::chrono::steady_clock::now();
	int st = waitChild(forkChild(importBig(100)));
	ASSERT_TRUE(exitedOk(st)) << describeStatus(st);
	double fullMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
	uint64_t bigSeed = 100;
	ASSERT_EQ(checkPoolHolds(sp.uri(), {{{"small", {&tiny, 1}}, {"big", {&big, bigSeed}}}, 2}, true), "");

	std::mt19937_64 rng(20240601);
	int before = 0, after = 0;
	for (int i = 0; i < 6; i++) {
		uint64_t seed = 200 + i;
		double delayMs = std::uniform_real_distribution<double>(0.0, fullMs * 1.1)(rng);
		SCOPED_TRACE("kill " + std::to_string(i) + " after " + std::to_string(delayMs) + " ms of ~" +
			     std::to_string(fullMs));
		uint64_t g0 = *openPool(sp.uri(), false)->committedGeneration();
		pid_t pid = forkChild(importBig(seed));
		std::this_thread::sleep_for(std::chrono::microseconds((int64_t)(delayMs * 1000)));
		kill(pid, SIGKILL);
		st = waitChild(pid);
		ASSERT_TRUE(killedBySigkill(st) || exitedOk(st)) << describeStatus(st);
		uint64_t g = *openPool(sp.uri(), false)->committedGeneration();
		ASSERT_TRUE(g == g0 || g == g0 + 1) << g << " from " << g0;
		(g == g0 ? before : after)++;
		if (g == g0 + 1)
			bigSeed = seed;
		Expected e{{{"small", {&tiny, 1}}, {"big", {&big, bigSeed}}}, 2};
		ASSERT_EQ(checkPoolHolds(sp.uri(), e, false, 16), "");
		// Recovery: the next writer's open, then the import again.
		{
			auto w = openPool(sp.uri(), true);
			auto r = importRandom(*w, big, 1, seed, "big", true);
			ASSERT_TRUE(r) << r.status().message();
			bigSeed = seed;
		}
		e.tables["big"].second = bigSeed;
		ASSERT_EQ(checkPoolHolds(sp.uri(), e, true, 16), "");
	}
	std::printf("random kills: full import %.0f ms, %d before the commit, %d after\n", fullMs, before, after);
	EXPECT_GT(before, 0) << "at least one kill must land inside the import";
}

// Many external SIGKILLs at random times while a writer runs a random mix of import,
// replace and rm: after each, the pool opens at a committed generation, every visible
// table verifies, and once the next writer has recovered no space is leaked.
TEST(CrashRandom, HundredsOfKillsAcrossImportReplaceRm)
{
	ModelConfig tiny = tinyModel();
	ScopedPool sp("emul", 64ull << 20);
	const int kKills = 120;
	std::mt19937_64 rng(77);
	int killedMidway = 0, published = 0;
	uint64_t lastGen = 0;
	for (int i = 0; i < kKills; i++) {
		uint64_t opSeed = rng();
		pid_t pid = forkChild([&sp, &tiny, opSeed] {
			std::mt19937_64 r(opSeed);
			auto w = openPool(sp.uri(), true, 10000);
			if (!w)
				return 3;
			for (int k = 0; k < 50; k++) {
				uint64_t idx = r() % 6;
				std::string name = "t" + std::to_string(idx);
				// A replace keeps the table's layer (a different one is refused).
				uint32_t layer = (idx & 1) ? 1 : 15;
				(void)r();
				int op = (int)(r() % 3);
				auto snap = w->snapshot();
				if (!snap)
					return 4;
				bool exists = snap->findTable(name) != nullptr;
				if (op == 2 && exists) {
					if (!w->removeTable(name))
						return 5;
				} else if (!importRandom(*w, tiny, layer, r() % 1000, name, exists)) {
					return 6;
				}
			}
			return 0;
		});
		std::this_thread::sleep_for(std::chrono::microseconds(rng() % 4000));
		kill(pid, SIGKILL);
		int st = waitChild(pid);
		ASSERT_TRUE(killedBySigkill(st) || exitedOk(st)) << "kill " << i << ": " << describeStatus(st);
		killedMidway += killedBySigkill(st);
		// Readers see a whole committed generation that never goes backwards.
		auto r = openPool(sp.uri(), false);
		ASSERT_TRUE(r) << "kill " << i;
		auto snap = r->snapshot();
		ASSERT_TRUE(snap.isOk()) << "kill " << i << ": " << snap.status().message();
		ASSERT_GE(snap->generation, lastGen);
		published += snap->generation > lastGen;
		lastGen = snap->generation;
		auto v = r->verify();
		ASSERT_TRUE(v.isOk()) << v.status().message();
		for (auto &rep : *v)
			ASSERT_TRUE(rep.ok) << "kill " << i << ": " << rep.table << ": " << rep.problem;
		// The next writer recovers: afterwards the held space is exactly the visible tables.
		{
			auto w = openPool(sp.uri(), true, 10000);
			ASSERT_TRUE(w) << "kill " << i;
			auto s2 = w->snapshot();
			ASSERT_TRUE(s2.isOk());
			uint64_t visible = 0;
			for (auto &t : s2->tables)
				visible += t.extentBytes;
			ASSERT_EQ(s2->usedBytes, visible) << "kill " << i << ": space leaked";
			ASSERT_EQ(s2->pendingReclaim, 0u);
		}
	}
	std::printf("random kills across import/replace/rm: %d kills, %d landed mid-run, %d moved the generation\n", kKills,
		    killedMidway, published);
	EXPECT_GT(killedMidway, kKills / 2);
}
