// SPDX-License-Identifier: Apache-2.0
// test_host_device.cpp - the host device: buffers, scatter with cache rows, admits,
// errors with clear messages, NUMA placement.
#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <thread>

#include "device/device.hpp"
#include "device_test_util.hpp"
#include "ep_config.h"

using namespace engrampool;
using namespace engrampool::device;

namespace {

std::unique_ptr<Device> hostDevice(int numaNode = -1)
{
	Options o;
	o.kind = Kind::Host;
	o.numaNode = numaNode;
	auto d = Device::create(o);
	EXPECT_TRUE(d.isOk()) << d.status().message();
	return d ? std::move(d.value()) : nullptr;
}

// Cache contents as the test believes them, read back from the device.
std::vector<uint8_t> readCache(const Device &d, size_t rows, uint32_t stride)
{
	return std::vector<uint8_t>(d.cacheRows(), d.cacheRows() + rows * stride);
}

} // namespace

TEST(HostDevice, Basics)
{
	auto d = hostDevice();
	ASSERT_TRUE(d);
	EXPECT_EQ(d->kind(), Kind::Host);
	EXPECT_EQ(d->stream(), nullptr);
	EXPECT_EQ(d->layerEvent(0, 0), nullptr);
	EXPECT_EQ(d->cacheRows(), nullptr);
	EXPECT_NE(d->describe().find("host"), std::string::npos);
	// Nothing allocated yet: a clear error, no crash.
	EXPECT_EQ(d->submitLayer(0, 0, 1, 1, 0, 64), -EINVAL);
	EXPECT_NE(d->lastError().find("no buffers allocated"), std::string::npos) << d->lastError();
	EXPECT_EQ(d->waitLayer(0, 0), -EINVAL);
	EXPECT_EQ(d->buffers(0, 0).stagingRows, nullptr);
}

TEST(HostDevice, AllocationSizesAndAliases)
{
	auto d = hostDevice();
	ASSERT_TRUE(d);
	const uint32_t slots = 3, layers = 2, stride = 264;
	const size_t maxRows = 1000, maxOut = 1700;
	ASSERT_TRUE(d->allocate(slots, layers, maxRows, maxOut, stride).isOk()) << d->lastError();
	struct Range {
		uintptr_t begin, end;
	};
	std::vector<Range> ranges;
	for (uint32_t s = 0; s < slots; s++) {
		for (uint32_t l = 0; l < layers; l++) {
			const LayerBuffers &b = d->buffers(s, l);
			ASSERT_NE(b.stagingRows, nullptr);
			ASSERT_NE(b.stagingIndex, nullptr);
			ASSERT_NE(b.stagingAdmit, nullptr);
			ASSERT_NE(b.output, nullptr);
			EXPECT_EQ(b.deviceRows, b.stagingRows);
			EXPECT_EQ(b.deviceIndex, b.stagingIndex);
			EXPECT_EQ(b.deviceAdmit, b.stagingAdmit);
			for (uintptr_t p : {(uintptr_t)b.stagingRows, (uintptr_t)b.stagingIndex, (uintptr_t)b.stagingAdmit,
					    (uintptr_t)b.output})
				EXPECT_EQ(p % 64, 0u);
			// Every byte of every buffer is writable (and the test runs under ASan/valgrind
			// to catch overruns).
			std::memset(b.stagingRows, 0xa5, maxRows * stride);
			std::memset(b.stagingIndex, 0xa5, maxOut * 4);
			std::memset(b.stagingAdmit, 0xa5, maxRows * 8);
			std::memset(b.output, 0xa5, maxOut * stride);
			ranges.push_back({(uintptr_t)b.stagingRows, (uintptr_t)b.stagingRows + maxRows * stride});
			ranges.push_back({(uintptr_t)b.stagingIndex, (uintptr_t)b.stagingIndex + maxOut * 4});
			ranges.push_back({(uintptr_t)b.stagingAdmit, (uintptr_t)b.stagingAdmit + maxRows * 8});
			ranges.push_back({(uintptr_t)b.output, (uintptr_t)b.output + maxOut * stride});
		}
	}
	// No two buffers overlap.
	std::sort(ranges.begin(), ranges.end(), [](const Range &a, const Range &b) { return a.begin < b.begin; });
	for (size_t i = 1; i < ranges.size(); i++)
		EXPECT_LE(ranges[i - 1].end, ranges[i].begin) << "buffers " << i - 1 << " and " << i << " overlap";
	// Out of range: empty buffers, not a crash.
	EXPECT_EQ(d->buffers(slots, 0).output, nullptr);
	EXPECT_EQ(d->buffers(0, layers).output, nullptr);
	EXPECT_NE(d->describe().find("3 slots x 2 layers"), std::string::npos) << d->describe();
}

