// SPDX-License-Identifier: Apache-2.0
// device_impl.hpp - what the host and cuda devices share: the buffer layout, index
// checks, the last-error record and the per-kind factories. Private to lib/device.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "device/device.hpp"

namespace engrampool::device {

Result<std::unique_ptr<Device>> createHostDevice(const Options &opts);
// cuda_device.cpp, or cuda_device_none.cpp (EP_E_UNSUPPORTED) without the toolkit.
Result<std::unique_ptr<Device>> createCudaDevice(const Options &opts);

// Offsets of one (slot, layer) record. Staging part (rows, index, admit pairs) first,
// then the output rows; every piece starts on a kAlign boundary.
struct Layout {
	static constexpr size_t kAlign = 256;
	uint32_t slots = 0, layers = 0;
	size_t maxRows = 0, maxOut = 0;
	uint32_t rowStride = 0;
	size_t rowsOff = 0, indexOff = 0, admitOff = 0, outputOff = 0;
	size_t stagingBytes = 0;   // rows + index + admit, rounded: staging stride per record
	size_t outputBytes = 0;    // output rows, rounded
	size_t recordBytes = 0;    // stagingBytes + outputBytes

	// Checks the arguments (-EINVAL naming the bad one, -EOVERFLOW when the total does
	// not fit in size_t) and fills the offsets.
	Status compute(uint32_t slots, uint32_t layers, size_t maxRows, size_t maxOut, uint32_t rowStride);
	size_t records() const { return (size_t)slots * layers; }
	size_t record(uint32_t slot, uint32_t layer) const { return (size_t)slot * layers + layer; }
};

// Checks submitLayer's counts against the layout and the cache. Returns 0 or -EINVAL /
// -ERANGE and fills err's fields (no text is formatted here).
struct DataError {
	int code = 0;
	const char *call = "";      // the failing step ("cudaMemcpyAsync(staged rows)")
	const char *detail = "";    // static text, or cudaGetErrorString()
	uint32_t slot = 0, layer = 0;
	uint64_t value = 0, limit = 0;
	bool hasValue = false;
};

// Last error of a device: data-plane failures store plain fields, formatted only when
// lastError() is read; control-plane failures store their message.
class ErrorRecord {
public:
	int set(const DataError &e)
	{
		std::lock_guard<std::mutex> lock(mutex_);
		data_ = e;
		isData_ = true;
		return e.code;
	}
	Status set(Status s)
	{
		std::lock_guard<std::mutex> lock(mutex_);
		text_ = s.message();
		isData_ = false;
		return s;
	}
	std::string text() const;

private:
	mutable std::mutex mutex_;
	DataError data_;
	std::string text_;
	bool isData_ = false;
};

struct SubmitCheck {
	uint32_t slot, layer;
	size_t uniqueRows, outRows, admits;
	uint32_t rowStride;
};
// Counts, strides and (when index/pairs are given) every index entry and admit pair.
int checkSubmit(const Layout &l, const SubmitCheck &c, const uint32_t *index, const uint32_t *pairs,
		size_t cacheRows, uint32_t cacheStride, DataError *err);

// --- host memory (host_memory.cpp) -------------------------------------------------
// Page-aligned anonymous memory, bound to a NUMA node (-1 = local; lib/numa) and
// touched so the hot path takes no page faults. Move-only.
class HostBlock {
public:
	HostBlock() = default;
	~HostBlock() { reset(); }
	HostBlock(HostBlock &&o) noexcept : addr_(o.addr_), len_(o.len_) { o.addr_ = nullptr, o.len_ = 0; }
	HostBlock &operator=(HostBlock &&o) noexcept
	{
		if (this != &o) {
			reset();
			addr_ = o.addr_, len_ = o.len_;
			o.addr_ = nullptr, o.len_ = 0;
		}
		return *this;
	}
	HostBlock(const HostBlock &) = delete;
	HostBlock &operator=(const HostBlock &) = delete;

	static Result<HostBlock> allocate(size_t bytes, int numaNode);
	void reset();
	uint8_t *data() const { return addr_; }
	size_t size() const { return len_; }

private:
	uint8_t *addr_ = nullptr;
	size_t len_ = 0;
};

} // namespace engrampool::device
