// SPDX-License-Identifier: Apache-2.0
// test_row_format.cpp - dtype names and sizes, row format validation, describe().
#include <gtest/gtest.h>

#include "model/row_format.hpp"

using namespace engrampool;

namespace {

RowFormat fp8Scaled()
{
	RowFormat f;
	f.dtype = Dtype::Fp8E4M3;
	f.valuesPerRow = 256;
	f.scaleDtype = Dtype::E8M0;
	f.scaleBlock = 32;
	return f;
}

} // namespace

TEST(RowFormat, DtypeBytesAndNames)
{
	EXPECT_EQ(dtypeBytes(Dtype::Fp32), 4u);
	EXPECT_EQ(dtypeBytes(Dtype::Bf16), 2u);
	EXPECT_EQ(dtypeBytes(Dtype::Fp16), 2u);
	EXPECT_EQ(dtypeBytes(Dtype::Fp8E4M3), 1u);
	EXPECT_EQ(dtypeBytes(Dtype::E8M0), 1u);
	EXPECT_EQ(dtypeBytes(Dtype::None), 0u);
	for (Dtype d : {Dtype::Fp32, Dtype::Bf16, Dtype::Fp16, Dtype::Fp8E4M3, Dtype::E8M0}) {
		auto p = parseDtype(dtypeName(d));
		ASSERT_TRUE(p) << dtypeName(d);
		EXPECT_EQ(*p, d);
	}
}

TEST(RowFormat, ParseDtypeAliases)
{
	struct {
		const char *s;
		Dtype d;
	} cases[] = {
		{"fp32", Dtype::Fp32},       {"float32", Dtype::Fp32},         {"bf16", Dtype::Bf16},
		{"bfloat16", Dtype::Bf16},   {"fp16", Dtype::Fp16},            {"float16", Dtype::Fp16},
		{"fp8-e4m3", Dtype::Fp8E4M3}, {"fp8_e4m3", Dtype::Fp8E4M3},
		{"float8_e4m3fn", Dtype::Fp8E4M3}, {"e8m0", Dtype::E8M0}, {"FP32", Dtype::Fp32},
	};
	for (auto &c : cases) {
		auto p = parseDtype(c.s);
		ASSERT_TRUE(p) << c.s;
		EXPECT_EQ(*p, c.d) << c.s;
	}
	auto bad = parseDtype("int8");
	ASSERT_FALSE(bad);
	EXPECT_EQ(bad.code(), -EINVAL);
	EXPECT_NE(bad.status().message().find("'int8'"), std::string::npos);
	EXPECT_FALSE(parseDtype(""));
}

TEST(RowFormat, DeepSeekFp8RowIs264Bytes)
{
	RowFormat f = fp8Scaled();
	ASSERT_TRUE(f.validate()) << f.validate().message();
	EXPECT_EQ(f.scalesPerRow(), 8u);
	EXPECT_EQ(f.rowBytes(), 264u);
	EXPECT_EQ(f.rowStride(), 264u);
	EXPECT_EQ(f.describe(), "fp8-e4m3 x256 + e8m0 x8 = 264 B");
	f.rowAlign = 64;
	ASSERT_TRUE(f.validate());
	EXPECT_EQ(f.rowStride(), 320u);
	EXPECT_EQ(f.describe(), "fp8-e4m3 x256 + e8m0 x8 = 264 B (stride 320 B)");

	RowFormat p;
	p.dtype = Dtype::Fp32;
	p.valuesPerRow = 64;
	ASSERT_TRUE(p.validate());
	EXPECT_EQ(p.describe(), "fp32 x64 = 256 B");
}

TEST(RowFormat, ValidateRejects)
{
	RowFormat f = fp8Scaled();
	f.valuesPerRow = 0;
	EXPECT_EQ(f.validate().code(), -EINVAL);

	f = fp8Scaled();
	f.scaleBlock = 48; // does not divide 256
	EXPECT_FALSE(f.validate());
	EXPECT_NE(f.validate().message().find("48"), std::string::npos);

	f = fp8Scaled();
	f.scaleDtype = Dtype::None; // block without dtype
	EXPECT_FALSE(f.validate());

	f = fp8Scaled();
	f.scaleBlock = 0; // dtype without block
	EXPECT_FALSE(f.validate());

	f = fp8Scaled();
	f.rowAlign = 48;
	EXPECT_FALSE(f.validate());
	for (uint32_t a : {0u, 1u, 2u, 64u, 4096u}) {
		f.rowAlign = a;
		EXPECT_TRUE(f.validate()) << a;
	}

	f = fp8Scaled();
	f.dtype = Dtype::None;
	EXPECT_FALSE(f.validate());

	RowFormat huge;
	huge.dtype = Dtype::Fp32;
	huge.valuesPerRow = 1u << 30; // 4 GiB rows would wrap the 32-bit byte counts
	EXPECT_FALSE(huge.validate());
}
