// SPDX-License-Identifier: Apache-2.0
// cuda_device.cpp - the cuda device: pinned staging, one non-blocking copy stream,
// H2D copies + scatter and admit kernels + one event per (slot, layer). Every CUDA
// return code is checked; the destructor frees everything, also after failures.
#include <cuda_runtime_api.h>

#include <vector>

#include "device/cuda.hpp"
#include "device/device_impl.hpp"
#include "util/units.hpp"

namespace engrampool::device {

namespace {

Status cudaError(const std::string &call, cudaError_t rc)
{
	cudaGetLastError();
	int code = (rc == cudaErrorNoDevice || rc == cudaErrorInsufficientDriver || rc == cudaErrorInvalidDevice)
			   ? -ENODEV
			   : -EIO;
	return makeError(code, "cuda device: " + call + ": " + cudaGetErrorString(rc) + " (" + cudaGetErrorName(rc) + ")");
}

// Every call of the device runs on its GPU and in relaxed capture mode, so that a
// server thread capturing a CUDA graph on its own stream (global mode) is neither
// broken by our calls nor do our calls fail because of it. Both are restored after.
class CallScope {
public:
	explicit CallScope(int device)
	{
		call_ = "cudaThreadExchangeStreamCaptureMode(relaxed)";
		rc_ = cudaThreadExchangeStreamCaptureMode(&mode_);
		exchanged_ = rc_ == cudaSuccess;
		if (rc_ == cudaSuccess) {
			call_ = "cudaGetDevice";
			rc_ = cudaGetDevice(&prev_);
		}
		if (rc_ == cudaSuccess && prev_ != device) {
			call_ = "cudaSetDevice";
			rc_ = cudaSetDevice(device);
			switched_ = rc_ == cudaSuccess;
		}
	}
	~CallScope()
	{
		// Restoring cannot be undone if it fails; clear the error for the next call.
		if (switched_ && cudaSetDevice(prev_) != cudaSuccess)
			cudaGetLastError();
		if (exchanged_ && cudaThreadExchangeStreamCaptureMode(&mode_) != cudaSuccess)
			cudaGetLastError();
	}
	CallScope(const CallScope &) = delete;
	CallScope &operator=(const CallScope &) = delete;
	cudaError_t rc() const { return rc_; }
	const char *call() const { return call_; }

private:
	cudaStreamCaptureMode mode_ = cudaStreamCaptureModeRelaxed;
	int prev_ = 0;
	bool switched_ = false;
	bool exchanged_ = false;
	cudaError_t rc_ = cudaSuccess;
	const char *call_ = "";
};

class CudaDevice final : public Device {
public:
	explicit CudaDevice(const Options &opts) : opts_(opts) {}

	~CudaDevice() override
	{
		CallScope scope(opts_.cudaDevice);
		if (stream_ && cudaStreamSynchronize(stream_) != cudaSuccess)
			cudaGetLastError();
		releaseBuffers();
		releaseCache();
		if (stream_ && cudaStreamDestroy(stream_) != cudaSuccess)
			cudaGetLastError();
		stream_ = nullptr;
	}

	Status init()
	{
		int n = 0;
		cudaError_t rc = cudaGetDeviceCount(&n);
		if (rc != cudaSuccess)
			return cudaError("cudaGetDeviceCount (no usable driver or GPU)", rc);
		if (opts_.cudaDevice < 0 || opts_.cudaDevice >= n)
			return errorf(-ENODEV, "cuda device %d does not exist (%d device(s): 0-%d)", opts_.cudaDevice, n,
				      n - 1);
		CallScope scope(opts_.cudaDevice);
		if (scope.rc() != cudaSuccess)
			return cudaError(std::string(scope.call()) + " for device " + std::to_string(opts_.cudaDevice),
					 scope.rc());
		cudaDeviceProp prop{};
		rc = cudaGetDeviceProperties(&prop, opts_.cudaDevice);
		if (rc != cudaSuccess)
			return cudaError("cudaGetDeviceProperties", rc);
		name_ = prop.name;
		rc = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
		if (rc != cudaSuccess) {
			stream_ = nullptr;
			return cudaError("cudaStreamCreateWithFlags(cudaStreamNonBlocking)", rc);
		}
		return Status::ok();
	}

	Kind kind() const override { return Kind::Cuda; }

