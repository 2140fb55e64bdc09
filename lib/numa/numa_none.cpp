// SPDX-License-Identifier: Apache-2.0
// numa_none.cpp - lib/numa built without libnuma: one node, 0; no binding, no pinning.
#include <string>

#include "numa/numa.hpp"

namespace engrampool::numa {

bool available() { return false; }

int nodeCount() { return 1; }

Status checkNode(int node, Need, std::string_view what)
{
	if (node <= 0)
		return Status::ok();
	return makeError(EP_E_UNSUPPORTED, std::string(what) + ": NUMA node " + std::to_string(node) +
						   ": this build has no libnuma (only node 0 is usable)");
}

Status bindMemory(void *, size_t, int node, std::string_view what)
{
	return checkNode(node, Need::Memory, what);
}

Status runOnNode(int node, std::string_view what)
{
	return checkNode(node, Need::Cpus, what);
}

int nodeOfAddress(const void *) { return -1; }

// Without libnuma nothing can be placed on the device's node: no placement.
int nodeOfPciDevice(std::string_view) { return -1; }

} // namespace engrampool::numa
