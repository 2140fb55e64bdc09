// SPDX-License-Identifier: Apache-2.0
// safetensors.cpp - .safetensors row source: untrusted header, weight + scale tensors packed.
#include <algorithm>
#include <cerrno>
#include <limits>
#include <map>

#include <nlohmann/json.hpp>

#include "io/source_internal.hpp"

namespace engrampool::io {

namespace {

using json = nlohmann::json;

// The safetensors format caps its header at 100 MB; honour that before allocating.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

using TensorInfo = StTensor; // offsets relative to the data buffer while parsing

// Element sizes of the safetensors dtypes; 0 for unknown ones (still bounds-checked).
uint32_t stDtypeBytes(const std::string &d)
{
	static const std::map<std::string, uint32_t> sizes = {
		{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
		{"I16", 2}, {"I8", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1},
		{"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1},
	};
	auto it = sizes.find(d);
	return it == sizes.end() ? 0 : it->second;
}

// Which safetensors dtypes hold each row dtype. Integer views of the same width are
// accepted because checkpoints converted with older tools store fp8/e8m0 as U8.
bool stDtypeMatches(Dtype d, const std::string &s)
{
	switch (d) {
	case Dtype::Fp32: return s == "F32";
	case Dtype::Fp16: return s == "F16";
	case Dtype::Bf16: return s == "BF16" || s == "U16" || s == "I16";
	case Dtype::Fp8E4M3: return s == "F8_E4M3" || s == "U8" || s == "I8";
	case Dtype::E8M0: return s == "F8_E8M0" || s == "U8" || s == "I8";
	case Dtype::None: return false;
	}
	return false;
}

const char *stDtypeName(Dtype d)
{
	switch (d) {
	case Dtype::Fp32: return "F32";
	case Dtype::Fp16: return "F16";
	case Dtype::Bf16: return "BF16";
	case Dtype::Fp8E4M3: return "F8_E4M3";
	case Dtype::E8M0: return "F8_E8M0";
	case Dtype::None: return "none";
	}
	return "unknown";
}

Status parseTensor(const std::string &path, const std::string &name, const json &v,
		   uint64_t dataBytes, TensorInfo &t)
{
	auto bad = [&](const std::string &why) {
		return makeError(-EINVAL, "'" + path + "': tensor '" + name + "': " + why);
	};
	if (!v.is_object())
		return bad("entry is not an object");
	auto d = v.find("dtype");
	auto s = v.find("shape");
	auto o = v.find("data_offsets");
	if (d == v.end() || !d->is_string())
		return bad("missing or non-string 'dtype'");
	if (s == v.end() || !s->is_array() || s->size() > 32)
		return bad("missing or invalid 'shape'");
	if (o == v.end() || !o->is_array() || o->size() != 2)
		return bad("missing or invalid 'data_offsets'");
	t.dtype = d->get<std::string>();
	for (const json &dim : *s) {
		if (!dim.is_number_unsigned())
			return bad("shape holds a non-integer or negative dimension");
		t.shape.push_back(dim.get<uint64_t>());
	}
	if (!(*o)[0].is_number_unsigned() || !(*o)[1].is_number_unsigned())
		return bad("data_offsets are not non-negative integers");
	t.begin = (*o)[0].get<uint64_t>();
	t.end = (*o)[1].get<uint64_t>();
	if (t.begin > t.end || t.end > dataBytes)
		return bad("data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
			   ") lie outside the " + std::to_string(dataBytes) + " data bytes of the file (truncated?)");
	if (uint32_t es = stDtypeBytes(t.dtype)) {
		uint64_t n = es;
		for (uint64_t dim : t.shape) {
			if (dim != 0 && n > std::numeric_limits<uint64_t>::max() / dim)
				return bad("shape is too large");
			n *= dim;
		}
		if (n != t.end - t.begin)
			return bad("shape " + shapeString(t.shape) + " " + t.dtype + " needs " +
				   std::to_string(n) + " bytes, data_offsets span " +
				   std::to_string(t.end - t.begin));
	}
	return Status::ok();
}

} // namespace

std::string stNameList(const std::map<std::string, StTensor> &tensors)
{
	// A whole checkpoint has thousands of tensors; a few names are enough to go on.
	constexpr size_t kShown = 16;
	std::string s;
	size_t i = 0;
	for (const auto &[name, t] : tensors) {
		if (i == kShown) {
			s += ", ... (" + std::to_string(tensors.size() - kShown) + " more)";
			break;
		}
		if (i++)
			s += ", ";
		s += name;
	}
	return s.empty() ? "(none)" : s;
}

std::string stTensorString(const StTensor &t)
{
	return shapeString(t.shape) + " " + t.dtype;
}

namespace {

std::string nameList(const std::map<std::string, TensorInfo> &tensors)
{
	return stNameList(tensors);
}

bool looksLikeScale(const std::string &name)
{
	return name.find("scale") != std::string::npos;
}

std::string tensorString(const TensorInfo &t)
{
	return stTensorString(t);
}

} // namespace

Result<SafetensorsFile> readSafetensors(const std::string &path)
{
	SafetensorsFile out;
	out.path = path;
	auto fd = openReadOnly(path);
	if (!fd)
		return fd.status();
	auto size = fileSize(fd->get(), path);
	if (!size)
		return size.status();
	out.size = *size;
	if (*size < 8)
		return makeError(-EINVAL, "'" + path + "': not a safetensors file (" +
						  std::to_string(*size) + " bytes)");
	uint8_t lenBytes[8];
	EP_TRY(preadFull(fd->get(), lenBytes, 8, 0, path));
	uint64_t headerLen = 0;
	for (int i = 7; i >= 0; i--)
		headerLen = headerLen << 8 | lenBytes[i];
	if (headerLen < 2 || headerLen > kMaxHeaderBytes || headerLen > *size - 8)
		return makeError(-EINVAL, "'" + path + "': safetensors header length " +
						  std::to_string(headerLen) + " is invalid for a " +
						  std::to_string(*size) + "-byte file");
	std::string text(headerLen, '\0');
	EP_TRY(preadFull(fd->get(), text.data(), headerLen, 8, path));
	json hdr = json::parse(text, nullptr, false);
	if (hdr.is_discarded() || !hdr.is_object())
		return makeError(-EINVAL, "'" + path + "': safetensors header is not a JSON object");

	const uint64_t dataStart = 8 + headerLen;
	const uint64_t dataBytes = *size - dataStart;
	for (auto it = hdr.begin(); it != hdr.end(); ++it) {
		if (it.key() == "__metadata__")
			continue;
		TensorInfo t;
		EP_TRY(parseTensor(path, it.key(), it.value(), dataBytes, t));
		t.begin += dataStart;
		t.end += dataStart;
		out.tensors.emplace(it.key(), std::move(t));
	}
	out.fd = std::move(*fd);
	return out;
}

Result<std::unique_ptr<RowSource>> openSafetensorsSource(const SourceSpec &spec,
							 const RowFormat &fmt,
							 uint64_t expectedRows)
{
	const std::string &path = spec.path;
	auto file = readSafetensors(path);
	if (!file)
		return file.status();
	const std::map<std::string, TensorInfo> &tensors = file->tensors;
	const uint64_t dataStart = 0; // offsets are absolute

	// Pick the weight tensor.
	std::string weightName = spec.tensor;
	if (weightName.empty()) {
		std::vector<std::string> candidates;
		for (const auto &[name, t] : tensors)
			if (name != spec.scaleTensor && !looksLikeScale(name))
				candidates.push_back(name);
		if (candidates.size() != 1)
			return makeError(-EINVAL, "'" + path + "': name the weight tensor (" +
							  std::to_string(candidates.size()) +
							  " candidates); available: " + nameList(tensors));
		weightName = candidates[0];
	}
	auto w = tensors.find(weightName);
	if (w == tensors.end())
		return makeError(-ENOENT, "'" + path + "': no tensor '" + weightName +
						  "'; available: " + nameList(tensors));
	const TensorInfo &wt = w->second;
	if (wt.shape.size() != 2 || wt.shape[0] == 0)
		return makeError(EP_E_SHAPE, "'" + path + "': tensor '" + weightName +
						     "': expected a 2-D tensor of rows, found " + tensorString(wt));
	const uint64_t rows = expectedRows ? expectedRows : wt.shape[0];

	bool values = wt.shape[0] == rows && wt.shape[1] == fmt.valuesPerRow &&
		      stDtypeMatches(fmt.dtype, wt.dtype);
	bool packed = wt.shape[0] == rows && wt.shape[1] == fmt.rowBytes() &&
		      (wt.dtype == "U8" || wt.dtype == "I8");
	if (!values && !packed)
		return makeError(EP_E_SHAPE, "'" + path + "': tensor '" + weightName + "': expected " +
						     shapeString({rows, fmt.valuesPerRow}) + " " +
						     stDtypeName(fmt.dtype) + " (or pre-packed " +
						     shapeString({rows, fmt.rowBytes()}) + " U8), found " +
						     tensorString(wt));
	bool needScale = values && fmt.scaleBlock > 0;
	if (!needScale && !spec.scaleTensor.empty())
		return makeError(-EINVAL, "'" + path + "': scale tensor '" + spec.scaleTensor +
						  "' given, but " +
						  (fmt.scaleBlock ? "tensor '" + weightName +
								    "' already holds packed rows with scales"
								  : "row format " + fmt.describe() +
								    " has no scale block"));

	std::vector<RowSegment> segments;
	std::string desc = "safetensors '" + path + "' tensor '" + weightName + "' " + tensorString(wt);
	segments.push_back({0, dataStart + wt.begin, values ? fmt.valueBytes() : fmt.rowBytes(), 0});
	if (needScale) {
		std::string expected = shapeString({rows, fmt.scalesPerRow()}) + " " +
				       stDtypeName(fmt.scaleDtype);
		if (spec.scaleTensor.empty()) {
			std::map<std::string, TensorInfo> scales;
			for (const auto &[name, t] : tensors)
				if (looksLikeScale(name))
					scales.emplace(name, t);
			return makeError(-EINVAL, "'" + path + "': row format " + fmt.describe() +
							  " has a scale block: name the scale tensor (" +
							  expected + "); scale-like tensors: " + nameList(scales));
		}
		auto st = tensors.find(spec.scaleTensor);
		if (st == tensors.end())
			return makeError(-ENOENT, "'" + path + "': no scale tensor '" + spec.scaleTensor +
							  "'; available: " + nameList(tensors));
		const TensorInfo &sc = st->second;
		if (sc.shape.size() != 2 || sc.shape[0] != rows || sc.shape[1] != fmt.scalesPerRow() ||
		    !stDtypeMatches(fmt.scaleDtype, sc.dtype))
			return makeError(EP_E_SHAPE, "'" + path + "': scale tensor '" + spec.scaleTensor +
							     "': expected " + expected + ", found " +
							     tensorString(sc));
		segments.push_back({0, dataStart + sc.begin, fmt.scaleBytes(), fmt.valueBytes()});
		desc += " + scale '" + spec.scaleTensor + "' " + tensorString(sc);
	} else if (!values) {
		desc += " (packed rows)";
	}

	std::vector<SourceFile> files;
	files.push_back({std::move(file->fd), path});
	return makeSegmentSource(std::move(files), std::move(segments), fmt, rows, std::move(desc));
}

} // namespace engrampool::io
