// SPDX-License-Identifier: Apache-2.0
// numpy_rng.cpp - bit-exact port of numpy.random.default_rng: SeedSequence, PCG64, integers().
#include "hashing/numpy_rng.hpp"

namespace engrampool::hashing {

namespace {

/* SeedSequence hashing constants (numpy bit_generator.pyx). */
constexpr uint32_t kInitA = 0x43b0d7e5;
constexpr uint32_t kMultA = 0x931e8875;
constexpr uint32_t kInitB = 0x8b51f9dd;
constexpr uint32_t kMultB = 0x58f38ded;
constexpr uint32_t kMixMultL = 0xca01f9dd;
constexpr uint32_t kMixMultR = 0x4973f715;
constexpr unsigned kXShift = 16;

/* The LCG multiplier of PCG64 (the 128-bit default from the PCG family). */
constexpr uint128 kPcgMult = (static_cast<uint128>(2549297995355413924ULL) << 64) |
			     4865540595714422341ULL;

/* One hashing step; the constant evolves across every call of one mixing pass. */
uint32_t hashMix(uint32_t value, uint32_t &hashConst)
{
	value ^= hashConst;
	hashConst *= kMultA;
	value *= hashConst;
	value ^= value >> kXShift;
	return value;
}

uint32_t mix(uint32_t x, uint32_t y)
{
	uint32_t r = kMixMultL * x - kMixMultR * y;
	return r ^ (r >> kXShift);
}

} // namespace

SeedSequence::SeedSequence(std::span<const uint32_t> entropy)
{
	const size_t n = pool_.size();
	uint32_t hashConst = kInitA;

	for (size_t i = 0; i < n; i++)
		pool_[i] = hashMix(i < entropy.size() ? entropy[i] : 0, hashConst);

	for (size_t src = 0; src < n; src++)
		for (size_t dst = 0; dst < n; dst++)
			if (src != dst)
				pool_[dst] = mix(pool_[dst], hashMix(pool_[src], hashConst));

	/* Entropy longer than the pool is folded in word by word. */
	for (size_t src = n; src < entropy.size(); src++)
		for (size_t dst = 0; dst < n; dst++)
			pool_[dst] = mix(pool_[dst], hashMix(entropy[src], hashConst));
}

SeedSequence SeedSequence::fromInt(uint128 seed)
{
	/* numpy writes 0 as one zero word, otherwise as many words as needed. */
	std::vector<uint32_t> words;
	do {
		words.push_back(static_cast<uint32_t>(seed));
		seed >>= 32;
	} while (seed);
	return SeedSequence(words);
}

void SeedSequence::generateState(std::span<uint32_t> out) const
{
	uint32_t hashConst = kInitB;
	for (size_t i = 0; i < out.size(); i++) {
		uint32_t v = pool_[i % pool_.size()];
		v ^= hashConst;
		hashConst *= kMultB;
		v *= hashConst;
		v ^= v >> kXShift;
		out[i] = v;
	}
}

std::vector<uint64_t> SeedSequence::generateState64(size_t words) const
{
	/* numpy views the 32-bit words as little-endian 64-bit words. */
	std::vector<uint32_t> w(2 * words);
	generateState(w);
	std::vector<uint64_t> out(words);
	for (size_t i = 0; i < words; i++)
		out[i] = w[2 * i] | (static_cast<uint64_t>(w[2 * i + 1]) << 32);
	return out;
}

Pcg64::Pcg64(const SeedSequence &seq)
{
	std::vector<uint64_t> v = seq.generateState64(4);
	uint128 initState = (static_cast<uint128>(v[0]) << 64) | v[1];
	uint128 initSeq = (static_cast<uint128>(v[2]) << 64) | v[3];

	state_ = 0;
	inc_ = (initSeq << 1) | 1;
	step();
	state_ += initState;
	step();
}

void Pcg64::step()
{
	state_ = state_ * kPcgMult + inc_;
}

uint64_t Pcg64::next64()
{
	step();
	uint64_t hi = static_cast<uint64_t>(state_ >> 64);
	uint64_t lo = static_cast<uint64_t>(state_);
	unsigned rot = static_cast<unsigned>(state_ >> 122);
	uint64_t x = hi ^ lo;
	return (x >> rot) | (x << ((64 - rot) & 63));
}

uint32_t Pcg64::next32()
{
	if (hasUint32_) {
		hasUint32_ = false;
		return uinteger_;
	}
	uint64_t v = next64();
	hasUint32_ = true;
	uinteger_ = static_cast<uint32_t>(v >> 32);
	return static_cast<uint32_t>(v);
}

Pcg64 defaultRng(uint128 seed)
{
	return Pcg64(SeedSequence::fromInt(seed));
}

uint64_t boundedLemire64(Pcg64 &rng, uint64_t range)
{
	/* Multiply-shift maps a draw onto [0, range]; rejecting draws whose low
	 * half falls below 2^64 mod (range+1) removes the bias. */
	const uint64_t excl = range + 1;
	uint128 m = static_cast<uint128>(rng.next64()) * excl;
	uint64_t leftover = static_cast<uint64_t>(m);
	if (leftover < excl) {
		const uint64_t threshold = (UINT64_MAX - range) % excl;
		while (leftover < threshold) {
			m = static_cast<uint128>(rng.next64()) * excl;
			leftover = static_cast<uint64_t>(m);
		}
	}
	return static_cast<uint64_t>(m >> 64);
}

uint32_t boundedLemire32(Pcg64 &rng, uint32_t range)
{
	const uint32_t excl = range + 1;
	uint64_t m = static_cast<uint64_t>(rng.next32()) * excl;
	uint32_t leftover = static_cast<uint32_t>(m);
	if (leftover < excl) {
		const uint32_t threshold = (UINT32_MAX - range) % excl;
		while (leftover < threshold) {
			m = static_cast<uint64_t>(rng.next32()) * excl;
			leftover = static_cast<uint32_t>(m);
		}
	}
	return static_cast<uint32_t>(m >> 32);
}

void integersInt64(Pcg64 &rng, int64_t low, int64_t high, std::span<int64_t> out)
{
	/* numpy turns [low, high) into an offset and an inclusive range. */
	const uint64_t off = static_cast<uint64_t>(low);
	const uint64_t range = static_cast<uint64_t>(high - 1) - off;

	for (int64_t &v : out) {
		uint64_t r;
		if (range == 0)
			r = 0;
		else if (range < UINT32_MAX)
			r = boundedLemire32(rng, static_cast<uint32_t>(range));
		else if (range == UINT32_MAX)
			r = rng.next32();
		else if (range == UINT64_MAX)
			r = rng.next64();
		else
			r = boundedLemire64(rng, range);
		v = static_cast<int64_t>(off + r);
	}
}

} // namespace engrampool::hashing
