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

/* The constants of one vector of 8 columns for one reduction round. */
struct Round {
	__m512d invDown;
	__m512i div, neg;
};

inline Round loadRound(const double *inv, const uint64_t *div, const uint64_t *neg, uint32_t col)
{
	return { _mm512_loadu_pd(inv + col), _mm512_loadu_si512(div + col), _mm512_loadu_si512(neg + col) };
}

/*
 * u mod d for u / d < 2^50 (see kernel.hpp for why one correction suffices).
 * One FMA rounded toward zero gives 2^52 + floor(x * inv) exactly (the sum lies
 * in [2^52, 2^53) where the spacing is 1); its low 52 bits are q', which is all
 * IFMA reads, so no float-to-integer conversion is needed.
 */
inline __m512i reduce(__m512i u, const Round &k, __m512i mask52)
{
	const __m512d two52 = _mm512_set1_pd(0x1p52);
	__m512d x = _mm512_cvt_roundepu64_pd(u, kRz);
	__m512i q = _mm512_castpd_si512(_mm512_fmadd_round_pd(x, k.invDown, two52, kRz));
	__m512i r = _mm512_and_si512(_mm512_madd52lo_epu64(u, q, k.neg), mask52);
	return _mm512_min_epu64(r, _mm512_sub_epi64(r, k.div));
}

/* The XOR mixes of one token; false when one is negative as int64 (scalar path). */
template <uint32_t kN>
inline bool mixes(const KernelLayer &L, const int64_t *p, uint64_t *mix, uint32_t n)
{
	const uint32_t N = kN ? kN : n;
	uint64_t acc = static_cast<uint64_t>(p[0]) * L.mult[0];
	uint64_t sign = 0;
	for (uint32_t k = 1; k < N; k++) {
		acc ^= static_cast<uint64_t>(p[-static_cast<ptrdiff_t>(k)]) * L.mult[k];
		mix[k - 1] = acc;
		sign |= acc;
	}
	return static_cast<int64_t>(sign) >= 0;
}

/*
 * Heads a multiple of 8: each vector holds one order, so the mix is a broadcast.
 * N and the vectors per order are compile-time so the constants stay in registers.
 */
template <uint32_t kN, uint32_t kPerOrder, bool kTwoRound, bool kRows>
void runUniform(const KernelLayer &L, const int64_t *ids, size_t stride, size_t count, uint64_t *out)
{
	constexpr uint32_t kChunks = (kN - 1) * kPerOrder;
	constexpr uint32_t J = kChunks * kLanes;
	const __m512i mask52 = _mm512_set1_epi64((int64_t(1) << 52) - 1);
	Round a[kChunks], b[kTwoRound ? kChunks : 1];
	__m512i off[kRows ? kChunks : 1];
	for (uint32_t c = 0; c < kChunks; c++) {
		a[c] = loadRound(L.invDownA, L.divA, L.negA, c * kLanes);
		if constexpr (kTwoRound)
			b[c] = loadRound(L.invDownB, L.divB, L.negB, c * kLanes);
		if constexpr (kRows)
			off[c] = _mm512_loadu_si512(L.offset + c * kLanes);
	}

	for (size_t t = 0; t < count; t++) {
		const int64_t *p = ids + t * stride;
		uint64_t *o = out + t * J;
		uint64_t mix[kN - 1];
		if (!mixes<kN>(L, p, mix, kN)) [[unlikely]] {
			hashTokenScalar(L, p, o, kRows);
			continue;
		}
		for (uint32_t c = 0; c < kChunks; c++) {
			__m512i u = _mm512_set1_epi64(static_cast<int64_t>(mix[c / kPerOrder]));
			__m512i r = reduce(u, a[c], mask52);
			if constexpr (kTwoRound)
				r = reduce(r, b[c], mask52);
			if constexpr (kRows)
				r = _mm512_add_epi64(r, off[c]);
			_mm512_storeu_si512(o + c * kLanes, r);
		}
	}
}

