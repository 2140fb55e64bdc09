// SPDX-License-Identifier: Apache-2.0
// test_agent_pool_safety.cpp - the agent against a pool that goes wrong under it (issue 10):
//  #1 a pool file truncated under a live agent: heartbeat, detach, a generation change and
//     gathers report an error and the process lives;
//  #3 a refresh that fails (corrupted catalog slot, missing table) never drops the good view;
//     the agent reports it and moves on once the pool reads clean;
//  #4 a reader without a host slot (the agent of `engrampool lookup`, ep_pool_read_rows) that
//     is paused between a read and its validation while two replaces reuse the extent it
//     read returns the old rows or re-reads the new generation's, never a mix.
#include "agent_test_util.hpp"

#include <thread>

#include "agent/read_guard.hpp"
#include "gather/sigbus.hpp"

using namespace eptest;
using namespace engrampool;

namespace {

struct WholeBatch {
	std::vector<int64_t> tokens;
	BatchEntry entry;
	ExpectedTicket expected;
	WholeBatch(const Expect &e, std::vector<int64_t> t, uint64_t seq) : tokens(std::move(t))
	{
		entry = {seq, tokens.data(), (uint32_t)tokens.size(), kSeqStart | kSeqEnd};
		auto ids = e.rowIds(tokens);
		expected.tokens = (uint32_t)tokens.size();
		expected.rows.assign(e.layers(), {});
		size_t n = tokens.size() * e.columns();
		for (size_t l = 0; l < e.layers(); l++)
			expected.rows[l].assign(ids.begin() + l * n, ids.begin() + (l + 1) * n);
	}
};

std::vector<int64_t> randomTokens(size_t n, uint64_t vocab, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	std::vector<int64_t> v(n);
	for (auto &x : v)
		x = (int64_t)(rng() % vocab);
	return v;
}

// Run a batch; mismatches per layer against `seeds` (UINT64_MAX: the ticket failed).
uint64_t runWhole(HostAgent &a, const WholeBatch &w, const ModelConfig &m, std::vector<uint64_t> seeds,
		  uint64_t *generation = nullptr, int *rcOut = nullptr)
{
	uint64_t t = 0;
	int rc = a.prefetch(&w.entry, 1, &t);
	if (rc == 0)
		rc = a.wait(t);
	if (rcOut)
		*rcOut = rc;
	if (rc != 0) {
		if (t)
			(void)a.release(t);
		return UINT64_MAX;
	}
	uint64_t bad = 0;
	for (uint32_t l = 0; l < a.layers(); l++)
		bad += outputMismatches(a, t, w.expected, m.rowFormat, seeds[l], (int)l, generation);
	if (a.release(t) != 0)
		return UINT64_MAX;
	return bad;
}

bool contains(const std::string &s, const std::string &what) { return s.find(what) != std::string::npos; }

void sleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Clears the read hook however a test ends.
struct HookScope {
	HookScope(testhooks::ReadHook h, void *ctx) { testhooks::setReadHook(h, ctx); }
	~HookScope() { testhooks::setReadHook(nullptr, nullptr); }
};

} // namespace

// ---- #1: a truncated pool ---------------------------------------------------------------

TEST(AgentPoolSafety, GuardedInvokeCatchesSigbusAndRethrowsExceptions)
{
	ASSERT_EQ(0, gather::installSigbusHandler());
	TempDir d;
	std::string path = d.file("f");
	int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ftruncate(fd, 8192));
	auto *p = static_cast<volatile uint8_t *>(mmap(nullptr, 8192, PROT_READ, MAP_SHARED, fd, 0));
	ASSERT_NE((void *)p, MAP_FAILED);
	ASSERT_EQ(0, ftruncate(fd, 0));
	uintptr_t addr = 0;
	int seen = 0;
	EXPECT_EQ(-EFAULT, gather::guardedInvoke([&] { seen = p[4096]; }, &addr));
	EXPECT_EQ(reinterpret_cast<uintptr_t>(p) + 4096, addr);
	// An exception leaves the guard disarmed and reaches the caller.
	EXPECT_THROW(gather::guardedInvoke([] { throw std::runtime_error("x"); }, &addr), std::runtime_error);
	EXPECT_EQ(-EFAULT, gather::guardedInvoke([&] { seen = p[0]; }, &addr)) << "the guard works after a throw";
	(void)seen;
	munmap((void *)p, 8192);
	close(fd);
}

