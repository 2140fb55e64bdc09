// SPDX-License-Identifier: Apache-2.0
// test_agent_cache.cpp - the hot-row tier (Zipfian hits, a pinned hot set), table replaces
// (never a stale row, tickets keep their pinned generation), host registration and reclaim.
#include "agent_test_util.hpp"

#include <chrono>
#include <thread>

using namespace eptest;
using namespace engrampool;

namespace {

uint64_t cacheHits(const HostAgent &a)
{
	return metrics(a)["cache"]["hits"].get<uint64_t>();
}

// One batch of a single whole sequence (start + end) and its expected rows.
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

// Run a batch to completion; returns the mismatches against seed (per layer seeds allowed).
uint64_t runWhole(HostAgent &a, const WholeBatch &w, const ModelConfig &m, std::vector<uint64_t> seeds,
		  uint64_t *generation = nullptr)
{
	uint64_t t = 0;
	if (a.prefetch(&w.entry, 1, &t) != 0 || a.wait(t) != 0)
		return UINT64_MAX;
	uint64_t bad = 0;
	for (uint32_t l = 0; l < a.layers(); l++)
		bad += outputMismatches(a, t, w.expected, m.rowFormat, seeds[l], (int)l, generation);
	if (a.release(t) != 0)
		return UINT64_MAX;
	return bad;
}

std::vector<int64_t> randomTokens(size_t n, uint64_t vocab, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	std::vector<int64_t> v(n);
	for (auto &x : v)
		x = (int64_t)(rng() % vocab);
	return v;
}

template <class F> bool eventually(F f, int ms = 3000)
{
	for (int i = 0; i < ms / 5; i++) {
		if (f())
			return true;
		std::this_thread::sleep_for(std::chrono::milliseconds(5));
	}
	return f();
}

const HostInfo *findHost(const std::vector<HostInfo> &hs, int slot)
{
	for (auto &h : hs)
		if ((int)h.index == slot)
			return &h;
	return nullptr;
}

} // namespace

// Steps of a Zipfian sequence mix through an agent with a `cacheRows` tier; every output
// row checked against the pool's deterministic rows. Returns the agent's metrics.
nlohmann::json runZipfSteps(size_t cacheRows, uint64_t mixSeed, int steps)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 4);
	AgentConfig c = agentConfig(p, 256);
	c.cacheRows = cacheRows;
	c.cacheAdaptive = false; // the tier's own mechanics: used on every pass
	auto a = makeAgent(c);
	Expect e(m);
	SequenceMix mix(e, m.tokenizerVocabSize, mixSeed);
	for (int s = 0; s < steps; s++) {
		mix.next(16, 6, 256, true);
		uint64_t t = 0;
		EXPECT_EQ(0, a->prefetch(mix.entries.data(), mix.entries.size(), &t));
		EXPECT_EQ(0, a->wait(t));
		std::string why;
		EXPECT_EQ(0u, outputMismatches(*a, t, mix.expected, m.rowFormat, p.seed, -1, nullptr, &why))
			<< "step " << s << ": " << why;
		EXPECT_EQ(0, a->release(t));
		if (::testing::Test::HasFailure())
			break;
	}
	return metrics(*a);
}

// A hot-set file's text: the distinct rows of layers [0, layers) of w that keep(i)
// selects (i: the row's rank among its layer's distinct rows, ascending), each with a
// count that falls with i. Returns the text and how many rows it names.
template <class Keep>
std::pair<std::string, uint64_t> hotSetText(const WholeBatch &w, const ModelConfig &m, size_t layers, Keep keep)
{
	std::string text = "# layer row count\n";
	uint64_t named = 0;
	for (size_t l = 0; l < layers; l++) {
		std::set<uint64_t> distinct(w.expected.rows[l].begin(), w.expected.rows[l].end());
		size_t i = 0;
		for (uint64_t r : distinct) {
			if (keep(i)) {
				text += std::to_string(m.layerIds[l]) + " " + std::to_string(r) + " " +
					std::to_string(1000000 - i) + "\n";
				named++;
			}
			i++;
		}
	}
	return {text, named};
}

// An agent config whose tier holds only a static hot set: every other distinct row of
// each layer of w, written to d/hot.txt. Returns it and how many rows the set pins.
std::pair<AgentConfig, uint64_t> halfPinned(const AgentPool &p, const WholeBatch &w, const ModelConfig &m, TempDir &d)
{
	AgentConfig c = agentConfig(p, 256);
	c.cacheRows = 4096;
	c.cacheAdmit = false; // only the static hot set
	c.hotSetFile = d.file("hot.txt");
	auto [text, pinned] = hotSetText(w, m, 2, [](size_t i) { return i % 2 == 0; });
	writeFile(c.hotSetFile, text);
	return {c, pinned};
}

