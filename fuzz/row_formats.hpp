// SPDX-License-Identifier: Apache-2.0
// row_formats.hpp - the small row formats the file-source fuzz targets open their input with.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "io/row_source.hpp"
#include "model/row_format.hpp"

namespace fuzz {

inline engrampool::RowFormat rowFormat(uint8_t sel)
{
	using engrampool::Dtype;
	engrampool::RowFormat f;
	switch (sel % 8) {
	case 0: f.dtype = Dtype::Fp32; f.valuesPerRow = 4; break;
	case 1: f.dtype = Dtype::Bf16; f.valuesPerRow = 8; break;
	case 2: f.dtype = Dtype::Fp16; f.valuesPerRow = 4; f.rowAlign = 16; break;
	case 3: f.dtype = Dtype::Fp8E4M3; f.valuesPerRow = 32; f.scaleDtype = Dtype::E8M0; f.scaleBlock = 16; break;
	case 4: f.dtype = Dtype::Fp8E4M3; f.valuesPerRow = 16; break;
	case 5: f.dtype = Dtype::Fp32; f.valuesPerRow = 1; break;
	case 6: f.dtype = Dtype::Bf16; f.valuesPerRow = 4; f.scaleDtype = Dtype::E8M0; f.scaleBlock = 2; f.rowAlign = 64; break;
	default: f.dtype = Dtype::E8M0; f.valuesPerRow = 3; break;
	}
	return f;
}

// Read the first rows, a middle row and the last row of a source that opened.
inline void readSomeRows(engrampool::io::RowSource &src, const engrampool::RowFormat &f)
{
	uint64_t rows = src.rows();
	uint64_t stride = f.rowStride();
	if (rows == 0 || stride == 0)
		return;
	uint64_t n = std::min<uint64_t>(rows, 16);
	std::vector<uint8_t> buf(n * stride);
	(void)src.read(0, n, buf.data());
	(void)src.read(rows / 2, 1, buf.data());
	(void)src.read(rows - 1, 1, buf.data());
	(void)src.read(rows, 1, buf.data());     // one past the end: an error, not a read
	(void)src.read(rows - 1, 2, buf.data()); // straddles the end
}

} // namespace fuzz