TEST(AgentPoolSafety, TruncatedPoolUnderARegisteredAgentKillsNothing)
{
	// `examples/decode_loop` on a file: pool, then `truncate -s 0` of the pool file: the
	// heartbeat thread and ep_agent_destroy's detach wrote the host slot unguarded (SIGBUS).
	int rc = runForked([]() -> int {
		ModelConfig m = tinyModel();
		AgentPool p(m, 9, 32ull << 20, "file");
		AgentConfig c = agentConfig(p, 256);
		c.registerHost = true;
		c.heartbeatMs = 5;
		auto a = makeAgent(c);
		Expect e(m);
		WholeBatch w(e, randomTokens(100, m.tokenizerVocabSize, 1), 1);
		if (runWhole(*a, w, m, {p.seed, p.seed}) != 0)
			return 10;
		if (truncate(p.pool.backingPath().c_str(), 0) != 0)
			return 11;
		sleepMs(60); // several heartbeats against the truncated pool
		auto j = metrics(*a);
		fprintf(stderr, "health: %s\n", j["health"].dump().c_str());
		if (j["health"]["ok"].get<bool>() || !j["health"]["pool_truncated"].get<bool>())
			return 12;
		if (j["health"]["heartbeat_failures"].get<uint64_t>() == 0)
			return 13;
		std::string problem;
		if (a->healthy(&problem) || !contains(problem, p.pool.backingPath()) || !contains(problem, "truncated"))
			return 14;
		// A ticket fails with a message naming the truncated pool; the agent stays usable.
		int trc = 0;
		if (runWhole(*a, w, m, {p.seed, p.seed}, nullptr, &trc) != UINT64_MAX || trc != -EFAULT)
			return 15;
		std::string err = a->lastError();
		fprintf(stderr, "lastError: %s\n", err.c_str());
		if (!contains(err, "SIGBUS") || !contains(err, p.pool.backingPath()) || !contains(err, "truncated"))
			return 16;
		a.reset(); // detach: no SIGBUS
		return 0;
	});
	EXPECT_EQ(0, rc) << "child exit code (see stderr); 135 = killed by SIGBUS";
}

TEST(AgentPoolSafety, DestroyAfterTruncationDoesNotWriteTheSlot)
{
	int rc = runForked([]() -> int {
		ModelConfig m = tinyModel();
		AgentPool p(m, 9, 32ull << 20, "file");
		AgentConfig c = agentConfig(p, 64);
		c.registerHost = true;
		c.heartbeatMs = 60000; // only destroy's detach touches the slot
		auto a = makeAgent(c);
		if (truncate(p.pool.backingPath().c_str(), 0) != 0)
			return 11;
		a.reset();
		return 0;
	});
	EXPECT_EQ(0, rc) << "child exit code; 135 = killed by SIGBUS in detach()";
}

TEST(AgentPoolSafety, GenerationChangeOnATruncatedCatalogKeepsTheView)
{
	// The committed generation moves, then the file is cut inside the catalog: the agent's
	// snapshot of the new generation would read past the end of the file.
	int rc = runForked([]() -> int {
		ModelConfig m = tinyModel();
		AgentPool p(m, 9, 32ull << 20, "file");
		auto a = makeAgent(agentConfig(p, 256));
		Expect e(m);
		WholeBatch w(e, randomTokens(100, m.tokenizerVocabSize, 1), 1);
		uint64_t g1 = 0;
		if (runWhole(*a, w, m, {p.seed, p.seed}, &g1) != 0)
			return 10;
		{
			auto wr = openPool(p.uri(), true);
			if (!importRandom(*wr, m, 1, 77, "extra"))
				return 11;
		}
		if (truncate(p.pool.backingPath().c_str(), (off_t)(format::kCatalogOffset + 4096)) != 0)
			return 12;
		int trc = 0;
		if (runWhole(*a, w, m, {p.seed, p.seed}, nullptr, &trc) != UINT64_MAX || trc != -EFAULT)
			return 13;
		if (a->generation() != g1)
			return 14;
		// The refresher's snapshot of the new generation hit the cut (guarded).
		if (!pollUntil([&] { return metrics(*a)["health"]["refresh_failures"].get<uint64_t>() > 0; }))
			return 17;
		auto j = metrics(*a);
		fprintf(stderr, "health: %s\nlastError: %s\n", j["health"].dump().c_str(), a->lastError().c_str());
		if (j["health"]["ok"].get<bool>() || !j["health"]["pool_truncated"].get<bool>())
			return 15;
		if (!contains(a->lastError(), "truncated"))
			return 16;
		return 0;
	});
	EXPECT_EQ(0, rc) << "child exit code (see stderr); 135 = killed by SIGBUS";
}

