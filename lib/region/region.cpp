// SPDX-License-Identifier: Apache-2.0
// region.cpp - create/open file:, dax: and emul: regions, with preflight checks.
#include "region/region.hpp"

#include <cstring>
#include <fcntl.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "format/layout.hpp"
#include "numa/numa.hpp"
#include "region/hugepages.hpp"
#include "region/memory_preflight.hpp"
#include "util/cacheops.hpp"
#include "util/units.hpp"

namespace engrampool {

namespace {

// Free bytes of the filesystem that holds `path` (or its parent when absent).
Result<uint64_t> fsFreeBytes(const std::string &path)
{
	std::filesystem::path p(path);
	std::string dir = std::filesystem::exists(p) ? path : p.parent_path().string();
	if (dir.empty())
		dir = ".";
	struct statvfs vfs;
	if (statvfs(dir.c_str(), &vfs) != 0)
		return errnoError(errno, "statvfs " + dir);
	return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

Status preflightFs(const std::string &path, uint64_t size)
{
	// hugetlbfs reports no free blocks without a size= limit: the mapping and fallocate
	// below decide there (ENOMEM / ENOSPC as a clear error).
	if (std::string dir = std::filesystem::path(path).parent_path().string();
	    hugepages::pathOnHugetlbfs(dir.empty() ? "." : dir))
		return Status::ok();
	auto freeBytes = fsFreeBytes(path);
	if (!freeBytes)
		return freeBytes.status();
	uint64_t have = 0;
	struct stat st;
	if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode))
		have = (uint64_t)st.st_blocks * 512;
	if (*freeBytes + have < size) {
		std::string dir = std::filesystem::path(path).parent_path().string();
		return makeError(EP_E_PREFLIGHT, "the filesystem holding " + path + " has " + formatBytes(*freeBytes) +
							 " free but the pool needs " + formatBytes(size) +
							 " (a container's /dev/shm is often only 64 MiB: enlarge it with "
							 "--shm-size, or use a file: pool on a larger filesystem, or a smaller --size)");
	}
	return Status::ok();
}

} // namespace

Region::~Region()
{
	if (map_.addr)
		backend::unmap(map_);
	if (fd_ >= 0)
		close(fd_);
}

// An emul: pool in huge pages: a file in the first usable hugetlbfs directory, every page
// faulted in now (the mapping reserves the pages; populating them also puts them on the
// URI's node), so a shortage is an error here, never a SIGBUS later. On failure nothing
// is left behind and `why` says what was missing (-EEXIST only when the name is taken).
Result<std::unique_ptr<Region>> Region::createHugeEmul(const RegionUri &uri, const CreateOptions &opts, uint64_t size,
						       std::string &why)
{
	auto dirs = hugepages::hugetlbDirs();
	if (dirs.empty()) {
		const char *env = getenv("EP_HUGETLBFS");
		why = env && *env ? "EP_HUGETLBFS=none"
				  : "no hugetlbfs is mounted (scripts/setup.sh mounts one at /dev/hugepages and reserves "
				    "pages as root)";
		return makeError(-ENOENT, why);
	}
	why.clear();
	for (auto &dir : dirs) {
		std::string path = dir + "/" + hugepages::kFilePrefix + uri.name;
		auto note = [&](const std::string &w) { why += (why.empty() ? "" : "; ") + w; };
		if (!hugepages::pathOnHugetlbfs(dir)) {
			note(dir + " is not a hugetlbfs mount");
			continue;
		}
		int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, opts.mode);
		if (fd < 0 && errno == EEXIST)
			return makeError(-EEXIST, "emulated pool '" + uri.name + "' already exists (" + path +
							  "); remove it with 'engrampool destroy " + uri.text + "'");
		if (fd < 0) {
			note("cannot create " + path + " (" + strerror(errno) + ")");
			continue;
		}
		std::unique_ptr<Region> r(new Region());
		r->uri_ = uri;
		r->uri_.path = path;
		r->fd_ = fd;
		r->pageSize_ = hugepages::pageSizeOfFd(fd);
		uint64_t hp = r->pageSize_;
		uint64_t bytes = (size + hp - 1) / hp * hp;
		fchmod(fd, opts.mode);
		auto fail = [&](const std::string &w) {
			note(w);
			r.reset(); // unmaps, closes
			unlink(path.c_str());
		};
		if (ftruncate(fd, (off_t)bytes) != 0) {
			fail("cannot size " + path + " (" + strerror(errno) + ")");
			continue;
		}
		auto m = backend::mapFd(fd, bytes, true);
		if (!m) {
			auto g = hugepages::readFigures();
			fail("the kernel has " + std::to_string(g.free > g.reserved ? g.free - g.reserved : 0) + " of " +
			     std::to_string(g.total) + " " + hugepages::pageSizeText(hp) + " pages free, the pool needs " +
			     std::to_string(bytes / hp) + " (" + m.status().message() + ")");
			continue;
		}
		r->map_ = *m;
		if (uri.node >= 0) {
			if (Status s = numa::bindMemory(r->map_.addr, bytes, uri.node, uri.text); !s) {
				fail(s.message());
				continue;
			}
		}
		if (madvise(r->map_.addr, bytes, MADV_POPULATE_WRITE) != 0) {
			int e = errno;
			if (e != EINVAL) {
				std::string where = uri.node >= 0 ? " on NUMA node " + std::to_string(uri.node) : "";
				fail("the kernel could not fault in " + std::to_string(bytes / hp) + " " +
				     hugepages::pageSizeText(hp) + " pages" + where + " (" + strerror(e) + ")");
				continue;
			}
			// A kernel without MADV_POPULATE_WRITE (< 5.14): reserve through fallocate.
			if (int rc = posix_fallocate(fd, 0, (off_t)bytes); rc != 0) {
				fail("cannot reserve " + formatBytes(bytes) + " of huge pages (" + strerror(rc) + ")");
				continue;
			}
		}
		return r;
	}
	return makeError(-ENOMEM, why);
}

