// SPDX-License-Identifier: Apache-2.0
// test_kernels.cpp - every gather kernel equals a per-row memcpy for all row sizes, strides,
// alignments, prefetch distances and store kinds, and touches no byte outside its rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include "gather/gather.hpp"
#include "gather_test_util.hpp"

using namespace engrampool::gather;

namespace {

const std::vector<uint32_t> kRowBytes = { 1,   2,   3,   7,   8,   15,  16,  31,  32,  33,   63,   64,   65,  100,
					  127, 128, 129, 200, 255, 256, 257, 263, 264, 265,  320,  384,  511, 512,
					  513, 640, 1000, 1024, 2047, 2048, 2049, 4095, 4096 };

class KernelTest : public ::testing::TestWithParam<Isa> {
protected:
	void SetUp() override
	{
		if (!isaSupported(GetParam()))
			GTEST_SKIP() << isaName(GetParam()) << " not supported by this CPU";
	}
};

std::string isaParamName(const ::testing::TestParamInfo<Isa> &info) { return isaName(info.param); }

// One combination: gather into a guarded buffer, compare rows and the gaps between them.
void checkOne(Isa isa, const std::vector<uint8_t> &table, uint32_t rowBytes, uint32_t rowStride, size_t dstPad,
	      size_t misalign, bool nt, uint32_t dist, size_t count, uint64_t seed)
{
	uint64_t tableRows = (table.size() - rowBytes) / rowStride + 1;
	std::vector<uint64_t> rows = eptest::randomRows(count, tableRows, seed);
	size_t dstStride = rowBytes + dstPad;
	size_t bytes = count * dstStride;
	// 64-aligned base (+ misalign) so streaming stores meet both aligned and unaligned rows.
	std::vector<uint8_t> outBuf(bytes + 256, 0xA5), refBuf(bytes + 256, 0xA5);
	auto base = [](std::vector<uint8_t> &v) {
		uintptr_t p = (reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t(63);
		return reinterpret_cast<uint8_t *>(p);
	};
	Job j;
	j.table = table.data();
	j.tableRows = tableRows;
	j.rowStride = rowStride;
	j.rowBytes = rowBytes;
	j.rows = rows.data();
	j.count = count;
	j.dstStride = dstStride;
	j.dst = base(refBuf) + misalign;
	eptest::referenceGather(j);
	j.dst = base(outBuf) + misalign;
	gatherRowsWith(isa, j, 0, count, nt, dist);
	// The rows, the gaps between them and 64 bytes either side.
	for (uint8_t *p = outBuf.data(); p < base(outBuf); p++)
		ASSERT_EQ(0xA5, *p);
	ASSERT_EQ(0, memcmp(base(outBuf), base(refBuf), misalign + bytes + 64))
		<< "isa " << isaName(isa) << " rowBytes " << rowBytes << " rowStride " << rowStride << " dstPad "
		<< dstPad << " misalign " << misalign << " nt " << nt << " dist " << dist;
}

TEST_P(KernelTest, EqualsPerRowMemcpy)
{
	const Isa isa = GetParam();
	std::vector<uint8_t> table = eptest::patternTable(1 << 20);
	uint64_t seed = 1;
	for (uint32_t rowBytes : kRowBytes) {
		for (uint32_t rowStride : { rowBytes, (rowBytes + 63) & ~63u, rowBytes + 13 }) {
			for (size_t dstPad : { size_t(0), size_t(5), size_t(64) }) {
				for (size_t misalign : { 0, 8, 17 }) {
					for (bool nt : { false, true }) {
						checkOne(isa, table, rowBytes, rowStride, dstPad, misalign, nt, 8, 67, seed++);
						if (HasFatalFailure())
							return;
					}
				}
			}
		}
	}
}

TEST_P(KernelTest, PrefetchDistancesAndRanges)
{
	const Isa isa = GetParam();
	std::vector<uint8_t> table = eptest::patternTable(1 << 20, 7);
	for (uint32_t dist : { 0u, 1u, 2u, 8u, 31u, 64u, 1000u }) {
		for (size_t count : { size_t(1), size_t(2), size_t(9), size_t(100), size_t(517) }) {
			checkOne(isa, table, 264, 264, 0, 0, false, dist, count, dist * 1000 + count);
			checkOne(isa, table, 320, 320, 0, 0, true, dist, count, dist * 1000 + count + 1);
			if (HasFatalFailure())
				return;
		}
	}
}

TEST_P(KernelTest, SubrangeTouchesOnlyItsRows)
{
	const Isa isa = GetParam();
	std::vector<uint8_t> table = eptest::patternTable(256 * 1024, 3);
	const uint32_t rowBytes = 320;
	std::vector<uint64_t> rows = eptest::randomRows(100, table.size() / rowBytes, 5);
	std::vector<uint8_t> out(100 * rowBytes, 0xEE), ref(100 * rowBytes, 0xEE);
	Job j{ table.data(), table.size() / rowBytes, rowBytes, rowBytes, rows.data(), rows.size(), ref.data(), rowBytes };
	Job sub = j;
	sub.dst = out.data();
	gatherRowsWith(isa, sub, 30, 70, false, 8);
	eptest::referenceGather(j);
	EXPECT_EQ(0, memcmp(out.data() + 30 * rowBytes, ref.data() + 30 * rowBytes, 40 * rowBytes));
	for (size_t i = 0; i < 30 * rowBytes; i++)
		ASSERT_EQ(0xEE, out[i]) << i;
	for (size_t i = 70 * rowBytes; i < out.size(); i++)
		ASSERT_EQ(0xEE, out[i]) << i;
	// Empty ranges do nothing.
	std::vector<uint8_t> before = out;
	gatherRowsWith(isa, sub, 50, 50, true, 8);
	gatherRowsWith(isa, sub, 60, 50, false, 8);
	EXPECT_EQ(before, out);
}

// The last row ends exactly at a page followed by an inaccessible page: no kernel may
// read past the row (wide loads, overlapping tails and masked loads alike).
TEST_P(KernelTest, NoReadPastTheLastRow)
{
	const Isa isa = GetParam();
	const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
	uint8_t *map = static_cast<uint8_t *>(mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, mprotect(map + 3 * page, page, PROT_NONE));
	for (size_t i = 0; i < 3 * page; i++)
		map[i] = static_cast<uint8_t>(i * 7 + 1);
	for (uint32_t rowBytes : kRowBytes) {
		if (rowBytes > 3 * page)
			continue;
		const uint8_t *table = map + 3 * page - rowBytes;   // one row, flush with the guard page
		uint64_t row = 0;
		for (bool nt : { false, true }) {
			std::vector<uint8_t> out(rowBytes + 64, 0);
			Job j{ table, 1, rowBytes, rowBytes, &row, 1, out.data(), rowBytes };
			gatherRowsWith(isa, j, 0, 1, nt, 8);
			ASSERT_EQ(0, memcmp(out.data(), table, rowBytes)) << rowBytes;
		}
	}
	munmap(map, 4 * page);
}

INSTANTIATE_TEST_SUITE_P(Isa, KernelTest, ::testing::Values(Isa::Naive, Isa::Scalar, Isa::Avx2, Isa::Avx512),
			 isaParamName);

TEST(Gather, DispatchPicksASupportedKernel)
{
	Isa best = bestIsa();
	EXPECT_NE(Isa::Auto, best);
	EXPECT_TRUE(isaSupported(best));
	EXPECT_TRUE(isaSupported(Isa::Scalar));
	EXPECT_TRUE(isaSupported(Isa::Naive));
	std::vector<uint8_t> table = eptest::patternTable(64 * 1024);
	std::vector<uint64_t> rows = eptest::randomRows(50, 1024, 2);
	std::vector<uint8_t> out(50 * 64), ref(50 * 64);
	Job j{ table.data(), 1024, 64, 64, rows.data(), 50, ref.data(), 64 };
	eptest::referenceGather(j);
	j.dst = out.data();
	gatherRows(j, 0, 50, false, 8);
	EXPECT_EQ(ref, out);
}

TEST(Gather, CostModelArithmetic)
{
	engrampool::CostModel c;
	EXPECT_EQ(0u, modeledNs(c, 1000, 1 << 20, 8));
	c.latencyNs = 250;
	EXPECT_EQ(0u, modeledNs(c, 0, 0, 8));
	EXPECT_EQ(250u, modeledNs(c, 1, 64, 8));
	EXPECT_EQ(250u, modeledNs(c, 8, 512, 8));
	EXPECT_EQ(500u, modeledNs(c, 9, 576, 8));
	EXPECT_EQ(250u * 9, modeledNs(c, 9, 576, 0));      // nothing in flight = one at a time
	c.linkGbps = 1.0;                                  // 1 byte/ns: bandwidth-bound now
	EXPECT_EQ(100000u, modeledNs(c, 1000, 100000, 1000));
	EXPECT_EQ(250u * 125, modeledNs(c, 1000, 1000, 8)); // latency-bound
}

// A worker keeps at most mlpLines cache lines in flight, however far it prefetches: a
// 320-byte row is 5 lines, so 24 rows ahead would be 120 lines, and the core's limit
// (32 by default) decides.
TEST(Gather, CostModelBoundsTheLinesInFlightPerWorker)
{
	engrampool::CostModel c;
	c.latencyNs = 750;
	ASSERT_EQ(32u, c.mlpLines) << "the default per-core bound the README documents";
	// 2048 rows x 5 lines = 10240 lines; 32 in flight -> 320 rounds of 750 ns.
	EXPECT_EQ(750u * 320, modeledNs(c, 2048, 2048 * 320, 24, 1));
	EXPECT_EQ(750u * 160, modeledNs(c, 2048, 2048 * 320, 24, 2)); // two workers, twice the lines
	// Few rows ahead: the prefetch distance is the bound (4 rows x 5 lines = 20 < 32).
	EXPECT_EQ(750u * 512, modeledNs(c, 2048, 2048 * 320, 4, 1));
	// 0 = no per-core bound: rows in flight = prefetch distance x workers (24 x 5 lines).
	c.mlpLines = 0;
	EXPECT_EQ(750u * 86, modeledNs(c, 2048, 2048 * 320, 24, 1)); // ceil(10240 / 120)
	// A larger row costs more lines, never fewer rounds.
	c.mlpLines = 32;
	EXPECT_LT(modeledNs(c, 2048, 2048 * 256, 24, 1), modeledNs(c, 2048, 2048 * 320, 24, 1));
}

} // namespace

TEST_P(KernelTest, DestinationIndexPlacesEachRow)
{
	// Job::dstIndex: row i lands in dst row dstIndex[i] (a permutation with gaps); the
	// rows not named keep their bytes.
	const Isa isa = GetParam();
	std::vector<uint8_t> table = eptest::patternTable(1 << 20, 3);
	for (uint32_t rowBytes : { 64u, 160u, 264u, 320u, 100u }) {
		for (bool nt : { false, true }) {
			const size_t count = 300, slots = 450;
			const size_t dstStride = (rowBytes + 63) & ~size_t(63);
			uint64_t tableRows = table.size() / rowBytes;
			std::vector<uint64_t> rows = eptest::randomRows(count, tableRows, rowBytes + nt);
			std::vector<uint32_t> dst(slots);
			for (size_t i = 0; i < slots; i++)
				dst[i] = (uint32_t)i;
			std::mt19937_64 rng(rowBytes);
			std::shuffle(dst.begin(), dst.end(), rng);
			dst.resize(count);
			std::vector<uint8_t> out(slots * dstStride + 64, 0x5A), ref(slots * dstStride + 64, 0x5A);
			Job j;
			j.table = table.data();
			j.tableRows = tableRows;
			j.rowStride = rowBytes;
			j.rowBytes = rowBytes;
			j.rows = rows.data();
			j.count = count;
			j.dstStride = dstStride;
			j.dstIndex = dst.data();
			j.dst = ref.data();
			eptest::referenceGather(j);
			j.dst = out.data();
			gatherRowsWith(isa, j, 0, count / 3, nt, 8);
			gatherRowsWith(isa, j, count / 3, count, nt, 8);
			ASSERT_EQ(0, memcmp(out.data(), ref.data(), out.size())) << "rowBytes " << rowBytes << " nt " << nt;
		}
	}
}
