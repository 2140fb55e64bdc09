// SPDX-License-Identifier: Apache-2.0
// probe_copy.hpp - the limit probe's copy loop: the machine's limit for gathering rows.
//
// A plain loop: memcpy each row to the output, with a software prefetch of every cache
// line of the row kPrefetchDistance rows ahead. No dedup, no hand-offs, no checks. The
// benchmarks time it on the same rows, threads and mapping as the code they measure
// (bench/throughput_loss/limit_probe.hpp for the agent, bench/gather for the engine).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace engrampool::bench {

inline constexpr size_t kPrefetchDistance = 24;

// Rows ids[0..n) of `bytes` bytes, `stride` apart from `base`, to out (bytes apart).
inline void probeCopy(const uint8_t *base, const uint64_t *ids, size_t n, size_t stride, size_t bytes, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		if (i + kPrefetchDistance < n) {
			const uint8_t *p = base + ids[i + kPrefetchDistance] * stride;
			for (size_t o = 0; o < bytes; o += 64)
				__builtin_prefetch(p + o);
		}
		std::memcpy(out + i * bytes, base + ids[i] * stride, bytes);
	}
}

} // namespace engrampool::bench
