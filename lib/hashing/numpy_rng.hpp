// SPDX-License-Identifier: Apache-2.0
// numpy_rng.hpp - bit-exact port of numpy.random.default_rng: SeedSequence, PCG64, integers().
//
// Only what the Engram multipliers need: default_rng(seed) for a non-negative integer
// seed, raw 64/32-bit draws, and Generator.integers(low, high, dtype=int64) with its
// Lemire bounded paths (the 32-bit path uses the generator's buffered 32-bit draws).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace engrampool::hashing {

using uint128 = unsigned __int128;

// numpy.random.SeedSequence with the default pool of four 32-bit words and no spawn key.
class SeedSequence {
public:
	// entropy: the seed split in 32-bit words, least significant first.
	explicit SeedSequence(std::span<const uint32_t> entropy);
	// The seed as numpy coerces a Python int (any width up to 128 bits).
	static SeedSequence fromInt(uint128 seed);

	void generateState(std::span<uint32_t> out) const;
	std::vector<uint64_t> generateState64(size_t words) const;
	const std::array<uint32_t, 4> &pool() const { return pool_; }

private:
	std::array<uint32_t, 4> pool_{};
};

// numpy.random.PCG64: 128-bit LCG with the XSL-RR output function, plus numpy's
// one-word buffer that hands out a 64-bit draw as two 32-bit draws (low half first).
class Pcg64 {
public:
	explicit Pcg64(const SeedSequence &seq);
	Pcg64(uint128 state, uint128 inc) : state_(state), inc_(inc) {}

	uint64_t next64();
	uint32_t next32();

private:
	void step();

	uint128 state_ = 0;
	uint128 inc_ = 0;
	bool hasUint32_ = false;
	uint32_t uinteger_ = 0;
};

// numpy.random.default_rng(seed) for an integer seed.
Pcg64 defaultRng(uint128 seed);

// Generator.integers(low, high, size=out.size(), dtype=int64), endpoint=False.
// Requires low < high.
void integersInt64(Pcg64 &rng, int64_t low, int64_t high, std::span<int64_t> out);

// The two Lemire draws numpy uses for a range [0, range] (inclusive).
uint64_t boundedLemire64(Pcg64 &rng, uint64_t range);
uint32_t boundedLemire32(Pcg64 &rng, uint32_t range);

} // namespace engrampool::hashing
