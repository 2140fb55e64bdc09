// SPDX-License-Identifier: Apache-2.0
// agent_c.cpp - the C ABI of HostAgent: every entry point runs in cApiCall (no
// exception crosses it); control-plane failures and ep_agent_last_error() use the
// calling thread's last error, the one error channel shared with engrampool_c.cpp.
#include <engrampool/engrampool.h>

#include <cstring>
#include <new>

#include "agent/agent.hpp"
#include "capi/guard.hpp"

using namespace engrampool;
using capi::cApiCall;
using capi::cApiCallOr;
using capi::report;

// Nothing here is written after creation, so threads may share an ep_agent: the
// agent's own state is synchronised inside HostAgent.
struct ep_agent {
	std::unique_ptr<HostAgent> agent;
};

static_assert(sizeof(ep_seq_tokens) == sizeof(BatchEntry) && offsetof(ep_seq_tokens, tokens) == offsetof(BatchEntry, tokens) &&
		      offsetof(ep_seq_tokens, count) == offsetof(BatchEntry, count) &&
		      offsetof(ep_seq_tokens, flags) == offsetof(BatchEntry, flags),
	      "ep_seq_tokens must match BatchEntry: the batch is passed through without copying");
static_assert(EP_SEQ_START == kSeqStart && EP_SEQ_END == kSeqEnd);

