// SPDX-License-Identifier: Apache-2.0
// switch_model.cpp - the shared switch bandwidth model: a token bucket in /dev/shm.
#include "switch_model.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace engrampool::emu {

namespace {
constexpr uint64_t kMagic = 0x6870735f70652e31ull; // "1.ep_sph"-ish: identifies the segment
constexpr uint32_t kVersion = 1;

std::string shmName(const std::string &name)
{
	return "/ep-switch." + name;
}

void setError(std::string *error, const std::string &msg)
{
	if (error)
		*error = msg;
}
} // namespace

struct SwitchModel::Shared {
	uint64_t magic;
	uint32_t version;
	uint32_t pad0;
	double gbps;
	uint64_t burstBytes;
	alignas(64) std::atomic<uint64_t> tat;       // theoretical arrival time, ns
	alignas(64) std::atomic<uint64_t> reservations;
	std::atomic<uint64_t> bytes;
	std::atomic<uint64_t> queuedNs;
	std::atomic<uint32_t> attached;
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "the switch model needs lock-free 64-bit atomics");

uint64_t SwitchModel::nowNs()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

std::string SwitchModel::path(const std::string &name)
{
	return "/dev/shm" + shmName(name);
}

SwitchModel::~SwitchModel()
{
	if (shared_) {
		shared_->attached.fetch_sub(1, std::memory_order_relaxed);
		munmap(shared_, sizeof(Shared));
	}
}

std::unique_ptr<SwitchModel> SwitchModel::map(const std::string &name, int fd, std::string *error)
{
	void *p = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED) {
		setError(error, "switch model '" + name + "': mmap: " + strerror(e));
		return nullptr;
	}
	std::unique_ptr<SwitchModel> s(new SwitchModel());
	s->name_ = name;
	s->shared_ = static_cast<Shared *>(p);
	return s;
}

std::unique_ptr<SwitchModel> SwitchModel::create(const std::string &name, double gbps, uint64_t burstBytes,
						 std::string *error)
{
	if (!(gbps > 0)) {
		setError(error, "switch model '" + name + "': bandwidth must be positive (GB/s)");
		return nullptr;
	}
	int fd = shm_open(shmName(name).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		setError(error, "switch model '" + name + "': create " + path(name) + ": " + strerror(errno));
		return nullptr;
	}
	if (ftruncate(fd, sizeof(Shared)) != 0) {
		int e = errno;
		close(fd);
		shm_unlink(shmName(name).c_str());
		setError(error, "switch model '" + name + "': resize: " + strerror(e));
		return nullptr;
	}
	auto s = map(name, fd, error);
	if (!s) {
		shm_unlink(shmName(name).c_str());
		return nullptr;
	}
	Shared *sh = s->shared_;
	sh->version = kVersion;
	sh->gbps = gbps;
	sh->burstBytes = burstBytes;
	sh->tat.store(0, std::memory_order_relaxed);
	sh->reservations.store(0, std::memory_order_relaxed);
	sh->bytes.store(0, std::memory_order_relaxed);
	sh->queuedNs.store(0, std::memory_order_relaxed);
	sh->attached.store(1, std::memory_order_relaxed);
	std::atomic_thread_fence(std::memory_order_release);
	reinterpret_cast<std::atomic<uint64_t> *>(&sh->magic)->store(kMagic, std::memory_order_release);
	s->nsPerByte_ = 1.0 / gbps; // GB/s == bytes/ns
	s->burstNs_ = (uint64_t)((double)burstBytes / gbps);
	return s;
}

std::unique_ptr<SwitchModel> SwitchModel::open(const std::string &name, std::string *error)
{
	int fd = shm_open(shmName(name).c_str(), O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		setError(error, "switch model '" + name + "': open " + path(name) + ": " + strerror(errno));
		return nullptr;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(Shared)) {
		close(fd);
		setError(error, "switch model '" + name + "': " + path(name) + " is not a switch segment (too small)");
		return nullptr;
	}
	auto s = map(name, fd, error);
	if (!s)
		return nullptr;
	Shared *sh = s->shared_;
	if (reinterpret_cast<std::atomic<uint64_t> *>(&sh->magic)->load(std::memory_order_acquire) != kMagic ||
	    sh->version != kVersion || !(sh->gbps > 0)) {
		setError(error, "switch model '" + name + "': " + path(name) + " is not a version-1 switch segment");
		return nullptr;
	}
	sh->attached.fetch_add(1, std::memory_order_relaxed);
	s->nsPerByte_ = 1.0 / sh->gbps;
	s->burstNs_ = (uint64_t)((double)sh->burstBytes / sh->gbps);
	return s;
}

bool SwitchModel::destroy(const std::string &name)
{
	return shm_unlink(shmName(name).c_str()) == 0;
}

uint64_t SwitchModel::reserve(uint64_t bytes, uint64_t now)
{
	if (!bytes)
		return now;
	uint64_t service = (uint64_t)((double)bytes * nsPerByte_ + 0.5);
	uint64_t tat = shared_->tat.load(std::memory_order_relaxed), next;
	do {
		next = (tat > now ? tat : now) + service;
	} while (!shared_->tat.compare_exchange_weak(tat, next, std::memory_order_acq_rel, std::memory_order_relaxed));
	uint64_t done = next > burstNs_ ? next - burstNs_ : 0;
	if (done < now)
		done = now;
	uint64_t ideal = service > burstNs_ ? now + service - burstNs_ : now;
	shared_->reservations.fetch_add(1, std::memory_order_relaxed);
	shared_->bytes.fetch_add(bytes, std::memory_order_relaxed);
	if (done > ideal)
		shared_->queuedNs.fetch_add(done - ideal, std::memory_order_relaxed);
	return done;
}

uint64_t SwitchModel::reserve(uint64_t bytes)
{
	return reserve(bytes, nowNs());
}

SwitchStats SwitchModel::stats() const
{
	SwitchStats s;
	s.gbps = shared_->gbps;
	s.burstBytes = shared_->burstBytes;
	s.reservations = shared_->reservations.load(std::memory_order_relaxed);
	s.bytes = shared_->bytes.load(std::memory_order_relaxed);
	s.queuedNs = shared_->queuedNs.load(std::memory_order_relaxed);
	s.attached = shared_->attached.load(std::memory_order_relaxed);
	return s;
}

} // namespace engrampool::emu
