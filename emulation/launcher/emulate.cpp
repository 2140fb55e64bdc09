// SPDX-License-Identifier: Apache-2.0
// emulate.cpp - multi-host launcher: forked host processes serving verified Zipfian streams, live replacement, host kills, leases and reclaim.
#include "emulate.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "agent/agent.hpp"
#include "format/layout.hpp"
#include "hashing/hasher.hpp"
#include "hashing/layout.hpp"
#include "hashing/primes.hpp"
#include "io/row_source.hpp"
#include "pool/pool.hpp"
#include "util/units.hpp"

namespace engrampool::emulate {

namespace {

constexpr uint32_t kMaxEntries = 256;
constexpr uint32_t kHistBuckets = 2048; // log2(ns) * 32
constexpr uint32_t kMaxGens = 32;

enum HostState : uint32_t { Starting = 0, Running = 1, Done = 2, Failed = 3 };

struct SeedEntry {
	uint32_t layerIndex;
	uint64_t generation; // first generation holding this table version
	uint64_t seed;
};

struct HostShared {
	std::atomic<uint32_t> state;
	std::atomic<int32_t> slot;
	std::atomic<uint64_t> step;
	std::atomic<uint64_t> tokens;
	std::atomic<uint64_t> rowsChecked;
	std::atomic<uint64_t> wrongRows;
	std::atomic<uint64_t> stallNs;
	std::atomic<uint64_t> elapsedNs;
	std::atomic<uint64_t> maxGen;
	uint32_t genCount;
	uint64_t gens[kMaxGens];
	uint32_t hist[kHistBuckets];
	char error[256];
	char firstWrong[256];
};

struct Shared {
	std::atomic<uint32_t> entryCount;
	std::atomic<uint32_t> importsStarted;
	std::atomic<uint32_t> importsDone;
	std::atomic<uint32_t> eventsDone; // all kills and replacements are behind us
	std::atomic<uint64_t> finalGen;   // hosts go on until they served this generation
	std::atomic<uint32_t> abort;
	SeedEntry entries[kMaxEntries];
	HostShared hosts[1];              // [hosts]
};

size_t sharedBytes(uint32_t hosts) { return sizeof(Shared) + sizeof(HostShared) * (hosts ? hosts - 1 : 0); }

uint32_t histBucket(uint64_t ns)
{
	double b = std::log2((double)ns + 1.0) * 32.0;
	return std::min<uint32_t>(kHistBuckets - 1, (uint32_t)b);
}
double bucketNs(uint32_t b) { return std::exp2((b + 0.5) / 32.0); }

double percentileUs(const std::vector<uint64_t> &hist, double q)
{
	uint64_t total = 0;
	for (auto c : hist)
		total += c;
	if (!total)
		return 0;
	uint64_t want = (uint64_t)std::ceil(q * (double)total), seen = 0;
	for (uint32_t b = 0; b < hist.size(); b++) {
		seen += hist[b];
		if (seen >= want && hist[b])
			return bucketNs(b) / 1000.0;
	}
	return 0;
}

void setText(char *dst, size_t cap, const std::string &s)
{
	size_t n = std::min(cap - 1, s.size());
	std::memcpy(dst, s.data(), n);
	dst[n] = 0;
}

double secondsSince(std::chrono::steady_clock::time_point t0)
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One host process: the agent, its own hasher stream, the checks. Returns the exit code.
int hostMain(const Options &o, Shared *sh, uint32_t i)
{
	HostShared &me = sh->hosts[i];
	auto failWith = [&](const std::string &msg) {
		setText(me.error, sizeof(me.error), msg);
		me.state.store(Failed);
		return 3;
	};
	char id[40];
	snprintf(id, sizeof(id), "%016llx%016llx", 0xe4a1a7e0e0000000ull + o.seed, (unsigned long long)i + 1);
	setenv("EP_HOST_ID", id, 1);

	auto layout = hashing::ModelLayout::create(o.model);
	if (!layout)
		return failWith("model layout: " + layout.status().message());
	auto hasher = hashing::EngramHasher::create(*layout);
	if (!hasher)
		return failWith("hasher: " + hasher.status().message());
	const uint32_t B = o.batch, L = (uint32_t)layout->layers().size(), J = layout->columns();
	const uint32_t maxChunk = std::max(1u, std::min(o.maxPrefill, o.maxSeqLen));

	AgentConfig ac;
	ac.poolUri = o.uri;
	ac.model = &o.model;
	ac.maxBatchTokens = B * maxChunk;
	ac.maxSequences = 2 * B + 4;
	ac.slots = 3;
	ac.cacheRows = o.cacheRows;
	ac.registerHost = true;
	ac.hostIndex = (int)(o.hostIndexBase + i);
	ac.heartbeatMs = o.heartbeatMs;
	auto agentR = HostAgent::create(ac);
	if (!agentR)
		return failWith("agent: " + agentR.status().message());
	auto &agent = *agentR;
	me.slot.store(agent->hostSlot());
	me.state.store(Running);

	// Token stream: one Zipf over ranks, ranks mapped to ids by a run-wide permutation.
	Zipf zipf(o.model.tokenizerVocabSize, o.zipfS);
	std::vector<int64_t> perm(o.model.tokenizerVocabSize);
	for (size_t k = 0; k < perm.size(); k++)
		perm[k] = (int64_t)k;
	std::shuffle(perm.begin(), perm.end(), std::mt19937_64(o.seed * 7 + 3));
	std::mt19937_64 rng(o.seed * 1000003 + i * 7919 + 1);

	struct Seq {
		uint64_t id = 0;
		uint32_t remaining = 0; // 0: start a new sequence next step
		uint64_t tracePos = 0;  // --trace: next token of the trace this sequence reads
	};
	std::vector<Seq> seqs(B);
	std::vector<hashing::StreamState> states(B);
	std::vector<int64_t> tokens(B * maxChunk);
	std::vector<uint64_t> offsets(B + 1);
	std::vector<uint64_t> expect(hasher->outputSize(B * maxChunk));
	std::vector<BatchEntry> batch(B);
	std::vector<uint8_t> want(o.model.rowFormat.rowStride());
	uint64_t nextSeq = 1;

	// generation -> seed, per layer, from the launcher's map.
	std::vector<SeedEntry> map;
	uint64_t resolvedUpTo = 0;
	auto refreshMap = [&](uint64_t gen) -> bool {
		if (gen <= resolvedUpTo)
			return true;
		auto t0 = std::chrono::steady_clock::now();
		for (;;) {
			uint32_t started = sh->importsStarted.load();
			uint32_t done = sh->importsDone.load();
			if (started == done) {
				uint32_t n = sh->entryCount.load();
				map.assign(sh->entries, sh->entries + n);
				if (sh->importsStarted.load() == started) {
					resolvedUpTo = gen;
					return true;
				}
			}
			if (secondsSince(t0) > 30 || sh->abort.load())
				return false;
			std::this_thread::sleep_for(std::chrono::microseconds(200));
		}
	};
	auto seedFor = [&](uint32_t layer, uint64_t gen, uint64_t &seed) {
		uint64_t best = 0;
		bool found = false;
		for (auto &e : map)
			if (e.layerIndex == layer && e.generation <= gen && (!found || e.generation >= best)) {
				best = e.generation;
				seed = e.seed;
				found = true;
			}
		return found;
	};
	auto noteGen = [&](uint64_t g) {
		for (uint32_t k = 0; k < me.genCount; k++)
			if (me.gens[k] == g)
				return;
		if (me.genCount < kMaxGens)
			me.gens[me.genCount++] = g;
		if (g > me.maxGen.load())
			me.maxGen.store(g);
	};

	auto start = std::chrono::steady_clock::now();
	uint64_t step = 0;
	for (;;) {
		if (sh->abort.load())
			return failWith("aborted by the launcher");
		if (step >= o.steps && sh->eventsDone.load() && me.maxGen.load() >= sh->finalGen.load())
			break;
		// Build the step's batch: every slot carries a sequence; ended ones restart.
		uint32_t T = 0;
		for (uint32_t b = 0; b < B; b++) {
			Seq &s = seqs[b];
			uint32_t flags = 0, count = 1;
			if (s.remaining == 0) {
				s.id = nextSeq++;
				s.remaining = 2 + (uint32_t)(rng() % std::max(1u, o.maxSeqLen - 1));
				count = std::min(s.remaining, 1 + (uint32_t)(rng() % maxChunk));
				flags |= kSeqStart;
				hasher->beginSequence(states[b]);
				// A trace sequence picked at random (its start): real n-grams from there on.
				if (o.trace)
					s.tracePos = o.trace->starts[rng() % o.trace->sequences()];
			}
			s.remaining -= count;
			if (s.remaining == 0)
				flags |= kSeqEnd;
			offsets[b] = T;
			if (o.trace) {
				for (uint32_t k = 0; k < count; k++)
					tokens[T + k] = o.trace->tokens[(s.tracePos++) % o.trace->tokens.size()];
			} else {
				for (uint32_t k = 0; k < count; k++)
					tokens[T + k] = perm[zipf(rng())];
			}
			batch[b] = {s.id, tokens.data() + T, count, flags};
			T += count;
		}
		offsets[B] = T;
		Status hs = hasher->hashStream(states, std::span<const int64_t>(tokens.data(), T), offsets,
					       std::span<uint64_t>(expect.data(), (size_t)L * T * J));
		if (!hs)
			return failWith("hashStream: " + hs.message());

		uint64_t t0 = nowMonotonicNs();
		uint64_t ticket = 0;
		if (int rc = agent->prefetch(batch.data(), B, &ticket); rc != 0)
			return failWith("prefetch step " + std::to_string(step) + ": " + std::string(errorName(rc)) + " " +
					agent->lastError());
		if (o.computeUs)
			std::this_thread::sleep_for(std::chrono::microseconds(o.computeUs));
		uint64_t t1 = nowMonotonicNs();
		if (int rc = agent->wait(ticket); rc != 0)
			return failWith("wait step " + std::to_string(step) + ": " + std::string(errorName(rc)) + " " +
					agent->lastError());
		uint64_t t2 = nowMonotonicNs();
		me.stallNs.fetch_add(t2 - t1, std::memory_order_relaxed);
		me.hist[histBucket(t2 - t0)]++;

		uint64_t checked = 0, wrong = 0;
		for (uint32_t l = 0; l < L; l++) {
			LayerOutput out;
			if (int rc = agent->output(ticket, l, &out); rc != 0)
				return failWith("output: " + std::string(errorName(rc)));
			noteGen(out.generation);
			if (!refreshMap(out.generation))
				return failWith("generation " + std::to_string(out.generation) +
						" has no recorded seed (launcher gone?)");
			uint64_t seed = 0;
			if (!seedFor(l, out.generation, seed))
				return failWith("no seed recorded for layer index " + std::to_string(l) + " at generation " +
						std::to_string(out.generation));
			if (out.tokens != T || out.columns != J)
				return failWith("output shape [" + std::to_string(out.tokens) + "][" +
						std::to_string(out.columns) + "], expected [" + std::to_string(T) + "][" +
						std::to_string(J) + "]");
			for (uint32_t t = 0; t < T; t++)
				for (uint32_t j = 0; j < J; j++) {
					uint64_t row = expect[((size_t)l * T + t) * J + j];
					io::randomRow(o.model.rowFormat, seed, row, want.data());
					const uint8_t *got = out.rows + ((size_t)t * J + j) * out.rowStride;
					checked++;
					if (std::memcmp(got, want.data(), out.rowBytes) != 0) {
						if (wrong == 0 && me.wrongRows.load() == 0)
							setText(me.firstWrong, sizeof(me.firstWrong),
								"step " + std::to_string(step) + " layer index " +
									std::to_string(l) + " token " + std::to_string(t) +
									" column " + std::to_string(j) + " row " +
									std::to_string(row) + " generation " +
									std::to_string(out.generation) + " seed " +
									std::to_string(seed));
						wrong++;
					}
				}
		}
		agent->release(ticket);
		me.rowsChecked.fetch_add(checked, std::memory_order_relaxed);
		me.wrongRows.fetch_add(wrong, std::memory_order_relaxed);
		me.tokens.fetch_add(T, std::memory_order_relaxed);
		step++;
		me.step.store(step);
		me.elapsedNs.store((uint64_t)(secondsSince(start) * 1e9));
	}
	me.elapsedNs.store((uint64_t)(secondsSince(start) * 1e9));
	agent.reset(); // detaches the host slot
	me.state.store(Done);
	return me.wrongRows.load() ? 4 : 0;
}

std::string tableName(const ModelConfig &m, uint32_t layerId) { return defaultTableName(m.name, layerId); }

// Row 0 and the last row of every layer table match the seed (catches a wrong --seed early).
Status checkTables(const Pool &p, const Options &o, Snapshot &snap)
{
	std::vector<uint8_t> want(o.model.rowFormat.rowStride()), got(o.model.rowFormat.rowStride());
	for (uint32_t l : o.model.layerIds) {
		const TableInfo *t = snap.findTable(tableName(o.model, l));
		if (!t)
			return errorf(-ENOENT,
				      "table '%s' is not in the pool: import every layer with --random --seed %llu "
				      "(or pass --prepare)",
				      tableName(o.model, l).c_str(), (unsigned long long)o.seed);
		for (uint64_t r : {uint64_t(0), t->rows - 1}) {
			io::randomRow(o.model.rowFormat, o.seed, r, want.data());
			EP_TRY(p.readRows(*t, &r, 1, got.data(), got.size()));
			if (std::memcmp(want.data(), got.data(), t->rowBytes) != 0)
				return errorf(EP_E_SHAPE, "table '%s' does not hold --random --seed %llu rows (row %llu differs)",
					      t->name.c_str(), (unsigned long long)o.seed, (unsigned long long)r);
		}
	}
	return Status::ok();
}

Result<std::unique_ptr<Pool>> openPoolAs(const std::string &uri, bool write)
{
	OpenOptions oo;
	oo.write = write;
	oo.lockWaitMs = 10000;
	return Pool::open(uri, oo);
}

} // namespace

Zipf::Zipf(uint64_t n, double s)
{
	cdf_.resize(std::max<uint64_t>(1, n));
	double sum = 0;
	for (uint64_t k = 0; k < cdf_.size(); k++) {
		sum += 1.0 / std::pow((double)(k + 1), s);
		cdf_[k] = sum;
	}
	for (auto &c : cdf_)
		c /= sum;
}

uint64_t Zipf::operator()(uint64_t u) const
{
	double x = (double)(u >> 11) * (1.0 / 9007199254740992.0);
	auto it = std::upper_bound(cdf_.begin(), cdf_.end(), x);
	return std::min<uint64_t>(cdf_.size() - 1, (uint64_t)(it - cdf_.begin()));
}

Result<Report> run(const Options &o)
{
	if (!o.tracePath.empty() && !o.trace) {
		// Loaded once here; the forked hosts share it.
		auto t = trace::loadTrace(o.tracePath, o.model.tokenizerVocabSize);
		if (!t)
			return t.status();
		Options withTrace = o;
		withTrace.trace = &t.value();
		return run(withTrace);
	}
	if (o.hostIndexBase >= format::kHostSlots)
		return errorf(-EINVAL, "--host-index-base %u is out of range: the pool has %u host slots, so it must be 0..%u",
			      o.hostIndexBase, format::kHostSlots, format::kHostSlots - 1);
	if (o.hosts == 0 || o.hosts > format::kHostSlots - o.hostIndexBase)
		return errorf(-EINVAL, "--hosts must be 1..%u (host slots %u..%u after --host-index-base %u)",
			      format::kHostSlots - o.hostIndexBase, o.hostIndexBase, format::kHostSlots - 1, o.hostIndexBase);
	if (o.batch == 0 || o.steps == 0)
		return makeError(-EINVAL, "--batch and --steps must be positive");
	// Every host holds B x max-prefill tokens per step in each of its staging slots.
	if (o.batch > kMaxBatch)
		return errorf(-EINVAL, "--batch %u is too large: at most %u live sequences per host", o.batch, kMaxBatch);
	if (o.maxPrefill == 0 || o.maxSeqLen < 2)
		return makeError(-EINVAL, "--max-prefill must be positive and --max-seq-len at least 2");
	if ((uint64_t)o.batch * std::min(o.maxPrefill, o.maxSeqLen) > kMaxStepTokens)
		return errorf(-EINVAL, "--batch %u x --max-prefill %u is more than %u tokens per step", o.batch,
			      std::min(o.maxPrefill, o.maxSeqLen), kMaxStepTokens);
	if (!std::isfinite(o.zipfS) || o.zipfS < 0)
		return errorf(-EINVAL, "--zipf must be a finite number >= 0, found %g", o.zipfS);
	if (!std::isfinite(o.timeoutS) || o.timeoutS <= 0)
		return errorf(-EINVAL, "--timeout must be a positive number of seconds, found %g", o.timeoutS);
	if (o.killHosts > o.hosts)
		return makeError(-EINVAL, "--kill-hosts is larger than --hosts");
	if (o.model.layerIds.empty() || o.model.layerIds.size() * 4 > kMaxEntries)
		return makeError(-EINVAL, "model has no Engram layers or too many");
	if (o.replaceAt >= 0 && (uint64_t)o.replaceAt >= o.steps)
		return makeError(-EINVAL, "--replace-at must be below --steps");
	if (o.killAt >= 0 && (uint64_t)o.killAt >= o.steps)
		return errorf(-EINVAL, "--kill-at %lld must be below --steps %llu", (long long)o.killAt,
			      (unsigned long long)o.steps);
	int64_t killAt = o.killAt >= 0 ? o.killAt : o.replaceAt >= 0 ? o.replaceAt : (int64_t)(o.steps / 2);
	const uint32_t L = (uint32_t)o.model.layerIds.size();

	Report rep;
	// Before forking: prepare/check the tables and record their generations.
	uint64_t leaseMs = 0;
	Snapshot snap;
	{
		if (o.prepare) {
			auto w = openPoolAs(o.uri, true);
			if (!w)
				return w.status();
			auto s = (*w)->snapshot();
			if (!s)
				return s.status();
			auto rows = hashing::tableRows(o.model);
			for (uint32_t k = 0; k < L; k++) {
				if (s->findTable(tableName(o.model, o.model.layerIds[k])))
					continue;
				auto src = io::makeRandomSource(o.model.rowFormat, rows[k], o.seed);
				ImportRequest req;
				req.model = &o.model;
				req.layerId = o.model.layerIds[k];
				req.rows = rows[k];
				auto r = (*w)->importTable(req, *src);
				if (!r)
					return r.status();
			}
		}
		auto p = openPoolAs(o.uri, false);
		if (!p)
			return p.status();
		auto s = (*p)->snapshot();
		if (!s)
			return s.status();
		snap = std::move(*s);
		EP_TRY(checkTables(**p, o, snap));
		leaseMs = (*p)->superblock().leaseMs;
	}
	rep.initialGeneration = snap.generation;

	size_t shBytes = sharedBytes(o.hosts);
	void *m = mmap(nullptr, shBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return errorf(-errno, "mmap shared state: %s", strerror(errno));
	std::memset(m, 0, shBytes);
	Shared *sh = static_cast<Shared *>(m);
	struct Unmap {
		void *p;
		size_t n;
		~Unmap() { munmap(p, n); }
	} unmapGuard{m, shBytes};
	for (uint32_t k = 0; k < L; k++) {
		const TableInfo *t = snap.findTable(tableName(o.model, o.model.layerIds[k]));
		sh->entries[k] = {k, t->generation, o.seed};
	}
	sh->entryCount.store(L);
	sh->finalGen.store(0);
	for (uint32_t i = 0; i < o.hosts; i++)
		sh->hosts[i].slot.store(-1);

	std::vector<pid_t> pids(o.hosts, 0);
	std::vector<int> exitStatus(o.hosts, 0);
	std::vector<bool> exited(o.hosts, false), killed(o.hosts, false);
	fflush(stdout);
	fflush(stderr);
	for (uint32_t i = 0; i < o.hosts; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			sh->abort.store(1);
			for (uint32_t k = 0; k < i; k++)
				waitpid(pids[k], nullptr, 0);
			return errorf(-errno, "fork: %s", strerror(errno));
		}
		if (pid == 0) {
			int rc = 99;
			try {
				rc = hostMain(o, sh, i);
			} catch (const std::exception &e) {
				setText(sh->hosts[i].error, sizeof(sh->hosts[i].error), std::string("exception: ") + e.what());
				sh->hosts[i].state.store(Failed);
			}
			fflush(stdout);
			fflush(stderr);
			_exit(rc);
		}
		pids[i] = pid;
		rep.hosts.push_back({});
		rep.hosts.back().index = i;
		rep.hosts.back().pid = pid;
	}

	auto start = std::chrono::steady_clock::now();
	auto fail = [&](const std::string &msg) {
		rep.failures.push_back(msg);
		if (o.progress)
			fprintf(stderr, "emulate: FAIL %s\n", msg.c_str());
	};
	auto note = [&](const std::string &msg) {
		if (o.progress)
			fprintf(stderr, "emulate: %.3f s %s\n", secondsSince(start), msg.c_str());
	};

	// The manager: a writer opened only after the forks (the children must not share its lock).
	std::unique_ptr<Pool> writer;
	bool killPending = o.killHosts > 0, replacePending = o.replaceAt >= 0;
	std::chrono::steady_clock::time_point killTime{};
	auto lastReclaim = std::chrono::steady_clock::now();
	bool replaced = false;
	std::mt19937_64 rng(o.seed ^ 0x5eedf00dull);
	if (!killPending && !replacePending)
		sh->eventsDone.store(1);

	uint32_t running = o.hosts;
	while (running > 0) {
		// Reap exits.
		for (uint32_t i = 0; i < o.hosts; i++) {
			if (exited[i])
				continue;
			int st = 0;
			pid_t r = waitpid(pids[i], &st, WNOHANG);
			if (r == pids[i]) {
				exited[i] = true;
				exitStatus[i] = st;
				running--;
				if (!killed[i] && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
					sh->abort.store(1);
			}
		}
		if (sh->abort.load() && (killPending || replacePending)) {
			killPending = replacePending = false;
			sh->eventsDone.store(1);
		}
		if (secondsSince(start) > o.timeoutS) {
			fail("timed out after " + std::to_string(o.timeoutS) + " s");
			sh->abort.store(1);
			for (uint32_t i = 0; i < o.hosts; i++)
				if (!exited[i])
					kill(pids[i], SIGKILL);
			for (uint32_t i = 0; i < o.hosts; i++)
				if (!exited[i]) {
					waitpid(pids[i], &exitStatus[i], 0);
					exited[i] = true;
				}
			break;
		}
		// The slowest host still serving.
		uint64_t minStep = UINT64_MAX;
		for (uint32_t i = 0; i < o.hosts; i++)
			if (!exited[i] && !killed[i])
				minStep = std::min(minStep, sh->hosts[i].step.load());
		bool allRunning = true;
		for (uint32_t i = 0; i < o.hosts; i++)
			if (!exited[i] && sh->hosts[i].state.load() == Starting)
				allRunning = false;

		if (killPending && allRunning && minStep != UINT64_MAX && minStep >= (uint64_t)killAt) {
			std::vector<uint32_t> alive;
			for (uint32_t i = 0; i < o.hosts; i++)
				if (!exited[i])
					alive.push_back(i);
			std::shuffle(alive.begin(), alive.end(), rng);
			for (uint32_t k = 0; k < o.killHosts && k < alive.size(); k++) {
				uint32_t i = alive[k];
				kill(pids[i], SIGKILL);
				killed[i] = true;
				rep.killedHosts.push_back(i);
			}
			std::sort(rep.killedHosts.begin(), rep.killedHosts.end());
			killTime = std::chrono::steady_clock::now();
			killPending = false;
			std::string which;
			for (auto i : rep.killedHosts)
				which += " " + std::to_string(i);
			note("SIGKILLed hosts" + which + " at step " + std::to_string(minStep));
			continue; // recompute minStep without them
		}
		if (replacePending && !killPending && allRunning && minStep != UINT64_MAX &&
		    minStep >= (uint64_t)o.replaceAt) {
			replacePending = false;
			if (!writer) {
				auto w = openPoolAs(o.uri, true);
				if (!w) {
					fail("open writer: " + w.status().message());
					sh->abort.store(1);
					continue;
				}
				writer = std::move(*w);
			}
			rep.newSeed = o.seed + 1000003;
			auto rows = hashing::tableRows(o.model);
			bool ok = true;
			for (uint32_t k = 0; k < L && ok; k++) {
				sh->importsStarted.fetch_add(1);
				auto src = io::makeRandomSource(o.model.rowFormat, rows[k], rep.newSeed);
				ImportRequest req;
				req.model = &o.model;
				req.layerId = o.model.layerIds[k];
				req.rows = rows[k];
				req.replace = true;
				auto r = writer->importTable(req, *src);
				if (r) {
					uint32_t n = sh->entryCount.load();
					sh->entries[n] = {k, r->generation, rep.newSeed};
					sh->entryCount.store(n + 1);
					rep.replaceGenerations.push_back(r->generation);
					sh->finalGen.store(r->generation);
				} else {
					fail("replace layer " + std::to_string(o.model.layerIds[k]) + ": " + r.status().message());
					sh->abort.store(1);
					ok = false;
				}
				sh->importsDone.fetch_add(1);
			}
			replaced = ok;
			note("replaced " + std::to_string(L) + " table(s) with seed " + std::to_string(rep.newSeed) +
			     " at step " + std::to_string(minStep));
		}
		if (!killPending && !replacePending)
			sh->eventsDone.store(1);
		if (replaced && writer &&
		    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - lastReclaim).count() >=
			    o.reclaimMs) {
			lastReclaim = std::chrono::steady_clock::now();
			auto r = writer->reclaim();
			rep.reclaimCalls++;
			if (r)
				rep.reclaimedTables += *r;
			else
				fail("reclaim: " + r.status().message());
		}
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	}
	rep.seconds = secondsSince(start);

	// Per-host results.
	std::vector<uint64_t> totalHist(kHistBuckets, 0);
	for (uint32_t i = 0; i < o.hosts; i++) {
		HostShared &hs = sh->hosts[i];
		HostReport &h = rep.hosts[i];
		h.slot = hs.slot.load();
		h.steps = hs.step.load();
		h.tokens = hs.tokens.load();
		h.seconds = hs.elapsedNs.load() / 1e9;
		h.stepsPerSec = h.seconds > 0 ? h.steps / h.seconds : 0;
		h.stallMs = hs.stallNs.load() / 1e6;
		h.rowsChecked = hs.rowsChecked.load();
		h.wrongRows = hs.wrongRows.load();
		h.generations.assign(hs.gens, hs.gens + std::min(hs.genCount, kMaxGens));
		std::sort(h.generations.begin(), h.generations.end());
		h.firstWrong = std::string(hs.firstWrong, strnlen(hs.firstWrong, sizeof(hs.firstWrong)));
		std::vector<uint64_t> hist(hs.hist, hs.hist + kHistBuckets);
		h.p50LatencyUs = percentileUs(hist, 0.50);
		h.p99LatencyUs = percentileUs(hist, 0.99);
		int st = exitStatus[i];
		std::string err(hs.error, strnlen(hs.error, sizeof(hs.error)));
		if (killed[i]) {
			h.status = "killed";
			if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
				fail("host " + std::to_string(i) + " was to be killed but ended otherwise");
		} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			h.status = "ok";
		} else {
			h.status = "failed: " + (err.empty() ? (WIFSIGNALED(st) ? "signal " + std::to_string(WTERMSIG(st))
										 : "exit " + std::to_string(WEXITSTATUS(st)))
							     : err);
			fail("host " + std::to_string(i) + " " + h.status);
		}
		if (h.wrongRows)
			fail("host " + std::to_string(i) + ": " + std::to_string(h.wrongRows) + " wrong rows, first: " +
			     h.firstWrong);
		if (!killed[i] && h.status == "ok" && replaced && !rep.replaceGenerations.empty()) {
			bool sawOld = !h.generations.empty() && h.generations.front() < rep.replaceGenerations.front();
			bool sawNew = !h.generations.empty() && h.generations.back() >= rep.replaceGenerations.back();
			if (!sawOld || !sawNew)
				fail("host " + std::to_string(i) + " did not serve both the old and the new generation");
		}
		rep.steps += h.steps;
		rep.tokens += h.tokens;
		rep.rowsChecked += h.rowsChecked;
		rep.wrongRows += h.wrongRows;
		rep.stepsPerSec += h.stepsPerSec;
		rep.stallMs += h.stallMs;
		for (uint32_t b = 0; b < kHistBuckets; b++)
			totalHist[b] += hs.hist[b];
	}
	rep.p99LatencyUs = percentileUs(totalHist, 0.99);

