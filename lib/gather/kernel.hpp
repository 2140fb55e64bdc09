// SPDX-License-Identifier: Apache-2.0
// kernel.hpp - the per-ISA gather kernels behind gatherRows() (internal).
#pragma once

#include "gather/gather.hpp"

namespace engrampool::gather::detail {

using KernelFn = void (*)(const Job &job, size_t begin, size_t end, bool nonTemporal, uint32_t prefetchDistance);

void gatherNaive(const Job &job, size_t begin, size_t end, bool nonTemporal, uint32_t prefetchDistance);
void gatherScalar(const Job &job, size_t begin, size_t end, bool nonTemporal, uint32_t prefetchDistance);
// Defined only on x86-64 (kernel_avx2.cpp / kernel_avx512.cpp, compiled for those ISAs).
void gatherAvx2(const Job &job, size_t begin, size_t end, bool nonTemporal, uint32_t prefetchDistance);
void gatherAvx512(const Job &job, size_t begin, size_t end, bool nonTemporal, uint32_t prefetchDistance);

KernelFn kernelFor(Isa isa);          // nullptr when the CPU cannot run it

} // namespace engrampool::gather::detail
