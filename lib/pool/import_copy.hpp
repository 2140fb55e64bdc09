// SPDX-License-Identifier: Apache-2.0
// import_copy.hpp - moving an import's rows from its source into the pool's free extent.
//
// Several threads read disjoint chunks of rows straight into pool memory (packed rows,
// or the two planes of a planar table) and persist them; the calling thread follows in
// row order computing the table's checksum (XXH3-64 of the table's bytes: packed, the
// rows at their stride, padding included; planar, the rows packed without padding,
// values then scales, so a table of unpadded rows has one checksum in either layout)
// and reporting progress. Memory stays bounded
// (one bounce buffer per thread, only where a source cannot write planes itself), and
// nothing here touches the catalog: the caller publishes after it returns.
#pragma once

#include <cstdint>
#include <functional>

#include "io/row_source.hpp"
#include "model/row_format.hpp"
#include "util/status.hpp"

namespace engrampool {

struct ImportCopy {
	const RowFormat *format = nullptr;
	uint64_t rows = 0;
	bool planar = false;
	uint8_t *data = nullptr;      // packed: row r at data + r * stride; planar: values plane
	uint64_t stride = 0;          // packed: the row stride
	uint8_t *scales = nullptr;    // planar: scales plane
	uint32_t threads = 0;         // 0: one per CPU, at most 4
	uint64_t chunkRows = 0;       // rows per read; 0: about 8 MiB
	std::function<void(uint64_t rowsDone)> progress;         // row order, calling thread
	std::function<void(const void *p, size_t len)> persist;  // any copy thread; may be empty
};

// Returns the checksum, or the first error (in row order) with nothing else changed
// outside the extent.
Result<uint64_t> copyImportRows(const ImportCopy &c, io::RowSource &src);

} // namespace engrampool
