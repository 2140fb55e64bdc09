// SPDX-License-Identifier: Apache-2.0
// agent.hpp - HostAgent: what an inference server links. Per step it takes the new
// token ids of a batch and, before each Engram layer runs, that layer's rows are in
// device memory:
//   prefetch (caller thread): compress + hash with per-sequence streaming state; never
//     blocks on a generation change: the refresher thread builds the new generation's
//     view (snapshot, checks, prefault) and a later prefetch adopts it
//     at a ticket boundary, while tickets keep the view they pinned
//   pipeline thread, per layer: dedup -> hot-row tier (lookups spread over the gather
//   threads, counting and admission on the pipeline thread) -> gather misses from the pool
//   into the ticket's pinned staging slot -> device copy + scatter -> layer complete
//   (host device, packed rows: pool misses and hot-tier hits gathered in place into
//   the output, repeats copied from the first use, admitted rows copied from the output
//   into the tier; no staging, no scatter). Hot-tier victims are evicted between
//   tickets (refillHotTier), so admitting on a ticket's path never sweeps CLOCK.
// One ticket covers all Engram layers of a step and completes layer by layer. A ring
// of staging slots lets step s+1 be gathered while step s is consumed. Nothing on the
// per-step path allocates, takes a global lock or formats text.
//
// Pool trouble is reported, never fatal: every access to the pool mapping (gathers,
// catalog snapshots, prefaulting, the host-slot heartbeat and detach) runs under the
// SIGBUS guard, so a truncated pool file fails tickets with a message naming the pool;
// a move to a new generation that fails for any reason keeps the last good view (see
// healthy() and the "health" metrics). An agent without a host slot (registerHost =
// false, e.g. `engrampool lookup`) holds no table extent back from reclamation: it
// re-validates every gather (read_guard.hpp), re-reads a ticket whose table was
// reclaimed under it, and signals a ticket's layers only once all are gathered.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cache/hot_rows.hpp"
#include "cache/shadow_tier.hpp"
#include "device/device.hpp"
#include "gather/gather.hpp"
#include "hashing/hasher.hpp"
#include "pool/host_registration.hpp"
#include "pool/pool.hpp"
#include "util/status.hpp"

namespace engrampool {

// AgentConfig::modelPath naming a model the pool stores rather than a file.
inline constexpr char kPoolModelPrefix[] = "pool:";

struct AgentConfig {
	std::string poolUri;
	std::string modelPath;             // MODEL.json, or "pool:NAME" (the pool's own record and
	                                   // token map; "pool:" = its only model); or set `model`
	const ModelConfig *model = nullptr;
	std::vector<std::string> tables;   // one per Engram layer; default "<model>/layer<L>"
	device::Kind device = device::Kind::Host;
	int cudaDevice = 0;
	uint32_t maxBatchTokens = 2048;    // tokens per prefetch
	uint32_t maxSequences = 4096;      // live sequences
	uint32_t slots = 3;                // staging ring
	uint32_t gatherThreads = 1;        // incl. the pipeline thread
	bool waitHelps = false;            // a thread in wait() copies rows with the gather threads
	                                   // while it spins, instead of only waiting for them
	int numaNode = -1;                 // gather threads and staging (-1 = the pool's node or any)
	bool nonTemporal = false;
	size_t cacheRows = 0;              // hot-row tier capacity (0 = off)
	bool cacheAdmit = true;            // admit misses (false: static hot set only)
	bool cacheAdaptive = true;         // host device: bypass the tier while it costs more time than
	                                   // it saves (measured per layer pass: lookups + hit copies vs
	                                   // hit rate x the pool's time per row); 1 pass in 16..256 still uses it
	bool dedupAdaptive = true;         // host device, packed output, no tier: skip deduplicating a
	                                   // layer's rows while it costs more time than the repeats it
	                                   // saves (measured per layer pass); 1 pass in 16..256 still does it
	std::string hotSetFile;            // frequency file: "LAYER ROW COUNT" lines
	bool registerHost = true;          // claim a host slot and heartbeat
	int hostIndex = -1;                // configured host number (-1 = first free slot)
	uint32_t heartbeatMs = 0;          // 0 = lease / 4
	bool prefault = true;              // populate the tables' page tables at attach
	int outFormat = 0;                 // enum ep_row_format_out of the delivered rows (see LayerOutput)
	uint32_t refreshRetryMs = 100;     // a failed move to a new generation is retried after this
	                                   // (at once when the committed generation moves again)
};

// Sequence flags of a batch entry.
inline constexpr uint32_t kSeqStart = 1; // a new sequence: history starts from pad'
inline constexpr uint32_t kSeqEnd = 2;   // last tokens of the sequence: forget it after

struct BatchEntry {
	uint64_t seqId = 0;
	const int64_t *tokens = nullptr;
	uint32_t count = 0;
	uint32_t flags = 0;
};

// Where a layer's rows are: [tokens, columns] rows of rowStride bytes, in device memory.
struct LayerOutput {
	const uint8_t *rows = nullptr;
	uint32_t tokens = 0;
	uint32_t columns = 0;              // (N-1) * H
	uint32_t rowBytes = 0;
	uint32_t rowStride = 0;
	uint32_t format = 0;               // enum ep_row_format_out (ep_layer_output in engrampool.h)
	uint32_t layerId = 0;
	uint64_t generation = 0;           // the table generation the rows came from
};

struct AgentMetrics;

class HostAgent {
public:
	static Result<std::unique_ptr<HostAgent>> create(const AgentConfig &cfg);
	~HostAgent();
	HostAgent(const HostAgent &) = delete;
	HostAgent &operator=(const HostAgent &) = delete;

