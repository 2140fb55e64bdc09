// SPDX-License-Identifier: Apache-2.0
// fuzz_safetensors.cpp - libFuzzer target: .safetensors row sources (untrusted header, offsets, dtypes, shapes).
//
// Input: byte 0 picks the row format (fuzz/row_formats.hpp) and the tensor naming,
// byte 1 the expected row count (0 = take it from the file); the rest is the file.
// A source that opens is read (first rows, middle, last, past the end).
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "row_formats.hpp"

using namespace engrampool;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t sel = data[0];
	uint8_t rows = data[1];
	static const std::string path = fuzz::scratchDir() + "/input.safetensors";
	static const std::string odd = fuzz::scratchDir() + "/input.bin"; // sniffed by content
	const std::string &p = (sel & 0x80) ? odd : path;
	fuzz::writeFile(p, data + 2, size - 2);

	RowFormat f = fuzz::rowFormat(sel);
	io::SourceSpec spec;
	spec.path = p;
	if (sel & 0x08)
		spec.tensor = "weight";
	if (f.scaleBlock && (sel & 0x10))
		spec.scaleTensor = "weight_scale";
	if (!f.scaleBlock && (sel & 0x20))
		spec.scaleTensor = "scale"; // a scale tensor for a format without scales: an error
	auto src = io::openFileSource(spec, f, (sel & 0x40) ? rows : 0);
	if (src)
		fuzz::readSomeRows(**src, f);
	return 0;
}
