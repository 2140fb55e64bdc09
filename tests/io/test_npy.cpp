// SPDX-License-Identifier: Apache-2.0
// test_npy.cpp - .npy header parsing (versions, malformed and hostile bytes) and loadNpyInt64.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "io/npy.hpp"
#include "io_fixtures.hpp"
#include "test_util.hpp"

using namespace engrampool;
using namespace engrampool::io;
using eptest::npyBytes;
using eptest::writeBytes;
using eptest::writeNpy;

namespace {

std::vector<uint8_t> le64(const std::vector<int64_t> &v)
{
	std::vector<uint8_t> out(v.size() * 8);
	std::memcpy(out.data(), v.data(), out.size());
	return out;
}

std::vector<uint8_t> rawHeader(int major, const std::string &dict)
{
	std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
	uint32_t len = static_cast<uint32_t>(dict.size());
	out.push_back(len & 0xff);
	out.push_back((len >> 8) & 0xff);
	if (major != 1) {
		out.push_back((len >> 16) & 0xff);
		out.push_back((len >> 24) & 0xff);
	}
	out.insert(out.end(), dict.begin(), dict.end());
	return out;
}

} // namespace

TEST(NpyHeader, Version1)
{
	auto b = npyBytes("<f4", {3, 4}, std::vector<uint8_t>(48), 1);
	auto h = parseNpyHeader(b.data(), b.size());
	ASSERT_TRUE(h) << h.status().message();
	EXPECT_EQ(h->descr, "<f4");
	EXPECT_FALSE(h->fortranOrder);
	EXPECT_EQ(h->shape, (std::vector<uint64_t>{3, 4}));
	EXPECT_EQ(h->itemSize, 4u);
	EXPECT_EQ(h->elements(), 12u);
	EXPECT_EQ(h->dataOffset % 64, 0u); // numpy pads the header to 64 bytes
	EXPECT_EQ(h->dataOffset, b.size() - 48);
}

TEST(NpyHeader, Version2And3)
{
	for (int v : {2, 3}) {
		auto b = npyBytes("|u1", {7, 264}, {}, v);
		auto h = parseNpyHeader(b.data(), b.size());
		ASSERT_TRUE(h) << "v" << v << ": " << h.status().message();
		EXPECT_EQ(h->descr, "|u1");
		EXPECT_EQ(h->shape, (std::vector<uint64_t>{7, 264}));
		EXPECT_EQ(h->itemSize, 1u);
		EXPECT_EQ(h->dataOffset % 64, 0u);
		EXPECT_EQ(h->dataOffset, b.size());
	}
}

TEST(NpyHeader, ShapesAndSpellings)
{
	auto scalar = rawHeader(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }\n");
	auto h = parseNpyHeader(scalar.data(), scalar.size());
	ASSERT_TRUE(h) << h.status().message();
	EXPECT_TRUE(h->shape.empty());
	EXPECT_EQ(h->elements(), 1u);

	// Key order is free, double quotes, no trailing comma, Python 2 longs.
	auto odd = rawHeader(1, "{\"shape\": (5L,), \"fortran_order\": True, \"descr\": \"<u2\"}");
	h = parseNpyHeader(odd.data(), odd.size());
	ASSERT_TRUE(h) << h.status().message();
	EXPECT_EQ(h->shape, (std::vector<uint64_t>{5}));
	EXPECT_TRUE(h->fortranOrder);
	EXPECT_EQ(h->itemSize, 2u);

	auto v2 = rawHeader(1, "{'descr': '|V2', 'fortran_order': False, 'shape': (2, 3,), }");
	h = parseNpyHeader(v2.data(), v2.size());
	ASSERT_TRUE(h) << h.status().message();
	EXPECT_EQ(h->shape, (std::vector<uint64_t>{2, 3}));
	EXPECT_EQ(h->itemSize, 2u);
}

