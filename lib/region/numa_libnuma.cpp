// SPDX-License-Identifier: Apache-2.0
// numa_libnuma.cpp - NUMA node checks and memory binding with libnuma.
#include <numa.h>
#include <numaif.h>

#include "region/backends.hpp"
#include "region/memory_preflight.hpp"
#include "util/units.hpp"

namespace engrampool::backend {

int numaNodeCount()
{
	if (numa_available() < 0)
		return 1;
	return numa_max_node() + 1;
}

Status checkNode(int node, uint64_t bytes)
{
	if (numa_available() < 0) {
		if (node == 0)
			return Status::ok();
		return errorf(-ENODEV, "NUMA node %d: this machine has no NUMA support (only node 0 exists)", node);
	}
	int maxNode = numa_max_node();
	if (node < 0 || node > maxNode || !numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)node))
		return errorf(-ENODEV, "NUMA node %d does not exist or has no memory (nodes with memory: 0-%d, see 'numactl -H')",
			      node, maxNode);
	if (bytes == 0)
		return Status::ok();
	// Refuse only on figures that agree with each other; otherwise let the kernel
	// decide when the pool is allocated (see memory_preflight.hpp).
	PreflightVerdict v = decideNodePreflight(readMemoryFigures(), node, bytes);
	if (v.refuse)
		return makeError(EP_E_PREFLIGHT, v.reason);
	return Status::ok();
}

Status bindToNode(void *p, size_t len, int node)
{
	if (numa_available() < 0)
		return node == 0 ? Status::ok() : errorf(-ENODEV, "NUMA node %d: no NUMA support", node);
	struct bitmask *mask = numa_allocate_nodemask();
	numa_bitmask_setbit(mask, (unsigned)node);
	long rc = mbind(p, len, MPOL_BIND, mask->maskp, mask->size + 1, 0);
	numa_free_nodemask(mask);
	if (rc != 0)
		return errnoError(errno, "mbind to NUMA node " + std::to_string(node));
	return Status::ok();
}

int nodeOfAddress(const void *p)
{
	if (numa_available() < 0)
		return 0;
	int status = -1;
	void *pages[1] = {const_cast<void *>(p)};
	if (move_pages(0, 1, pages, nullptr, &status, 0) != 0 || status < 0)
		return -1;
	return status;
}

} // namespace engrampool::backend
