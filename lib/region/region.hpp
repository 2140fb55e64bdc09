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
	// Remove the backing object of an emul: pool (shm) or a file: pool. Not for dax:.
	static Status destroy(const RegionUri &uri);

	uint8_t *base() const { return map_.addr; }
	uint64_t size() const { return map_.size; }
	bool writable() const { return map_.writable; }
	int fd() const { return fd_; }
	const RegionUri &uri() const { return uri_; }
	const backend::Mapping &mapping() const { return map_; }
	const backend::DaxInfo &dax() const { return dax_; }

	// Writer: make [p, p+len) visible and durable. Reader: drop cached copies first.
	void persist(const void *p, size_t len) const;
	void invalidate(const void *p, size_t len) const;

	// Shared-memory NUMA node of the first data page (-1 unknown).
	int residentNode(uint64_t offset) const;
	// True when metadata is read through a private snapshot (non-coherence checker).
	bool snapshotMetadata() const { return snapshotBytes_ != 0; }

private:
	Region() = default;
	RegionUri uri_;
	int fd_ = -1;
	backend::Mapping map_;
	backend::DaxInfo dax_;
	uint64_t snapshotBytes_ = 0;   // non-coherence checker: private metadata bytes
};

} // namespace engrampool