	// --- per step (data plane: return codes only, no text) ------------------------
	// Hash the batch and queue its gather. Returns 0 and the ticket, or -EINVAL (bad
	// entry), -ENOENT (unknown sequence id), -E2BIG (batch over maxBatchTokens or
	// maxSequences), EP_E_TOKEN (id outside the vocabulary), -EBUSY (every staging slot
	// holds an unreleased ticket). Nothing changes on error.
	// dead: nullptr, or one pointer per entry: nullptr (no dead token) or entries[i].count
	// flags, nonzero = dead (DeepSeek-V4.1 image positions: the position hashes pad' only
	// and blocks the lookbacks of the sequence's later tokens, in later steps too; see
	// hashing/hasher.hpp). A dead token's id is not checked.
	int prefetch(const BatchEntry *entries, size_t n, uint64_t *ticket, const uint8_t *const *dead = nullptr);
	// The ticket's live mask, one byte per token in ticket order (1 live, 0 dead), so a
	// server can zero the Engram gate of dead positions. Copies min(cap, tokens) bytes;
	// *tokens (when not null) receives the ticket's token count. -ENOENT: no such ticket.
	int liveMask(uint64_t ticket, uint8_t *mask, size_t cap, size_t *tokens) const;
	// Block until layer `layerIndex` (index in layer_ids order, -1 = all) of the ticket
	// is in device memory. Returns the ticket's error if its gather failed.
	int wait(uint64_t ticket, int layerIndex = -1);
	// Non-blocking: 1 when wait(ticket, layerIndex) would not wait for the pipeline (the
	// layer is gathered and, on the host device, in place; a cuda copy may still be in
	// flight: wait() or the layer event covers it), 0 when not yet, else an error as
	// wait() returns it.
	int poll(uint64_t ticket, int layerIndex = -1) const;
	int output(uint64_t ticket, uint32_t layerIndex, LayerOutput *out) const;
	// cudaEvent_t completing the layer (for cudaStreamWaitEvent), nullptr on host.
	void *layerEvent(uint64_t ticket, uint32_t layerIndex) const;
	// Give the ticket's staging slot back to the ring.
	int release(uint64_t ticket);
	// Forget a sequence without a batch (e.g. an aborted request).
	int endSequence(uint64_t seqId);