TEST(HostDevice, AllocateRejectsBadArguments)
{
	auto d = hostDevice();
	ASSERT_TRUE(d);
	struct Case {
		uint32_t slots, layers;
		size_t maxRows, maxOut;
		uint32_t stride;
		int code;
		const char *text;
	} cases[] = {
		{0, 1, 10, 10, 64, -EINVAL, "slots"},
		{1, 0, 10, 10, 64, -EINVAL, "layers"},
		{1, 1, 10, 10, 0, -EINVAL, "stride"},
		{1, 1, 0, 10, 64, -EINVAL, "maxRows"},
		{1, 1, 10, 0, 64, -EINVAL, "maxOut"},
		{1, 1, size_t(kFromCache) + 1, 10, 64, -EINVAL, "index limit"},
		{1, 1, size_t(1) << 31, UINT32_MAX, UINT32_MAX, -EOVERFLOW, "overflow"},
		{UINT32_MAX, UINT32_MAX, 1u << 30, 1u << 30, 4096, -EOVERFLOW, "overflow"},
	};
	for (const Case &c : cases) {
		Status s = d->allocate(c.slots, c.layers, c.maxRows, c.maxOut, c.stride);
		EXPECT_EQ(s.code(), c.code) << s.message();
		EXPECT_NE(s.message().find(c.text), std::string::npos) << s.message();
		EXPECT_EQ(d->lastError(), s.message());
	}
	// A size the machine cannot map: an error naming the size, not a crash.
	Status s = d->allocate(1, 1, 1u << 31, 1u << 31, 1u << 20);
	EXPECT_FALSE(s.isOk());
	EXPECT_NE(s.message().find("mmap"), std::string::npos) << s.message();
	// Still usable afterwards.
	EXPECT_TRUE(d->allocate(1, 1, 4, 4, 64).isOk());
}

// Scatter with staged and cache rows, then admits, for many row sizes (the fast
// fixed-size paths and the general one).
TEST(HostDevice, ScatterAndAdmitAllRowSizes)
{
	const uint32_t strides[] = {1,   7,   63,  64,  96,  128, 192,  256,  264,  320,
				    384, 500, 512, 768, 1000, 1024, 2048, 3000, 4096, 8192};
	for (uint32_t stride : strides) {
		SCOPED_TRACE("rowStride " + std::to_string(stride));
		auto d = hostDevice();
		ASSERT_TRUE(d);
		const size_t maxRows = 300, maxOut = 700, cacheRows = 50;
		ASSERT_TRUE(d->allocate(2, 2, maxRows, maxOut, stride).isOk()) << d->lastError();
		ASSERT_TRUE(d->allocateCache(cacheRows, stride).isOk()) << d->lastError();
		std::mt19937_64 rng(stride);
		std::vector<uint8_t> cache(cacheRows * stride);
		for (auto &b : cache)
			b = (uint8_t)rng();
		std::memcpy(d->cacheRows(), cache.data(), cache.size());
		for (int step = 0; step < 6; step++) {
			uint32_t slot = step % 2, layer = (step / 2) % 2;
			size_t uniq = 1 + rng() % maxRows, out = rng() % (maxOut + 1), admits = rng() % 20;
			eptest::LayerCase c = eptest::makeCase(rng, stride, uniq, out, cacheRows, admits);
			const LayerBuffers &b = d->buffers(slot, layer);
			eptest::fill(b, c);
			ASSERT_EQ(d->submitLayer(slot, layer, uniq, out, c.admits(), stride), 0) << d->lastError();
			EXPECT_EQ(d->waitLayer(slot, layer), 0);
			// Output uses the cache as it was before this submit's admits.
			std::vector<uint8_t> want = eptest::expectedOutput(c, cache, stride);
			ASSERT_EQ(0, std::memcmp(b.output, want.data(), want.size())) << "step " << step;
			eptest::applyAdmits(c, cache, stride);
			ASSERT_EQ(readCache(*d, cacheRows, stride), cache) << "step " << step;
		}
	}
}

