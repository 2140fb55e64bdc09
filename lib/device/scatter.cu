// SPDX-License-Identifier: Apache-2.0
// scatter.cu - expand unique gathered rows (or hot-cache rows) to their token
// positions on the GPU, and admit staged rows into the hot-row cache.
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

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

// One thread per word of the output, rows laid out flat so no lane idles on small
// rows (64 B = 4 x 16 B words). Word is 16, 8, 4 or 1 bytes, picked by alignment.
template <typename Word>
__global__ void scatterCachedKernel(ScatterArgs a, uint32_t wordsPerRow)
{
	const uint64_t total = a.n * wordsPerRow;
	for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < total;
	     i += (uint64_t)gridDim.x * blockDim.x) {
		uint64_t row = i / wordsPerRow;
		uint32_t w = (uint32_t)(i - row * wordsPerRow);
		uint32_t e = a.index[row];
		const Word *s = nullptr;
		if (e & 0x80000000u) {
			uint32_t c = e & 0x7fffffffu;
			if (c < a.nCache)
				s = reinterpret_cast<const Word *>(a.cache + (uint64_t)c * a.cacheStride);
		} else if (e < a.nStaged) {
			s = reinterpret_cast<const Word *>(a.staged + (uint64_t)e * a.stagedStride);
		}
		Word *d = reinterpret_cast<Word *>(a.dst + row * a.dstStride);
		d[w] = s ? s[w] : Word{};
	}
}

template <typename Word>
__global__ void admitKernel(AdmitArgs a, uint32_t wordsPerRow)
{
	const uint64_t total = a.n * wordsPerRow;
	for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < total;
	     i += (uint64_t)gridDim.x * blockDim.x) {
		uint64_t pair = i / wordsPerRow;
		uint32_t w = (uint32_t)(i - pair * wordsPerRow);
		uint32_t from = a.pairs[2 * pair], to = a.pairs[2 * pair + 1];
		if (from >= a.nStaged || to >= a.nCache)
			continue;
		const Word *s = reinterpret_cast<const Word *>(a.staged + (uint64_t)from * a.stagedStride);
		Word *d = reinterpret_cast<Word *>(a.cache + (uint64_t)to * a.cacheStride);
		d[w] = s[w];
	}
}

// Largest word size that divides every row size, stride and base address.
unsigned wordSize(uint32_t rowBytes, std::initializer_list<uint64_t> values)
{
	uint64_t bits = rowBytes;
	for (uint64_t v : values)
		bits |= v;
	for (unsigned w : {16u, 8u, 4u})
		if (bits % w == 0)
			return w;
	return 1;
}

constexpr unsigned kThreads = 256;
constexpr uint64_t kMaxBlocks = 65535;

unsigned blocksFor(uint64_t total)
{
	uint64_t b = (total + kThreads - 1) / kThreads;
	return (unsigned)(b < kMaxBlocks ? (b ? b : 1) : kMaxBlocks);
}

template <template <typename> class Launch, typename Args>
int launchByWord(unsigned word, const Args &a, cudaStream_t st)
{
	switch (word) {
	case 16:
		return Launch<uint4>::run(a, a.rowBytes / 16, st);
	case 8:
		return Launch<uint2>::run(a, a.rowBytes / 8, st);
	case 4:
		return Launch<uint32_t>::run(a, a.rowBytes / 4, st);
	default:
		return Launch<uint8_t>::run(a, a.rowBytes, st);
	}
}

template <typename Word>
struct ScatterLaunch {
	static int run(const ScatterArgs &a, uint32_t wpr, cudaStream_t st)
	{
		scatterCachedKernel<Word><<<blocksFor(a.n * wpr), kThreads, 0, st>>>(a, wpr);
		return (int)cudaGetLastError();
	}
};

template <typename Word>
struct AdmitLaunch {
	static int run(const AdmitArgs &a, uint32_t wpr, cudaStream_t st)
	{
		admitKernel<Word><<<blocksFor(a.n * wpr), kThreads, 0, st>>>(a, wpr);
		return (int)cudaGetLastError();
	}
};

} // namespace

int launchScatterCached(const ScatterArgs &a, void *stream)
{
	if (a.n == 0 || a.rowBytes == 0)
		return 0;
	unsigned word = wordSize(a.rowBytes, {a.dstStride, a.stagedStride, a.cacheStride, (uintptr_t)a.dst,
					      (uintptr_t)a.staged, (uintptr_t)a.cache});
	return launchByWord<ScatterLaunch>(word, a, static_cast<cudaStream_t>(stream));
}

int launchAdmit(const AdmitArgs &a, void *stream)
{
	if (a.n == 0 || a.rowBytes == 0)
		return 0;
	unsigned word = wordSize(a.rowBytes, {a.stagedStride, a.cacheStride, (uintptr_t)a.staged, (uintptr_t)a.cache});
	return launchByWord<AdmitLaunch>(word, a, static_cast<cudaStream_t>(stream));
}

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