	// --- control plane ----------------------------------------------------------
	std::string metricsJson() const;
	std::string metricsPrometheus() const;
	// Text of the last data-plane error (e.g. the SIGBUS table/offset).
	std::string lastError() const;
	// Health: false while the agent serves from an older generation because moving to the
	// committed one failed (corrupted catalog, truncated pool, busy writer, missing table),
	// while the pool's backing object is truncated, or while heartbeats fail. *problem: why.
	bool healthy(std::string *problem = nullptr) const;
	const hashing::ModelLayout &layout() const { return hasher_->layout(); }
	uint32_t layers() const { return (uint32_t)layerCount_; }
	uint64_t generation() const;
	const Pool &pool() const { return *pool_; }
	int hostSlot() const { return reg_ ? (int)reg_->index() : -1; }

private:
	struct View;
	struct Ticket;
	struct SeqTable;
	struct DedupMap;

	HostAgent() = default;
	Status init(const AgentConfig &cfg);
	Result<std::shared_ptr<const View>> buildView(uint64_t generation) const;
	Result<std::shared_ptr<const View>> guardedView(const char *why) const;
	void refreshView();
	void refreshLoop();
	void noteRefreshFailure(uint64_t target, const std::string &why);
	void notePoolFault(const std::string &why) const;
	void pipelineLoop();
	int processTicket(Ticket &t);
	int processTicketOnce(Ticket &t);
	void convertLayer(const uint32_t *index, size_t n, const uint8_t *cacheRows, uint8_t *dst);
	void refillHotTier();
	void heartbeatOnce();
	uint64_t oldestPinnedGeneration() const;
	Ticket *findTicket(uint64_t id) const;
	// wait()/poll(): the ticket and how many layers must be done for layerIndex (-1 = all);
	// -ENOENT (unknown or retired ticket) or -EINVAL (no such layer) otherwise.
	int findLayerWait(uint64_t ticket, int layerIndex, Ticket **t, uint32_t *need) const;
	void setError(std::string msg) const;

	AgentConfig cfg_;
	ModelConfig model_;
	std::unique_ptr<Pool> pool_;
	std::unique_ptr<hashing::EngramHasher> hasher_;
	std::unique_ptr<device::Device> device_;
	std::unique_ptr<gather::Engine> gather_;
	std::unique_ptr<cache::HotRowCache> cache_;
	std::unique_ptr<cache::ShadowTier> shadow_; // the adaptive tier's warm hit rate (pipeline thread)
	std::unique_ptr<HostRegistration> reg_;
	std::unique_ptr<SeqTable> seqs_;
	std::unique_ptr<DedupMap> dedup_;           // pipeline thread's (built at create)
	std::unique_ptr<AgentMetrics> metrics_;
	size_t layerCount_ = 0;
	uint32_t columns_ = 0;
	uint32_t rowStride_ = 0;
	uint32_t rowBytes_ = 0;
	uint32_t valueBytes_ = 0;         // values part of a row (planar tables: the first pass)
	bool convert_ = false;            // output format other than packed
	uint32_t outAlloc_ = 0;           // staging/output bytes per row of the output format
	uint32_t outRowBytes_ = 0;        // LayerOutput::rowBytes / rowStride of the output format
	uint32_t outRowStride_ = 0;
	std::vector<uint8_t> packedScratch_; // converting: packed gathered rows (pipeline thread)
	std::vector<float> floatScratch_;    // converting to bf16: one dequantized row

