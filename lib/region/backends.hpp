// SPDX-License-Identifier: Apache-2.0
// backends.hpp - the optional-library pieces a Region is built from. Each has a real
// implementation (libpmem2, libdaxctl) and a *_none.cpp twin picked by meson; NUMA
// (libnuma) is lib/numa, shared with the devices and the gather engine.
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

} // namespace engrampool::backend