TEST(AgentCache, ZipfianStreamHitsAndStaysExact)
{
	auto j = runZipfSteps(8192, 23, 150);
	ASSERT_FALSE(HasFailure());
	uint64_t hits = j["cache"]["hits"].get<uint64_t>(), misses = j["cache"]["misses"].get<uint64_t>();
	EXPECT_GT(hits, 0u);
	EXPECT_GT(j["cache"]["admissions"].get<uint64_t>(), 0u);
	EXPECT_EQ(j["unique_rows"].get<uint64_t>(), hits + misses);
	EXPECT_EQ(j["gathered_rows"].get<uint64_t>(), misses);
	EXPECT_GT(j["cache"]["hit_rate"].get<double>(), 0.0);
	// Without the tier every unique row is gathered.
	EXPECT_LT(j["gathered_rows"].get<uint64_t>(), j["unique_rows"].get<uint64_t>());
}

// A tier far smaller than a step's rows: its slots are evicted (between tickets, into
// the spare reserve) and refilled again and again, while every ticket copies hits out
// of the tier and admitted rows into it. Every output row must stay exact.
TEST(AgentCache, SmallTierReusesSlotsAndStaysExact)
{
	const size_t rows = 64;
	auto j = runZipfSteps(rows, 29, 60);
	ASSERT_FALSE(HasFailure());
	EXPECT_GT(j["cache"]["hits"].get<uint64_t>(), 0u);
	EXPECT_GT(j["cache"]["admissions"].get<uint64_t>(), 2u * rows) << "slots were reused";
}

TEST(AgentCache, HotSetFilePinsRows)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 6);
	Expect e(m);
	WholeBatch w(e, randomTokens(40, m.tokenizerVocabSize, 1), 1);
	TempDir d;
	auto [c, pinned] = halfPinned(p, w, m, d);
	c.cacheAdaptive = false;
	const std::string hot = c.hotSetFile;
	auto a = makeAgent(c);
	EXPECT_EQ(0u, runWhole(*a, w, m, {p.seed, p.seed}));
	EXPECT_EQ(0u, cacheHits(*a)) << "pinned slots are filled by the first gather";
	EXPECT_EQ(0u, runWhole(*a, w, m, {p.seed, p.seed}));
	EXPECT_EQ(pinned, cacheHits(*a));
	// Rows outside the hot set are never admitted.
	WholeBatch other(e, randomTokens(40, m.tokenizerVocabSize, 2), 2);
	uint64_t before = cacheHits(*a);
	EXPECT_EQ(0u, runWhole(*a, other, m, {p.seed, p.seed}));
	EXPECT_EQ(0u, runWhole(*a, other, m, {p.seed, p.seed}));
	uint64_t accidental = cacheHits(*a) - before; // rows of `other` that happen to be pinned
	std::set<std::pair<size_t, uint64_t>> pinnedSet;
	for (size_t l = 0; l < 2; l++) {
		std::set<uint64_t> distinct(w.expected.rows[l].begin(), w.expected.rows[l].end());
		size_t i = 0;
		for (uint64_t r : distinct)
			if (i++ % 2 == 0)
				pinnedSet.insert({l, r});
	}
	uint64_t expectAccidental = 0;
	for (size_t l = 0; l < 2; l++) {
		std::set<uint64_t> distinct(other.expected.rows[l].begin(), other.expected.rows[l].end());
		for (uint64_t r : distinct)
			expectAccidental += 2 * pinnedSet.count({l, r});
	}
	EXPECT_EQ(expectAccidental, accidental);
	// A hot-set file naming a layer that is not an Engram layer is refused.
	writeFile(hot, "7 1 10\n");
	EXPECT_EQ(-EINVAL, HostAgent::create(c).code());
	writeFile(hot, "1 99999999 10\n");
	EXPECT_EQ(-ERANGE, HostAgent::create(c).code());
}

