// SPDX-License-Identifier: Apache-2.0
// cuda.hpp - the CUDA device: discovery and the row scatter kernel. Built from
// cuda_runtime.cpp + scatter.cu with the toolkit, or cuda_none.cpp without it.
#pragma once

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

} // namespace engrampool::cuda
