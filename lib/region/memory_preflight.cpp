// SPDX-License-Identifier: Apache-2.0
// memory_preflight.cpp - memory figures from /proc and /sys, and the refuse-or-try rule.
#include "region/memory_preflight.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/units.hpp"

namespace engrampool::backend {

namespace {

std::string slurp(const std::string &path)
{
	std::ifstream in(path);
	if (!in)
		return {};
	std::ostringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

} // namespace

uint64_t meminfoField(const std::string &text, const std::string &key)
{
	std::istringstream in(text);
	std::string line;
	while (std::getline(in, line)) {
		// Optional "Node N " prefix.
		size_t start = 0;
		if (line.rfind("Node ", 0) == 0) {
			size_t sp = line.find(' ', 5);
			if (sp == std::string::npos)
				continue;
			start = sp + 1;
		}
		if (line.compare(start, key.size(), key) != 0 || line.size() <= start + key.size() ||
		    line[start + key.size()] != ':')
			continue;
		const char *p = line.c_str() + start + key.size() + 1;
		char *end = nullptr;
		unsigned long long v = strtoull(p, &end, 10);
		if (end == p)
			return 0;
		bool kb = line.find("kB", (size_t)(end - line.c_str())) != std::string::npos;
		return kb ? (uint64_t)v * 1024 : (uint64_t)v;
	}
	return 0;
}

MemoryFigures readMemoryFigures()
{
	MemoryFigures f;
	std::string sys = slurp("/proc/meminfo");
	f.systemTotal = meminfoField(sys, "MemTotal");
	f.systemAvailable = meminfoField(sys, "MemAvailable");
	std::error_code ec;
	for (auto &d : std::filesystem::directory_iterator("/sys/devices/system/node", ec)) {
		std::string name = d.path().filename().string();
		if (name.rfind("node", 0) != 0 || name.size() == 4 ||
		    !std::all_of(name.begin() + 4, name.end(), [](char c) { return c >= '0' && c <= '9'; }))
			continue;
		std::string text = slurp(d.path().string() + "/meminfo");
		NodeMemory n;
		n.node = atoi(name.c_str() + 4);
		n.total = meminfoField(text, "MemTotal");
		n.free = meminfoField(text, "MemFree");
		n.reclaimable = meminfoField(text, "Active(file)") + meminfoField(text, "Inactive(file)") +
				meminfoField(text, "SReclaimable");
		if (n.total > 0)
			f.nodes.push_back(n);
	}
	std::sort(f.nodes.begin(), f.nodes.end(), [](auto &a, auto &b) { return a.node < b.node; });
	return f;
}

PreflightVerdict decideNodePreflight(const MemoryFigures &f, int node, uint64_t bytes)
{
	PreflightVerdict v;
	const NodeMemory *n = nullptr;
	uint64_t nodeSum = 0;
	for (auto &x : f.nodes) {
		nodeSum += x.total;
		if (x.node == node)
			n = &x;
	}
	if (!n || f.systemTotal == 0) {
		v.reason = "no memory figures for NUMA node " + std::to_string(node) + "; the allocation decides";
		return v;
	}
	// The nodes must account for the system's memory (within 2% or 256 MiB): a node that
	// is still growing (memory onlined lazily after boot) reports less than it will give.
	uint64_t slack = std::max<uint64_t>(f.systemTotal / 50, 256ull << 20);
	uint64_t diff = nodeSum > f.systemTotal ? nodeSum - f.systemTotal : f.systemTotal - nodeSum;
	if (diff > slack) {
		v.reason = "the NUMA nodes report " + formatBytes(nodeSum) + " in all but the system has " +
			   formatBytes(f.systemTotal) + " (memory still coming online); the allocation decides";
		return v;
	}
	v.trusted = true;
	v.available = n->free + n->reclaimable;
	// On a single-node machine the system's own estimate is the better one.
	if (f.nodes.size() == 1 && f.systemAvailable > 0)
		v.available = std::max(v.available, f.systemAvailable);
	if (v.available < bytes) {
		v.refuse = true;
		v.reason = "NUMA node " + std::to_string(node) + " has " + formatBytes(v.available) +
			   " available (free + reclaimable page cache), the pool needs " + formatBytes(bytes) +
			   ": pick another node or a smaller --size";
	}
	return v;
}

} // namespace engrampool::backend
