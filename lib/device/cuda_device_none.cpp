// SPDX-License-Identifier: Apache-2.0
// cuda_device_none.cpp - built without the CUDA toolkit: no cuda device.
#include "device/device_impl.hpp"

namespace engrampool::device {

Result<std::unique_ptr<Device>> createCudaDevice(const Options &opts)
{
	return errorf(EP_E_UNSUPPORTED,
		      "cuda device %d: engrampool was built without CUDA (-Dcuda=disabled or no toolkit); use the host device",
		      opts.cudaDevice);
}

} // namespace engrampool::device
