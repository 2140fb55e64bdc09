// SPDX-License-Identifier: Apache-2.0
// widen.hpp - decode stored value dtypes to float32 (for tools: lookup dumps, checks).
// The agent converts rows only when a caller asks for f32/bf16 output (EP_AGENT_OUT);
// lookup's float32 output and ep_pool_read_rows_as use the same functions.
#pragma once

#include <cstdint>
#include <cstring>

#include "model/row_format.hpp"

namespace engrampool {

inline float bf16ToFloat(uint16_t v)
{
	uint32_t b = (uint32_t)v << 16;
	float f;
	std::memcpy(&f, &b, 4);
	return f;
}

float fp16ToFloat(uint16_t v);
// OCP FP8 E4M3 (the "fn" variant: no infinities, S.1111.111 is NaN).
float fp8e4m3ToFloat(uint8_t v);
// Widen n values of dtype at src to float32 at dst (fp32 copied).
void widenToFloat(Dtype dtype, const uint8_t *src, size_t n, float *dst);
// OCP MX E8M0 scale: 2^(e - 127) for e in 0..254 (0 gives 2^-127, a float32 subnormal,
// exact); 255 is NaN. There is no sign and no zero.
float e8m0ToFloat(uint8_t e);
// One packed row of format f (values, then the scale block) to f.valuesPerRow float32:
// value i times the scale of its block i / scaleBlock (scales of dtype E8M0 or FP32;
// for DeepSeek-V4.1: e4m3 x 2^(e - 127) per block of 32). A format without a scale
// block is widened as it is. Each product is exact unless it overflows float32 (inf) or
// the scale is NaN (NaN). What `lookup` writes by default, and the agent's f32/bf16 output.
void dequantizeRow(const RowFormat &f, const uint8_t *row, float *dst);
// The same with the values and the scale block apart (a planar table's two planes).
void dequantizeRow(const RowFormat &f, const uint8_t *values, const uint8_t *scales, float *dst);
// The same as bf16 (floatToBf16 of each float32): `scratch` holds f.valuesPerRow floats
// for formats without the vector path (see dequantizeIsVectorized).
void dequantizeRowBf16(const RowFormat &f, const uint8_t *row, uint16_t *dst, float *scratch);
void dequantizeRowBf16(const RowFormat &f, const uint8_t *values, const uint8_t *scales, uint16_t *dst,
		       float *scratch);
// True where this CPU dequantizes f with AVX-512 (fp8-e4m3 with e8m0 scales in blocks of
// a multiple of 16): the same bits as the table path, 16 values per step.
bool dequantizeIsVectorized(const RowFormat &f);
// float32 -> bf16, rounding to nearest (ties to even); a NaN stays a quiet NaN. Inline:
// the agent's bf16 output converts every value of every row.
inline uint16_t floatToBf16(float v)
{
	uint32_t b;
	std::memcpy(&b, &v, 4);
	if ((b & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((b >> 16) | 0x40u);
	b += 0x7fffu + ((b >> 16) & 1u);
	return (uint16_t)(b >> 16);
}

} // namespace engrampool
