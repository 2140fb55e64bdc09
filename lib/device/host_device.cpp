// SPDX-License-Identifier: Apache-2.0
// host_device.cpp - the host device: device memory is host memory, the scatter and
// the cache admits run on the CPU inside submitLayer.
#include <cstring>
#include <vector>

#include "device/device_impl.hpp"
#include "util/units.hpp"

namespace engrampool::device {

namespace {

// Everything one submit needs, so the copy loops can be specialised on the row size.
struct Work {
	uint8_t *out;
	const uint8_t *staged;
	const uint8_t *cache;
	uint8_t *cacheW;
	const uint32_t *index;
	const uint32_t *pairs;
	size_t outRows, admits;
	uint32_t rowBytes, cacheStride;
};

// Rows of a constant size compile to straight vector moves; kBytes == 0 is the
// general case. The loops read index entries a few rows ahead to prefetch sources.
template <uint32_t kBytes>
void runWork(const Work &w)
{
	const uint32_t n = kBytes ? kBytes : w.rowBytes;
	// Hot-tier rows are random reads of a large buffer: every line of the row, well ahead.
	constexpr size_t kAhead = 16;
	auto source = [&](uint32_t e) -> const uint8_t * {
		return (e & kFromCache) ? w.cache + (size_t)(e & ~kFromCache) * w.cacheStride : w.staged + (size_t)e * n;
	};
	for (size_t i = 0; i < w.outRows; i++) {
		if (i + kAhead < w.outRows) {
			const uint8_t *p = source(w.index[i + kAhead]);
			for (uint32_t o = 0; o < n; o += 64)
				__builtin_prefetch(p + o);
		}
		std::memcpy(w.out + i * n, source(w.index[i]), n);
	}
	for (size_t i = 0; i < w.admits; i++)
		std::memcpy(w.cacheW + (size_t)w.pairs[2 * i + 1] * w.cacheStride, w.staged + (size_t)w.pairs[2 * i] * n,
			    n);
}

using WorkFn = void (*)(const Work &);

WorkFn pickWork(uint32_t rowBytes)
{
	switch (rowBytes) {
	case 64: return runWork<64>;
	case 128: return runWork<128>;
	case 192: return runWork<192>;
	case 256: return runWork<256>;
	case 264: return runWork<264>;
	case 320: return runWork<320>;
	case 384: return runWork<384>;
	case 512: return runWork<512>;
	case 768: return runWork<768>;
	case 1024: return runWork<1024>;
	case 2048: return runWork<2048>;
	case 4096: return runWork<4096>;
	default: return runWork<0>;
	}
}

class HostDevice final : public Device {
public:
	explicit HostDevice(const Options &opts) : opts_(opts) {}

	Kind kind() const override { return Kind::Host; }

	std::string describe() const override
	{
		std::string s = "host";
		if (opts_.numaNode >= 0)
			s += " (NUMA node " + std::to_string(opts_.numaNode) + ")";
		if (layout_.slots)
			s += ": " + std::to_string(layout_.slots) + " slots x " + std::to_string(layout_.layers) +
			     " layers, " + formatBytes(block_.size());
		return s;
	}

	Status allocate(uint32_t slots, uint32_t layers, size_t maxRows, size_t maxOut, uint32_t rowStride) override
	{
		Layout l;
		Status s = l.compute(slots, layers, maxRows, maxOut, rowStride);
		if (!s)
			return errors_.set(std::move(s));
		size_t total = l.recordBytes * l.records();
		auto b = HostBlock::allocate(total, opts_.numaNode);
		if (!b)
			return errors_.set(b.status().context("host device: staging and output buffers: "));
		std::vector<LayerBuffers> bufs(l.records());
		auto state = std::make_unique<std::atomic<int>[]>(l.records());
		for (size_t r = 0; r < l.records(); r++) {
			uint8_t *base = b->data() + r * l.recordBytes;
			LayerBuffers &lb = bufs[r];
			lb.stagingRows = base + l.rowsOff;
			lb.stagingIndex = reinterpret_cast<uint32_t *>(base + l.indexOff);
			lb.stagingAdmit = reinterpret_cast<uint32_t *>(base + l.admitOff);
			lb.output = base + l.outputOff;
			lb.deviceRows = lb.stagingRows;
			lb.deviceIndex = lb.stagingIndex;
			lb.deviceAdmit = lb.stagingAdmit;
		}
		block_ = std::move(b.value());
		bufs_ = std::move(bufs);
		state_ = std::move(state);
		layout_ = l;
		return Status::ok();
	}

