// SPDX-License-Identifier: Apache-2.0
// host_memory.cpp - page-aligned, NUMA-placed, pre-faulted host memory for devices.
#include <sys/mman.h>

#include <cstring>

#include "device/device_impl.hpp"
#include "numa/numa.hpp"
#include "util/units.hpp"

namespace engrampool::device {

Result<HostBlock> HostBlock::allocate(size_t bytes, int numaNode)
{
	if (bytes == 0)
		return makeError(-EINVAL, "host memory: 0 bytes");
	void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return errnoError(errno, "host memory: mmap of " + formatBytes(bytes));
	HostBlock b;
	b.addr_ = static_cast<uint8_t *>(p);
	b.len_ = bytes;
	// Large staging rings: fewer TLB misses on the gather's scattered stores.
	if (bytes >= (size_t(2) << 20))
		madvise(p, bytes, MADV_HUGEPAGE);
	Status s = numa::bindMemory(p, bytes, numaNode, "device memory");
	if (!s)
		return s;
	// First touch under the binding; the hot path then takes no page faults.
	std::memset(p, 0, bytes);
	return b;
}

void HostBlock::reset()
{
	if (addr_)
		munmap(addr_, len_);
	addr_ = nullptr;
	len_ = 0;
}

} // namespace engrampool::device
