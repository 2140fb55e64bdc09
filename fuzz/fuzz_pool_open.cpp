// SPDX-License-Identifier: Apache-2.0
// fuzz_pool_open.cpp - libFuzzer target: opening a corrupted pool (superblock, generation word, masters, catalog, hosts).
//
// Once per process a 12 MiB file: pool is created and populated through the real
// writer: model "m" (layers 1 and 2), tables m/layer1 and m/layer2, a live host
// in slot 0 whose observed generation pins a removed older m/layer2 (pending
// reclaim). Each input is a list of structured patches applied to a fresh copy of
// that pool, then the pool is opened read-only (snapshot, master, hosts, verify,
// row reads, host attach) and, when asked, for writing (recovery, import,
// replace, remove, reclaim, master take-over). Errors are expected; crashes,
// hangs, reads outside the mapping and sanitizer reports are bugs. One oracle
// beyond "no crash": a writer operation that succeeds on a pool whose snapshot
// was readable must leave a pool whose snapshot is still readable.
//
// Input: u16 flags, then ops until the input ends (see applyOp; all little-endian).
#include <cstdint>
#include <cstring>
#include <string>
#include <sys/mman.h>
#include <vector>

#include "format/layout.hpp"
#include "fuzz_common.hpp"
#include "hashing/layout.hpp"
#include "io/row_source.hpp"
#include "model/model_config.hpp"
#include "pool/host_registration.hpp"
#include "pool/pool.hpp"
#include "util/units.hpp"

using namespace engrampool;
using namespace engrampool::format;

namespace {

constexpr uint64_t kPoolBytes = 12ull << 20;
constexpr uint64_t kPatchSpan = kDataOffset + (64 << 10); // metadata + the start of the first extent
constexpr uint64_t kExtentKeep = 64 << 10;                // bytes restored at the start of each extent

enum Flags : uint16_t {
	kWriter = 1 << 0,      // open for writing (recovery) after the reader pass
	kImport = 1 << 1,      // writer: import a new table "fz"
	kReplace = 1 << 2,     // writer: replace m/layer1
	kRemove = 1 << 3,      // writer: remove m/layer1
	kReclaim = 1 << 4,     // writer: reclaim
	kTakeMaster = 1 << 5,  // take mastership before the writer opens
	kFixSb = 1 << 6,       // recompute the superblock CRC after patching
	kFixMaster = 1 << 7,   // recompute both master record CRCs
	kFixEntries = 1 << 8,  // recompute the CRC of every non-free catalog entry
	kFixHosts = 1 << 9,    // recompute the CRC of every used host slot
	kAttach = 1 << 10,     // reader: attach as a host (first free or expired slot)
	kRemoveLayer2 = 1 << 11,
};

struct World {
	std::string path, uri;
	uint8_t *map = nullptr;       // the harness's own shared mapping of the pool file
	std::vector<uint8_t> pristine;
	ModelConfig model;
	uint64_t layer1Rows = 0;
};

void die(const char *what, const Status &s)
{
	fprintf(stderr, "fuzz_pool_open: setup: %s: %s\n", what, s.message().c_str());
	abort();
}

World &world()
{
	static World *w = [] {
		auto *w = new World();
		w->path = fuzz::scratchDir() + "/pool";
		w->uri = "file:" + w->path;
		CreateOptions co;
		co.size = kPoolBytes;
		co.mode = 0600;
		if (Status s = Pool::create(w->uri, co, 10000); !s)
			die("create", s);
		const char *json = R"({"name": "m", "engram_vocab_size": [61, 67], "max_ngram_size": 3,
			"n_embed_per_ngram": 8, "n_head_per_ngram": 2, "layer_ids": [1, 2], "pad_id": 0,
			"seed": 7, "tokenizer_vocab_size": 100, "compressed_vocab_size": 100, "dtype": "fp32"})";
		auto cfg = parseModelJson(json, "");
		if (!cfg)
			die("model", cfg.status());
		w->model = *cfg;
		auto layout = hashing::ModelLayout::create(w->model);
		if (!layout)
			die("layout", layout.status());
		w->layer1Rows = layout->layers()[0].rows;
		uint64_t layer2Rows = layout->layers()[1].rows;
		{
			auto p = Pool::open(w->uri, OpenOptions{true, 1000});
			if (!p)
				die("open", p.status());
			auto imp = [&](uint32_t layer, uint64_t rows, bool replace, uint64_t seed) {
				ImportRequest r;
				r.model = &w->model;
				r.layerId = layer;
				r.rows = rows;
				r.replace = replace;
				auto src = io::makeRandomSource(w->model.rowFormat, rows, seed);
				auto res = (*p)->importTable(r, *src);
				if (!res)
					die("import", res.status());
				return res->generation;
			};
			imp(1, w->layer1Rows, false, 1);
			uint64_t g = imp(2, layer2Rows, false, 2);
			// A live host that has seen only generation g keeps the replaced m/layer2 pending.
			HostSlot hs{};
			Uuid id = randomUuid();
			std::memcpy(hs.hostUuid, id.data(), 16);
			setFixedString(hs.hostname, sizeof(hs.hostname), "fuzz-host");
			hs.pid = 1;
			hs.state = 1;
			hs.attachTimeNs = nowRealtimeNs();
			hs.heartbeatNs = nowRealtimeNs();
			hs.observedGen = g;
			hs.leaseMs = 1000ull * 3600 * 24 * 365; // live for the whole run
			if (Status s = (*p)->writeHostSlot(0, hs); !s)
				die("host slot", s);
			// A detached host in slot 1.
			hs.state = 2;
			hs.observedGen = 1;
			if (Status s = (*p)->writeHostSlot(1, hs); !s)
				die("host slot", s);
			imp(2, layer2Rows, true, 3);
		}
		int fd = open(w->path.c_str(), O_RDWR);
		void *m = mmap(nullptr, kPoolBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (fd < 0 || m == MAP_FAILED) {
			perror("mmap pool");
			abort();
		}
		close(fd);
		w->map = static_cast<uint8_t *>(m);
		w->pristine.assign(w->map, w->map + kPoolBytes);
		return w;
	}();
	return *w;
}

