// SPDX-License-Identifier: Apache-2.0
// test_shadow_tier.cpp - the shadow of the hot-row tier: its hash sample, the static set it
// mirrors, and the figure it exists for: a warm tier's hit rate, measured while the real
// tier is used only now and then (the adaptive agent's bypass) and goes stale.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <unordered_set>
#include <vector>

#include "cache/hot_rows.hpp"
#include "cache/shadow_tier.hpp"
#include "util/hash_util.hpp"

using engrampool::cache::HotRowCache;
using engrampool::cache::ShadowTier;

namespace {

// Look a pass's distinct rows up in a tier, admitting misses (CLOCK inline, as the shadow
// does); returns the hits.
size_t usePass(HotRowCache &c, uint32_t layer, const std::vector<uint64_t> &rows)
{
	size_t hits = 0;
	for (uint64_t r : rows) {
		if (c.find(layer, r) >= 0)
			hits++;
		else
			c.admit(layer, r, true);
	}
	return hits;
}

// A row of a 2^30-row table for each (source, rank): fixed, pseudo-random.
uint64_t rowOf(uint64_t source, uint64_t rank)
{
	return engrampool::mixBits(source * 0x9e3779b97f4a7c15ull + rank) & ((1ull << 30) - 1);
}

// Distinct rows of one pass of real-looking traffic: half from a Zipf-like head shared by
// all text (log-uniform ranks over 2^20), half from the document being read (its own 2048
// n-grams, used again and again while it lasts), as a token trace shows.
std::vector<uint64_t> tracePass(std::mt19937_64 &rng, uint64_t doc, size_t n)
{
	std::uniform_real_distribution<double> u(0.0, 20.0);
	std::uniform_int_distribution<uint64_t> local(0, 2047);
	std::unordered_set<uint64_t> seen;
	std::vector<uint64_t> rows;
	while (rows.size() < n) {
		const uint64_t row = rows.size() % 2 ? rowOf(0, (uint64_t)std::exp2(u(rng))) : rowOf(1 + doc, local(rng));
		if (seen.insert(row).second)
			rows.push_back(row);
	}
	return rows;
}

} // namespace

TEST(ShadowTier, SamplesAFixedShareOfRowsScaledToTheTier)
{
	// 1/8 for small tiers, 1/64 from 256 Ki rows on; the model scales with it.
	EXPECT_EQ(3u, ShadowTier(1000, true).shift());
	EXPECT_EQ(125u, ShadowTier(1000, true).capacity());
	EXPECT_EQ(3u, ShadowTier(32768, true).shift());
	EXPECT_EQ(4u, ShadowTier(65536, true).shift());
	EXPECT_EQ(6u, ShadowTier(1 << 20, true).shift());
	EXPECT_EQ(16384u, ShadowTier(1 << 20, true).capacity());
	ShadowTier s(1 << 20, true);
	size_t sampled = 0;
	const size_t n = 1 << 20;
	for (uint64_t r = 0; r < n; r++) {
		sampled += s.sampled(0, r);
		EXPECT_EQ(s.sampled(1, r), s.sampled(1, r)) << "a fixed sample";
	}
	EXPECT_NEAR((double)sampled / n, 1.0 / 64, 0.002);
	// Layers sample different rows.
	size_t both = 0;
	for (uint64_t r = 0; r < n; r++)
		both += s.sampled(0, r) && s.sampled(1, r);
	EXPECT_LT(both, sampled / 8);
}