Result<std::unique_ptr<Region>> Region::create(const RegionUri &uri, const CreateOptions &opts)
{
	std::unique_ptr<Region> r(new Region());
	r->uri_ = uri;
	uint64_t size = opts.size / format::kAlignUnit * format::kAlignUnit;

	if (uri.kind == RegionKind::Dax) {
		auto info = backend::probeDax(uri.path);
		if (!info)
			return info.status();
		r->dax_ = *info;
		if (info->systemRam)
			return makeError(EP_E_PREFLIGHT, uri.path + " is in system-ram mode (onlined as memory by kmem); "
								    "switch it back with 'daxctl reconfigure-device --mode=devdax " +
								    info->devname + "'");
		if (info->align == 0 || format::kAlignUnit % info->align != 0)
			return errorf(EP_E_PREFLIGHT, "%s has alignment %llu, which does not divide the pool's 2 MiB unit; "
						      "recreate the namespace with 'ndctl create-namespace -m devdax -a 2M'",
				      uri.path.c_str(), (unsigned long long)info->align);
		uint64_t devSize = info->size / format::kAlignUnit * format::kAlignUnit;
		if (size == 0)
			size = devSize;
		if (size > devSize)
			return errorf(EP_E_PREFLIGHT, "%s holds %s but the pool needs %s", uri.path.c_str(),
				      formatBytes(info->size).c_str(), formatBytes(size).c_str());
		if (size < format::kMinPoolSize)
			return errorf(EP_E_PREFLIGHT, "%s is too small: %s, a pool needs at least %s", uri.path.c_str(),
				      formatBytes(info->size).c_str(), formatBytes(format::kMinPoolSize).c_str());
		r->fd_ = ::open(uri.path.c_str(), O_RDWR | O_CLOEXEC);
		if (r->fd_ < 0)
			return errnoError(errno, "open " + uri.path);
		r->pageSize_ = info->align;
		auto m = backend::mapFd(r->fd_, size, true);
		if (!m)
			return std::move(m.status()).context(uri.path + ": ");
		r->map_ = *m;
		return r;
	}

	if (size < format::kMinPoolSize)
		return errorf(-EINVAL, "pool size %s is too small: the minimum is %s (metadata + one 2 MiB extent)",
			      formatBytes(opts.size).c_str(), formatBytes(format::kMinPoolSize).c_str());
	if (uri.kind == RegionKind::Emul && uri.node >= 0) {
		EP_TRY(numa::checkNode(uri.node, numa::Need::Memory, uri.text));
		// Refuse only on figures that agree with each other; otherwise let the kernel
		// decide when the pool is allocated (see memory_preflight.hpp). Without NUMA
		// there is nothing to bind, and no node figure to check.
		if (numa::available()) {
			backend::PreflightVerdict v =
				backend::decideNodePreflight(backend::readMemoryFigures(), uri.node, size);
			if (v.refuse)
				return makeError(EP_E_PREFLIGHT, v.reason);
		}
	}

	std::string fallbackWhy;
	if (uri.kind == RegionKind::Emul) {
		if (std::string at = hugepages::locateEmul(uri.name); !at.empty())
			return makeError(-EEXIST, "emulated pool '" + uri.name + "' already exists (" + at +
							  "); remove it with 'engrampool destroy " + uri.text + "'");
		PagePref pref = opts.pages != PagePref::Auto ? opts.pages : uri.pages;
		if (const char *e = getenv("EP_HUGEPAGES"); pref == PagePref::Auto && e && std::strcmp(e, "0") == 0)
			pref = PagePref::Small;
		if (pref != PagePref::Small) {
			std::string why;
			auto huge = createHugeEmul(uri, opts, size, why);
			if (huge)
				return huge;
			if (huge.status().code() == -EEXIST)
				return huge.status();
			if (pref == PagePref::Huge)
				return makeError(EP_E_PREFLIGHT, "emulated pool '" + uri.name + "' needs huge pages (pages=2m) "
								 "but " + why);
			fallbackWhy = why; // warned once the /dev/shm pool exists (not before an error)
		}
	}
	EP_TRY(preflightFs(uri.path, size));

	int fd;
	if (uri.kind == RegionKind::Emul) {
		std::string shmName = "/engrampool." + uri.name;
		fd = shm_open(shmName.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, opts.mode);
		if (fd < 0 && errno == EEXIST)
			return makeError(-EEXIST, "emulated pool '" + uri.name + "' already exists (" + uri.path +
							  "); remove it with 'engrampool destroy " + uri.text + "'");
		if (fd < 0)
			return errnoError(errno, "shm_open " + shmName);
	} else {
		fd = ::open(uri.path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, opts.mode);
		if (fd < 0)
			return errnoError(errno, "open " + uri.path);
		// A file: pool on hugetlbfs takes its huge pages: sizes are whole pages there.
		if (hugepages::onHugetlbfs(fd)) {
			uint64_t hp = hugepages::pageSizeOfFd(fd);
			size = (size + hp - 1) / hp * hp;
		}
	}
	fchmod(fd, opts.mode);
	r->fd_ = fd;
	r->pageSize_ = hugepages::pageSizeOfFd(fd);
	auto cleanup = [&]() {
		if (uri.kind == RegionKind::Emul)
			shm_unlink(("/engrampool." + uri.name).c_str());
	};
	if (ftruncate(fd, (off_t)size) != 0) {
		cleanup();
		return errnoError(errno, "resize " + uri.path);
	}
	auto m = backend::mapFd(fd, size, true);
	if (!m) {
		cleanup();
		return std::move(m.status()).context(uri.path + ": ");
	}
	r->map_ = *m;
	if (uri.kind == RegionKind::Emul && uri.node >= 0) {
		if (Status s = numa::bindMemory(r->map_.addr, size, uri.node, uri.text); !s) {
			cleanup();
			return s;
		}
	}
	// Reserve every page now, so a full tmpfs fails here with an error and not
	// later with SIGBUS in the middle of an import.
	if (int rc = posix_fallocate(fd, 0, (off_t)size); rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
		cleanup();
		std::string where = uri.kind == RegionKind::Emul && uri.node >= 0
					    ? " on NUMA node " + std::to_string(uri.node)
					    : "";
		return makeError(EP_E_PREFLIGHT, "cannot reserve " + formatBytes(size) + " for " + uri.path + where +
							 ": the kernel refused the memory (" + strerror(rc) +
							 "); free memory, pick another node or a smaller --size");
	}
	if (!fallbackWhy.empty())
		fprintf(stderr, "engrampool: warning: emul:%s uses 4 KiB pages in /dev/shm (slower than devdax's 2 MiB): %s\n",
			uri.name.c_str(), fallbackWhy.c_str());
	return r;
}

