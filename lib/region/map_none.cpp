// SPDX-License-Identifier: Apache-2.0
// map_none.cpp - without libpmem2: plain shared mmap, cache flush + msync for persistence.
#include <sys/mman.h>
#include <unistd.h>

#include "region/backends.hpp"
#include "util/cacheops.hpp"

namespace engrampool::backend {

Result<Mapping> mapFd(int fd, uint64_t size, bool writable, uint64_t offset)
{
	void *p = mmap(nullptr, size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, (off_t)offset);
	if (p == MAP_FAILED)
		return errnoError(errno, "mmap");
	Mapping m;
	m.addr = static_cast<uint8_t *>(p);
	m.size = size;
	m.writable = writable;
	m.mapper = "mmap";
	return m;
}

void unmap(Mapping &m)
{
	if (m.addr)
		munmap(m.addr, m.size);
	m = Mapping{};
}

void persist(const Mapping &m, const void *p, size_t len)
{
	flushLines(p, len);
	storeFence();
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
	uintptr_t e = reinterpret_cast<uintptr_t>(p) + len;
	(void)m;
	msync(reinterpret_cast<void *>(a), e - a, MS_SYNC);
}

} // namespace engrampool::backend