	const LayerBuffers &buffers(uint32_t slot, uint32_t layer) const override
	{
		if (slot >= layout_.slots || layer >= layout_.layers)
			return empty_;
		return bufs_[layout_.record(slot, layer)];
	}

	Status allocateCache(size_t rows, uint32_t rowStride) override
	{
		if (rows == 0) {
			cache_.reset();
			cacheRows_ = 0;
			cacheStride_ = 0;
			return Status::ok();
		}
		if (rowStride == 0)
			return errors_.set(makeError(-EINVAL, "host device cache: row stride 0"));
		if (rows > kFromCache)
			return errors_.set(errorf(-EINVAL, "host device cache: %zu rows exceed the index limit %u", rows,
						  kFromCache));
		size_t bytes;
		if (__builtin_mul_overflow(rows, (size_t)rowStride, &bytes))
			return errors_.set(makeError(-EOVERFLOW, "host device cache: size overflows"));
		auto b = HostBlock::allocate(bytes, opts_.numaNode);
		if (!b)
			return errors_.set(b.status().context("host device cache: "));
		cache_ = std::move(b.value());
		cacheRows_ = rows;
		cacheStride_ = rowStride;
		return Status::ok();
	}

	uint8_t *cacheRows() const override { return cache_.data(); }

	int submitLayer(uint32_t slot, uint32_t layer, size_t uniqueRows, size_t outRows, size_t admits,
			uint32_t rowStride) override
	{
		SubmitCheck c{slot, layer, uniqueRows, outRows, admits, rowStride};
		DataError err;
		// Counts first: the index is only read once slot and layer are known valid.
		int rc = checkSubmit(layout_, c, nullptr, nullptr, cacheRows_, cacheStride_, &err);
		if (rc == 0) {
			const LayerBuffers &b = bufs_[layout_.record(slot, layer)];
			rc = checkSubmit(layout_, c, b.stagingIndex, b.stagingAdmit, cacheRows_, cacheStride_, &err);
			if (rc == 0) {
				Work w{b.output, b.deviceRows, cache_.data(), cache_.data(), b.deviceIndex, b.deviceAdmit,
				       outRows, admits, rowStride, cacheStride_};
				pickWork(rowStride)(w);
			}
			state_[layout_.record(slot, layer)].store(rc, std::memory_order_release);
		}
		return rc ? errors_.set(err) : 0;
	}

	int waitLayer(uint32_t slot, uint32_t layer) override
	{
		if (slot >= layout_.slots || layer >= layout_.layers)
			return -EINVAL;
		// Done on return of submitLayer; report how that went.
		return state_[layout_.record(slot, layer)].load(std::memory_order_acquire);
	}

	void *layerEvent(uint32_t, uint32_t) const override { return nullptr; }
	void *stream() const override { return nullptr; }
	std::string lastError() const override { return errors_.text(); }

private:
	Options opts_;
	Layout layout_;
	HostBlock block_;
	std::vector<LayerBuffers> bufs_;
	std::unique_ptr<std::atomic<int>[]> state_; // last submit's code per (slot, layer)
	HostBlock cache_;
	size_t cacheRows_ = 0;
	uint32_t cacheStride_ = 0;
	LayerBuffers empty_;
	mutable ErrorRecord errors_;
};

} // namespace

Result<std::unique_ptr<Device>> createHostDevice(const Options &opts)
{
	if (opts.numaNode >= 0) {
		// Fail here, not at the first allocate, when the node cannot be used.
		auto probe = HostBlock::allocate(4096, opts.numaNode);
		if (!probe)
			return probe.status().context("host device: ");
	}
	return std::unique_ptr<Device>(new HostDevice(opts));
}

} // namespace engrampool::device