	// Leases: the killed hosts' slots are released by gc once their lease expired.
	if (!writer) {
		auto w = openPoolAs(o.uri, true);
		if (!w) {
			fail("open writer: " + w.status().message());
			rep.ok = false;
			return rep;
		}
		writer = std::move(*w);
	}
	if (!rep.killedHosts.empty()) {
		std::set<uint32_t> slots;
		for (auto i : rep.killedHosts)
			if (rep.hosts[i].slot >= 0)
				slots.insert((uint32_t)rep.hosts[i].slot);
		double limit = leaseMs / 1000.0 * 3 + 10;
		rep.killedSlotsReleased = false;
		bool first = true;
		while (secondsSince(killTime) < limit) {
			bool liveBefore = false;
			for (auto &h : writer->hosts())
				if (slots.count(h.index) && h.live)
					liveBefore = true;
			auto r = writer->reclaim();
			rep.reclaimCalls++;
			if (r)
				rep.reclaimedTables += *r;
			if (first && liveBefore) {
				// Survivors are gone; whatever waits now waits for the killed hosts' leases.
				rep.killedLeasesOutlivedRun = true;
				if (auto s = writer->snapshot(); s)
					rep.pendingHeldByKilled = s->pendingReclaim;
			}
			first = false;
			bool held = false;
			for (auto &h : writer->hosts())
				if (slots.count(h.index))
					held = true;
			if (!held) {
				rep.killedSlotsReleased = true;
				break;
			}
			std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp<uint64_t>(leaseMs / 10, 5, 200)));
		}
		rep.killedReleaseSeconds = secondsSince(killTime);
		if (!rep.killedSlotsReleased)
			fail("slots of killed hosts still held " + std::to_string(limit) + " s after the kill");
		else
			note("killed hosts' slots released " + std::to_string(rep.killedReleaseSeconds) + " s after the kill");
	}
	// Final reclaim: every survivor detached, so every replaced version is free now.
	if (auto r = writer->reclaim(); r) {
		rep.reclaimCalls++;
		rep.reclaimedTables += *r;
	} else {
		fail("reclaim: " + r.status().message());
	}
	for (auto &h : writer->hosts())
		if (h.live && h.index >= o.hostIndexBase && h.index < o.hostIndexBase + o.hosts)
			fail("host slot " + std::to_string(h.index) + " is still live after its host ended");
	auto fin = writer->snapshot();
	if (!fin) {
		fail("snapshot: " + fin.status().message());
	} else {
		rep.pendingReclaim = fin->pendingReclaim;
		rep.usedBytes = fin->usedBytes;
		for (auto &t : fin->tables)
			rep.visibleExtentBytes += t.extentBytes;
		if (replaced && rep.pendingReclaim != 0)
			fail(std::to_string(rep.pendingReclaim) + " replaced table(s) still wait for reclaim at the end");
		if (rep.pendingReclaim == 0 && rep.usedBytes != rep.visibleExtentBytes)
			fail("allocator accounting: used " + std::to_string(rep.usedBytes) + " B != visible extents " +
			     std::to_string(rep.visibleExtentBytes) + " B");
		// The tables now hold the last seed's rows.
		Options chk = o;
		chk.seed = replaced ? rep.newSeed : o.seed;
		if (Status s = checkTables(*writer, chk, *fin); !s)
			fail(s.message());
	}
	auto v = writer->verify();
	rep.verifyOk = v.isOk();
	if (v)
		for (auto &r : *v)
			if (!r.ok) {
				rep.verifyOk = false;
				fail("verify " + r.table + ": " + r.problem);
			}
	if (!v)
		fail("verify: " + v.status().message());
	rep.ok = rep.failures.empty() && rep.wrongRows == 0;
	return rep;
}

