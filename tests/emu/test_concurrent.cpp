// SPDX-License-Identifier: Apache-2.0
// test_concurrent.cpp - readers (threads and processes) snapshot and read rows while a writer process imports, replaces and removes.
#include "emu_util.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <unistd.h>

using namespace engrampool;
using namespace eptest;

namespace {

// Tables are named "t<seed>"; their rows are makeRandomSource(seed).
bool seedOf(const std::string &name, uint64_t &seed)
{
	if (name.size() < 2 || name[0] != 't')
		return false;
	char *end = nullptr;
	seed = strtoull(name.c_str() + 1, &end, 10);
	return end && *end == 0;
}

// The writer: for at least `seconds` and `minOps` operations, and then until `stopFile`
// exists (at most `maxSeconds`), add tables, replace one now and then (same seed, new
// extent), and remove the oldest while more than three are live.
int writerLoop(const std::string &uri, const ModelConfig &cfg, double seconds, int minOps, const std::string &stopFile,
	       double maxSeconds)
{
	auto w = openPool(uri, true);
	std::vector<uint64_t> live;
	std::mt19937_64 rng(99);
	uint64_t nextSeed = 1000;
	auto t0 = std::chrono::steady_clock::now();
	int ops = 0;
	for (;;) {
		double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
		if (ops >= minOps && t >= seconds && (t >= maxSeconds || access(stopFile.c_str(), F_OK) == 0))
			break;
		int what = (int)(rng() % 4);
		Status s;
		if (what == 0 && !live.empty()) {
			uint64_t seed = live[rng() % live.size()];
			s = importRandom(*w, cfg, seed % 2 ? 1 : 15, seed, "t" + std::to_string(seed), true).status();
		} else if (live.size() > 3) {
			s = w->removeTable("t" + std::to_string(live.front()));
			live.erase(live.begin());
		} else {
			uint64_t seed = nextSeed++;
			s = importRandom(*w, cfg, seed % 2 ? 1 : 15, seed, "t" + std::to_string(seed)).status();
			live.push_back(seed);
		}
		if (!s) {
			fprintf(stderr, "writer: %s\n", s.message().c_str());
			return 3;
		}
		ops++;
	}
	printf("writer: %d operations, generation %llu\n", ops, (unsigned long long)*w->committedGeneration());
	return 0;
}

struct ReaderStats {
	std::atomic<uint64_t> checked{0}; // the test polls it while the reader runs
	uint64_t snapshots = 0, discarded = 0, mismatches = 0, retries = 0, errors = 0;
	uint64_t backwards = 0, badNames = 0, maxGen = 0, distinctGens = 0;
	std::string firstError;
};

// One reader: snapshot, sample rows of every visible table, keep a sample only if the
// generation did not move while reading (a removed table's extent may be reused after
// the next commit: this reader is no registered host).
void readerLoop(const std::string &uri, const ModelConfig &cfg, const std::atomic<bool> &stop, ReaderStats &st,
		uint64_t rngSeed)
{
	auto p = openPool(uri, false);
	std::mt19937_64 rng(rngSeed);
	std::vector<uint8_t> want(cfg.rowFormat.rowStride()), got(cfg.rowFormat.rowStride());
	uint64_t lastGen = 0;
	while (!stop.load(std::memory_order_relaxed)) {
		auto s = p->snapshot();
		if (!s) {
			if (s.code() == EP_E_RETRY) {
				st.retries++;
				continue;
			}
			if (!st.errors++)
				st.firstError = s.status().message();
			continue;
		}
		st.snapshots++;
		if (s->generation < lastGen)
			st.backwards++;
		if (s->generation != lastGen)
			st.distinctGens++;
		lastGen = std::max(lastGen, s->generation);
		st.maxGen = lastGen;
		for (const TableInfo &t : s->tables) {
			uint64_t seed;
			if (!seedOf(t.name, seed) || t.generation > s->generation || t.rowStride != want.size()) {
				st.badNames++;
				continue;
			}
			uint64_t bad = 0;
			const int samples = 16;
			uint64_t rows[samples];
			for (int i = 0; i < samples; i++)
				rows[i] = i == 0 ? t.rows - 1 : rng() % t.rows;
			for (int i = 0; i < samples; i++) {
				std::memcpy(got.data(), p->tableData(t) + rows[i] * t.rowStride, t.rowStride);
				io::randomRow(cfg.rowFormat, seed, rows[i], want.data());
				bad += std::memcmp(got.data(), want.data(), want.size()) != 0;
			}
			std::atomic_thread_fence(std::memory_order_acquire);
			auto g = p->committedGeneration();
			if (!g || *g != s->generation) {
				st.discarded++;
				continue;
			}
			st.checked += samples;
			st.mismatches += bad;
		}
	}
}

std::string describe(const ReaderStats &s)
{
	return "snapshots " + std::to_string(s.snapshots) + ", rows checked " + std::to_string(s.checked.load()) +
	       ", discarded tables " + std::to_string(s.discarded) + ", mismatches " + std::to_string(s.mismatches) +
	       ", EP_E_RETRY " + std::to_string(s.retries) + ", errors " + std::to_string(s.errors) + " (" + s.firstError +
	       "), generations seen " + std::to_string(s.distinctGens) + ", max " + std::to_string(s.maxGen);
}

} // namespace

