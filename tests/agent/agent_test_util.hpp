// SPDX-License-Identifier: Apache-2.0
// agent_test_util.hpp - shared helpers of the agent tests: pools with every layer imported, a
// sequence mix driver that knows the expected row of every output slot, output checks.
#pragma once

#include "../unit/pool_fixture.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <chrono>
#include <set>
#include <sys/wait.h>
#include <thread>

#include "agent/agent.hpp"
#include "hashing/hasher.hpp"
#include "hashing/layout.hpp"

namespace eptest {

using engrampool::AgentConfig;
using engrampool::BatchEntry;
using engrampool::HostAgent;
using engrampool::LayerOutput;
using engrampool::hashing::EngramHasher;
using engrampool::hashing::ModelLayout;

// A model of the tests with a chosen row format (values per row = n_embed / heads).
inline nlohmann::json agentModelJson(const std::string &dtype, uint32_t valuesPerRow, uint32_t heads = 4,
				     uint32_t rowAlign = 0, bool scale = false, uint32_t maxNgram = 3)
{
	nlohmann::json j = tinyModelJson();
	j["name"] = "agent-" + dtype;
	j["dtype"] = dtype;
	j["n_head_per_ngram"] = heads;
	j["n_embed_per_ngram"] = valuesPerRow * heads;
	j["max_ngram_size"] = maxNgram;
	std::vector<uint64_t> vocab;
	for (uint32_t n = 2; n <= maxNgram; n++)
		vocab.push_back(3000 + 1000 * n);
	j["engram_vocab_size"] = vocab;
	if (rowAlign)
		j["row_align"] = rowAlign;
	if (scale)
		j["scale"] = {{"dtype", "e8m0"}, {"block", 32}};
	return j;
}

// A scoped emul pool holding every layer of `model`, imported from makeRandomSource(seed).
struct AgentPool {
	ScopedPool pool;
	ModelConfig model;
	uint64_t seed;
	std::map<uint32_t, TableInfo> tables; // by layer id

	AgentPool(const ModelConfig &m, uint64_t s, uint64_t size = 64ull << 20, const std::string &kind = "emul")
		: pool(kind, size), model(m), seed(s)
	{
		auto w = openPool(pool.uri(), true);
		for (uint32_t l : model.layerIds) {
			auto r = importRandom(*w, model, l, seed);
			if (!r)
				throw std::runtime_error("import layer " + std::to_string(l) + ": " + r.status().message());
			tables[l] = r->table;
		}
	}
	const std::string &uri() const { return pool.uri(); }
};

inline AgentConfig agentConfig(const AgentPool &p, uint32_t maxBatchTokens = 512, uint32_t slots = 3)
{
	AgentConfig c;
	c.poolUri = p.uri();
	c.model = &p.model;
	c.maxBatchTokens = maxBatchTokens;
	c.maxSequences = 256;
	c.slots = slots;
	c.registerHost = false;
	return c;
}

inline std::unique_ptr<HostAgent> makeAgent(const AgentConfig &c)
{
	auto a = HostAgent::create(c);
	if (!a)
		throw std::runtime_error("agent: " + a.status().message());
	return std::move(a.value());
}

// Expected row ids of whole sequences, by batch hashing (the reference's way).
class Expect {
public:
	explicit Expect(const ModelConfig &m)
	{
		auto layout = ModelLayout::create(m);
		if (!layout)
			throw std::runtime_error("layout: " + layout.status().message());
		auto h = EngramHasher::create(*layout);
		if (!h)
			throw std::runtime_error("hasher: " + h.status().message());
		hasher_ = std::make_unique<EngramHasher>(std::move(h.value()));
	}
	const EngramHasher &hasher() const { return *hasher_; }
	uint32_t columns() const { return hasher_->columns(); }
	size_t layers() const { return hasher_->layerCount(); }
	// ids[(layer * T + t) * J + j] of one whole sequence.
	std::vector<uint64_t> rowIds(const std::vector<int64_t> &seq) const
	{
		std::vector<uint64_t> out(hasher_->outputSize(seq.size()));
		std::vector<uint64_t> offs = {0, seq.size()};
		auto s = hasher_->hashBatch(seq, offs, out);
		if (!s)
			throw std::runtime_error("hashBatch: " + s.message());
		return out;
	}

private:
	std::unique_ptr<EngramHasher> hasher_;
};

// One output slot of a ticket: token index in the ticket, and the expected row id per layer.
struct ExpectedTicket {
	uint32_t tokens = 0;
	std::vector<std::vector<uint64_t>> rows; // [layer][token * J + j]
};

// Drives a mix of sequences: start, continue with 1..k tokens, end; remembers every
// sequence's full history to derive the expected rows by batch hashing.
class SequenceMix {
public:
	SequenceMix(const Expect &e, uint64_t vocab, uint64_t rngSeed) : e_(e), vocab_(vocab), rng_(rngSeed) {}

