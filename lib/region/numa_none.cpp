// SPDX-License-Identifier: Apache-2.0
// numa_none.cpp - built without libnuma: only node 0, no binding.
#include "region/backends.hpp"

namespace engrampool::backend {

int numaNodeCount() { return 1; }

Status checkNode(int node, uint64_t)
{
	if (node == 0)
		return Status::ok();
	return errorf(EP_E_UNSUPPORTED, "NUMA node %d: this build has no libnuma (only node 0 is usable)", node);
}

Status bindToNode(void *, size_t, int node)
{
	return node == 0 ? Status::ok() : checkNode(node, 0);
}

int nodeOfAddress(const void *) { return -1; }

} // namespace engrampool::backend