TEST(ConcurrentReaders, ThreadsCheckRowsWhileAWriterProcessPublishes)
{
	ModelConfig cfg = tinyModel();
	ScopedPool sp("emul", 64ull << 20);
	TempDir dir;
	const std::string stopFile = dir.file("stop");
	const uint64_t minChecked = 1000;
	// Fork the writer before any thread exists. It publishes for at least 3 s and then
	// until both readers have checked enough rows (a sanitizer build on a loaded machine
	// reads slowly), at most 120 s.
	pid_t writer = forkChild([&] { return writerLoop(sp.uri(), cfg, 3.0, 40, stopFile, 120.0); });
	std::atomic<bool> stop{false};
	ReaderStats stats[2];
	std::vector<std::thread> readers;
	for (int i = 0; i < 2; i++)
		readers.emplace_back([&, i] {
			try {
				readerLoop(sp.uri(), cfg, stop, stats[i], 7 + i);
			} catch (const std::exception &e) {
				stats[i].errors++;
				stats[i].firstError = e.what();
			}
		});
	auto t0 = std::chrono::steady_clock::now();
	while (std::min(stats[0].checked.load(), stats[1].checked.load()) <= minChecked &&
	       std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120))
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
	writeFile(stopFile, "");
	int st = waitChild(writer);
	stop = true;
	for (auto &t : readers)
		t.join();
	ASSERT_TRUE(exitedOk(st)) << describeStatus(st);
	for (auto &s : stats) {
		SCOPED_TRACE(describe(s));
		std::printf("reader: %s\n", describe(s).c_str());
		EXPECT_EQ(s.mismatches, 0u) << "a reader saw rows that are not the table's";
		EXPECT_EQ(s.errors, 0u) << s.firstError;
		EXPECT_EQ(s.backwards, 0u) << "the committed generation went backwards";
		EXPECT_EQ(s.badNames, 0u);
		EXPECT_GT(s.checked.load(), minChecked) << "the readers must actually have checked rows";
		EXPECT_GT(s.distinctGens, 5u) << "and seen the writer publish";
	}
	// The final pool is consistent: every table verifies, nothing leaked.
	auto p = openPool(sp.uri(), false);
	auto s = p->snapshot();
	ASSERT_TRUE(s);
	Expected e;
	e.models = 1;
	for (auto &t : s->tables) {
		uint64_t seed;
		ASSERT_TRUE(seedOf(t.name, seed));
		e.tables[t.name] = {&cfg, seed};
	}
	EXPECT_EQ(checkPoolHolds(sp.uri(), e, true), "");
}

