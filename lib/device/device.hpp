// SPDX-License-Identifier: Apache-2.0
// device.hpp - where a ticket's rows land. The agent gathers unique rows into a
// pinned staging slot; the device copies them to its memory and scatters them to
// the [tokens, J, rowStride] layout of each Engram layer.
//   host: device memory = host memory; the scatter runs on the CPU.
//   cuda: cudaHostAlloc/chunked cudaHostRegister staging, cudaMemcpyAsync on the
//         agent's single copy stream, scatter kernel, one event per (slot, layer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "util/status.hpp"

namespace engrampool::device {

enum class Kind { Host, Cuda };

struct Options {
	Kind kind = Kind::Host;
	int cudaDevice = 0;
	int numaNode = -1;               // host allocations bound here (-1 = local)
};

// Buffers of one staging slot for one layer (allocated once, stable addresses).
struct LayerBuffers {
	uint8_t *stagingRows = nullptr;   // host pinned: unique rows, rowStride apart
	uint32_t *stagingIndex = nullptr; // host pinned: output token-column -> unique row
	uint8_t *deviceRows = nullptr;    // device: unique rows (cuda); == stagingRows (host)
	uint32_t *deviceIndex = nullptr;  // device: copy of the index (cuda); == stagingIndex (host)
	uint8_t *output = nullptr;        // device: [maxTokens * J] rows, rowStride apart
	uint32_t *stagingAdmit = nullptr; // host pinned: pairs (unique row, cache slot) to admit
	uint32_t *deviceAdmit = nullptr;  // device copy of the pairs (cuda); == stagingAdmit (host)
};

// An index entry with this bit set names a row of the hot-row cache (device memory)
// instead of a unique staged row.
inline constexpr uint32_t kFromCache = 0x80000000u;

class Device {
public:
	static Result<std::unique_ptr<Device>> create(const Options &opts);
	virtual ~Device() = default;
	virtual Kind kind() const = 0;
	virtual std::string describe() const = 0;

	// Allocate buffers for `slots` staging slots x `layers` layers; each layer holds
	// up to maxRows unique rows and maxOut output rows of rowStride bytes.
	virtual Status allocate(uint32_t slots, uint32_t layers, size_t maxRows, size_t maxOut, uint32_t rowStride) = 0;
	virtual const LayerBuffers &buffers(uint32_t slot, uint32_t layer) const = 0;
	// The hot-row tier's storage in device memory: `rows` rows of rowStride bytes.
	virtual Status allocateCache(size_t rows, uint32_t rowStride) = 0;
	virtual uint8_t *cacheRows() const = 0;

	// Hot path (no allocation): copy `uniqueRows` staged rows and `outRows` index
	// entries to the device; output row i = staged row index[i], or cache row
	// (index[i] & ~kFromCache) when kFromCache is set; then copy `admits` pairs
	// (staged row -> cache slot) into the cache, and mark (slot, layer) complete.
	// Host: done on return. Cuda: queued on the copy stream, an event recorded after.
	virtual int submitLayer(uint32_t slot, uint32_t layer, size_t uniqueRows, size_t outRows, size_t admits,
				uint32_t rowStride) = 0;
	// Block until (slot, layer) is complete on the device.
	virtual int waitLayer(uint32_t slot, uint32_t layer) = 0;
	// cudaEvent_t of (slot, layer) for cudaStreamWaitEvent on a server stream; nullptr on host.
	// Inside a CUDA-graph capture wait with cudaEventWaitExternal, so the graph gets an
	// event-wait node that waits for the latest record when the graph runs.
	virtual void *layerEvent(uint32_t slot, uint32_t layer) const = 0;
	// The copy stream (cudaStream_t), nullptr on host.
	virtual void *stream() const = 0;
	// Last data-plane error as text (set at failure; read from the control plane).
	virtual std::string lastError() const = 0;
};

} // namespace engrampool::device
