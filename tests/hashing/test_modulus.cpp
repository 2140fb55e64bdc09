// SPDX-License-Identifier: Apache-2.0
// test_modulus.cpp - divide-free reductions are exact: Modulus and every SIMD kernel on edge values.
#include "hash_test_util.hpp"

#include <random>

#include "hashing/kernel.hpp"
#include "hashing/primes.hpp"

using namespace hashtest;
using engrampool::hashing::detail::KernelFn;
using engrampool::hashing::detail::LayerTables;

namespace {

std::vector<uint64_t> divisorsUnderTest()
{
	std::vector<uint64_t> d{ 2, 3, 5, 7, 5003, 7001, 16381, 16383, 16384, 16385, 16411,
				 (1u << 20) + 7, 646403, 2262401, 4294967291ULL, 4294967311ULL,
				 (1ULL << 40) + 15, (1ULL << 49) - 1, (1ULL << 50) - 27, (1ULL << 50) - 1 };
	std::mt19937_64 rng(7);
	for (int bits = 2; bits <= 50; bits++) {
		for (int i = 0; i < 3; i++) {
			uint64_t v = (rng() >> (64 - bits)) | (uint64_t(1) << (bits - 1));
			while (!isPrime(v) && v < (uint64_t(1) << 50) - 1)
				v++;
			if (v >= 2 && v < (uint64_t(1) << 50))
				d.push_back(v);
		}
	}
	return d;
}

// Values that sit on or next to a multiple of d, at the top of the range, and random.
std::vector<uint64_t> valuesFor(uint64_t d, uint64_t top, std::mt19937_64 &rng)
{
	std::vector<uint64_t> v{ 0, 1, d - 1, d, d + 1, 2 * d - 1, 2 * d, top, top - 1,
				 (uint64_t(1) << 52) - 1, uint64_t(1) << 52, (uint64_t(1) << 53) + 1,
				 (uint64_t(1) << 62), (uint64_t(1) << 62) - 1 };
	for (uint64_t q : { top / d, top / d - 1, (top / d) / 2, (top / d) / 3 + 1 })
		for (int64_t e : { -2, -1, 0, 1, 2 })
			v.push_back(q * d + e);
	for (int i = 0; i < 400; i++)
		v.push_back(rng() & top);
	for (int i = 0; i < 100; i++) {
		/* Around random multiples of d. */
		uint64_t q = (rng() & top) / d;
		v.push_back(q * d);
		v.push_back(q * d - 1);
	}
	std::vector<uint64_t> out;
	for (uint64_t x : v)
		if (x <= top)
			out.push_back(x);
	return out;
}

} // namespace

TEST(HashModulus, MultiplyShiftExactOnEdgeValues)
{
	std::mt19937_64 rng(1);
	std::vector<uint64_t> ds = divisorsUnderTest();
	for (uint64_t d : { UINT64_MAX, UINT64_MAX - 58, (uint64_t(1) << 63) + 1, uint64_t(1) << 63,
			    (uint64_t(1) << 63) - 25, (uint64_t(1) << 32) })
		ds.push_back(d);
	size_t n = 0;
	for (uint64_t d : ds) {
		Modulus m(d);
		for (uint64_t x : valuesFor(d, UINT64_MAX, rng)) {
			ASSERT_EQ(m.reduce(x), x % d) << x << " mod " << d;
			ASSERT_EQ(m.quotient(x), x / d) << x << " / " << d;
			n++;
		}
		/* Signed floor modulo, as Python/numpy compute it. */
		for (int64_t x : { INT64_MIN, INT64_MIN + 1, int64_t(-1), -static_cast<int64_t>(d & INT64_MAX),
				   int64_t(-12345), INT64_MAX }) {
			__int128 r = static_cast<__int128>(x) % static_cast<__int128>(d);
			if (r < 0)
				r += d;
			ASSERT_EQ(m.floorMod(x), static_cast<uint64_t>(r)) << x << " floormod " << d;
		}
	}
	std::cout << n << " values checked\n";
}

