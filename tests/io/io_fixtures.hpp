// SPDX-License-Identifier: Apache-2.0
// io_fixtures.hpp - writes .npy and .safetensors files byte by byte for the import tests.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace eptest {

inline void writeBytes(const std::string &path, const std::vector<uint8_t> &bytes)
{
	FILE *f = std::fopen(path.c_str(), "wb");
	if (!f)
		return;
	if (!bytes.empty())
		std::fwrite(bytes.data(), 1, bytes.size(), f);
	std::fclose(f);
}

inline std::string npyShape(const std::vector<uint64_t> &shape)
{
	std::string s = "(";
	for (size_t i = 0; i < shape.size(); i++)
		s += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? ", " : "");
	if (shape.size() == 1)
		s.pop_back();
	return s + ")";
}

// The bytes numpy's write_array produces: magic, version, header length, a padded
// Python dict, then the data. version 1 has a 2-byte length, 2 and 3 a 4-byte one.
inline std::vector<uint8_t> npyBytes(const std::string &descr, const std::vector<uint64_t> &shape,
				     const std::vector<uint8_t> &data, int version = 1,
				     bool fortran = false)
{
	std::string dict = "{'descr': '" + descr + "', 'fortran_order': " +
			   (fortran ? "True" : "False") + ", 'shape': " + npyShape(shape) + ", }";
	size_t prefix = version == 1 ? 10 : 12;
	size_t total = prefix + dict.size() + 1;
	dict += std::string((64 - total % 64) % 64, ' ') + "\n";
	std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(version), 0};
	uint32_t len = static_cast<uint32_t>(dict.size());
	out.push_back(len & 0xff);
	out.push_back((len >> 8) & 0xff);
	if (version != 1) {
		out.push_back((len >> 16) & 0xff);
		out.push_back((len >> 24) & 0xff);
	}
	out.insert(out.end(), dict.begin(), dict.end());
	out.insert(out.end(), data.begin(), data.end());
	return out;
}

inline void writeNpy(const std::string &path, const std::string &descr,
		     const std::vector<uint64_t> &shape, const std::vector<uint8_t> &data,
		     int version = 1, bool fortran = false)
{
	writeBytes(path, npyBytes(descr, shape, data, version, fortran));
}

struct StTensor {
	std::string name;
	std::string dtype;
	std::vector<uint64_t> shape;
	std::vector<uint8_t> data;
};

// A .safetensors file; `headerOverride` replaces the generated JSON when non-empty.
inline void writeSafetensors(const std::string &path, const std::vector<StTensor> &tensors,
			     const std::string &headerOverride = "")
{
	std::string hdr = "{\"__metadata__\":{\"format\":\"pt\"}";
	uint64_t off = 0;
	for (const StTensor &t : tensors) {
		hdr += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
		for (size_t i = 0; i < t.shape.size(); i++) {
			if (i)
				hdr += ",";
			hdr += std::to_string(t.shape[i]);
		}
		hdr += "],\"data_offsets\":[" + std::to_string(off) + "," +
		       std::to_string(off + t.data.size()) + "]}";
		off += t.data.size();
	}
	hdr += "}";
	if (!headerOverride.empty())
		hdr = headerOverride;
	std::vector<uint8_t> out;
	uint64_t len = hdr.size();
	for (int i = 0; i < 8; i++)
		out.push_back(static_cast<uint8_t>(len >> (8 * i)));
	out.insert(out.end(), hdr.begin(), hdr.end());
	for (const StTensor &t : tensors)
		out.insert(out.end(), t.data.begin(), t.data.end());
	writeBytes(path, out);
}

// Deterministic filler so expected bytes are easy to recompute.
inline std::vector<uint8_t> patternBytes(size_t n, uint32_t salt)
{
	std::vector<uint8_t> v(n);
	uint32_t x = salt * 2654435761u + 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 1664525u + 1013904223u;
		v[i] = static_cast<uint8_t>(x >> 24);
	}
	return v;
}

} // namespace eptest