TEST(NpyHeader, MalformedIsError)
{
	const char *bad[] = {
		"{'descr': '<f4', 'fortran_order': False}",                        // no shape
		"{'descr': '<f4', 'shape': (1,)}",                                 // no order
		"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", // unknown key
		"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
		"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", // structured
		"{'descr': 'O', 'fortran_order': False, 'shape': (1,)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}",
		"{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk",
		"['descr', '<f4']",
		"",
	};
	for (const char *d : bad) {
		auto b = rawHeader(1, d);
		auto h = parseNpyHeader(b.data(), b.size());
		EXPECT_FALSE(h) << "accepted: " << d;
		EXPECT_EQ(h.code(), -EINVAL) << d;
	}

	auto good = npyBytes("<f4", {2}, {});
	EXPECT_FALSE(parseNpyHeader(good.data(), 5));                // cut inside the magic
	EXPECT_FALSE(parseNpyHeader(good.data(), 9));                // cut inside the length
	EXPECT_FALSE(parseNpyHeader(good.data(), good.size() - 1));  // cut inside the dict
	auto v4 = good;
	v4[6] = 4;
	auto h = parseNpyHeader(v4.data(), v4.size());
	ASSERT_FALSE(h);
	EXPECT_NE(h.status().message().find("version 4.0"), std::string::npos) << h.status().message();
	auto notNpy = good;
	notNpy[1] = 'X';
	h = parseNpyHeader(notNpy.data(), notNpy.size());
	ASSERT_FALSE(h);
	EXPECT_NE(h.status().message().find("magic"), std::string::npos);
	EXPECT_FALSE(parseNpyHeader(nullptr, 0));
}

TEST(NpyHeader, GarbageNeverCrashes)
{
	// Random bytes, and a valid header with random bytes flipped or cut short: every
	// outcome is a clean result or error, and each buffer is an exact-size heap
	// allocation so an over-read shows up under ASan/valgrind.
	std::mt19937_64 rng(1234);
	auto base = npyBytes("<f4", {1000, 256}, {}, 1);
	size_t accepted = 0;
	for (int iter = 0; iter < 20000; iter++) {
		std::vector<uint8_t> b;
		if (iter % 3 == 0) {
			b.resize(rng() % 200);
			for (auto &x : b)
				x = static_cast<uint8_t>(rng());
			if (b.size() >= 8 && iter % 2)
				std::memcpy(b.data(), base.data(), 8); // get past the magic
		} else {
			b = base;
			int flips = 1 + static_cast<int>(rng() % 4);
			for (int f = 0; f < flips; f++)
				b[rng() % b.size()] = static_cast<uint8_t>(rng());
			b.resize(rng() % (b.size() + 1));
		}
		std::unique_ptr<uint8_t[]> exact(new uint8_t[b.size() ? b.size() : 1]);
		if (!b.empty())
			std::memcpy(exact.get(), b.data(), b.size());
		auto h = parseNpyHeader(exact.get(), b.size());
		if (h) {
			accepted++;
			EXPECT_LE(h->dataOffset, b.size());
			EXPECT_GT(h->itemSize, 0u);
		}
	}
	SUCCEED() << accepted << " mutated headers still parsed";
}

