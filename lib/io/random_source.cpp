// SPDX-License-Identifier: Apache-2.0
// random_source.cpp - deterministic pseudo-random rows (--random --seed S) for demos and benchmarks.
//
// A counter-based generator (the splitmix64 finaliser of seed, row and word index)
// makes every row independent of every other, so any chunking, any thread split and
// randomRow() all produce the same bytes. Each 64-bit word becomes 8 bytes of values
// through a few mask/shift operations, which keeps the fill at memory speed while the
// values stay finite and small: fp32 uniform in [-1, 1), fp16/bf16/fp8 of magnitude
// below 1, e8m0 scales 125..128 (2^-2 .. 2^1).
#include "io/row_source.hpp"

#include <cerrno>
#include <cstring>

namespace engrampool::io {

namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;
// Scales draw from a word range far from the values' so the two never share words.
constexpr uint64_t kScaleWordBase = 1ull << 40;

inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

inline uint64_t rowKey(uint64_t seed, uint64_t row)
{
	return mix64(mix64(seed ^ 0x656e6772616d2e31ull) + row * kGolden);
}

inline uint64_t word(uint64_t key, uint64_t w)
{
	return mix64(key + (w + 1) * kGolden);
}

// Turn 64 random bits into 8 bytes of valid, finite encodings of `d`.
inline uint64_t shapeValues(Dtype d, uint64_t u)
{
	switch (d) {
	case Dtype::Fp32: {
		// 24 random bits per lane scaled to [0, 2) then shifted: exact in fp32.
		float f[2];
		f[0] = static_cast<float>(static_cast<uint32_t>(u) >> 8) * 0x1p-23f - 1.0f;
		f[1] = static_cast<float>(static_cast<uint32_t>(u >> 32) >> 8) * 0x1p-23f - 1.0f;
		uint64_t out;
		std::memcpy(&out, f, sizeof(out));
		return out;
	}
	case Dtype::Fp16: {
		// sign and 10 mantissa bits random, exponent field 7..14: |x| in [2^-8, 1).
		uint64_t e = 0x000e000e000e000eull - ((u >> 10) & 0x0007000700070007ull);
		return (u & 0x83ff83ff83ff83ffull) | (e << 10);
	}
	case Dtype::Bf16: {
		// exponent field 119..126: |x| in [2^-8, 1).
		uint64_t e = 0x007e007e007e007eull - ((u >> 7) & 0x0007000700070007ull);
		return (u & 0x807f807f807f807full) | (e << 7);
	}
	case Dtype::Fp8E4M3: {
		// exponent field 3..6 (bias 7): |x| in [2^-4, 1); never the 0x7f/0xff NaNs.
		uint64_t e = 0x0606060606060606ull - ((u >> 3) & 0x0303030303030303ull);
		return (u & 0x8787878787878787ull) | (e << 3);
	}
	case Dtype::E8M0:
		return (u & 0x0303030303030303ull) + 0x7d7d7d7d7d7d7d7dull;
	case Dtype::None:
		break;
	}
	return 0;
}

// A power-of-two scale 2^(k-2), k = 0..3, in the scale dtype's encoding.
inline void writeScale(Dtype d, uint8_t k, uint8_t *dst)
{
	switch (d) {
	case Dtype::E8M0:
		dst[0] = static_cast<uint8_t>(125 + k);
		return;
	case Dtype::Fp8E4M3:
		dst[0] = static_cast<uint8_t>((5 + k) << 3);
		return;
	case Dtype::Fp16: {
		uint16_t v = static_cast<uint16_t>((13 + k) << 10);
		std::memcpy(dst, &v, 2);
		return;
	}
	case Dtype::Bf16: {
		uint16_t v = static_cast<uint16_t>((125 + k) << 7);
		std::memcpy(dst, &v, 2);
		return;
	}
	case Dtype::Fp32: {
		uint32_t v = static_cast<uint32_t>(125 + k) << 23;
		std::memcpy(dst, &v, 4);
		return;
	}
	case Dtype::None:
		return;
	}
}

class RandomSource : public RowSource {
public:
	RandomSource(const RowFormat &fmt, uint64_t rows, uint64_t seed)
		: fmt_(fmt), rows_(rows), seed_(seed)
	{
	}

