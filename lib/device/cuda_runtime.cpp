// SPDX-License-Identifier: Apache-2.0
// cuda_runtime.cpp - CUDA device discovery through the runtime API; every code checked.
#include <cuda_runtime_api.h>

#include "device/cuda.hpp"

namespace engrampool::cuda {

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

} // namespace engrampool::cuda