	std::string describe() const override
	{
		std::string s = "cuda:" + std::to_string(opts_.cudaDevice) + " (" + name_ + ")";
		if (opts_.numaNode >= 0)
			s += ", staging on NUMA node " + std::to_string(opts_.numaNode);
		if (layout_.slots)
			s += ": " + std::to_string(layout_.slots) + " slots x " + std::to_string(layout_.layers) +
			     " layers, " + formatBytes(layout_.stagingBytes * layout_.records()) + " pinned, " +
			     formatBytes(layout_.recordBytes * layout_.records()) + " device";
		return s;
	}

	Status allocate(uint32_t slots, uint32_t layers, size_t maxRows, size_t maxOut, uint32_t rowStride) override
	{
		Layout l;
		Status s = l.compute(slots, layers, maxRows, maxOut, rowStride);
		if (!s)
			return errors_.set(std::move(s));
		CallScope scope(opts_.cudaDevice);
		if (scope.rc() != cudaSuccess)
			return errors_.set(cudaError(scope.call(), scope.rc()));
		// Copies of the old buffers may still be in flight.
		cudaError_t rc = cudaStreamSynchronize(stream_);
		if (rc != cudaSuccess)
			return errors_.set(cudaError("cudaStreamSynchronize (before reallocating)", rc));
		releaseBuffers();
		s = allocateBuffers(l);
		if (!s) {
			releaseBuffers();
			return errors_.set(std::move(s));
		}
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
		CallScope scope(opts_.cudaDevice);
		if (scope.rc() != cudaSuccess)
			return errors_.set(cudaError(scope.call(), scope.rc()));
		cudaError_t rc = cudaStreamSynchronize(stream_);
		if (rc != cudaSuccess)
			return errors_.set(cudaError("cudaStreamSynchronize (before replacing the cache)", rc));
		releaseCache();
		if (rows == 0)
			return Status::ok();
		if (rowStride == 0)
			return errors_.set(makeError(-EINVAL, "cuda device cache: row stride 0"));
		if (rows > kFromCache)
			return errors_.set(
				errorf(-EINVAL, "cuda device cache: %zu rows exceed the index limit %u", rows, kFromCache));
		size_t bytes;
		if (__builtin_mul_overflow(rows, (size_t)rowStride, &bytes))
			return errors_.set(makeError(-EOVERFLOW, "cuda device cache: size overflows"));
		void *p = nullptr;
		rc = cudaMalloc(&p, bytes);
		if (rc != cudaSuccess)
			return errors_.set(cudaError("cudaMalloc(hot-row cache, " + formatBytes(bytes) + ")", rc));
		cache_ = static_cast<uint8_t *>(p);
		rc = cudaMemsetAsync(cache_, 0, bytes, stream_);
		if (rc == cudaSuccess)
			rc = cudaStreamSynchronize(stream_);
		if (rc != cudaSuccess) {
			releaseCache();
			return errors_.set(cudaError("cudaMemsetAsync(hot-row cache)", rc));
		}
		cacheRows_ = rows;
		cacheStride_ = rowStride;
		return Status::ok();
	}

	uint8_t *cacheRows() const override { return cache_; }

	int submitLayer(uint32_t slot, uint32_t layer, size_t uniqueRows, size_t outRows, size_t admits,
			uint32_t rowStride) override
	{
		SubmitCheck c{slot, layer, uniqueRows, outRows, admits, rowStride};
		DataError err;
		int rc = checkSubmit(layout_, c, nullptr, nullptr, cacheRows_, cacheStride_, &err);
		if (rc != 0)
			return errors_.set(err);
		const size_t r = layout_.record(slot, layer);
		const LayerBuffers &b = bufs_[r];
		rc = checkSubmit(layout_, c, b.stagingIndex, b.stagingAdmit, cacheRows_, cacheStride_, &err);
		if (rc == 0)
			rc = enqueue(b, r, c, &err);
		state_[r].store(rc, std::memory_order_release);
		return rc ? errors_.set(err) : 0;
	}