TEST(HostDevice, AdmittedRowsAreServedFromTheCache)
{
	auto d = hostDevice();
	ASSERT_TRUE(d);
	const uint32_t stride = 320;
	ASSERT_TRUE(d->allocate(1, 1, 8, 8, stride).isOk());
	ASSERT_TRUE(d->allocateCache(4, stride).isOk());
	const LayerBuffers &b = d->buffers(0, 0);
	for (uint32_t r = 0; r < 3; r++)
		std::memset(b.stagingRows + r * stride, 0x10 + r, stride);
	// Step 1: rows 0..2 staged; admit row 2 -> slot 3, row 0 -> slot 1.
	uint32_t index1[] = {0, 1, 2};
	uint32_t pairs1[] = {2, 3, 0, 1};
	std::memcpy(b.stagingIndex, index1, sizeof(index1));
	std::memcpy(b.stagingAdmit, pairs1, sizeof(pairs1));
	ASSERT_EQ(d->submitLayer(0, 0, 3, 3, 2, stride), 0) << d->lastError();
	// Step 2: no staged rows at all, everything from the cache.
	uint32_t index2[] = {kFromCache | 3, kFromCache | 1, kFromCache | 3, kFromCache | 0};
	std::memcpy(b.stagingIndex, index2, sizeof(index2));
	ASSERT_EQ(d->submitLayer(0, 0, 0, 4, 0, stride), 0) << d->lastError();
	const uint8_t want[] = {0x12, 0x10, 0x12, 0x00};
	for (size_t i = 0; i < 4; i++)
		for (uint32_t k = 0; k < stride; k++)
			ASSERT_EQ(b.output[i * stride + k], want[i]) << "row " << i << " byte " << k;
}

TEST(HostDevice, StableAddressesAcrossSubmits)
{
	auto d = hostDevice();
	ASSERT_TRUE(d);
	ASSERT_TRUE(d->allocate(2, 3, 64, 128, 256).isOk());
	ASSERT_TRUE(d->allocateCache(16, 256).isOk());
	std::vector<LayerBuffers> before;
	for (uint32_t s = 0; s < 2; s++)
		for (uint32_t l = 0; l < 3; l++)
			before.push_back(d->buffers(s, l));
	uint8_t *cache = d->cacheRows();
	std::mt19937_64 rng(7);
	for (int step = 0; step < 50; step++) {
		uint32_t s = step % 2, l = step % 3;
		eptest::LayerCase c = eptest::makeCase(rng, 256, 64, 128, 16, 4);
		eptest::fill(d->buffers(s, l), c);
		ASSERT_EQ(d->submitLayer(s, l, 64, 128, c.admits(), 256), 0) << d->lastError();
	}
	size_t i = 0;
	for (uint32_t s = 0; s < 2; s++)
		for (uint32_t l = 0; l < 3; l++, i++) {
			const LayerBuffers &b = d->buffers(s, l);
			EXPECT_EQ(b.stagingRows, before[i].stagingRows);
			EXPECT_EQ(b.stagingIndex, before[i].stagingIndex);
			EXPECT_EQ(b.stagingAdmit, before[i].stagingAdmit);
			EXPECT_EQ(b.output, before[i].output);
		}
	EXPECT_EQ(d->cacheRows(), cache);
}