void restore(World &w)
{
	std::memcpy(w.map, w.pristine.data(), kDataOffset + kExtentKeep);
	for (uint64_t off = kDataOffset + kAlignUnit; off < kPoolBytes; off += kAlignUnit)
		std::memcpy(w.map + off, w.pristine.data() + off, kExtentKeep);
}

void patch(uint8_t *dst, uint64_t room, fuzz::Reader &in)
{
	size_t want = in.u8() % 65, got = 0;
	const uint8_t *b = in.bytes(want, got);
	std::memcpy(dst, b, std::min<uint64_t>(got, room));
}

// One structured mutation. Opcodes (low 3 bits of the first byte):
//   0 raw patch        u24 offset (mod metadata + 64 KiB), u8 len (mod 65), bytes
//   1 generation word  u40 gen -> encodeGenWord(gen)
//   2 entry state word u16 slot, u8 kind (mod 4; 0 = free word 0), u40 gen
//   3 entry removed    u16 slot, u40 gen (0 = live)
//   4 entry patch      u16 slot, u16 offset (mod 512), u8 len, bytes
//   5 host slot patch  u8 slot, u16 offset (mod 4096), u8 len, bytes
//   6 master patch     u8 record (mod 2), u8 offset (mod 64), u8 len, bytes
//   7 entry u64 store  u16 slot, u8 word index (mod 64), u64 value
void applyOp(uint8_t *base, fuzz::Reader &in)
{
	uint8_t op = in.u8() & 7;
	switch (op) {
	case 0: {
		uint64_t off = in.u(3) % kPatchSpan;
		patch(base + off, kPatchSpan - off, in);
		break;
	}
	case 1: {
		uint64_t g = in.u(5);
		uint64_t w = encodeGenWord(g);
		std::memcpy(base + kGenWordOffset, &w, 8);
		break;
	}
	case 2: {
		uint32_t slot = in.u(2) % kCatalogSlots;
		uint8_t kind = in.u8() % 4;
		uint64_t g = in.u(5);
		uint64_t w = kind == 0 ? 0 : encodeStateWord((EntryKind)kind, g);
		std::memcpy(base + kCatalogOffset + (uint64_t)slot * kEntrySize, &w, 8);
		break;
	}
	case 3: {
		uint32_t slot = in.u(2) % kCatalogSlots;
		uint64_t g = in.u(5);
		uint64_t w = g == 0 ? 0 : encodeRemovedWord(g);
		std::memcpy(base + kCatalogOffset + (uint64_t)slot * kEntrySize + 8, &w, 8);
		break;
	}
	case 4: {
		uint32_t slot = in.u(2) % kCatalogSlots;
		uint32_t off = in.u(2) % kEntrySize;
		patch(base + kCatalogOffset + (uint64_t)slot * kEntrySize + off, kEntrySize - off, in);
		break;
	}
	case 5: {
		uint32_t slot = in.u8() % kHostSlots;
		uint32_t off = in.u(2) % kHostSlotSize;
		patch(base + kHostsOffset + (uint64_t)slot * kHostSlotSize + off, kHostSlotSize - off, in);
		break;
	}
	case 6: {
		uint32_t rec = in.u8() & 1;
		uint32_t off = in.u8() % sizeof(MasterRecord);
		patch(base + kMasterOffset + rec * sizeof(MasterRecord) + off, sizeof(MasterRecord) - off, in);
		break;
	}
	default: {
		uint32_t slot = in.u(2) % kCatalogSlots;
		uint32_t word = in.u8() % (kEntrySize / 8);
		uint64_t v = in.u(8);
		std::memcpy(base + kCatalogOffset + (uint64_t)slot * kEntrySize + word * 8, &v, 8);
		break;
	}
	}
}

