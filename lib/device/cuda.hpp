// SPDX-License-Identifier: Apache-2.0
// cuda.hpp - the CUDA device: discovery and the row scatter kernel. Built from
// cuda_runtime.cpp + scatter.cu with the toolkit, or cuda_none.cpp without it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/status.hpp"

namespace engrampool::cuda {

struct DeviceInfo {
	int index = -1;
	std::string name;
	std::string pciBusId;
	uint64_t totalBytes = 0;
	int ccMajor = 0, ccMinor = 0;
};

struct Probe {
	bool built = false;          // compiled with the CUDA toolkit
	bool usable = false;         // a driver and at least one GPU answered
	std::string reason;          // why not usable
	std::vector<DeviceInfo> devices;
};

Probe probe();

// dst row i = src row index[i] (rowBytes each); device pointers, async on `stream`
// (a cudaStream_t, nullptr = default stream). Returns when the launch is queued.
Status scatterRows(void *dst, const void *src, const uint32_t *index, uint64_t n, uint32_t rowBytes, void *stream);

// --- the cuda device's kernels (scatter.cu) -----------------------------------------
// dst row i (rowBytes, dstStride apart) = staged row index[i] (stagedStride apart), or
// cache row (index[i] & 0x7fffffff) (cacheStride apart) when bit 31 is set. Entries
// past nStaged / nCache produce a zero row instead of reading out of bounds.
struct ScatterArgs {
	uint8_t *dst = nullptr;
	const uint8_t *staged = nullptr;
	const uint8_t *cache = nullptr;
	const uint32_t *index = nullptr;  // device pointer
	uint64_t n = 0;
	uint32_t rowBytes = 0;
	uint32_t dstStride = 0, stagedStride = 0, cacheStride = 0;
	uint64_t nStaged = 0, nCache = 0;
};
// Queue on `stream` (a cudaStream_t); returns the launch error as a CUDA error code (0 = ok).
int launchScatterCached(const ScatterArgs &a, void *stream);
// For each pair (stagedRow, cacheSlot) in `pairs` (device, 2 x n): cache row cacheSlot =
// staged row stagedRow. Pairs out of range are skipped.
struct AdmitArgs {
	uint8_t *cache = nullptr;
	const uint8_t *staged = nullptr;
	const uint32_t *pairs = nullptr;
	uint64_t n = 0;
	uint32_t rowBytes = 0;
	uint32_t stagedStride = 0, cacheStride = 0;
	uint64_t nStaged = 0, nCache = 0;
};
int launchAdmit(const AdmitArgs &a, void *stream);

// --- host memory registration (cuda_runtime.cpp) ------------------------------------
// Flag bits, equal to cudaHostRegister's (checked where the toolkit is included).
inline constexpr unsigned kRegisterPortable = 0x01;
inline constexpr unsigned kRegisterMapped = 0x02;
inline constexpr unsigned kRegisterIoMemory = 0x04;
inline constexpr unsigned kRegisterReadOnly = 0x08;
// Very large single cudaHostRegister calls fail on recent drivers: register in pieces.
inline constexpr size_t kRegisterChunk = size_t(1) << 30;

// Existing host memory pinned with cudaHostRegister, chunk by chunk; unregisters
// on destruction. Move-only.
class HostRegistration {
public:
	struct Chunk {
		void *addr = nullptr;
		size_t len = 0;
		void *devicePtr = nullptr;   // cudaHostGetDevicePointer (kRegisterMapped), else null
	};
	HostRegistration() = default;
	~HostRegistration() { reset(); }
	HostRegistration(HostRegistration &&o) noexcept;
	HostRegistration &operator=(HostRegistration &&o) noexcept;
	HostRegistration(const HostRegistration &) = delete;
	HostRegistration &operator=(const HostRegistration &) = delete;

	// Unregister every chunk (errors ignored: nothing left to do about them).
	void reset();
	bool empty() const { return chunks_.empty(); }
	const std::vector<Chunk> &chunks() const { return chunks_; }
	// True when every chunk is mapped and its device pointer equals its host address,
	// so the whole range can be read from a kernel through the host pointer.
	bool identityMapped() const;

private:
	friend Result<HostRegistration> registerHost(void *, size_t, unsigned, size_t);
	std::vector<Chunk> chunks_;
};

// Pin [p, p+len) (widened to whole pages) in chunks of at most chunkBytes (a multiple
// of the page size). Every code is checked; on any failure the chunks done so far are
// unregistered and the error names the call, the chunk and CUDA's message (-EIO;
// -EINVAL for bad arguments; EP_E_UNSUPPORTED without CUDA). Never falls back to
// pageable memory: the caller decides what to do without the registration.
Result<HostRegistration> registerHost(void *p, size_t len, unsigned flags, size_t chunkBytes = kRegisterChunk);

} // namespace engrampool::cuda