TEST(HostDevice, NarrowerRowStrideThanAllocated)
{
	auto d = hostDevice();
	ASSERT_TRUE(d);
	ASSERT_TRUE(d->allocate(1, 1, 100, 200, 320).isOk());
	ASSERT_TRUE(d->allocateCache(10, 320).isOk());
	std::mt19937_64 rng(3);
	eptest::LayerCase c = eptest::makeCase(rng, 264, 100, 200, 10, 5);
	std::vector<uint8_t> cache(10 * 320);
	for (auto &x : cache)
		x = (uint8_t)rng();
	std::memcpy(d->cacheRows(), cache.data(), cache.size());
	eptest::fill(d->buffers(0, 0), c);
	ASSERT_EQ(d->submitLayer(0, 0, 100, 200, c.admits(), 264), 0) << d->lastError();
	auto want = eptest::expectedOutput(c, cache, 320);
	EXPECT_EQ(0, std::memcmp(d->buffers(0, 0).output, want.data(), want.size()));
	eptest::applyAdmits(c, cache, 320);
	EXPECT_EQ(readCache(*d, 10, 320), cache);
}

TEST(HostDevice, SubmitErrorsAreClear)
{
	auto d = hostDevice();
	ASSERT_TRUE(d);
	ASSERT_TRUE(d->allocate(2, 2, 10, 20, 64).isOk());
	const LayerBuffers &b = d->buffers(1, 1);
	std::memset(b.stagingIndex, 0, 20 * 4);
	struct Case {
		uint32_t slot, layer;
		size_t uniq, out, admits;
		uint32_t stride;
		int code;
		const char *text;
	} cases[] = {
		{2, 0, 1, 1, 0, 64, -EINVAL, "slot out of range (2, limit 2)"},
		{0, 2, 1, 1, 0, 64, -EINVAL, "layer out of range"},
		{1, 1, 11, 1, 0, 64, -EINVAL, "more unique rows than allocated (11, limit 10)"},
		{1, 1, 1, 21, 0, 64, -EINVAL, "more output rows"},
		{1, 1, 1, 1, 0, 65, -EINVAL, "row stride"},
		{1, 1, 1, 1, 0, 0, -EINVAL, "row stride"},
		{1, 1, 1, 1, 1, 64, -EINVAL, "admits without a cache"},
	};
	for (const Case &c : cases) {
		EXPECT_EQ(d->submitLayer(c.slot, c.layer, c.uniq, c.out, c.admits, c.stride), c.code);
		EXPECT_NE(d->lastError().find(c.text), std::string::npos) << d->lastError();
		EXPECT_NE(d->lastError().find("submitLayer"), std::string::npos) << d->lastError();
	}
	// A bad index entry: -ERANGE, the entry and the limit named; waitLayer reports it
	// until a good submit replaces it.
	b.stagingIndex[5] = 7;
	EXPECT_EQ(d->submitLayer(1, 1, 3, 20, 0, 64), -ERANGE);
	EXPECT_NE(d->lastError().find("past the unique staged rows (7, limit 3)"), std::string::npos) << d->lastError();
	EXPECT_NE(d->lastError().find("slot 1, layer 1"), std::string::npos) << d->lastError();
	EXPECT_EQ(d->waitLayer(1, 1), -ERANGE);
	b.stagingIndex[5] = kFromCache | 0;
	EXPECT_EQ(d->submitLayer(1, 1, 3, 20, 0, 64), -ERANGE);
	EXPECT_NE(d->lastError().find("cache"), std::string::npos) << d->lastError();
	ASSERT_TRUE(d->allocateCache(4, 64).isOk());
	b.stagingIndex[5] = kFromCache | 4;
	EXPECT_EQ(d->submitLayer(1, 1, 3, 20, 0, 64), -ERANGE);
	EXPECT_NE(d->lastError().find("past the cache rows (4, limit 4)"), std::string::npos) << d->lastError();
	b.stagingIndex[5] = kFromCache | 3;
	b.stagingAdmit[0] = 0;
	b.stagingAdmit[1] = 9;
	EXPECT_EQ(d->submitLayer(1, 1, 3, 20, 1, 64), -ERANGE);
	EXPECT_NE(d->lastError().find("cache slot past the cache (9, limit 4)"), std::string::npos) << d->lastError();
	b.stagingAdmit[0] = 3;
	b.stagingAdmit[1] = 1;
	EXPECT_EQ(d->submitLayer(1, 1, 3, 20, 1, 64), -ERANGE);
	EXPECT_NE(d->lastError().find("staged row past uniqueRows (3, limit 3)"), std::string::npos) << d->lastError();
	b.stagingAdmit[0] = 2;
	EXPECT_EQ(d->submitLayer(1, 1, 3, 20, 1, 64), 0) << d->lastError();
	EXPECT_EQ(d->waitLayer(1, 1), 0);
	// A cache narrower than the rows cannot serve them.
	ASSERT_TRUE(d->allocateCache(4, 32).isOk());
	EXPECT_EQ(d->submitLayer(1, 1, 3, 20, 0, 64), -ERANGE);
	EXPECT_EQ(d->waitLayer(2, 0), -EINVAL);
}