	int waitLayer(uint32_t slot, uint32_t layer) override
	{
		if (slot >= layout_.slots || layer >= layout_.layers)
			return -EINVAL;
		const size_t r = layout_.record(slot, layer);
		int st = state_[r].load(std::memory_order_acquire);
		if (st != 0)
			return st;
		CallScope scope(opts_.cudaDevice);
		cudaError_t rc = scope.rc();
		if (rc == cudaSuccess)
			rc = cudaEventSynchronize(events_[r]);
		if (rc != cudaSuccess) {
			cudaGetLastError();
			DataError err;
			err.code = -EIO;
			err.call = scope.rc() != cudaSuccess ? scope.call() : "cudaEventSynchronize";
			err.detail = cudaGetErrorString(rc);
			err.slot = slot;
			err.layer = layer;
			return errors_.set(err);
		}
		return 0;
	}

	void *layerEvent(uint32_t slot, uint32_t layer) const override
	{
		if (slot >= layout_.slots || layer >= layout_.layers)
			return nullptr;
		return events_[layout_.record(slot, layer)];
	}

	void *stream() const override { return stream_; }
	std::string lastError() const override { return errors_.text(); }

private:
	// Everything on the copy stream, nothing that synchronises.
	int enqueue(const LayerBuffers &b, size_t r, const SubmitCheck &c, DataError *err)
	{
		err->slot = c.slot;
		err->layer = c.layer;
		auto failed = [&](const char *call, cudaError_t rc) {
			cudaGetLastError();
			err->code = -EIO;
			err->call = call;
			err->detail = cudaGetErrorString(rc);
			return -EIO;
		};
		CallScope scope(opts_.cudaDevice);
		if (scope.rc() != cudaSuccess)
			return failed(scope.call(), scope.rc());
		cudaError_t rc;
		if (c.uniqueRows > 0 &&
		    (rc = cudaMemcpyAsync(b.deviceRows, b.stagingRows, c.uniqueRows * c.rowStride, cudaMemcpyHostToDevice,
					  stream_)) != cudaSuccess)
			return failed("cudaMemcpyAsync(staged rows)", rc);
		if (c.outRows > 0 && (rc = cudaMemcpyAsync(b.deviceIndex, b.stagingIndex, c.outRows * sizeof(uint32_t),
							   cudaMemcpyHostToDevice, stream_)) != cudaSuccess)
			return failed("cudaMemcpyAsync(index)", rc);
		if (c.admits > 0 && (rc = cudaMemcpyAsync(b.deviceAdmit, b.stagingAdmit, c.admits * 2 * sizeof(uint32_t),
							  cudaMemcpyHostToDevice, stream_)) != cudaSuccess)
			return failed("cudaMemcpyAsync(admit pairs)", rc);
		cuda::ScatterArgs sa;
		sa.dst = b.output;
		sa.staged = b.deviceRows;
		sa.cache = cache_;
		sa.index = b.deviceIndex;
		sa.n = c.outRows;
		sa.rowBytes = c.rowStride;
		sa.dstStride = sa.stagedStride = c.rowStride;
		sa.cacheStride = cacheStride_;
		sa.nStaged = c.uniqueRows;
		sa.nCache = cacheRows_;
		if ((rc = (cudaError_t)cuda::launchScatterCached(sa, stream_)) != cudaSuccess)
			return failed("scatter kernel launch", rc);
		cuda::AdmitArgs aa;
		aa.cache = cache_;
		aa.staged = b.deviceRows;
		aa.pairs = b.deviceAdmit;
		aa.n = c.admits;
		aa.rowBytes = c.rowStride;
		aa.stagedStride = c.rowStride;
		aa.cacheStride = cacheStride_;
		aa.nStaged = c.uniqueRows;
		aa.nCache = cacheRows_;
		if ((rc = (cudaError_t)cuda::launchAdmit(aa, stream_)) != cudaSuccess)
			return failed("admit kernel launch", rc);
		if ((rc = cudaEventRecord(events_[r], stream_)) != cudaSuccess)
			return failed("cudaEventRecord", rc);
		return 0;
	}

