// SPDX-License-Identifier: Apache-2.0
// test_agent_rows.cpp - gathered rows equal direct indexing for sequence mixes and every dtype;
// streaming equals batch hashing; per-layer completion; the staging ring, also across threads.
#include "agent_test_util.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

using namespace eptest;
using namespace engrampool;

namespace {

struct DtypeCase {
	const char *name;
	nlohmann::json model;
	uint32_t rowBytes, rowStride;
};

std::vector<DtypeCase> dtypeCases()
{
	return {
		{"fp32", agentModelJson("fp32", 16), 64, 64},
		{"bf16_aligned", agentModelJson("bf16", 40, 4, 64), 80, 128},
		{"fp16", agentModelJson("fp16", 24), 48, 48},
		// fp8-e4m3 with an e8m0 scale per 32 values: 256 + 8 = 264 B, padded to 320.
		{"fp8_e8m0_aligned", agentModelJson("fp8-e4m3", 256, 2, 64, true), 264, 320},
		{"fp8_e8m0_packed_orders4", agentModelJson("fp8-e4m3", 256, 2, 0, true, 4), 264, 264},
	};
}

// Prefetch / wait / check / release `steps` batches of a random sequence mix.
void runMix(HostAgent &a, const AgentPool &p, SequenceMix &mix, int steps, uint32_t maxEntries, uint32_t maxNew,
	    uint32_t maxTokens, const std::string &label)
{
	for (int s = 0; s < steps; s++) {
		mix.next(maxEntries, maxNew, maxTokens);
		uint64_t t = 0;
		ASSERT_EQ(0, a.prefetch(mix.entries.data(), mix.entries.size(), &t)) << label << " step " << s;
		ASSERT_EQ(0, a.wait(t, -1)) << label;
		std::string why;
		ASSERT_EQ(0u, outputMismatches(a, t, mix.expected, p.model.rowFormat, p.seed, -1, nullptr, &why))
			<< label << " step " << s << ": " << why;
		ASSERT_EQ(0, a.release(t));
	}
}

} // namespace

TEST(AgentRows, RandomSequenceMixesEqualDirectIndexingForEveryDtype)
{
	for (auto &c : dtypeCases()) {
		SCOPED_TRACE(c.name);
		ModelConfig m = makeModel(c.model);
		ASSERT_EQ(c.rowBytes, m.rowFormat.rowBytes());
		ASSERT_EQ(c.rowStride, m.rowFormat.rowStride());
		AgentPool p(m, 11);
		ASSERT_EQ(c.rowStride, p.tables.begin()->second.rowStride);
		auto a = makeAgent(agentConfig(p, 256));
		Expect e(m);
		SequenceMix mix(e, m.tokenizerVocabSize, 7);
		runMix(*a, p, mix, 40, 12, 8, 256, c.name);
		// Direct indexing through the pool mapping agrees with randomRow for the rows used.
		auto reader = openPool(p.uri(), false);
		auto snap = reader->snapshot();
		ASSERT_TRUE(snap);
		for (auto &[layer, info] : p.tables)
			EXPECT_EQ(0u, rowMismatches(*reader, *snap->findTable(info.name), m.rowFormat, p.seed, 64));
		auto j = metrics(*a);
		EXPECT_EQ(40u, j["tickets"].get<uint64_t>());
		EXPECT_EQ(0u, j["errors"].get<uint64_t>());
	}
}

