// SPDX-License-Identifier: Apache-2.0
// gather.cpp - kernel selection: the widest ISA the CPU runs, chosen once.
#include <cstdlib>
#include <cstring>

#include "gather/kernel.hpp"

namespace engrampool::gather {

namespace detail {

KernelFn kernelFor(Isa isa)
{
	switch (isa) {
	case Isa::Naive: return gatherNaive;
	case Isa::Scalar: return gatherScalar;
#if defined(__x86_64__)
	case Isa::Avx2: return __builtin_cpu_supports("avx2") ? gatherAvx2 : nullptr;
	case Isa::Avx512:
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
				       __builtin_cpu_supports("bmi2")
			       ? gatherAvx512
			       : nullptr;
#endif
	case Isa::Auto: return kernelFor(bestIsa());
	default: return nullptr;
	}
}

} // namespace detail

namespace {

Isa pickIsa()
{
	// An override for experiments and for running the test suite on each kernel.
	if (const char *e = getenv("EP_GATHER_ISA")) {
		for (Isa isa : { Isa::Naive, Isa::Scalar, Isa::Avx2, Isa::Avx512 })
			if (!strcmp(e, isaName(isa)) && detail::kernelFor(isa))
				return isa;
	}
	for (Isa isa : { Isa::Avx512, Isa::Avx2 })
		if (detail::kernelFor(isa))
			return isa;
	return Isa::Scalar;
}

} // namespace

Isa bestIsa()
{
	static const Isa best = pickIsa();
	return best;
}

bool isaSupported(Isa isa)
{
	return detail::kernelFor(isa) != nullptr;
}

const char *isaName(Isa isa)
{
	switch (isa) {
	case Isa::Auto: return "auto";
	case Isa::Naive: return "naive";
	case Isa::Scalar: return "scalar";
	case Isa::Avx2: return "avx2";
	case Isa::Avx512: return "avx512";
	}
	return "?";
}

void gatherRows(const Job &job, size_t begin, size_t end, bool nonTemporal, uint32_t prefetchDistance)
{
	static const detail::KernelFn fn = detail::kernelFor(bestIsa());
	fn(job, begin, end, nonTemporal, prefetchDistance);
}

void gatherRowsWith(Isa isa, const Job &job, size_t begin, size_t end, bool nonTemporal, uint32_t prefetchDistance)
{
	detail::kernelFor(isa)(job, begin, end, nonTemporal, prefetchDistance);
}

} // namespace engrampool::gather
