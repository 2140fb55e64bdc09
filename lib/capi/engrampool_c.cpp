// SPDX-License-Identifier: Apache-2.0
// engrampool_c.cpp - the C ABI over Pool: no exception crosses it, errors set the
// per-thread message.
#include <engrampool/engrampool.h>

#include <cstring>
#include <new>

#include "ep_config.h"
#include "pool/pool.hpp"

using namespace engrampool;

struct ep_pool {
	std::unique_ptr<Pool> pool;
};

namespace {

int report(const Status &s)
{
	setLastError(s);
	return s.code();
}

template <typename F>
int guarded(F &&f) noexcept
{
	try {
		return f();
	} catch (const std::bad_alloc &) {
		return report(makeError(-ENOMEM, "out of memory"));
	} catch (const std::exception &e) {
		return report(makeError(-EIO, std::string("internal error: ") + e.what()));
	}
}

} // namespace

extern "C" {

EP_API const char *ep_strerror(int code) noexcept
{
	return errorName(code);
}

EP_API const char *ep_errormsg(void) noexcept
{
	return lastErrorMessage();
}

EP_API const char *ep_version(void) noexcept
{
	return EP_VERSION;
}

EP_API int ep_pool_create(const char *uri, uint64_t size) noexcept
{
	return guarded([&] {
		if (!uri)
			return report(makeError(-EINVAL, "uri is NULL"));
		CreateOptions o;
		o.size = size;
		return report(Pool::create(uri, o));
	});
}

EP_API int ep_pool_open(ep_pool **out, const char *uri, unsigned flags) noexcept
{
	return guarded([&] {
		if (!out || !uri)
			return report(makeError(-EINVAL, "out or uri is NULL"));
		OpenOptions o;
		o.write = (flags & EP_OPEN_WRITE) != 0;
		auto p = Pool::open(uri, o);
		if (!p)
			return report(p.status());
		*out = new ep_pool{std::move(p.value())};
		return 0;
	});
}

EP_API void ep_pool_close(ep_pool **pool) noexcept
{
	if (pool && *pool) {
		delete *pool;
		*pool = nullptr;
	}
}

EP_API int ep_pool_info_get(ep_pool *pool, ep_pool_info *info) noexcept
{
	return guarded([&] {
		if (!pool || !info)
			return report(makeError(-EINVAL, "pool or info is NULL"));
		auto s = pool->pool->snapshot();
		if (!s)
			return report(s.status());
		const auto &sb = pool->pool->superblock();
		std::memset(info, 0, sizeof(*info));
		std::memcpy(info->uuid, sb.poolUuid, 16);
		info->size = sb.poolSize;
		info->align_unit = sb.alignUnit;
		info->data_offset = sb.dataOffset;
		info->data_bytes = sb.dataBytes;
		info->used_bytes = s->usedBytes;
		info->generation = s->generation;
		auto m = pool->pool->master();
		info->master_epoch = m ? m->epoch : 0;
		info->format_major = sb.major;
		info->format_minor = sb.minor;
		info->tables = (uint32_t)s->tables.size();
		info->models = (uint32_t)s->models.size();
		info->catalog_slots = sb.catalogSlots;
		info->host_slots = sb.hostSlots;
		return 0;
	});
}

EP_API int ep_pool_list_tables(ep_pool *pool, ep_table_info *out, size_t cap, size_t *count) noexcept
{
	return guarded([&] {
		if (!pool || !count || (cap && !out))
			return report(makeError(-EINVAL, "invalid arguments"));
		auto s = pool->pool->snapshot();
		if (!s)
			return report(s.status());
		*count = s->tables.size();
		for (size_t i = 0; i < s->tables.size() && i < cap; i++)
			toCInfo(s->tables[i], out[i]);
		return 0;
	});
}

EP_API int ep_pool_find_table(ep_pool *pool, const char *name, ep_table_info *out) noexcept
{
	return guarded([&] {
		if (!pool || !name || !out)
			return report(makeError(-EINVAL, "invalid arguments"));
		auto s = pool->pool->snapshot();
		if (!s)
			return report(s.status());
		const TableInfo *t = s->findTable(name);
		if (!t)
			return report(makeError(-ENOENT, std::string("no table named '") + name + "'"));
		toCInfo(*t, *out);
		return 0;
	});
}

EP_API int ep_pool_read_rows(ep_pool *pool, const char *name, const uint64_t *rows, size_t n, void *dst,
			     size_t dst_bytes) noexcept
{
	return guarded([&] {
		if (!pool || !name || (n && (!rows || !dst)))
			return report(makeError(-EINVAL, "invalid arguments"));
		auto s = pool->pool->snapshot();
		if (!s)
			return report(s.status());
		const TableInfo *t = s->findTable(name);
		if (!t)
			return report(makeError(-ENOENT, std::string("no table named '") + name + "'"));
		return report(pool->pool->readRows(*t, rows, n, dst, dst_bytes));
	});
}

EP_API int ep_pool_verify(ep_pool *pool, const char *name) noexcept
{
	return guarded([&] {
		if (!pool)
			return report(makeError(-EINVAL, "pool is NULL"));
		auto r = pool->pool->verify(name ? name : "");
		if (!r)
			return report(r.status());
		int bad = 0;
		std::string first;
		for (auto &v : *r)
			if (!v.ok) {
				if (!bad)
					first = v.table + ": " + v.problem;
				bad++;
			}
		if (bad)
			setLastError(makeError(EP_E_CHECKSUM, first));
		return bad;
	});
}

EP_API int ep_pool_remove_table(ep_pool *pool, const char *name) noexcept
{
	return guarded([&] {
		if (!pool || !name)
			return report(makeError(-EINVAL, "invalid arguments"));
		return report(pool->pool->removeTable(name));
	});
}

} // extern "C"
