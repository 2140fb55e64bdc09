// SPDX-License-Identifier: Apache-2.0
// kernel_avx2.cpp - AVX2 gather kernel: 32-byte loads, overlapping tails, 32-byte streaming stores.
#if defined(__x86_64__)

#pragma GCC target("avx2")

#include <cstring>
#include <immintrin.h>

#include "gather/copy_loop.hpp"
#include "gather/kernel.hpp"

namespace engrampool::gather::detail {

namespace {

inline bool aligned32(const void *p) { return (reinterpret_cast<uintptr_t>(p) & 31) == 0; }

template <bool NT>
inline void copyVectors(uint8_t *d, const uint8_t *s, uint32_t n) // n % 32 == 0, NT: d aligned
{
	for (; n >= 128; n -= 128, s += 128, d += 128) {
		__m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s));
		__m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s + 32));
		__m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s + 64));
		__m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s + 96));
		if (NT) {
			_mm256_stream_si256(reinterpret_cast<__m256i *>(d), a);
			_mm256_stream_si256(reinterpret_cast<__m256i *>(d + 32), b);
			_mm256_stream_si256(reinterpret_cast<__m256i *>(d + 64), c);
			_mm256_stream_si256(reinterpret_cast<__m256i *>(d + 96), e);
		} else {
			_mm256_storeu_si256(reinterpret_cast<__m256i *>(d), a);
			_mm256_storeu_si256(reinterpret_cast<__m256i *>(d + 32), b);
			_mm256_storeu_si256(reinterpret_cast<__m256i *>(d + 64), c);
			_mm256_storeu_si256(reinterpret_cast<__m256i *>(d + 96), e);
		}
	}
	for (; n; n -= 32, s += 32, d += 32) {
		__m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s));
		if (NT)
			_mm256_stream_si256(reinterpret_cast<__m256i *>(d), a);
		else
			_mm256_storeu_si256(reinterpret_cast<__m256i *>(d), a);
	}
}

inline void copyGeneric(uint8_t *d, const uint8_t *s, uint32_t n)
{
	if (n < 32) {
		std::memcpy(d, s, n);
		return;
	}
	uint32_t body = n & ~31u;
	copyVectors<false>(d, s, body);
	// The last 32 bytes again, overlapping: no byte outside the row is touched.
	if (n & 31)
		_mm256_storeu_si256(reinterpret_cast<__m256i *>(d + n - 32),
				    _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s + n - 32)));
}

inline void copyGenericNt(uint8_t *d, const uint8_t *s, uint32_t n)
{
	uint32_t head = (32 - (reinterpret_cast<uintptr_t>(d) & 31)) & 31;
	if (head) {
		if (head > n)
			head = n;
		std::memcpy(d, s, head);
		d += head, s += head, n -= head;
	}
	uint32_t body = n & ~31u;
	copyVectors<true>(d, s, body);
	if (n & 31)
		std::memcpy(d + body, s + body, n & 31);
}

struct Avx2Ops {
	static void fence() { _mm_sfence(); }

	template <uint32_t K, bool NT>
	static inline __attribute__((always_inline)) void copy(uint8_t *d, const uint8_t *s, uint32_t n)
	{
		if constexpr (K != 0 && K % 32 == 0) {
			if (!NT || aligned32(d))
				return copyVectors<NT>(d, s, K);
			return copyGenericNt(d, s, K);
		} else if constexpr (K == 264) {
			if (NT)
				return copyGenericNt(d, s, K);
			uint64_t t;
			__builtin_memcpy(&t, s + 256, 8);
			copyVectors<false>(d, s, 256);
			__builtin_memcpy(d + 256, &t, 8);
		} else {
			if (NT)
				copyGenericNt(d, s, K ? K : n);
			else
				copyGeneric(d, s, K ? K : n);
		}
	}
};

} // namespace

void gatherAvx2(const Job &job, size_t begin, size_t end, bool nonTemporal, uint32_t prefetchDistance)
{
	gatherEntry<Avx2Ops>(job, begin, end, nonTemporal, prefetchDistance);
}

} // namespace engrampool::gather::detail

#endif