TEST(HostDevice, CacheAllocation)
{
	auto d = hostDevice();
	ASSERT_TRUE(d);
	EXPECT_EQ(d->allocateCache(10, 0).code(), -EINVAL);
	EXPECT_EQ(d->allocateCache(size_t(kFromCache) + 1, 64).code(), -EINVAL);
	EXPECT_NE(d->lastError().find("index limit"), std::string::npos) << d->lastError();
	Status s = d->allocateCache(kFromCache, UINT32_MAX);
	EXPECT_FALSE(s.isOk());
	EXPECT_NE(s.message().find("host device cache: host memory: mmap"), std::string::npos) << s.message();
	ASSERT_TRUE(d->allocateCache(1000, 264).isOk());
	ASSERT_NE(d->cacheRows(), nullptr);
	std::memset(d->cacheRows(), 1, 1000 * 264);
	ASSERT_TRUE(d->allocateCache(0, 0).isOk());
	EXPECT_EQ(d->cacheRows(), nullptr);
}

TEST(HostDevice, Reallocate)
{
	auto d = hostDevice();
	ASSERT_TRUE(d);
	ASSERT_TRUE(d->allocate(4, 4, 100, 100, 64).isOk());
	ASSERT_TRUE(d->allocate(1, 2, 10, 20, 4096).isOk());
	EXPECT_EQ(d->buffers(3, 3).output, nullptr);
	std::memset(d->buffers(0, 1).output, 0, 20 * 4096);
	EXPECT_EQ(d->submitLayer(0, 2, 1, 1, 0, 64), -EINVAL);
}

TEST(HostDevice, NumaPlacement)
{
	// Node 0 always exists (with or without libnuma).
	auto d = hostDevice(0);
	ASSERT_TRUE(d);
	ASSERT_TRUE(d->allocate(2, 2, 100, 100, 264).isOk()) << d->lastError();
	EXPECT_NE(d->describe().find("NUMA node 0"), std::string::npos);
	Options o;
	o.numaNode = 4000;
	auto bad = Device::create(o);
	ASSERT_FALSE(bad.isOk());
	EXPECT_NE(bad.status().message().find("NUMA node 4000"), std::string::npos) << bad.status().message();
#if EP_HAVE_NUMA
	EXPECT_EQ(bad.code(), -ENODEV);
#else
	EXPECT_EQ(bad.code(), EP_E_UNSUPPORTED);
#endif
}

// Different (slot, layer) pairs may be submitted from different threads.
TEST(HostDevice, ConcurrentSlots)
{
	auto d = hostDevice();
	ASSERT_TRUE(d);
	const uint32_t slots = 4;
	ASSERT_TRUE(d->allocate(slots, 1, 200, 400, 320).isOk());
	std::vector<std::thread> threads;
	std::atomic<int> bad{0};
	for (uint32_t s = 0; s < slots; s++)
		threads.emplace_back([&, s] {
			std::mt19937_64 rng(s);
			for (int step = 0; step < 50; step++) {
				eptest::LayerCase c = eptest::makeCase(rng, 320, 200, 400, 0, 0);
				eptest::fill(d->buffers(s, 0), c);
				if (d->submitLayer(s, 0, 200, 400, 0, 320) != 0 || d->waitLayer(s, 0) != 0)
					bad++;
				auto want = eptest::expectedOutput(c, {}, 0);
				if (std::memcmp(d->buffers(s, 0).output, want.data(), want.size()) != 0)
					bad++;
			}
		});
	for (auto &t : threads)
		t.join();
	EXPECT_EQ(bad.load(), 0);
}