	Status allocateBuffers(const Layout &l)
	{
		const size_t records = l.records();
		const size_t stagingTotal = l.stagingBytes * records;
		const size_t deviceTotal = l.recordBytes * records;
		cudaError_t rc;
		if (opts_.numaNode >= 0) {
			// cudaHostAlloc cannot place memory: allocate on the node, then pin it.
			auto b = HostBlock::allocate(stagingTotal, opts_.numaNode);
			if (!b)
				return b.status().context("cuda device staging: ");
			stagingBlock_ = std::move(b.value());
			auto reg = cuda::registerHost(stagingBlock_.data(), stagingTotal, cuda::kRegisterPortable);
			if (!reg)
				return reg.status().context("cuda device staging: ");
			stagingReg_ = std::move(reg.value());
			staging_ = stagingBlock_.data();
		} else {
			void *p = nullptr;
			rc = cudaHostAlloc(&p, stagingTotal, cudaHostAllocPortable);
			if (rc != cudaSuccess)
				return cudaError("cudaHostAlloc(staging, " + formatBytes(stagingTotal) + ", portable)", rc);
			staging_ = static_cast<uint8_t *>(p);
			stagingHostAlloc_ = true;
		}
		void *d = nullptr;
		rc = cudaMalloc(&d, deviceTotal);
		if (rc != cudaSuccess)
			return cudaError("cudaMalloc(device rows and output, " + formatBytes(deviceTotal) + ")", rc);
		device_ = static_cast<uint8_t *>(d);
		events_.assign(records, nullptr);
		for (size_t r = 0; r < records; r++) {
			rc = cudaEventCreateWithFlags(&events_[r], cudaEventDisableTiming);
			if (rc != cudaSuccess) {
				events_[r] = nullptr;
				return cudaError("cudaEventCreateWithFlags(cudaEventDisableTiming), event " +
							 std::to_string(r),
						 rc);
			}
		}
		bufs_.assign(records, LayerBuffers{});
		for (size_t r = 0; r < records; r++) {
			uint8_t *hs = staging_ + r * l.stagingBytes;
			uint8_t *dv = device_ + r * l.recordBytes;
			LayerBuffers &lb = bufs_[r];
			lb.stagingRows = hs + l.rowsOff;
			lb.stagingIndex = reinterpret_cast<uint32_t *>(hs + l.indexOff);
			lb.stagingAdmit = reinterpret_cast<uint32_t *>(hs + l.admitOff);
			lb.deviceRows = dv + l.rowsOff;
			lb.deviceIndex = reinterpret_cast<uint32_t *>(dv + l.indexOff);
			lb.deviceAdmit = reinterpret_cast<uint32_t *>(dv + l.admitOff);
			lb.output = dv + l.outputOff;
		}
		state_ = std::make_unique<std::atomic<int>[]>(records);
		layout_ = l;
		return Status::ok();
	}

	// Frees whatever exists; the caller has synchronised the copy stream.
	void releaseBuffers()
	{
		for (cudaEvent_t &e : events_)
			if (e && cudaEventDestroy(e) != cudaSuccess)
				cudaGetLastError();
		events_.clear();
		if (device_ && cudaFree(device_) != cudaSuccess)
			cudaGetLastError();
		device_ = nullptr;
		if (stagingHostAlloc_ && staging_ && cudaFreeHost(staging_) != cudaSuccess)
			cudaGetLastError();
		stagingHostAlloc_ = false;
		stagingReg_.reset();
		stagingBlock_.reset();
		staging_ = nullptr;
		bufs_.clear();
		state_.reset();
		layout_ = Layout{};
	}

	void releaseCache()
	{
		if (cache_ && cudaFree(cache_) != cudaSuccess)
			cudaGetLastError();
		cache_ = nullptr;
		cacheRows_ = 0;
		cacheStride_ = 0;
	}

	Options opts_;
	std::string name_;
	cudaStream_t stream_ = nullptr;
	Layout layout_;
	uint8_t *staging_ = nullptr;      // cudaHostAlloc'd, or stagingBlock_ pinned by stagingReg_
	bool stagingHostAlloc_ = false;
	HostBlock stagingBlock_;
	cuda::HostRegistration stagingReg_;
	uint8_t *device_ = nullptr;
	std::vector<cudaEvent_t> events_;
	std::vector<LayerBuffers> bufs_;
	std::unique_ptr<std::atomic<int>[]> state_;
	uint8_t *cache_ = nullptr;
	size_t cacheRows_ = 0;
	uint32_t cacheStride_ = 0;
	LayerBuffers empty_;
	mutable ErrorRecord errors_;
};

} // namespace

Result<std::unique_ptr<Device>> createCudaDevice(const Options &opts)
{
	auto dev = std::make_unique<CudaDevice>(opts);
	Status s = dev->init();
	if (!s)
		return s; // the destructor releases whatever init created
	return std::unique_ptr<Device>(std::move(dev));
}

} // namespace engrampool::device
