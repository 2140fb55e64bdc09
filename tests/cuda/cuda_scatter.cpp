// SPDX-License-Identifier: Apache-2.0
// cuda_scatter.cpp - the scatter kernel on a real GPU; exit 77 (skip) without one.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "device/cuda.hpp"

#define CHECK(x)                                                                             \
	do {                                                                                 \
		cudaError_t rc_ = (x);                                                       \
		if (rc_ != cudaSuccess) {                                                    \
			fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(rc_)); \
			return 1;                                                            \
		}                                                                            \
	} while (0)

int main()
{
	engrampool::cuda::Probe p = engrampool::cuda::probe();
	if (!p.usable) {
		printf("SKIP: no usable GPU (%s)\n", p.reason.c_str());
		return 77;
	}
	for (uint32_t rowBytes : {64u, 264u, 320u, 7u}) {
		const uint64_t uniq = 1000, n = 5000;
		std::vector<uint8_t> src(uniq * rowBytes);
		std::mt19937_64 rng(rowBytes);
		for (auto &b : src)
			b = (uint8_t)rng();
		std::vector<uint32_t> index(n);
		for (auto &i : index)
			i = (uint32_t)(rng() % uniq);
		void *dSrc, *dDst, *dIdx;
		CHECK(cudaMalloc(&dSrc, src.size()));
		CHECK(cudaMalloc(&dDst, n * rowBytes));
		CHECK(cudaMalloc(&dIdx, n * 4));
		CHECK(cudaMemcpy(dSrc, src.data(), src.size(), cudaMemcpyHostToDevice));
		CHECK(cudaMemcpy(dIdx, index.data(), n * 4, cudaMemcpyHostToDevice));
		auto s = engrampool::cuda::scatterRows(dDst, dSrc, (const uint32_t *)dIdx, n, rowBytes, nullptr);
		if (!s) {
			fprintf(stderr, "scatter: %s\n", s.message().c_str());
			return 1;
		}
		std::vector<uint8_t> out(n * rowBytes);
		CHECK(cudaMemcpy(out.data(), dDst, out.size(), cudaMemcpyDeviceToHost));
		for (uint64_t i = 0; i < n; i++)
			if (std::memcmp(&out[i * rowBytes], &src[(uint64_t)index[i] * rowBytes], rowBytes) != 0) {
				fprintf(stderr, "row %llu (rowBytes %u) differs\n", (unsigned long long)i, rowBytes);
				return 1;
			}
		cudaFree(dSrc);
		cudaFree(dDst);
		cudaFree(dIdx);
	}
	printf("scatter kernel: ok on %s\n", p.devices[0].name.c_str());
	return 0;
}
