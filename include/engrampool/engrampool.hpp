// SPDX-License-Identifier: Apache-2.0
// engrampool.hpp - C++20 RAII wrappers over the C ABI (header-only, move-only).
#pragma once

#include <engrampool/engrampool.h>

#include <cerrno>
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
	// Rows in another output format (enum ep_row_format_out; see ep_pool_read_rows_as).
	Error readRowsAs(const std::string &name, std::span<const uint64_t> rows, int outFormat,
			 std::span<std::byte> dst) const
	{
		return lastError(ep_pool_read_rows_as(p_, name.c_str(), rows.data(), rows.size(), outFormat,
						      dst.data(), dst.size()));
	}
	// Plane pointers of the hash heads [h0, h1) of a table (0, 0 = all heads).
	Error tablePlanes(const std::string &name, uint32_t h0, uint32_t h1, ep_table_planes &out) const
	{
		return lastError(ep_pool_table_planes(p_, name.c_str(), h0, h1, &out));
	}
	// Recompute the checksums of one table (or all): no error when every table is good;
	// EP_E_CHECKSUM naming the bad tables, with their number in *badTables, otherwise.
	Error verify(const std::string &name = "", size_t *badTables = nullptr) const
	{
		return lastError(ep_pool_verify_tables(p_, name.empty() ? nullptr : name.c_str(), badTables));
	}
	Error remove(const std::string &name) { return lastError(ep_pool_remove_table(p_, name.c_str())); }
	// The token map the pool stores for a model (see ep_pool_model_token_map).
	Error tokenMap(const std::string &model, std::vector<int64_t> &out) const
	{
		size_t n = 0;
		for (;;) {
			int rc = ep_pool_model_token_map(p_, model.c_str(), out.data(), out.size(), &n);
			if (rc != 0 || n <= out.size()) {
				out.resize(rc != 0 ? 0 : n);
				return lastError(rc);
			}
			out.resize(n); // a size query first, or the model changed in between
		}
	}

private:
	explicit PoolHandle(ep_pool *p) : p_(p) {}
	ep_pool *p_ = nullptr;
};

// The per-host agent (see engrampool.h): move-only owner of an ep_agent.
class AgentHandle {
public:
	AgentHandle() = default;
	~AgentHandle() { ep_agent_destroy(&a_); }
	AgentHandle(AgentHandle &&o) noexcept : a_(std::exchange(o.a_, nullptr)) {}
	AgentHandle &operator=(AgentHandle &&o) noexcept
	{
		if (this != &o) {
			ep_agent_destroy(&a_);
			a_ = std::exchange(o.a_, nullptr);
		}
		return *this;
	}
	AgentHandle(const AgentHandle &) = delete;
	AgentHandle &operator=(const AgentHandle &) = delete;

	// A config with the library's defaults (ep_agent_config_init).
	static ep_agent_config defaults()
	{
		ep_agent_config c;
		ep_agent_config_init(&c);
		return c;
	}
	static Error create(const ep_agent_config &cfg, AgentHandle &out)
	{
		ep_agent *a = nullptr;
		int rc = ep_agent_create(&a, &cfg);
		if (rc == 0)
			out = AgentHandle(a);
		return engrampool::lastError(rc);
	}

	bool valid() const { return a_ != nullptr; }
	ep_agent *get() const { return a_; }
	uint32_t layers() const { return ep_agent_layers(a_); }

	// Data plane: return codes only (0, -errno or EP_E_*), no text, no allocation.
	int prefetch(std::span<const ep_seq_tokens> batch, uint64_t &ticket)
	{
		return ep_agent_prefetch(a_, batch.data(), batch.size(), &ticket);
	}
	// With dead-token flags: dead[i] is nullptr or batch[i].count flags (nonzero = dead);
	// an empty span means no dead token (see ep_prefetch_opts).
	int prefetch(std::span<const ep_seq_tokens> batch, std::span<const uint8_t *const> dead, uint64_t &ticket)
	{
		if (!dead.empty() && dead.size() != batch.size())
			return -EINVAL;
		ep_prefetch_opts o;
		ep_prefetch_opts_init(&o);
		o.dead = dead.empty() ? nullptr : dead.data();
		return ep_agent_prefetch_ex(a_, batch.data(), batch.size(), &o, &ticket);
	}
	// The ticket's live mask (1 live, 0 dead per token, batch order) into mask; returns
	// the ticket's token count in tokens (mask may be shorter: a size query).
	int liveMask(uint64_t ticket, std::span<uint8_t> mask, size_t &tokens)
	{
		return ep_agent_live_mask(a_, ticket, mask.data(), mask.size(), &tokens);
	}
	int wait(uint64_t ticket, int layer = -1) { return ep_agent_wait(a_, ticket, layer); }
	int output(uint64_t ticket, uint32_t layer, ep_layer_output &out) { return ep_agent_output(a_, ticket, layer, &out); }
	void *event(uint64_t ticket, uint32_t layer) { return ep_agent_event(a_, ticket, layer); }
	int release(uint64_t ticket) { return ep_agent_release(a_, ticket); }
	int endSequence(uint64_t seqId) { return ep_agent_end_sequence(a_, seqId); }

	// Control plane.
	std::string lastError() const { return ep_agent_last_error(a_); }
	// format 0 = JSON, 1 = Prometheus text; empty on error.
	std::string metrics(int format = 0) const
	{
		size_t need = 0;
		if (ep_agent_metrics(a_, format, nullptr, 0, &need) != -ENOSPC || need == 0)
			return {};
		std::string s(need, '\0');
		if (ep_agent_metrics(a_, format, s.data(), s.size(), &need) != 0)
			return {};
		s.resize(need - 1);
		return s;
	}

private:
	explicit AgentHandle(ep_agent *a) : a_(a) {}
	ep_agent *a_ = nullptr;
};

// A ticket released when it goes out of scope (wait, output and release through the agent).
class TicketGuard {
public:
	TicketGuard(AgentHandle &agent, uint64_t ticket) : agent_(&agent), ticket_(ticket) {}
	~TicketGuard()
	{
		if (agent_)
			(void)agent_->release(ticket_);
	}
	TicketGuard(TicketGuard &&o) noexcept : agent_(std::exchange(o.agent_, nullptr)), ticket_(o.ticket_) {}
	TicketGuard(const TicketGuard &) = delete;
	TicketGuard &operator=(const TicketGuard &) = delete;
	TicketGuard &operator=(TicketGuard &&) = delete;
	uint64_t id() const { return ticket_; }
	int wait(int layer = -1) { return agent_->wait(ticket_, layer); }
	int output(uint32_t layer, ep_layer_output &out) { return agent_->output(ticket_, layer, out); }

private:
	AgentHandle *agent_;
	uint64_t ticket_;
};

} // namespace engrampool
