// SPDX-License-Identifier: Apache-2.0
// widen.cpp - fp16 / fp8-e4m3 / bf16 to float32.
#include "model/widen.hpp"

#include <cmath>
#include <immintrin.h>
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


#if defined(__x86_64__)
/* GCC 12 warns about the deliberately undefined source of some intrinsics. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// AVX-512: 16 e4m3 bytes at a time, computed rather than looked up. The magnitude bits
// shifted into a float32's exponent and mantissa ((byte & 0x7f) << 20), times 2^120, are
// the e4m3 value exactly (subnormals included: they land on float32 subnormals, which the
// multiply scales exactly); S.1111.111 is NaN; the sign is or'ed in. Then times the
// block's scale: the same two exact products as the table path, so the same bits.
__attribute__((target("avx512f"))) inline __m512 e4m3x16(const uint8_t *v, __m512 scale)
{
	const __m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(v)));
	const __m512i mag = _mm512_slli_epi32(_mm512_and_si512(x, _mm512_set1_epi32(0x7f)), 20);
	const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(x, _mm512_set1_epi32(0x80)), 24);
	__m512 f = _mm512_mul_ps(_mm512_castsi512_ps(mag), _mm512_set1_ps(0x1p120f));
	const __mmask16 nan = _mm512_cmpeq_epi32_mask(mag, _mm512_set1_epi32(0x7f << 20));
	f = _mm512_mask_mov_ps(f, nan, _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN()));
	f = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(f), sign));
	return _mm512_mul_ps(f, scale);
}

// floatToBf16 on 16 lanes: round to nearest even, a NaN kept quiet.
__attribute__((target("avx512f"))) inline __m256i bf16x16(__m512 v)
{
	const __m512i b = _mm512_castps_si512(v);
	const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, _mm512_set1_epi32(0x7fffffff)),
						      _mm512_set1_epi32(0x7f800000));
	const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
	__m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), odd), 16);
	r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40)));
	return _mm512_cvtepi32_epi16(r);
}

// One row: each block's 16-value vectors converted and handed to store(at, vector).
template <typename Store>
__attribute__((target("avx512f"))) inline void dequantFp8Rows(const RowFormat &f, const uint8_t *values,
							       const uint8_t *s, Store store)
{
	const float *e8m0 = fp8Tables().e8m0;
	for (uint32_t b = 0; b < f.scalesPerRow(); b++) {
		const __m512 scale = _mm512_set1_ps(e8m0[s[b]]);
		for (uint32_t i = 0; i < f.scaleBlock; i += 16) {
			size_t at = (size_t)b * f.scaleBlock + i;
			store(at, e4m3x16(values + at, scale));
		}
	}
}

__attribute__((target("avx512f"))) void dequantFp8Avx512(const RowFormat &f, const uint8_t *values,
							  const uint8_t *s, float *dst)
{
	dequantFp8Rows(f, values, s, [dst](size_t at, __m512 v) __attribute__((target("avx512f"))) {
		_mm512_storeu_ps(dst + at, v);
	});
}

__attribute__((target("avx512f"))) void dequantFp8Bf16Avx512(const RowFormat &f, const uint8_t *values,
							      const uint8_t *s, uint16_t *dst)
{
	dequantFp8Rows(f, values, s, [dst](size_t at, __m512 v) __attribute__((target("avx512f"))) {
		_mm256_storeu_si256(reinterpret_cast<__m256i *>(dst + at), bf16x16(v));
	});
}

#pragma GCC diagnostic pop

bool haveAvx512()
{
	static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"));
	return yes;
}
#else
bool haveAvx512() { return false; }
void dequantFp8Avx512(const RowFormat &, const uint8_t *, const uint8_t *, float *) {}
void dequantFp8Bf16Avx512(const RowFormat &, const uint8_t *, const uint8_t *, uint16_t *) {}
#endif

// fp8-e4m3 values with e8m0 scales in blocks of a multiple of 16: the vector path applies.
bool vectorFp8(const RowFormat &f)
{
	return f.dtype == Dtype::Fp8E4M3 && f.scaleDtype == Dtype::E8M0 && f.scalesPerRow() &&
	       f.scaleBlock % 16 == 0 && haveAvx512();
}

} // namespace

bool dequantizeIsVectorized(const RowFormat &f)
{
	return vectorFp8(f);
}

void dequantizeRowBf16(const RowFormat &f, const uint8_t *values, const uint8_t *scales, uint16_t *dst, float *scratch)
{
	if (vectorFp8(f)) {
		dequantFp8Bf16Avx512(f, values, scales, dst);
		return;
	}
	dequantizeRow(f, values, scales, scratch);
	for (uint32_t k = 0; k < f.valuesPerRow; k++)
		dst[k] = floatToBf16(scratch[k]);
}

void dequantizeRowBf16(const RowFormat &f, const uint8_t *row, uint16_t *dst, float *scratch)
{
	dequantizeRowBf16(f, row, row + f.valueBytes(), dst, scratch);
}

void dequantizeRow(const RowFormat &f, const uint8_t *values, const uint8_t *s, float *dst)
{
	const uint32_t scales = f.scalesPerRow();
	if (vectorFp8(f)) {
		dequantFp8Avx512(f, values, s, dst);
		return;
	}
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