Result<std::unique_ptr<Region>> Region::open(const RegionUri &uri, bool writable)
{
	std::unique_ptr<Region> r(new Region());
	r->uri_ = uri;
	int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
	uint64_t size = 0;
	if (uri.kind == RegionKind::Dax) {
		auto info = backend::probeDax(uri.path);
		if (!info)
			return info.status();
		r->dax_ = *info;
		if (info->systemRam)
			return makeError(EP_E_PREFLIGHT, uri.path + " is in system-ram mode, not devdax");
		size = info->size / format::kAlignUnit * format::kAlignUnit;
		r->fd_ = ::open(uri.path.c_str(), flags);
	} else if (uri.kind == RegionKind::Emul) {
		std::string at = hugepages::locateEmul(uri.name);
		if (at.empty())
			return makeError(-ENOENT, "emulated pool '" + uri.name + "' does not exist; create it with "
									 "'engrampool create " + uri.text + " --size SIZE'");
		r->uri_.path = at;
		r->fd_ = ::open(at.c_str(), flags);
	} else {
		r->fd_ = ::open(uri.path.c_str(), flags);
	}
	if (r->fd_ < 0)
		return errnoError(errno, "open " + r->uri_.path);
	if (uri.kind == RegionKind::Dax) {
		r->pageSize_ = r->dax_.align ? r->dax_.align : 4096;
	} else {
		r->pageSize_ = hugepages::pageSizeOfFd(r->fd_);
		struct stat st;
		if (fstat(r->fd_, &st) != 0)
			return errnoError(errno, "stat " + r->uri_.path);
		if (!S_ISREG(st.st_mode))
			return makeError(-EINVAL, uri.path + " is not a regular file (use dax: for device DAX)");
		size = (uint64_t)st.st_size;
		// Map the size the superblock records: bytes appended to a pool file (or a
		// size that is not a page multiple) must not make the pool unopenable.
		format::Superblock sb;
		if (pread(r->fd_, &sb, sizeof(sb), 0) == (ssize_t)sizeof(sb) &&
		    std::memcmp(sb.magic, format::kMagic, sizeof(format::kMagic)) == 0 && sb.crc == format::superblockCrc(sb) &&
		    sb.poolSize >= format::kMinPoolSize && sb.poolSize <= size)
			size = sb.poolSize;
		else
			size &= ~(uint64_t)4095;
		// hugetlbfs maps whole huge pages only.
		if (uint64_t hp = r->pageSize_; hp > 4096) {
			uint64_t whole = (size + hp - 1) / hp * hp;
			size = whole <= (uint64_t)st.st_size ? whole : size / hp * hp;
		}
	}
	if (size < format::kMinPoolSize)
		return makeError(EP_E_NOT_POOL, uri.path + " is too small to hold a pool (" + formatBytes(size) + ")");
	auto m = backend::mapFd(r->fd_, size, writable);
	if (!m)
		return std::move(m.status()).context(uri.path + ": ");
	r->map_ = *m;
	if (uri.noncoherent && !writable) {
		// Replace the metadata unit with private memory holding a copy: from now on
		// this process sees the writer's metadata updates only where it invalidates.
		void *p = mmap(r->map_.addr, format::kDataOffset, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED)
			return errnoError(errno, "non-coherence checker: private metadata mapping");
		r->snapshotBytes_ = format::kDataOffset;
		if (pread(r->fd_, r->map_.addr, format::kDataOffset, 0) != (ssize_t)format::kDataOffset)
			return errnoError(errno ? errno : EIO, "non-coherence checker: read metadata");
		mprotect(r->map_.addr, format::kDataOffset, PROT_READ);
	}
	return r;
}