	// Build one batch. `maxTokens` bounds the batch; `zipf` draws tokens Zipf(1.1)-like.
	void next(uint32_t maxEntries, uint32_t maxNew, uint32_t maxTokens, bool zipf = false)
	{
		entries.clear();
		tokenStore.clear();
		tokenStore.reserve(maxTokens);
		positions.clear();
		uint32_t total = 0;
		std::vector<uint64_t> live;
		for (auto &[id, s] : seqs_)
			live.push_back(id);
		std::shuffle(live.begin(), live.end(), rng_);
		std::vector<std::pair<uint64_t, uint32_t>> chosen; // seq, flags
		for (uint64_t id : live) {
			if (chosen.size() >= maxEntries)
				break;
			if (rng_() % 4 == 0)
				continue; // not scheduled this step
			uint32_t flags = rng_() % 8 == 0 ? engrampool::kSeqEnd : 0;
			chosen.push_back({id, flags});
		}
		while (chosen.size() < maxEntries && rng_() % 3 != 0) {
			uint64_t id = nextId_++;
			uint32_t flags = engrampool::kSeqStart | (rng_() % 16 == 0 ? engrampool::kSeqEnd : 0);
			chosen.push_back({id, flags});
		}
		if (chosen.empty())
			chosen.push_back({nextId_++, engrampool::kSeqStart});
		std::vector<std::pair<uint32_t, uint32_t>> spans;
		for (auto &[id, flags] : chosen) {
			uint32_t n = 1 + (uint32_t)(rng_() % maxNew);
			if (total + n > maxTokens)
				break;
			auto &seq = seqs_[id];
			if (flags & engrampool::kSeqStart)
				seq.clear();
			uint32_t pos = (uint32_t)seq.size();
			for (uint32_t k = 0; k < n; k++) {
				int64_t tok = zipf ? zipfToken() : (int64_t)(rng_() % vocab_);
				seq.push_back(tok);
				tokenStore.push_back(tok);
			}
			spans.push_back({(uint32_t)(tokenStore.size() - n), n});
			positions.push_back({id, pos, n});
			entries.push_back({id, nullptr, n, flags});
			total += n;
		}
		for (size_t i = 0; i < entries.size(); i++)
			entries[i].tokens = tokenStore.data() + spans[i].first;
		expected = expectFor();
		for (auto &e : entries)
			if (e.flags & engrampool::kSeqEnd)
				seqs_.erase(e.seqId);
	}

	// The rows this batch must produce (computed before the ended sequences are forgotten).
	ExpectedTicket expectFor() const
	{
		ExpectedTicket t;
		uint32_t J = e_.columns();
		t.rows.assign(e_.layers(), {});
		for (auto &p : positions) {
			const auto &seq = seqs_.at(p.seq);
			auto ids = e_.rowIds(seq);
			size_t T = seq.size();
			for (size_t l = 0; l < e_.layers(); l++)
				for (uint32_t k = 0; k < p.count; k++)
					for (uint32_t j = 0; j < J; j++)
						t.rows[l].push_back(ids[(l * T + p.pos + k) * J + j]);
			t.tokens += p.count;
		}
		return t;
	}

	size_t liveSequences() const { return seqs_.size(); }