/* Any head count: columns pick their order's mix with a permute; masked tail. */
template <bool kTwoRound, bool kRows>
void runGeneric(const KernelLayer &L, const int64_t *ids, size_t stride, size_t count, uint64_t *out)
{
	const uint32_t J = L.columns;
	const uint32_t chunks = (J + kLanes - 1) / kLanes;
	const __mmask8 tailMask = (J % kLanes) ? static_cast<__mmask8>((1u << (J % kLanes)) - 1) : 0xff;
	const __m512i mask52 = _mm512_set1_epi64((int64_t(1) << 52) - 1);

	for (size_t t = 0; t < count; t++) {
		const int64_t *p = ids + t * stride;
		uint64_t *o = out + t * J;
		alignas(64) uint64_t mix[2 * kLanes] = {};
		if (!mixes<0>(L, p, mix, L.n)) [[unlikely]] {
			hashTokenScalar(L, p, o, kRows);
			continue;
		}
		const __m512i mixLo = _mm512_load_si512(mix);
		const __m512i mixHi = _mm512_load_si512(mix + kLanes);
		for (uint32_t c = 0; c < chunks; c++) {
			const uint32_t col = c * kLanes;
			__m512i u = _mm512_permutex2var_epi64(mixLo, _mm512_loadu_si512(L.order + col), mixHi);
			__m512i r = reduce(u, loadRound(L.invDownA, L.divA, L.negA, col), mask52);
			if constexpr (kTwoRound)
				r = reduce(r, loadRound(L.invDownB, L.divB, L.negB, col), mask52);
			if constexpr (kRows)
				r = _mm512_add_epi64(r, _mm512_loadu_si512(L.offset + col));
			if (c + 1 < chunks)
				_mm512_storeu_si512(o + col, r);
			else
				_mm512_mask_storeu_epi64(o + col, tailMask, r);
		}
	}
}

} // namespace

int64_t maxInt64Avx512(const int64_t *v, size_t n)
{
	__m512i m = _mm512_set1_epi64(INT64_MIN);
	size_t i = 0;
	for (; i + kLanes <= n; i += kLanes)
		m = _mm512_max_epi64(m, _mm512_loadu_si512(v + i));
	if (i < n)
		m = _mm512_mask_max_epi64(m, static_cast<__mmask8>((1u << (n - i)) - 1), m,
					  _mm512_maskz_loadu_epi64(static_cast<__mmask8>((1u << (n - i)) - 1), v + i));
	return _mm512_reduce_max_epi64(m);
}

namespace {

using RunFn = void (*)(const KernelLayer &, const int64_t *, size_t, size_t, uint64_t *);

template <uint32_t kN, uint32_t kPerOrder>
RunFn pickUniform(bool twoRound, bool rows)
{
	if (twoRound)
		return rows ? runUniform<kN, kPerOrder, true, true> : runUniform<kN, kPerOrder, true, false>;
	return rows ? runUniform<kN, kPerOrder, false, true> : runUniform<kN, kPerOrder, false, false>;
}

template <uint32_t kN>
RunFn pickPerOrder(uint32_t perOrder, bool twoRound, bool rows)
{
	switch (perOrder) {
	case 1:
		return pickUniform<kN, 1>(twoRound, rows);
	case 2:
		return pickUniform<kN, 2>(twoRound, rows);
	default:
		return nullptr;
	}
}

RunFn pick(const KernelLayer &L, bool rows)
{
	if (L.heads % kLanes == 0) {
		const uint32_t perOrder = L.heads / kLanes;
		RunFn fn = nullptr;
		switch (L.n) {
		case 2:
			fn = pickPerOrder<2>(perOrder, L.twoRound, rows);
			break;
		case 3:
			fn = pickPerOrder<3>(perOrder, L.twoRound, rows);
			break;
		case 4:
			fn = pickPerOrder<4>(perOrder, L.twoRound, rows);
			break;
		case 5:
			fn = pickPerOrder<5>(perOrder, L.twoRound, rows);
			break;
		}
		if (fn)
			return fn;
	}
	if (L.twoRound)
		return rows ? runGeneric<true, true> : runGeneric<true, false>;
	return rows ? runGeneric<false, true> : runGeneric<false, false>;
}

} // namespace

void hashAvx512(const KernelLayer &L, const int64_t *ids, size_t stride, size_t count, uint64_t *out,
		bool rowIds)
{
	pick(L, rowIds)(L, ids, stride, count, out);
}

} // namespace engrampool::hashing::detail

#endif
