// SPDX-License-Identifier: Apache-2.0
// test_sigbus.cpp - a gather from a truncated pool file returns -EFAULT with the failing
// table offset and the process lives on; a SIGBUS outside a gather is never swallowed.
#include <gtest/gtest.h>

#include <csignal>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gather/gather.hpp"
#include "gather/sigbus.hpp"
#include "gather_test_util.hpp"
#include "test_util.hpp"

using namespace engrampool;
using namespace engrampool::gather;

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kMapped = 64 * kPage;   // what the mapping covers
constexpr size_t kKept = 16 * kPage;     // what is left of the file after truncation

// A shared file mapping whose file is then cut short: pages past kKept raise SIGBUS,
// exactly as a pool file truncated under a reader (or a poisoned page) would.
class TruncatedMapping {
public:
	TruncatedMapping()
	{
		path_ = dir_.file("pool.bin");
		int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
		EXPECT_GE(fd, 0);
		std::vector<uint8_t> data = eptest::patternTable(kMapped, 4);
		EXPECT_EQ((ssize_t)kMapped, write(fd, data.data(), kMapped));
		void *p = mmap(nullptr, kMapped, PROT_READ, MAP_SHARED, fd, 0);
		EXPECT_NE(MAP_FAILED, p);
		map_ = static_cast<const uint8_t *>(p);
		EXPECT_EQ(0, ftruncate(fd, kKept));
		close(fd);
		expect_.assign(data.begin(), data.begin() + kKept);
	}
	~TruncatedMapping() { munmap(const_cast<uint8_t *>(map_), kMapped); }
	const uint8_t *data() const { return map_; }
	const std::vector<uint8_t> &kept() const { return expect_; }

private:
	eptest::TempDir dir_;
	std::string path_;
	const uint8_t *map_ = nullptr;
	std::vector<uint8_t> expect_;
};

std::unique_ptr<Engine> makeEngine(uint32_t threads, Isa isa = Isa::Auto, bool nt = false)
{
	Options o;
	o.threads = threads;
	o.parallelThreshold = 0;
	o.isa = isa;
	o.nonTemporal = nt;
	auto e = Engine::create(o);
	EXPECT_TRUE(e.isOk()) << e.status().message();
	return e.isOk() ? std::move(e).value() : nullptr;
}

TEST(GatherSigbus, TruncatedFileFaultsWithOffset)
{
	TruncatedMapping m;
	for (Isa isa : { Isa::Naive, Isa::Scalar, Isa::Avx2, Isa::Avx512 }) {
		if (!isaSupported(isa))
			continue;
		auto e = makeEngine(1, isa);
		ASSERT_TRUE(e);
		std::vector<uint64_t> rows = { 0, 1, 2, 20, 3 };
		std::vector<uint8_t> out(rows.size() * kPage);
		Job j{ m.data(), kMapped / kPage, kPage, kPage, rows.data(), rows.size(), out.data(), kPage };
		// Twice: the first fault must leave SIGBUS unblocked for the second.
		for (int rep = 0; rep < 2; rep++) {
			ASSERT_EQ(-EFAULT, e->run(j)) << isaName(isa);
			Fault f = e->fault();
			EXPECT_TRUE(f.sigbus);
			EXPECT_TRUE(f.inTable);
			EXPECT_EQ(20u, f.row) << isaName(isa);
			EXPECT_GE(f.offset, 20 * kPage);
			EXPECT_LT(f.offset, 21 * kPage);
			EXPECT_EQ(reinterpret_cast<uintptr_t>(m.data()) + f.offset, f.address);
		}
		// The rows before the bad one were copied; the engine works on afterwards.
		EXPECT_EQ(0, memcmp(out.data(), m.kept().data(), 3 * kPage));
		rows = { 3, 15, 0 };
		j.count = rows.size();
		ASSERT_EQ(0, e->run(j));
		EXPECT_FALSE(e->fault().sigbus);
		EXPECT_EQ(0, memcmp(out.data() + kPage, m.kept().data() + 15 * kPage, kPage));
	}
}