TEST(AgentCache, StaticSetLookupsSpreadOverGatherThreadsStayExact)
{
	// Two gather threads and a batch with far more distinct rows than the engine's
	// parallel threshold (256): a static set's lookups run on both workers. Every output
	// row stays exact and every pinned row of the batch hits on the second run.
	ModelConfig m = tinyModel();
	AgentPool p(m, 6);
	Expect e(m);
	WholeBatch w(e, randomTokens(400, m.tokenizerVocabSize, 3), 3);
	TempDir d;
	std::string hot = d.file("hot.txt");
	ASSERT_GT(hotSetText(w, m, 2, [](size_t) { return true; }).second, 2 * 512u)
		<< "the batch is too small to split the lookups";
	auto [text, pinned] = hotSetText(w, m, 2, [](size_t i) { return i % 3 != 0; });
	writeFile(hot, text);
	AgentConfig c = agentConfig(p, 512);
	c.gatherThreads = 2;
	c.cacheRows = 8192;
	c.cacheAdaptive = false;
	c.cacheAdmit = false;
	c.hotSetFile = hot;
	auto a = makeAgent(c);
	EXPECT_EQ(0u, runWhole(*a, w, m, {p.seed, p.seed}));
	EXPECT_EQ(0u, cacheHits(*a)) << "pinned slots are filled by the first gather";
	for (int run = 0; run < 3; run++)
		EXPECT_EQ(0u, runWhole(*a, w, m, {p.seed, p.seed})) << "run " << run;
	EXPECT_EQ(3 * pinned, cacheHits(*a));
}

TEST(AgentCache, NeverAStaleRowAfterATableReplace)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 100);
	Expect e(m);
	AgentConfig c = agentConfig(p, 256);
	c.cacheRows = 8192;
	c.cacheAdaptive = false;
	auto a = makeAgent(c);
	WholeBatch w(e, randomTokens(60, m.tokenizerVocabSize, 5), 1);
	uint64_t g1 = 0, g = 0;
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(0u, runWhole(*a, w, m, {100, 100}, &g1));
	ASSERT_GT(cacheHits(*a), 0u) << "the batch is served from the tier before the replace";
	EXPECT_EQ(g1, a->generation());
	// A ticket issued before the replace, waited for after it.
	WholeBatch w2(e, randomTokens(60, m.tokenizerVocabSize, 5), 2);
	uint64_t before = 0;
	ASSERT_EQ(0, a->prefetch(&w2.entry, 1, &before));

	// The writer (in this process) replaces both tables with other contents.
	{
		auto wr = openPool(p.uri(), true);
		ASSERT_TRUE(importRandom(*wr, m, 1, 200, "", true));
		ASSERT_TRUE(importRandom(*wr, m, 15, 200, "", true));
	}
	ASSERT_EQ(0, a->wait(before));
	for (uint32_t l = 0; l < 2; l++) {
		uint64_t gen = 0;
		EXPECT_EQ(0u, outputMismatches(*a, before, w2.expected, m.rowFormat, 100, (int)l, &gen))
			<< "a ticket keeps the generation it pinned";
		EXPECT_EQ(g1, gen);
	}
	ASSERT_EQ(0, a->release(before));
	// The move to the new generation is built off the caller's thread: once adopted, the
	// next tickets see the new rows, with the cache on, again and again.
	ASSERT_TRUE(awaitGeneration(*a, w.entry, *openPool(p.uri(), false)->committedGeneration()));
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(0u, runWhole(*a, w, m, {200, 200}, &g)) << "round " << i;
		EXPECT_GT(g, g1);
	}
	uint64_t g2 = g;
	EXPECT_EQ(g2, a->generation());
	uint64_t hits = cacheHits(*a);
	EXPECT_EQ(0u, runWhole(*a, w, m, {200, 200}));
	EXPECT_GT(cacheHits(*a), hits) << "the tier refills with the new generation's rows";

	// The CLI replaces one layer again; only that layer changes.
	TempDir d;
	std::string mf = d.file("tiny.json");
	writeFile(mf, tinyModelJson().dump());
	auto r = runCli("import " + p.uri() + " --model " + mf + " --layer 15 --random --seed 300 --replace");
	ASSERT_EQ(0, r.rc) << r.err;
	ASSERT_TRUE(awaitGeneration(*a, w.entry, *openPool(p.uri(), false)->committedGeneration()));
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(0u, runWhole(*a, w, m, {200, 300}, &g)) << "round " << i;
		EXPECT_GT(g, g2);
	}
	EXPECT_GE(metrics(*a)["generation_changes"].get<uint64_t>(), 2u);
}