TEST(AgentRows, OutputBytesEqualThePoolTableBytes)
{
	// The same check against the pool mapping itself (not the row generator).
	ModelConfig m = makeModel(agentModelJson("bf16", 40, 4, 64));
	AgentPool p(m, 5);
	auto a = makeAgent(agentConfig(p, 128));
	auto reader = openPool(p.uri(), false);
	Expect e(m);
	SequenceMix mix(e, m.tokenizerVocabSize, 3);
	for (int s = 0; s < 10; s++) {
		mix.next(8, 6, 128);
		uint64_t t = 0;
		ASSERT_EQ(0, a->prefetch(mix.entries.data(), mix.entries.size(), &t));
		ASSERT_EQ(0, a->wait(t));
		for (uint32_t l = 0; l < a->layers(); l++) {
			LayerOutput o;
			ASSERT_EQ(0, a->output(t, l, &o));
			EXPECT_EQ(m.layerIds[l], o.layerId);
			const TableInfo &ti = p.tables.at(m.layerIds[l]);
			const uint8_t *base = reader->tableData(ti);
			for (size_t i = 0; i < mix.expected.rows[l].size(); i++)
				ASSERT_EQ(0, memcmp(o.rows + i * o.rowStride, base + mix.expected.rows[l][i] * ti.rowStride,
						    ti.rowBytes))
					<< "layer " << l << " slot " << i;
		}
		ASSERT_EQ(0, a->release(t));
	}
}

TEST(AgentRows, StreamingOverManyStepsEqualsBatchHashing)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 21);
	auto a = makeAgent(agentConfig(p, 512));
	Expect e(m);
	std::mt19937_64 rng(99);
	const int kSeqs = 5, kSteps = 120;
	std::vector<std::vector<int64_t>> seqs(kSeqs);
	// Per sequence, the rows each step produced, concatenated: [layer][token * J + j] bytes.
	const uint32_t J = e.columns(), rb = m.rowFormat.rowBytes();
	std::vector<std::vector<std::vector<uint8_t>>> streamed(kSeqs, std::vector<std::vector<uint8_t>>(2));
	for (int s = 0; s < kSteps; s++) {
		std::vector<int64_t> toks;
		std::vector<BatchEntry> batch;
		std::vector<std::pair<size_t, uint32_t>> spans;
		for (int q = 0; q < kSeqs; q++) {
			uint32_t n = s == 0 ? 1 + (uint32_t)(rng() % 20) : 1 + (uint32_t)(rng() % 3);
			spans.push_back({toks.size(), n});
			for (uint32_t k = 0; k < n; k++)
				toks.push_back((int64_t)(rng() % m.tokenizerVocabSize));
		}
		for (int q = 0; q < kSeqs; q++) {
			batch.push_back({(uint64_t)q, toks.data() + spans[q].first, spans[q].second, s == 0 ? kSeqStart : 0u});
			seqs[q].insert(seqs[q].end(), toks.begin() + spans[q].first,
				       toks.begin() + spans[q].first + spans[q].second);
		}
		uint64_t t = 0;
		ASSERT_EQ(0, a->prefetch(batch.data(), batch.size(), &t));
		ASSERT_EQ(0, a->wait(t));
		for (uint32_t l = 0; l < 2; l++) {
			LayerOutput o;
			ASSERT_EQ(0, a->output(t, l, &o));
			size_t tok = 0;
			for (int q = 0; q < kSeqs; q++)
				for (uint32_t k = 0; k < spans[q].second; k++, tok++)
					for (uint32_t j = 0; j < J; j++) {
						const uint8_t *r = o.rows + (tok * J + j) * o.rowStride;
						streamed[q][l].insert(streamed[q][l].end(), r, r + rb);
					}
		}
		ASSERT_EQ(0, a->release(t));
	}
	// Each whole sequence hashed at once (batch mode) gives the same rows, byte for byte.
	std::vector<uint8_t> want(m.rowFormat.rowStride());
	for (int q = 0; q < kSeqs; q++) {
		auto ids = e.rowIds(seqs[q]);
		size_t T = seqs[q].size();
		for (uint32_t l = 0; l < 2; l++) {
			ASSERT_EQ(T * J * rb, streamed[q][l].size());
			for (size_t i = 0; i < T * J; i++) {
				io::randomRow(m.rowFormat, p.seed, ids[l * T * J + i], want.data());
				ASSERT_EQ(0, memcmp(streamed[q][l].data() + i * rb, want.data(), rb))
					<< "seq " << q << " layer " << l << " slot " << i;
			}
		}
	}
	// And one ticket per whole sequence (start + end) equals the streamed bytes.
	for (int q = 0; q < kSeqs; q++) {
		BatchEntry whole = {(uint64_t)(100 + q), seqs[q].data(), (uint32_t)seqs[q].size(), kSeqStart | kSeqEnd};
		ASSERT_LE(whole.count, 512u);
		uint64_t t = 0;
		ASSERT_EQ(0, a->prefetch(&whole, 1, &t));
		ASSERT_EQ(0, a->wait(t));
		for (uint32_t l = 0; l < 2; l++) {
			LayerOutput o;
			ASSERT_EQ(0, a->output(t, l, &o));
			ASSERT_EQ(whole.count, o.tokens);
			for (size_t k = 0; k < seqs[q].size(); k++)
				for (uint32_t j = 0; j < J; j++)
					ASSERT_EQ(0, memcmp(o.rows + (k * J + j) * o.rowStride,
							    streamed[q][l].data() + (k * J + j) * rb, rb));
		}
		ASSERT_EQ(0, a->release(t));
	}
	// The whole-sequence entries ended: their ids are gone, the streamed ones live on.
	EXPECT_EQ(-ENOENT, a->endSequence(100));
	EXPECT_EQ(0, a->endSequence(0));
}