	std::shared_ptr<const View> view_;          // current generation (prefetch thread)
	std::atomic<uint64_t> viewGeneration_{0};
	std::atomic<uint64_t> failedGeneration_{0}; // last generation a refresh failed to reach
	std::atomic<uint64_t> refreshRetryNs_{0};   // monotonic time before which it is not retried
	// Generation changes are built off the caller's thread: prefetch posts the committed
	// generation, the refresher builds its view (snapshot, checks, prefault) and hands it
	// back; a later prefetch adopts it at a ticket boundary.
	std::atomic<uint64_t> refreshWanted_{0};    // generation posted to the refresher (0 = none)
	std::atomic<uint32_t> refreshSignal_{0};
	std::atomic<bool> refreshBusy_{false};
	std::mutex pendingMutex_;
	std::shared_ptr<const View> pendingView_;   // built, not yet adopted (pendingMutex_)
	std::atomic<bool> pendingReady_{false};
	std::thread refresher_;
	std::atomic<bool> viewStale_{false};        // committed generation is newer than the view we serve
	mutable std::atomic<bool> poolFault_{false}; // a pool access raised SIGBUS (truncated / poisoned)
	std::atomic<bool> heartbeatFailing_{false};
	uint64_t cacheGeneration_ = 0;              // generation the cache content belongs to
	std::vector<uint8_t> slotFilled_;           // cache slot holds its row's bytes (pipeline thread)
	// A step of the layer pass that is skipped while it costs more time than it saves (10 %
	// hysteresis either way); while skipped, one pass in sampleEvery still runs it to keep
	// its figures current: 16, doubling (up to 256) each time a sampled pass confirms.
	struct SampledBypass {
		bool bypass = false;
		uint32_t sinceSample = 0, sampleEvery = kSampleFirst;
		bool use(); // run the step this pass?
		// After a pass, per unit of work: what the step costs and what it saves (sampled:
		// this pass ran the step while bypassed and was counted).
		void decide(double costs, double saves, bool sampled);
		static constexpr uint32_t kSampleFirst = 16, kSampleMax = 256;
	};
	// Whether the hot-row tier pays (cfg_.cacheAdaptive; pipeline thread only): running
	// averages of its time per looked-up row, its own hit rate and the pool's time per row;
	// the hit rate it is judged by is the shadow's (what the tier hits when it is used and
	// warm) once the shadow has seen enough lookups.
	struct TierEconomy : SampledBypass {
		double tierNsPerRow = 0, hitRate = 0, poolNsPerRow = 0;
		double judgedHitRate = 0; // the rate the last judgement used
		uint32_t tierSamples = 0, poolSamples = 0;
		// After a pass that used the tier: its cost and hits (passes of fewer than 32
		// looked-up rows say little and are left out). Returns whether it was counted.
		bool noteTier(size_t looked, size_t hits, uint64_t ns);
		void notePool(size_t rows, uint64_t ns);
		// After every pass: bypass or use the tier from now on.
		void judge(const cache::ShadowTier *shadow, bool sampled);
	};
	TierEconomy tierEco_;
	// Whether deduplicating a layer's row ids pays (cfg_.dedupAdaptive; host device, packed
	// output, no tier; pipeline thread only): its time per id against the repeats it finds
	// x the pool's time per gathered row. Bypassed, every id is gathered (a repeat read
	// again, usually from the cache its first read filled).
	struct DedupEconomy : SampledBypass {
		double nsPerId = 0, repeatRate = 0, poolNsPerRow = 0;
		uint32_t dedupSamples = 0, poolSamples = 0;
		void noteDedup(size_t ids, size_t unique, uint64_t ns);
		void notePool(size_t rows, uint64_t ns);
		void judge(bool sampled);
	};
	DedupEconomy dedupEco_;
	// cfg_.dedupAdaptive applies: host device, packed output (gathered in place), no tier.
	bool dedupAdaptive() const;

	std::vector<std::unique_ptr<Ticket>> tickets_; // one per staging slot
	std::atomic<uint64_t> nextTicket_{1};

	// Pipeline queue: single producer (prefetch), single consumer (pipeline thread).
	// A prefetch that finds the pipeline thread asleep (parked) wakes it as it starts
	// hashing (a heads-up), so the wake-up and the gather helpers' wake-up overlap the
	// hashing instead of following it; the queue push then needs no second wake.
	std::vector<std::atomic<uint64_t>> queue_;
	std::atomic<uint64_t> queueHead_{0}, queueTail_{0};
	std::atomic<uint32_t> queueSignal_{0};
	std::atomic<uint32_t> pipelineParked_{0};   // 1 while the pipeline thread sleeps on queueSignal_
	std::atomic<uint32_t> headsUp_{0};          // a prefetch has started: spin for its ticket
	std::atomic<uint32_t> pipelineReady_{0};    // the pipeline thread is up (create waits for it)
	std::atomic<bool> stop_{false};
	std::thread pipeline_;

	std::mutex hbMutex_;
	std::condition_variable hbCv_;
	std::thread heartbeat_;

	mutable std::mutex errMutex_;
	mutable std::string lastError_;
	mutable std::string healthProblem_;         // why healthy() is false (errMutex_)
};

} // namespace engrampool
