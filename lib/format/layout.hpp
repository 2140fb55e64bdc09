// SPDX-License-Identifier: Apache-2.0
// layout.hpp - pool format v1 on media: the ONLY place that knows offsets and structs.
//
//   0       Superblock (static header, CRC32C)             512 B
//   4096    generation word (commit point, self-checked)   own cache line
//   4160    master records A and B (CRC32C each)           2 x 64 B
//   64 KiB  catalog: kCatalogSlots entries of 512 B, each with its own CRC
//   576 KiB host table: kHostSlots slots, one 4 KiB page each, written only by its host
//   2 MiB   data area: tables and stored token maps, each at a 2 MiB-aligned extent
//
// Words that change after creation are single aligned 8-byte stores carrying their
// own check bits, so a torn or random write is detected, never trusted.
//
// Minor versions (same major: every build of major 1 opens every 1.x pool; a build
// never checks the minor, so what a minor adds must be safe for older builds to meet):
//   1.0  packed tables; models record only the XXH3 of their token map.
//   1.1  planar tables (TableBody::layout 1 and scalesOffset, ep_layout); an older
//        build refuses such a table as "row geometry is inconsistent" (quarantined,
//        never read). The token map stored in the pool: a model whose vocabulary is
//        compressed has its map (int64 little-endian, tokenizerVocabSize entries, XXH3
//        = vocabMapHash) in its own 2 MiB-aligned extent of the data area, named by
//        ModelBody::vocabMapOffset / vocabMapExtentBytes / vocabMapEntries (bytes that
//        were zero before, so a 1.0 model record reads as "no map stored"). An older
//        build ignores the stored map, and does not know its extent is held: a 1.0
//        build importing into such a pool may reuse that extent (a 1.1 build then finds
//        the overlap or the map's checksum wrong and quarantines the model).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "util/host_identity.hpp"
#include "util/status.hpp"

