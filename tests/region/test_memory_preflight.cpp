// SPDX-License-Identifier: Apache-2.0
// test_memory_preflight.cpp - the NUMA create preflight refuses only on figures that
// agree with each other (issue 10: a node still coming online after boot reported
// 5.6 GiB of a 24 GiB machine and `create` refused a 6 GiB pool the kernel would give).
#include <gtest/gtest.h>

#include "region/memory_preflight.hpp"
#include "region/region.hpp"
#include "test_util.hpp"

using namespace engrampool;
using namespace engrampool::backend;

namespace {
constexpr uint64_t GiB = 1ull << 30;

MemoryFigures oneNode(uint64_t sysTotal, uint64_t sysAvail, uint64_t nodeTotal, uint64_t nodeFree,
		      uint64_t nodeReclaim)
{
	MemoryFigures f;
	f.systemTotal = sysTotal;
	f.systemAvailable = sysAvail;
	f.nodes.push_back({0, nodeTotal, nodeFree, nodeReclaim});
	return f;
}
} // namespace

TEST(MemoryPreflight, ParsesSystemAndNodeMeminfo)
{
	std::string sys = "MemTotal:       24683584 kB\nMemFree:        22474404 kB\nMemAvailable:   23292984 kB\n";
	EXPECT_EQ(meminfoField(sys, "MemTotal"), 24683584ull * 1024);
	EXPECT_EQ(meminfoField(sys, "MemAvailable"), 23292984ull * 1024);
	EXPECT_EQ(meminfoField(sys, "Mem"), 0u);
	std::string node = "Node 0 MemTotal:        5465848 kB\nNode 0 MemFree:         3256720 kB\n"
			   "Node 0 Active(file):     327692 kB\nNode 0 Inactive(file):   433300 kB\n";
	EXPECT_EQ(meminfoField(node, "MemFree"), 3256720ull * 1024);
	EXPECT_EQ(meminfoField(node, "Inactive(file)"), 433300ull * 1024);
	EXPECT_EQ(meminfoField(node, "Active"), 0u);
}

// The reported case: the node says 5.6 GiB total / 4.5 GiB free, the system 23.5 GiB.
TEST(MemoryPreflight, LaggingNodeFiguresNeverRefuse)
{
	auto f = oneNode(uint64_t(23.5 * GiB), 23 * GiB, uint64_t(5.6 * GiB), uint64_t(4.53 * GiB), 0);
	PreflightVerdict v = decideNodePreflight(f, 0, 6 * GiB);
	EXPECT_FALSE(v.refuse) << v.reason;
	EXPECT_FALSE(v.trusted);
	EXPECT_NE(v.reason.find("coming online"), std::string::npos) << v.reason;
}

TEST(MemoryPreflight, PageCacheCountsAsAvailable)
{
	// 2 GiB free plus 6 GiB of clean page cache: a 6 GiB pool fits.
	auto f = oneNode(16 * GiB, 0, 16 * GiB, 2 * GiB, 6 * GiB);
	PreflightVerdict v = decideNodePreflight(f, 0, 6 * GiB);
	EXPECT_TRUE(v.trusted);
	EXPECT_FALSE(v.refuse) << v.reason;
	EXPECT_EQ(v.available, 8 * GiB);
}

TEST(MemoryPreflight, ConsistentFiguresStillRefuseWhatCannotFit)
{
	MemoryFigures f;
	f.systemTotal = 32 * GiB;
	f.systemAvailable = 20 * GiB;
	f.nodes.push_back({0, 16 * GiB, 12 * GiB, 1 * GiB});
	f.nodes.push_back({1, 16 * GiB, 3 * GiB, 0});
	PreflightVerdict v = decideNodePreflight(f, 1, 6 * GiB);
	EXPECT_TRUE(v.trusted);
	EXPECT_TRUE(v.refuse);
	EXPECT_NE(v.reason.find("NUMA node 1"), std::string::npos) << v.reason;
	EXPECT_NE(v.reason.find("6.00 GiB"), std::string::npos) << v.reason;
	EXPECT_FALSE(decideNodePreflight(f, 0, 6 * GiB).refuse);
}

TEST(MemoryPreflight, UnknownNodeFiguresLeaveItToTheKernel)
{
	MemoryFigures f;
	f.systemTotal = 8 * GiB;
	PreflightVerdict v = decideNodePreflight(f, 0, 64 * GiB);
	EXPECT_FALSE(v.refuse);
	EXPECT_FALSE(v.trusted);
}

// On this machine: the figures read from /proc and /sys are self-consistent input, and a
// small emul: pool bound to node 0 is created whatever the node currently reports.
TEST(MemoryPreflight, SmallBoundPoolIsCreatedHere)
{
	MemoryFigures f = readMemoryFigures();
	ASSERT_GT(f.systemTotal, 0u);
	ASSERT_FALSE(f.nodes.empty());
	std::string name = eptest::uniqueName("eptest-preflight");
	auto uri = parseRegionUri("emul:" + name + "?node=0");
	ASSERT_TRUE(uri) << uri.status().message();
	CreateOptions o;
	o.size = 64ull << 20;
	auto r = Region::create(*uri, o);
	ASSERT_TRUE(r) << r.status().message();
	r.value().reset();
	EXPECT_TRUE(Region::destroy(*uri));
}
