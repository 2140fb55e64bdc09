// SPDX-License-Identifier: Apache-2.0
// replay.hpp - one host's replay: the scheduler + GPU timeline thread against a real agent.
//
// GPU time is modeled (the profile) and kept as a virtual clock V anchored to real
// time at t0. Per step s:
//   1. sleep until t0 + V (the GPU finished step s-1; the new token ids exist);
//   2. prefetch() the step's token ids; its CPU time is serial (it delays the launch): V += it;
//   3. play the layers: before Engram layer k, sleep until its deadline D = t0 + V and
//      wait(ticket, k); if the rows were not there (poll() just before the wait), stall =
//      (time wait returned) - D and V += stall (the GPU idles); then V += layer_us for
//      every layer, + the step overhead;
//   4. release the ticket.
// The timeline sleeps only at step starts and Engram layers, so with a resident table
// (no prefetch, no wait) V is exactly the profile's time: that replay is the baseline.
// A late wake of the timeline (a busy core) never adds to V, it only shortens the
// agent's window (conservative). With a switch model, the layer's gathered bytes are
// also reserved on the shared switch; rows that the switch would deliver later than the
// agent did extend the stall to that time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/agent.hpp"
#include "profile.hpp"
#include "switch_model.hpp"
#include "workload.hpp"

namespace engrampool::bench {

struct ReplayResult {
	double gpuNs = 0;                      // V at the end
	uint64_t outputTokens = 0, steps = 0;
	uint64_t wallNs = 0;
	std::vector<uint32_t> stepStallNs;     // per step, sum over Engram layers (engram replays)
	std::vector<uint32_t> prefetchNs;      // per step, the prefetch() call
	std::vector<uint32_t> wakeLagNs;       // how late the timeline woke, per sleep
	uint64_t switchDelayNs = 0;            // part of the stalls due to the switch
	uint64_t switchBytes = 0;
	int error = 0;
	std::string errorText;
	std::string agentMetrics;              // agent metricsJson() at the end
	double tokensPerS() const { return gpuNs > 0 ? (double)outputTokens / (gpuNs * 1e-9) : 0; }
};

struct ReplayOptions {
	const Profile *profile = nullptr;
	const Schedule *schedule = nullptr;
	HostAgent *agent = nullptr;            // nullptr: resident baseline (fast-forward, no sleeping)
	emu::SwitchModel *sw = nullptr;
	uint64_t t0 = 0;                       // CLOCK_MONOTONIC start (0 = now)
};

ReplayResult replay(const ReplayOptions &o);

// p-quantile (0..1) of a sample, 0 when empty.
double quantile(std::vector<uint32_t> v, double p);

} // namespace engrampool::bench
