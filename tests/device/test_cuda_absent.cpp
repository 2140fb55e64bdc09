// SPDX-License-Identifier: Apache-2.0
// test_cuda_absent.cpp - without a usable GPU (or without CUDA built in), asking for
// the cuda device or a host registration fails with a clear message, leaks nothing.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "device/cuda.hpp"
#include "device/device.hpp"
#include "ep_config.h"

using namespace engrampool;

namespace {

bool gpuPresent()
{
	static const bool usable = cuda::probe().usable;
	return usable;
}

} // namespace

TEST(CudaAbsent, CreateFailsClearly)
{
	if (gpuPresent())
		GTEST_SKIP() << "a GPU is present: the cuda suite covers this";
	device::Options o;
	o.kind = device::Kind::Cuda;
	// Repeated: every failed attempt releases what it created (run under valgrind/ASan).
	for (int i = 0; i < 20; i++) {
		auto d = device::Device::create(o);
		ASSERT_FALSE(d.isOk());
		const std::string msg = d.status().message();
		if (i == 0)
			printf("create(Kind::Cuda): %d %s\n", d.code(), msg.c_str());
#if EP_HAVE_CUDA
		EXPECT_TRUE(d.code() == -ENODEV || d.code() == -EIO) << d.code();
		EXPECT_NE(msg.find("cuda device"), std::string::npos) << msg;
		EXPECT_NE(msg.find("cudaGetDeviceCount"), std::string::npos) << msg;
#else
		EXPECT_EQ(d.code(), EP_E_UNSUPPORTED);
		EXPECT_NE(msg.find("built without CUDA"), std::string::npos) << msg;
#endif
	}
}

TEST(CudaAbsent, ProbeSaysWhy)
{
	cuda::Probe p = cuda::probe();
	EXPECT_EQ(p.built, EP_HAVE_CUDA == 1);
	if (!p.usable) {
		EXPECT_FALSE(p.reason.empty());
	}
}

TEST(CudaAbsent, RegisterHostChecksArguments)
{
	std::vector<uint8_t> buf(1 << 20);
#if EP_HAVE_CUDA
	EXPECT_EQ(cuda::registerHost(nullptr, 100, 0).code(), -EINVAL);
	EXPECT_EQ(cuda::registerHost(buf.data(), 0, 0).code(), -EINVAL);
	EXPECT_EQ(cuda::registerHost(buf.data(), buf.size(), 0, 12345).code(), -EINVAL);
	EXPECT_EQ(cuda::registerHost(buf.data(), buf.size(), 0x100).code(), -EINVAL);
#else
	EXPECT_EQ(cuda::registerHost(buf.data(), buf.size(), 0).code(), EP_E_UNSUPPORTED);
#endif
}

TEST(CudaAbsent, RegisterHostFailsClearly)
{
	if (gpuPresent())
		GTEST_SKIP() << "a GPU is present: the cuda suite covers this";
	std::vector<uint8_t> buf(8 << 20);
	auto r = cuda::registerHost(buf.data(), buf.size(), cuda::kRegisterPortable, 1 << 20);
	ASSERT_FALSE(r.isOk());
	const std::string msg = r.status().message();
	printf("registerHost: %d %s\n", r.code(), msg.c_str());
	EXPECT_NE(msg.find("cudaHostRegister"), std::string::npos) << msg;
#if EP_HAVE_CUDA
	EXPECT_EQ(r.code(), -EIO);
	EXPECT_NE(msg.find("chunk 0"), std::string::npos) << msg;
#endif
	// The memory is still ordinary memory.
	std::memset(buf.data(), 1, buf.size());
}
