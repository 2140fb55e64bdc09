// SPDX-License-Identifier: Apache-2.0
// host_registration.cpp - claim, renew and release this host's slot.
#include "pool/host_registration.hpp"

#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <thread>
#include <unistd.h>

#include "format/records.hpp"
#include "util/cacheops.hpp"
#include "util/units.hpp"

namespace engrampool {

using namespace format;

HostRegistration::~HostRegistration()
{
	if (map_.addr)
		backend::unmap(map_);
	if (fd_ >= 0)
		close(fd_);
}

Status HostRegistration::write(uint32_t state, uint64_t observedGen)
{
	HostSlot tmp{};
	Uuid me = localHostId();
	std::memcpy(tmp.hostUuid, me.data(), 16);
	setFixedString(tmp.hostname, sizeof(tmp.hostname), localHostName().substr(0, sizeof(tmp.hostname) - 1));
	tmp.pid = (uint32_t)getpid();
	tmp.state = state;
	tmp.attachTimeNs = attachNs_;
	tmp.heartbeatNs = nowRealtimeNs();
	tmp.observedGen = observedGen;
	tmp.leaseMs = leaseMs_;
	format::writeHostSlot(slot_, tmp, [this](const void *p, size_t n) { backend::persistMapped(map_, p, n); });
	return Status::ok();
}

Result<std::unique_ptr<HostRegistration>> HostRegistration::attach(const Pool &pool, int index, uint64_t observedGen,
								   uint64_t leaseMs)
{
	const RegionUri &uri = pool.region().uri();
	std::unique_ptr<HostRegistration> r(new HostRegistration());
	r->attachNs_ = nowRealtimeNs();
	r->leaseMs_ = leaseMs ? leaseMs : pool.superblock().leaseMs;

	// Pick the slot: configured, or first free/expired/detached.
	uint32_t chosen = UINT32_MAX;
	if (index >= 0) {
		if ((uint32_t)index >= kHostSlots)
			return errorf(-EINVAL, "host index %d outside [0, %u)", index, kHostSlots);
		chosen = (uint32_t)index;
		for (auto &h : pool.hosts())
			if (h.index == chosen && h.live && !(h.host == localHostId() && h.pid == (uint32_t)getpid()))
				return errorf(-EBUSY, "host slot %u is held by live host %s (pid %u); pick another host index",
					      chosen, h.hostname.c_str(), h.pid);
	} else {
		std::vector<bool> busy(kHostSlots, false);
		for (auto &h : pool.hosts())
			busy[h.index] = h.corrupt || h.live;
		for (uint32_t i = 0; i < kHostSlots && chosen == UINT32_MAX; i++)
			if (!busy[i])
				chosen = i;
		if (chosen == UINT32_MAX)
			return errorf(-ENOSPC, "all %u host slots are held by live hosts", kHostSlots);
	}
	r->index_ = chosen;

	// The region's path is where the pool lives (emul: a hugetlbfs file or /dev/shm).
	r->fd_ = ::open(uri.path.c_str(), O_RDWR | O_CLOEXEC);
	if (r->fd_ < 0)
		return errnoError(errno, "open " + uri.path + " for this host's slot (agents need write access to it)");
	uint64_t slotOff = kHostsOffset + (uint64_t)chosen * kHostSlotSize;
	uint64_t mapOff = slotOff, mapLen = kHostSlotSize;
	if (uri.kind == RegionKind::Dax) {
		mapOff = 0; // devdax mappings are whole alignment units
		mapLen = kDataOffset;
	} else if (uint64_t page = pool.region().pageSize(); page > kHostSlotSize) {
		mapOff = slotOff / page * page; // hugetlbfs: whole huge pages at aligned offsets
		mapLen = (slotOff + kHostSlotSize + page - 1) / page * page - mapOff;
	}
	auto m = backend::mapFd(r->fd_, mapLen, true, mapOff);
	if (!m)
		return std::move(m.status()).context("map host slot " + std::to_string(chosen) + ": ");
	r->map_ = *m;
	r->slot_ = reinterpret_cast<HostSlot *>(r->map_.addr + (slotOff - mapOff));
	EP_TRY(r->write(1, observedGen));
	if (index < 0) {
		// Without a configured index two hosts may pick the same free slot: wait a
		// moment and check that ours is still there.
		std::this_thread::sleep_for(std::chrono::milliseconds(2));
		invalidateLines(r->slot_, sizeof(HostSlot));
		if (r->slot_->pid != (uint32_t)getpid() ||
		    std::memcmp(r->slot_->hostUuid, localHostId().data(), 16) != 0)
			return errorf(-EAGAIN, "host slot %u was claimed by another host at the same time; retry or "
					       "configure a host index",
				      chosen);
	}
	return r;
}

Status HostRegistration::heartbeat(uint64_t observedGen)
{
	return write(1, observedGen);
}

Status HostRegistration::detach()
{
	return write(2, 0);
}

} // namespace engrampool
