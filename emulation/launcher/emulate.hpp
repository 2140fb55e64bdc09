// SPDX-License-Identifier: Apache-2.0
// emulate.hpp - multi-host launcher: N forked HostAgent processes serve Zipfian token streams against one pool, verify every row, while the launcher replaces tables, kills hosts and reclaims.
//
// The pool must hold every Engram layer of the model imported with `--random --seed S`
// (or pass prepare = true to import the missing ones). Each host process sets
// EP_HOST_ID to its own id, claims host slot `hostIndexBase + i` and, per step:
// prefetch -> wait -> check every output row against randomRow(fmt, seedFor(layer,
// generation), rowId) with rowId from its own EngramHasher stream -> release.
// The generation -> seed map lives in shared memory written by the launcher around
// each import ("started" before, the entry and "done" after), so a host that sees a
// generation it cannot map yet waits for the import in flight to be recorded.
#pragma once

#include "../trace/token_trace.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_config.hpp"
#include "util/status.hpp"

namespace engrampool::emulate {

// Limits of one host's step (each host keeps three staging slots of the step's rows).
inline constexpr uint32_t kMaxBatch = 1024;       // live sequences per host
inline constexpr uint32_t kMaxStepTokens = 32768; // batch x min(maxPrefill, maxSeqLen)

struct Options {
	std::string uri;
	ModelConfig model;
	uint32_t hosts = 8;
	uint64_t steps = 200;          // steps per host (hosts go on until the events are done)
	uint32_t batch = 8;            // live sequences per host (continuous batching)
	uint32_t maxPrefill = 16;      // first chunk of a sequence: 1..maxPrefill tokens
	uint32_t maxSeqLen = 64;       // sequence length: 2..maxSeqLen tokens
	double zipfS = 1.1;            // Zipf exponent of the token stream
	std::string tracePath;         // token trace (docs/TRACE.md) instead of Zipf draws ("" = Zipf)
	const trace::TokenTrace *trace = nullptr; // loaded by run() from tracePath
	uint64_t seed = 0;             // --random seed the tables were imported with
	int64_t replaceAt = -1;        // replace every layer's table when all hosts reached this step
	uint32_t killHosts = 0;        // SIGKILL this many random hosts ...
	int64_t killAt = -1;           // ... when all hosts reached this step (default: replaceAt, else steps/2)
	uint32_t reclaimMs = 50;       // reclaim period after a replacement
	uint32_t computeUs = 0;        // modeled compute between prefetch and wait
	size_t cacheRows = 0;          // agent hot-row tier
	uint32_t heartbeatMs = 0;      // agent heartbeat (0 = lease / 4)
	uint32_t hostIndexBase = 0;    // host i claims slot hostIndexBase + i
	bool prepare = false;          // import missing layer tables with --random --seed
	double timeoutS = 300;         // whole run
	bool progress = false;         // event lines on stderr
};

struct HostReport {
	uint32_t index = 0;
	int pid = 0;
	int slot = -1;
	std::string status;            // ok | killed | failed: ...
	uint64_t steps = 0;
	uint64_t tokens = 0;
	double seconds = 0;
	double stepsPerSec = 0;
	double p50LatencyUs = 0, p99LatencyUs = 0;
	double stallMs = 0;            // time blocked in wait()
	uint64_t rowsChecked = 0;
	uint64_t wrongRows = 0;
	std::vector<uint64_t> generations; // distinct generations seen, ascending
	std::string firstWrong;
};

struct Report {
	std::vector<HostReport> hosts;
	uint64_t steps = 0, rowsChecked = 0, wrongRows = 0, tokens = 0;
	double seconds = 0;
	double stepsPerSec = 0;        // sum over hosts
	double p99LatencyUs = 0;       // over every ticket of every host
	double stallMs = 0;
	uint64_t initialGeneration = 0;
	std::vector<uint64_t> replaceGenerations; // one per replaced layer
	uint64_t newSeed = 0;
	uint64_t reclaimCalls = 0, reclaimedTables = 0;
	std::vector<uint32_t> killedHosts; // host indexes
	bool killedSlotsReleased = true;
	double killedReleaseSeconds = 0;  // from the kill until gc released their slots
	bool killedLeasesOutlivedRun = false; // their leases were still live when the survivors ended
	uint32_t pendingHeldByKilled = 0; // then: replaced versions kept for the killed hosts
	uint32_t pendingReclaim = 0;
	uint64_t usedBytes = 0, visibleExtentBytes = 0;
	bool verifyOk = false;
	bool ok = false;
	std::vector<std::string> failures;
};

// Run an emulation. Errors before any host started are a Status; everything later is
// in the report (ok = false, failures). Forks: call it before starting threads.
Result<Report> run(const Options &opts);

nlohmann::json toJson(const Report &r);
std::string toTable(const Report &r);

// Zipfian sampler over [0, n): rank k has weight 1 / (k+1)^s.
class Zipf {
public:
	Zipf(uint64_t n, double s);
	uint64_t operator()(uint64_t uniform64) const;

private:
	std::vector<double> cdf_;
};

} // namespace engrampool::emulate
