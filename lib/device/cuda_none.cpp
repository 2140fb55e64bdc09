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

int launchScatterCached(const ScatterArgs &, void *) { return -1; }
int launchAdmit(const AdmitArgs &, void *) { return -1; }

HostRegistration::HostRegistration(HostRegistration &&o) noexcept : chunks_(std::move(o.chunks_))
{
	o.chunks_.clear();
}

HostRegistration &HostRegistration::operator=(HostRegistration &&o) noexcept
{
	chunks_ = std::move(o.chunks_);
	o.chunks_.clear();
	return *this;
}

void HostRegistration::reset() { chunks_.clear(); }

bool HostRegistration::identityMapped() const { return false; }

Result<HostRegistration> registerHost(void *, size_t, unsigned, size_t)
{
	return makeError(EP_E_UNSUPPORTED, "cudaHostRegister: built without CUDA (-Dcuda=disabled or no toolkit)");
}

} // namespace engrampool::cuda
