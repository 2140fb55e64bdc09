// SPDX-License-Identifier: Apache-2.0
// test_file_source.cpp - .npy and .safetensors row sources: packing, shapes, hostile headers.
#include <gtest/gtest.h>

#include <cstring>

#include "io/row_source.hpp"
#include "io_fixtures.hpp"
#include "test_util.hpp"

using namespace engrampool;
using namespace engrampool::io;
using eptest::patternBytes;
using eptest::StTensor;
using eptest::writeNpy;
using eptest::writeSafetensors;

namespace {

RowFormat fp8Scaled(uint32_t align = 0)
{
	RowFormat f;
	f.dtype = Dtype::Fp8E4M3;
	f.valuesPerRow = 256;
	f.scaleDtype = Dtype::E8M0;
	f.scaleBlock = 32;
	f.rowAlign = align;
	return f;
}

RowFormat plain(Dtype d, uint32_t values, uint32_t align = 0)
{
	RowFormat f;
	f.dtype = d;
	f.valuesPerRow = values;
	f.rowAlign = align;
	return f;
}

// What the pool should hold: row r = values[r] then scales[r], zero-padded to stride.
std::vector<uint8_t> manualPack(const RowFormat &fmt, uint64_t rows, const std::vector<uint8_t> &values,
				const std::vector<uint8_t> &scales)
{
	std::vector<uint8_t> out(rows * fmt.rowStride(), 0);
	for (uint64_t r = 0; r < rows; r++) {
		std::memcpy(&out[r * fmt.rowStride()], &values[r * fmt.valueBytes()], fmt.valueBytes());
		if (fmt.scaleBytes())
			std::memcpy(&out[r * fmt.rowStride() + fmt.valueBytes()], &scales[r * fmt.scaleBytes()],
				    fmt.scaleBytes());
	}
	return out;
}

std::vector<uint8_t> readAll(RowSource &src, const RowFormat &fmt, uint64_t chunk)
{
	std::vector<uint8_t> out(src.rows() * fmt.rowStride(), 0xee);
	for (uint64_t r = 0; r < src.rows(); r += chunk) {
		uint64_t n = std::min(chunk, src.rows() - r);
		Status s = src.read(r, n, out.data() + r * fmt.rowStride());
		EXPECT_TRUE(s) << s.message();
	}
	return out;
}

std::unique_ptr<RowSource> openOk(const SourceSpec &spec, const RowFormat &fmt, uint64_t rows)
{
	auto r = openFileSource(spec, fmt, rows);
	EXPECT_TRUE(r) << r.status().message();
	return r ? std::move(r.value()) : nullptr;
}

bool contains(const std::string &s, const std::string &what)
{
	return s.find(what) != std::string::npos;
}

} // namespace

TEST(SafetensorsSource, WeightPlusScalePackedInto264ByteRows)
{
	eptest::TempDir dir;
	const uint64_t rows = 37;
	RowFormat fmt = fp8Scaled();
	auto values = patternBytes(rows * 256, 1);
	auto scales = patternBytes(rows * 8, 2);
	// An unrelated tensor first so the weight does not start at offset 0.
	writeSafetensors(dir.file("m.safetensors"),
			 {{"other", "F32", {3}, patternBytes(12, 3)},
			  {"engram.weight", "F8_E4M3", {rows, 256}, values},
			  {"engram.weight_scale_inv", "F8_E8M0", {rows, 8}, scales}});
	SourceSpec spec{dir.file("m.safetensors"), "engram.weight", "engram.weight_scale_inv", ""};
	auto src = openOk(spec, fmt, rows);
	ASSERT_TRUE(src);
	EXPECT_EQ(src->rows(), rows);
	EXPECT_TRUE(contains(src->describe(), "engram.weight_scale_inv")) << src->describe();
	auto expect = manualPack(fmt, rows, values, scales);
	ASSERT_EQ(expect.size(), rows * 264);
	for (uint64_t chunk : {1ull, 5ull, 37ull})
		EXPECT_EQ(readAll(*src, fmt, chunk), expect) << "chunk " << chunk;

	// Same data with 64-byte row alignment: padding is zeroed, not left as garbage.
	RowFormat aligned = fp8Scaled(64);
	auto src2 = openOk(spec, aligned, rows);
	ASSERT_TRUE(src2);
	EXPECT_EQ(readAll(*src2, aligned, 7), manualPack(aligned, rows, values, scales));

	// U8 scales are accepted for e8m0.
	writeSafetensors(dir.file("u8.safetensors"),
			 {{"w", "F8_E4M3", {rows, 256}, values}, {"s", "U8", {rows, 8}, scales}});
	auto src3 = openOk({dir.file("u8.safetensors"), "w", "s", ""}, fmt, rows);
	ASSERT_TRUE(src3);
	EXPECT_EQ(readAll(*src3, fmt, 16), expect);
}