TEST(NpyFile, LoadInt64AndWidened)
{
	eptest::TempDir dir;
	writeNpy(dir.file("a.npy"), "<i8", {5}, le64({-2, -1, 0, 1, 1ll << 40}));
	auto v = loadNpyInt64(dir.file("a.npy"));
	ASSERT_TRUE(v) << v.status().message();
	EXPECT_EQ(*v, (std::vector<int64_t>{-2, -1, 0, 1, 1ll << 40}));

	std::vector<uint8_t> i4(16);
	int32_t vi[4] = {-5, 0, 7, 2147483647};
	std::memcpy(i4.data(), vi, 16);
	writeNpy(dir.file("b.npy"), "<i4", {4}, i4, 2);
	v = loadNpyInt64(dir.file("b.npy"));
	ASSERT_TRUE(v) << v.status().message();
	EXPECT_EQ(*v, (std::vector<int64_t>{-5, 0, 7, 2147483647}));

	uint32_t vu[2] = {0, 4000000000u};
	std::vector<uint8_t> u4(8);
	std::memcpy(u4.data(), vu, 8);
	writeNpy(dir.file("c.npy"), "<u4", {2}, u4, 3);
	v = loadNpyInt64(dir.file("c.npy"));
	ASSERT_TRUE(v) << v.status().message();
	EXPECT_EQ(*v, (std::vector<int64_t>{0, 4000000000ll}));

	writeNpy(dir.file("empty.npy"), "<i8", {0}, {});
	v = loadNpyInt64(dir.file("empty.npy"));
	ASSERT_TRUE(v) << v.status().message();
	EXPECT_TRUE(v->empty());
}

TEST(NpyFile, WrongDtypeOrShapeNamed)
{
	eptest::TempDir dir;
	writeNpy(dir.file("f.npy"), "<f8", {2}, std::vector<uint8_t>(16));
	auto v = loadNpyInt64(dir.file("f.npy"));
	ASSERT_FALSE(v);
	EXPECT_EQ(v.code(), EP_E_SHAPE);
	EXPECT_NE(v.status().message().find("'<f8'"), std::string::npos) << v.status().message();
	EXPECT_NE(v.status().message().find("f.npy"), std::string::npos);

	writeNpy(dir.file("be.npy"), ">i8", {1}, std::vector<uint8_t>(8));
	v = loadNpyInt64(dir.file("be.npy"));
	ASSERT_FALSE(v);
	EXPECT_NE(v.status().message().find("'>i8'"), std::string::npos) << v.status().message();

	writeNpy(dir.file("2d.npy"), "<i8", {2, 3}, std::vector<uint8_t>(48));
	v = loadNpyInt64(dir.file("2d.npy"));
	ASSERT_FALSE(v);
	EXPECT_EQ(v.code(), EP_E_SHAPE);
	EXPECT_NE(v.status().message().find("[2, 3]"), std::string::npos) << v.status().message();
}

TEST(NpyFile, TruncatedNamesBytes)
{
	eptest::TempDir dir;
	auto b = npyBytes("<i8", {5}, le64({1, 2, 3, 4, 5}));
	const std::string full = std::to_string(b.size());
	b.resize(b.size() - 3);
	const std::string cut = std::to_string(b.size());
	writeBytes(dir.file("t.npy"), b);
	auto h = readNpyHeader(dir.file("t.npy"));
	ASSERT_FALSE(h);
	EXPECT_EQ(h.code(), -EINVAL);
	const std::string m = h.status().message();
	EXPECT_NE(m.find("truncated"), std::string::npos) << m;
	EXPECT_NE(m.find("40 data bytes"), std::string::npos) << m;
	EXPECT_NE(m.find(full + " bytes in all"), std::string::npos) << m; // expected size
	EXPECT_NE(m.find("file is " + cut + " bytes"), std::string::npos) << m;
	EXPECT_NE(m.find("t.npy"), std::string::npos) << m;
	EXPECT_FALSE(loadNpyInt64(dir.file("t.npy")));

	// Cut inside the header itself.
	b.resize(30);
	writeBytes(dir.file("h.npy"), b);
	h = readNpyHeader(dir.file("h.npy"));
	ASSERT_FALSE(h);
	EXPECT_NE(h.status().message().find("truncated"), std::string::npos) << h.status().message();

	writeBytes(dir.file("zero.npy"), {});
	EXPECT_FALSE(readNpyHeader(dir.file("zero.npy")));

	auto missing = readNpyHeader(dir.file("missing.npy"));
	ASSERT_FALSE(missing);
	EXPECT_EQ(missing.code(), -ENOENT);
}
