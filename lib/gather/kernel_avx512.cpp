// SPDX-License-Identifier: Apache-2.0
// kernel_avx512.cpp - AVX-512 gather kernel: 64-byte loads, masked tails, 64-byte streaming stores.
#if defined(__x86_64__)

#pragma GCC target("avx512f,avx512bw,avx512vl,bmi2")

#include <immintrin.h>

#include "gather/copy_loop.hpp"
#include "gather/kernel.hpp"

namespace engrampool::gather::detail {

namespace {

inline bool aligned64(const void *p) { return (reinterpret_cast<uintptr_t>(p) & 63) == 0; }

inline __mmask64 maskOf(uint32_t n) { return _bzhi_u64(~0ULL, n); } // n <= 64

// A partial line: masked, so the bytes past the row are neither read nor written
// (masked-off lanes do not fault, so a row at the very end of a mapping is safe).
inline void copyPartial(uint8_t *d, const uint8_t *s, uint32_t n)
{
	__mmask64 m = maskOf(n);
	_mm512_mask_storeu_epi8(d, m, _mm512_maskz_loadu_epi8(m, s));
}

template <bool NT>
inline void copyLines(uint8_t *d, const uint8_t *s, uint32_t n) // n % 64 == 0, NT: d aligned
{
	for (; n >= 256; n -= 256, s += 256, d += 256) {
		__m512i a = _mm512_loadu_si512(s), b = _mm512_loadu_si512(s + 64);
		__m512i c = _mm512_loadu_si512(s + 128), e = _mm512_loadu_si512(s + 192);
		if (NT) {
			_mm512_stream_si512(reinterpret_cast<__m512i *>(d), a);
			_mm512_stream_si512(reinterpret_cast<__m512i *>(d + 64), b);
			_mm512_stream_si512(reinterpret_cast<__m512i *>(d + 128), c);
			_mm512_stream_si512(reinterpret_cast<__m512i *>(d + 192), e);
		} else {
			_mm512_storeu_si512(d, a);
			_mm512_storeu_si512(d + 64, b);
			_mm512_storeu_si512(d + 128, c);
			_mm512_storeu_si512(d + 192, e);
		}
	}
	for (; n; n -= 64, s += 64, d += 64) {
		__m512i a = _mm512_loadu_si512(s);
		if (NT)
			_mm512_stream_si512(reinterpret_cast<__m512i *>(d), a);
		else
			_mm512_storeu_si512(d, a);
	}
}

inline void copyGeneric(uint8_t *d, const uint8_t *s, uint32_t n)
{
	uint32_t body = n & ~63u;
	copyLines<false>(d, s, body);
	if (n & 63)
		copyPartial(d + body, s + body, n & 63);
}

// Streaming stores need an aligned destination: the head up to the next line is
// stored normally, whole lines are streamed, the tail is stored normally.
inline void copyGenericNt(uint8_t *d, const uint8_t *s, uint32_t n)
{
	uint32_t head = (64 - (reinterpret_cast<uintptr_t>(d) & 63)) & 63;
	if (head) {
		if (head > n)
			head = n;
		copyPartial(d, s, head);
		d += head, s += head, n -= head;
	}
	uint32_t body = n & ~63u;
	copyLines<true>(d, s, body);
	if (n & 63)
		copyPartial(d + body, s + body, n & 63);
}

struct Avx512Ops {
	static void fence() { _mm_sfence(); }

	template <uint32_t K, bool NT>
	static inline __attribute__((always_inline)) void copy(uint8_t *d, const uint8_t *s, uint32_t n)
	{
		if constexpr (K != 0 && K % 64 == 0) {
			if (!NT || aligned64(d))
				return copyLines<NT>(d, s, K);
			return copyGenericNt(d, s, K);
		} else if constexpr (K == 264) {
			// 4 lines + 8 bytes: all loads issued before any store.
			__m512i a = _mm512_loadu_si512(s), b = _mm512_loadu_si512(s + 64);
			__m512i c = _mm512_loadu_si512(s + 128), e = _mm512_loadu_si512(s + 192);
			uint64_t t;
			__builtin_memcpy(&t, s + 256, 8);
			if (NT && aligned64(d)) {
				_mm512_stream_si512(reinterpret_cast<__m512i *>(d), a);
				_mm512_stream_si512(reinterpret_cast<__m512i *>(d + 64), b);
				_mm512_stream_si512(reinterpret_cast<__m512i *>(d + 128), c);
				_mm512_stream_si512(reinterpret_cast<__m512i *>(d + 192), e);
			} else if (NT) {
				return copyGenericNt(d, s, 264);
			} else {
				_mm512_storeu_si512(d, a);
				_mm512_storeu_si512(d + 64, b);
				_mm512_storeu_si512(d + 128, c);
				_mm512_storeu_si512(d + 192, e);
			}
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

void gatherAvx512(const Job &job, size_t begin, size_t end, bool nonTemporal, uint32_t prefetchDistance)
{
	gatherEntry<Avx512Ops>(job, begin, end, nonTemporal, prefetchDistance);
}

} // namespace engrampool::gather::detail

#endif