TEST(SafetensorsSource, TensorSelection)
{
	eptest::TempDir dir;
	RowFormat fmt = plain(Dtype::Bf16, 16);
	auto w = patternBytes(4 * 32, 9);
	writeSafetensors(dir.file("one.safetensors"), {{"only", "BF16", {4, 16}, w}});
	auto src = openOk({dir.file("one.safetensors"), "", "", ""}, fmt, 4);
	ASSERT_TRUE(src);
	EXPECT_EQ(readAll(*src, fmt, 3), w);

	// Two candidates and no name: the error lists what is there.
	writeSafetensors(dir.file("two.safetensors"),
			 {{"alpha", "BF16", {4, 16}, w}, {"beta", "BF16", {4, 16}, w}});
	auto r = openFileSource({dir.file("two.safetensors"), "", "", ""}, fmt, 4);
	ASSERT_FALSE(r);
	EXPECT_TRUE(contains(r.status().message(), "alpha")) << r.status().message();
	EXPECT_TRUE(contains(r.status().message(), "beta")) << r.status().message();

	r = openFileSource({dir.file("two.safetensors"), "gamma", "", ""}, fmt, 4);
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), -ENOENT);
	EXPECT_TRUE(contains(r.status().message(), "gamma"));
	EXPECT_TRUE(contains(r.status().message(), "alpha"));

	src = openOk({dir.file("two.safetensors"), "beta", "", ""}, fmt, 4);
	ASSERT_TRUE(src);
}

TEST(SafetensorsSource, ShapeAndDtypeErrors)
{
	eptest::TempDir dir;
	RowFormat fmt = fp8Scaled();
	writeSafetensors(dir.file("m.safetensors"),
			 {{"w", "F8_E4M3", {10, 256}, patternBytes(2560, 1)},
			  {"w16", "BF16", {10, 256}, patternBytes(5120, 1)},
			  {"s", "F8_E8M0", {10, 8}, patternBytes(80, 2)},
			  {"s4", "F8_E8M0", {10, 4}, patternBytes(40, 2)}});
	std::string path = dir.file("m.safetensors");

	auto r = openFileSource({path, "w", "s", ""}, fmt, 11); // wrong row count
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), EP_E_SHAPE);
	EXPECT_TRUE(contains(r.status().message(), "expected [11, 256] F8_E4M3")) << r.status().message();
	EXPECT_TRUE(contains(r.status().message(), "found [10, 256] F8_E4M3")) << r.status().message();

	r = openFileSource({path, "w16", "s", ""}, fmt, 10); // wrong dtype
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), EP_E_SHAPE);
	EXPECT_TRUE(contains(r.status().message(), "BF16")) << r.status().message();

	r = openFileSource({path, "w", "s4", ""}, fmt, 10); // wrong scale shape
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), EP_E_SHAPE);
	EXPECT_TRUE(contains(r.status().message(), "expected [10, 8] F8_E8M0, found [10, 4]"))
		<< r.status().message();

	r = openFileSource({path, "w", "", ""}, fmt, 10); // scale block but no scale tensor
	ASSERT_FALSE(r);
	EXPECT_TRUE(contains(r.status().message(), "scale tensor")) << r.status().message();

	r = openFileSource({path, "w", "s", ""}, plain(Dtype::Fp8E4M3, 256), 10); // scale not wanted
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), -EINVAL);
}

