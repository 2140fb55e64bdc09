// SPDX-License-Identifier: Apache-2.0
// source_internal.hpp - private plumbing shared by the .npy and .safetensors row sources.
#pragma once

#include <cstdint>
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

Result<std::unique_ptr<RowSource>> openNpySource(const SourceSpec &spec, const RowFormat &fmt,
						 uint64_t expectedRows);
Result<std::unique_ptr<RowSource>> openSafetensorsSource(const SourceSpec &spec,
							 const RowFormat &fmt,
							 uint64_t expectedRows);

} // namespace engrampool::io
