// SPDX-License-Identifier: Apache-2.0
// row_format.cpp - dtype names and sizes, row format validation and description.
#include "model/row_format.hpp"

#include <cctype>
#include <cerrno>

namespace engrampool {

uint32_t dtypeBytes(Dtype d)
{
	switch (d) {
	case Dtype::Fp32: return 4;
	case Dtype::Bf16: return 2;
	case Dtype::Fp16: return 2;
	case Dtype::Fp8E4M3: return 1;
	case Dtype::E8M0: return 1;
	case Dtype::None: return 0;
	}
	return 0;
}

const char *dtypeName(Dtype d)
{
	switch (d) {
	case Dtype::Fp32: return "fp32";
	case Dtype::Bf16: return "bf16";
	case Dtype::Fp16: return "fp16";
	case Dtype::Fp8E4M3: return "fp8-e4m3";
	case Dtype::E8M0: return "e8m0";
	case Dtype::None: return "none";
	}
	return "unknown";
}

Result<Dtype> parseDtype(std::string_view s)
{
	std::string l;
	for (char c : s)
		l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
	if (l == "fp32" || l == "float32")
		return Dtype::Fp32;
	if (l == "bf16" || l == "bfloat16")
		return Dtype::Bf16;
	if (l == "fp16" || l == "float16")
		return Dtype::Fp16;
	if (l == "fp8-e4m3" || l == "fp8_e4m3" || l == "float8_e4m3fn")
		return Dtype::Fp8E4M3;
	if (l == "e8m0")
		return Dtype::E8M0;
	return errorf(-EINVAL, "unknown dtype '%.*s' (expected fp32, bf16, fp16, fp8-e4m3 or e8m0)",
		      static_cast<int>(s.size()), s.data());
}

Status RowFormat::validate() const
{
	if (dtype == Dtype::None || dtypeBytes(dtype) == 0)
		return errorf(-EINVAL, "row format: value dtype is not set");
	if (valuesPerRow == 0)
		return errorf(-EINVAL, "row format: values per row must be > 0");
	if (scaleBlock > 0) {
		if (scaleDtype == Dtype::None || dtypeBytes(scaleDtype) == 0)
			return errorf(-EINVAL, "row format: scale block of %u values but no scale dtype",
				      scaleBlock);
		if (valuesPerRow % scaleBlock != 0)
			return errorf(-EINVAL, "row format: scale block %u does not divide %u values per row",
				      scaleBlock, valuesPerRow);
	} else if (scaleDtype != Dtype::None) {
		return errorf(-EINVAL, "row format: scale dtype %s set without a scale block",
			      dtypeName(scaleDtype));
	}
	if (rowAlign & (rowAlign - 1))
		return errorf(-EINVAL, "row format: row alignment %u is not a power of two", rowAlign);
	// The byte accessors are 32-bit; refuse formats whose padded row would wrap.
	uint64_t bytes = uint64_t(valuesPerRow) * dtypeBytes(dtype) +
			 (scaleBlock ? uint64_t(valuesPerRow / scaleBlock) * dtypeBytes(scaleDtype) : 0);
	uint64_t stride = rowAlign > 1 ? (bytes + rowAlign - 1) / rowAlign * rowAlign : bytes;
	if (stride > (1ull << 30))
		return errorf(-EINVAL, "row format: %llu-byte rows are too large",
			      static_cast<unsigned long long>(stride));
	return Status::ok();
}

std::string RowFormat::describe() const
{
	std::string s = std::string(dtypeName(dtype)) + " x" + std::to_string(valuesPerRow);
	if (scaleBlock > 0)
		s += std::string(" + ") + dtypeName(scaleDtype) + " x" + std::to_string(scalesPerRow());
	s += " = " + std::to_string(rowBytes()) + " B";
	if (rowStride() != rowBytes())
		s += " (stride " + std::to_string(rowStride()) + " B)";
	return s;
}

} // namespace engrampool