nlohmann::json toJson(const Report &r)
{
	nlohmann::json hosts = nlohmann::json::array();
	for (auto &h : r.hosts)
		hosts.push_back({{"index", h.index},
				 {"pid", h.pid},
				 {"slot", h.slot},
				 {"status", h.status},
				 {"steps", h.steps},
				 {"tokens", h.tokens},
				 {"seconds", h.seconds},
				 {"steps_per_s", h.stepsPerSec},
				 {"p50_ticket_us", h.p50LatencyUs},
				 {"p99_ticket_us", h.p99LatencyUs},
				 {"stall_ms", h.stallMs},
				 {"rows_checked", h.rowsChecked},
				 {"wrong_rows", h.wrongRows},
				 {"generations", h.generations},
				 {"first_wrong", h.firstWrong}});
	return {{"ok", r.ok},
		{"hosts", hosts},
		{"total",
		 {{"steps", r.steps},
		  {"tokens", r.tokens},
		  {"seconds", r.seconds},
		  {"steps_per_s", r.stepsPerSec},
		  {"p99_ticket_us", r.p99LatencyUs},
		  {"stall_ms", r.stallMs},
		  {"rows_checked", r.rowsChecked},
		  {"wrong_rows", r.wrongRows}}},
		{"initial_generation", r.initialGeneration},
		{"replace_generations", r.replaceGenerations},
		{"new_seed", r.newSeed},
		{"reclaim_calls", r.reclaimCalls},
		{"reclaimed_tables", r.reclaimedTables},
		{"killed_hosts", r.killedHosts},
		{"killed_slots_released", r.killedSlotsReleased},
		{"killed_release_s", r.killedReleaseSeconds},
		{"killed_leases_outlived_run", r.killedLeasesOutlivedRun},
		{"pending_held_by_killed", r.pendingHeldByKilled},
		{"pending_reclaim", r.pendingReclaim},
		{"used_bytes", r.usedBytes},
		{"visible_extent_bytes", r.visibleExtentBytes},
		{"verify_ok", r.verifyOk},
		{"failures", r.failures}};
}

