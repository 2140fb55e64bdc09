// SPDX-License-Identifier: Apache-2.0
// row_source.hpp - where an import's rows come from: .npy, .safetensors, or --random.
//
// A source yields rows already packed in the table's RowFormat (values then scale
// block, padded to rowStride when the format asks). read() writes straight into pool
// memory; the importer calls it from several threads at once for disjoint row ranges,
// so a source keeps no per-call state outside the call (pread, not read).
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "model/row_format.hpp"
#include "util/status.hpp"

namespace engrampool::io {

class RowSource {
public:
	virtual ~RowSource() = default;
	virtual uint64_t rows() const = 0;
	// Write rows [first, first+count) at dst, rowStride bytes apart. Errors name the file.
	virtual Status read(uint64_t first, uint64_t count, uint8_t *dst) = 0;
	// Sources whose values and scales sit in separate tensors can also write the two
	// planes of a planar table directly (values [count][valueBytes] at `values`, scales
	// [count][scaleBytes] at `scales`, exact pitch): no bounce copy. Others return false
	// and the importer splits packed rows itself.
	virtual bool readsPlanes() const { return false; }
	virtual Status readPlanes(uint64_t first, uint64_t count, uint8_t *values, uint8_t *scales)
	{
		(void)first, (void)count, (void)values, (void)scales;
		return makeError(-ENOTSUP, describe() + ": cannot read values and scales as planes");
	}
	virtual std::string describe() const = 0;
};

struct SourceSpec {
	std::string path;              // .npy or .safetensors
	std::string tensor;            // safetensors: weight tensor name (optional if only one)
	std::string scaleTensor;       // safetensors: scale tensor (formats with a scale block)
	std::string scalePath;         // npy: separate scales file (formats with a scale block)
};

// Opens the file, checks dtype and shape against `fmt` and `expectedRows`; a mismatch
// is EP_E_SHAPE naming expected and found shapes. A truncated file is an error here,
// before anything is written.
Result<std::unique_ptr<RowSource>> openFileSource(const SourceSpec &spec, const RowFormat &fmt,
						  uint64_t expectedRows);

// Deterministic pseudo-random rows: row r's bytes depend only on (seed, r, fmt).
std::unique_ptr<RowSource> makeRandomSource(const RowFormat &fmt, uint64_t rows, uint64_t seed);
// The bytes makeRandomSource writes for one row (rowStride bytes), for verification.
void randomRow(const RowFormat &fmt, uint64_t seed, uint64_t row, uint8_t *dst);

} // namespace engrampool::io
