// SPDX-License-Identifier: Apache-2.0
// host_identity.hpp - who this host is: a stable 16-byte id and the hostname.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace engrampool {

using Uuid = std::array<uint8_t, 16>;

// EP_HOST_ID (32 hex digits) if set, else derived from /etc/machine-id, else the hostname.
// Emulated hosts on one machine set EP_HOST_ID to act as different hosts.
Uuid localHostId();
std::string localHostName();
Uuid randomUuid();
std::string uuidToString(const Uuid &u);
bool parseUuid(const std::string &s, Uuid &out);

} // namespace engrampool
