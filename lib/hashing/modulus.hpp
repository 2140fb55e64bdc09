// SPDX-License-Identifier: Apache-2.0
// modulus.hpp - exact reduction by a runtime divisor without a hardware divide.
//
// Two methods, both exact and both tested on edge values (tests/hashing/test_modulus.cpp):
//  - Modulus::reduce: the round-up multiply-shift method (Granlund & Montgomery 1994,
//    as libdivide uses it) with a 65-bit magic number; exact for every 64-bit input
//    and every divisor >= 2. The scalar kernel and every slow path use it.
//  - the floating-point quotient estimate the SIMD kernels use (see kernel.hpp): a
//    double reciprocal gives q' within one of the true quotient as long as
//    u / d < 2^50, then one integer correction makes the remainder exact.
#pragma once

#include <cstdint>

namespace engrampool::hashing {

class Modulus {
public:
	Modulus() = default;
	// d >= 2.
	explicit Modulus(uint64_t d)
		: d_(d)
	{
		/* l = ceil(log2 d); magic = floor(2^64 (2^l - d) / d) + 1 < 2^64. */
		unsigned l = 64 - static_cast<unsigned>(__builtin_clzll(d - 1));
		unsigned __int128 num = ((static_cast<unsigned __int128>(1) << l) - d) << 64;
		magic_ = static_cast<uint64_t>(num / d) + 1;
		shift_ = l - 1;
	}

	uint64_t divisor() const { return d_; }

	uint64_t quotient(uint64_t n) const
	{
		uint64_t t = static_cast<uint64_t>((static_cast<unsigned __int128>(magic_) * n) >> 64);
		return (t + ((n - t) >> 1)) >> shift_;
	}

	// n mod d for unsigned n.
	uint64_t reduce(uint64_t n) const { return n - quotient(n) * d_; }

	// Python/numpy floor modulo of a signed value: result in [0, d).
	uint64_t floorMod(int64_t x) const
	{
		if (x >= 0)
			return reduce(static_cast<uint64_t>(x));
		/* For x < 0: x mod d = d - 1 - ((-x - 1) mod d), and -x - 1 = ~x >= 0. */
		return d_ - 1 - reduce(~static_cast<uint64_t>(x));
	}

private:
	uint64_t d_ = 1;
	uint64_t magic_ = 0;
	unsigned shift_ = 0;
};

} // namespace engrampool::hashing
