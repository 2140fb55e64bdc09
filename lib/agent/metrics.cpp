// SPDX-License-Identifier: Apache-2.0
// metrics.cpp - histogram bucketing and quantiles.
#include "agent/metrics.hpp"

namespace engrampool {

int LatencyHistogram::bucketOf(uint64_t ns)
{
	if (ns < 4)
		return (int)ns;
	int log = 63 - __builtin_clzll(ns);
	int sub = (int)((ns >> (log - 2)) & 3);
	int b = log * 4 + sub;
	return b < kBuckets ? b : kBuckets - 1;
}

uint64_t LatencyHistogram::bucketUpper(int b)
{
	if (b < 4)
		return (uint64_t)b;
	int log = b / 4, sub = b % 4;
	return ((4ull + sub + 1) << (log - 2)) - 1;
}

void LatencyHistogram::record(uint64_t ns)
{
	buckets_[bucketOf(ns)].fetch_add(1, std::memory_order_relaxed);
	sum_.fetch_add(ns, std::memory_order_relaxed);
	uint64_t m = max_.load(std::memory_order_relaxed);
	while (ns > m && !max_.compare_exchange_weak(m, ns, std::memory_order_relaxed))
		;
}

uint64_t LatencyHistogram::count() const
{
	uint64_t n = 0;
	for (auto &b : buckets_)
		n += b.load(std::memory_order_relaxed);
	return n;
}

uint64_t LatencyHistogram::quantile(double q) const
{
	uint64_t n = count();
	if (n == 0)
		return 0;
	uint64_t target = (uint64_t)(q * (double)n);
	if (target >= n)
		target = n - 1;
	uint64_t seen = 0;
	for (int b = 0; b < kBuckets; b++) {
		seen += buckets_[b].load(std::memory_order_relaxed);
		if (seen > target) {
			uint64_t up = bucketUpper(b);
			uint64_t mx = maxNs();
			return up < mx ? up : mx;
		}
	}
	return maxNs();
}

} // namespace engrampool