TEST(SafetensorsSource, HostileHeadersRejected)
{
	eptest::TempDir dir;
	RowFormat fmt = plain(Dtype::Fp32, 4);
	auto data = patternBytes(2 * 16, 5);
	std::string p = dir.file("x.safetensors");
	auto reject = [&](const std::string &header, const char *why) {
		writeSafetensors(p, {{"w", "F32", {2, 4}, data}}, header);
		auto r = openFileSource({p, "w", "", ""}, fmt, 2);
		EXPECT_FALSE(r) << why;
		return r ? std::string() : r.status().message();
	};
	std::string m = reject(R"({"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,4096]}})",
			       "end past the file");
	EXPECT_TRUE(contains(m, "outside")) << m;
	reject(R"({"w":{"dtype":"F32","shape":[2,4],"data_offsets":[16,8]}})", "begin after end");
	reject(R"({"w":{"dtype":"F32","shape":[2,4],"data_offsets":[18446744073709551615,18446744073709551615]}})",
	       "huge offsets");
	reject(R"({"w":{"dtype":"F32","shape":[2,4],"data_offsets":[-1,31]}})", "negative offset");
	reject(R"({"w":{"dtype":"F32","shape":[2,5],"data_offsets":[0,32]}})", "size mismatch");
	reject(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,32]}})",
	       "shape overflow");
	reject(R"({"w":{"dtype":"F32","shape":"2x4","data_offsets":[0,32]}})", "shape not array");
	reject(R"({"w":{"dtype":7,"shape":[2,4],"data_offsets":[0,32]}})", "dtype not string");
	reject(R"({"w":{"dtype":"F32","shape":[2,4]}})", "no offsets");
	reject(R"({"w":[1,2,3]})", "entry not object");
	reject(R"([1,2])", "header not object");
	reject(R"({"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]})", "bad json");
	reject("\x01\x02garbage", "garbage");

	// Header length itself beyond the file.
	std::vector<uint8_t> lenOnly = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
	eptest::writeBytes(p, lenOnly);
	auto r = openFileSource({p, "w", "", ""}, fmt, 2);
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), -EINVAL);
	eptest::writeBytes(p, {1, 2, 3});
	EXPECT_FALSE(openFileSource({p, "w", "", ""}, fmt, 2));

	// And the well-formed file is fine.
	writeSafetensors(p, {{"w", "F32", {2, 4}, data}});
	auto ok = openOk({p, "w", "", ""}, fmt, 2);
	ASSERT_TRUE(ok);
	EXPECT_EQ(readAll(*ok, fmt, 2), data);
}

TEST(NpySource, ValuesAndScalesFiles)
{
	eptest::TempDir dir;
	const uint64_t rows = 21;
	RowFormat fmt = fp8Scaled();
	auto values = patternBytes(rows * 256, 11);
	auto scales = patternBytes(rows * 8, 12);
	writeNpy(dir.file("v.npy"), "|u1", {rows, 256}, values);
	writeNpy(dir.file("s.npy"), "|u1", {rows, 8}, scales, 2);
	auto src = openOk({dir.file("v.npy"), "", "", dir.file("s.npy")}, fmt, rows);
	ASSERT_TRUE(src);
	auto expect = manualPack(fmt, rows, values, scales);
	EXPECT_EQ(readAll(*src, fmt, 4), expect);
	EXPECT_EQ(readAll(*src, fmt, rows), expect);

	// Pre-packed [rows, 264] uint8 holds both already.
	writeNpy(dir.file("p.npy"), "|u1", {rows, 264}, expect);
	auto packed = openOk({dir.file("p.npy"), "", "", ""}, fmt, rows);
	ASSERT_TRUE(packed);
	EXPECT_EQ(readAll(*packed, fmt, 6), expect);
	RowFormat aligned = fp8Scaled(512);
	packed = openOk({dir.file("p.npy"), "", "", ""}, aligned, rows);
	ASSERT_TRUE(packed);
	EXPECT_EQ(readAll(*packed, aligned, 6), manualPack(aligned, rows, values, scales));
	auto r = openFileSource({dir.file("p.npy"), "", "", dir.file("s.npy")}, fmt, rows);
	EXPECT_FALSE(r) << "scales given twice";

	// Missing scales file.
	r = openFileSource({dir.file("v.npy"), "", "", ""}, fmt, rows);
	ASSERT_FALSE(r);
	EXPECT_TRUE(contains(r.status().message(), "scale")) << r.status().message();
}

TEST(NpySource, DtypesAccepted)
{
	eptest::TempDir dir;
	struct {
		Dtype d;
		const char *descr;
	} cases[] = {{Dtype::Fp32, "<f4"}, {Dtype::Fp16, "<f2"}, {Dtype::Bf16, "<u2"},
		     {Dtype::Bf16, "|V2"}, {Dtype::Fp8E4M3, "|i1"}, {Dtype::Fp8E4M3, "|V1"}};
	for (auto &c : cases) {
		RowFormat fmt = plain(c.d, 12);
		auto data = patternBytes(9 * fmt.valueBytes(), 3);
		std::string p = dir.file("d.npy");
		writeNpy(p, c.descr, {9, 12}, data);
		auto src = openOk({p, "", "", ""}, fmt, 9);
		ASSERT_TRUE(src) << c.descr;
		EXPECT_EQ(readAll(*src, fmt, 4), data) << c.descr;
	}
}