TEST(AgentRows, FirstLayerCompletesOnItsOwn)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 31);
	// Slow emulated memory: layer 1's gather is still running when layer 0 is usable.
	AgentConfig c = agentConfig(p, 1024);
	c.poolUri = p.uri() + "?latency_ns=2000";
	auto a = makeAgent(c);
	Expect e(m);
	SequenceMix mix(e, m.tokenizerVocabSize, 41);
	for (int s = 0; s < 5; s++) {
		mix.next(64, 16, 1024);
		uint64_t t = 0;
		ASSERT_EQ(0, a->prefetch(mix.entries.data(), mix.entries.size(), &t));
		ASSERT_EQ(0, a->wait(t, 0));
		std::string why;
		EXPECT_EQ(0u, outputMismatches(*a, t, mix.expected, m.rowFormat, p.seed, 0, nullptr, &why)) << why;
		EXPECT_EQ(-EINVAL, a->wait(t, 2));
		ASSERT_EQ(0, a->wait(t, 1));
		EXPECT_EQ(0u, outputMismatches(*a, t, mix.expected, m.rowFormat, p.seed, 1, nullptr, &why)) << why;
		ASSERT_EQ(0, a->wait(t, -1));
		ASSERT_EQ(0, a->release(t));
	}
}

TEST(AgentRows, StagingRingHoldsSlotsTicketsAndRefusesWhenFull)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 3);
	auto a = makeAgent(agentConfig(p, 256, 3));
	Expect e(m);
	SequenceMix mix(e, m.tokenizerVocabSize, 5);
	std::deque<std::pair<uint64_t, ExpectedTicket>> held;
	std::set<const uint8_t *> buffers;
	for (int i = 0; i < 3; i++) {
		mix.next(8, 4, 256);
		uint64_t t = 0;
		ASSERT_EQ(0, a->prefetch(mix.entries.data(), mix.entries.size(), &t));
		held.push_back({t, mix.expected});
		LayerOutput o;
		ASSERT_EQ(0, a->output(t, 0, &o));
		buffers.insert(o.rows);
	}
	EXPECT_EQ(3u, buffers.size()) << "each slot has its own output buffer";
	// Every slot is held: the next batch is refused and changes nothing.
	mix.next(8, 4, 256);
	uint64_t t = 0, before = metrics(*a)["tickets"].get<uint64_t>();
	EXPECT_EQ(-EBUSY, a->prefetch(mix.entries.data(), mix.entries.size(), &t));
	EXPECT_EQ(-EBUSY, a->prefetch(mix.entries.data(), mix.entries.size(), &t));
	EXPECT_EQ(before, metrics(*a)["tickets"].get<uint64_t>());
	// The held tickets all complete correctly, in any wait order.
	for (int i = 2; i >= 0; i--)
		ASSERT_EQ(0, a->wait(held[i].first));
	for (auto &[id, exp] : held)
		EXPECT_EQ(0u, outputMismatches(*a, id, exp, m.rowFormat, p.seed));
	// Releasing the oldest frees its slot for the refused batch (retried as is).
	uint64_t oldest = held.front().first;
	ASSERT_EQ(0, a->release(oldest));
	held.pop_front();
	EXPECT_EQ(-ENOENT, a->release(oldest));
	EXPECT_EQ(-ENOENT, a->wait(oldest));
	LayerOutput o;
	EXPECT_EQ(-ENOENT, a->output(oldest, 0, &o));
	ASSERT_EQ(0, a->prefetch(mix.entries.data(), mix.entries.size(), &t));
	EXPECT_NE(oldest, t);
	held.push_back({t, mix.expected});
	ASSERT_EQ(0, a->wait(t));
	for (auto &[id, exp] : held)
		EXPECT_EQ(0u, outputMismatches(*a, id, exp, m.rowFormat, p.seed)) << "ticket " << id;
	// Release without wait: the ticket is waited for, then freed.
	mix.next(8, 4, 256);
	ASSERT_EQ(0, a->release(held.front().first));
	held.pop_front();
	ASSERT_EQ(0, a->prefetch(mix.entries.data(), mix.entries.size(), &t));
	ASSERT_EQ(0, a->release(t));
	for (auto &h : held)
		ASSERT_EQ(0, a->release(h.first));
	EXPECT_EQ(-ENOENT, a->release(0));
	EXPECT_EQ(-ENOENT, a->release(987654));
}

