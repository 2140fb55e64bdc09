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

// One gather: dst + i * dstStride <- table + rows[i] * rowStride, rowBytes each.
struct Job {
	const uint8_t *table = nullptr;   // row 0 of the table in the pool mapping
	uint64_t tableRows = 0;           // rows[i] < tableRows is guaranteed by the caller
	uint32_t rowStride = 0;           // bytes between rows in the pool
	uint32_t rowBytes = 0;            // bytes to copy per row
	const uint64_t *rows = nullptr;
	size_t count = 0;
	uint8_t *dst = nullptr;
	size_t dstStride = 0;             // bytes between rows in dst (>= rowBytes)
};

struct Options {
	uint32_t threads = 1;             // total workers including the calling thread
	int numaNode = -1;                // run helper threads on this node (-1 = anywhere)
	bool nonTemporal = false;         // streaming stores into dst (large gathers)
	uint32_t prefetchDistance = 8;    // rows prefetched ahead
	CostModel cost;                   // emulated CXL cost (all zero = none)
	size_t parallelThreshold = 256;   // below this many rows the caller works alone
};

// Failure details of the last run() (set without formatting: plain fields).
struct Fault {
	bool sigbus = false;
	uint64_t offset = 0;              // byte offset in the table where the fault hit
};

class Engine {
public:
	static Result<std::unique_ptr<Engine>> create(const Options &opts);
	virtual ~Engine() = default;
	// Copy the rows; blocks until all are copied. Returns 0, or -EFAULT when a page of
	// the table faulted (SIGBUS: truncated file, poisoned page); fault() tells where.
	virtual int run(const Job &job) = 0;
	virtual Fault fault() const = 0;
	virtual const Options &options() const = 0;
};

// Single-threaded primitive (used by the engine, benchmarks and tests).
void gatherRows(const Job &job, size_t begin, size_t end, bool nonTemporal, uint32_t prefetchDistance);

} // namespace engrampool::gather