TEST(AgentPoolSafety, GenerationChangeWithTruncatedDataKeepsTheView)
{
	// Metadata intact, the data area cut: prefaulting the new generation's tables fails
	// (MADV_POPULATE_READ says EFAULT); the agent keeps its view and reports it.
	int rc = runForked([]() -> int {
		ModelConfig m = tinyModel();
		AgentPool p(m, 9, 32ull << 20, "file");
		auto a = makeAgent(agentConfig(p, 256));
		Expect e(m);
		WholeBatch w(e, randomTokens(100, m.tokenizerVocabSize, 1), 1);
		uint64_t g1 = 0;
		if (runWhole(*a, w, m, {p.seed, p.seed}, &g1) != 0)
			return 10;
		{
			auto wr = openPool(p.uri(), true);
			if (!importRandom(*wr, m, 1, 77, "extra"))
				return 11;
		}
		if (truncate(p.pool.backingPath().c_str(), (off_t)format::kDataOffset) != 0)
			return 12;
		int trc = 0;
		if (runWhole(*a, w, m, {p.seed, p.seed}, nullptr, &trc) != UINT64_MAX || trc != -EFAULT)
			return 13;
		if (a->generation() != g1)
			return 14;
		// The refresher (off the caller's thread) reports the failed move.
		if (!pollUntil([&] { return metrics(*a)["health"]["refresh_failures"].get<uint64_t>() > 0; }))
			return 17;
		auto j = metrics(*a);
		fprintf(stderr, "health: %s\nlastError: %s\n", j["health"].dump().c_str(), a->lastError().c_str());
		if (j["health"]["ok"].get<bool>() || !contains(a->lastError(), "truncated"))
			return 15;
		if (runWhole(*a, w, m, {p.seed, p.seed}, nullptr, &trc) != UINT64_MAX || trc != -EFAULT ||
		    a->generation() != g1)
			return 16;
		return 0;
	});
	EXPECT_EQ(0, rc) << "child exit code (see stderr); 135 = killed by SIGBUS";
}

// ---- #3: a failed refresh never drops the good view ----------------------------------------

