// SPDX-License-Identifier: Apache-2.0
// engrampool_c.cpp - the C ABI over Pool: every entry point runs in cApiCall (no
// exception crosses it) and reports failures through the thread's last error.
#include <engrampool/engrampool.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "capi/guard.hpp"
#include "ep_config.h"
#include "agent/read_guard.hpp"
#include "pool/pool.hpp"

using namespace engrampool;

struct ep_pool {
	std::unique_ptr<Pool> pool;
};

using capi::cApiCall;
using capi::report;

namespace {
// The named table of a snapshot (valid while the snapshot lives), or ENOENT naming it.
Result<const TableInfo *> tableIn(const Snapshot &s, const char *name)
{
	const TableInfo *t = s.findTable(name);
	if (!t)
		return makeError(-ENOENT, std::string("no table named '") + name + "'");
	return t;
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
	return cApiCall("ep_pool_create", [&] {
		if (!uri)
			return report(makeError(-EINVAL, "uri is NULL"));
		CreateOptions o;
		o.size = size;
		return report(Pool::create(uri, o));
	});
}

EP_API int ep_pool_open(ep_pool **out, const char *uri, unsigned flags) noexcept
{
	return cApiCall("ep_pool_open", [&] {
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
	return cApiCall("ep_pool_info_get", [&] {
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
	return cApiCall("ep_pool_list_tables", [&] {
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
	return cApiCall("ep_pool_find_table", [&] {
		if (!pool || !name || !out)
			return report(makeError(-EINVAL, "invalid arguments"));
		auto s = pool->pool->snapshot();
		if (!s)
			return report(s.status());
		auto found = tableIn(*s, name);
		if (!found)
			return report(found.status());
		const TableInfo *t = *found;
		toCInfo(*t, *out);
		return 0;
	});
}

EP_API int ep_pool_read_rows(ep_pool *pool, const char *name, const uint64_t *rows, size_t n, void *dst,
			     size_t dst_bytes) noexcept
{
	return cApiCall("ep_pool_read_rows", [&] {
		if (!pool || !name || (n && (!rows || !dst)))
			return report(makeError(-EINVAL, "invalid arguments"));
		// No host slot holds the table's extent: re-validated after the read (issue 10 #4).
		return report(readRowsValidated(*pool->pool, name, rows, n, dst, dst_bytes));
	});
}

EP_API int ep_pool_read_rows_as(ep_pool *pool, const char *name, const uint64_t *rows, size_t n, int out_format,
				void *dst, size_t dst_bytes) noexcept
{
	return cApiCall("ep_pool_read_rows_as", [&] {
		if (!pool || !name || (n && (!rows || !dst)))
			return report(makeError(-EINVAL, "invalid arguments"));
		if (out_format < EP_OUT_PACKED || out_format > EP_OUT_PLANES)
			return report(errorf(-EINVAL, "unknown output format %d (0 packed, 1 values, 2 scales, 3 f32, "
						      "4 bf16, 5 planes)",
					     out_format));
		return report(readRowsValidated(*pool->pool, name, rows, n, dst, dst_bytes, nullptr, out_format));
	});
}

EP_API int ep_pool_table_planes(ep_pool *pool, const char *name, uint32_t h0, uint32_t h1,
				ep_table_planes *out) noexcept
{
	return cApiCall("ep_pool_table_planes", [&] {
		if (!pool || !name || !out)
			return report(makeError(-EINVAL, "invalid arguments"));
		auto s = pool->pool->snapshot();
		if (!s)
			return report(s.status());
		auto found = tableIn(*s, name);
		if (!found)
			return report(found.status());
		const TableInfo *t = *found;
		auto range = pool->pool->headRows(*s, *t, h0, h1);
		if (!range)
			return report(range.status());
		const TablePlanes p = pool->pool->tablePlanes(*t);
		std::memset(out, 0, sizeof(*out));
		out->row_begin = range->first;
		out->row_end = range->second;
		out->values = p.values + range->first * p.valuesPitch;
		out->values_pitch = p.valuesPitch;
		out->scales = p.scales ? p.scales + range->first * p.scalesPitch : nullptr;
		out->scales_pitch = p.scalesPitch;
		out->layout = (uint32_t)t->layout;
		out->values_bytes = t->valueBytes();
		out->scales_bytes = t->scaleBytes();
		return 0;
	});
}

EP_API int ep_pool_verify_tables(ep_pool *pool, const char *name, size_t *bad_tables) noexcept
{
	return cApiCall("ep_pool_verify_tables", [&] {
		if (bad_tables)
			*bad_tables = 0;
		if (!pool)
			return report(makeError(-EINVAL, "pool is NULL"));
		auto r = pool->pool->verify(name ? name : "");
		if (!r)
			return report(r.status());
		size_t bad = 0;
		std::string problems;
		for (auto &v : *r)
			if (!v.ok) {
				if (bad)
					problems += "; ";
				problems += v.table + ": " + v.problem;
				bad++;
			}
		if (bad_tables)
			*bad_tables = bad;
		if (bad)
			return report(makeError(EP_E_CHECKSUM, std::to_string(bad) + " bad table(s): " + problems));
		return report(Status::ok());
	});
}

EP_API int ep_pool_verify(ep_pool *pool, const char *name) noexcept
{
	return ep_pool_verify_tables(pool, name, nullptr);
}

EP_API int ep_pool_remove_table(ep_pool *pool, const char *name) noexcept
{
	return cApiCall("ep_pool_remove_table", [&] {
		if (!pool || !name)
			return report(makeError(-EINVAL, "invalid arguments"));
		return report(pool->pool->removeTable(name));
	});
}

EP_API int ep_pool_model_token_map(ep_pool *pool, const char *model, int64_t *out, size_t cap, size_t *count) noexcept
{
	return cApiCall("ep_pool_model_token_map", [&] {
		if (count)
			*count = 0;
		if (!pool || !model || !count || (cap && !out))
			return report(makeError(-EINVAL, "invalid arguments"));
		auto map = pool->pool->tokenMap(model);
		if (!map)
			return report(map.status());
		*count = map->size();
		if (cap)
			std::memcpy(out, map->data(), std::min(cap, map->size()) * sizeof(int64_t));
		return report(Status::ok());
	});
}

} // extern "C"
