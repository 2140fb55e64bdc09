// SPDX-License-Identifier: Apache-2.0
// backends.hpp - the optional-library pieces a Region is built from. Each has a real
// implementation (libpmem2, libdaxctl, libnuma) and a *_none.cpp twin picked by meson.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "util/status.hpp"

namespace engrampool::backend {

// --- mapping (map_pmem2.cpp | map_none.cpp) ----------------------------------------
struct Mapping {
	uint8_t *addr = nullptr;
	uint64_t size = 0;
	bool writable = false;
	bool byteGranular = false;     // stores are persistent after cache flush (pmem/CXL)
	std::string mapper;            // "libpmem2" or "mmap"
	void *impl = nullptr;          // backend state
	void (*persistFn)(const void *, size_t) = nullptr;
};
// Map [offset, offset+size) of fd (offset aligned to the source's alignment).
Result<Mapping> mapFd(int fd, uint64_t size, bool writable, uint64_t offset = 0);
void unmap(Mapping &m);
// Make [p, p+len) durable/visible to other hosts (flush + drain, or msync off pmem).
void persist(const Mapping &m, const void *p, size_t len);
// The one persist path for pool bytes in any mapping (region.cpp): cache-line
// write-back + fence where stores are not byte-granular, then persist() above.
void persistMapped(const Mapping &m, const void *p, size_t len);

// --- device DAX (dax_daxctl.cpp | dax_none.cpp) -------------------------------------
struct DaxInfo {
	std::string devname;           // "dax0.0"
	int regionId = -1;
	uint64_t size = 0;
	uint64_t align = 0;
	bool systemRam = false;        // bound to kmem (system-ram mode), not usable as devdax
	int targetNode = -1;
};
Result<DaxInfo> probeDax(const std::string &path);

// --- NUMA (numa_libnuma.cpp | numa_none.cpp) ----------------------------------------
// Node must exist and have at least `bytes` free.
Status checkNode(int node, uint64_t bytes);
// Bind [p, p+len) (a shared mapping, before first touch) to node.
Status bindToNode(void *p, size_t len, int node);
// Node holding the page at p, or -1.
int nodeOfAddress(const void *p);
int numaNodeCount();

} // namespace engrampool::backend