TEST(AgentPoolSafety, CorruptedUnusedCatalogSlotDoesNotStopTheAgent)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 21);
	AgentConfig c = agentConfig(p, 256);
	c.refreshRetryMs = 20;
	auto a = makeAgent(c);
	Expect e(m);
	WholeBatch w(e, randomTokens(80, m.tokenizerVocabSize, 2), 1);
	uint64_t g1 = 0, g = 0;
	ASSERT_EQ(0u, runWhole(*a, w, m, {21, 21}, &g1));
	{
		auto wr = openPool(p.uri(), true);
		ASSERT_TRUE(importRandom(*wr, m, 1, 5, "unrelated"));
	}
	// One bad byte in the state word of an unused slot, then the agent sees the new generation.
	const uint64_t off = format::kCatalogOffset + 10 * format::kEntrySize;
	auto saved = peekBytes(p.pool.backingPath(), off, 1);
	uint8_t bad = saved[0] ^ 0x5a;
	pokeBytes(p.pool.backingPath(), off, &bad, 1);
	int rc = 0;
	uint64_t wrong = 0;
	// Tickets keep being served while the refresher either fails (the snapshot refuses the
	// slot) or moves on (a snapshot that quarantines it).
	ASSERT_TRUE(pollUntil([&] {
		wrong += runWhole(*a, w, m, {21, 21}, &g, &rc);
		return g > g1 || metrics(*a)["health"]["refresh_failures"].get<uint64_t>() > 0;
	})) << "rc " << rc << ": " << a->lastError();
	EXPECT_EQ(0u, wrong) << "rc " << rc << ": " << a->lastError();
	EXPECT_EQ(0u, runWhole(*a, w, m, {21, 21}, &g, &rc)) << "rc " << rc << ": " << a->lastError();
	auto j = metrics(*a);
	if (g == g1) {
		// The snapshot refused the corrupted slot: the agent serves its last good view and says so.
		EXPECT_FALSE(j["health"]["ok"].get<bool>()) << j["health"].dump();
		EXPECT_TRUE(j["health"]["view_stale"].get<bool>());
		EXPECT_GE(j["health"]["refresh_failures"].get<uint64_t>(), 1u);
		EXPECT_TRUE(contains(j["health"]["problem"].get<std::string>(), "slot 10")) << j["health"].dump();
		EXPECT_TRUE(contains(a->lastError(), "slot 10")) << a->lastError();
		EXPECT_EQ(0u, j["errors"].get<uint64_t>());
	} else {
		// (A snapshot that quarantines the slot moves on without a failure.)
		EXPECT_GT(g, g1);
	}
	// Clean again: the next generation is picked up.
	pokeBytes(p.pool.backingPath(), off, saved.data(), 1);
	{
		auto wr = openPool(p.uri(), true);
		ASSERT_TRUE(importRandom(*wr, m, 15, 6, "unrelated2"));
	}
	uint64_t g3 = *openPool(p.uri(), false)->committedGeneration();
	ASSERT_TRUE(awaitGeneration(*a, w.entry, g3)) << a->lastError();
	EXPECT_EQ(0u, runWhole(*a, w, m, {21, 21}, &g));
	EXPECT_EQ(g3, g);
	EXPECT_EQ(g3, a->generation());
	std::string problem;
	EXPECT_TRUE(a->healthy(&problem)) << problem;
}

TEST(AgentPoolSafety, UnreadableGenerationWordKeepsTheViewUntilItReadsCleanAgain)
{
	// Any refresh failure keeps the last good view - here the committed-generation word
	// itself fails its check after a new generation was published. Repaired without a
	// further publish, it is read again after refreshRetryMs.
	ModelConfig m = tinyModel();
	AgentPool p(m, 22);
	AgentConfig c = agentConfig(p, 256);
	c.refreshRetryMs = 30;
	auto a = makeAgent(c);
	Expect e(m);
	WholeBatch w(e, randomTokens(50, m.tokenizerVocabSize, 3), 1);
	uint64_t g1 = 0, g = 0;
	ASSERT_EQ(0u, runWhole(*a, w, m, {22, 22}, &g1));
	{
		auto wr = openPool(p.uri(), true);
		ASSERT_TRUE(importRandom(*wr, m, 1, 5, "unrelated"));
	}
	const uint64_t off = format::kGenWordOffset;
	auto saved = peekBytes(p.pool.backingPath(), off, 8);
	auto bad = saved;
	bad[7] ^= 0x80;
	pokeBytes(p.pool.backingPath(), off, bad.data(), 8);
	ASSERT_EQ(EP_E_CORRUPT, Pool::open(p.uri(), OpenOptions{}).code()) << "test setup: the word still decodes";
	int rc = 0;
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0u, runWhole(*a, w, m, {22, 22}, &g, &rc)) << "rc " << rc << ": " << a->lastError();
	EXPECT_EQ(g1, g);
	auto j = metrics(*a);
	EXPECT_FALSE(j["health"]["ok"].get<bool>()) << j["health"].dump();
	EXPECT_TRUE(j["health"]["view_stale"].get<bool>());
	EXPECT_GE(j["health"]["refresh_failures"].get<uint64_t>(), 1u);
	EXPECT_LE(j["health"]["refresh_failures"].get<uint64_t>(), 2u) << "retried only after refreshRetryMs";
	EXPECT_TRUE(contains(a->lastError(), "generation")) << a->lastError();
	EXPECT_EQ(0u, j["errors"].get<uint64_t>());
	pokeBytes(p.pool.backingPath(), off, saved.data(), 8);
	sleepMs(40);
	uint64_t g2 = *openPool(p.uri(), false)->committedGeneration();
	ASSERT_TRUE(awaitGeneration(*a, w.entry, g2, 1000)) << a->lastError();
	ASSERT_EQ(0u, runWhole(*a, w, m, {22, 22}, &g));
	EXPECT_GT(g, g1) << "the repaired word is read again after refreshRetryMs";
	std::string problem;
	EXPECT_TRUE(a->healthy(&problem)) << problem;
}