// Drive each kernel with mix = id (multipliers 1 and 0) so any u in [0, 2^63) can be tried.
TEST(HashModulus, KernelsExactOnEdgeValues)
{
	std::mt19937_64 rng(2);
	const std::vector<uint64_t> ds = divisorsUnderTest();
	std::vector<std::pair<Kernel, KernelFn>> fns{ { Kernel::Scalar, detail::hashScalar } };
	if (kernelSupported(Kernel::Avx2))
		fns.push_back({ Kernel::Avx2, detail::hashAvx2 });
	if (kernelSupported(Kernel::Avx512))
		fns.push_back({ Kernel::Avx512, detail::hashAvx512 });
	ASSERT_GE(fns.size(), 2u) << "no SIMD kernel on this CPU; only the scalar path is tested";

	size_t checked = 0;
	/* Columns of 8 divisors at a time; heads 8 (uniform) and heads 3 (mixed orders). */
	for (uint32_t heads : { 8u, 3u }) {
		for (size_t base = 0; base < ds.size(); base += heads) {
			std::vector<uint64_t> cols;
			for (uint32_t j = 0; j < heads; j++)
				cols.push_back(ds[(base + j) % ds.size()]);
			/* N = 2 with multipliers {1, 0}: the only mix is the current id. */
			LayerTables t = LayerTables::build({ 1, 0 }, cols, {}, heads);
			auto k = t.view();

			std::vector<int64_t> ids{ 0 }; /* history slot */
			for (uint64_t d : cols)
				for (uint64_t x : valuesFor(d, INT64_MAX, rng))
					ids.push_back(static_cast<int64_t>(x));
			const size_t n = ids.size() - 1;
			for (auto &[kind, fn] : fns) {
				std::vector<uint64_t> out(n * heads + 8, 0xdeadbeef);
				fn(k, ids.data() + 1, 1, n, out.data(), false);
				for (size_t i = 0; i < n; i++)
					for (uint32_t j = 0; j < heads; j++) {
						const uint64_t x = static_cast<uint64_t>(ids[i + 1]);
						ASSERT_EQ(out[i * heads + j], x % cols[j])
							<< kernelName(kind) << ": " << x << " mod " << cols[j];
						checked++;
					}
				/* Nothing written past the last column. */
				EXPECT_EQ(out[n * heads], 0xdeadbeefULL) << kernelName(kind);
			}
		}
	}
	std::cout << checked << " kernel reductions checked\n";
}

// Negative mixes (negative ids pass through the vocab map) take numpy's floor modulo.
TEST(HashModulus, KernelsNegativeMixesUseFloorModulo)
{
	LayerTables t = LayerTables::build({ 1, 0 }, { 5003, 646403, 2262401, 16411, 7, 3, 1000003, 65537 }, {}, 8);
	auto k = t.view();
	std::vector<int64_t> ids{ 0, -1, -2, INT64_MIN, -646403, -5003 * 7 - 1, 42 };
	const size_t n = ids.size() - 1;
	for (KernelFn fn : { detail::hashScalar, detail::hashAvx2, detail::hashAvx512 }) {
		if ((fn == detail::hashAvx2 && !kernelSupported(Kernel::Avx2)) ||
		    (fn == detail::hashAvx512 && !kernelSupported(Kernel::Avx512)))
			continue;
		std::vector<uint64_t> out(n * 8);
		fn(k, ids.data() + 1, 1, n, out.data(), false);
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < 8; j++) {
				__int128 r = static_cast<__int128>(ids[i + 1]) % static_cast<__int128>(t.mod[j].divisor());
				if (r < 0)
					r += t.mod[j].divisor();
				ASSERT_EQ(out[i * 8 + j], static_cast<uint64_t>(r)) << ids[i + 1];
			}
	}
}

TEST(HashModulus, LargeDivisorLayerRunsScalar)
{
	LayerTables t = LayerTables::build({ 1, 0 }, { (uint64_t(1) << 50) + 55, 5003 }, {}, 2);
	EXPECT_FALSE(t.simdOk);
	EXPECT_TRUE(t.twoRound);
}
