// SPDX-License-Identifier: Apache-2.0
// host_registration.hpp - an attached host's own slot in the pool's host table.
//
// The pool stays mapped read-only; the slot is written through a separate small
// writable mapping of just its page (file:/emul:; the 2 MiB metadata unit on dax:,
// whose mappings cannot be smaller). Only this host writes its slot: no atomics
// across hosts.
#pragma once

#include <cstdint>
#include <memory>

#include "format/layout.hpp"
#include "pool/pool.hpp"
#include "region/backends.hpp"

namespace engrampool {

class HostRegistration {
public:
	~HostRegistration();
	HostRegistration(const HostRegistration &) = delete;
	HostRegistration &operator=(const HostRegistration &) = delete;

	// Claim slot `index` (a configured host number), or the first free or expired
	// slot when index < 0 (best effort: hosts should be numbered when many attach at once).
	static Result<std::unique_ptr<HostRegistration>> attach(const Pool &pool, int index, uint64_t observedGen,
								uint64_t leaseMs);
	uint32_t index() const { return index_; }
	// Renew the heartbeat and publish the oldest generation this host still reads.
	Status heartbeat(uint64_t observedGen);
	// Mark the slot detached (clean shutdown).
	Status detach();

private:
	HostRegistration() = default;
	Status write(uint32_t state, uint64_t observedGen);

	int fd_ = -1;
	backend::Mapping map_;         // this host's slot page, mapped writable
	format::HostSlot *slot_ = nullptr;
	uint32_t index_ = 0;
	uint64_t attachNs_ = 0;
	uint64_t leaseMs_ = 0;
};

} // namespace engrampool