TEST(NpySource, WrongShapeDtypeAndOrder)
{
	eptest::TempDir dir;
	RowFormat fmt = plain(Dtype::Fp32, 256);
	std::string p = dir.file("w.npy");

	writeNpy(p, "<f4", {1000, 128}, std::vector<uint8_t>(1000 * 128 * 4));
	auto r = openFileSource({p, "", "", ""}, fmt, 1000);
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), EP_E_SHAPE);
	const std::string m = r.status().message();
	EXPECT_TRUE(contains(m, "expected [1000, 256] float32")) << m;
	EXPECT_TRUE(contains(m, "found [1000, 128] <f4")) << m;

	writeNpy(p, "<f8", {1000, 256}, std::vector<uint8_t>(1000 * 256 * 8));
	r = openFileSource({p, "", "", ""}, fmt, 1000);
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), EP_E_SHAPE);
	EXPECT_TRUE(contains(r.status().message(), "found [1000, 256] <f8")) << r.status().message();

	writeNpy(p, "<f4", {999, 256}, std::vector<uint8_t>(999 * 256 * 4));
	r = openFileSource({p, "", "", ""}, fmt, 1000);
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), EP_E_SHAPE);

	writeNpy(p, "<f4", {256000}, std::vector<uint8_t>(256000 * 4));
	r = openFileSource({p, "", "", ""}, fmt, 1000);
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), EP_E_SHAPE);

	writeNpy(p, "<f4", {10, 256}, std::vector<uint8_t>(10 * 256 * 4), 1, true);
	r = openFileSource({p, "", "", ""}, fmt, 10);
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), EP_E_SHAPE);
	EXPECT_TRUE(contains(r.status().message(), "Fortran")) << r.status().message();

	// Truncated: refused at open, naming expected and actual bytes, before any read.
	auto bytes = eptest::npyBytes("<f4", {10, 256}, std::vector<uint8_t>(10 * 256 * 4));
	bytes.resize(bytes.size() - 100);
	eptest::writeBytes(p, bytes);
	r = openFileSource({p, "", "", ""}, fmt, 10);
	ASSERT_FALSE(r);
	EXPECT_TRUE(contains(r.status().message(), "truncated")) << r.status().message();
	EXPECT_TRUE(contains(r.status().message(), std::to_string(bytes.size()))) << r.status().message();
	EXPECT_TRUE(contains(r.status().message(), std::to_string(bytes.size() + 100)));
}

TEST(FileSource, DispatchAndRangeChecks)
{
	eptest::TempDir dir;
	RowFormat fmt = plain(Dtype::Fp16, 8);
	auto data = patternBytes(5 * 16, 4);
	// Unusual suffixes are recognised by their content.
	writeNpy(dir.file("table.bin"), "<f2", {5, 8}, data);
	writeSafetensors(dir.file("table.st"), {{"w", "F16", {5, 8}, data}});
	for (const char *name : {"table.bin", "table.st"}) {
		auto src = openOk({dir.file(name), "", "", ""}, fmt, 5);
		ASSERT_TRUE(src) << name;
		EXPECT_EQ(readAll(*src, fmt, 2), data) << name;
		std::vector<uint8_t> buf(6 * 16);
		EXPECT_FALSE(src->read(0, 6, buf.data())) << "past the end";
		EXPECT_FALSE(src->read(6, 0, buf.data()));
		EXPECT_TRUE(src->read(5, 0, buf.data()));
	}
	eptest::writeBytes(dir.file("junk.dat"), patternBytes(100, 1));
	auto r = openFileSource({dir.file("junk.dat"), "", "", ""}, fmt, 5);
	ASSERT_FALSE(r);
	EXPECT_TRUE(contains(r.status().message(), "unknown source format")) << r.status().message();

	r = openFileSource({dir.file("missing.npy"), "", "", ""}, fmt, 5);
	ASSERT_FALSE(r);
	EXPECT_EQ(r.code(), -ENOENT);

	RowFormat invalid = plain(Dtype::Fp16, 0);
	EXPECT_FALSE(openFileSource({dir.file("table.bin"), "", "", ""}, invalid, 5));
}

TEST(FileSource, LargeReadStreamsThroughBounceBuffer)
{
	// More than one 4 MiB bounce buffer per call, with scales, so the chunked
	// scatter path is exercised across buffer boundaries.
	eptest::TempDir dir;
	const uint64_t rows = 40000; // ~10 MiB of values
	RowFormat fmt = fp8Scaled();
	auto values = patternBytes(rows * 256, 21);
	auto scales = patternBytes(rows * 8, 22);
	writeNpy(dir.file("v.npy"), "|u1", {rows, 256}, values);
	writeNpy(dir.file("s.npy"), "|u1", {rows, 8}, scales);
	auto src = openOk({dir.file("v.npy"), "", "", dir.file("s.npy")}, fmt, rows);
	ASSERT_TRUE(src);
	auto expect = manualPack(fmt, rows, values, scales);
	EXPECT_TRUE(readAll(*src, fmt, rows) == expect);
	EXPECT_TRUE(readAll(*src, fmt, 16411) == expect);
}
