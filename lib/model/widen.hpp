// SPDX-License-Identifier: Apache-2.0
// widen.hpp - decode stored value dtypes to float32 (for tools: lookup dumps, checks).
// The data path never converts rows; dequantisation is the model's job.
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

} // namespace engrampool
