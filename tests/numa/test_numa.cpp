// SPDX-License-Identifier: Apache-2.0
// test_numa.cpp - lib/numa: the one set of node checks (memory and CPUs), binding and
// thread placement on node 0, bus-id normalisation and the exact sysfs lookup of a
// PCI device's node.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "ep_config.h"
#include "numa/numa.hpp"
#include "test_util.hpp"

using namespace engrampool;

TEST(Numa, NegativeNodeMeansNoPlacement)
{
	EXPECT_TRUE(numa::checkNode(-1, numa::Need::Memory, "x").isOk());
	EXPECT_TRUE(numa::checkNode(-1, numa::Need::Cpus, "x").isOk());
	EXPECT_TRUE(numa::runOnNode(-1, "x").isOk());
	EXPECT_GE(numa::nodeCount(), 1);
}

TEST(Numa, NodeZeroIsUsableEverywhere)
{
	EXPECT_TRUE(numa::checkNode(0, numa::Need::Memory, "x").isOk());
	EXPECT_TRUE(numa::checkNode(0, numa::Need::Cpus, "x").isOk());
	const size_t len = 1 << 20;
	void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	Status s = numa::bindMemory(p, len, 0, "test memory");
	ASSERT_TRUE(s.isOk()) << s.message();
	std::memset(p, 1, len);
	int node = numa::nodeOfAddress(p);
	if (numa::available())
		EXPECT_EQ(0, node);
	munmap(p, len);
	Status t;
	std::thread th([&] { t = numa::runOnNode(0, "test thread"); });
	th.join();
	EXPECT_TRUE(t.isOk()) << t.message();
}

TEST(Numa, MissingNodeIsOneClearError)
{
	for (numa::Need need : {numa::Need::Memory, numa::Need::Cpus}) {
		Status s = numa::checkNode(4000, need, "device memory");
		ASSERT_FALSE(s.isOk());
		EXPECT_NE(std::string::npos, s.message().find("device memory: NUMA node 4000")) << s.message();
#if EP_HAVE_NUMA
		EXPECT_EQ(-ENODEV, s.code());
		if (numa::available())
			EXPECT_NE(std::string::npos, s.message().find(need == numa::Need::Memory ? "nodes with memory: "
												  : "nodes with CPUs: "))
				<< s.message();
#else
		EXPECT_EQ(EP_E_UNSUPPORTED, s.code());
#endif
	}
	char buf[4096];
	EXPECT_FALSE(numa::bindMemory(buf, sizeof(buf), 4000, "x").isOk()) << "bindMemory checks the node first";
	EXPECT_FALSE(numa::runOnNode(4000, "x").isOk());
}

TEST(Numa, PciBusIdsAreNormalised)
{
	EXPECT_EQ("0000:3b:00.0", numa::normalizePciBusId("0000:3B:00.0"));
	EXPECT_EQ("0000:3b:00.0", numa::normalizePciBusId("00000000:3B:00.0")) << "CUDA's 8-digit domain";
	EXPECT_EQ("0000:3b:00.0", numa::normalizePciBusId("3b:00.0")) << "no domain: 0";
	EXPECT_EQ("0001:03:1f.7", numa::normalizePciBusId("1:3:1F.7"));
	EXPECT_EQ("10000:01:00.0", numa::normalizePciBusId("10000:01:00.0"));
	for (const char *bad : {"", "3b", "3b:00", "0000:3b:00.8", "0000:3b:20.0", "0000:3g:00.0", "0000:123:00.0",
				"000000000:3b:00.0", ":3b:00.0", "0000:3b:00.", "x:3b:00.0"})
		EXPECT_EQ("", numa::normalizePciBusId(bad)) << bad;
}

// The old lookup matched bus ids by substring, so "03:00.0" or a GPU in another PCI
// domain could pick the wrong device's node. The lookup is exact now.
TEST(Numa, PciDeviceNodeIsAnExactLookup)
{
	eptest::TempDir dir;
	auto device = [&](const std::string &id, const char *node) {
		std::string d = dir.path() + "/bus/pci/devices/" + id;
		ASSERT_EQ(0, system(("mkdir -p '" + d + "'").c_str()));
		std::ofstream(d + "/numa_node") << node << "\n";
	};
	device("0000:03:00.0", "0");
	device("0001:03:00.0", "1");
	device("0000:13:00.0", "-1");
	EXPECT_EQ(1, numa::pciDeviceNodeFromSysfs("00000001:03:00.0", dir.path()));
	EXPECT_EQ(1, numa::pciDeviceNodeFromSysfs("0001:03:00.0", dir.path()));
	EXPECT_EQ(0, numa::pciDeviceNodeFromSysfs("00000000:03:00.0", dir.path()));
	EXPECT_EQ(0, numa::pciDeviceNodeFromSysfs("03:00.0", dir.path()));
	EXPECT_EQ(-1, numa::pciDeviceNodeFromSysfs("0000:13:00.0", dir.path())) << "sysfs -1: unknown";
	EXPECT_EQ(-1, numa::pciDeviceNodeFromSysfs("0000:23:00.0", dir.path())) << "no such device";
	EXPECT_EQ(-1, numa::pciDeviceNodeFromSysfs("3:00.0x", dir.path()));
	EXPECT_EQ(-1, numa::nodeOfPciDevice("ffff:ff:1f.7")) << "not on this machine";
}
