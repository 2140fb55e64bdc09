// SPDX-License-Identifier: Apache-2.0
// cuda_none.cpp - built without the CUDA toolkit: the cuda device is unavailable.
#include "device/cuda.hpp"

namespace engrampool::cuda {

Probe probe()
{
	Probe p;
	p.reason = "built without CUDA (-Dcuda=disabled or no toolkit)";
	return p;
}

Status scatterRows(void *, const void *, const uint32_t *, uint64_t, uint32_t, void *)
{
	return makeError(EP_E_UNSUPPORTED, "the cuda device is not built in");
}

} // namespace engrampool::cuda
