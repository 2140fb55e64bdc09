// SPDX-License-Identifier: Apache-2.0
// source_internal.hpp - private plumbing shared by the .npy and .safetensors row sources.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/file_util.hpp"
#include "io/row_source.hpp"

namespace engrampool::io {

// One run of bytes per row inside a file: row r's bytes are at
// fileOffset + r * bytesPerRow and land at dstOffset within the packed row.
// A source has one segment (values, or pre-packed rows) or two (values, scales).
struct RowSegment {
	size_t file = 0;          // index into the source's files
	uint64_t fileOffset = 0;
	uint32_t bytesPerRow = 0;
	uint32_t dstOffset = 0;
};

struct SourceFile {
	FileFd fd;
	std::string path;
};

// A source that streams segments out of files with pread; the segments must tile
// [0, fmt.rowBytes()) and every file must already be checked to hold all rows.
std::unique_ptr<RowSource> makeSegmentSource(std::vector<SourceFile> files,
					     std::vector<RowSegment> segments, const RowFormat &fmt,
					     uint64_t rows, std::string description);

// One tensor of a safetensors file; [begin, end) are absolute file offsets, already
// checked to lie inside the file and (for known dtypes) to match dtype x shape.
struct StTensor {
	std::string dtype;
	std::vector<uint64_t> shape;
	uint64_t begin = 0;
	uint64_t end = 0;
};

struct SafetensorsFile {
	FileFd fd;
	std::string path;
	uint64_t size = 0;
	std::map<std::string, StTensor> tensors;
};

// Parse the (untrusted) header of a safetensors file. A truncated file (a tensor's
// data past its end) is refused here, naming the tensor and both sizes.
Result<SafetensorsFile> readSafetensors(const std::string &path);
// "[3, 4] F8_E4M3" and "a, b, ... (n more)" for messages.
std::string stTensorString(const StTensor &t);
std::string stNameList(const std::map<std::string, StTensor> &tensors);

Result<std::unique_ptr<RowSource>> openNpySource(const SourceSpec &spec, const RowFormat &fmt,
						 uint64_t expectedRows);
Result<std::unique_ptr<RowSource>> openSafetensorsSource(const SourceSpec &spec,
							 const RowFormat &fmt,
							 uint64_t expectedRows);

} // namespace engrampool::io
