// SPDX-License-Identifier: Apache-2.0
// widen.cpp - fp16 / fp8-e4m3 / bf16 to float32.
#include "model/widen.hpp"

#include <cmath>
#include <limits>

namespace engrampool {

float fp16ToFloat(uint16_t h)
{
	uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
	float v;
	if (exp == 0)
		v = std::ldexp((float)mant, -24);
	else if (exp == 31)
		v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
	else
		v = std::ldexp((float)(mant | 0x400), (int)exp - 25);
	return sign ? -v : v;
}

float fp8e4m3ToFloat(uint8_t b)
{
	uint32_t sign = b >> 7, exp = (b >> 3) & 0xf, mant = b & 7;
	float v;
	if (exp == 15 && mant == 7)
		v = std::numeric_limits<float>::quiet_NaN();
	else if (exp == 0)
		v = std::ldexp((float)mant, -9); // subnormal: mant/8 * 2^-6
	else
		v = std::ldexp((float)(mant | 8), (int)exp - 10); // (1 + mant/8) * 2^(exp-7)
	return sign ? -v : v;
}

void widenToFloat(Dtype dtype, const uint8_t *src, size_t n, float *dst)
{
	for (size_t i = 0; i < n; i++) {
		switch (dtype) {
		case Dtype::Fp32: std::memcpy(&dst[i], src + 4 * i, 4); break;
		case Dtype::Bf16: {
			uint16_t v;
			std::memcpy(&v, src + 2 * i, 2);
			dst[i] = bf16ToFloat(v);
			break;
		}
		case Dtype::Fp16: {
			uint16_t v;
			std::memcpy(&v, src + 2 * i, 2);
			dst[i] = fp16ToFloat(v);
			break;
		}
		case Dtype::Fp8E4M3: dst[i] = fp8e4m3ToFloat(src[i]); break;
		case Dtype::E8M0: dst[i] = e8m0ToFloat(src[i]); break;
		default: dst[i] = 0; break;
		}
	}
}

float e8m0ToFloat(uint8_t e)
{
	if (e == 255)
		return std::numeric_limits<float>::quiet_NaN();
	return std::ldexp(1.0f, (int)e - 127);
}

void dequantizeRow(const RowFormat &f, const uint8_t *row, float *dst)
{
	dequantizeRow(f, row, row + f.valueBytes(), dst);
}

// Every fp8-e4m3 byte and every e8m0 scale byte as a float, computed once: a row is then
// table lookups and multiplies (a power of two times a float is exact, so the product
// equals ldexp(v, e - 127), including NaN and the subnormal range).
namespace {
struct Fp8Tables {
	float e4m3[256];
	float e8m0[256];
	Fp8Tables()
	{
		for (int b = 0; b < 256; b++) {
			e4m3[b] = fp8e4m3ToFloat((uint8_t)b);
			e8m0[b] = e8m0ToFloat((uint8_t)b);
		}
	}
};
const Fp8Tables &fp8Tables()
{
	static const Fp8Tables t;
	return t;
}
} // namespace

void dequantizeRow(const RowFormat &f, const uint8_t *values, const uint8_t *s, float *dst)
{
	const uint32_t scales = f.scalesPerRow();
	if (f.dtype == Dtype::Fp8E4M3 && f.scaleDtype == Dtype::E8M0 && scales) {
		const Fp8Tables &t = fp8Tables();
		for (uint32_t b = 0; b < scales; b++) {
			const float scale = t.e8m0[s[b]];
			const uint8_t *v = values + (size_t)b * f.scaleBlock;
			float *o = dst + (size_t)b * f.scaleBlock;
			for (uint32_t i = 0; i < f.scaleBlock; i++)
				o[i] = t.e4m3[v[i]] * scale;
		}
		return;
	}
	widenToFloat(f.dtype, values, f.valuesPerRow, dst);
	if (!scales)
		return;
	for (uint32_t b = 0; b < scales; b++) {
		float *v = dst + (size_t)b * f.scaleBlock;
		if (f.scaleDtype == Dtype::E8M0) {
			const float scale = fp8Tables().e8m0[s[b]];
			for (uint32_t i = 0; i < f.scaleBlock; i++)
				v[i] *= scale;
		} else {
			float scale;
			widenToFloat(f.scaleDtype, s + (size_t)b * dtypeBytes(f.scaleDtype), 1, &scale);
			for (uint32_t i = 0; i < f.scaleBlock; i++)
				v[i] *= scale;
		}
	}
}

} // namespace engrampool