TEST(AgentCache, HotSetStaysPinnedAfterATableReplace)
{
	// The static hot set is configuration, not content: after a replace the pinned rows
	// must be served (with the new bytes) from the tier again.
	ModelConfig m = tinyModel();
	AgentPool p(m, 6);
	Expect e(m);
	WholeBatch w(e, randomTokens(40, m.tokenizerVocabSize, 1), 1);
	TempDir d;
	std::string hot = d.file("hot.txt");
	auto [text, pinned] = hotSetText(w, m, 1, [](size_t) { return true; });
	writeFile(hot, text);
	AgentConfig c = agentConfig(p, 256);
	c.cacheRows = 4096;
	c.cacheAdaptive = false;
	c.cacheAdmit = false;
	c.hotSetFile = hot;
	auto a = makeAgent(c);
	EXPECT_EQ(0u, runWhole(*a, w, m, {6, 6}));
	EXPECT_EQ(0u, runWhole(*a, w, m, {6, 6}));
	ASSERT_EQ(pinned, cacheHits(*a));
	{
		auto wr = openPool(p.uri(), true);
		ASSERT_TRUE(importRandom(*wr, m, 15, 7, "", true));
	}
	// The first ticket at the new generation refetches the pinned rows (awaitGeneration
	// runs it); from then on they are served from the tier again.
	ASSERT_TRUE(awaitGeneration(*a, w.entry, *openPool(p.uri(), false)->committedGeneration()));
	EXPECT_EQ(0u, runWhole(*a, w, m, {6, 7}));
	uint64_t before = cacheHits(*a);
	EXPECT_EQ(0u, runWhole(*a, w, m, {6, 7}));
	EXPECT_EQ(pinned, cacheHits(*a) - before)
		<< "after the replace the hot set is no longer pinned (HotRowCache::clear drops pins)";
}

TEST(AgentHosts, RegisteredAgentIsLiveAndDetachesOnDestroy)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 1);
	AgentConfig c = agentConfig(p);
	c.registerHost = true;
	c.heartbeatMs = 10;
	auto reader = openPool(p.uri(), false);
	auto gen = reader->committedGeneration();
	ASSERT_TRUE(gen);
	auto a = makeAgent(c);
	int slot = a->hostSlot();
	ASSERT_GE(slot, 0);
	auto hs = reader->hosts();
	const HostInfo *h = findHost(hs, slot);
	ASSERT_TRUE(h);
	EXPECT_TRUE(h->live);
	EXPECT_EQ(1u, h->state);
	EXPECT_EQ((uint32_t)getpid(), h->pid);
	EXPECT_EQ(*gen, h->observedGen);
	uint64_t hb = h->heartbeatNs;
	EXPECT_TRUE(eventually([&] {
		auto v = reader->hosts();
		const HostInfo *x = findHost(v, slot);
		return x && x->heartbeatNs > hb;
	})) << "the heartbeat renews the slot";
	// A second agent takes another slot; a named slot is honoured.
	AgentConfig c2 = c;
	c2.hostIndex = 5;
	auto b = makeAgent(c2);
	EXPECT_EQ(5, b->hostSlot());
	EXPECT_NE(slot, b->hostSlot());
	a.reset();
	hs = reader->hosts();
	h = findHost(hs, slot);
	ASSERT_TRUE(h);
	EXPECT_FALSE(h->live);
	EXPECT_EQ(2u, h->state) << "detached";
	h = findHost(hs, 5);
	ASSERT_TRUE(h);
	EXPECT_TRUE(h->live);
	// Without registration no slot is claimed.
	AgentConfig c3 = c;
	c3.registerHost = false;
	auto n = makeAgent(c3);
	EXPECT_EQ(-1, n->hostSlot());
}