TEST(ShadowTier, MirrorsTheStaticSet)
{
	// A lookups-only tier: pinned rows always hit, nothing else ever does.
	ShadowTier s(4096, false);
	std::vector<uint64_t> pinned, other;
	for (uint64_t r = 0; pinned.size() < 64 || other.size() < 64; r++) {
		if (!s.sampled(3, r))
			continue;
		(pinned.size() < 64 ? pinned : other).push_back(r);
	}
	for (uint64_t r : pinned)
		s.pin(3, r);
	EXPECT_EQ(0.0, s.lookups());
	s.observe(3, other.data(), other.size());
	EXPECT_EQ(64.0, s.lookups());
	EXPECT_EQ(0.0, s.hitRate());
	for (int i = 0; i < 20; i++)
		s.observe(3, pinned.data(), pinned.size());
	EXPECT_NEAR(1.0, s.hitRate(), 0.2) << "recent lookups weigh most";
	EXPECT_GT(s.hitRate(), 0.9);
	// Another layer's rows with the same ids are not pinned.
	s.observe(4, pinned.data(), pinned.size());
	EXPECT_EQ(0u, s.stats().admissions) << "a lookups-only model admits nothing";
	// A replaced table: unpinned rows go, pins stay.
	s.clearUnpinned();
	const double before = s.lookups();
	s.observe(3, pinned.data(), pinned.size());
	EXPECT_GT(s.lookups(), before);
	EXPECT_EQ(64u, s.stats().pinned);
}

// The reason it exists. Three views of one stream of passes (a new document every 64
// passes): a tier used on every pass (what the adaptive agent would get by using it), the
// same tier used one pass in 16 (a bypassed agent: it admits only on sampled passes, sees
// each document 4 times instead of 64 and goes stale), and the shadow. The shadow's hit
// rate is the warm tier's; the sampled tier's is far below it.
TEST(ShadowTier, EstimatesTheWarmTiersHitRateWhileTheTierIsBypassed)
{
	const size_t capacity = 32768;
	HotRowCache warm(capacity, true), stale(capacity, true);
	ShadowTier shadow(capacity, true);
	std::mt19937_64 rng(11);
	size_t warmHits = 0, warmLooked = 0, staleHits = 0, staleLooked = 0, lastHits = 0, lastLooked = 0;
	uint64_t shadowHits0 = 0, shadowMisses0 = 0;
	const int passes = 600, measured = 300;
	for (int p = 0; p < passes; p++) {
		const uint32_t layer = 0;
		const std::vector<uint64_t> rows = tracePass(rng, (uint64_t)p / 64, 1024);
		const size_t h = usePass(warm, layer, rows);
		size_t sh = 0;
		if (p % 16 == 0)
			sh = usePass(stale, layer, rows);
		shadow.observe(layer, rows.data(), rows.size());
		if (p == passes - measured) {
			shadowHits0 = shadow.stats().hits;
			shadowMisses0 = shadow.stats().misses;
		}
		if (p >= passes - measured) {
			warmHits += h;
			warmLooked += rows.size();
			if (p >= passes - 4) {
				lastHits += h;
				lastLooked += rows.size();
			}
			if (p % 16 == 0) {
				staleHits += sh;
				staleLooked += rows.size();
			}
		}
	}
	const double warmRate = (double)warmHits / (double)warmLooked;
	const double staleRate = (double)staleHits / (double)staleLooked;
	const uint64_t sHits = shadow.stats().hits - shadowHits0, sMisses = shadow.stats().misses - shadowMisses0;
	const double shadowRate = (double)sHits / (double)(sHits + sMisses);
	RecordProperty("warm", std::to_string(warmRate));
	RecordProperty("stale", std::to_string(staleRate));
	RecordProperty("shadow", std::to_string(shadowRate));
	ASSERT_GT(warmRate, 0.2) << "the stream repeats enough for a tier to matter";
	ASSERT_LT(warmRate, 0.9);
	EXPECT_GT(sHits + sMisses, 30000u) << "~1/8 of 300 x 1024 rows sampled";
	EXPECT_NEAR(warmRate, shadowRate, 0.04) << "stale " << staleRate;
	const double lastRate = (double)lastHits / (double)lastLooked;
	EXPECT_NEAR(lastRate, shadow.hitRate(), 0.12) << "the running figure: the last ~512 sampled rows, 4 passes";
	EXPECT_LT(staleRate, warmRate - 0.1) << "a bypassed tier understates its hit rate";
}
