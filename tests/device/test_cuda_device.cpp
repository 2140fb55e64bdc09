// SPDX-License-Identifier: Apache-2.0
// test_cuda_device.cpp - the cuda device on a real GPU, checked against the host
// device; exits 77 (skip) before gtest starts when no GPU is usable.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdio>
#include <thread>

#include "device/cuda.hpp"
#include "device/device.hpp"
#include "device_test_util.hpp"

using namespace engrampool;
using namespace engrampool::device;

namespace {

std::unique_ptr<Device> cudaDevice(int numaNode = -1)
{
	Options o;
	o.kind = Kind::Cuda;
	o.numaNode = numaNode;
	auto d = Device::create(o);
	EXPECT_TRUE(d.isOk()) << d.status().message();
	return d ? std::move(d.value()) : nullptr;
}

std::vector<uint8_t> download(const void *dev, size_t bytes)
{
	std::vector<uint8_t> v(bytes);
	EXPECT_EQ(cudaMemcpy(v.data(), dev, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
	return v;
}

void upload(void *dev, const std::vector<uint8_t> &v)
{
	ASSERT_EQ(cudaMemcpy(dev, v.data(), v.size(), cudaMemcpyHostToDevice), cudaSuccess);
}

} // namespace

TEST(CudaDevice, Basics)
{
	auto d = cudaDevice();
	ASSERT_TRUE(d);
	EXPECT_EQ(d->kind(), Kind::Cuda);
	EXPECT_NE(d->stream(), nullptr);
	EXPECT_NE(d->describe().find("cuda:0"), std::string::npos) << d->describe();
	unsigned flags = 0;
	ASSERT_EQ(cudaStreamGetFlags(static_cast<cudaStream_t>(d->stream()), &flags), cudaSuccess);
	EXPECT_EQ(flags & cudaStreamNonBlocking, (unsigned)cudaStreamNonBlocking);
	EXPECT_EQ(d->submitLayer(0, 0, 1, 1, 0, 64), -EINVAL);
}

TEST(CudaDevice, BadDeviceIndex)
{
	Options o;
	o.kind = Kind::Cuda;
	o.cudaDevice = 1000;
	auto d = Device::create(o);
	ASSERT_FALSE(d.isOk());
	EXPECT_EQ(d.code(), -ENODEV);
	EXPECT_NE(d.status().message().find("cuda device 1000 does not exist"), std::string::npos)
		<< d.status().message();
}

TEST(CudaDevice, Buffers)
{
	auto d = cudaDevice();
	ASSERT_TRUE(d);
	ASSERT_TRUE(d->allocate(3, 2, 500, 900, 264).isOk()) << d->lastError();
	for (uint32_t s = 0; s < 3; s++)
		for (uint32_t l = 0; l < 2; l++) {
			const LayerBuffers &b = d->buffers(s, l);
			cudaPointerAttributes a{};
			ASSERT_EQ(cudaPointerGetAttributes(&a, b.stagingRows), cudaSuccess);
			EXPECT_EQ(a.type, cudaMemoryTypeHost);
			ASSERT_EQ(cudaPointerGetAttributes(&a, b.output), cudaSuccess);
			EXPECT_EQ(a.type, cudaMemoryTypeDevice);
			EXPECT_NE(b.deviceRows, b.stagingRows);
			EXPECT_NE(d->layerEvent(s, l), nullptr);
		}
	EXPECT_EQ(d->layerEvent(3, 0), nullptr);
}

// Same random steps on the cuda and the host device: same outputs, same cache.
void compareWithHost(int numaNode)
{
	auto g = cudaDevice(numaNode);
	ASSERT_TRUE(g);
	Options ho;
	auto h = std::move(Device::create(ho).value());
	for (uint32_t stride : {1u, 7u, 64u, 128u, 256u, 264u, 320u, 512u, 1000u, 4096u}) {
		SCOPED_TRACE("rowStride " + std::to_string(stride));
		const size_t maxRows = 400, maxOut = 1024, cacheRows = 64;
		ASSERT_TRUE(g->allocate(2, 3, maxRows, maxOut, stride).isOk()) << g->lastError();
		ASSERT_TRUE(h->allocate(2, 3, maxRows, maxOut, stride).isOk());
		ASSERT_TRUE(g->allocateCache(cacheRows, stride).isOk()) << g->lastError();
		ASSERT_TRUE(h->allocateCache(cacheRows, stride).isOk());
		std::mt19937_64 rng(stride);
		std::vector<uint8_t> cache(cacheRows * stride);
		for (auto &x : cache)
			x = (uint8_t)rng();
		upload(g->cacheRows(), cache);
		std::memcpy(h->cacheRows(), cache.data(), cache.size());
		for (int step = 0; step < 12; step++) {
			uint32_t slot = step % 2, layer = step % 3;
			size_t uniq = 1 + rng() % maxRows, out = rng() % (maxOut + 1), admits = rng() % 16;
			eptest::LayerCase c = eptest::makeCase(rng, stride, uniq, out, cacheRows, admits);
			eptest::fill(g->buffers(slot, layer), c);
			eptest::fill(h->buffers(slot, layer), c);
			ASSERT_EQ(g->submitLayer(slot, layer, uniq, out, c.admits(), stride), 0) << g->lastError();
			ASSERT_EQ(h->submitLayer(slot, layer, uniq, out, c.admits(), stride), 0) << h->lastError();
			ASSERT_EQ(g->waitLayer(slot, layer), 0) << g->lastError();
			auto got = download(g->buffers(slot, layer).output, out * stride);
			ASSERT_EQ(0, std::memcmp(got.data(), h->buffers(slot, layer).output, got.size())) << "step " << step;
			auto gotCache = download(g->cacheRows(), cache.size());
			ASSERT_EQ(0, std::memcmp(gotCache.data(), h->cacheRows(), cache.size())) << "step " << step;
		}
	}
}

TEST(CudaDevice, MatchesHostDevice) { compareWithHost(-1); }
TEST(CudaDevice, MatchesHostDeviceNumaStaging) { compareWithHost(0); }

// A server stream waits on the layer event; the copy stream is not the server's.
TEST(CudaDevice, ServerStreamWaitsOnEvent)
{
	auto d = cudaDevice();
	ASSERT_TRUE(d);
	ASSERT_TRUE(d->allocate(1, 2, 256, 512, 320).isOk());
	cudaStream_t server;
	ASSERT_EQ(cudaStreamCreateWithFlags(&server, cudaStreamNonBlocking), cudaSuccess);
	EXPECT_NE(server, d->stream());
	std::mt19937_64 rng(1);
	eptest::LayerCase c = eptest::makeCase(rng, 320, 256, 512, 0, 0);
	eptest::fill(d->buffers(0, 1), c);
	ASSERT_EQ(d->submitLayer(0, 1, 256, 512, 0, 320), 0) << d->lastError();
	ASSERT_EQ(cudaStreamWaitEvent(server, static_cast<cudaEvent_t>(d->layerEvent(0, 1)), 0), cudaSuccess);
	std::vector<uint8_t> got(512 * 320);
	ASSERT_EQ(cudaMemcpyAsync(got.data(), d->buffers(0, 1).output, got.size(), cudaMemcpyDeviceToHost, server),
		  cudaSuccess);
	ASSERT_EQ(cudaStreamSynchronize(server), cudaSuccess);
	auto want = eptest::expectedOutput(c, {}, 0);
	EXPECT_EQ(got, want);
	cudaStreamDestroy(server);
}

// A server capturing a graph (global mode) on its own stream while the agent submits
// and waits, from the same thread and from another one: the capture stays valid.
TEST(CudaDevice, DoesNotBreakServerCapture)
{
	auto d = cudaDevice();
	ASSERT_TRUE(d);
	ASSERT_TRUE(d->allocate(2, 1, 128, 256, 264).isOk());
	cudaStream_t server;
	ASSERT_EQ(cudaStreamCreateWithFlags(&server, cudaStreamNonBlocking), cudaSuccess);
	void *scratch = nullptr;
	ASSERT_EQ(cudaMalloc(&scratch, 256 * 264), cudaSuccess);
	std::mt19937_64 rng(2);
	eptest::LayerCase c = eptest::makeCase(rng, 264, 128, 256, 0, 0);
	eptest::fill(d->buffers(0, 0), c);
	eptest::fill(d->buffers(1, 0), c);
	ASSERT_EQ(cudaStreamBeginCapture(server, cudaStreamCaptureModeGlobal), cudaSuccess);
	ASSERT_EQ(cudaMemcpyAsync(scratch, d->buffers(0, 0).output, 256 * 264, cudaMemcpyDeviceToDevice, server),
		  cudaSuccess);
	EXPECT_EQ(d->submitLayer(0, 0, 128, 256, 0, 264), 0) << d->lastError();
	EXPECT_EQ(d->waitLayer(0, 0), 0) << d->lastError();
	std::thread other([&] {
		EXPECT_EQ(d->submitLayer(1, 0, 128, 256, 0, 264), 0) << d->lastError();
		EXPECT_EQ(d->waitLayer(1, 0), 0) << d->lastError();
	});
	other.join();
	cudaStreamCaptureStatus st;
	ASSERT_EQ(cudaStreamIsCapturing(server, &st), cudaSuccess);
	EXPECT_EQ(st, cudaStreamCaptureStatusActive);
	cudaGraph_t graph = nullptr;
	ASSERT_EQ(cudaStreamEndCapture(server, &graph), cudaSuccess);
	cudaGraphExec_t exec = nullptr;
	ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
	ASSERT_EQ(cudaGraphLaunch(exec, server), cudaSuccess);
	ASSERT_EQ(cudaStreamSynchronize(server), cudaSuccess);
	EXPECT_EQ(download(scratch, 256 * 264), eptest::expectedOutput(c, {}, 0));
	cudaGraphExecDestroy(exec);
	cudaGraphDestroy(graph);
	cudaFree(scratch);
	cudaStreamDestroy(server);
}

// A graph captured once (wait on the layer event, consume the output) and replayed
// after each new submit sees each step's rows: stable addresses + external event wait.
TEST(CudaDevice, GraphWaitsOnLayerEvent)
{
	auto d = cudaDevice();
	ASSERT_TRUE(d);
	const size_t uniq = 100, out = 300;
	const uint32_t stride = 320;
	ASSERT_TRUE(d->allocate(1, 1, uniq, out, stride).isOk());
	cudaStream_t server;
	ASSERT_EQ(cudaStreamCreateWithFlags(&server, cudaStreamNonBlocking), cudaSuccess);
	void *scratch = nullptr;
	ASSERT_EQ(cudaMalloc(&scratch, out * stride), cudaSuccess);
	cudaGraph_t graph = nullptr;
	ASSERT_EQ(cudaStreamBeginCapture(server, cudaStreamCaptureModeGlobal), cudaSuccess);
	ASSERT_EQ(cudaStreamWaitEvent(server, static_cast<cudaEvent_t>(d->layerEvent(0, 0)), cudaEventWaitExternal),
		  cudaSuccess);
	ASSERT_EQ(cudaMemcpyAsync(scratch, d->buffers(0, 0).output, out * stride, cudaMemcpyDeviceToDevice, server),
		  cudaSuccess);
	ASSERT_EQ(cudaStreamEndCapture(server, &graph), cudaSuccess);
	cudaGraphExec_t exec = nullptr;
	ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
	std::mt19937_64 rng(5);
	for (int step = 0; step < 5; step++) {
		eptest::LayerCase c = eptest::makeCase(rng, stride, uniq, out, 0, 0);
		eptest::fill(d->buffers(0, 0), c);
		ASSERT_EQ(d->submitLayer(0, 0, uniq, out, 0, stride), 0) << d->lastError();
		ASSERT_EQ(cudaGraphLaunch(exec, server), cudaSuccess);
		ASSERT_EQ(cudaStreamSynchronize(server), cudaSuccess);
		EXPECT_EQ(download(scratch, out * stride), eptest::expectedOutput(c, {}, 0)) << "step " << step;
	}
	cudaGraphExecDestroy(exec);
	cudaGraphDestroy(graph);
	cudaFree(scratch);
	cudaStreamDestroy(server);
}

TEST(CudaDevice, SubmitErrorsNameTheCall)
{
	auto d = cudaDevice();
	ASSERT_TRUE(d);
	ASSERT_TRUE(d->allocate(1, 1, 10, 10, 64).isOk());
	d->buffers(0, 0).stagingIndex[0] = 99;
	EXPECT_EQ(d->submitLayer(0, 0, 10, 1, 0, 64), -ERANGE);
	EXPECT_EQ(d->waitLayer(0, 0), -ERANGE);
	EXPECT_NE(d->lastError().find("past the unique staged rows (99, limit 10)"), std::string::npos)
		<< d->lastError();
}

TEST(CudaDevice, ChunkedRegistration)
{
	const size_t len = 64u << 20;
	void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(p, MAP_FAILED);
	{
		// Unaligned start and length: whole pages, 2 MiB chunks, none sharing a page.
		auto r = cuda::registerHost(static_cast<uint8_t *>(p) + 100, len - 5000,
					    cuda::kRegisterPortable | cuda::kRegisterMapped, 2u << 20);
		ASSERT_TRUE(r.isOk()) << r.status().message();
		EXPECT_EQ(r->chunks().size(), 32u);
		size_t total = 0;
		for (auto &c : r->chunks())
			total += c.len;
		EXPECT_EQ(total, len);
		cudaPointerAttributes a{};
		ASSERT_EQ(cudaPointerGetAttributes(&a, static_cast<uint8_t *>(p) + len - 4096), cudaSuccess);
		EXPECT_EQ(a.type, cudaMemoryTypeHost);
		// Registering the same range again fails and leaves the first registration alone.
		auto again = cuda::registerHost(p, len, 0, 2u << 20);
		EXPECT_FALSE(again.isOk());
		EXPECT_NE(again.status().message().find("cudaHostRegister(chunk 0"), std::string::npos)
			<< again.status().message();
		ASSERT_EQ(cudaPointerGetAttributes(&a, p), cudaSuccess);
		EXPECT_EQ(a.type, cudaMemoryTypeHost);
		cuda::HostRegistration moved = std::move(r.value());
		EXPECT_TRUE(r->empty());
		EXPECT_FALSE(moved.empty());
	}
	// Unregistered on destruction: registering again works.
	auto r2 = cuda::registerHost(p, len, 0);
	EXPECT_TRUE(r2.isOk()) << r2.status().message();
	r2->reset();
	munmap(p, len);
}

int main(int argc, char **argv)
{
	cuda::Probe p = cuda::probe();
	if (!p.usable) {
		printf("SKIP: no usable GPU (%s)\n", p.reason.c_str());
		return 77;
	}
	::testing::InitGoogleTest(&argc, argv);
	return RUN_ALL_TESTS();
}