TEST(AgentRows, OneThreadPrefetchesAnotherWaitsAndReleases)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 13);
	auto a = makeAgent(agentConfig(p, 128, 3));
	Expect e(m);
	SequenceMix mix(e, m.tokenizerVocabSize, 17);
	const int kSteps = 300;
	std::mutex mu;
	std::condition_variable cv;
	std::deque<std::pair<uint64_t, ExpectedTicket>> q;
	bool done = false;
	std::atomic<uint64_t> busy{0}, checked{0}, bad{0};
	std::thread consumer([&] {
		for (;;) {
			std::pair<uint64_t, ExpectedTicket> item;
			{
				std::unique_lock<std::mutex> lk(mu);
				cv.wait(lk, [&] { return done || !q.empty(); });
				if (q.empty())
					return;
				item = std::move(q.front());
				q.pop_front();
			}
			// Wait layer by layer, as a server would before each Engram layer.
			if (a->wait(item.first, 0) != 0 || a->wait(item.first, 1) != 0 ||
			    outputMismatches(*a, item.first, item.second, m.rowFormat, p.seed) != 0)
				bad++;
			if (a->release(item.first) != 0)
				bad++;
			checked++;
		}
	});
	for (int s = 0; s < kSteps; s++) {
		mix.next(8, 4, 128);
		uint64_t t = 0;
		int rc;
		while ((rc = a->prefetch(mix.entries.data(), mix.entries.size(), &t)) == -EBUSY) {
			busy++;
			std::this_thread::yield();
		}
		ASSERT_EQ(0, rc);
		{
			std::lock_guard<std::mutex> lk(mu);
			q.push_back({t, mix.expected});
		}
		cv.notify_one();
	}
	{
		std::lock_guard<std::mutex> lk(mu);
		done = true;
	}
	cv.notify_one();
	consumer.join();
	EXPECT_EQ((uint64_t)kSteps, checked.load());
	EXPECT_EQ(0u, bad.load());
	auto j = metrics(*a);
	EXPECT_EQ((uint64_t)kSteps, j["tickets"].get<uint64_t>());
	EXPECT_EQ((uint64_t)kSteps, j["ticket_latency_us"]["count"].get<uint64_t>());
}

