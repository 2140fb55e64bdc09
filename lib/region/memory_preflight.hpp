// SPDX-License-Identifier: Apache-2.0
// memory_preflight.hpp - should `create` refuse a NUMA-bound pool before allocating?
//
// The rule is "never wrong in the refusing direction": a node's free figure is used
// to refuse only when the node figures agree with the system's. On VMs that bring
// memory online lazily after boot (deferred struct-page init, hotplug) a node reports
// a fraction of what the kernel will hand out on demand, and libnuma's free figure
// leaves out page cache the kernel reclaims. In those cases the allocation itself
// (mbind + posix_fallocate) decides, and a real ENOMEM becomes the clear error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace engrampool::backend {

struct NodeMemory {
	int node = -1;
	uint64_t total = 0;       // MemTotal of the node
	uint64_t free = 0;        // MemFree
	uint64_t reclaimable = 0; // Active(file) + Inactive(file) + SReclaimable
};

struct MemoryFigures {
	uint64_t systemTotal = 0;      // /proc/meminfo MemTotal
	uint64_t systemAvailable = 0;  // /proc/meminfo MemAvailable
	std::vector<NodeMemory> nodes; // every node with memory
};

struct PreflightVerdict {
	bool refuse = false;
	bool trusted = false;     // the node figures agree with the system's
	uint64_t available = 0;   // what the node can give (when trusted)
	std::string reason;       // why the figures were (not) trusted, or why refused
};

// Reads /proc/meminfo and /sys/devices/system/node/node*/meminfo (missing files leave zeros).
MemoryFigures readMemoryFigures();
// Pure decision, unit-tested with made-up figures.
PreflightVerdict decideNodePreflight(const MemoryFigures &f, int node, uint64_t bytes);
// Parses one "meminfo" text ("MemTotal:  123 kB" or "Node 0 MemTotal: 123 kB") into bytes by key.
uint64_t meminfoField(const std::string &text, const std::string &key);

} // namespace engrampool::backend
