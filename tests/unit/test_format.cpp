// SPDX-License-Identifier: Apache-2.0
// test_format.cpp - pool format v1: self-checked words, superblock and table-body validation, pinned offsets.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

#include "format/layout.hpp"

using namespace engrampool;
using namespace engrampool::format;

// The on-media layout is a contract between builds and hosts: pin every offset.
static_assert(kGenWordOffset == 4096 && kMasterOffset == 4160);
static_assert(kCatalogOffset == 65536 && kEntrySize == 512 && kCatalogSlots == 1024);
static_assert(kHostsOffset == 65536 + 1024 * 512 && kHostSlotSize == 4096 && kHostSlots == 256);
static_assert(kDataOffset == 2u << 20 && kAlignUnit == 2u << 20);
static_assert(sizeof(Superblock) == 512);
static_assert(offsetof(Superblock, magic) == 0);
static_assert(offsetof(Superblock, major) == 8);
static_assert(offsetof(Superblock, minor) == 10);
static_assert(offsetof(Superblock, headerBytes) == 12);
static_assert(offsetof(Superblock, poolUuid) == 16);
static_assert(offsetof(Superblock, poolSize) == 32);
static_assert(offsetof(Superblock, alignUnit) == 40);
static_assert(offsetof(Superblock, catalogOffset) == 48);
static_assert(offsetof(Superblock, catalogSlots) == 56);
static_assert(offsetof(Superblock, entrySize) == 60);
static_assert(offsetof(Superblock, hostsOffset) == 64);
static_assert(offsetof(Superblock, hostSlots) == 72);
static_assert(offsetof(Superblock, hostSlotSize) == 76);
static_assert(offsetof(Superblock, dataOffset) == 80);
static_assert(offsetof(Superblock, dataBytes) == 88);
static_assert(offsetof(Superblock, createTimeNs) == 96);
static_assert(offsetof(Superblock, genWordOffset) == 104);
static_assert(offsetof(Superblock, masterOffset) == 112);
static_assert(offsetof(Superblock, flags) == 120);
static_assert(offsetof(Superblock, leaseMs) == 124);
static_assert(offsetof(Superblock, crc) == 508);
static_assert(sizeof(MasterRecord) == 64);
static_assert(offsetof(MasterRecord, epoch) == 16);
static_assert(offsetof(MasterRecord, takeTimeNs) == 24);
static_assert(offsetof(MasterRecord, hostname) == 32);
static_assert(offsetof(MasterRecord, crc) == 60);
static_assert(sizeof(CatalogEntry) == 512);
static_assert(offsetof(CatalogEntry, stateWord) == 0);
static_assert(offsetof(CatalogEntry, removedWord) == 8);
static_assert(offsetof(CatalogEntry, kind) == 16);
static_assert(offsetof(CatalogEntry, createdGen) == 24);
static_assert(offsetof(CatalogEntry, raw) == 32);
static_assert(offsetof(CatalogEntry, crc) == 508);
static_assert(sizeof(TableBody) <= 472 && sizeof(ModelBody) <= 472);
static_assert(offsetof(TableBody, model) == 64);
static_assert(offsetof(TableBody, modelFingerprint) == 112);
static_assert(offsetof(TableBody, layerId) == 120);
static_assert(offsetof(TableBody, rowBytes) == 140);
static_assert(offsetof(TableBody, rowStride) == 144);
static_assert(offsetof(TableBody, rows) == 152);
static_assert(offsetof(TableBody, dataOffset) == 160);
static_assert(offsetof(TableBody, extentBytes) == 168);
static_assert(offsetof(TableBody, dataBytes) == 176);
static_assert(offsetof(TableBody, dataXxh3) == 184);
static_assert(offsetof(HostSlot, hostUuid) == 8);
static_assert(offsetof(HostSlot, observedGen) == 112);
static_assert(offsetof(HostSlot, crc) == 252);
static_assert(kHostsOffset + (uint64_t)kHostSlots * kHostSlotSize <= kDataOffset);

