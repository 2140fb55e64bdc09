// SPDX-License-Identifier: Apache-2.0
// shadow_tier.hpp - what the hot-row tier's hit rate would be, measured without it.
//
// The agent's adaptive tier (agent.cpp, TierEconomy) stops looking rows up where the tier
// costs more than it saves, and then stops admitting them too: the tier's own contents go
// stale, and a pass that samples it sees a hit rate far below what the tier would reach if
// it were used (measured on a token trace: 15 % instead of 68 %). The shadow keeps that
// figure honest: a scaled-down model of the tier, the same policy (static set pinned,
// CLOCK with TinyLFU admission) at capacity x 2^-shift, fed every pass with the distinct
// rows whose key falls in a fixed 2^-shift hash sample (spatial sampling, as SHARDS does for
// miss-ratio curves: Waldspurger et al., FAST '15). Its hit rate over those rows estimates
// the warm tier's, at 2^-shift of the tier's cost per pass; it holds no row bytes.
// Used by the pipeline thread alone; observe never allocates.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cache/hot_rows.hpp"

namespace engrampool::cache {

class ShadowTier {
public:
	// A model of a HotRowCache(capacity, admit).
	ShadowTier(size_t capacity, bool admit);

	// 1 in 2^shift() (layer, row) pairs is modelled: 1/8 for small tiers, down to 1/64 for
	// tiers of 256 Ki rows and more (so the model keeps >= 4096 slots where it can).
	unsigned shift() const { return shift_; }
	size_t capacity() const { return model_.capacity(); }
	bool sampled(uint32_t layer, uint64_t row) const
	{
		// Multiplicative hashing; the layer scrambles the row's low bits too, so that each
		// layer samples its own rows.
		return ((row ^ (layer + 1) * 0x9e3779b97f4a7c15ull) * 0xd6e8feb86659fd93ull) >> (64 - shift_) == 0;
	}
	// The tier pinned (layer, row): pin it in the model too when it is sampled.
	void pin(uint32_t layer, uint64_t row);
	// As the tier's clearUnpinned (a table was replaced).
	void clearUnpinned() { model_.clearUnpinned(); }
	// One layer pass: its distinct rows, looked up (and admitted) in the model when sampled.
	void observe(uint32_t layer, const uint64_t *rows, size_t n);
	// Sampled lookups (decayed; see observe) and the share that hit. hitRate() is
	// meaningful once lookups() reaches a few dozen.
	double lookups() const { return looked_; }
	double hitRate() const { return looked_ > 0 ? hits_ / looked_ : 0.0; }
	const Stats &stats() const { return model_.stats(); }

private:
	unsigned shift_;
	HotRowCache model_;
	double looked_ = 0, hits_ = 0;
};

} // namespace engrampool::cache