TEST(GatherSigbus, RowAcrossTheCutReportsTheFirstMissingByte)
{
	TruncatedMapping m;
	auto e = makeEngine(1);
	ASSERT_TRUE(e);
	// 264-byte rows: row 248 starts at 65472, 64 bytes before the cut at 65536.
	const uint64_t row = kKept / 264;
	std::vector<uint64_t> rows = { 1, row, 2 };
	std::vector<uint8_t> out(rows.size() * 264);
	Job j{ m.data(), kMapped / 264, 264, 264, rows.data(), rows.size(), out.data(), 264 };
	ASSERT_EQ(-EFAULT, e->run(j));
	Fault f = e->fault();
	EXPECT_TRUE(f.sigbus);
	EXPECT_EQ(row, f.row);
	EXPECT_GE(f.offset, kKept);
	EXPECT_LT(f.offset, row * 264 + 264);
}

TEST(GatherSigbus, ThreadedRunFaultsAndRecovers)
{
	TruncatedMapping m;
	for (uint32_t threads : { 2u, 3u, 4u }) {
		for (bool nt : { false, true }) {
			auto e = makeEngine(threads, Isa::Auto, nt);
			ASSERT_TRUE(e);
			const uint32_t rowBytes = 256;
			const uint64_t goodRows = kKept / rowBytes;
			std::vector<uint64_t> rows = eptest::randomRows(3000, goodRows, threads);
			rows[1777] = goodRows + 44;   // one row past the cut
			std::vector<uint8_t> out(rows.size() * rowBytes);
			Job j{ m.data(), kMapped / rowBytes, rowBytes, rowBytes, rows.data(), rows.size(), out.data(), rowBytes };
			for (int rep = 0; rep < 3; rep++) {
				ASSERT_EQ(-EFAULT, e->run(j)) << threads;
				Fault f = e->fault();
				EXPECT_TRUE(f.sigbus);
				EXPECT_EQ(goodRows + 44, f.row);
				EXPECT_GE(f.offset, (goodRows + 44) * rowBytes);
				EXPECT_LT(f.offset, (goodRows + 45) * rowBytes);
			}
			rows[1777] = 0;
			ASSERT_EQ(0, e->run(j));
			EXPECT_FALSE(e->fault().sigbus);
			for (size_t i = 0; i < rows.size(); i += 97)
				ASSERT_EQ(0, memcmp(out.data() + i * rowBytes, m.kept().data() + rows[i] * rowBytes, rowBytes));
		}
	}
}

TEST(GatherSigbus, GuardedCallDirect)
{
	TruncatedMapping m;
	ASSERT_EQ(0, installSigbusHandler());
	struct Ctx {
		const volatile uint8_t *p;
		int sum;
	} ctx{ m.data() + kKept + 123, 0 };
	uintptr_t addr = 0;
	int rc = guardedCall([](void *c) { auto *x = static_cast<Ctx *>(c); x->sum += x->p[0]; }, &ctx, &addr);
	EXPECT_EQ(-EFAULT, rc);
	EXPECT_EQ(reinterpret_cast<uintptr_t>(m.data()) + kKept + 123, addr);
	ctx.p = m.data() + 5;
	EXPECT_EQ(0, guardedCall([](void *c) { auto *x = static_cast<Ctx *>(c); x->sum += x->p[0]; }, &ctx, &addr));
	EXPECT_EQ(m.kept()[5], ctx.sum);
}

// Each death test runs in a freshly executed child ("threadsafe" style), so the
// handler's first installation, and what it chains to, happen inside the child.
class GatherSigbusDeath : public ::testing::Test {
protected:
	void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

void userHandler(int) { _exit(42); }

void touchUnguarded(const uint8_t *p)
{
	volatile uint8_t v = *(const volatile uint8_t *)p;
	(void)v;
}

// A caught fault first, then one outside any gather: that one must kill.
void faultThenTouch(bool userHandlerFirst)
{
	if (userHandlerFirst)
		signal(SIGBUS, userHandler);
	TruncatedMapping m;
	auto e = makeEngine(2);
	std::vector<uint64_t> rows = { 40 };
	std::vector<uint8_t> out(kPage);
	Job j{ m.data(), kMapped / kPage, kPage, kPage, rows.data(), 1, out.data(), kPage };
	if (e->run(j) != -EFAULT)   // the engine's own fault is not passed on
		_exit(3);
	touchUnguarded(m.data() + kKept + 1);
	_exit(0);
}

TEST_F(GatherSigbusDeath, UnarmedSigbusStillKills)
{
	EXPECT_EXIT(faultThenTouch(false), ::testing::KilledBySignal(SIGBUS), "");
}

TEST_F(GatherSigbusDeath, ChainsToThePreviousHandler)
{
	EXPECT_EXIT(faultThenTouch(true), ::testing::ExitedWithCode(42), "");
}

} // namespace
