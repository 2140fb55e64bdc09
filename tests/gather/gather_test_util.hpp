// SPDX-License-Identifier: Apache-2.0
// gather_test_util.hpp - tables, row ids and a reference gather for the gather tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gather/gather.hpp"

namespace eptest {

// A table whose every byte depends on its offset, so a wrong row or shift shows.
inline std::vector<uint8_t> patternTable(size_t bytes, uint32_t seed = 1)
{
	std::vector<uint8_t> t(bytes);
	uint32_t x = seed * 2654435761u + 12345;
	for (size_t i = 0; i < bytes; i++) {
		x = x * 1664525u + 1013904223u;
		t[i] = static_cast<uint8_t>(x >> 24);
	}
	return t;
}

// Random ids that always include the first and the last row.
inline std::vector<uint64_t> randomRows(size_t count, uint64_t tableRows, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	std::vector<uint64_t> r(count);
	for (auto &v : r)
		v = rng() % tableRows;
	if (count > 0)
		r[0] = tableRows - 1;
	if (count > 1)
		r[count / 2] = 0;
	return r;
}

// The definition: dst + i * dstStride <- table + rows[i] * rowStride, rowBytes each
// (dst + dstIndex[i] * dstStride with a dstIndex).
inline void referenceGather(const engrampool::gather::Job &j)
{
	for (size_t i = 0; i < j.count; i++)
		std::memcpy(j.dst + (j.dstIndex ? (size_t)j.dstIndex[i] : i) * j.dstStride, j.table + j.rows[i] * j.rowStride,
			    j.rowBytes);
}

} // namespace eptest