TEST(AgentPoolSafety, MissingTableInANewGenerationKeepsTheRegisteredViewServing)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 23);
	AgentConfig c = agentConfig(p, 256);
	c.registerHost = true;
	c.heartbeatMs = 5;
	auto a = makeAgent(c);
	Expect e(m);
	WholeBatch w(e, randomTokens(50, m.tokenizerVocabSize, 4), 1);
	uint64_t g1 = 0, g = 0;
	ASSERT_EQ(0u, runWhole(*a, w, m, {23, 23}, &g1));
	{
		auto wr = openPool(p.uri(), true);
		ASSERT_TRUE(wr->removeTable(p.tables.at(15).name));
	}
	// The agent keeps serving generation g1 (its heartbeat holds the removed table's extent).
	ASSERT_TRUE(pollUntil([&] {
		EXPECT_EQ(0u, runWhole(*a, w, m, {23, 23}, &g)) << a->lastError();
		return !a->healthy();
	}));
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0u, runWhole(*a, w, m, {23, 23}, &g)) << a->lastError();
	EXPECT_EQ(g1, g);
	std::string problem;
	EXPECT_FALSE(a->healthy(&problem));
	EXPECT_TRUE(contains(problem, "tiny/layer15")) << problem;
	EXPECT_TRUE(contains(a->metricsPrometheus(), "engrampool_agent_view_stale 1"));
	// The table comes back at a new generation: the agent moves to it.
	{
		auto wr = openPool(p.uri(), true);
		ASSERT_TRUE(importRandom(*wr, m, 15, 24));
	}
	ASSERT_TRUE(awaitGeneration(*a, w.entry, *openPool(p.uri(), false)->committedGeneration())) << a->lastError();
	ASSERT_EQ(0u, runWhole(*a, w, m, {23, 24}, &g)) << a->lastError();
	EXPECT_GT(g, g1);
	EXPECT_TRUE(a->healthy(&problem)) << problem;
	EXPECT_TRUE(contains(a->metricsPrometheus(), "engrampool_agent_healthy 1"));
}

TEST(AgentPoolSafety, GenerationChangeIsBuiltOffTheCallersThread)
{
	// prefetch is non-blocking: a generation change (snapshot, view build, prefault) is
	// built by the refresher, so the first ticket after a replace is served - correctly -
	// from the view it pinned, and a later one from the new generation.
	ModelConfig m = tinyModel();
	AgentPool p(m, 25);
	AgentConfig c = agentConfig(p, 256);
	c.registerHost = true; // the heartbeat holds the old extents while tickets read them
	c.heartbeatMs = 5;
	auto a = makeAgent(c);
	Expect e(m);
	WholeBatch w(e, randomTokens(50, m.tokenizerVocabSize, 6), 1);
	uint64_t g1 = 0, g = 0;
	ASSERT_EQ(0u, runWhole(*a, w, m, {25, 25}, &g1));
	uint64_t g2 = 0;
	{
		auto wr = openPool(p.uri(), true);
		auto r = importRandom(*wr, m, 1, 26, "", true);
		ASSERT_TRUE(r);
		g2 = r->generation;
	}
	ASSERT_EQ(0u, runWhole(*a, w, m, {25, 25}, &g)) << a->lastError();
	EXPECT_EQ(g1, g) << "the ticket issued during the change keeps the view it pinned";
	ASSERT_TRUE(awaitGeneration(*a, w.entry, g2)) << a->lastError();
	ASSERT_EQ(0u, runWhole(*a, w, m, {26, 25}, &g)) << a->lastError();
	EXPECT_EQ(g2, g);
	EXPECT_EQ(1u, metrics(*a)["generation_changes"].get<uint64_t>());
	EXPECT_TRUE(a->healthy());
}

// ---- #4: a reader without a host slot ---------------------------------------------------

