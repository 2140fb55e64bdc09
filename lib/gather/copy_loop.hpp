// SPDX-License-Identifier: Apache-2.0
// copy_loop.hpp - the gather loop shared by the kernels (internal). Each kernel .cpp
// includes it after choosing its ISA with #pragma GCC target; everything here has
// internal linkage so the linker can never hand one ISA's instantiation to another.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gather/gather.hpp"

namespace engrampool::gather::detail {
namespace {

// Rows wider than this are prefetched only this far: the hardware streamer follows
// sequential lines inside the page, the first ones are the latency that matters.
constexpr uint32_t kMaxPrefetchBytes = 2048;
// Prefetch into L2 (prefetcht1), not L1: L2 tracks several times more outstanding
// misses than L1's fill buffers, and memory-level parallelism is what bounds a gather
// of random rows (measured here: +5-15% for 264 B and 1 KiB rows at distance 32).
constexpr int kPrefetchLocality = 2;

inline __attribute__((always_inline)) void prefetchRow(const uint8_t *src, uint32_t bytes)
{
	uintptr_t first = reinterpret_cast<uintptr_t>(src) & ~uintptr_t(63);
	uintptr_t last = reinterpret_cast<uintptr_t>(src) + (bytes < kMaxPrefetchBytes ? bytes : kMaxPrefetchBytes) - 1;
	for (uintptr_t a = first; a <= last; a += 64)
		__builtin_prefetch(reinterpret_cast<const void *>(a), 0, kPrefetchLocality);
}

// Ops provides: template <uint32_t K, bool NT> static void copy(uint8_t *d, const uint8_t *s, uint32_t n)
// (K = 0: n bytes; otherwise exactly K) and static void fence() for streaming stores.
// Idx: row i goes to dst + dstIndex[i] * dstStride (Job::dstIndex), else dst + i * dstStride.
template <class Ops, uint32_t K, bool NT, bool Idx>
void gatherLoop(const Job &job, size_t begin, size_t end, uint32_t dist)
{
	const uint8_t *table = job.table;
	const uint64_t *rows = job.rows;
	const size_t stride = job.rowStride;
	const uint32_t bytes = K ? K : job.rowBytes;
	const size_t dstStride = job.dstStride;
	const uint32_t *dstIndex = job.dstIndex;
	auto dst = [&](size_t i) { return job.dst + (Idx ? (size_t)dstIndex[i] : i) * dstStride; };

	// Many rows in flight: the copy of row i waits on memory that was requested
	// `dist` rows earlier, so up to `dist` misses overlap instead of serialising.
	size_t warm = end - begin < dist ? end : begin + dist;
	for (size_t i = begin; i < warm; i++)
		prefetchRow(table + rows[i] * stride, bytes);
	size_t i = begin;
	if (dist) {
		for (; i + dist < end; i++) {
			prefetchRow(table + rows[i + dist] * stride, bytes);
			Ops::template copy<K, NT>(dst(i), table + rows[i] * stride, bytes);
		}
	}
	for (; i < end; i++)
		Ops::template copy<K, NT>(dst(i), table + rows[i] * stride, bytes);
	if (NT)
		Ops::fence();
}

template <class Ops, bool NT, bool Idx>
void dispatchSize(const Job &job, size_t begin, size_t end, uint32_t dist)
{
	// Compile-time sizes for the row widths of real Engram tables (fp16 x 32/64/128/160,
	// fp8 x 256, DeepSeek-V4's 264-byte packed rows); anything else takes the loop.
	switch (job.rowBytes) {
	case 64: return gatherLoop<Ops, 64, NT, Idx>(job, begin, end, dist);
	case 128: return gatherLoop<Ops, 128, NT, Idx>(job, begin, end, dist);
	case 256: return gatherLoop<Ops, 256, NT, Idx>(job, begin, end, dist);
	case 264: return gatherLoop<Ops, 264, NT, Idx>(job, begin, end, dist);
	case 320: return gatherLoop<Ops, 320, NT, Idx>(job, begin, end, dist);
	case 512: return gatherLoop<Ops, 512, NT, Idx>(job, begin, end, dist);
	default: return gatherLoop<Ops, 0, NT, Idx>(job, begin, end, dist);
	}
}

template <class Ops>
void gatherEntry(const Job &job, size_t begin, size_t end, bool nonTemporal, uint32_t dist)
{
	if (begin >= end || job.rowBytes == 0)
		return;
	if (job.dstIndex)
		nonTemporal ? dispatchSize<Ops, true, true>(job, begin, end, dist)
			    : dispatchSize<Ops, false, true>(job, begin, end, dist);
	else
		nonTemporal ? dispatchSize<Ops, true, false>(job, begin, end, dist)
			    : dispatchSize<Ops, false, false>(job, begin, end, dist);
}

} // namespace
} // namespace engrampool::gather::detail
