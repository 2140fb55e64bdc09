// SPDX-License-Identifier: Apache-2.0
// test_dequant.cpp - fp8-e4m3 x e8m0 dequantization against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "model/widen.hpp"

using namespace engrampool;

TEST(Dequant, E8m0EdgeValues)
{
	/* OCP MX v1.0: value 2^(e - 127), 0xFF is NaN, no zero and no sign. */
	EXPECT_EQ(e8m0ToFloat(127), 1.0f);
	EXPECT_EQ(e8m0ToFloat(128), 2.0f);
	EXPECT_EQ(e8m0ToFloat(126), 0.5f);
	EXPECT_EQ(e8m0ToFloat(0), 0x1p-127f); /* a float32 subnormal, exact */
	EXPECT_GT(e8m0ToFloat(0), 0.0f);
	EXPECT_EQ(e8m0ToFloat(254), 0x1p127f);
	EXPECT_TRUE(std::isnan(e8m0ToFloat(255)));
	float w;
	uint8_t b = 0;
	widenToFloat(Dtype::E8M0, &b, 1, &w);
	EXPECT_EQ(w, 0x1p-127f);
}

TEST(Dequant, E4m3TimesBlockScale)
{
	/* A V4.1-shaped row shrunk to 64 values: two blocks of 32, then 2 scale bytes. */
	RowFormat f;
	f.dtype = Dtype::Fp8E4M3;
	f.valuesPerRow = 64;
	f.scaleDtype = Dtype::E8M0;
	f.scaleBlock = 32;
	ASSERT_TRUE(f.validate().isOk());
	ASSERT_EQ(f.rowBytes(), 66u);

	std::vector<uint8_t> row(66, 0);
	/* Block 0: hand-decoded e4m3 (S.EEEE.MMM, bias 7):
	 *   0x38 = 0.0111.000 = 1.0      0x40 = 0.1000.000 = 2.0     0xC4 = 1.1000.100 = -3.0
	 *   0x01 = subnormal 1/8 * 2^-6 = 2^-9      0x7E = 0.1111.110 = 1.75 * 2^8 = 448 (max)
	 *   0x7F = NaN                                0x80 = -0.0 */
	const uint8_t vals[] = { 0x38, 0x40, 0xC4, 0x01, 0x7E, 0x7F, 0x80 };
	std::copy(std::begin(vals), std::end(vals), row.begin());
	/* Block 1 starts at 32: 0x3C = 0.0111.100 = 1.5; 0x30 = 0.0110.000 = 0.5. */
	row[32] = 0x3C;
	row[33] = 0x30;
	row[64] = 129; /* block 0 scale 2^2 */
	row[65] = 0;   /* block 1 scale 2^-127 */

	std::vector<float> out(64, -1);
	dequantizeRow(f, row.data(), out.data());
	EXPECT_EQ(out[0], 4.0f);
	EXPECT_EQ(out[1], 8.0f);
	EXPECT_EQ(out[2], -12.0f);
	EXPECT_EQ(out[3], 0x1p-7f);
	EXPECT_EQ(out[4], 1792.0f);
	EXPECT_TRUE(std::isnan(out[5]));
	EXPECT_EQ(out[6], 0.0f);
	EXPECT_TRUE(std::signbit(out[6]));
	for (int i = 7; i < 32; i++)
		EXPECT_EQ(out[i], 0.0f) << i;
	EXPECT_EQ(out[32], 1.5f * 0x1p-127f); /* subnormal, exact */
	EXPECT_EQ(out[33], 0x1p-128f);

	/* Scale 254 (2^127): 448 * 2^127 overflows float32 to inf, 2^-9 * 2^127 = 2^118. */
	row[64] = 254;
	dequantizeRow(f, row.data(), out.data());
	EXPECT_EQ(out[4], INFINITY);
	EXPECT_EQ(out[3], 0x1p118f);
	EXPECT_EQ(out[0], 0x1p127f);

	/* Scale 255 (NaN): every value of the block is NaN, zeros too; block 1 unaffected. */
	row[64] = 255;
	dequantizeRow(f, row.data(), out.data());
	for (int i = 0; i < 32; i++)
		EXPECT_TRUE(std::isnan(out[i])) << i;
	EXPECT_EQ(out[32], 1.5f * 0x1p-127f);

	/* Scale 127 (1.0): the widened values themselves. */
	row[64] = 127;
	dequantizeRow(f, row.data(), out.data());
	EXPECT_EQ(out[0], 1.0f);
	EXPECT_EQ(out[2], -3.0f);
	EXPECT_EQ(out[4], 448.0f);
}

