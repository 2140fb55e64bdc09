// SPDX-License-Identifier: Apache-2.0
// device_test_util.hpp - random submits and their expected results, shared by the
// host and cuda device tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "device/device.hpp"

namespace eptest {

// One layer's inputs, filled into a device's staging buffers by fill().
struct LayerCase {
	uint32_t rowStride = 0;
	size_t uniqueRows = 0;
	std::vector<uint8_t> staged;       // uniqueRows x rowStride
	std::vector<uint32_t> index;       // output row -> staged row, or kFromCache | cache row
	std::vector<uint32_t> pairs;       // (staged row, cache slot) x admits
	size_t admits() const { return pairs.size() / 2; }
};

// Random case: about a third of the output rows from the cache (when cacheRows > 0),
// distinct admit slots.
inline LayerCase makeCase(std::mt19937_64 &rng, uint32_t rowStride, size_t uniqueRows, size_t outRows, size_t cacheRows,
			  size_t admits)
{
	LayerCase c;
	c.rowStride = rowStride;
	c.uniqueRows = uniqueRows;
	c.staged.resize(uniqueRows * rowStride);
	for (auto &b : c.staged)
		b = (uint8_t)rng();
	c.index.resize(outRows);
	for (auto &e : c.index) {
		if (cacheRows > 0 && rng() % 3 == 0)
			e = engrampool::device::kFromCache | (uint32_t)(rng() % cacheRows);
		else
			e = (uint32_t)(rng() % uniqueRows);
	}
	std::vector<uint32_t> slots(cacheRows);
	for (size_t i = 0; i < cacheRows; i++)
		slots[i] = (uint32_t)i;
	std::shuffle(slots.begin(), slots.end(), rng);
	for (size_t i = 0; i < admits && i < cacheRows; i++) {
		c.pairs.push_back((uint32_t)(rng() % uniqueRows));
		c.pairs.push_back(slots[i]);
	}
	return c;
}

inline void fill(const engrampool::device::LayerBuffers &b, const LayerCase &c)
{
	// memcpy from an empty vector's data() (nullptr) is undefined even for 0 bytes.
	if (!c.staged.empty())
		std::memcpy(b.stagingRows, c.staged.data(), c.staged.size());
	if (!c.index.empty())
		std::memcpy(b.stagingIndex, c.index.data(), c.index.size() * 4);
	if (!c.pairs.empty())
		std::memcpy(b.stagingAdmit, c.pairs.data(), c.pairs.size() * 4);
}

// Expected output rows, and the cache after the admits (cache: rows x cacheStride).
inline std::vector<uint8_t> expectedOutput(const LayerCase &c, const std::vector<uint8_t> &cache, uint32_t cacheStride)
{
	std::vector<uint8_t> out(c.index.size() * c.rowStride);
	for (size_t i = 0; i < c.index.size(); i++) {
		uint32_t e = c.index[i];
		const uint8_t *src = (e & engrampool::device::kFromCache)
					     ? &cache[(size_t)(e & ~engrampool::device::kFromCache) * cacheStride]
					     : &c.staged[(size_t)e * c.rowStride];
		std::memcpy(&out[i * c.rowStride], src, c.rowStride);
	}
	return out;
}

inline void applyAdmits(const LayerCase &c, std::vector<uint8_t> &cache, uint32_t cacheStride)
{
	for (size_t i = 0; i < c.admits(); i++)
		std::memcpy(&cache[(size_t)c.pairs[2 * i + 1] * cacheStride], &c.staged[(size_t)c.pairs[2 * i] * c.rowStride],
			    c.rowStride);
}

} // namespace eptest
