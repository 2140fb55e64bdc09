// SPDX-License-Identifier: Apache-2.0
// npy.hpp - NumPy .npy files: header parsing (untrusted input) and typed loading.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.hpp"

namespace engrampool::io {

struct NpyHeader {
	std::string descr;            // e.g. "<f4", "<i8", "|u1", "<f2", "<u2"
	bool fortranOrder = false;
	std::vector<uint64_t> shape;
	uint64_t dataOffset = 0;      // bytes from the start of the file to the data
	uint32_t itemSize = 0;        // bytes per element, from descr
	uint64_t elements() const;    // product of shape (1 for a scalar)
};

// Parse the header of an .npy file held in [data, data+len). Never reads past len;
// every malformed input is a clear error (-EINVAL / EP_E_SHAPE).
Result<NpyHeader> parseNpyHeader(const uint8_t *data, size_t len);
// Read and parse the header of a file; also checks the file holds all the data.
Result<NpyHeader> readNpyHeader(const std::string &path);
// Write a C-order array: descr ("<f4", "<f2", "<i8", ...), shape, raw little-endian data.
Status writeNpy(const std::string &path, const std::string &descr, const std::vector<uint64_t> &shape,
		const void *data, size_t bytes);
// Load a 1-D int64 array (little-endian "<i8"; also accepts "<i4"/"<u4" widened).
Result<std::vector<int64_t>> loadNpyInt64(const std::string &path);

} // namespace engrampool::io