TEST(FormatLayout, AreasDoNotOverlap)
{
	EXPECT_LE(sizeof(Superblock), kGenWordOffset);
	EXPECT_LE(kGenWordOffset + 64, kMasterOffset);
	EXPECT_LE(kMasterOffset + 2 * sizeof(MasterRecord), kCatalogOffset);
	EXPECT_LE(kCatalogOffset + (uint64_t)kCatalogSlots * kEntrySize, kHostsOffset);
	EXPECT_LE(kHostsOffset + (uint64_t)kHostSlots * kHostSlotSize, kDataOffset);
	EXPECT_EQ(kGenWordOffset % 64, 0u) << "the commit word needs its own cache line";
	EXPECT_EQ(kDataOffset % kAlignUnit, 0u);
}

TEST(FormatWords, GenWordRoundTrip)
{
	std::mt19937_64 rng(7);
	std::vector<uint64_t> gens = {1, 2, 3, 255, 256, 65535, 1ull << 32, kMaxGeneration - 1, kMaxGeneration};
	for (int i = 0; i < 2000; i++)
		gens.push_back(1 + rng() % kMaxGeneration);
	for (uint64_t g : gens) {
		uint64_t w = encodeGenWord(g);
		auto d = decodeGenWord(w);
		ASSERT_TRUE(d.has_value()) << g;
		EXPECT_EQ(*d, g);
		EXPECT_NE(w, g) << "the word carries check bits above the generation";
	}
	EXPECT_FALSE(decodeGenWord(0).has_value()) << "generation 0 (a zeroed word) is never valid";
	EXPECT_FALSE(decodeGenWord(encodeGenWord(0)).has_value());
}

TEST(FormatWords, GenWordRejectsRandomTornAndFlippedWords)
{
	std::mt19937_64 rng(11);
	int accepted = 0;
	for (int i = 0; i < 200000; i++)
		accepted += decodeGenWord(rng()).has_value();
	// 24 check bits: expect ~0.01 false accepts in 200k; allow none.
	EXPECT_EQ(accepted, 0);
	// A torn 8-byte store: low half of one word, high half of another.
	int tornAccepted = 0;
	for (int i = 0; i < 20000; i++) {
		uint64_t a = 1 + rng() % kMaxGeneration, b = 1 + rng() % kMaxGeneration;
		uint64_t wa = encodeGenWord(a), wb = encodeGenWord(b);
		uint64_t torn = (wa & 0xffffffffull) | (wb & ~0xffffffffull);
		if (torn == wa || torn == wb)
			continue;
		tornAccepted += decodeGenWord(torn).has_value();
	}
	EXPECT_EQ(tornAccepted, 0);
	// Every single-bit flip of a valid word is detected.
	for (uint64_t g : std::vector<uint64_t>{1, 2, 12345, kMaxGeneration}) {
		uint64_t w = encodeGenWord(g);
		for (int b = 0; b < 64; b++)
			EXPECT_FALSE(decodeGenWord(w ^ (1ull << b)).has_value()) << "gen " << g << " bit " << b;
	}
}

TEST(FormatWords, StateWordRoundTrip)
{
	EntryKind k;
	uint64_t g;
	ASSERT_TRUE(decodeStateWord(0, k, g));
	EXPECT_EQ(k, EntryKind::Free);
	EXPECT_EQ(g, 0u);
	std::mt19937_64 rng(3);
	for (EntryKind kind : {EntryKind::Model, EntryKind::Table}) {
		for (int i = 0; i < 2000; i++) {
			uint64_t gen = i < 3 ? (uint64_t)i + 1 : 1 + rng() % kMaxGeneration;
			uint64_t w = encodeStateWord(kind, gen);
			ASSERT_NE(w, 0u);
			ASSERT_TRUE(decodeStateWord(w, k, g)) << gen;
			EXPECT_EQ(k, kind);
			EXPECT_EQ(g, gen);
		}
	}
	// A state word for generation 0 or kind Free is not a published entry.
	EXPECT_FALSE(decodeStateWord(encodeStateWord(EntryKind::Table, 0), k, g));
	EXPECT_FALSE(decodeStateWord(encodeStateWord(EntryKind::Free, 5), k, g));
	EXPECT_FALSE(decodeStateWord(encodeStateWord((EntryKind)7, 5), k, g)) << "unknown kind";
}

