// SPDX-License-Identifier: Apache-2.0
// workload.hpp - the synthetic workload: Zipfian token streams and a continuous-batching schedule.
//
// Like nano-vLLM's benchmark (the Engram paper's harness): N sequences with prompt and
// output lengths Uniform(min, max), a scheduler that admits whole prompts while a step
// has room (max_num_batched_tokens, max_num_seqs) and otherwise decodes every running
// sequence by one token. Throughput counts output tokens. Token ids are drawn from a
// Zipf(s) distribution over the tokenizer vocabulary (ranks shuffled over ids), so the
// n-grams the Engram layers look up are heavy-tailed, as in text.
#pragma once

#include <cstdint>
#include <vector>

#include "agent/agent.hpp"
#include "profile.hpp"
#include "trace/token_trace.hpp"

namespace engrampool::bench {

struct Step {
	bool prefill = false;
	uint32_t firstEntry = 0, entries = 0;  // range in Schedule::entries
	uint64_t tokens = 0;                   // batch tokens (what the agent hashes)
	uint64_t ctxTokens = 0;                // context tokens attention reads (decode)
	uint64_t outputTokens = 0;             // tokens this step produces (one per sequence)
};

struct Schedule {
	std::vector<int64_t> tokens;           // all prompts and outputs
	std::vector<BatchEntry> entries;       // pointers into tokens
	std::vector<Step> steps;
	uint64_t outputTokens = 0, promptTokens = 0;
	uint32_t sequences = 0;
	uint32_t maxEntries = 0;               // most entries in one step
	uint64_t maxStepTokens = 0;
};

// lengthScale multiplies every drawn length (>= 1); maxSteps > 0 truncates the schedule
// (the truncated run still counts only the output tokens of its steps). With a trace,
// sequence i's prompt and output tokens are the trace's tokens from the start of trace
// sequence (i + seed * 1000003) mod count on (token_trace.hpp: continuing into the next
// ones when shorter) instead of Zipf draws; lengths and the schedule stay the same.
Schedule buildSchedule(const WorkloadSpec &w, uint64_t vocab, double lengthScale, uint32_t maxSteps,
		       const trace::TokenTrace *trace = nullptr);

} // namespace engrampool::bench
