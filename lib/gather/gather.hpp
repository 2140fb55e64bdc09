// SPDX-License-Identifier: Apache-2.0
// gather.hpp - the row gather engine: copy scattered pool rows into a contiguous
// staging buffer with a pool of threads, software prefetching and (optionally)
// non-temporal stores. The per-step hot path: run() never allocates, never locks
// globally and never formats text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "region/uri.hpp"
#include "util/status.hpp"

namespace engrampool::gather {

// One gather: dst + i * dstStride <- table + rows[i] * rowStride, rowBytes each; with a
// dstIndex, row i goes to dst + dstIndex[i] * dstStride instead (a gather straight into
// scattered output positions: no second copy through a staging buffer).
struct Job {
	const uint8_t *table = nullptr;   // row 0 of the table in the pool mapping
	uint64_t tableRows = 0;           // rows[i] < tableRows is guaranteed by the caller
	uint32_t rowStride = 0;           // bytes between rows in the pool
	uint32_t rowBytes = 0;            // bytes to copy per row
	const uint64_t *rows = nullptr;
	size_t count = 0;
	uint8_t *dst = nullptr;
	size_t dstStride = 0;             // bytes between rows in dst (>= rowBytes)
	const uint32_t *dstIndex = nullptr; // optional: destination row of each rows[i]
	bool local = false;               // the source is local memory (the hot-row tier), not the
	                                  // pool: no cost model, no switch reservation
	// Instead of copying rows: call task(taskCtx, begin, end) over spans of [0, count),
	// shared by the same workers (a parallel loop on the gather threads, e.g. hot-tier
	// lookups). No cost model, no switch; the task must not fault.
	void (*task)(void *ctx, size_t begin, size_t end) = nullptr;
	void *taskCtx = nullptr;
};

// Copy kernels. Auto picks the widest the CPU runs (EP_GATHER_ISA=naive|scalar|avx2|avx512
// overrides it for experiments). Naive is the baseline a user would write: one memcpy
// per row, no prefetching, no streaming stores.
enum class Isa : uint8_t { Auto, Naive, Scalar, Avx2, Avx512 };

struct Options {
	uint32_t threads = 1;             // total workers including the calling thread
	int numaNode = -1;                // run helper threads on this node (-1 = anywhere)
	bool nonTemporal = false;         // streaming stores into dst: only for batches far larger than
	                                  // the LLC; a staging slot that fits is faster cached (measured)
	uint32_t prefetchDistance = 8;    // rows prefetched ahead
	CostModel cost;                   // emulated CXL cost (all zero = none)
	size_t parallelThreshold = 256;   // below this many rows the caller works alone
	Isa isa = Isa::Auto;
	// How long an idle helper spins before it sleeps on a futex. Spinning buys a
	// sub-microsecond start for back-to-back runs; sleeping frees the core.
	uint32_t spinNs = 20000;
	// Other threads may join runs through help() (the agent's waiting callers): runs of
	// parallelThreshold rows or more are cut into chunks even without helper threads.
	bool guests = false;
};

// Failure details of the last run() (set without formatting: plain fields).
struct Fault {
	bool sigbus = false;
	uint64_t offset = 0;              // byte offset in the table where the fault hit
	uint64_t row = 0;                 // offset / rowStride: the pool row that faulted
	bool inTable = false;             // false: the faulting address was outside the table (dst?)
	uintptr_t address = 0;            // si_addr as the kernel reported it
};

// The cost model (see CostModel): a run of `rows` rows and `bytes` bytes by `workers`
// workers, each with `prefetch` rows outstanding, keeps
// min(prefetch x lines per row, mlpLines) cache lines in flight per worker (a core's
// outstanding misses are bounded by its fill buffers, however far software prefetches
// ahead; mlpLines = 0 drops that bound) and takes at least
// max(ceil(lines / lines in flight) * latencyNs, bytes / linkGbps) ns. The engine
// busy-waits (yielding) until that much time has passed since run() began, so the real
// copy counts towards it (the emulated link replaces local memory, it does not add to it).
// switchGbps is shared by every host of the pool, so it is not part of this formula:
// each run reserves its bytes on the shared switch model (emulation/switch, a token
// bucket in /dev/shm/ep-switch.pool.<switchName>, no burst) when it begins and also
// waits until the switch has carried them, i.e. at least bytes / switchGbps after the
// later of its start and the end of the traffic other hosts queued before it. Without
// a switchName the bucket is private to the engine.
inline uint64_t modeledNs(const CostModel &c, size_t rows, uint64_t bytes, uint32_t prefetch, uint32_t workers = 1)
{
	if (!rows)
		return 0;
	const uint64_t w = workers ? workers : 1;
	const uint64_t rowBytes = (bytes + rows - 1) / rows;
	const uint64_t linesPerRow = rowBytes ? (rowBytes + 63) / 64 : 1;
	uint64_t perWorker = (uint64_t)(prefetch ? prefetch : 1) * linesPerRow;
	if (c.mlpLines && perWorker > c.mlpLines)
		perWorker = c.mlpLines;
	const uint64_t inflight = perWorker * w;
	const uint64_t lines = (uint64_t)rows * linesPerRow;
	uint64_t lat = (uint64_t)c.latencyNs * ((lines + inflight - 1) / inflight);
	uint64_t bw = c.linkGbps > 0 ? (uint64_t)((double)bytes / c.linkGbps) : 0; // GB/s == bytes/ns
	return lat > bw ? lat : bw;
}

// One run() at a time per engine (the agent owns one per staging ring). Helper threads
// are started by create() and parked between runs; the caller always works too, so a
// run never waits for a helper to wake before progress starts.
class Engine {
public:
	static Result<std::unique_ptr<Engine>> create(const Options &opts);
	virtual ~Engine() = default;
	// Copy the rows; blocks until all are copied. Returns 0, or -EFAULT when a page of
	// the table faulted (SIGBUS: truncated file, poisoned page); fault() tells where.
	virtual int run(const Job &job) = 0;
	virtual Fault fault() const = 0;
	virtual const Options &options() const = 0;
	// A run is expected within `ns`: wake the helpers that sleep and keep them spinning
	// until then (or until a run), so that they start with the caller instead of one
	// futex wake-up later (tens to hundreds of microseconds on a VM). Never blocks; call
	// it from the thread that calls run().
	virtual void warm(uint64_t ns) = 0;
	// From any other thread (Options::guests): take part in the run in progress, copying
	// its chunks not yet taken, like a helper; returns whether there was work to join.
	// Never waits for a run; a run still waits for every chunk it handed out, so rows a
	// guest copies are in dst when run() returns. Faults are the run's, as a helper's.
	virtual bool help() = 0;
};

// Single-threaded primitive (used by the engine, benchmarks and tests), best kernel.
void gatherRows(const Job &job, size_t begin, size_t end, bool nonTemporal, uint32_t prefetchDistance);
// The same with a chosen kernel; isaSupported(isa) must hold.
void gatherRowsWith(Isa isa, const Job &job, size_t begin, size_t end, bool nonTemporal, uint32_t prefetchDistance);
bool isaSupported(Isa isa);
Isa bestIsa();                        // what Auto resolves to (honours EP_GATHER_ISA)
const char *isaName(Isa isa);

} // namespace engrampool::gather
