// SPDX-License-Identifier: Apache-2.0
// dax_none.cpp - built without libdaxctl: dax: URIs are not supported.
#include "region/backends.hpp"

namespace engrampool::backend {

Result<DaxInfo> probeDax(const std::string &path)
{
	return makeError(EP_E_UNSUPPORTED, "dax: URIs need libdaxctl, which this build lacks (" + path + ")");
}

} // namespace engrampool::backend