void fixCrcs(uint8_t *base, uint16_t flags)
{
	if (flags & kFixSb) {
		auto *sb = reinterpret_cast<Superblock *>(base);
		sb->crc = superblockCrc(*sb);
	}
	if (flags & kFixMaster)
		for (int i = 0; i < 2; i++) {
			auto *m = reinterpret_cast<MasterRecord *>(base + kMasterOffset + i * sizeof(MasterRecord));
			m->crc = masterCrc(*m);
		}
	if (flags & kFixEntries)
		for (uint32_t i = 0; i < kCatalogSlots; i++) {
			auto *e = reinterpret_cast<CatalogEntry *>(base + kCatalogOffset + (uint64_t)i * kEntrySize);
			if (e->stateWord != 0)
				e->crc = entryCrc(*e);
		}
	if (flags & kFixHosts)
		for (uint32_t i = 0; i < kHostSlots; i++) {
			auto *h = reinterpret_cast<HostSlot *>(base + kHostsOffset + (uint64_t)i * kHostSlotSize);
			if (h->seq != 0 || h->state != 0)
				h->crc = hostSlotCrc(*h);
		}
}

// Everything a reader does; returns whether the snapshot was readable.
bool readerPass(const World &w, uint16_t flags)
{
	auto p = Pool::open(w.uri, OpenOptions{false, 0});
	if (!p)
		return false;
	Pool &pool = **p;
	(void)pool.committedGeneration();
	(void)pool.master();
	for (const HostInfo &h : pool.hosts())
		(void)h.live;
	auto s = pool.snapshot();
	if (s) {
		for (const TableInfo &t : s->tables) {
			uint64_t rows[3] = {0, t.rows / 2, t.rows - 1};
			std::vector<uint8_t> buf(3 * (size_t)t.rowBytes);
			if (Status st = pool.readRows(t, rows, 3, buf.data(), buf.size()); !st) {
				fprintf(stderr, "fuzz_pool_open: readRows failed on validated table '%s': %s\n", t.name.c_str(),
					st.message().c_str());
				abort();
			}
			ep_table_info ci;
			toCInfo(t, ci);
		}
		for (const ModelRecord &m : s->models)
			(void)pool.tokenMap(m.name); // the stored token map (none here: its bounds are still checked)
		(void)pool.verify(flags & kAttach ? "m/layer1" : "");
	}
	if (flags & kAttach) {
		auto g = pool.committedGeneration();
		auto reg = HostRegistration::attach(pool, -1, g ? *g : 1, 5000);
		if (reg) {
			(void)(*reg)->heartbeat(g ? *g : 1);
			(void)(*reg)->detach();
		}
	}
	return s.isOk();
}

// After the writer: open again, and verify (which takes a snapshot) when it opens.
bool snapshotReadable(const World &w)
{
	auto p = Pool::open(w.uri, OpenOptions{false, 0});
	return p && (*p)->verify().isOk();
}

void writerPass(World &w, uint16_t flags, bool readableBefore)
{
	if (flags & kTakeMaster)
		(void)Pool::takeMaster(w.uri, 0);
	bool changed = false;
	{
		auto p = Pool::open(w.uri, OpenOptions{true, 0});
		if (!p)
			return;
		Pool &pool = **p;
		auto imp = [&](const std::string &name, uint32_t layer, bool replace) {
			ImportRequest r;
			r.tableName = name;
			r.model = &w.model;
			r.layerId = layer;
			r.rows = w.layer1Rows;
			r.replace = replace;
			auto src = io::makeRandomSource(w.model.rowFormat, r.rows, 9);
			auto res = pool.importTable(r, *src);
			changed |= res.isOk();
		};
		if (flags & kImport)
			imp("fz", 1, false);
		if (flags & kReplace)
			imp("m/layer1", 1, true);
		if (flags & kRemove)
			changed |= pool.removeTable("m/layer1").isOk();
		if (flags & kRemoveLayer2)
			changed |= pool.removeTable("m/layer2").isOk();
		if (flags & kReclaim)
			(void)pool.reclaim();
	}
	bool readableAfter = snapshotReadable(w);
	if (readableBefore && changed && !readableAfter) {
		fprintf(stderr, "fuzz_pool_open: a writer operation that succeeded left an unreadable catalog\n");
		auto p = Pool::open(w.uri, OpenOptions{false, 0});
		if (p)
			fprintf(stderr, "  snapshot: %s\n", (*p)->snapshot().status().message().c_str());
		abort();
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	World &w = world();
	restore(w);
	fuzz::Reader in(data, size);
	uint16_t flags = (uint16_t)in.u(2);
	int ops = 0;
	while (!in.empty() && ops++ < 64)
		applyOp(w.map, in);
	fixCrcs(w.map, flags);
	bool readable = readerPass(w, flags);
	if (flags & kWriter)
		writerPass(w, flags, readable);
	return 0;
}