TEST(FormatWords, StateWordRejectsRandomTornAndFlippedWords)
{
	std::mt19937_64 rng(5);
	EntryKind k;
	uint64_t g;
	int accepted = 0;
	for (int i = 0; i < 200000; i++) {
		uint64_t w = rng();
		if (w == 0)
			continue;
		accepted += decodeStateWord(w, k, g);
	}
	EXPECT_EQ(accepted, 0);
	int tornAccepted = 0;
	for (int i = 0; i < 20000; i++) {
		uint64_t wa = encodeStateWord(EntryKind::Table, 1 + rng() % kMaxGeneration);
		uint64_t wb = encodeStateWord(EntryKind::Model, 1 + rng() % kMaxGeneration);
		uint64_t torn = (wa & 0xffffffffull) | (wb & ~0xffffffffull);
		tornAccepted += decodeStateWord(torn, k, g);
	}
	EXPECT_EQ(tornAccepted, 0);
	int flipAccepted = 0;
	for (uint64_t gen : std::vector<uint64_t>{1, 77, 1ull << 35}) {
		uint64_t w = encodeStateWord(EntryKind::Table, gen);
		for (int b = 0; b < 64; b++)
			flipAccepted += decodeStateWord(w ^ (1ull << b), k, g);
	}
	EXPECT_EQ(flipAccepted, 0);
}

TEST(FormatWords, RemovedWordRoundTripAndRejection)
{
	auto live = decodeRemovedWord(0);
	ASSERT_TRUE(live.has_value());
	EXPECT_EQ(*live, 0u) << "0 = a live entry";
	std::mt19937_64 rng(9);
	for (int i = 0; i < 2000; i++) {
		uint64_t gen = 1 + rng() % kMaxGeneration;
		auto d = decodeRemovedWord(encodeRemovedWord(gen));
		ASSERT_TRUE(d.has_value());
		EXPECT_EQ(*d, gen);
	}
	EXPECT_FALSE(decodeRemovedWord(encodeRemovedWord(0)).has_value());
	int accepted = 0;
	for (int i = 0; i < 200000; i++) {
		uint64_t w = rng();
		if (w != 0)
			accepted += decodeRemovedWord(w).has_value();
	}
	EXPECT_EQ(accepted, 0);
	uint64_t w = encodeRemovedWord(42);
	for (int b = 0; b < 64; b++)
		EXPECT_FALSE(decodeRemovedWord(w ^ (1ull << b)).has_value()) << "bit " << b;
	// The three word kinds use different salts: one is never mistaken for another.
	EXPECT_FALSE(decodeRemovedWord(encodeGenWord(42)).has_value());
	EXPECT_FALSE(decodeGenWord(encodeRemovedWord(42)).has_value());
}

namespace {

Superblock freshSb(uint64_t size = 64ull << 20)
{
	Uuid u{};
	for (int i = 0; i < 16; i++)
		u[i] = (uint8_t)(i * 7 + 1);
	return makeSuperblock(size, u, 5000);
}

void reseal(Superblock &sb)
{
	sb.crc = superblockCrc(sb);
}

} // namespace

TEST(FormatSuperblock, FreshSuperblockValidates)
{
	Superblock sb = freshSb();
	EXPECT_TRUE(validateSuperblock(sb, 64ull << 20).isOk());
	EXPECT_EQ(std::memcmp(sb.magic, kMagic, 8), 0);
	EXPECT_EQ(sb.major, kMajor);
	EXPECT_EQ(sb.poolSize, 64ull << 20);
	EXPECT_EQ(sb.dataBytes, (64ull << 20) - kDataOffset);
	EXPECT_EQ(sb.leaseMs, 5000u);
	// A size that is not a multiple of the unit is rounded down.
	Superblock odd = freshSb((64ull << 20) + 12345);
	EXPECT_EQ(odd.poolSize, 64ull << 20);
	EXPECT_TRUE(validateSuperblock(odd, (64ull << 20) + 12345).isOk());
}