	std::vector<BatchEntry> entries;
	std::vector<int64_t> tokenStore;
	struct Pos {
		uint64_t seq;
		uint32_t pos, count;
	};
	std::vector<Pos> positions;
	ExpectedTicket expected;

private:
	int64_t zipfToken()
	{
		// Inverse-CDF of a truncated Zipf(s=1.1) over [0, vocab) by a continuous approximation.
		double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
		const double s = 1.1;
		double hmax = (std::pow((double)vocab_, 1 - s) - 1) / (1 - s);
		double x = std::pow(1 + u * hmax * (1 - s), 1 / (1 - s));
		return std::min<int64_t>((int64_t)vocab_ - 1, std::max<int64_t>(0, (int64_t)x - 1));
	}

	const Expect &e_;
	uint64_t vocab_;
	std::mt19937_64 rng_;
	uint64_t nextId_ = 1000;
	std::map<uint64_t, std::vector<int64_t>> seqs_;
};

// Number of output rows (over all layers) whose bytes differ from randomRow(seed) of the
// expected row id. `firstLayer`/`lastLayer` select the layers checked.
inline uint64_t outputMismatches(const HostAgent &a, uint64_t ticket, const ExpectedTicket &exp,
				 const engrampool::RowFormat &fmt, uint64_t seed, int onlyLayer = -1,
				 uint64_t *generation = nullptr, std::string *why = nullptr)
{
	uint64_t bad = 0;
	std::vector<uint8_t> want(fmt.rowStride());
	for (uint32_t l = 0; l < a.layers(); l++) {
		if (onlyLayer >= 0 && (uint32_t)onlyLayer != l)
			continue;
		LayerOutput o;
		if (int rc = a.output(ticket, l, &o); rc != 0) {
			if (why)
				*why = "output rc " + std::to_string(rc);
			return UINT64_MAX;
		}
		if (generation)
			*generation = o.generation;
		if (o.tokens != exp.tokens || o.rowBytes != fmt.rowBytes() || o.rowStride < o.rowBytes ||
		    o.columns * o.tokens != exp.rows[l].size()) {
			if (why)
				*why = "shape: tokens " + std::to_string(o.tokens) + " expected " + std::to_string(exp.tokens);
			return UINT64_MAX;
		}
		for (size_t i = 0; i < exp.rows[l].size(); i++) {
			engrampool::io::randomRow(fmt, seed, exp.rows[l][i], want.data());
			if (std::memcmp(o.rows + i * o.rowStride, want.data(), fmt.rowBytes()) != 0) {
				if (why && bad == 0)
					*why = "layer " + std::to_string(l) + " slot " + std::to_string(i) + " row " +
					       std::to_string(exp.rows[l][i]);
				bad++;
			}
		}
	}
	return bad;
}

// Parse the agent's metrics JSON.
inline nlohmann::json metrics(const HostAgent &a)
{
	return nlohmann::json::parse(a.metricsJson());
}

// Poll f every 2 ms until it holds (true) or `ms` pass (false).
template <class F> bool pollUntil(F f, int ms = 5000)
{
	auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
	while (std::chrono::steady_clock::now() < end) {
		if (f())
			return true;
		std::this_thread::sleep_for(std::chrono::milliseconds(2));
	}
	return f();
}

// A generation change is built off the caller's thread and adopted by a later prefetch:
// run tickets of the one-shot entry `e` (start+end; rows not checked) until the agent
// serves generation `gen` or later. False on timeout.
inline bool awaitGeneration(HostAgent &a, const BatchEntry &e, uint64_t gen, int ms = 5000)
{
	return pollUntil(
		[&] {
			uint64_t t = 0;
			if (a.prefetch(&e, 1, &t) == 0) {
				(void)a.wait(t);
				(void)a.release(t);
			}
			return a.generation() >= gen;
		},
		ms);
}

// Run fn in a forked child; returns its exit code (or 128 + signal). Messages go to stderr.
inline int runForked(const std::function<int()> &fn)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		int rc = 99;
		try {
			rc = fn();
		} catch (const std::exception &e) {
			fprintf(stderr, "child: %s\n", e.what());
		}
		fflush(stderr);
		_exit(rc);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

} // namespace eptest
