// SPDX-License-Identifier: Apache-2.0
// row_source.cpp - streaming file row sources: the pread engine, .npy sources, dispatch.
#include "io/row_source.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>

#include "io/npy.hpp"
#include "io/source_internal.hpp"

namespace engrampool::io {

namespace {

// Bounce buffer per read() call: large enough for sequential preads to run at disk
// speed, small enough that a 10 GB table never needs more than this in memory.
constexpr size_t kBounceBytes = 4u << 20;
// How far past each read the kernel is asked to read ahead (POSIX_FADV_WILLNEED), so the
// disk works on the next chunks while the importer copies, checksums and persists this
// one. Without it a cold import alternates between waiting for the disk and the CPU.
constexpr uint64_t kReadAheadBytes = 64ull << 20;

// Ask for [offset, offset + kReadAheadBytes) in the background; advice only, so a failure
// changes nothing.
void readAhead(int fd, uint64_t offset)
{
	(void)posix_fadvise(fd, (off_t)offset, (off_t)kReadAheadBytes, POSIX_FADV_WILLNEED);
}

class SegmentSource : public RowSource {
public:
	SegmentSource(std::vector<SourceFile> files, std::vector<RowSegment> segments,
		      const RowFormat &fmt, uint64_t rows, std::string description)
		: files_(std::move(files)), segments_(std::move(segments)), fmt_(fmt), rows_(rows),
		  description_(std::move(description))
	{
	}

	uint64_t rows() const override { return rows_; }
	std::string describe() const override { return description_; }

	// Stateless apart from the fds (pread), so callers may read disjoint ranges from
	// several threads at once.
	Status read(uint64_t first, uint64_t count, uint8_t *dst) override
	{
		if (first > rows_ || count > rows_ - first)
			return errorf(-EINVAL, "%s: rows [%llu, +%llu) outside the %llu rows of the source",
				      description_.c_str(), static_cast<unsigned long long>(first),
				      static_cast<unsigned long long>(count),
				      static_cast<unsigned long long>(rows_));
		if (count == 0)
			return Status::ok();
		const uint64_t stride = fmt_.rowStride();
		const uint64_t rowBytes = fmt_.rowBytes();

		if (segments_.size() == 1 && segments_[0].bytesPerRow == stride) {
			// File rows are laid out exactly as in the pool: read straight into place.
			const RowSegment &s = segments_[0];
			const SourceFile &f = files_[s.file];
			readAhead(f.fd.get(), s.fileOffset + (first + count) * stride);
			return preadFull(f.fd.get(), dst, count * stride, s.fileOffset + first * stride,
					 f.path);
		}

		size_t maxSeg = 0;
		for (const RowSegment &s : segments_)
			maxSeg = std::max<size_t>(maxSeg, s.bytesPerRow);
		uint64_t chunkRows = std::max<uint64_t>(1, kBounceBytes / maxSeg);
		chunkRows = std::min(chunkRows, count);
		std::unique_ptr<uint8_t[]> buf(new uint8_t[chunkRows * maxSeg]);

		for (const RowSegment &s : segments_)
			readAhead(files_[s.file].fd.get(), s.fileOffset + (first + count) * s.bytesPerRow);
		for (const RowSegment &s : segments_) {
			const SourceFile &f = files_[s.file];
			for (uint64_t done = 0; done < count; done += chunkRows) {
				uint64_t n = std::min(chunkRows, count - done);
				EP_TRY(preadFull(f.fd.get(), buf.get(), n * s.bytesPerRow,
						 s.fileOffset + (first + done) * s.bytesPerRow, f.path));
				const uint8_t *src = buf.get();
				uint8_t *out = dst + done * stride + s.dstOffset;
				for (uint64_t r = 0; r < n; r++) {
					std::memcpy(out, src, s.bytesPerRow);
					src += s.bytesPerRow;
					out += stride;
				}
			}
		}
		if (stride > rowBytes) {
			for (uint64_t r = 0; r < count; r++)
				std::memset(dst + r * stride + rowBytes, 0, stride - rowBytes);
		}
		return Status::ok();
	}

	// Values and scales from two segments (safetensors' two tensors, or .npy values +
	// scales files): each lands in its own plane with one pread per plane.
	bool readsPlanes() const override
	{
		return segments_.size() == 2 && segments_[0].dstOffset == 0 &&
		       segments_[0].bytesPerRow == fmt_.valueBytes() && segments_[1].dstOffset == fmt_.valueBytes() &&
		       segments_[1].bytesPerRow == fmt_.scaleBytes() && fmt_.scaleBytes() != 0;
	}

