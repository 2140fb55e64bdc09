// SPDX-License-Identifier: Apache-2.0
// kernel_scalar.cpp - the portable hash kernel: exact multiply-shift modulo, no SIMD.
#include "hashing/kernel.hpp"

#include <algorithm>
#include <cmath>

namespace engrampool::hashing::detail {

namespace {

/* 1/d rounded toward zero, so that the AVX-512 quotient estimate never exceeds q. */
double inverseDown(uint64_t d)
{
	double inv = 1.0 / static_cast<double>(d);
	if (std::fma(inv, static_cast<double>(d), -1.0) > 0)
		inv = std::nextafter(inv, 0.0);
	return inv;
}

} // namespace

LayerTables LayerTables::build(const std::vector<uint64_t> &mult, const std::vector<uint64_t> &divisors,
			       const std::vector<uint64_t> &offsets, uint32_t heads)
{
	LayerTables t;
	const uint32_t J = static_cast<uint32_t>(divisors.size());
	const uint32_t padded = (J + kLanes - 1) / kLanes * kLanes;

	t.n = static_cast<uint32_t>(mult.size());
	t.heads = heads;
	t.columns = J;
	t.mult = mult;
	for (uint32_t c = 0; c < padded; c++) {
		/* Padding lanes repeat the last column; their results are never stored. */
		const uint32_t j = std::min(c, J - 1);
		const uint64_t p = divisors[j];
		const uint64_t a = p >= kSingleRoundMin ? p : (kSingleRoundMin + p - 1) / p * p;
		/* Out-of-range divisors get harmless SIMD constants; such layers run scalar. */
		const uint64_t as = a < kSimdMaxDivisor ? a : kSingleRoundMin;
		const uint64_t ps = p < kSimdMaxDivisor ? p : kSingleRoundMin;
		t.order.push_back(j / heads);
		t.offset.push_back(offsets.empty() ? 0 : offsets[j]);
		t.offBias.push_back(0x1p52 + static_cast<double>(t.offset.back()));
		t.divA.push_back(as);
		t.negA.push_back((uint64_t(1) << 52) - as);
		t.invDownA.push_back(inverseDown(as));
		t.invNearA.push_back(1.0 / static_cast<double>(as));
		t.divDA.push_back(static_cast<double>(as));
		t.divB.push_back(ps);
		t.negB.push_back((uint64_t(1) << 52) - ps);
		t.invDownB.push_back(inverseDown(ps));
		t.invNearB.push_back(1.0 / static_cast<double>(ps));
		t.divDB.push_back(static_cast<double>(ps));
		if (c < J) {
			t.mod.emplace_back(p);
			t.twoRound |= p < kSingleRoundMin;
			/* Row ids must stay exact in a double (AVX2 adds the offset there). */
			t.simdOk &= p < kSimdMaxDivisor && t.offset.back() + p < (uint64_t(1) << 52);
		}
	}
	return t;
}

KernelLayer LayerTables::view() const
{
	KernelLayer k;
	k.n = n;
	k.heads = heads;
	k.columns = columns;
	k.twoRound = twoRound;
	k.mult = mult.data();
	k.order = order.data();
	k.offset = offset.data();
	k.mod = mod.data();
	k.divA = divA.data();
	k.invDownA = invDownA.data();
	k.invNearA = invNearA.data();
	k.negA = negA.data();
	k.divB = divB.data();
	k.invDownB = invDownB.data();
	k.invNearB = invNearB.data();
	k.negB = negB.data();
	k.divDA = divDA.data();
	k.divDB = divDB.data();
	k.offBias = offBias.data();
	return k;
}

void hashScalar(const KernelLayer &L, const int64_t *ids, size_t stride, size_t count, uint64_t *out,
		bool rowIds)
{
	for (size_t t = 0; t < count; t++)
		hashTokenScalar(L, ids + t * stride, out + t * L.columns, rowIds);
}

bool cpuHasAvx2()
{
#if defined(__x86_64__)
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
	return false;
#endif
}

bool cpuHasAvx512()
{
#if defined(__x86_64__)
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
	       __builtin_cpu_supports("avx512ifma");
#else
	return false;
#endif
}

#if !defined(__x86_64__)
void hashAvx2(const KernelLayer &L, const int64_t *ids, size_t stride, size_t count, uint64_t *out,
	      bool rowIds)
{
	hashScalar(L, ids, stride, count, out, rowIds);
}

void hashAvx512(const KernelLayer &L, const int64_t *ids, size_t stride, size_t count, uint64_t *out,
		bool rowIds)
{
	hashScalar(L, ids, stride, count, out, rowIds);
}

int64_t maxInt64Avx512(const int64_t *v, size_t n)
{
	int64_t m = INT64_MIN;
	for (size_t i = 0; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}
#endif

} // namespace engrampool::hashing::detail
