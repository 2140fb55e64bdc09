// SPDX-License-Identifier: Apache-2.0
// pool.hpp - a formatted region: attach, consistent catalog snapshots, and the
// single writer's publish protocol (ARCHITECTURE.md "Publication and coherence").
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <engrampool/engrampool.h>

#include "format/layout.hpp"
#include "format/records.hpp"
#include "model/model_config.hpp"
#include "region/region.hpp"
#include "util/status.hpp"

namespace engrampool {

namespace io {
class RowSource;
}

struct TableInfo {
	std::string name;
	std::string model;
	uint64_t modelFingerprint = 0;
	uint32_t layerId = 0;
	RowFormat format;
	uint32_t rowBytes = 0;
	uint32_t rowStride = 0;
	uint64_t rows = 0;
	uint64_t dataOffset = 0;
	uint64_t extentBytes = 0;
	uint64_t dataBytes = 0;
	uint64_t dataXxh3 = 0;
	uint64_t generation = 0;
	uint64_t importTimeNs = 0;
	uint32_t slot = 0;
	format::TableLayout layout = format::TableLayout::Packed;
	uint64_t scalesOffset = 0;     // planar: the scales plane (absolute pool offset)
	bool planar() const { return layout == format::TableLayout::Planar; }
	// Bytes per row of the values part and of the scale block.
	uint32_t valueBytes() const { return format.valueBytes(); }
	uint32_t scaleBytes() const { return format.scaleBytes(); }
};

const char *layoutName(format::TableLayout l);       // "packed" / "planar"
Result<format::TableLayout> parseLayout(const std::string &s);

// Bytes one row takes in output format `outFormat` (enum ep_row_format_out) of table
// format f; 0 when the format does not apply (unknown, or scales of an unscaled format).
uint64_t outputRowBytes(const RowFormat &f, int outFormat);

// Plane pointers of a table: values and scales of row 0 and their pitches (a packed
// table's planes are strided views of its rows).
struct TablePlanes {
	const uint8_t *values = nullptr;
	uint64_t valuesPitch = 0;
	const uint8_t *scales = nullptr; // nullptr without a scale block
	uint64_t scalesPitch = 0;
};

struct ModelRecord {
	std::string name;
	uint64_t fingerprint = 0;
	uint64_t generation = 0;
	uint32_t slot = 0;
	format::ModelBody body{};
	// The pool holds the model's token map (format 1.1; validated in the snapshot).
	bool tokenMapStored() const { return format::hasStoredMap(body); }
	uint64_t tokenMapEntries() const { return body.vocabMapEntries; }
	uint64_t tokenMapExtentBytes() const { return body.vocabMapExtentBytes; }
};

// A catalog slot (or a table) that failed a check. It is quarantined: left out of
// the snapshot, never reused, reported by verify and fixed by 'verify --repair' or
// 'rm --slot N'. Healthy tables keep serving.
struct CatalogProblem {
	uint32_t slot = 0;
	std::string kind;            // "table", "model" or "slot" (kind unreadable)
	std::string name;            // as read from the entry; "" when its body is damaged and the
	                             // bytes do not even look like a name
	bool nameTrusted = false;    // the entry's CRC holds: the name is the table's
	std::string problem;
};

// One consistent view of the catalog at a committed generation.
struct Snapshot {
	uint64_t generation = 0;
	std::vector<TableInfo> tables;
	std::vector<ModelRecord> models;
	uint64_t usedBytes = 0;        // extents held (tables and token maps), incl. removed ones not yet reclaimed
	uint32_t pendingReclaim = 0;   // removed tables whose space is not reusable yet
	uint32_t freeSlots = 0;
	std::vector<CatalogProblem> problems; // quarantined slots and tables
	const TableInfo *findTable(const std::string &name) const;
	const ModelRecord *findModel(const std::string &name) const;
};

struct MasterInfo {
	Uuid host{};
	uint64_t epoch = 0;
	uint64_t takeTimeNs = 0;
	std::string hostname;
};

struct HostInfo {
	uint32_t index = 0;
	Uuid host{};
	std::string hostname;
	uint32_t pid = 0;
	uint32_t state = 0;            // 1 attached, 2 detached
	uint64_t attachTimeNs = 0;
	uint64_t heartbeatNs = 0;
	uint64_t observedGen = 0;
	uint64_t leaseMs = 0;
	bool live = false;             // attached and heartbeat within the lease
	bool corrupt = false;
	bool futureHeartbeat = false;  // heartbeat more than a lease ahead of this clock: not trusted
	bool expired() const { return !corrupt && state == 1 && !live; }
};

struct VerifyReport {
	std::string object = "table";  // "table", "model", "slot", "master", "host"
	std::string table;             // table name, or what else failed ("catalog slot 10", "master record B")
	bool ok = false;
	uint64_t expected = 0;
	uint64_t actual = 0;
	std::string problem;
	std::string layout;            // tables: "packed" or "planar"
	bool tokenMap = false;         // object "model": the check of its stored token map
};

struct ImportRequest {
	std::string tableName;         // default: "<model>/layer<L>"
	const ModelConfig *model = nullptr;
	uint32_t layerId = 0;
	uint64_t rows = 0;             // sum of the layer's primes
	bool replace = false;
	format::TableLayout layout = format::TableLayout::Packed; // planar: scaled formats only
	std::function<void(uint64_t rowsDone)> progress; // called in row order, from the calling thread
	uint32_t threads = 0;          // copy threads; 0: one per CPU, at most 4
};

struct ImportResult {
	TableInfo table;
	uint64_t generation = 0;
	uint64_t replacedSlot = UINT64_MAX;
};

struct OpenOptions {
	bool write = false;
	uint32_t lockWaitMs = 10000;   // writer: how long to wait for the writer lock
};

class Pool {
public:
	~Pool();
	Pool(const Pool &) = delete;
	Pool &operator=(const Pool &) = delete;

