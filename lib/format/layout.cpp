// SPDX-License-Identifier: Apache-2.0
// layout.cpp - encoding of the self-checked words, CRCs and structural validation.
#include "format/layout.hpp"

#include <cstring>

#include "util/checksum.hpp"

namespace engrampool::format {

namespace {

constexpr uint64_t kGenMask = kMaxGeneration;

uint32_t mix(uint64_t v, uint32_t salt)
{
	return crc32c(&v, sizeof(v), salt);
}

} // namespace

uint64_t encodeGenWord(uint64_t gen)
{
	return (gen & kGenMask) | ((uint64_t)(mix(gen, 0x47454e31) & 0xffffff) << 40);
}

std::optional<uint64_t> decodeGenWord(uint64_t word)
{
	uint64_t gen = word & kGenMask;
	if (word != encodeGenWord(gen) || gen == 0)
		return std::nullopt;
	return gen;
}

uint64_t encodeStateWord(EntryKind kind, uint64_t gen)
{
	uint64_t k = (uint64_t)kind;
	uint64_t check = mix((gen & kGenMask) | (k << 56), 0x53544154) & 0xffff;
	return (gen & kGenMask) | (check << 40) | (k << 56);
}

bool decodeStateWord(uint64_t word, EntryKind &kind, uint64_t &gen)
{
	if (word == 0) {
		kind = EntryKind::Free;
		gen = 0;
		return true;
	}
	uint64_t k = word >> 56;
	gen = word & kGenMask;
	if (k != (uint64_t)EntryKind::Model && k != (uint64_t)EntryKind::Table)
		return false;
	kind = (EntryKind)k;
	return word == encodeStateWord(kind, gen) && gen != 0;
}

uint64_t encodeRemovedWord(uint64_t gen)
{
	return (gen & kGenMask) | ((uint64_t)(mix(gen, 0x52454d56) & 0xffffff) << 40);
}

std::optional<uint64_t> decodeRemovedWord(uint64_t word)
{
	if (word == 0)
		return 0;
	uint64_t gen = word & kGenMask;
	if (gen == 0 || word != encodeRemovedWord(gen))
		return std::nullopt;
	return gen;
}

uint32_t superblockCrc(const Superblock &sb)
{
	return crc32c(&sb, offsetof(Superblock, crc));
}

uint32_t masterCrc(const MasterRecord &m)
{
	return crc32c(&m, offsetof(MasterRecord, crc));
}

uint32_t entryCrc(const CatalogEntry &e)
{
	const auto *p = reinterpret_cast<const uint8_t *>(&e);
	return crc32c(p + 16, offsetof(CatalogEntry, crc) - 16);
}

uint32_t hostSlotCrc(const HostSlot &h)
{
	const auto *p = reinterpret_cast<const uint8_t *>(&h);
	return crc32c(p + 8, offsetof(HostSlot, crc) - 8);
}

Superblock makeSuperblock(uint64_t size, const Uuid &uuid, uint32_t leaseMs)
{
	Superblock sb;
	std::memset(&sb, 0, sizeof(sb));
	std::memcpy(sb.magic, kMagic, sizeof(kMagic));
	sb.major = kMajor;
	sb.minor = kMinor;
	sb.headerBytes = sizeof(Superblock);
	std::memcpy(sb.poolUuid, uuid.data(), 16);
	sb.poolSize = size / kAlignUnit * kAlignUnit;
	sb.alignUnit = kAlignUnit;
	sb.catalogOffset = kCatalogOffset;
	sb.catalogSlots = kCatalogSlots;
	sb.entrySize = kEntrySize;
	sb.hostsOffset = kHostsOffset;
	sb.hostSlots = kHostSlots;
	sb.hostSlotSize = kHostSlotSize;
	sb.dataOffset = kDataOffset;
	sb.dataBytes = sb.poolSize - kDataOffset;
	sb.genWordOffset = kGenWordOffset;
	sb.masterOffset = kMasterOffset;
	sb.leaseMs = leaseMs;
	sb.crc = superblockCrc(sb);
	return sb;
}

Status validateSuperblock(const Superblock &sb, uint64_t regionSize)
{
	if (std::memcmp(sb.magic, kMagic, sizeof(kMagic)) != 0)
		return makeError(EP_E_NOT_POOL, "no engrampool superblock (bad magic); format it with 'engrampool create'");
	if (sb.crc != superblockCrc(sb))
		return makeError(EP_E_CORRUPT, "superblock CRC mismatch: the superblock is corrupted");
	if (sb.major != kMajor)
		return errorf(EP_E_VERSION, "pool format %u.%u is not supported (this build reads %u.x)", sb.major, sb.minor,
			      kMajor);
	// Geometry: this build knows exactly one layout for v1; anything else is corruption.
	if (sb.headerBytes != sizeof(Superblock) || sb.alignUnit != kAlignUnit || sb.catalogOffset != kCatalogOffset ||
	    sb.catalogSlots != kCatalogSlots || sb.entrySize != kEntrySize || sb.hostsOffset != kHostsOffset ||
	    sb.hostSlots != kHostSlots || sb.hostSlotSize != kHostSlotSize || sb.dataOffset != kDataOffset ||
	    sb.genWordOffset != kGenWordOffset || sb.masterOffset != kMasterOffset)
		return makeError(EP_E_CORRUPT, "superblock geometry does not match format v1");
	if (sb.poolSize < kMinPoolSize || sb.poolSize % kAlignUnit != 0 || sb.dataBytes != sb.poolSize - sb.dataOffset)
		return errorf(EP_E_CORRUPT, "superblock sizes are inconsistent (pool %llu, data %llu)",
			      (unsigned long long)sb.poolSize, (unsigned long long)sb.dataBytes);
	if (sb.poolSize > regionSize)
		return errorf(EP_E_CORRUPT, "pool size %llu exceeds the region (%llu bytes): truncated backing store?",
			      (unsigned long long)sb.poolSize, (unsigned long long)regionSize);
	return Status::ok();
}

// Planar geometry from an entry (untrusted): the values plane [rows][rowStride] at
// dataOffset and the scales plane [rows][rowBytes - rowStride] at scalesOffset, both
// whole inside the extent (already checked to lie in the data area), not overlapping,
// the scales plane at the first 2 MiB boundary after the values plane.
static Status validatePlanarGeometry(const TableBody &t, const std::string &name)
{
	const uint64_t vb = t.rowStride, sbytes = t.rowBytes > t.rowStride ? t.rowBytes - t.rowStride : 0;
	const uint64_t extentEnd = t.dataOffset + t.extentBytes;
	auto bad = [&](const char *why) {
		return errorf(EP_E_CORRUPT,
			      "table '%s': planar geometry is inconsistent: %s (rows %llu, values %llu B, scales %llu B "
			      "per row, scales plane at %llu, extent [%llu, %llu))",
			      name.c_str(), why, (unsigned long long)t.rows, (unsigned long long)vb,
			      (unsigned long long)sbytes, (unsigned long long)t.scalesOffset,
			      (unsigned long long)t.dataOffset, (unsigned long long)extentEnd);
	};
	if (t.scaleDtype == 0 || t.scalesPerRow == 0)
		return bad("a planar table needs a scale block");
	if (t.rows == 0 || vb == 0 || sbytes == 0 || t.rowBytes != vb + sbytes)
		return bad("row sizes do not add up");
	// rows * vb cannot overflow once rows <= extent / vb.
	if (t.rows > t.extentBytes / vb || t.rows > t.extentBytes / sbytes)
		return bad("a plane is larger than the extent");
	if (t.dataBytes != t.rows * (vb + sbytes))
		return bad("data bytes are not rows x (values + scales)");
	if (t.scalesOffset != planarScalesOffset(t.dataOffset, t.rows, vb))
		return bad("the scales plane is not at the first 2 MiB boundary after the values plane");
	if (t.scalesOffset > extentEnd || t.rows * sbytes > extentEnd - t.scalesOffset)
		return bad("the scales plane ends outside the extent");
	return Status::ok();
}

Status validateTableBody(const TableBody &t, const Superblock &sb)
{
	uint64_t dataEnd = sb.dataOffset + sb.dataBytes;
	std::string name = fixedString(t.name, sizeof(t.name));
	if (t.dataOffset < sb.dataOffset || t.dataOffset % kAlignUnit != 0 || t.extentBytes == 0 ||
	    t.extentBytes % kAlignUnit != 0 || t.extentBytes > dataEnd - t.dataOffset || t.dataOffset >= dataEnd)
		return errorf(EP_E_CORRUPT, "table '%s': extent [%llu, +%llu) is outside the data area [%llu, %llu)",
			      name.c_str(), (unsigned long long)t.dataOffset, (unsigned long long)t.extentBytes,
			      (unsigned long long)sb.dataOffset, (unsigned long long)dataEnd);
	if (t.layout == (uint32_t)TableLayout::Planar)
		return validatePlanarGeometry(t, name);
	if (t.layout != (uint32_t)TableLayout::Packed)
		return errorf(EP_E_CORRUPT, "table '%s': unknown layout %u (0 packed, 1 planar)", name.c_str(), t.layout);
	if (t.rowStride == 0 || t.rowBytes == 0 || t.rowBytes > t.rowStride || t.rows == 0 ||
	    t.rows > t.extentBytes / t.rowStride || t.dataBytes != t.rows * (uint64_t)t.rowStride || t.scalesOffset != 0)
		return errorf(EP_E_CORRUPT, "table '%s': row geometry is inconsistent (rows %llu, stride %u, bytes %llu)",
			      name.c_str(), (unsigned long long)t.rows, t.rowStride, (unsigned long long)t.dataBytes);
	return Status::ok();
}

Status validateModelMap(const ModelBody &m, const Superblock &sb)
{
	if (m.vocabMapOffset == 0 && m.vocabMapExtentBytes == 0 && m.vocabMapEntries == 0)
		return Status::ok();
	const uint64_t dataEnd = sb.dataOffset + sb.dataBytes;
	std::string name = fixedString(m.name, sizeof(m.name));
	if (m.vocabMapOffset < sb.dataOffset || m.vocabMapOffset >= dataEnd || m.vocabMapOffset % kAlignUnit != 0 ||
	    m.vocabMapExtentBytes == 0 || m.vocabMapExtentBytes % kAlignUnit != 0 ||
	    m.vocabMapExtentBytes > dataEnd - m.vocabMapOffset)
		return errorf(EP_E_CORRUPT, "model '%s': token map extent [%llu, +%llu) is outside the data area [%llu, %llu)",
			      name.c_str(), (unsigned long long)m.vocabMapOffset, (unsigned long long)m.vocabMapExtentBytes,
			      (unsigned long long)sb.dataOffset, (unsigned long long)dataEnd);
	if (m.vocabMapEntries == 0 || m.vocabMapEntries != m.tokenizerVocabSize ||
	    m.vocabMapEntries > m.vocabMapExtentBytes / sizeof(int64_t))
		return errorf(EP_E_CORRUPT,
			      "model '%s': token map of %llu entries does not fit the model (tokenizer vocabulary %llu) "
			      "or its extent (%llu bytes)",
			      name.c_str(), (unsigned long long)m.vocabMapEntries, (unsigned long long)m.tokenizerVocabSize,
			      (unsigned long long)m.vocabMapExtentBytes);
	return Status::ok();
}

std::string fixedString(const char *p, size_t cap)
{
	size_t n = strnlen(p, cap);
	return std::string(p, n);
}

bool setFixedString(char *dst, size_t cap, const std::string &s)
{
	if (s.size() >= cap)
		return false;
	std::memset(dst, 0, cap);
	std::memcpy(dst, s.data(), s.size());
	return true;
}

} // namespace engrampool::format
