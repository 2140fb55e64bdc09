// SPDX-License-Identifier: Apache-2.0
// kernel_avx2.cpp - AVX2 (+FMA) hash kernel: 4 columns of one token per vector.
#if defined(__x86_64__)

#pragma GCC target("avx2,fma")

#include <immintrin.h>

#include "hashing/kernel.hpp"

namespace engrampool::hashing::detail {

namespace {

constexpr uint32_t kWidth = 4;

/* u split in exact doubles: hi * 2^32 and lo, plus their rounded sum. */
struct Split {
	__m256d hi, lo, sum;
};

inline Split split(__m256i u)
{
	const __m256i expHi = _mm256_set1_epi64x(0x4530000000000000LL); // 2^84
	const __m256i expLo = _mm256_set1_epi64x(0x4330000000000000LL); // 2^52
	const __m256i low32 = _mm256_set1_epi64x(0xffffffffLL);
	__m256i hi = _mm256_srli_epi64(u, 32);
	__m256i lo = _mm256_and_si256(u, low32);
	Split s;
	s.hi = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(hi, expHi)), _mm256_set1_pd(0x1p84));
	s.lo = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(lo, expLo)), _mm256_set1_pd(0x1p52));
	s.sum = _mm256_add_pd(s.hi, s.lo);
	return s;
}

/* u mod d for u / d < 2^50 (see kernel.hpp), as an exact double in [0, d). */
inline __m256d reduce(const Split &s, __m256d invNear, __m256d div)
{
	__m256d q = _mm256_round_pd(_mm256_mul_pd(s.sum, invNear), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
	__m256d r = _mm256_add_pd(_mm256_fnmadd_pd(q, div, s.hi), s.lo);
	/* r in [-d, 2d): blendv selects on the sign bit. */
	r = _mm256_blendv_pd(r, _mm256_add_pd(r, div), r);
	__m256d t = _mm256_sub_pd(r, div);
	return _mm256_blendv_pd(t, r, t);
}

/* Integer-valued double v + bias with v + bias in [2^52, 2^53): the integer v + bias - 2^52. */
inline __m256i toInt(__m256d v, __m256d bias)
{
	return _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(v, bias)),
				_mm256_set1_epi64x(0x4330000000000000LL));
}

template <bool kUniform, bool kTwoRound, bool kRows>
void run(const KernelLayer &L, const int64_t *ids, size_t stride, size_t count, uint64_t *out)
{
	const uint32_t N = L.n;
	const uint32_t J = L.columns;
	const uint32_t chunks = (J + kWidth - 1) / kWidth;
	const uint32_t tail = J % kWidth;
	const __m256i tailMask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(tail ? tail : kWidth),
						    _mm256_setr_epi64x(0, 1, 2, 3));

	for (size_t t = 0; t < count; t++) {
		const int64_t *p = ids + t * stride;
		uint64_t *o = out + t * J;
		uint64_t mix[kMaxOrder] = {};
		uint64_t acc = static_cast<uint64_t>(p[0]) * L.mult[0];
		uint64_t sign = 0;
		for (uint32_t k = 1; k < N; k++) {
			acc ^= static_cast<uint64_t>(p[-static_cast<ptrdiff_t>(k)]) * L.mult[k];
			mix[k - 1] = acc;
			sign |= acc;
		}
		if (static_cast<int64_t>(sign) < 0) [[unlikely]] {
			hashTokenScalar(L, p, o, kRows);
			continue;
		}

		uint32_t lastOrder = UINT32_MAX;
		Split s{};
		for (uint32_t c = 0; c < chunks; c++) {
			const uint32_t col = c * kWidth;
			if constexpr (kUniform) {
				/* Columns of one order share the split of their mix. */
				uint32_t ord = col / L.heads;
				if (ord != lastOrder) {
					s = split(_mm256_set1_epi64x(static_cast<int64_t>(mix[ord])));
					lastOrder = ord;
				}
			} else {
				__m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(L.order + col));
				s = split(_mm256_i64gather_epi64(reinterpret_cast<const long long *>(mix), idx, 8));
			}
			__m256d rd = reduce(s, _mm256_loadu_pd(L.invNearA + col), _mm256_loadu_pd(L.divDA + col));
			if constexpr (kTwoRound) {
				Split s2{ _mm256_setzero_pd(), rd, rd };
				rd = reduce(s2, _mm256_loadu_pd(L.invNearB + col), _mm256_loadu_pd(L.divDB + col));
			}
			__m256i r = toInt(rd, kRows ? _mm256_loadu_pd(L.offBias + col) : _mm256_set1_pd(0x1p52));
			if (c + 1 < chunks || !tail)
				_mm256_storeu_si256(reinterpret_cast<__m256i *>(o + col), r);
			else
				_mm256_maskstore_epi64(reinterpret_cast<long long *>(o + col), tailMask, r);
		}
	}
}

template <bool kUniform, bool kTwoRound>
void pickRows(const KernelLayer &L, const int64_t *ids, size_t stride, size_t count, uint64_t *out,
	      bool rowIds)
{
	if (rowIds)
		run<kUniform, kTwoRound, true>(L, ids, stride, count, out);
	else
		run<kUniform, kTwoRound, false>(L, ids, stride, count, out);
}

} // namespace

void hashAvx2(const KernelLayer &L, const int64_t *ids, size_t stride, size_t count, uint64_t *out,
	      bool rowIds)
{
	const bool uniform = L.heads % kWidth == 0;
	if (uniform && !L.twoRound)
		pickRows<true, false>(L, ids, stride, count, out, rowIds);
	else if (uniform)
		pickRows<true, true>(L, ids, stride, count, out, rowIds);
	else if (!L.twoRound)
		pickRows<false, false>(L, ids, stride, count, out, rowIds);
	else
		pickRows<false, true>(L, ids, stride, count, out, rowIds);
}

} // namespace engrampool::hashing::detail

#endif
