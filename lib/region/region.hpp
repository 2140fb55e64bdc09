// SPDX-License-Identifier: Apache-2.0
// region.hpp - the bytes of a pool as mapped by this process, whatever backs them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "region/backends.hpp"
#include "region/uri.hpp"
#include "util/status.hpp"

namespace engrampool {

struct CreateOptions {
	uint64_t size = 0;          // 0 = whole device (dax: only)
	uint32_t mode = 0660;       // permissions of a new backing file
	bool force = false;         // format even over an existing pool or a non-empty file
	// emul: page size; Auto defers to the URI's ?pages= (itself Auto by default). The
	// environment EP_HUGEPAGES=0 turns Auto into Small (4 KiB, no warning).
	PagePref pages = PagePref::Auto;
};

class Region {
public:
	~Region();
	Region(const Region &) = delete;
	Region &operator=(const Region &) = delete;

	// Create the backing store (file, shm object; dax: checks the device) and map it
	// writable. Preflight refuses stores that cannot hold `size`.
	static Result<std::unique_ptr<Region>> create(const RegionUri &uri, const CreateOptions &opts);
	static Result<std::unique_ptr<Region>> open(const RegionUri &uri, bool writable);
	// Remove the backing object of an emul: pool (wherever it lives) or a file: pool. Not for dax:.
	static Status destroy(const RegionUri &uri);

	uint8_t *base() const { return map_.addr; }
	uint64_t size() const { return map_.size; }
	bool writable() const { return map_.writable; }
	int fd() const { return fd_; }
	const RegionUri &uri() const { return uri_; }
	const backend::Mapping &mapping() const { return map_; }
	const backend::DaxInfo &dax() const { return dax_; }
	// Page size backing the mapping: the hugetlbfs page size, the devdax alignment, else 4 KiB.
	uint64_t pageSize() const { return pageSize_; }
	// uri().path is where the pool lives (emul: a hugetlbfs file or /dev/shm/engrampool.NAME).

	// Writer: make [p, p+len) visible and durable. Reader: drop cached copies first.
	void persist(const void *p, size_t len) const;
	void invalidate(const void *p, size_t len) const;

	// Shared-memory NUMA node of the first data page (-1 unknown).
	int residentNode(uint64_t offset) const;
	// True when metadata is read through a private snapshot (non-coherence checker).
	bool snapshotMetadata() const { return snapshotBytes_ != 0; }

private:
	Region() = default;
	static Result<std::unique_ptr<Region>> createHugeEmul(const RegionUri &uri, const CreateOptions &opts,
							      uint64_t size, std::string &why);
	RegionUri uri_;
	int fd_ = -1;
	backend::Mapping map_;
	backend::DaxInfo dax_;
	uint64_t snapshotBytes_ = 0;   // non-coherence checker: private metadata bytes
	uint64_t pageSize_ = 4096;
};

} // namespace engrampool