TEST(FormatSuperblock, BadMagicIsNotAPool)
{
	Superblock sb = freshSb();
	sb.magic[0] = 'X';
	reseal(sb);
	EXPECT_EQ(validateSuperblock(sb, 64ull << 20).code(), EP_E_NOT_POOL);
	Superblock zero;
	std::memset(&zero, 0, sizeof(zero));
	EXPECT_EQ(validateSuperblock(zero, 64ull << 20).code(), EP_E_NOT_POOL);
}

TEST(FormatSuperblock, EveryFlippedByteFailsTheCrc)
{
	Superblock good = freshSb();
	for (size_t off = 8; off < sizeof(Superblock); off++) {
		Superblock sb = good;
		reinterpret_cast<uint8_t *>(&sb)[off] ^= 0x5a;
		Status s = validateSuperblock(sb, 64ull << 20);
		EXPECT_EQ(s.code(), EP_E_CORRUPT) << "byte " << off;
	}
}

TEST(FormatSuperblock, VersionMajor2IsRejected)
{
	Superblock sb = freshSb();
	sb.major = 2;
	reseal(sb);
	Status s = validateSuperblock(sb, 64ull << 20);
	EXPECT_EQ(s.code(), EP_E_VERSION);
	EXPECT_NE(s.message().find("2."), std::string::npos) << s.message();
	// A newer minor of the same major is readable.
	Superblock minor = freshSb();
	minor.minor = 9;
	reseal(minor);
	EXPECT_TRUE(validateSuperblock(minor, 64ull << 20).isOk());
}

TEST(FormatSuperblock, GeometryIsChecked)
{
	auto expectCorrupt = [](auto mutate, const char *what) {
		Superblock sb = freshSb();
		mutate(sb);
		reseal(sb);
		EXPECT_EQ(validateSuperblock(sb, 64ull << 20).code(), EP_E_CORRUPT) << what;
	};
	expectCorrupt([](Superblock &s) { s.catalogOffset = 0; }, "catalog offset");
	expectCorrupt([](Superblock &s) { s.catalogSlots = 1u << 30; }, "catalog slots");
	expectCorrupt([](Superblock &s) { s.entrySize = 256; }, "entry size");
	expectCorrupt([](Superblock &s) { s.hostsOffset = 1ull << 40; }, "hosts offset");
	expectCorrupt([](Superblock &s) { s.dataOffset = 4096; }, "data offset");
	expectCorrupt([](Superblock &s) { s.alignUnit = 4096; }, "align unit");
	expectCorrupt([](Superblock &s) { s.headerBytes = 4096; }, "header bytes");
	expectCorrupt([](Superblock &s) { s.genWordOffset = 0; }, "gen word offset");
	expectCorrupt([](Superblock &s) { s.dataBytes += kAlignUnit; }, "data bytes");
	expectCorrupt([](Superblock &s) { s.poolSize += 4096; }, "unaligned pool size");
	expectCorrupt([](Superblock &s) { s.poolSize = kAlignUnit, s.dataBytes = 0; }, "pool below minimum");
	// The superblock claims more than the region holds (a truncated backing file).
	Superblock sb = freshSb();
	EXPECT_EQ(validateSuperblock(sb, 32ull << 20).code(), EP_E_CORRUPT);
}

namespace {

TableBody goodBody(const Superblock &sb)
{
	TableBody t;
	std::memset(&t, 0, sizeof(t));
	setFixedString(t.name, sizeof(t.name), "m/layer1");
	t.rowBytes = 64;
	t.rowStride = 64;
	t.rows = 1000;
	t.dataBytes = 64000;
	t.dataOffset = sb.dataOffset + kAlignUnit;
	t.extentBytes = kAlignUnit;
	return t;
}

} // namespace

