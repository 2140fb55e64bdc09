// SPDX-License-Identifier: Apache-2.0
// engrampool.hpp - C++20 RAII wrappers over the C ABI (header-only, move-only).
#pragma once

#include <engrampool/engrampool.h>

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace engrampool {

// An error code with the message the library set for this thread.
struct Error {
	int code = 0;
	std::string message;
	explicit operator bool() const { return code != 0; }
};

inline Error lastError(int code)
{
	return {code, code ? std::string(ep_errormsg()) : std::string()};
}

class PoolHandle {
public:
	PoolHandle() = default;
	~PoolHandle() { ep_pool_close(&p_); }
	PoolHandle(PoolHandle &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
	PoolHandle &operator=(PoolHandle &&o) noexcept
	{
		if (this != &o) {
			ep_pool_close(&p_);
			p_ = std::exchange(o.p_, nullptr);
		}
		return *this;
	}
	PoolHandle(const PoolHandle &) = delete;
	PoolHandle &operator=(const PoolHandle &) = delete;

	static Error create(const std::string &uri, uint64_t size) { return lastError(ep_pool_create(uri.c_str(), size)); }
	static Error open(const std::string &uri, PoolHandle &out, bool write = false)
	{
		ep_pool *p = nullptr;
		int rc = ep_pool_open(&p, uri.c_str(), write ? EP_OPEN_WRITE : EP_OPEN_READONLY);
		if (rc == 0)
			out = PoolHandle(p);
		return lastError(rc);
	}

	bool valid() const { return p_ != nullptr; }
	ep_pool *get() const { return p_; }

	Error info(ep_pool_info &out) const { return lastError(ep_pool_info_get(p_, &out)); }
	Error tables(std::vector<ep_table_info> &out) const
	{
		size_t n = 0;
		int rc = ep_pool_list_tables(p_, nullptr, 0, &n);
		if (rc)
			return lastError(rc);
		out.resize(n);
		rc = ep_pool_list_tables(p_, out.data(), out.size(), &n);
		out.resize(std::min(n, out.size()));
		return lastError(rc);
	}
	Error find(const std::string &name, ep_table_info &out) const
	{
		return lastError(ep_pool_find_table(p_, name.c_str(), &out));
	}
	Error readRows(const std::string &name, std::span<const uint64_t> rows, std::span<std::byte> dst) const
	{
		return lastError(ep_pool_read_rows(p_, name.c_str(), rows.data(), rows.size(), dst.data(), dst.size()));
	}
	// Number of tables whose checksum failed (>= 0), or an error.
	int verify(const std::string &name = "") const { return ep_pool_verify(p_, name.empty() ? nullptr : name.c_str()); }
	Error remove(const std::string &name) { return lastError(ep_pool_remove_table(p_, name.c_str())); }

private:
	explicit PoolHandle(ep_pool *p) : p_(p) {}
	ep_pool *p_ = nullptr;
};

} // namespace engrampool