	uint64_t rows() const override { return rows_; }

	Status read(uint64_t first, uint64_t count, uint8_t *dst) override
	{
		if (first > rows_ || count > rows_ - first)
			return errorf(-EINVAL, "random source: rows [%llu, +%llu) outside its %llu rows",
				      static_cast<unsigned long long>(first),
				      static_cast<unsigned long long>(count),
				      static_cast<unsigned long long>(rows_));
		const uint64_t stride = fmt_.rowStride();
		for (uint64_t i = 0; i < count; i++)
			randomRow(fmt_, seed_, first + i, dst + i * stride);
		return Status::ok();
	}

	std::string describe() const override
	{
		return "random (seed " + std::to_string(seed_) + ", " + std::to_string(rows_) +
		       " rows of " + fmt_.describe() + ")";
	}

private:
	RowFormat fmt_;
	uint64_t rows_;
	uint64_t seed_;
};

} // namespace

namespace {

// One instantiation per dtype so the per-word switch folds away in the hot loop.
template <Dtype D>
void fillValues(uint64_t key, uint32_t valueBytes, uint8_t *dst)
{
	uint32_t off = 0;
	uint64_t w = 0;
	for (; off + 8 <= valueBytes; off += 8, w++) {
		uint64_t v = shapeValues(D, word(key, w));
		std::memcpy(dst + off, &v, 8);
	}
	if (off < valueBytes) {
		// Value sizes divide 8, so the tail still ends on a whole value.
		uint64_t v = shapeValues(D, word(key, w));
		std::memcpy(dst + off, &v, valueBytes - off);
	}
}

} // namespace

void randomRow(const RowFormat &fmt, uint64_t seed, uint64_t row, uint8_t *dst)
{
	const uint64_t key = rowKey(seed, row);
	const uint32_t valueBytes = fmt.valueBytes();
	switch (fmt.dtype) {
	case Dtype::Fp32: fillValues<Dtype::Fp32>(key, valueBytes, dst); break;
	case Dtype::Bf16: fillValues<Dtype::Bf16>(key, valueBytes, dst); break;
	case Dtype::Fp16: fillValues<Dtype::Fp16>(key, valueBytes, dst); break;
	case Dtype::Fp8E4M3: fillValues<Dtype::Fp8E4M3>(key, valueBytes, dst); break;
	case Dtype::E8M0: fillValues<Dtype::E8M0>(key, valueBytes, dst); break;
	case Dtype::None: std::memset(dst, 0, valueBytes); break;
	}

	const uint32_t scales = fmt.scalesPerRow();
	const uint32_t scaleSize = dtypeBytes(fmt.scaleDtype);
	uint8_t *s = dst + valueBytes;
	uint64_t bits = 0;
	for (uint32_t i = 0; i < scales; i++) {
		// Two random bits per scale, taken a byte at a time from fresh words.
		if (i % 8 == 0)
			bits = word(key, kScaleWordBase + i / 8);
		writeScale(fmt.scaleDtype, static_cast<uint8_t>((bits >> (8 * (i % 8))) & 3), s);
		s += scaleSize;
	}

	const uint32_t rowBytes = fmt.rowBytes();
	const uint32_t stride = fmt.rowStride();
	if (stride > rowBytes)
		std::memset(dst + rowBytes, 0, stride - rowBytes);
}

std::unique_ptr<RowSource> makeRandomSource(const RowFormat &fmt, uint64_t rows, uint64_t seed)
{
	return std::make_unique<RandomSource>(fmt, rows, seed);
}

} // namespace engrampool::io
