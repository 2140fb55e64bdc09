// SPDX-License-Identifier: Apache-2.0
// hash_util.hpp - helpers shared by the fixed-capacity open-addressing tables.
#pragma once

#include <cstddef>
#include <cstdint>

namespace engrampool {

// Smallest power of two >= n (at least 16): table sizes that index with a mask.
inline size_t pow2AtLeast(size_t n)
{
	size_t p = 16;
	while (p < n)
		p <<= 1;
	return p;
}

// 64-bit finaliser (splitmix-style): spreads keys over the table's low bits.
inline uint64_t mixBits(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dull;
	return x ^ (x >> 33);
}

} // namespace engrampool
