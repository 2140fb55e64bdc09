// SPDX-License-Identifier: Apache-2.0
// units.hpp - parse and print byte sizes ("64M", "1.5G", "2T"), clocks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.hpp"

namespace engrampool {

// Accepts a plain byte count or K/M/G/T (binary, optional "iB"/"B").
Result<uint64_t> parseSize(std::string_view text);
std::string formatBytes(uint64_t bytes);
uint64_t nowRealtimeNs();
uint64_t nowMonotonicNs();

} // namespace engrampool
