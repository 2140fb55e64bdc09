// SPDX-License-Identifier: Apache-2.0
// topology.hpp - NUMA nodes and where PCI devices (GPUs) sit, for stat and placement.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace engrampool {

struct NumaNodeInfo {
	int os_index = -1;
	uint64_t totalBytes = 0;
	std::string cpus;            // cpuset list, e.g. "0-15"
};

struct PciDeviceInfo {
	std::string busId;           // "0000:3b:00.0"
	uint16_t vendor = 0, device = 0;
	uint32_t classId = 0;
	std::string kind;            // "gpu", "cxl", "other"
	std::string name;
	int numaNode = -1;           // nearest NUMA node, -1 unknown
};

struct Topology {
	bool available = false;      // false when built without hwloc
	std::string source;          // "hwloc 2.9.0"
	int packages = 0, cores = 0, pus = 0;
	std::vector<NumaNodeInfo> nodes;
	std::vector<PciDeviceInfo> devices; // GPUs and CXL/memory devices only
};

Topology readTopology();

} // namespace engrampool
