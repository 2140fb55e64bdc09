// SPDX-License-Identifier: Apache-2.0
// replay.cpp - the per-host timeline: modeled GPU layers, real agent tickets, measured stalls.
#include "replay.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <nlohmann/json.hpp>

#include "util/units.hpp"

namespace engrampool::bench {

namespace {

// Sleep until the absolute CLOCK_MONOTONIC time `t`; returns how late it woke.
uint64_t sleepUntil(uint64_t t)
{
	uint64_t now = nowMonotonicNs();
	if (now >= t)
		return now - t;
	timespec ts{(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
	}
	now = nowMonotonicNs();
	return now > t ? now - t : 0;
}

uint64_t gatheredBytes(const HostAgent &a)
{
	try {
		return nlohmann::json::parse(a.metricsJson()).value("gathered_bytes", (uint64_t)0);
	} catch (...) {
		return 0;
	}
}

// Copy step st's entries and token ids into batch / tokens (capacity reserved: no allocation).
void stageBatch(const Schedule &s, const Step &st, std::vector<BatchEntry> &batch, std::vector<int64_t> &tokens)
{
	batch.assign(s.entries.begin() + st.firstEntry, s.entries.begin() + st.firstEntry + st.entries);
	tokens.clear();
	for (const BatchEntry &e : batch)
		tokens.insert(tokens.end(), e.tokens, e.tokens + e.count);
	size_t off = 0;
	for (BatchEntry &e : batch) {
		e.tokens = tokens.data() + off;
		off += e.count;
	}
}

} // namespace

double quantile(std::vector<uint32_t> v, double p)
{
	if (v.empty())
		return 0;
	size_t k = std::min(v.size() - 1, (size_t)(p * (double)(v.size() - 1) + 0.5));
	std::nth_element(v.begin(), v.begin() + (long)k, v.end());
	return v[k];
}

ReplayResult replay(const ReplayOptions &o)
{
	const Profile &p = *o.profile;
	const Schedule &s = *o.schedule;
	HostAgent *agent = o.agent;
	ReplayResult r;
	std::vector<uint32_t> engramLayers = p.engramLayers();
	std::sort(engramLayers.begin(), engramLayers.end());
	// Agent layer index of each backbone layer (-1 = not an Engram layer).
	std::vector<int> engramIndex(p.layers, -1);
	if (agent) {
		auto ids = p.engramLayers();
		for (size_t k = 0; k < ids.size(); k++)
			engramIndex[ids[k]] = (int)k;
		r.stepStallNs.reserve(s.steps.size());
		r.prefetchNs.reserve(s.steps.size());
		r.wakeLagNs.reserve(s.steps.size() * (ids.size() + 1));
	}
	std::vector<BatchEntry> batch;
	std::vector<int64_t> batchTokens;
	if (agent) {
		batch.reserve(s.maxEntries);
		batchTokens.reserve(s.maxStepTokens);
	}
	uint64_t t0 = o.t0 ? o.t0 : nowMonotonicNs();
	uint64_t lastBytes = agent && o.sw ? gatheredBytes(*agent) : 0;
	uint64_t wall0 = nowMonotonicNs();
	double V = 0;
	for (const Step &st : s.steps) {
		double layerNs = p.layerUs(st.tokens, st.ctxTokens) * 1e3;
		double overNs = p.stepOverheadUs(st.outputTokens) * 1e3;
		if (!agent) {
			V += layerNs * p.layers + overNs;
			r.outputTokens += st.outputTokens;
			r.steps++;
			continue;
		}
		r.wakeLagNs.push_back((uint32_t)std::min<uint64_t>(UINT32_MAX, sleepUntil(t0 + (uint64_t)V)));
		uint64_t ticket = 0;
		// The step's batch as a server hands it over: its new token ids were just written
		// (by the sampler), contiguous and in cache. Read from the pre-built schedule at
		// prefetch time instead, each decode entry's token is a cache and TLB miss in a
		// multi-megabyte array (~80 us per 500-sequence step on a VM): the benchmark's
		// own data, not the agent's work. Untimed, after the wake: it only shortens the
		// agent's window.
		stageBatch(s, st, batch, batchTokens);
		uint64_t p0 = nowMonotonicNs();
		int rc = agent->prefetch(batch.data(), batch.size(), &ticket);
		uint64_t p1 = nowMonotonicNs();
		if (rc != 0) {
			r.error = rc;
			r.errorText = "prefetch failed (" + std::to_string(rc) + "): " + agent->lastError();
			break;
		}
		r.prefetchNs.push_back((uint32_t)std::min<uint64_t>(UINT32_MAX, p1 - p0));
		V += (double)(p1 - p0);
		uint64_t layerIssue = p1; // when the agent started on the layer's rows (for the switch)
		double stepStall = 0;
		for (uint32_t i = 0; i < p.layers; i++) {
			int k = engramIndex[i];
			if (k >= 0) {
				uint64_t D = t0 + (uint64_t)V;
				r.wakeLagNs.push_back((uint32_t)std::min<uint64_t>(UINT32_MAX, sleepUntil(D)));
				// Ready when the timeline got here: no stall (it woke at or after D). Not
				// ready: the GPU would have idled from D until the rows came (about w).
				const bool ready = agent->poll(ticket, k) == 1;
				rc = agent->wait(ticket, k);
				uint64_t w = nowMonotonicNs();
				if (rc != 0) {
					r.error = rc;
					r.errorText = "wait failed (" + std::to_string(rc) + "): " + agent->lastError();
					break;
				}
				double stall = (!ready && w > D) ? (double)(w - D) : 0.0;
				if (o.sw) {
					uint64_t b = gatheredBytes(*agent);
					uint64_t bytes = b - lastBytes;
					lastBytes = b;
					r.switchBytes += bytes;
					uint64_t done = o.sw->reserve(bytes, layerIssue);
					uint64_t have = D + (uint64_t)stall;
					if (done > have) {
						sleepUntil(done);
						r.switchDelayNs += done - have;
						stall += (double)(done - have);
					}
					layerIssue = std::max(w, done);
				}
				stepStall += stall;
				V += stall;
			}
			V += layerNs;
		}
		if (r.error)
			break;
		V += overNs;
		agent->release(ticket);
		r.stepStallNs.push_back((uint32_t)std::min<double>(UINT32_MAX, stepStall));
		r.outputTokens += st.outputTokens;
		r.steps++;
	}
	if (agent) {
		// The run ends when the GPU finishes the last step.
		sleepUntil(t0 + (uint64_t)V);
		r.agentMetrics = agent->metricsJson();
	}
	r.wallNs = nowMonotonicNs() - wall0;
	r.gpuNs = V;
	return r;
}

} // namespace engrampool::bench
