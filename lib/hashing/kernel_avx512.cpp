// SPDX-License-Identifier: Apache-2.0
// kernel_avx512.cpp - AVX-512 (F, DQ, IFMA) hash kernel: 8 columns of one token per vector.
#if defined(__x86_64__)

#pragma GCC target("avx512f,avx512dq,avx512ifma,avx512vl,avx512bw,fma")
/* GCC 12 warns about the deliberately undefined source of some intrinsics. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include "hashing/kernel.hpp"

namespace engrampool::hashing::detail {

namespace {

constexpr int kRz = _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC;

/* u mod d for u / d < 2^50 (see kernel.hpp for why one correction suffices). */
inline __m512i reduce(__m512i u, __m512d invDown, __m512i div, __m512i neg, __m512i mask52)
{
	__m512d x = _mm512_cvt_roundepu64_pd(u, kRz);
	x = _mm512_mul_round_pd(x, invDown, kRz);
	__m512i q = _mm512_cvttpd_epu64(x);
	__m512i r = _mm512_and_si512(_mm512_madd52lo_epu64(u, q, neg), mask52);
	return _mm512_min_epu64(r, _mm512_sub_epi64(r, div));
}

template <bool kUniform, bool kTwoRound, bool kRows>
void run(const KernelLayer &L, const int64_t *ids, size_t count, uint64_t *out)
{
	const uint32_t N = L.n;
	const uint32_t J = L.columns;
	const uint32_t chunks = (J + kLanes - 1) / kLanes;
	const __mmask8 tailMask = (J % kLanes) ? static_cast<__mmask8>((1u << (J % kLanes)) - 1) : 0xff;
	const __m512i mask52 = _mm512_set1_epi64((int64_t(1) << 52) - 1);

	for (size_t t = 0; t < count; t++) {
		const int64_t *p = ids + t;
		uint64_t *o = out + t * J;
		alignas(64) uint64_t mix[2 * kLanes] = {};
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

		__m512i mixLo, mixHi;
		if constexpr (!kUniform) {
			mixLo = _mm512_load_si512(mix);
			mixHi = _mm512_load_si512(mix + kLanes);
		}

		for (uint32_t c = 0; c < chunks; c++) {
			const uint32_t col = c * kLanes;
			__m512i u;
			if constexpr (kUniform) {
				u = _mm512_set1_epi64(static_cast<int64_t>(mix[col / L.heads]));
			} else {
				__m512i idx = _mm512_loadu_si512(L.order + col);
				u = _mm512_permutex2var_epi64(mixLo, idx, mixHi);
			}
			__m512i r = reduce(u, _mm512_loadu_pd(L.invDownA + col),
					   _mm512_loadu_si512(L.divA + col),
					   _mm512_loadu_si512(L.negA + col), mask52);
			if constexpr (kTwoRound)
				r = reduce(r, _mm512_loadu_pd(L.invDownB + col),
					   _mm512_loadu_si512(L.divB + col),
					   _mm512_loadu_si512(L.negB + col), mask52);
			if constexpr (kRows)
				r = _mm512_add_epi64(r, _mm512_loadu_si512(L.offset + col));
			if (c + 1 < chunks)
				_mm512_storeu_si512(o + col, r);
			else
				_mm512_mask_storeu_epi64(o + col, tailMask, r);
		}
	}
}

template <bool kUniform, bool kTwoRound>
void pickRows(const KernelLayer &L, const int64_t *ids, size_t count, uint64_t *out, bool rowIds)
{
	if (rowIds)
		run<kUniform, kTwoRound, true>(L, ids, count, out);
	else
		run<kUniform, kTwoRound, false>(L, ids, count, out);
}

} // namespace

void hashAvx512(const KernelLayer &L, const int64_t *ids, size_t count, uint64_t *out, bool rowIds)
{
	/* Uniform: every vector of 8 columns lies within one order. */
	const bool uniform = L.heads % kLanes == 0;
	if (uniform && !L.twoRound)
		pickRows<true, false>(L, ids, count, out, rowIds);
	else if (uniform)
		pickRows<true, true>(L, ids, count, out, rowIds);
	else if (!L.twoRound)
		pickRows<false, false>(L, ids, count, out, rowIds);
	else
		pickRows<false, true>(L, ids, count, out, rowIds);
}

} // namespace engrampool::hashing::detail

#endif