	Status readPlanes(uint64_t first, uint64_t count, uint8_t *values, uint8_t *scales) override
	{
		if (!readsPlanes())
			return RowSource::readPlanes(first, count, values, scales);
		if (first > rows_ || count > rows_ - first)
			return errorf(-EINVAL, "%s: rows [%llu, +%llu) outside the %llu rows of the source",
				      description_.c_str(), static_cast<unsigned long long>(first),
				      static_cast<unsigned long long>(count),
				      static_cast<unsigned long long>(rows_));
		uint8_t *dst[2] = {values, scales};
		for (int i = 0; i < 2; i++) {
			const RowSegment &s = segments_[i];
			const SourceFile &f = files_[s.file];
			readAhead(f.fd.get(), s.fileOffset + (first + count) * s.bytesPerRow);
			EP_TRY(preadFull(f.fd.get(), dst[i], count * s.bytesPerRow, s.fileOffset + first * s.bytesPerRow,
					 f.path));
		}
		return Status::ok();
	}

private:
	std::vector<SourceFile> files_;
	std::vector<RowSegment> segments_;
	RowFormat fmt_;
	uint64_t rows_;
	std::string description_;
};

bool endsWith(const std::string &s, const char *suffix)
{
	size_t n = std::strlen(suffix);
	return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// The .npy spellings of each row dtype. numpy has no bf16 or fp8 of its own:
// ml_dtypes arrays save as raw void ('|V2', '|V1'), and people often view them as
// unsigned integers first, so both are accepted.
bool npyDescrMatches(Dtype d, const std::string &descr)
{
	if (descr.size() < 3)
		return false;
	char order = descr[0];
	std::string rest = descr.substr(1);
	bool little = order == '<' || order == '=' || order == '|';
	switch (d) {
	case Dtype::Fp32:
		return little && rest == "f4";
	case Dtype::Fp16:
		return little && rest == "f2";
	case Dtype::Bf16:
		return little && (rest == "u2" || rest == "i2" || rest == "V2");
	case Dtype::Fp8E4M3:
	case Dtype::E8M0:
		return rest == "u1" || rest == "i1" || rest == "V1";
	case Dtype::None:
		return false;
	}
	return false;
}

bool npyIsBytes(const std::string &descr)
{
	return descr.size() == 3 && (descr.substr(1) == "u1" || descr.substr(1) == "i1");
}

const char *npyDtypeName(Dtype d)
{
	switch (d) {
	case Dtype::Fp32: return "float32";
	case Dtype::Fp16: return "float16";
	case Dtype::Bf16: return "bfloat16 ('<u2' or '|V2')";
	case Dtype::Fp8E4M3: return "float8_e4m3 ('|u1')";
	case Dtype::E8M0: return "e8m0 ('|u1')";
	case Dtype::None: return "none";
	}
	return "unknown";
}

std::string dims(uint64_t a, uint64_t b)
{
	return shapeString({a, b});
}

Status npyShapeError(const std::string &path, const std::string &expected, const NpyHeader &h)
{
	return makeError(EP_E_SHAPE, "'" + path + "': expected " + expected + ", found " +
					     shapeString(h.shape) + " " + h.descr);
}

} // namespace

std::unique_ptr<RowSource> makeSegmentSource(std::vector<SourceFile> files,
					     std::vector<RowSegment> segments, const RowFormat &fmt,
					     uint64_t rows, std::string description)
{
	return std::make_unique<SegmentSource>(std::move(files), std::move(segments), fmt, rows,
					       std::move(description));
}

Result<std::unique_ptr<RowSource>> openNpySource(const SourceSpec &spec, const RowFormat &fmt,
						 uint64_t expectedRows)
{
	auto h = readNpyHeader(spec.path);
	if (!h)
		return h.status();
	if (h->fortranOrder)
		return makeError(EP_E_SHAPE, "'" + spec.path +
						     "': Fortran-order arrays are not supported "
						     "(save np.ascontiguousarray(a) instead)");
	if (h->shape.size() != 2 || h->shape[0] == 0)
		return npyShapeError(spec.path, "a 2-D array of rows", *h);
	const uint64_t rows = expectedRows ? expectedRows : h->shape[0];

	bool values = h->shape[0] == rows && h->shape[1] == fmt.valuesPerRow &&
		      npyDescrMatches(fmt.dtype, h->descr);
	bool packed = h->shape[0] == rows && h->shape[1] == fmt.rowBytes() && npyIsBytes(h->descr);
	if (!values && !packed) {
		std::string expected = dims(rows, fmt.valuesPerRow) + " " + npyDtypeName(fmt.dtype);
		expected += " (or pre-packed " + dims(rows, fmt.rowBytes()) + " uint8)";
		return npyShapeError(spec.path, expected, *h);
	}
	// Without a scale block and with 1-byte values the two readings coincide.
	if (!values || fmt.scaleBlock == 0) {
		if (!spec.scalePath.empty())
			return makeError(-EINVAL, "'" + spec.scalePath + "': a scales file was given, but " +
							  (fmt.scaleBlock ? "'" + spec.path +
									 "' already holds packed rows with scales"
								       : "row format " + fmt.describe() +
									 " has no scale block"));
	}

	std::vector<SourceFile> files;
	std::vector<RowSegment> segments;
	auto fd = openReadOnly(spec.path);
	if (!fd)
		return fd.status();
	files.push_back({std::move(*fd), spec.path});
	std::string desc = "npy '" + spec.path + "' " + shapeString(h->shape) + " " + h->descr;

	if (values) {
		segments.push_back({0, h->dataOffset, fmt.valueBytes(), 0});
	} else {
		segments.push_back({0, h->dataOffset, fmt.rowBytes(), 0});
		desc += " (packed rows)";
	}

	if (values && fmt.scaleBlock) {
		std::string expected = dims(rows, fmt.scalesPerRow()) + " " + npyDtypeName(fmt.scaleDtype);
		if (spec.scalePath.empty())
			return makeError(-EINVAL, "row format " + fmt.describe() +
							  " has a scale block: give the scales .npy (" +
							  expected + ") as well");
		auto sh = readNpyHeader(spec.scalePath);
		if (!sh)
			return sh.status();
		if (sh->fortranOrder)
			return makeError(EP_E_SHAPE, "'" + spec.scalePath +
							     "': Fortran-order arrays are not supported");
		if (sh->shape.size() != 2 || sh->shape[0] != rows || sh->shape[1] != fmt.scalesPerRow() ||
		    !npyDescrMatches(fmt.scaleDtype, sh->descr))
			return npyShapeError(spec.scalePath, expected, *sh);
		auto sfd = openReadOnly(spec.scalePath);
		if (!sfd)
			return sfd.status();
		files.push_back({std::move(*sfd), spec.scalePath});
		segments.push_back({1, sh->dataOffset, fmt.scaleBytes(), fmt.valueBytes()});
		desc += " + scales '" + spec.scalePath + "' " + shapeString(sh->shape) + " " + sh->descr;
	}
	return makeSegmentSource(std::move(files), std::move(segments), fmt, rows, std::move(desc));
}

Result<std::unique_ptr<RowSource>> openFileSource(const SourceSpec &spec, const RowFormat &fmt,
						  uint64_t expectedRows)
{
	EP_TRY(fmt.validate());
	if (spec.path.empty())
		return errorf(-EINVAL, "no source file given");
	if (endsWith(spec.path, ".npy"))
		return openNpySource(spec, fmt, expectedRows);
	if (endsWith(spec.path, ".safetensors"))
		return openSafetensorsSource(spec, fmt, expectedRows);

	// Unusual names: tell the formats apart by their first bytes.
	auto fd = openReadOnly(spec.path);
	if (!fd)
		return fd.status();
	uint8_t head[9] = {};
	auto size = fileSize(fd->get(), spec.path);
	if (size && *size >= sizeof(head) &&
	    preadFull(fd->get(), head, sizeof(head), 0, spec.path).isOk()) {
		if (std::memcmp(head, "\x93NUMPY", 6) == 0)
			return openNpySource(spec, fmt, expectedRows);
		if (head[8] == '{')
			return openSafetensorsSource(spec, fmt, expectedRows);
	}
	return makeError(-EINVAL, "'" + spec.path +
					  "': unknown source format (expected a .npy or .safetensors file)");
}

} // namespace engrampool::io