	// Format a region. The creating host becomes the master at epoch 1.
	static Status create(const std::string &uri, const CreateOptions &opts, uint32_t leaseMs = 10000);
	static Result<std::unique_ptr<Pool>> open(const std::string &uri, const OpenOptions &opts);

	const Region &region() const { return *region_; }
	const format::Superblock &superblock() const { return sb_; }
	bool isWriter() const { return writer_; }

	// Readers: a validated catalog view; retries while a writer publishes.
	Result<Snapshot> snapshot() const;
	Result<uint64_t> committedGeneration() const;
	Result<MasterInfo> master() const;
	std::vector<HostInfo> hosts() const;
	// Pointer to row 0 of a table from a snapshot (bounds already validated).
	// (Planar tables: the values plane.)
	const uint8_t *tableData(const TableInfo &t) const { return region_->base() + t.dataOffset; }
	TablePlanes tablePlanes(const TableInfo &t) const;
	// Rows [offset[h0], offset[h1]) of the hash heads [h0, h1) of a table's layer, from
	// the pool's record of its model (h0 == h1 == 0: all heads).
	Result<std::pair<uint64_t, uint64_t>> headRows(const Snapshot &s, const TableInfo &t, uint32_t h0,
						       uint32_t h1) const;
	// Packed rows (values then scales, rowBytes each) from either layout.
	Status readRows(const TableInfo &t, const uint64_t *rows, size_t n, void *dst, size_t dstBytes) const;
	// Rows in output format outFormat (enum ep_row_format_out).
	Status readRowsAs(const TableInfo &t, const uint64_t *rows, size_t n, int outFormat, void *dst,
			  size_t dstBytes) const;
	// Recompute data checksums (all tables and stored token maps, or one by name).
	Result<std::vector<VerifyReport>> verify(const std::string &name = "") const;
	// The token map (raw token id -> compressed id) the pool stores for a model, checked
	// against the model record's vocabMapHash and compressed vocabulary. -ENOENT: no such
	// model, or it stores no map (identity vocabulary, or published by a format 1.0
	// build); EP_E_CORRUPT: the model is quarantined, or its stored map is damaged.
	Result<std::vector<int64_t>> tokenMap(const std::string &model) const;

	// Writer only.
	Result<ImportResult> importTable(const ImportRequest &req, io::RowSource &src);
	Status removeTable(const std::string &name);
	// Unpublish whatever catalog slot `slot` holds, even when its entry is corrupted
	// (an unreadable state word is cleared). Journaled like any other publish.
	Status removeSlot(uint32_t slot);
	// Fix what verify found without reformatting: restore state words from intact
	// bodies, unpublish corrupted or inconsistent entries, clear unreadable slots,
	// rewrite a corrupted master record from the valid one, clear corrupt host slots.
	// One publish; returns one line per action.
	Result<std::vector<std::string>> repair();
	// Free space of removed tables no live host can still read; expire dead hosts' slots.
	Result<uint32_t> reclaim();
	// Mastership: make this host the master with epoch+1 (old master known dead).
	static Status takeMaster(const std::string &uri, uint32_t lockWaitMs = 10000);

	// Host slots (each host writes only its own).
	Status writeHostSlot(uint32_t index, const format::HostSlot &slot);

private:
	Pool() = default;
	Status lockWriter(uint32_t waitMs);
	Status checkMaster();
	Status recover();
	Status commit(uint64_t newGen);
	void writerPersist(const void *p, size_t len);
	format::PersistFn writerPersistFn();
	void clearStableCorruptHostSlots();
	// A free extent of `bytes`; `busy` are extents taken by this publish but not in the
	// catalog yet.
	Result<uint64_t> allocate(const Snapshot &s, uint64_t bytes,
				  const std::vector<std::pair<uint64_t, uint64_t>> &busy = {}) const;
	Result<uint32_t> freeSlot(const std::vector<uint32_t> &taken) const;
	format::CatalogEntry *entry(uint32_t i) const;
	format::CatalogEntry entryCopy(uint32_t i) const; // invalidated, then copied out
	format::HostSlot *hostSlot(uint32_t i) const;
	// Read slot i, re-reading while its owner is mid-rewrite (a few ms at most); a slot
	// still being rewritten after that (its writer died mid-write) reads as Corrupt.
	format::HostSlotRead readHostSlotSettled(uint32_t i, format::HostSlot &out) const;
	Status readSnapshotOnce(Snapshot &out, bool &retry) const;
	// Copy a model's stored token map out of the pool and check it (XXH3, id range);
	// *actualHash receives the XXH3 of the bytes read. No retry (see tokenMap).
	Result<std::vector<int64_t>> readStoredMap(const ModelRecord &m, uint64_t *actualHash) const;

	std::unique_ptr<Region> region_;
	format::Superblock sb_{};
	bool writer_ = false;
	uint64_t myEpoch_ = 0;
};

std::string defaultTableName(const std::string &model, uint32_t layerId);
void toCInfo(const TableInfo &t, ep_table_info &out);

} // namespace engrampool