TEST(AgentHosts, ReplacedTableIsNotReclaimedWhileAnAgentPinsIt)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 1);
	Expect e(m);
	AgentConfig c = agentConfig(p);
	c.registerHost = true;
	c.heartbeatMs = 5;
	auto a = makeAgent(c);
	auto wr = openPool(p.uri(), true);
	auto g1 = wr->committedGeneration();
	ASSERT_TRUE(g1);
	WholeBatch w(e, randomTokens(50, m.tokenizerVocabSize, 3), 1);
	uint64_t pinned = 0;
	ASSERT_EQ(0, a->prefetch(&w.entry, 1, &pinned));
	ASSERT_EQ(0, a->wait(pinned));

	auto rep = importRandom(*wr, m, 1, 2, "", true);
	ASSERT_TRUE(rep) << rep.status().message();
	uint64_t g2 = rep->generation;
	ASSERT_GT(g2, *g1);
	// Heartbeats keep publishing g1: the old extent stays held.
	std::this_thread::sleep_for(std::chrono::milliseconds(30));
	auto freed = wr->reclaim();
	ASSERT_TRUE(freed);
	EXPECT_EQ(0u, *freed);
	auto snap = wr->snapshot();
	ASSERT_TRUE(snap);
	EXPECT_EQ(1u, snap->pendingReclaim);
	const HostInfo *h = nullptr;
	auto hs = wr->hosts();
	h = findHost(hs, a->hostSlot());
	ASSERT_TRUE(h);
	EXPECT_EQ(*g1, h->observedGen);
	// A table imported now cannot land on the old extent: the pinned ticket's rows hold.
	ASSERT_TRUE(importRandom(*wr, m, 15, 2, "", true));
	EXPECT_EQ(0u, outputMismatches(*a, pinned, w.expected, m.rowFormat, 1));
	ASSERT_EQ(0, a->release(pinned));

	// Moving on: the next ticket reads the new generation; then the space is reclaimed.
	WholeBatch w2(e, randomTokens(10, m.tokenizerVocabSize, 4), 2);
	ASSERT_TRUE(awaitGeneration(*a, w2.entry, *wr->committedGeneration()));
	uint64_t g3 = 0;
	ASSERT_EQ(0u, runWhole(*a, w2, m, {2, 2}, &g3));
	EXPECT_TRUE(eventually([&] {
		auto v = wr->hosts();
		const HostInfo *x = findHost(v, a->hostSlot());
		return x && x->observedGen == g3;
	})) << "the heartbeat publishes the new generation";
	freed = wr->reclaim();
	ASSERT_TRUE(freed);
	EXPECT_EQ(2u, *freed);
	snap = wr->snapshot();
	ASSERT_TRUE(snap);
	EXPECT_EQ(0u, snap->pendingReclaim);
	// After the agent detaches nothing is pinned by it.
	a.reset();
	hs = wr->hosts();
	for (auto &x : hs)
		EXPECT_FALSE(x.live && x.pid == (uint32_t)getpid()) << "slot " << x.index;
}

// The adaptive tier (the default on the host device) steps aside where it cannot pay: a
// lookups-only tier with nothing pinned never hits, so its lookups save nothing. After
// its first passes the distinct rows come straight from the pool (one pass in 16, then
// ever fewer, still looks them up, to notice a change), every row exact. With
// cacheAdaptive off, every distinct row is looked up, on every pass.
TEST(AgentCache, AdaptiveTierIsBypassedWhileItSavesNothing)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 6);
	Expect e(m);
	WholeBatch w(e, randomTokens(200, m.tokenizerVocabSize, 4), 4);
	for (bool adaptive : {true, false}) {
		SCOPED_TRACE(adaptive ? "adaptive" : "always");
		AgentConfig c = agentConfig(p, 256);
		c.cacheRows = 4096;
		c.cacheAdmit = false; // nothing pinned, nothing admitted: every lookup misses
		c.cacheAdaptive = adaptive;
		auto a = makeAgent(c);
		for (int s = 0; s < 40; s++)
			ASSERT_EQ(0u, runWhole(*a, w, m, {p.seed, p.seed})) << "step " << s;
		auto j = metrics(*a);
		const uint64_t hits = j["cache"]["hits"].get<uint64_t>(), misses = j["cache"]["misses"].get<uint64_t>();
		const uint64_t bypassed = j["cache"]["bypassed_rows"].get<uint64_t>();
		EXPECT_EQ(0u, hits);
		EXPECT_EQ(j["unique_rows"].get<uint64_t>(), misses + bypassed);
		EXPECT_EQ(j["gathered_rows"].get<uint64_t>(), j["unique_rows"].get<uint64_t>());
		EXPECT_EQ(adaptive, j["cache"]["adaptive"].get<bool>());
		EXPECT_EQ(adaptive, j["cache"]["bypassing"].get<bool>());
		if (adaptive) {
			// 80 layer passes: 4 to judge, then one in 16 (then 32, ...) looked up.
			EXPECT_GT(misses, 0u) << "sampled passes still look up";
			EXPECT_GT(bypassed, 5 * misses) << "most passes bypass the tier";
		} else {
			EXPECT_EQ(0u, bypassed);
		}
	}
}

