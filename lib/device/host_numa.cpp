// SPDX-License-Identifier: Apache-2.0
// host_numa.cpp - bind device host memory to a NUMA node with libnuma.
#include <numa.h>
#include <numaif.h>

#include "device/device_impl.hpp"

namespace engrampool::device {

Status bindHostMemory(void *p, size_t len, int node)
{
	if (node < 0)
		return Status::ok();
	if (numa_available() < 0) {
		if (node == 0)
			return Status::ok();
		return errorf(-ENODEV, "device memory on NUMA node %d: this machine has no NUMA support (only node 0)",
			      node);
	}
	if (node > numa_max_node() || !numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)node))
		return errorf(-ENODEV, "device memory on NUMA node %d: no such node with memory (max node %d)", node,
			      numa_max_node());
	struct bitmask *mask = numa_allocate_nodemask();
	numa_bitmask_setbit(mask, (unsigned)node);
	long rc = mbind(p, len, MPOL_BIND, mask->maskp, mask->size + 1, 0);
	int err = errno;
	numa_free_nodemask(mask);
	if (rc != 0)
		return errnoError(err, "device memory: mbind to NUMA node " + std::to_string(node));
	return Status::ok();
}

} // namespace engrampool::device