namespace {

// Two replaces that make the second new table land on an extent the reader's view still
// names: replace `first` (its old extent is freed at once, no live host holds it), then
// replace `second`, whose new version takes the freed extent.
struct DoubleReplace {
	std::string uri;
	const ModelConfig *model = nullptr;
	uint32_t first = 0, second = 0;
	uint64_t firstSeed = 0, secondSeed = 0;
	uint32_t atIndex = 0;
	testhooks::ReadStage atStage = testhooks::ReadStage::AfterRead;
	int times = 1;         // how many calls replace (the rest pass)
	int fired = 0;
	std::string error;

	static void hook(testhooks::ReadStage stage, uint32_t index, void *ctx)
	{
		auto *d = static_cast<DoubleReplace *>(ctx);
		if (stage != d->atStage || index != d->atIndex || d->fired >= d->times)
			return;
		d->fired++;
		try {
			auto wr = openPool(d->uri, true);
			auto a = importRandom(*wr, *d->model, d->first, d->firstSeed + d->fired, "", true);
			auto b = importRandom(*wr, *d->model, d->second, d->secondSeed + d->fired, "", true);
			if (!a || !b)
				d->error = "replace: " + (a ? b.status().message() : a.status().message());
		} catch (const std::exception &e) {
			d->error = e.what();
		}
	}
};

DoubleReplace makeReplace(const std::string &uri, const ModelConfig &m, uint32_t first, uint32_t second,
			  uint64_t firstSeed, uint64_t secondSeed)
{
	DoubleReplace d;
	d.uri = uri;
	d.model = &m;
	d.first = first;
	d.second = second;
	d.firstSeed = firstSeed;
	d.secondSeed = secondSeed;
	return d;
}

} // namespace

TEST(AgentPoolSafety, UnregisteredAgentPausedMidGatherNeverMixesGenerations)
{
	// The agent of `engrampool lookup`: no host slot. It gathers layer 0, then (paused by the
	// hook) layer 15 is replaced, then layer 1 - whose new version takes layer 15's old
	// extent - so layer index 1's gather from the old view would read layer 1's new rows.
	ModelConfig m = tinyModel();
	AgentPool p(m, 31);
	auto a = makeAgent(agentConfig(p, 256));
	Expect e(m);
	WholeBatch w(e, randomTokens(120, m.tokenizerVocabSize, 9), 1);
	uint64_t g1 = 0, g = 0;
	ASSERT_EQ(0u, runWhole(*a, w, m, {31, 31}, &g1));

	DoubleReplace d = makeReplace(p.uri(), m, 15, 1, 400, 100);
	HookScope hs(&DoubleReplace::hook, &d);
	uint64_t t = 0;
	ASSERT_EQ(0, a->prefetch(&w.entry, 1, &t));
	ASSERT_EQ(0, a->wait(t)) << a->lastError();
	ASSERT_EQ(1, d.fired);
	ASSERT_EQ("", d.error);
	// The replaces did put new layer 1 rows where layer 15's old rows were.
	auto snap = openPool(p.uri(), false)->snapshot();
	ASSERT_TRUE(snap);
	const TableInfo *n1 = snap->findTable(p.tables.at(1).name);
	ASSERT_TRUE(n1);
	EXPECT_EQ(p.tables.at(15).dataOffset, n1->dataOffset) << "test setup: the extent was not reused";
	uint64_t old0 = outputMismatches(*a, t, w.expected, m.rowFormat, 31, 0, &g);
	uint64_t old1 = outputMismatches(*a, t, w.expected, m.rowFormat, 31, 1);
	uint64_t new0 = outputMismatches(*a, t, w.expected, m.rowFormat, 101, 0);
	uint64_t new1 = outputMismatches(*a, t, w.expected, m.rowFormat, 401, 1);
	bool allOld = old0 == 0 && old1 == 0 && g == g1;
	bool allNew = new0 == 0 && new1 == 0 && g == snap->generation;
	EXPECT_TRUE(allOld || allNew) << "generation " << g << " (old " << g1 << ", new " << snap->generation
				      << "): mismatches old " << old0 << "/" << old1 << ", new " << new0 << "/" << new1;
	EXPECT_TRUE(allNew) << "layer 0's old extent was reclaimed: the ticket must have been re-read";
	EXPECT_EQ(1u, metrics(*a)["health"]["read_retries"].get<uint64_t>());
	ASSERT_EQ(0, a->release(t));
}