namespace engrampool::format {

inline constexpr char kMagic[8] = {'E', 'N', 'G', 'R', 'P', 'O', 'O', 'L'};
inline constexpr uint16_t kMajor = 1;
inline constexpr uint16_t kMinor = 1;
inline constexpr uint64_t kAlignUnit = 2ull << 20;
inline constexpr uint64_t kGenWordOffset = 4096;
inline constexpr uint64_t kMasterOffset = 4096 + 64;
inline constexpr uint64_t kCatalogOffset = 64 << 10;
inline constexpr uint32_t kCatalogSlots = 1024;
inline constexpr uint32_t kEntrySize = 512;
inline constexpr uint64_t kHostsOffset = kCatalogOffset + (uint64_t)kCatalogSlots * kEntrySize;
inline constexpr uint32_t kHostSlots = 256;
inline constexpr uint32_t kHostSlotSize = 4096; // one page per host: a host can map only its own slot writable
inline constexpr uint64_t kDataOffset = kAlignUnit;
inline constexpr uint64_t kMinPoolSize = 2 * kAlignUnit;
inline constexpr uint64_t kMaxGeneration = (1ull << 40) - 1;
static_assert(kHostsOffset + (uint64_t)kHostSlots * kHostSlotSize <= kDataOffset);

struct Superblock {
	char magic[8];
	uint16_t major;
	uint16_t minor;
	uint32_t headerBytes;     // sizeof(Superblock)
	uint8_t poolUuid[16];
	uint64_t poolSize;
	uint64_t alignUnit;
	uint64_t catalogOffset;
	uint32_t catalogSlots;
	uint32_t entrySize;
	uint64_t hostsOffset;
	uint32_t hostSlots;
	uint32_t hostSlotSize;
	uint64_t dataOffset;
	uint64_t dataBytes;
	uint64_t createTimeNs;
	uint64_t genWordOffset;
	uint64_t masterOffset;
	uint32_t flags;
	uint32_t leaseMs;         // host lease period
	uint8_t reserved[380];
	uint32_t crc;             // CRC32C of the bytes before it
};
static_assert(sizeof(Superblock) == 512);
static_assert(offsetof(Superblock, crc) == 508);

struct MasterRecord {
	uint8_t hostUuid[16];
	uint64_t epoch;
	uint64_t takeTimeNs;
	char hostname[24];
	uint32_t reserved;
	uint32_t crc;
};
static_assert(sizeof(MasterRecord) == 64);

enum class EntryKind : uint8_t { Free = 0, Model = 1, Table = 2 };

struct ModelBody {
	char name[48];
	uint64_t fingerprint;
	uint64_t engramVocabSize[8];
	uint32_t maxNgramSize;
	uint32_t nEmbedPerNgram;
	uint32_t nHeadPerNgram;
	uint32_t layerCount;
	uint32_t layerIds[16];
	int64_t padId;
	uint64_t seed;
	uint64_t tokenizerVocabSize;
	uint64_t compressedVocabSize;
	uint64_t vocabMapHash;
	uint32_t clipOutOfVocab;
	uint32_t dtype;
	uint32_t valuesPerRow;
	uint32_t scaleDtype;
	uint32_t scaleBlock;
	uint32_t rowAlign;
	// Format 1.1: the stored token map (all three 0: none stored: an identity vocabulary,
	// or a model published by a 1.0 build). The extent is held while the entry is.
	uint64_t vocabMapOffset;      // absolute offset in the pool, kAlignUnit aligned
	uint64_t vocabMapExtentBytes; // bytes reserved (kAlignUnit multiple)
	uint64_t vocabMapEntries;     // int64 entries, == tokenizerVocabSize
};

struct TableBody {
	char name[64];
	char model[48];
	uint64_t modelFingerprint;
	uint32_t layerId;
	uint32_t dtype;
	uint32_t valuesPerRow;
	uint32_t scaleDtype;
	uint32_t scalesPerRow;
	uint32_t rowBytes;        // values + scales of one row
	uint32_t rowStride;       // packed: bytes between rows; planar: the values plane's pitch
	uint32_t layout;          // TableLayout (was reserved0: 0 = packed, so older pools stay valid)
	uint64_t rows;
	uint64_t dataOffset;      // absolute offset in the pool, kAlignUnit aligned (planar: values plane)
	uint64_t extentBytes;     // bytes reserved (kAlignUnit multiple)
	uint64_t dataBytes;       // rows * rowStride; planar: rows * rowBytes (both planes)
	uint64_t dataXxh3;        // planar: XXH3-64 of the rows packed (values then scales, no padding)
	uint64_t importTimeNs;
	uint64_t scalesOffset;    // planar: absolute offset of the scales plane; packed: 0
};

// How a table's rows sit in its extent (ep_layout).
//   Packed: row r at dataOffset + r * rowStride, values then scales.
//   Planar: values [rows][valueBytes] at dataOffset, pitch valueBytes exactly; scales
//           [rows][scaleBytes] at scalesOffset = the first kAlignUnit boundary after
//           the values plane, pitch scaleBytes exactly. Only formats with a scale block.
enum class TableLayout : uint32_t { Packed = 0, Planar = 1 };
inline uint64_t planarScalesOffset(uint64_t dataOffset, uint64_t rows, uint64_t valueBytes)
{
	return dataOffset + (rows * valueBytes + kAlignUnit - 1) / kAlignUnit * kAlignUnit;
}
// Bytes of the extent a planar table needs (a kAlignUnit multiple).
inline uint64_t planarExtentBytes(uint64_t rows, uint64_t valueBytes, uint64_t scaleBytes)
{
	uint64_t v = (rows * valueBytes + kAlignUnit - 1) / kAlignUnit * kAlignUnit;
	return v + (rows * scaleBytes + kAlignUnit - 1) / kAlignUnit * kAlignUnit;
}

// One catalog slot. stateWord and removedWord sit outside the CRC: they are the
// words that change in place, each with its own check bits.
struct CatalogEntry {
	uint64_t stateWord;       // 0 = free, else kind | createdGen | check
	uint64_t removedWord;     // 0 = live, else removedGen | check
	uint32_t kind;            // copy of the kind, under the CRC
	uint32_t reserved0;
	uint64_t createdGen;      // copy of the generation, under the CRC
	union {
		ModelBody model;
		TableBody table;
		uint8_t raw[472];
	};
	uint32_t reserved1;
	uint32_t crc;             // CRC32C of bytes [16, 508)
};
static_assert(sizeof(CatalogEntry) == kEntrySize);
static_assert(sizeof(TableBody) <= sizeof(CatalogEntry::raw), "TableBody grows only into the entry's free bytes");
static_assert(sizeof(ModelBody) <= sizeof(CatalogEntry::raw), "ModelBody grows only into the entry's free bytes");
static_assert(offsetof(CatalogEntry, crc) == 508);

// Host slots are written only by the host that owns them (no cross-host atomics).
// seq is odd while the owner rewrites the slot.
struct HostSlot {
	uint64_t seq;
	uint8_t hostUuid[16];
	char hostname[64];
	uint32_t pid;
	uint32_t state;           // 0 free, 1 attached, 2 detached cleanly
	uint64_t attachTimeNs;
	uint64_t heartbeatNs;     // CLOCK_REALTIME of the last renewal
	uint64_t observedGen;     // newest committed generation the host has seen
	uint64_t leaseMs;
	uint8_t reserved[124];
	uint32_t crc;             // CRC32C of bytes [8, 252)
};
static_assert(sizeof(HostSlot) <= kHostSlotSize);
static_assert(offsetof(HostSlot, crc) == 252);

// --- limits derived from the structs ----------------------------------------------
// Model files, the writer and the C ABI check against these; nothing truncates.
inline constexpr size_t kModelNameMax = sizeof(ModelBody::name) - 1;     // bytes, without NUL
inline constexpr size_t kTableNameMax = sizeof(TableBody::name) - 1;
inline constexpr uint32_t kMaxLayers = sizeof(ModelBody::layerIds) / sizeof(ModelBody::layerIds[0]);
inline constexpr uint32_t kMaxNgramOrders = sizeof(ModelBody::engramVocabSize) / sizeof(ModelBody::engramVocabSize[0]);
inline constexpr uint32_t kMaxNgramSize = kMaxNgramOrders;               // orders 2..N: N-1 vocab sizes
static_assert(kMaxNgramSize - 1 <= kMaxNgramOrders);
static_assert(sizeof(TableBody::model) == sizeof(ModelBody::name), "a table names its model in full");
// Leases read from a host slot are untrusted: longer ones count as this.
inline constexpr uint64_t kMaxLeaseMs = 24ull * 3600 * 1000;

// --- self-checked words ---------------------------------------------------------
uint64_t encodeGenWord(uint64_t gen);
std::optional<uint64_t> decodeGenWord(uint64_t word);
uint64_t encodeStateWord(EntryKind kind, uint64_t gen);
bool decodeStateWord(uint64_t word, EntryKind &kind, uint64_t &gen);
uint64_t encodeRemovedWord(uint64_t gen);
std::optional<uint64_t> decodeRemovedWord(uint64_t word); // 0 for a live entry

// --- CRCs --------------------------------------------------------------------------
uint32_t superblockCrc(const Superblock &sb);
uint32_t masterCrc(const MasterRecord &m);
uint32_t entryCrc(const CatalogEntry &e);
uint32_t hostSlotCrc(const HostSlot &h);

// Build a fresh superblock for a pool of `size` bytes (size rounded down to kAlignUnit).
Superblock makeSuperblock(uint64_t size, const Uuid &uuid, uint32_t leaseMs);
// Validate magic, version, CRC and that every area fits in regionSize without overlap.
Status validateSuperblock(const Superblock &sb, uint64_t regionSize);
// Validate a committed table body against the data area (untrusted offsets).
Status validateTableBody(const TableBody &t, const Superblock &sb);
// Validate the stored token map a model body names (untrusted): none (all zero), or an
// extent inside the data area, aligned, that holds vocabMapEntries == tokenizerVocabSize
// int64 entries. The map's contents are checked where it is read (Pool::tokenMap).
Status validateModelMap(const ModelBody &m, const Superblock &sb);
inline bool hasStoredMap(const ModelBody &m) { return m.vocabMapOffset != 0; }
// Bounded copy of a fixed char field into a std::string (no NUL needed).
std::string fixedString(const char *p, size_t cap);
bool setFixedString(char *dst, size_t cap, const std::string &s);

} // namespace engrampool::format