TEST(ConcurrentReaders, ReaderProcessesAndAnAddOnlyWriter)
{
	// Readers in their own processes; the writer only adds, so every snapshot's
	// tables stay readable and no sample is discarded.
	ModelConfig cfg = tinyModel();
	ScopedPool sp("emul", 96ull << 20);
	std::vector<pid_t> readers;
	TempDir dir;
	for (int i = 0; i < 2; i++) {
		std::string out = dir.file("reader" + std::to_string(i));
		std::string stopFile = dir.file("stop");
		readers.push_back(forkChild([&, i, out, stopFile] {
			auto p = openPool(sp.uri(), false);
			std::mt19937_64 rng(i + 1);
			std::vector<uint8_t> want(64);
			uint64_t checked = 0, bad = 0, lastGen = 0, back = 0, errors = 0;
			// One more round after the stop file appears: the last snapshot sees the final generation.
			for (bool last = false; !last;) {
				last = access(stopFile.c_str(), F_OK) == 0;
				auto s = p->snapshot();
				if (!s) {
					errors += s.code() != EP_E_RETRY;
					continue;
				}
				back += s->generation < lastGen;
				lastGen = s->generation;
				for (auto &t : s->tables) {
					uint64_t seed;
					if (!seedOf(t.name, seed)) {
						bad++;
						continue;
					}
					for (int k = 0; k < 8; k++) {
						uint64_t r = rng() % t.rows;
						io::randomRow(cfg.rowFormat, seed, r, want.data());
						bad += std::memcmp(p->tableData(t) + r * t.rowStride, want.data(), 64) != 0;
						checked++;
					}
				}
			}
			writeFile(out, std::to_string(checked) + " " + std::to_string(bad) + " " + std::to_string(back) + " " +
					       std::to_string(errors) + " " + std::to_string(lastGen));
			return 0;
		}));
	}
	pid_t writer = forkChild([&] {
		auto w = openPool(sp.uri(), true);
		for (uint64_t seed = 1; seed <= 20; seed++)
			if (!importRandom(*w, cfg, seed % 2 ? 1 : 15, seed, "t" + std::to_string(seed)))
				return 3;
		return 0;
	});
	int wst = waitChild(writer);
	writeFile(dir.file("stop"), "");
	for (pid_t r : readers)
		ASSERT_TRUE(exitedOk(waitChild(r)));
	ASSERT_TRUE(exitedOk(wst)) << describeStatus(wst);
	for (int i = 0; i < 2; i++) {
		std::ifstream f(dir.file("reader" + std::to_string(i)));
		uint64_t checked = 0, bad = 1, back = 1, errors = 1, lastGen = 0;
		f >> checked >> bad >> back >> errors >> lastGen;
		std::printf("reader process %d: %llu rows checked, %llu bad, last generation %llu\n", i,
			    (unsigned long long)checked, (unsigned long long)bad, (unsigned long long)lastGen);
		EXPECT_EQ(bad, 0u);
		EXPECT_EQ(back, 0u);
		EXPECT_EQ(errors, 0u);
		EXPECT_GT(checked, 100u);
		EXPECT_EQ(lastGen, 21u) << "the reader saw the final generation";
	}
}

// Regression test for a reported library bug: Pool::verify() (and so `engrampool verify`
// and ep_pool_verify) hashed the extents of one snapshot while the writer reclaims
// replaced tables right after the next commit and reuses their space, so a verify run
// during replaces reported healthy tables as BAD. A reader must re-check the committed
// generation and retry (ARCHITECTURE.md, "Publication and coherence").
TEST(ConcurrentReaders, VerifyDuringReplacesReportsNoFalseCorruption)
{
	ModelConfig cfg = tinyModel();
	ScopedPool sp("emul", 64ull << 20);
	{
		auto w = openPool(sp.uri(), true);
		ASSERT_TRUE(importRandom(*w, cfg, 1, 1, "t1"));
		ASSERT_TRUE(importRandom(*w, cfg, 15, 2, "t2"));
	}
	pid_t writer = forkChild([&] {
		auto w = openPool(sp.uri(), true);
		for (int i = 0; i < 150; i++)
			if (!importRandom(*w, cfg, 1, 1, "t1", true) || !importRandom(*w, cfg, 15, 2, "t2", true))
				return 3;
		return 0;
	});
	auto p = openPool(sp.uri(), false);
	int runs = 0, bad = 0, errors = 0, wst = 0;
	std::string firstBad;
	while (waitpid(writer, &wst, WNOHANG) == 0) {
		auto v = p->verify();
		runs++;
		if (!v) {
			errors += v.code() != EP_E_RETRY;
			continue;
		}
		for (auto &r : *v)
			if (!r.ok && !bad++)
				firstBad = r.table + ": " + r.problem;
	}
	ASSERT_TRUE(exitedOk(wst)) << describeStatus(wst);
	ASSERT_GT(runs, 0);
	std::printf("verify during replaces: %d runs, %d false BAD reports (%s)\n", runs, bad, firstBad.c_str());
	EXPECT_EQ(bad, 0) << "verify reported a healthy table as corrupted: " << firstBad;
	EXPECT_EQ(errors, 0);
	EXPECT_EQ(checkPoolHolds(sp.uri(), {{{"t1", {&cfg, 1}}, {"t2", {&cfg, 2}}}, 1}, true), "");
}