Status Region::destroy(const RegionUri &uri)
{
	if (uri.kind == RegionKind::Emul) {
		// Wherever it lives (a hugetlbfs file or the /dev/shm object), and every copy.
		bool removed = false;
		int err = ENOENT;
		for (auto &p : hugepages::emulCandidates(uri.name)) {
			if (unlink(p.c_str()) == 0)
				removed = true;
			else if (errno != ENOENT)
				err = errno;
		}
		if (!removed)
			return errnoError(err, "remove emulated pool '" + uri.name + "'");
		return Status::ok();
	}
	if (uri.kind == RegionKind::File) {
		if (unlink(uri.path.c_str()) != 0)
			return errnoError(errno, "remove " + uri.path);
		return Status::ok();
	}
	return makeError(-EINVAL, "a dax: device is not removed; re-create the pool on it instead");
}

void backend::persistMapped(const backend::Mapping &m, const void *p, size_t len)
{
	// Flush CPU caches first: another host reads the bytes from memory, not from
	// our cache. On page-granular mappings the mapper then syncs the pages.
	if (!m.byteGranular) {
		flushLines(p, len);
		storeFence();
	}
	backend::persist(m, p, len);
}

void Region::persist(const void *p, size_t len) const
{
	backend::persistMapped(map_, p, len);
}

void Region::invalidate(const void *p, size_t len) const
{
	invalidateLines(p, len);
	if (!snapshotBytes_)
		return;
	// Checker mode: an invalidate is what refreshes the private metadata snapshot.
	uintptr_t base = reinterpret_cast<uintptr_t>(map_.addr);
	uintptr_t a = reinterpret_cast<uintptr_t>(p), e = a + len;
	if (e <= base || a >= base + snapshotBytes_)
		return;
	uintptr_t page = 4096;
	a = std::max(a, base) & ~(page - 1);
	e = std::min<uintptr_t>((e + page - 1) & ~(page - 1), base + snapshotBytes_);
	mprotect(reinterpret_cast<void *>(a), e - a, PROT_READ | PROT_WRITE);
	ssize_t n = pread(fd_, reinterpret_cast<void *>(a), e - a, (off_t)(a - base));
	(void)n;
	mprotect(reinterpret_cast<void *>(a), e - a, PROT_READ);
}

int Region::residentNode(uint64_t offset) const
{
	if (offset >= map_.size)
		return -1;
	// The page must be mapped in this process before the kernel reports its node.
	(void)*reinterpret_cast<volatile const uint8_t *>(map_.addr + offset);
	return numa::nodeOfAddress(map_.addr + offset);
}

} // namespace engrampool
