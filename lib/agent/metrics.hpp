// SPDX-License-Identifier: Apache-2.0
// metrics.hpp - agent telemetry: lock-free counters and a log-linear latency histogram,
// updated on the hot path with relaxed atomics, formatted only on request.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace engrampool {

// 4 sub-buckets per power of two from 1 ns to ~2^40 ns.
class LatencyHistogram {
public:
	static constexpr int kBuckets = 41 * 4;
	void record(uint64_t ns);
	uint64_t count() const;
	// Upper bound (ns) of the bucket holding the q-quantile (0..1).
	uint64_t quantile(double q) const;
	uint64_t maxNs() const { return max_.load(std::memory_order_relaxed); }
	uint64_t sumNs() const { return sum_.load(std::memory_order_relaxed); }
	static int bucketOf(uint64_t ns);
	static uint64_t bucketUpper(int b);
	uint64_t bucketCount(int b) const { return buckets_[b].load(std::memory_order_relaxed); }

private:
	std::atomic<uint64_t> buckets_[kBuckets] = {};
	std::atomic<uint64_t> sum_{0}, max_{0};
};

struct AgentMetrics {
	std::atomic<uint64_t> tickets{0}, tokens{0}, rows{0}, uniqueRows{0}, gatheredRows{0}, gatheredBytes{0};
	std::atomic<uint64_t> cacheHits{0}, cacheMisses{0}, cacheAdmissions{0};
	std::atomic<uint64_t> cacheBypassedRows{0};     // distinct rows gathered without a tier lookup
	std::atomic<bool> cacheBypassing{false};        // the adaptive tier is bypassed now
	std::atomic<double> cacheWarmHitRate{0};        // the shadow's estimate: distinct rows a warm tier hits
	std::atomic<uint64_t> dedupSkippedRows{0};      // rows gathered without deduplication (it did not pay)
	std::atomic<bool> dedupSkipping{false};         // the adaptive dedup is skipped now
	std::atomic<uint64_t> stalls{0}, stallNs{0}, waits{0};
	std::atomic<uint64_t> errors{0}, generationChanges{0};
	std::atomic<uint64_t> refreshFailures{0};   // moves to a new generation that failed (view kept)
	std::atomic<uint64_t> poolFaults{0};        // SIGBUS on the pool mapping (truncated / poisoned)
	std::atomic<uint64_t> heartbeatFailures{0}; // heartbeats not written
	std::atomic<uint64_t> readRetries{0};       // tickets gathered again after a table was reclaimed
	LatencyHistogram ticketLatency;   // prefetch -> last layer in device memory
	LatencyHistogram stallLatency;    // time a wait() blocked
};

} // namespace engrampool