std::string toTable(const Report &r)
{
	std::string out;
	char line[512];
	snprintf(line, sizeof(line), "%-5s %-5s %-8s %8s %10s %10s %10s %10s %12s %6s  %s\n", "host", "slot", "status",
		 "steps", "steps/s", "p99 us", "stall ms", "tokens", "rows checked", "wrong", "generations");
	out += line;
	for (auto &h : r.hosts) {
		std::string gens;
		for (auto g : h.generations)
			gens += (gens.empty() ? "" : ",") + std::to_string(g);
		std::string st = h.status.substr(0, 8);
		snprintf(line, sizeof(line), "%-5u %-5d %-8s %8llu %10.1f %10.1f %10.1f %10llu %12llu %6llu  %s\n", h.index,
			 h.slot, st.c_str(), (unsigned long long)h.steps, h.stepsPerSec, h.p99LatencyUs, h.stallMs,
			 (unsigned long long)h.tokens, (unsigned long long)h.rowsChecked, (unsigned long long)h.wrongRows,
			 gens.c_str());
		out += line;
	}
	snprintf(line, sizeof(line), "%-5s %-5s %-8s %8llu %10.1f %10.1f %10.1f %10llu %12llu %6llu\n", "total", "",
		 r.ok ? "ok" : "FAILED", (unsigned long long)r.steps, r.stepsPerSec, r.p99LatencyUs, r.stallMs,
		 (unsigned long long)r.tokens, (unsigned long long)r.rowsChecked, (unsigned long long)r.wrongRows);
	out += line;
	std::string rg;
	for (auto g : r.replaceGenerations)
		rg += (rg.empty() ? "" : ",") + std::to_string(g);
	snprintf(line, sizeof(line), "run %.2f s; initial generation %llu; replaced at generation(s) %s (seed %llu)\n",
		 r.seconds, (unsigned long long)r.initialGeneration, rg.empty() ? "-" : rg.c_str(),
		 (unsigned long long)r.newSeed);
	out += line;
	if (!r.killedHosts.empty()) {
		std::string k;
		for (auto i : r.killedHosts)
			k += (k.empty() ? "" : ",") + std::to_string(i);
		snprintf(line, sizeof(line), "killed hosts %s: %u old table version(s) held by their leases; slots %s %.2f s after the kill\n",
			 k.c_str(), r.pendingHeldByKilled, r.killedSlotsReleased ? "released" : "NOT released",
			 r.killedReleaseSeconds);
		out += line;
	}
	snprintf(line, sizeof(line),
		 "reclaim: %llu call(s), %llu table version(s) freed, %u pending; used %llu B = visible extents %llu B; "
		 "verify %s\n",
		 (unsigned long long)r.reclaimCalls, (unsigned long long)r.reclaimedTables, r.pendingReclaim,
		 (unsigned long long)r.usedBytes, (unsigned long long)r.visibleExtentBytes, r.verifyOk ? "ok" : "FAILED");
	out += line;
	for (auto &f : r.failures)
		out += "FAIL: " + f + "\n";
	return out;
}

} // namespace engrampool::emulate