// ... and stays where it pays: a pool 100 us per row away (the emulated latency, one line
// in flight per gather thread) and a static set holding half of each layer's distinct
// rows. Every pass looks the rows up; the pinned half hits from the second run on.
TEST(AgentCache, AdaptiveTierStaysWhereItSaves)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 6);
	Expect e(m);
	WholeBatch w(e, randomTokens(40, m.tokenizerVocabSize, 5), 5);
	TempDir d;
	auto [c, pinned] = halfPinned(p, w, m, d);
	c.poolUri = p.uri() + "?latency_ns=100000&mlp_lines=1";
	auto a = makeAgent(c);
	for (int s = 0; s < 8; s++)
		ASSERT_EQ(0u, runWhole(*a, w, m, {p.seed, p.seed})) << "step " << s;
	auto j = metrics(*a);
	EXPECT_TRUE(j["cache"]["adaptive"].get<bool>());
	EXPECT_FALSE(j["cache"]["bypassing"].get<bool>());
	EXPECT_EQ(0u, j["cache"]["bypassed_rows"].get<uint64_t>());
	EXPECT_EQ(7 * pinned, j["cache"]["hits"].get<uint64_t>()) << "every pinned row hits from the second run on";
}

// ... and comes back when it starts to pay: a pool 100 us per row away; first batches that
// never repeat (nothing hits: the tier is bypassed), then one batch over and over. The
// sampled passes admit its rows and then hit them, and the tier is used again.
TEST(AgentCache, AdaptiveTierComesBackWhenItStartsToPay)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 6);
	Expect e(m);
	AgentConfig c = agentConfig(p, 256);
	c.poolUri = p.uri() + "?latency_ns=100000&mlp_lines=1";
	c.cacheRows = 4096;
	auto a = makeAgent(c);
	WholeBatch w(e, randomTokens(40, m.tokenizerVocabSize, 7), 7);
	// Fresh batches share no row with one another nor with w (the tables are small: drawn
	// until they do not), so with a pool even 100 us away the tier cannot save anything.
	std::vector<std::set<uint64_t>> seen(2);
	for (size_t l = 0; l < 2; l++)
		seen[l].insert(w.expected.rows[l].begin(), w.expected.rows[l].end());
	for (int s = 0, drawn = 0; s < 4; drawn++) {
		ASSERT_LT(drawn, 10000) << "no fresh batch found";
		WholeBatch fresh(e, randomTokens(12, m.tokenizerVocabSize, 100 + drawn), 100 + drawn);
		bool disjoint = true;
		for (size_t l = 0; l < 2 && disjoint; l++)
			for (uint64_t r : fresh.expected.rows[l])
				disjoint = disjoint && !seen[l].count(r);
		if (!disjoint)
			continue;
		for (size_t l = 0; l < 2; l++)
			seen[l].insert(fresh.expected.rows[l].begin(), fresh.expected.rows[l].end());
		ASSERT_EQ(0u, runWhole(*a, fresh, m, {p.seed, p.seed})) << "fresh batch " << s;
		s++;
	}
	ASSERT_TRUE(metrics(*a)["cache"]["bypassing"].get<bool>()) << "nothing hit: the tier is bypassed";
	const uint64_t hitsBefore = metrics(*a)["cache"]["hits"].get<uint64_t>();
	ASSERT_EQ(0u, hitsBefore);
	int steps = 0;
	for (; steps < 100 && metrics(*a)["cache"]["bypassing"].get<bool>(); steps++)
		ASSERT_EQ(0u, runWhole(*a, w, m, {p.seed, p.seed})) << "step " << steps;
	EXPECT_FALSE(metrics(*a)["cache"]["bypassing"].get<bool>()) << "still bypassed after " << steps << " steps";
	EXPECT_GT(metrics(*a)["cache"]["warm_hit_rate"].get<double>(), 0.0) << "the shadow saw w's rows repeat";
	// Used again: the next runs look every distinct row up (nothing bypassed), admit w's
	// rows and then hit them.
	const uint64_t bypassed = metrics(*a)["cache"]["bypassed_rows"].get<uint64_t>();
	for (int s = 0; s < 2; s++)
		ASSERT_EQ(0u, runWhole(*a, w, m, {p.seed, p.seed})) << "after, step " << s;
	EXPECT_EQ(bypassed, metrics(*a)["cache"]["bypassed_rows"].get<uint64_t>());
	EXPECT_GT(metrics(*a)["cache"]["hits"].get<uint64_t>(), hitsBefore);
	EXPECT_GT(metrics(*a)["cache"]["warm_hit_rate"].get<double>(), 0.5) << "w's rows keep hitting";
}