TEST(AgentRows, RepeatedRowsOfAStepAreGatheredOnceAndCopied)
{
	// Host device, no hot tier: distinct rows are gathered straight into the output row of
	// their first use and repeats copied from there. Two sequences with the same tokens
	// repeat every row; Zipf mixes repeat some.
	for (auto &c : dtypeCases()) {
		SCOPED_TRACE(c.name);
		ModelConfig m = makeModel(c.model);
		AgentPool p(m, 17);
		for (uint32_t threads : {1u, 2u}) {
			AgentConfig cfg = agentConfig(p, 512);
			cfg.gatherThreads = threads;
			auto a = makeAgent(cfg);
			Expect e(m);
			std::vector<int64_t> toks(100);
			for (size_t i = 0; i < toks.size(); i++)
				toks[i] = (int64_t)((i * 7919) % m.tokenizerVocabSize);
			BatchEntry twin[2] = {{1, toks.data(), 100, kSeqStart | kSeqEnd}, {2, toks.data(), 100, kSeqStart | kSeqEnd}};
			uint64_t t = 0;
			ASSERT_EQ(0, a->prefetch(twin, 2, &t));
			ASSERT_EQ(0, a->wait(t));
			ExpectedTicket exp;
			exp.tokens = 200;
			exp.rows.assign(e.layers(), {});
			auto ids = e.rowIds(toks);
			const size_t J = e.columns();
			for (size_t l = 0; l < e.layers(); l++)
				for (int copy = 0; copy < 2; copy++)
					exp.rows[l].insert(exp.rows[l].end(), ids.begin() + l * 100 * J, ids.begin() + (l + 1) * 100 * J);
			std::string why;
			ASSERT_EQ(0u, outputMismatches(*a, t, exp, m.rowFormat, p.seed, -1, nullptr, &why)) << why;
			ASSERT_EQ(0, a->release(t));
			auto j = metrics(*a);
			EXPECT_LE(2 * j["unique_rows"].get<uint64_t>(), j["rows"].get<uint64_t>());
			SequenceMix mix(e, m.tokenizerVocabSize, 29);
			for (int s = 0; s < 20; s++) {
				mix.next(16, 8, 512, true);
				ASSERT_EQ(0, a->prefetch(mix.entries.data(), mix.entries.size(), &t));
				ASSERT_EQ(0, a->wait(t));
				ASSERT_EQ(0u, outputMismatches(*a, t, mix.expected, m.rowFormat, p.seed, -1, nullptr, &why))
					<< "step " << s << ": " << why;
				ASSERT_EQ(0, a->release(t));
			}
		}
	}
}

TEST(AgentRows, PollSaysWhetherWaitWouldBlock)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 23);
	auto a = makeAgent(agentConfig(p, 256));
	Expect e(m);
	SequenceMix mix(e, m.tokenizerVocabSize, 5);
	mix.next(8, 4, 256);
	uint64_t t = 0;
	ASSERT_EQ(0, a->prefetch(mix.entries.data(), mix.entries.size(), &t));
	int r = a->poll(t, 0);
	EXPECT_TRUE(r == 0 || r == 1) << r;
	ASSERT_EQ(0, a->wait(t));
	for (int l = -1; l < (int)a->layers(); l++)
		EXPECT_EQ(1, a->poll(t, l)) << l;
	EXPECT_EQ(-EINVAL, a->poll(t, (int)a->layers()));
	EXPECT_EQ(-ENOENT, a->poll(t + 1000, 0));
	ASSERT_EQ(0, a->release(t));
	EXPECT_EQ(-ENOENT, a->poll(t, 0));
}

TEST(AgentRows, WaitingCallerCopiesRowsWithTheGatherThreads)
{
	// AgentConfig::waitHelps: wait() joins the pipeline's gather runs (the engine's guest);
	// every row stays right, with and without helper threads.
	ModelConfig m = makeModel(agentModelJson("fp32", 16));
	AgentPool p(m, 31);
	for (uint32_t threads : {1u, 2u}) {
		AgentConfig cfg = agentConfig(p, 512);
		cfg.gatherThreads = threads;
		cfg.waitHelps = true;
		auto a = makeAgent(cfg);
		Expect e(m);
		SequenceMix mix(e, m.tokenizerVocabSize, 13 + threads);
		runMix(*a, p, mix, 60, 16, 32, 512, "threads " + std::to_string(threads));
		EXPECT_EQ(0u, metrics(*a)["errors"].get<uint64_t>());
	}
}

