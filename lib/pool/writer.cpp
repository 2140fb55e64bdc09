// SPDX-License-Identifier: Apache-2.0
// writer.cpp - the single writer: lock, master check, crash recovery, import,
// remove, reclaim and mastership. Publication order (a crash anywhere leaves the
// last committed generation whole):
//   data -> persist -> catalog entry body -> persist -> entry state word -> persist
//   -> (removal words of replaced entries -> persist) -> generation word -> persist
#include <algorithm>
#include <atomic>
#include <set>
#include <cstring>
#include <sys/file.h>
#include <thread>
#include <unistd.h>

#include "io/row_source.hpp"
#include "pool/fault_hooks.hpp"
#include "pool/import_copy.hpp"
#include "pool/pool.hpp"
#include "util/checksum.hpp"
#include "util/units.hpp"
#include "util/utf8.hpp"

namespace engrampool {

using namespace format;

format::PersistFn Pool::writerPersistFn()
{
	return [this](const void *p, size_t len) { writerPersist(p, len); };
}

namespace testhooks {
namespace {
std::atomic<PersistHook> gPersistHook{nullptr};
std::atomic<uint64_t> gPersistCount{0};
} // namespace

void setWriterPersistHook(PersistHook hook)
{
	gPersistCount = 0;
	gPersistHook = hook;
}

PersistHook writerPersistHook()
{
	return gPersistHook.load(std::memory_order_relaxed);
}
} // namespace testhooks

void Pool::writerPersist(const void *p, size_t len)
{
	region_->persist(p, len);
	// Crash-consistency tests (fault_hooks.hpp) die here like a killed writer.
	if (auto hook = testhooks::writerPersistHook())
		hook(++testhooks::gPersistCount);
}

Status Pool::lockWriter(uint32_t waitMs)
{
	uint64_t deadline = nowMonotonicNs() + (uint64_t)waitMs * 1000000ull;
	for (;;) {
		if (flock(region_->fd(), LOCK_EX | LOCK_NB) == 0)
			return Status::ok();
		if (errno != EWOULDBLOCK && errno != EINTR)
			return errnoError(errno, "lock " + region_->uri().path);
		if (nowMonotonicNs() >= deadline)
			return errorf(-EBUSY, "another writer holds the pool's writer lock (waited %u ms); "
					      "only one import/rm/gc runs at a time",
				      waitMs);
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
	}
}

Status Pool::checkMaster()
{
	auto m = master();
	if (!m)
		return m.status();
	Uuid me = localHostId();
	if (m->host != me)
		return makeError(EP_E_NOT_MASTER, "this host (" + uuidToString(me) + ") is not the pool master (" +
							  uuidToString(m->host) + " '" + m->hostname + "', epoch " +
							  std::to_string(m->epoch) +
							  "); if that host is dead run 'engrampool master --take URI'");
	myEpoch_ = m->epoch;
	return Status::ok();
}

Status Pool::recover()
{
	auto g = committedGeneration();
	if (!g)
		return g.status();
	uint64_t G = *g;
	PersistFn persist = writerPersistFn();
	// Undo what a killed writer left half-published: entries and removals above G.
	// Corrupted slots are quarantined (left alone: 'verify --repair' fixes them).
	for (uint32_t i = 0; i < kCatalogSlots; i++) {
		CatalogEntry *e = entry(i);
		EntryView v = inspectEntry(entryCopy(i), i, G);
		if (v.state == SlotState::Pending)
			publishWord(&e->stateWord, 0, persist);
		else if (v.state == SlotState::Visible && v.removedGen > G)
			publishWord(&e->removedWord, 0, persist);
	}
	auto r = reclaim();
	return r ? Status::ok() : r.status();
}

Result<uint32_t> Pool::reclaim()
{
	if (!writer_)
		return makeError(-EPERM, "reclaim needs the pool opened for writing");
	auto g = committedGeneration();
	if (!g)
		return g.status();
	// The oldest generation a live host may still read.
	uint64_t minObserved = *g;
	for (auto &h : hosts())
		if (h.live)
			minObserved = std::min(minObserved, h.observedGen);
	uint32_t freed = 0;
	PersistFn persist = writerPersistFn();
	// Tables before models: a reader never sees a table whose model is gone.
	for (EntryKind pass : {EntryKind::Table, EntryKind::Model}) {
		for (uint32_t i = 0; i < kCatalogSlots; i++) {
			CatalogEntry *e = entry(i);
			EntryView v = inspectEntry(entryCopy(i), i, *g);
			if (v.state != SlotState::Removed || v.kind != pass || v.removedGen > minObserved)
				continue;
			// Only the state word changes: a reader that copied the old state word
			// still sees the removal word and never resurrects the table. The
			// removal word is rewritten when the slot is reused (with the body).
			publishWord(&e->stateWord, 0, persist);
			freed++;
		}
	}
	// Slots of hosts whose lease expired are released by the writer (clear-by-master:
	// the dead host no longer writes it), and so are slots that stay corrupt.
	for (auto &h : hosts())
		if (h.expired())
			EP_TRY(writeHostSlot(h.index, HostSlot{}));
	clearStableCorruptHostSlots();
	return freed;
}

Status Pool::commit(uint64_t newGen)
{
	if (newGen > kMaxGeneration)
		return makeError(-EOVERFLOW, "generation counter exhausted");
	auto m = master();
	if (!m)
		return m.status();
	if (m->epoch != myEpoch_)
		return errorf(EP_E_STALE_EPOCH, "mastership moved to %s (epoch %llu) while this writer worked; nothing "
						"was published",
			      uuidToString(m->host).c_str(), (unsigned long long)m->epoch);
	publishWord(reinterpret_cast<uint64_t *>(region_->base() + kGenWordOffset), encodeGenWord(newGen),
		    writerPersistFn());
	return Status::ok();
}

Result<uint64_t> Pool::allocate(const Snapshot &s, uint64_t bytes,
				const std::vector<std::pair<uint64_t, uint64_t>> &busy) const
{
	// Held extents: every non-free table entry (visible or awaiting reclaim) and the
	// stored token map of every non-free model entry.
	std::vector<std::pair<uint64_t, uint64_t>> held(busy);
	std::vector<uint64_t> openStarts; // damaged entries whose extent length is unreadable
	for (uint32_t i = 0; i < kCatalogSlots; i++) {
		CatalogEntry copy = entryCopy(i);
		if (copy.stateWord == 0)
			continue;
		// Any slot that is not free holds its extent, corrupted ones included, as long
		// as its body still names a sane extent (a garbage body names nothing).
		EntryKind kind;
		uint64_t gen;
		bool stateOk = decodeStateWord(copy.stateWord, kind, gen);
		const bool damaged = !stateOk || copy.crc != entryCrc(copy);
		auto holdOpen = [&](uint64_t off) {
			// A damaged entry may still be read by a host that built its view before
			// the damage: never reuse its data. Where only the start is readable, hold
			// from there to the next extent until 'verify --repair' unpublishes it.
			if (off >= sb_.dataOffset && off < sb_.dataOffset + sb_.dataBytes && off % kAlignUnit == 0)
				openStarts.push_back(off);
		};
		if ((!stateOk || kind == EntryKind::Model) && copy.kind == (uint32_t)EntryKind::Model) {
			if (!hasStoredMap(copy.model))
				continue;
			if (validateModelMap(copy.model, sb_))
				held.emplace_back(copy.model.vocabMapOffset, copy.model.vocabMapExtentBytes);
			else if (damaged)
				holdOpen(copy.model.vocabMapOffset);
			continue;
		}
		if ((stateOk && kind != EntryKind::Table) || copy.kind != (uint32_t)EntryKind::Table)
			continue;
		if (validateTableBody(copy.table, sb_))
			held.emplace_back(copy.table.dataOffset, copy.table.extentBytes);
		else if (damaged)
			holdOpen(copy.table.dataOffset);
	}
	std::sort(held.begin(), held.end());
	for (uint64_t start : openStarts) {
		uint64_t end = sb_.dataOffset + sb_.dataBytes;
		for (auto &[off, len] : held)
			if (off > start) {
				end = off;
				break;
			}
		held.emplace_back(start, end - start);
	}
	std::sort(held.begin(), held.end());
	uint64_t cursor = sb_.dataOffset, end = sb_.dataOffset + sb_.dataBytes;
	uint64_t largest = 0, freeTotal = 0;
	for (auto &[off, len] : held) {
		if (off > cursor) {
			uint64_t gap = off - cursor;
			if (gap >= bytes)
				return cursor;
			largest = std::max(largest, gap);
			freeTotal += gap;
		}
		cursor = std::max(cursor, off + len);
	}
	if (end > cursor) {
		if (end - cursor >= bytes)
			return cursor;
		largest = std::max(largest, end - cursor);
		freeTotal += end - cursor;
	}
	std::string more = s.pendingReclaim ? " (" + std::to_string(s.pendingReclaim) +
						       " removed tables wait for hosts to move on; 'engrampool gc' frees them)"
					    : "";
	return makeError(-ENOSPC, "the pool is full: the " + std::string(busy.empty() ? "table" : "model's token map") +
					  " needs " + formatBytes(bytes) + ", the largest free extent is " +
					  formatBytes(largest) + " (" + formatBytes(freeTotal) + " free in total)" + more);
}

Result<uint32_t> Pool::freeSlot(const std::vector<uint32_t> &taken) const
{
	for (uint32_t i = 0; i < kCatalogSlots; i++) {
		if (loadWord(&entry(i)->stateWord) != 0)
			continue; // in use, or corrupted (quarantined until repaired)
		if (std::find(taken.begin(), taken.end(), i) != taken.end())
			continue;
		return i;
	}
	return errorf(-ENOSPC, "the pool catalog is full (%u entries)", kCatalogSlots);
}

namespace {

// Bytes of the extent that stores a token map of `entries` ids (a kAlignUnit multiple).
uint64_t mapExtentBytes(uint64_t entries)
{
	return (entries * sizeof(int64_t) + kAlignUnit - 1) / kAlignUnit * kAlignUnit;
}

void fillModelBody(ModelBody &b, const ModelConfig &c, uint64_t fp, uint64_t mapOffset)
{
	std::memset(&b, 0, sizeof(b));
	setFixedString(b.name, sizeof(b.name), c.name);
	b.fingerprint = fp;
	// ModelConfig::parse refuses models beyond the format's limits (layout.hpp).
	for (size_t i = 0; i < c.engramVocabSize.size() && i < kMaxNgramOrders; i++)
		b.engramVocabSize[i] = c.engramVocabSize[i];
	b.maxNgramSize = c.maxNgramSize;
	b.nEmbedPerNgram = c.nEmbedPerNgram;
	b.nHeadPerNgram = c.nHeadPerNgram;
	b.layerCount = (uint32_t)c.layerIds.size();
	for (size_t i = 0; i < c.layerIds.size() && i < kMaxLayers; i++)
		b.layerIds[i] = c.layerIds[i];
	b.padId = c.padId;
	b.seed = c.seed;
	b.tokenizerVocabSize = c.tokenizerVocabSize;
	b.compressedVocabSize = c.compressedVocabSize;
	b.vocabMapHash = c.vocabMapHash;
	b.clipOutOfVocab = c.clipOutOfVocab;
	b.dtype = (uint32_t)c.rowFormat.dtype;
	b.valuesPerRow = c.rowFormat.valuesPerRow;
	b.scaleDtype = (uint32_t)c.rowFormat.scaleDtype;
	b.scaleBlock = c.rowFormat.scaleBlock;
	b.rowAlign = c.rowFormat.rowAlign;
	if (mapOffset) {
		b.vocabMapOffset = mapOffset;
		b.vocabMapExtentBytes = mapExtentBytes(c.vocabMap.size());
		b.vocabMapEntries = c.vocabMap.size();
	}
}

} // namespace

// Why a table name is refused ("" when it is fine): every tool prints names and other
// hosts read them, so no control characters (C0, DEL, C1), well-formed UTF-8, not blank.
static std::string tableNameProblem(const std::string &name)
{
	if (name.find_first_not_of(" \t\n\v\f\r") == std::string::npos)
		return "is empty or blank";
	char why[80];
	for (size_t i = 0; i < name.size();) {
		size_t at = i;
		int32_t cp = nextCodePoint(name, i);
		if (cp < 0) {
			snprintf(why, sizeof(why), "is not valid UTF-8 (byte 0x%02x at %zu)", (unsigned char)name[at], at);
			return why;
		}
		if (isControlCodePoint(cp)) {
			snprintf(why, sizeof(why), "holds control character U+%04X at byte %zu", (unsigned)cp, at);
			return why;
		}
	}
	return "";
}

Result<ImportResult> Pool::importTable(const ImportRequest &req, io::RowSource &src)
{
	if (!writer_)
		return makeError(-EPERM, "import needs the pool opened for writing");
	const ModelConfig &cfg = *req.model;
	if (std::find(cfg.layerIds.begin(), cfg.layerIds.end(), req.layerId) == cfg.layerIds.end())
		return makeError(EP_E_MODEL, "layer " + std::to_string(req.layerId) + " is not one of the model's layer_ids");
	std::string name = req.tableName.empty() ? defaultTableName(cfg.name, req.layerId) : req.tableName;
	if (name.size() >= sizeof(TableBody::name))
		return makeError(-ENAMETOOLONG, "table name '" + name + "' is longer than 63 bytes");
	if (std::string why = tableNameProblem(name); !why.empty())
		return makeError(-EINVAL, "table name " + why);
	if (src.rows() != req.rows)
		return errorf(EP_E_SHAPE, "source has %llu rows, layer %u needs %llu", (unsigned long long)src.rows(),
			      req.layerId, (unsigned long long)req.rows);
	auto snap = snapshot();
	if (!snap)
		return snap.status();
	uint64_t fp = modelFingerprint(cfg);
	const ModelRecord *model = snap->findModel(cfg.name);
	if (model && model->fingerprint != fp)
		return makeError(EP_E_MODEL, "the pool holds model '" + cfg.name + "' with fingerprint " +
						     fingerprintHex(model->fingerprint) + " but this model file has " +
						     fingerprintHex(fp) + " (different config or vocab map)");
	const TableInfo *old = snap->findTable(name);
	if (old && !req.replace)
		return makeError(-EEXIST, "table '" + name + "' already exists; use --replace to publish a new version");
	if (!old && req.replace)
		return makeError(-ENOENT, "--replace: no table named '" + name + "' to replace");
	// A new version is the same table: same layer of the same model.
	if (old && (old->layerId != req.layerId || old->model != cfg.name || old->modelFingerprint != fp))
		return makeError(EP_E_MODEL, "--replace: table '" + name + "' holds layer " + std::to_string(old->layerId) +
						     " of model '" + old->model + "' (fingerprint " +
						     fingerprintHex(old->modelFingerprint) + "), the new version is layer " +
						     std::to_string(req.layerId) + " of model '" + cfg.name + "' (fingerprint " +
						     fingerprintHex(fp) + "); import it under another name");

	const RowFormat &f = cfg.rowFormat;
	const bool planar = req.layout == TableLayout::Planar;
	if (planar && f.scaleBytes() == 0)
		return makeError(-EINVAL, "--layout planar needs a format with a scale block; " + f.describe() +
						  " has none (import it packed)");
	if (req.layout != TableLayout::Packed && !planar)
		return errorf(-EINVAL, "unknown table layout %u", (unsigned)req.layout);
	// Planar planes have exact pitch: the model's row padding (row_align) does not apply.
	uint64_t stride = planar ? f.valueBytes() : f.rowStride();
	uint64_t dataBytes = planar ? req.rows * f.rowBytes() : req.rows * stride;
	uint64_t extent = planar ? planarExtentBytes(req.rows, f.valueBytes(), f.scaleBytes())
				 : (dataBytes + kAlignUnit - 1) / kAlignUnit * kAlignUnit;
	auto off = allocate(*snap, extent);
	if (!off)
		return off.status();
	std::vector<uint32_t> taken;
	auto tableSlot = freeSlot(taken);
	if (!tableSlot)
		return tableSlot.status();
	taken.push_back(*tableSlot);
	std::optional<uint32_t> modelSlot;
	uint64_t mapOffset = 0; // the new model record's token map (0: none to store)
	if (!model) {
		auto ms = freeSlot(taken);
		if (!ms)
			return ms.status();
		modelSlot = *ms;
		// The pool keeps the token map beside the tables that were hashed with it.
		if (!cfg.vocabMap.empty()) {
			if (cfg.vocabMap.size() != cfg.tokenizerVocabSize || cfg.vocabMapHash == 0)
				return makeError(EP_E_MODEL, "model '" + cfg.name + "': its token map does not match the model");
			auto mo = allocate(*snap, mapExtentBytes(cfg.vocabMap.size()), {{*off, extent}});
			if (!mo)
				return mo.status();
			mapOffset = *mo;
		}
	}

	// 1. Data into free space, then persist it.
	uint8_t *dst = region_->base() + *off;
	const uint64_t scalesOffset = planar ? planarScalesOffset(*off, req.rows, f.valueBytes()) : 0;
	ImportCopy copy;
	copy.format = &f;
	copy.rows = req.rows;
	copy.planar = planar;
	copy.data = dst;
	copy.stride = stride;
	copy.scales = planar ? region_->base() + scalesOffset : nullptr;
	copy.threads = req.threads;
	copy.progress = req.progress;
	copy.persist = [this](const void *p, size_t len) { region_->persist(p, len); };
	auto checksum = copyImportRows(copy, src);
	if (!checksum)
		return checksum.status().context("import '" + name + "': ");
	writerPersist(dst, 0);
	if (mapOffset) {
		// The map like table data: into free space and persisted before the entries.
		uint8_t *mapDst = region_->base() + mapOffset;
		std::memcpy(mapDst, cfg.vocabMap.data(), cfg.vocabMap.size() * sizeof(int64_t));
		writerPersist(mapDst, cfg.vocabMap.size() * sizeof(int64_t));
	}
	auto g = committedGeneration();
	if (!g)
		return g.status();
	uint64_t newGen = *g + 1;

	PersistFn persist = writerPersistFn();
	// 2. Body under a free state word, persist; then the state word, persist.
	auto publishEntry = [&](uint32_t slot, EntryKind kind, const void *body, size_t bodyLen) {
		writeEntry(entry(slot), kind, newGen, body, bodyLen, persist);
	};
	if (modelSlot) {
		ModelBody mb;
		fillModelBody(mb, cfg, fp, mapOffset);
		publishEntry(*modelSlot, EntryKind::Model, &mb, sizeof(mb));
	}
	TableBody tb;
	std::memset(&tb, 0, sizeof(tb));
	setFixedString(tb.name, sizeof(tb.name), name);
	setFixedString(tb.model, sizeof(tb.model), cfg.name);
	tb.modelFingerprint = fp;
	tb.layerId = req.layerId;
	tb.dtype = (uint32_t)f.dtype;
	tb.valuesPerRow = f.valuesPerRow;
	tb.scaleDtype = (uint32_t)f.scaleDtype;
	tb.scalesPerRow = f.scalesPerRow();
	tb.rowBytes = f.rowBytes();
	tb.rowStride = (uint32_t)stride;
	tb.layout = (uint32_t)req.layout;
	tb.scalesOffset = scalesOffset;
	tb.rows = req.rows;
	tb.dataOffset = *off;
	tb.extentBytes = extent;
	tb.dataBytes = dataBytes;
	tb.dataXxh3 = *checksum;
	tb.importTimeNs = nowRealtimeNs();
	publishEntry(*tableSlot, EntryKind::Table, &tb, sizeof(tb));

	ImportResult res;
	if (old) {
		publishWord(&entry(old->slot)->removedWord, encodeRemovedWord(newGen), persist);
		res.replacedSlot = old->slot;
	}
	// 3. The commit point.
	EP_TRY(commit(newGen));
	res.generation = newGen;
	auto after = snapshot();
	if (!after)
		return after.status();
	// Published and committed, but a damaged pool can still leave it out of the snapshot
	// (quarantined): report that instead of reading a table that is not there.
	const TableInfo *published = after->findTable(name);
	if (!published)
		return makeError(EP_E_CORRUPT, "import '" + name + "': committed in generation " + std::to_string(newGen) +
						       " but not readable back from the catalog; run 'engrampool verify'");
	res.table = *published;
	if (auto r = reclaim(); !r)
		return r.status();
	return res;
}

Status Pool::removeTable(const std::string &name)
{
	if (!writer_)
		return makeError(-EPERM, "rm needs the pool opened for writing");
	auto snap = snapshot();
	if (!snap)
		return snap.status();
	const TableInfo *t = snap->findTable(name);
	if (!t) {
		// A quarantined table is removed by the name its entry still carries.
		for (auto &p : snap->problems)
			if (p.kind == "table" && p.name == name)
				return removeSlot(p.slot);
		return makeError(-ENOENT, "no table named '" + name + "' in the pool");
	}
	uint64_t newGen = snap->generation + 1;
	PersistFn persist = writerPersistFn();
	publishWord(&entry(t->slot)->removedWord, encodeRemovedWord(newGen), persist);
	// The model goes with its last table.
	bool lastOfModel = std::count_if(snap->tables.begin(), snap->tables.end(),
					 [&](const TableInfo &x) { return x.model == t->model; }) == 1;
	if (lastOfModel) {
		if (const ModelRecord *m = snap->findModel(t->model))
			publishWord(&entry(m->slot)->removedWord, encodeRemovedWord(newGen), persist);
	}
	EP_TRY(commit(newGen));
	auto r = reclaim();
	return r ? Status::ok() : r.status();
}

Status Pool::removeSlot(uint32_t slot)
{
	if (!writer_)
		return makeError(-EPERM, "rm needs the pool opened for writing");
	if (slot >= kCatalogSlots)
		return errorf(-EINVAL, "catalog slot %u is outside [0, %u)", slot, kCatalogSlots);
	auto g = committedGeneration();
	if (!g)
		return g.status();
	CatalogEntry *e = entry(slot);
	EntryView v = inspectEntry(entryCopy(slot), slot, *g);
	PersistFn persist = writerPersistFn();
	if (v.state == SlotState::Free)
		return errorf(-ENOENT, "catalog slot %u is free", slot);
	if (v.state == SlotState::Removed)
		return errorf(-ENOENT, "catalog slot %u is already removed (generation %llu); 'engrampool gc' frees it",
			      slot, (unsigned long long)v.removedGen);
	uint64_t newGen = *g + 1;
	if (!v.stateWordOk) {
		// Nobody reads a slot whose state word is unreadable: clear it.
		publishWord(&e->stateWord, 0, persist);
	} else {
		publishWord(&e->removedWord, encodeRemovedWord(newGen), persist);
	}
	EP_TRY(commit(newGen));
	auto r = reclaim();
	return r ? Status::ok() : r.status();
}

void Pool::clearStableCorruptHostSlots()
{
	std::vector<std::pair<uint32_t, HostSlot>> seen;
	for (uint32_t i = 0; i < kHostSlots; i++) {
		HostSlot copy;
		if (readHostSlotSettled(i, copy) == HostSlotRead::Corrupt)
			seen.emplace_back(i, copy);
	}
	if (seen.empty())
		return;
	// An owner rewrites its slot in microseconds: a slot that stays corrupt and
	// unchanged across this pause is garbage, not a write in progress.
	std::this_thread::sleep_for(std::chrono::milliseconds(50));
	for (auto &[i, before] : seen) {
		HostSlot now;
		if (readHostSlotSettled(i, now) == HostSlotRead::Corrupt && std::memcmp(&now, &before, sizeof(now)) == 0)
			(void)writeHostSlot(i, HostSlot{});
	}
}

Result<std::vector<std::string>> Pool::repair()
{
	if (!writer_)
		return makeError(-EPERM, "repair needs the pool opened for writing");
	std::vector<std::string> done;
	PersistFn persist = writerPersistFn();
	// Master records: a corrupted record beside a valid one is rewritten from it.
	{
		auto *recs = reinterpret_cast<MasterRecord *>(region_->base() + kMasterOffset);
		region_->invalidate(recs, 2 * sizeof(MasterRecord));
		MasterRecord copy[2];
		std::memcpy(copy, recs, sizeof(copy));
		int cur = currentMaster(copy);
		int other = 1 - cur;
		static const MasterRecord zero{};
		if (cur >= 0 && !masterValid(copy[other]) && std::memcmp(&copy[other], &zero, sizeof(zero)) != 0) {
			std::memcpy(&recs[other], &copy[cur], sizeof(MasterRecord));
			writerPersist(&recs[other], sizeof(MasterRecord));
			done.push_back(std::string("master record ") + (other ? "B" : "A") + ": rewritten from record " +
				       (cur ? "B" : "A"));
		}
	}
	auto snap = snapshot();
	if (!snap)
		return snap.status();
	uint64_t G = snap->generation, newGen = G + 1;
	bool publish = false;
	std::set<uint32_t> handled;
	for (const CatalogProblem &p : snap->problems) {
		if (!handled.insert(p.slot).second)
			continue;
		CatalogEntry *e = entry(p.slot);
		CatalogEntry copy = entryCopy(p.slot);
		EntryView v = inspectEntry(copy, p.slot, G);
		std::string what = "catalog slot " + std::to_string(p.slot) +
				   (v.name.empty() ? "" : " ('" + v.name + "')");
		if (!v.stateWordOk) {
			if (v.bodyOk && copy.createdGen <= G) {
				publishWord(&e->stateWord, stateWordFromBody(copy), persist);
				done.push_back(what + ": state word restored from the entry (generation " +
					       std::to_string(copy.createdGen) + ")");
				v = inspectEntry(copy = entryCopy(p.slot), p.slot, G);
			} else {
				publishWord(&e->stateWord, 0, persist);
				done.push_back(what + ": unreadable entry cleared" +
					       (copy.stateWord == 0 ? "" : " (whatever it held is lost; re-import it)"));
				continue;
			}
		}
		if (!v.removedWordOk) {
			// Live again unless another visible entry has taken its name.
			bool taken = false;
			for (auto &t : snap->tables)
				taken |= t.name == v.name;
			for (auto &m : snap->models)
				taken |= m.name == v.name && v.kind == EntryKind::Model;
			if (taken) {
				publishWord(&e->removedWord, encodeRemovedWord(newGen), persist);
				publish = true;
				done.push_back(what + ": removal word rewritten: removed (its name is in use)");
			} else {
				publishWord(&e->removedWord, 0, persist);
				publish = true;
				done.push_back(what + ": removal word rewritten: live");
			}
			v = inspectEntry(copy = entryCopy(p.slot), p.slot, G);
		}
		bool wordsFixed = !done.empty() && done.back().rfind(what, 0) == 0;
		if (v.state == SlotState::Visible && wordsFixed)
			continue; // the words were the damage (a consistency problem left shows in the next verify)
		if (v.state == SlotState::Visible || v.state == SlotState::Corrupt) {
			// A corrupted body, or a table that disagrees with the catalog: unpublish.
			publishWord(&e->removedWord, encodeRemovedWord(newGen), persist);
			publish = true;
			done.push_back(what + ": unpublished (" + p.problem + "); re-import it");
		}
	}
	if (publish)
		EP_TRY(commit(newGen));
	auto r = reclaim();
	if (!r)
		return r.status();
	return done;
}

Status Pool::takeMaster(const std::string &uriText, uint32_t lockWaitMs)
{
	auto uri = parseRegionUri(uriText);
	if (!uri)
		return uri.status();
	auto region = Region::open(*uri, true);
	if (!region)
		return region.status();
	std::unique_ptr<Pool> p(new Pool());
	p->region_ = std::move(region.value());
	std::memcpy(&p->sb_, p->region_->base(), sizeof(Superblock));
	EP_TRY(validateSuperblock(p->sb_, p->region_->size()));
	EP_TRY(p->lockWriter(lockWaitMs));
	auto *recs = reinterpret_cast<MasterRecord *>(p->region_->base() + kMasterOffset);
	p->region_->invalidate(recs, 2 * sizeof(MasterRecord));
	MasterRecord rec[2];
	std::memcpy(rec, recs, sizeof(rec));
	int cur = currentMaster(rec);
	uint64_t epoch = cur >= 0 ? rec[cur].epoch + 1 : 1;
	MasterRecord m = makeMaster(localHostId(), epoch, localHostName(), nowRealtimeNs());
	writeMaster(recs, m, [&](const void *q, size_t n) { p->region_->persist(q, n); });
	return Status::ok();
}

} // namespace engrampool
