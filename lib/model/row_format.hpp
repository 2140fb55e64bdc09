// SPDX-License-Identifier: Apache-2.0
// row_format.hpp - how one table row is packed: value dtype, values, optional scale block.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <engrampool/engrampool.h>

#include "util/status.hpp"

namespace engrampool {

enum class Dtype : uint32_t {
	None = EP_DTYPE_NONE,
	Fp32 = EP_DTYPE_FP32,
	Bf16 = EP_DTYPE_BF16,
	Fp16 = EP_DTYPE_FP16,
	Fp8E4M3 = EP_DTYPE_FP8_E4M3,
	E8M0 = EP_DTYPE_E8M0,
};

uint32_t dtypeBytes(Dtype d);
const char *dtypeName(Dtype d);
// Accepts "fp32"/"float32", "bf16"/"bfloat16", "fp16"/"float16", "fp8-e4m3"/"fp8_e4m3"/"float8_e4m3fn", "e8m0".
Result<Dtype> parseDtype(std::string_view s);

// Rows are opaque packed bytes: values_per_row values of `dtype`, then (optionally)
// scales_per_row scales of `scaleDtype`, one per `scaleBlock` values. Padding to a
// multiple of rowAlign bytes only when asked (rowAlign 0 or 1 = packed).
struct RowFormat {
	Dtype dtype = Dtype::Fp32;
	uint32_t valuesPerRow = 0;
	Dtype scaleDtype = Dtype::None;
	uint32_t scaleBlock = 0;   // values per scale; 0 = no scale block
	uint32_t rowAlign = 0;

	uint32_t scalesPerRow() const { return scaleBlock ? valuesPerRow / scaleBlock : 0; }
	uint32_t valueBytes() const { return valuesPerRow * dtypeBytes(dtype); }
	uint32_t scaleBytes() const { return scalesPerRow() * dtypeBytes(scaleDtype); }
	uint32_t rowBytes() const { return valueBytes() + scaleBytes(); }
	uint32_t rowStride() const
	{
		uint32_t b = rowBytes();
		return rowAlign > 1 ? (b + rowAlign - 1) / rowAlign * rowAlign : b;
	}
	Status validate() const;
	std::string describe() const; // e.g. "fp8-e4m3 x256 + e8m0 x8 = 264 B"
};

} // namespace engrampool