namespace {
// Two sequences of the same 64 fresh tokens: every row of the step repeats once.
void twinStep(HostAgent &a, const AgentPool &p, const Expect &e, std::mt19937_64 &rng, const std::string &label)
{
	std::vector<int64_t> toks(64);
	for (auto &t : toks)
		t = (int64_t)(rng() % p.model.tokenizerVocabSize);
	BatchEntry twin[2] = {{1, toks.data(), 64, kSeqStart | kSeqEnd}, {2, toks.data(), 64, kSeqStart | kSeqEnd}};
	uint64_t t = 0;
	ASSERT_EQ(0, a.prefetch(twin, 2, &t)) << label;
	ASSERT_EQ(0, a.wait(t)) << label;
	ExpectedTicket exp;
	exp.tokens = 128;
	exp.rows.assign(e.layers(), {});
	auto ids = e.rowIds(toks);
	const size_t J = e.columns();
	for (size_t l = 0; l < e.layers(); l++)
		for (int copy = 0; copy < 2; copy++)
			exp.rows[l].insert(exp.rows[l].end(), ids.begin() + l * 64 * J, ids.begin() + (l + 1) * 64 * J);
	std::string why;
	ASSERT_EQ(0u, outputMismatches(a, t, exp, p.model.rowFormat, p.seed, -1, nullptr, &why)) << label << ": " << why;
	ASSERT_EQ(0, a.release(t));
}
} // namespace

TEST(AgentRows, AdaptiveDedupIsSkippedWhereRowsDoNotRepeat)
{
	// Uniform tokens over tables of thousands of rows: about 1 % of a pass's ids repeat, so
	// deduplicating costs more than the repeats' reads it saves, and the agent stops doing
	// it (but for 1 pass in 16..256). Rows stay right, repeats included; with
	// dedupAdaptive off every pass is deduplicated.
	ModelConfig m = makeModel(agentModelJson("fp32", 16));
	AgentPool p(m, 37);
	Expect e(m);
	for (bool adaptive : {true, false}) {
		SCOPED_TRACE(adaptive);
		AgentConfig cfg = agentConfig(p, 512);
		cfg.dedupAdaptive = adaptive;
		auto a = makeAgent(cfg);
		SequenceMix mix(e, m.tokenizerVocabSize, 41);
		runMix(*a, p, mix, 200, 16, 32, 512, "uniform");
		auto j = metrics(*a);
		EXPECT_EQ(adaptive, j["dedup"]["adaptive"].get<bool>());
		const uint64_t skipped = j["dedup"]["skipped_rows"].get<uint64_t>();
		if (adaptive) {
			EXPECT_TRUE(j["dedup"]["skipping"].get<bool>());
			EXPECT_GT(skipped, 0u);
			EXPECT_LT(skipped, j["rows"].get<uint64_t>()) << "the first passes are deduplicated";
		} else {
			EXPECT_EQ(0u, skipped);
		}
		std::mt19937_64 rng(5);
		for (int s = 0; s < 5; s++)
			twinStep(*a, p, e, rng, "twin step " + std::to_string(s));
	}
}

TEST(AgentRows, AdaptiveDedupStaysWhereRepeatsCostPoolReads)
{
	// Every row repeats once and each pool read costs a modeled 2 us of latency: the
	// repeats dedup saves are worth far more than the dedup, which is never skipped.
	ModelConfig m = makeModel(agentModelJson("fp32", 16));
	AgentPool p(m, 43);
	Expect e(m);
	AgentConfig cfg = agentConfig(p, 512);
	cfg.poolUri = p.uri() + "?latency_ns=2000";
	auto a = makeAgent(cfg);
	std::mt19937_64 rng(9);
	for (int s = 0; s < 40; s++)
		twinStep(*a, p, e, rng, "step " + std::to_string(s));
	auto j = metrics(*a);
	EXPECT_TRUE(j["dedup"]["adaptive"].get<bool>());
	EXPECT_FALSE(j["dedup"]["skipping"].get<bool>());
	EXPECT_EQ(0u, j["dedup"]["skipped_rows"].get<uint64_t>());
	EXPECT_LE(2 * j["unique_rows"].get<uint64_t>(), j["rows"].get<uint64_t>()); // every row repeats
}