TEST(AgentPoolSafety, UnregisteredAgentGivesUpWithRetryWhenTablesKeepBeingReplaced)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 32, 128ull << 20);
	auto a = makeAgent(agentConfig(p, 256));
	Expect e(m);
	WholeBatch w(e, randomTokens(60, m.tokenizerVocabSize, 9), 1);
	DoubleReplace d = makeReplace(p.uri(), m, 15, 1, 400, 100);
	d.times = 1000;
	HookScope hs(&DoubleReplace::hook, &d);
	int rc = 0;
	EXPECT_EQ(UINT64_MAX, runWhole(*a, w, m, {32, 32}, nullptr, &rc));
	EXPECT_EQ(EP_E_RETRY, rc);
	EXPECT_TRUE(contains(a->lastError(), "retry")) << a->lastError();
	EXPECT_EQ(kMaxReadRetries + 1, d.fired);
	ASSERT_EQ("", d.error);
}

TEST(AgentPoolSafety, ReadRowsPausedBeforeTheReadNeverReturnsAnotherTablesRows)
{
	// ep_pool_read_rows: snapshot, (paused: layer 1 is replaced, then layer 15, whose new
	// version takes layer 1's old extent), read layer 1's rows from the old snapshot.
	ModelConfig m = tinyModel();
	AgentPool p(m, 41);
	ep_pool *pool = nullptr;
	ASSERT_EQ(0, ep_pool_open(&pool, p.uri().c_str(), 0)) << ep_errormsg();
	const TableInfo &t1 = p.tables.at(1);
	std::vector<uint64_t> rows = {0, 1, 2, 1000, t1.rows / 2, t1.rows - 1};
	std::vector<uint8_t> got(rows.size() * t1.rowBytes), want(m.rowFormat.rowStride());
	for (auto stage : {testhooks::ReadStage::BeforeRead, testhooks::ReadStage::AfterRead}) {
		SCOPED_TRACE(stage == testhooks::ReadStage::BeforeRead ? "before the read" : "after the read");
		DoubleReplace d =
			makeReplace(p.uri(), m, 1, 15, stage == testhooks::ReadStage::BeforeRead ? 500u : 600u, 700);
		d.atStage = stage;
		HookScope hs(&DoubleReplace::hook, &d);
		auto before = openPool(p.uri(), false)->snapshot();
		ASSERT_TRUE(before);
		uint64_t oldSeed = stage == testhooks::ReadStage::BeforeRead ? 41 : 501;
		ASSERT_EQ(0, ep_pool_read_rows(pool, t1.name.c_str(), rows.data(), rows.size(), got.data(), got.size()))
			<< ep_errormsg();
		ASSERT_EQ(1, d.fired);
		ASSERT_EQ("", d.error);
		auto after = openPool(p.uri(), false)->snapshot();
		ASSERT_TRUE(after);
		EXPECT_EQ(before->findTable(t1.name)->dataOffset, after->findTable(p.tables.at(15).name)->dataOffset)
			<< "test setup: layer 15's new version took layer 1's old extent";
		// Every row is the old version's or every row the new one's.
		uint64_t newSeed = d.firstSeed + 1;
		size_t oldOk = 0, newOk = 0;
		for (size_t i = 0; i < rows.size(); i++) {
			io::randomRow(m.rowFormat, oldSeed, rows[i], want.data());
			oldOk += std::memcmp(got.data() + i * t1.rowBytes, want.data(), t1.rowBytes) == 0;
			io::randomRow(m.rowFormat, newSeed, rows[i], want.data());
			newOk += std::memcmp(got.data() + i * t1.rowBytes, want.data(), t1.rowBytes) == 0;
		}
		EXPECT_TRUE(oldOk == rows.size() || newOk == rows.size())
			<< "rows of the old version " << oldOk << ", of the new " << newOk << " of " << rows.size();
		EXPECT_EQ(rows.size(), newOk) << "the old extent was reused: the read must have been repeated";
	}
	ep_pool_close(&pool);
}
