// SPDX-License-Identifier: Apache-2.0
// map_pmem2.cpp - map a region's fd with PMDK libpmem2 and use its persist function.
#include <libpmem2.h>

#include "region/backends.hpp"

namespace engrampool::backend {

namespace {
struct Pmem2State {
	pmem2_map *map = nullptr;
	pmem2_persist_fn persist = nullptr;
};

Status pmemError(const char *what)
{
	return makeError(-EIO, std::string("libpmem2 ") + what + ": " + pmem2_errormsg());
}
} // namespace

Result<Mapping> mapFd(int fd, uint64_t size, bool writable, uint64_t offset)
{
	pmem2_source *src = nullptr;
	pmem2_config *cfg = nullptr;
	if (pmem2_source_from_fd(&src, fd) != 0)
		return pmemError("source");
	if (pmem2_config_new(&cfg) != 0) {
		pmem2_source_delete(&src);
		return pmemError("config");
	}
	pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE);
	pmem2_config_set_sharing(cfg, PMEM2_SHARED);
	pmem2_config_set_protection(cfg, writable ? (PMEM2_PROT_READ | PMEM2_PROT_WRITE) : PMEM2_PROT_READ);
	pmem2_config_set_length(cfg, size);
	if (offset && pmem2_config_set_offset(cfg, offset) != 0) {
		pmem2_config_delete(&cfg);
		pmem2_source_delete(&src);
		return pmemError("offset");
	}
	pmem2_map *map = nullptr;
	int rc = pmem2_map_new(&map, cfg, src);
	pmem2_config_delete(&cfg);
	pmem2_source_delete(&src);
	if (rc != 0)
		return pmemError("map");
	auto *st = new Pmem2State{map, pmem2_get_persist_fn(map)};
	Mapping m;
	m.addr = static_cast<uint8_t *>(pmem2_map_get_address(map));
	m.size = pmem2_map_get_size(map);
	m.writable = writable;
	m.byteGranular = pmem2_map_get_store_granularity(map) != PMEM2_GRANULARITY_PAGE;
	m.mapper = "libpmem2";
	m.impl = st;
	return m;
}

void unmap(Mapping &m)
{
	auto *st = static_cast<Pmem2State *>(m.impl);
	if (st) {
		pmem2_map_delete(&st->map);
		delete st;
	}
	m = Mapping{};
}

void persist(const Mapping &m, const void *p, size_t len)
{
	auto *st = static_cast<Pmem2State *>(m.impl);
	st->persist(p, len);
}

} // namespace engrampool::backend
