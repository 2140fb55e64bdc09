// SPDX-License-Identifier: Apache-2.0
// fuzz_npy.cpp - libFuzzer target: .npy header parsing, int64 loading and .npy row sources on untrusted bytes.
//
// The input is the whole .npy file. It is parsed in memory (parseNpyHeader), then
// written to a scratch file and read back with readNpyHeader, loadNpyInt64 (the
// vocab-map loader) and openFileSource as a row source in one of the fuzz row
// formats (picked by the last input byte), reading a few rows.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "io/npy.hpp"
#include "row_formats.hpp"

using namespace engrampool;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	auto h = io::parseNpyHeader(data, size);
	if (h) {
		(void)h->elements();
		if (h->dataOffset > size)
			__builtin_trap(); // the header claims data starts past what it parsed
	}

	static const std::string path = fuzz::scratchDir() + "/input.npy";
	fuzz::writeFile(path, data, size);
	(void)io::readNpyHeader(path);
	auto v = io::loadNpyInt64(path);
	if (v && v->size() > size)
		__builtin_trap(); // more int64 values than the file could hold

	uint8_t sel = size ? data[size - 1] : 0;
	RowFormat f = fuzz::rowFormat(sel);
	io::SourceSpec spec;
	spec.path = path;
	if (f.scaleBlock && (sel & 0x80))
		spec.scalePath = path; // the same file as its own scales: shapes rarely agree, must not crash
	auto src = io::openFileSource(spec, f, (sel & 0x40) ? 0 : (sel & 0x0f));
	if (src)
		fuzz::readSomeRows(**src, f);
	return 0;
}
