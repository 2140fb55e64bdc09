// SPDX-License-Identifier: Apache-2.0
// kernel_scalar.cpp - portable gather kernels: prefetching memcpy (scalar) and the naive baseline.
#include <cstring>

#include "gather/copy_loop.hpp"
#include "gather/kernel.hpp"

namespace engrampool::gather::detail {

namespace {

// Baseline ISA only: fixed sizes become inline moves, others a memcpy call. Streaming
// stores are not attempted (the portable path keeps to what every CPU has).
struct ScalarOps {
	static void fence() {}

	template <uint32_t K, bool NT>
	static inline __attribute__((always_inline)) void copy(uint8_t *d, const uint8_t *s, uint32_t n)
	{
		if constexpr (K != 0)
			__builtin_memcpy(d, s, K);
		else
			std::memcpy(d, s, n);
	}
};

} // namespace

void gatherScalar(const Job &job, size_t begin, size_t end, bool, uint32_t prefetchDistance)
{
	gatherEntry<ScalarOps>(job, begin, end, false, prefetchDistance);
}

// What a user writes: one memcpy per row, in order. The benchmark's baseline.
void gatherNaive(const Job &job, size_t begin, size_t end, bool, uint32_t)
{
	for (size_t i = begin; i < end; i++)
		std::memcpy(job.dst + (job.dstIndex ? (size_t)job.dstIndex[i] : i) * job.dstStride,
			    job.table + job.rows[i] * job.rowStride, job.rowBytes);
}

} // namespace engrampool::gather::detail
