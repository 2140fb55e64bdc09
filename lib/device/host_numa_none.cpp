// SPDX-License-Identifier: Apache-2.0
// host_numa_none.cpp - built without libnuma: node 0 (or -1) only, no binding.
#include "device/device_impl.hpp"

namespace engrampool::device {

Status bindHostMemory(void *, size_t, int node)
{
	if (node <= 0)
		return Status::ok();
	return errorf(EP_E_UNSUPPORTED, "device memory on NUMA node %d: this build has no libnuma (only node 0)", node);
}

} // namespace engrampool::device
