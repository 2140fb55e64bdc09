// SPDX-License-Identifier: Apache-2.0
// shadow_tier.cpp - the sampled model of the hot-row tier (see shadow_tier.hpp).
#include "cache/shadow_tier.hpp"

#include <algorithm>
#include <bit>

namespace engrampool::cache {

namespace {
// 1/8 of the rows for small tiers, 1/64 from 256 Ki rows on: the model keeps >= 4096 slots
// where the tier has 32 Ki rows or more (fewer slots sample its policy too coarsely).
unsigned sampleShift(size_t capacity)
{
	const unsigned l = capacity >= 4096 ? (unsigned)std::bit_width(capacity / 4096) - 1 : 0;
	return std::clamp(l, 3u, 6u);
}
// The hit rate is an average over about this many recent sampled lookups, whatever the
// pass size (a decode batch of 64 samples ~32 rows per layer pass at 1/64).
constexpr double kWindow = 512;
} // namespace

ShadowTier::ShadowTier(size_t capacity, bool admit)
	: shift_(sampleShift(capacity)),
	  model_(capacity ? std::max<size_t>(1, (capacity + ((size_t)1 << shift_) - 1) >> shift_) : 0, admit)
{
}

void ShadowTier::pin(uint32_t layer, uint64_t row)
{
	if (sampled(layer, row))
		model_.pin(layer, row); // a full model keeps the first (most frequent) ones, as the tier does
}

void ShadowTier::observe(uint32_t layer, const uint64_t *rows, size_t n)
{
	size_t looked = 0, hits = 0;
	for (size_t i = 0; i < n; i++) {
		const uint64_t r = rows[i];
		if (!sampled(layer, r))
			continue;
		looked++;
		if (model_.find(layer, r) >= 0)
			hits++;
		else
			model_.admit(layer, r, true); // resident at once: the model has no bytes to fill
	}
	if (!looked)
		return;
	const double keep = std::max(0.0, 1.0 - (double)looked / kWindow);
	looked_ = looked_ * keep + (double)looked;
	hits_ = hits_ * keep + (double)hits;
}

} // namespace engrampool::cache