TEST(Dequant, UnscaledFormatsAreWidened)
{
	RowFormat f;
	f.dtype = Dtype::Bf16;
	f.valuesPerRow = 2;
	const uint8_t row[] = { 0x80, 0x3F, 0x00, 0xC0 }; /* bf16 1.0, -2.0 little-endian */
	float out[2];
	dequantizeRow(f, row, out);
	EXPECT_EQ(out[0], 1.0f);
	EXPECT_EQ(out[1], -2.0f);
}

// The table-driven fast path equals ldexp(e4m3, e - 127) bit for bit, for every value
// byte under every scale byte (NaN stays NaN, subnormal results round the same way).
TEST(Dequant, EveryValueUnderEveryScaleEqualsLdexp)
{
	RowFormat f;
	f.dtype = Dtype::Fp8E4M3;
	f.valuesPerRow = 256;
	f.scaleDtype = Dtype::E8M0;
	f.scaleBlock = 32;
	ASSERT_TRUE(f.validate().isOk());
	std::vector<uint8_t> values(256), scales(8);
	std::vector<float> out(256);
	for (int v = 0; v < 256; v++)
		values[v] = (uint8_t)v;
	size_t checked = 0;
	for (int s0 = 0; s0 < 256; s0 += 8) {
		for (int b = 0; b < 8; b++)
			scales[b] = (uint8_t)(s0 + b);
		// Each block holds 32 value bytes: rotate so every byte meets every scale.
		for (int rot = 0; rot < 8; rot++) {
			std::vector<uint8_t> vrow(256);
			for (int i = 0; i < 256; i++)
				vrow[i] = values[(i + rot * 32) % 256];
			dequantizeRow(f, vrow.data(), scales.data(), out.data());
			for (int i = 0; i < 256; i++) {
				float want = scales[i / 32] == 255 ? std::nanf("")
								    : std::ldexp(fp8e4m3ToFloat(vrow[i]), (int)scales[i / 32] - 127);
				if (std::isnan(want)) {
					ASSERT_TRUE(std::isnan(out[i])) << "value " << (int)vrow[i] << " scale " << (int)scales[i / 32];
				} else {
					uint32_t a, w;
					std::memcpy(&a, &out[i], 4);
					std::memcpy(&w, &want, 4);
					ASSERT_EQ(w, a) << "value " << (int)vrow[i] << " scale " << (int)scales[i / 32];
				}
				checked++;
			}
		}
	}
	EXPECT_EQ(checked, 256u * 256u);
}

// bf16 output: the vector path (AVX-512, where this CPU has it) and the scalar one both
// equal floatToBf16 of the float32 result, for every value byte under every scale byte.
TEST(Dequant, Bf16EqualsRoundedFloatForEveryValueAndScale)
{
	for (uint32_t block : {32u, 8u}) { // 32: the vector path where it exists; 8: never
		RowFormat f;
		f.dtype = Dtype::Fp8E4M3;
		f.valuesPerRow = 256;
		f.scaleDtype = Dtype::E8M0;
		f.scaleBlock = block;
		ASSERT_TRUE(f.validate().isOk());
#if defined(__x86_64__)
		EXPECT_EQ(dequantizeIsVectorized(f), block == 32 && __builtin_cpu_supports("avx512f"));
#endif
		const uint32_t nScales = 256 / block;
		std::vector<uint8_t> vrow(256), scales(nScales);
		std::vector<uint16_t> out(256);
		std::vector<float> scratch(256);
		for (int s0 = 0; s0 < 256; s0++) {
			for (uint32_t b = 0; b < nScales; b++)
				scales[b] = (uint8_t)((s0 + b * 37) % 256);
			for (int rot = 0; rot < 4; rot++) {
				for (int i = 0; i < 256; i++)
					vrow[i] = (uint8_t)(i * 7 + rot * 61); // 7 and 256 coprime: every byte once
				dequantizeRowBf16(f, vrow.data(), scales.data(), out.data(), scratch.data());
				for (int i = 0; i < 256; i++) {
					uint8_t sc = scales[i / block];
					float x = sc == 255 ? std::nanf("") : std::ldexp(fp8e4m3ToFloat(vrow[i]), (int)sc - 127);
					uint16_t want = floatToBf16(x);
					if (std::isnan(x))
						ASSERT_TRUE((out[i] & 0x7f80) == 0x7f80 && (out[i] & 0x7f) != 0)
							<< "value " << (int)vrow[i] << " scale " << (int)sc;
					else
						ASSERT_EQ(want, out[i]) << "value " << (int)vrow[i] << " scale " << (int)sc;
				}
			}
		}
	}
}
