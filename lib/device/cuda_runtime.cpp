// SPDX-License-Identifier: Apache-2.0
// cuda_runtime.cpp - CUDA discovery and chunked host registration through the
// runtime API; every code checked.
#include <cuda_runtime_api.h>
#include <unistd.h>

#include <cstdio>

#include "device/cuda.hpp"

namespace engrampool::cuda {

static_assert(kRegisterPortable == cudaHostRegisterPortable);
static_assert(kRegisterMapped == cudaHostRegisterMapped);
static_assert(kRegisterIoMemory == cudaHostRegisterIoMemory);
static_assert(kRegisterReadOnly == cudaHostRegisterReadOnly);

Probe probe()
{
	Probe p;
	p.built = true;
	int n = 0;
	cudaError_t rc = cudaGetDeviceCount(&n);
	if (rc != cudaSuccess) {
		p.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(rc);
		cudaGetLastError();
		return p;
	}
	if (n == 0) {
		p.reason = "no CUDA device";
		return p;
	}
	for (int i = 0; i < n; i++) {
		cudaDeviceProp prop{};
		if (cudaGetDeviceProperties(&prop, i) != cudaSuccess)
			continue;
		DeviceInfo d;
		d.index = i;
		d.name = prop.name;
		char bus[32] = {};
		if (cudaDeviceGetPCIBusId(bus, sizeof(bus), i) == cudaSuccess)
			d.pciBusId = bus;
		d.totalBytes = prop.totalGlobalMem;
		d.ccMajor = prop.major;
		d.ccMinor = prop.minor;
		p.devices.push_back(d);
	}
	p.usable = !p.devices.empty();
	if (!p.usable)
		p.reason = "no CUDA device answered cudaGetDeviceProperties";
	return p;
}

HostRegistration::HostRegistration(HostRegistration &&o) noexcept : chunks_(std::move(o.chunks_))
{
	o.chunks_.clear();
}

HostRegistration &HostRegistration::operator=(HostRegistration &&o) noexcept
{
	if (this != &o) {
		reset();
		chunks_ = std::move(o.chunks_);
		o.chunks_.clear();
	}
	return *this;
}

void HostRegistration::reset()
{
	// Reverse order: the last chunk registered is the first released.
	for (auto it = chunks_.rbegin(); it != chunks_.rend(); ++it)
		if (cudaHostUnregister(it->addr) != cudaSuccess)
			cudaGetLastError();
	chunks_.clear();
}

bool HostRegistration::identityMapped() const
{
	if (chunks_.empty())
		return false;
	for (const Chunk &c : chunks_)
		if (c.devicePtr != c.addr)
			return false;
	return true;
}

Result<HostRegistration> registerHost(void *p, size_t len, unsigned flags, size_t chunkBytes)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (p == nullptr || len == 0)
		return makeError(-EINVAL, "cudaHostRegister: empty range");
	if (chunkBytes == 0 || chunkBytes % page != 0)
		return errorf(-EINVAL, "cudaHostRegister: chunk size %zu is not a multiple of the page size %zu", chunkBytes,
			      page);
	if (flags & ~(kRegisterPortable | kRegisterMapped | kRegisterIoMemory | kRegisterReadOnly))
		return errorf(-EINVAL, "cudaHostRegister: unknown flags 0x%x", flags);
	// Whole pages, so that two chunks never share a page (a second registration of
	// the same page fails).
	uintptr_t begin = (uintptr_t)p & ~(uintptr_t)(page - 1);
	uintptr_t end = ((uintptr_t)p + len + page - 1) & ~(uintptr_t)(page - 1);
	if (end <= begin)
		return makeError(-EINVAL, "cudaHostRegister: range wraps the address space");

	HostRegistration reg;
	reg.chunks_.reserve((end - begin + chunkBytes - 1) / chunkBytes);
	for (uintptr_t at = begin; at < end; at += chunkBytes) {
		size_t n = (end - at) < chunkBytes ? (size_t)(end - at) : chunkBytes;
		void *addr = reinterpret_cast<void *>(at);
		cudaError_t rc = cudaHostRegister(addr, n, flags);
		if (rc != cudaSuccess) {
			cudaGetLastError();
			size_t idx = reg.chunks_.size();
			reg.reset();
			return errorf(-EIO,
				      "cudaHostRegister(chunk %zu: %p, %zu bytes, flags 0x%x) of a %zu-byte range: %s (%s); "
				      "%zu earlier chunk(s) unregistered, nothing stays pinned",
				      idx, addr, n, flags, (size_t)(end - begin), cudaGetErrorString(rc), cudaGetErrorName(rc),
				      idx);
		}
		HostRegistration::Chunk c;
		c.addr = addr;
		c.len = n;
		reg.chunks_.push_back(c);
		if (flags & kRegisterMapped) {
			void *dp = nullptr;
			rc = cudaHostGetDevicePointer(&dp, addr, 0);
			if (rc != cudaSuccess) {
				cudaGetLastError();
				size_t idx = reg.chunks_.size() - 1;
				reg.reset();
				return errorf(-EIO, "cudaHostGetDevicePointer(chunk %zu: %p): %s (%s); registration undone", idx,
					      addr, cudaGetErrorString(rc), cudaGetErrorName(rc));
			}
			reg.chunks_.back().devicePtr = dp;
		}
	}
	return reg;
}

} // namespace engrampool::cuda
