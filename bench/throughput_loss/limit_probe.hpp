// SPDX-License-Identifier: Apache-2.0
// limit_probe.hpp - the machine's limit for an agent's gather, measured in the same run.
//
// A plain loop copies the *same* rows the agent gathers (same token batches, hashed the
// same way with per-sequence streaming state, every Engram layer), from the *same*
// mapping (the agent's own pool mapping), with the same number of threads, into one
// output buffer of the agent's size: memcpy per row with a software prefetch of the row
// kPrefetchDistance rows ahead. No dedup, no hot tier, no hand-offs, no device copy.
// Only the copy is timed (hashing happens before the clock starts). Used by
// bench/agent_step and bench/throughput_loss; header-only so both can include it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../common/probe_copy.hpp"
#include "agent/agent.hpp"
#include "hashing/hasher.hpp"
#include "model/model_config.hpp"
#include "pool/pool.hpp"
#include "util/units.hpp"

namespace engrampool::bench {

class LimitProbe {
public:
	// Tables of the agent's layers in the agent's mapping; "" on success, else why not.
	std::string init(const HostAgent &a, const ModelConfig &m, uint32_t threads)
	{
		auto layout = hashing::ModelLayout::create(m);
		if (!layout)
			return layout.status().message();
		auto h = hashing::EngramHasher::create(*layout);
		if (!h)
			return h.status().message();
		hasher_ = std::make_unique<hashing::EngramHasher>(std::move(h.value()));
		auto snap = a.pool().snapshot();
		if (!snap)
			return snap.status().message();
		bases_.clear();
		for (uint32_t l : m.layerIds) {
			const TableInfo *t = snap->findTable(defaultTableName(m.name, l));
			if (!t)
				return "table " + defaultTableName(m.name, l) + " not found";
			bases_.push_back(a.pool().tableData(*t));
			stride_ = t->rowStride;
			rowBytes_ = t->rowBytes;
		}
		threads_ = std::max<uint32_t>(1, threads);
		stop();
		return "";
	}
	~LimitProbe() { stop(); }

	// Stop the helper threads (they spin between steps) while something else is measured;
	// the next gathering step starts them again. Streaming state is kept.
	void park() { stop(); }

	// Hash one batch like the agent (streaming per sequence) and, when `gather`, copy its
	// rows; returns the copy's nanoseconds (0 when not gathered).
	uint64_t step(const BatchEntry *e, size_t n, bool gather = true)
	{
		tokens_.clear();
		offsets_.assign(1, 0);
		states_.resize(n);
		for (size_t i = 0; i < n; i++) {
			auto &st = seqs_[e[i].seqId];
			if (e[i].flags & kSeqStart)
				hasher_->beginSequence(st);
			states_[i] = st;
			tokens_.insert(tokens_.end(), e[i].tokens, e[i].tokens + e[i].count);
			offsets_.push_back(tokens_.size());
		}
		ids_.resize(hasher_->outputSize(tokens_.size()));
		if (!hasher_->hashStream(states_, tokens_, offsets_, ids_))
			return 0;
		for (size_t i = 0; i < n; i++) {
			if (e[i].flags & kSeqEnd)
				seqs_.erase(e[i].seqId);
			else
				seqs_[e[i].seqId] = states_[i];
		}
		if (!gather)
			return 0;
		// (layer, row) pairs flattened: layer = i / perLayer.
		perLayer_ = tokens_.size() * hasher_->columns();
		if (out_.size() < ids_.size() * rowBytes_)
			out_.assign(ids_.size() * rowBytes_, 0);
		for (uint32_t i = (uint32_t)workers_.size() + 1; i < threads_; i++)
			workers_.emplace_back([this, i] { workerLoop(i); });
		// Started helpers are running (spinning) before the clock starts.
		for (uint32_t spins = 0; running_.load(std::memory_order_acquire) != threads_ - 1;)
			relax(spins);
		uint64_t t0 = nowMonotonicNs();
		go_.fetch_add(1, std::memory_order_release);
		copyPart(0);
		for (uint32_t spins = 0; done_.load(std::memory_order_acquire) != threads_ - 1;)
			relax(spins);
		done_.store(0, std::memory_order_relaxed);
		return nowMonotonicNs() - t0;
	}
	uint32_t threads() const { return threads_; }
	size_t rowsLastStep() const { return ids_.size(); }

private:
	void copyPart(uint32_t part)
	{
		size_t n = ids_.size();
		size_t lo = n * part / threads_, hi = n * (part + 1) / threads_;
		const uint64_t *ids = ids_.data();
		uint8_t *out = out_.data();
		const size_t stride = stride_, bytes = rowBytes_, per = perLayer_;
		for (size_t layer = lo / per; layer < bases_.size() && layer * per < hi; layer++) {
			const uint8_t *base = bases_[layer];
			size_t a = std::max(lo, layer * per), b = std::min(hi, (layer + 1) * per);
			probeCopy(base, ids + a, b - a, stride, bytes, out + a * bytes);
		}
	}
	// Spin briefly, then yield: on a shared machine a spinning waiter must not hold the
	// core the thread it waits for needs (a lost time slice would be measured as ~4 ms).
	static void relax(uint32_t &spins)
	{
		if (++spins < 2048) {
#if defined(__x86_64__)
			__builtin_ia32_pause();
#endif
		} else {
			std::this_thread::yield();
		}
	}
	void workerLoop(uint32_t part)
	{
		uint64_t seen = 0;
		uint32_t spins = 0;
		running_.fetch_add(1, std::memory_order_acq_rel);
		while (!quit_.load(std::memory_order_acquire)) {
			uint64_t g = go_.load(std::memory_order_acquire);
			if (g == seen) {
				relax(spins);
				continue;
			}
			spins = 0;
			seen = g;
			copyPart(part);
			done_.fetch_add(1, std::memory_order_acq_rel);
		}
	}
	void stop()
	{
		quit_.store(true);
		for (auto &w : workers_)
			w.join();
		workers_.clear();
		quit_.store(false);
		go_.store(0);
		done_.store(0);
		running_.store(0);
	}

	std::unique_ptr<hashing::EngramHasher> hasher_;
	std::vector<const uint8_t *> bases_;
	size_t stride_ = 0, rowBytes_ = 0, perLayer_ = 1;
	uint32_t threads_ = 1;
	std::unordered_map<uint64_t, hashing::StreamState> seqs_;
	std::vector<hashing::StreamState> states_;
	std::vector<int64_t> tokens_;
	std::vector<uint64_t> offsets_, ids_;
	std::vector<uint8_t> out_;
	std::vector<std::thread> workers_;
	std::atomic<uint64_t> go_{0};
	std::atomic<uint32_t> done_{0};
	std::atomic<uint32_t> running_{0};
	std::atomic<bool> quit_{false};
};

// p-quantile of a sample in microseconds (0 when empty).
inline double probeQuantileUs(std::vector<uint64_t> v, double q)
{
	if (v.empty())
		return 0;
	size_t i = std::min(v.size() - 1, (size_t)(q * (double)v.size()));
	std::nth_element(v.begin(), v.begin() + (long)i, v.end());
	return v[i] / 1000.0;
}

} // namespace engrampool::bench