extern "C" {

EP_API void ep_agent_config_init(ep_agent_config *cfg) noexcept
{
	if (!cfg)
		return;
	std::memset(cfg, 0, sizeof(*cfg));
	AgentConfig d;
	cfg->device = EP_DEVICE_HOST;
	cfg->max_batch_tokens = d.maxBatchTokens;
	cfg->max_sequences = d.maxSequences;
	cfg->slots = d.slots;
	cfg->gather_threads = d.gatherThreads;
	cfg->numa_node = -1;
	cfg->host_index = -1;
}

EP_API int ep_agent_create(ep_agent **out, const ep_agent_config *cfg) noexcept
{
	return cApiCall("ep_agent_create", [&] {
		if (!out || !cfg || !cfg->pool_uri || !cfg->model_path)
			return report(makeError(-EINVAL, "ep_agent_create: out, cfg, pool_uri and model_path are required"));
		AgentConfig c;
		c.poolUri = cfg->pool_uri;
		c.modelPath = cfg->model_path;
		c.device = cfg->device == EP_DEVICE_CUDA ? device::Kind::Cuda : device::Kind::Host;
		c.cudaDevice = cfg->cuda_device;
		c.maxBatchTokens = cfg->max_batch_tokens;
		c.maxSequences = cfg->max_sequences;
		c.slots = cfg->slots;
		c.gatherThreads = cfg->gather_threads;
		c.numaNode = cfg->numa_node;
		c.cacheRows = cfg->cache_rows;
		c.cacheAdmit = !(cfg->flags & EP_AGENT_NO_ADMIT);
		c.nonTemporal = (cfg->flags & EP_AGENT_NONTEMPORAL) != 0;
		c.cacheAdaptive = !(cfg->flags & EP_AGENT_TIER_ALWAYS);
		c.waitHelps = (cfg->flags & EP_AGENT_WAIT_HELPS) != 0;
		c.dedupAdaptive = !(cfg->flags & EP_AGENT_DEDUP_ALWAYS);
		if (cfg->hot_set_file)
			c.hotSetFile = cfg->hot_set_file;
		c.registerHost = !(cfg->flags & EP_AGENT_NO_REGISTER);
		c.hostIndex = cfg->host_index;
		c.outFormat = (int)((cfg->flags & EP_AGENT_OUT_MASK) >> EP_AGENT_OUT_SHIFT);
		auto a = HostAgent::create(c);
		if (!a)
			return report(a.status());
		*out = new ep_agent{std::move(a.value())};
		return report(Status::ok());
	});
}

EP_API void ep_agent_destroy(ep_agent **agent) noexcept
{
	if (agent && *agent) {
		cApiCallOr("ep_agent_destroy", 0, [&] {
			delete *agent;
			return 0;
		});
		*agent = nullptr;
	}
}

EP_API uint32_t ep_agent_layers(const ep_agent *agent) noexcept
{
	return agent ? agent->agent->layers() : 0;
}

// Data plane: codes only, no text is formatted unless an exception escapes (a bug).
EP_API int ep_agent_prefetch(ep_agent *agent, const ep_seq_tokens *batch, size_t n, uint64_t *ticket) noexcept
{
	if (!agent)
		return -EINVAL;
	return cApiCall("ep_agent_prefetch", [&] {
		return agent->agent->prefetch(reinterpret_cast<const BatchEntry *>(batch), n, ticket);
	});
}

EP_API int ep_agent_prefetch_ex(ep_agent *agent, const ep_seq_tokens *batch, size_t n,
				const ep_prefetch_opts *opts, uint64_t *ticket) noexcept
{
	if (!agent)
		return -EINVAL;
	const uint8_t *const *dead = nullptr;
	if (opts) {
		// Fields are read only inside the caller's struct_size; a larger struct (a newer
		// header) is accepted when its unknown tail is zero.
		const size_t size = opts->struct_size;
		if (size < offsetof(ep_prefetch_opts, flags) + sizeof(opts->flags))
			return -EINVAL;
		if (opts->flags != 0)
			return -EINVAL;
		if (size >= offsetof(ep_prefetch_opts, dead) + sizeof(opts->dead))
			dead = opts->dead;
		for (size_t i = sizeof(ep_prefetch_opts); i < size; i++)
			if (reinterpret_cast<const uint8_t *>(opts)[i] != 0)
				return -EINVAL;
	}
	return cApiCall("ep_agent_prefetch_ex", [&] {
		return agent->agent->prefetch(reinterpret_cast<const BatchEntry *>(batch), n, ticket, dead);
	});
}

EP_API int ep_agent_live_mask(ep_agent *agent, uint64_t ticket, uint8_t *mask, size_t cap, size_t *tokens) noexcept
{
	if (!agent)
		return -EINVAL;
	return cApiCall("ep_agent_live_mask", [&] { return agent->agent->liveMask(ticket, mask, cap, tokens); });
}

EP_API int ep_agent_wait(ep_agent *agent, uint64_t ticket, int layer) noexcept
{
	if (!agent)
		return -EINVAL;
	return cApiCall("ep_agent_wait", [&] { return agent->agent->wait(ticket, layer); });
}

EP_API int ep_agent_output(ep_agent *agent, uint64_t ticket, uint32_t layer, ep_layer_output *out) noexcept
{
	if (!agent || !out)
		return -EINVAL;
	return cApiCall("ep_agent_output", [&] {
		LayerOutput o;
		int rc = agent->agent->output(ticket, layer, &o);
		if (rc)
			return rc;
		std::memset(out, 0, sizeof(*out));
		out->rows = o.rows;
		out->tokens = o.tokens;
		out->columns = o.columns;
		out->row_bytes = o.rowBytes;
		out->row_stride = o.rowStride;
		out->format = o.format;
		out->layer_id = o.layerId;
		out->generation = o.generation;
		return 0;
	});
}

EP_API void *ep_agent_event(ep_agent *agent, uint64_t ticket, uint32_t layer) noexcept
{
	if (!agent)
		return nullptr;
	return cApiCallOr("ep_agent_event", (void *)nullptr, [&] { return agent->agent->layerEvent(ticket, layer); });
}

EP_API int ep_agent_release(ep_agent *agent, uint64_t ticket) noexcept
{
	if (!agent)
		return -EINVAL;
	return cApiCall("ep_agent_release", [&] { return agent->agent->release(ticket); });
}

EP_API int ep_agent_end_sequence(ep_agent *agent, uint64_t seq_id) noexcept
{
	if (!agent)
		return -EINVAL;
	return cApiCall("ep_agent_end_sequence", [&] { return agent->agent->endSequence(seq_id); });
}

EP_API int ep_agent_metrics(ep_agent *agent, int format, char *buf, size_t cap, size_t *needed) noexcept
{
	return cApiCall("ep_agent_metrics", [&] {
		if (!agent || (cap && !buf))
			return report(makeError(-EINVAL, "ep_agent_metrics: agent is NULL, or buf is NULL with cap > 0"));
		std::string s = format == 1 ? agent->agent->metricsPrometheus() : agent->agent->metricsJson();
		if (needed)
			*needed = s.size() + 1;
		if (cap < s.size() + 1)
			return -ENOSPC; // the size query: not an error worth a message
		std::memcpy(buf, s.c_str(), s.size() + 1);
		return 0;
	});
}

EP_API const char *ep_agent_last_error(ep_agent *agent) noexcept
{
	if (!agent)
		return "";
	// The agent's record is read under its mutex and copied into this thread's last
	// error: no buffer is shared between threads, and ep_errormsg() says the same.
	return cApiCallOr("ep_agent_last_error", lastErrorMessage(), [&] {
		setLastErrorMessage(agent->agent->lastError());
		return lastErrorMessage();
	});
}

} // extern "C"
