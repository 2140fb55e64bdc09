// SPDX-License-Identifier: Apache-2.0
// scatter.cu - expand unique gathered rows to their token positions on the GPU.
#include <cuda_runtime.h>

#include <cstdint>

#include "device/cuda.hpp"

namespace engrampool::cuda {

namespace {

// One warp per output row; 4-byte words when the row size allows, bytes otherwise.
__global__ void scatterRowsKernel(uint8_t *dst, const uint8_t *src, const uint32_t *index, uint64_t n,
				  uint32_t rowBytes)
{
	uint64_t warp = (blockIdx.x * (uint64_t)blockDim.x + threadIdx.x) / 32;
	unsigned lane = threadIdx.x % 32;
	if (warp >= n)
		return;
	const uint8_t *s = src + (uint64_t)index[warp] * rowBytes;
	uint8_t *d = dst + warp * rowBytes;
	if ((rowBytes % 4) == 0 && ((uintptr_t)s % 4) == 0 && ((uintptr_t)d % 4) == 0) {
		const uint32_t *s4 = reinterpret_cast<const uint32_t *>(s);
		uint32_t *d4 = reinterpret_cast<uint32_t *>(d);
		for (uint32_t w = lane; w < rowBytes / 4; w += 32)
			d4[w] = s4[w];
	} else {
		for (uint32_t b = lane; b < rowBytes; b += 32)
			d[b] = s[b];
	}
}

} // namespace

Status scatterRows(void *dst, const void *src, const uint32_t *index, uint64_t n, uint32_t rowBytes, void *stream)
{
	if (n == 0)
		return Status::ok();
	const unsigned threads = 256;
	uint64_t blocks = (n * 32 + threads - 1) / threads;
	if (blocks > 0x7fffffffu)
		return makeError(-EINVAL, "scatter: too many rows for one launch");
	scatterRowsKernel<<<(unsigned)blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(
		static_cast<uint8_t *>(dst), static_cast<const uint8_t *>(src), index, n, rowBytes);
	cudaError_t rc = cudaGetLastError();
	if (rc != cudaSuccess)
		return makeError(-EIO, std::string("scatter kernel launch: ") + cudaGetErrorString(rc));
	return Status::ok();
}

} // namespace engrampool::cuda