TEST(FormatTableBody, BoundsAndGeometry)
{
	Superblock sb = freshSb();
	uint64_t end = sb.dataOffset + sb.dataBytes;
	EXPECT_TRUE(validateTableBody(goodBody(sb), sb).isOk());
	{
		TableBody t = goodBody(sb);
		t.dataOffset = end - kAlignUnit;
		EXPECT_TRUE(validateTableBody(t, sb).isOk()) << "last extent of the pool";
	}
	auto expectCorrupt = [&](auto mutate, const char *what) {
		TableBody t = goodBody(sb);
		mutate(t);
		Status s = validateTableBody(t, sb);
		EXPECT_EQ(s.code(), EP_E_CORRUPT) << what;
		EXPECT_NE(s.message().find("m/layer1"), std::string::npos) << what << ": " << s.message();
	};
	expectCorrupt([&](TableBody &t) { t.dataOffset = end; }, "offset at the end");
	expectCorrupt([&](TableBody &t) { t.dataOffset = 1ull << 50; }, "offset far outside");
	expectCorrupt([&](TableBody &t) { t.dataOffset = UINT64_MAX - kAlignUnit + 1; }, "offset that wraps");
	expectCorrupt([&](TableBody &t) { t.dataOffset = 0; }, "offset in the metadata");
	expectCorrupt([&](TableBody &t) { t.dataOffset += 4096; }, "unaligned offset");
	expectCorrupt([&](TableBody &t) { t.dataOffset = end - kAlignUnit, t.extentBytes = 2 * kAlignUnit; },
		      "extent past the end");
	expectCorrupt([&](TableBody &t) { t.extentBytes = UINT64_MAX - kAlignUnit + 1; }, "huge extent");
	expectCorrupt([&](TableBody &t) { t.extentBytes = 0; }, "empty extent");
	expectCorrupt([&](TableBody &t) { t.rows = 1ull << 40, t.dataBytes = t.rows * 64; }, "rows beyond the extent");
	expectCorrupt([&](TableBody &t) { t.dataBytes = 12; }, "dataBytes != rows*stride");
	expectCorrupt([&](TableBody &t) { t.rowStride = 0; }, "zero stride");
	expectCorrupt([&](TableBody &t) { t.rowBytes = 128; }, "row bytes above stride");
	expectCorrupt([&](TableBody &t) { t.rows = 0, t.dataBytes = 0; }, "no rows");
}

TEST(FormatCrc, EntryCrcCoversBodyNotTheInPlaceWords)
{
	CatalogEntry e;
	std::memset(&e, 0, sizeof(e));
	e.kind = (uint32_t)EntryKind::Table;
	e.createdGen = 3;
	e.table = TableBody{};
	setFixedString(e.table.name, sizeof(e.table.name), "x");
	uint32_t c = entryCrc(e);
	e.stateWord = encodeStateWord(EntryKind::Table, 3);
	e.removedWord = encodeRemovedWord(4);
	EXPECT_EQ(entryCrc(e), c) << "state and removal words change in place, outside the CRC";
	for (size_t off = 16; off < offsetof(CatalogEntry, crc); off += 37) {
		CatalogEntry f = e;
		reinterpret_cast<uint8_t *>(&f)[off] ^= 1;
		EXPECT_NE(entryCrc(f), c) << "byte " << off;
	}
	MasterRecord m{};
	m.epoch = 1;
	uint32_t mc = masterCrc(m);
	m.epoch = 2;
	EXPECT_NE(masterCrc(m), mc);
}

TEST(FormatStrings, FixedStrings)
{
	char buf[8];
	EXPECT_TRUE(setFixedString(buf, sizeof(buf), "abc"));
	EXPECT_EQ(fixedString(buf, sizeof(buf)), "abc");
	EXPECT_TRUE(setFixedString(buf, sizeof(buf), "1234567"));
	EXPECT_EQ(fixedString(buf, sizeof(buf)), "1234567");
	EXPECT_FALSE(setFixedString(buf, sizeof(buf), "12345678")) << "no room for the NUL";
	std::memset(buf, 'z', sizeof(buf));
	EXPECT_EQ(fixedString(buf, sizeof(buf)), "zzzzzzzz") << "bounded even without a NUL";
}
