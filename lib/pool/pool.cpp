// SPDX-License-Identifier: Apache-2.0
// pool.cpp - create/open, catalog snapshots and validation, verify, host slots.
// The writer side (import, remove, reclaim, mastership) is in writer.cpp.
#include "pool/pool.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <thread>
#include <sys/file.h>
#include <sys/stat.h>

#include "format/records.hpp"
#include "hashing/primes.hpp"
#include "model/widen.hpp"
#include "util/cacheops.hpp"
#include "util/checksum.hpp"
#include "util/units.hpp"

namespace engrampool {

using namespace format;

const TableInfo *Snapshot::findTable(const std::string &name) const
{
	for (auto &t : tables)
		if (t.name == name)
			return &t;
	return nullptr;
}

const ModelRecord *Snapshot::findModel(const std::string &name) const
{
	for (auto &m : models)
		if (m.name == name)
			return &m;
	return nullptr;
}

std::string defaultTableName(const std::string &model, uint32_t layerId)
{
	return model + "/layer" + std::to_string(layerId);
}

static_assert(sizeof(ep_table_info::name) == sizeof(TableBody::name), "the C ABI carries table names in full");
static_assert(sizeof(ep_table_info::model) >= sizeof(TableBody::model), "the C ABI carries model names in full");

void toCInfo(const TableInfo &t, ep_table_info &o)
{
	std::memset(&o, 0, sizeof(o));
	setFixedString(o.name, sizeof(o.name), t.name);
	setFixedString(o.model, sizeof(o.model), t.model);
	o.model_fingerprint = t.modelFingerprint;
	o.layer_id = t.layerId;
	o.dtype = (uint32_t)t.format.dtype;
	o.values_per_row = t.format.valuesPerRow;
	o.scale_dtype = (uint32_t)t.format.scaleDtype;
	o.scales_per_row = t.format.scalesPerRow();
	o.row_bytes = t.rowBytes;
	o.row_stride = t.rowStride;
	o.layout = (uint32_t)t.layout;
	o.rows = t.rows;
	o.data_offset = t.dataOffset;
	o.data_bytes = t.dataBytes;
	o.data_xxh3 = t.dataXxh3;
	o.generation = t.generation;
}

Pool::~Pool() = default;

CatalogEntry *Pool::entry(uint32_t i) const
{
	return reinterpret_cast<CatalogEntry *>(region_->base() + kCatalogOffset + (uint64_t)i * kEntrySize);
}

CatalogEntry Pool::entryCopy(uint32_t i) const
{
	const CatalogEntry *e = entry(i);
	region_->invalidate(e, sizeof(*e));
	CatalogEntry copy;
	std::memcpy(&copy, e, sizeof(copy));
	return copy;
}

HostSlot *Pool::hostSlot(uint32_t i) const
{
	return reinterpret_cast<HostSlot *>(region_->base() + kHostsOffset + (uint64_t)i * kHostSlotSize);
}

Status Pool::create(const std::string &uriText, const CreateOptions &opts, uint32_t leaseMs)
{
	// Agents renew every max(10 ms, lease / 4): a shorter lease expires between renewals,
	// so live hosts would show as expired and be reclaimed under them.
	constexpr uint32_t kMinLeaseMs = 100;
	if (leaseMs < kMinLeaseMs)
		return errorf(-EINVAL, "host lease of %u ms is too short: it must be at least %u ms", leaseMs, kMinLeaseMs);
	auto uri = parseRegionUri(uriText);
	if (!uri)
		return uri.status();
	if (!opts.force) {
		// Never format over a pool (or, for file:, over any non-empty file) by accident.
		if (auto existing = Region::open(*uri, false); existing) {
			if (std::memcmp((*existing)->base(), kMagic, sizeof(kMagic)) == 0)
				return makeError(-EEXIST, uriText + " already holds a pool; format it again only with force "
								    "(destroys its tables)");
			if (uri->kind == RegionKind::File)
				return makeError(-EEXIST, uri->path + " exists and is not an engrampool pool; overwrite it "
									 "only with force");
		} else if (uri->kind == RegionKind::File && existing.code() != -ENOENT) {
			struct stat st;
			if (stat(uri->path.c_str(), &st) == 0 && st.st_size > 0)
				return makeError(-EEXIST, uri->path + " exists and is not an engrampool pool; overwrite it "
									 "only with force");
		}
	} else if (uri->kind == RegionKind::Emul) {
		(void)Region::destroy(*uri);
	}
	auto region = Region::create(*uri, opts);
	if (!region)
		return region.status();
	Region &r = **region;
	// Formatting is a write: never under an active writer on this host.
	if (flock(r.fd(), LOCK_EX | LOCK_NB) != 0)
		return makeError(-EBUSY, uriText + ": a writer holds the pool's lock; stop it before formatting");
	uint8_t *base = r.base();
	// Metadata area first (zeroed), superblock last: a crash mid-create leaves no magic.
	std::memset(base + sizeof(Superblock), 0, kDataOffset - sizeof(Superblock));
	PersistFn persist = [&r](const void *p, size_t n) { r.persist(p, n); };
	MasterRecord m = makeMaster(localHostId(), 1, localHostName(), nowRealtimeNs());
	writeMaster(reinterpret_cast<MasterRecord *>(base + kMasterOffset), m, persist);
	publishWord(reinterpret_cast<uint64_t *>(base + kGenWordOffset), encodeGenWord(1), persist);
	r.persist(base + sizeof(Superblock), kDataOffset - sizeof(Superblock));
	Superblock sb = makeSuperblock(r.size(), randomUuid(), leaseMs);
	sb.createTimeNs = nowRealtimeNs();
	sb.crc = superblockCrc(sb);
	std::memcpy(base, &sb, sizeof(sb));
	r.persist(base, sizeof(sb));
	return Status::ok();
}

Result<std::unique_ptr<Pool>> Pool::open(const std::string &uriText, const OpenOptions &opts)
{
	auto uri = parseRegionUri(uriText);
	if (!uri)
		return uri.status();
	auto region = Region::open(*uri, opts.write);
	if (!region)
		return region.status();
	std::unique_ptr<Pool> p(new Pool());
	p->region_ = std::move(region.value());
	p->region_->invalidate(p->region_->base(), sizeof(Superblock));
	std::memcpy(&p->sb_, p->region_->base(), sizeof(Superblock));
	if (Status s = validateSuperblock(p->sb_, p->region_->size()); !s)
		return std::move(s).context(uriText + ": ");
	if (auto g = p->committedGeneration(); !g)
		return std::move(g.status()).context(uriText + ": ");
	if (opts.write) {
		EP_TRY(p->lockWriter(opts.lockWaitMs));
		EP_TRY(p->checkMaster());
		p->writer_ = true;
		EP_TRY(p->recover());
	}
	return p;
}

Result<uint64_t> Pool::committedGeneration() const
{
	const auto *w = reinterpret_cast<const volatile uint64_t *>(region_->base() + kGenWordOffset);
	region_->invalidate((const void *)w, 8);
	auto g = decodeGenWord(loadWord(const_cast<const uint64_t *>(w)));
	if (!g)
		return makeError(EP_E_CORRUPT, "the committed-generation word is corrupted");
	return *g;
}

Result<MasterInfo> Pool::master() const
{
	const uint8_t *p = region_->base() + kMasterOffset;
	region_->invalidate(p, 2 * sizeof(MasterRecord));
	MasterRecord rec[2];
	std::memcpy(rec, p, sizeof(rec));
	int cur = currentMaster(rec);
	if (cur < 0)
		return makeError(EP_E_CORRUPT, "both master records are corrupted; if this host should be the master, "
					       "run 'engrampool master --take URI'");
	const MasterRecord *best = &rec[cur];
	MasterInfo mi;
	std::memcpy(mi.host.data(), best->hostUuid, 16);
	mi.epoch = best->epoch;
	mi.takeTimeNs = best->takeTimeNs;
	mi.hostname = fixedString(best->hostname, sizeof(best->hostname));
	return mi;
}

namespace {

TableInfo tableFromBody(const TableBody &b, uint64_t gen, uint32_t slot)
{
	TableInfo t;
	t.name = fixedString(b.name, sizeof(b.name));
	t.model = fixedString(b.model, sizeof(b.model));
	t.modelFingerprint = b.modelFingerprint;
	t.layerId = b.layerId;
	t.format.dtype = (Dtype)b.dtype;
	t.format.valuesPerRow = b.valuesPerRow;
	t.format.scaleDtype = (Dtype)b.scaleDtype;
	t.format.scaleBlock = b.scalesPerRow ? b.valuesPerRow / b.scalesPerRow : 0;
	t.format.rowAlign = b.layout == 0 && b.rowStride != b.rowBytes ? b.rowStride : 0;
	t.layout = (TableLayout)b.layout; // validateTableBody accepted it
	t.scalesOffset = b.scalesOffset;
	t.rowBytes = b.rowBytes;
	t.rowStride = b.rowStride;
	t.rows = b.rows;
	t.dataOffset = b.dataOffset;
	t.extentBytes = b.extentBytes;
	t.dataBytes = b.dataBytes;
	t.dataXxh3 = b.dataXxh3;
	t.generation = gen;
	t.importTimeNs = b.importTimeNs;
	t.slot = slot;
	return t;
}

// The name of a damaged entry is shown only when its bytes still look like a name.
std::string plausibleName(const std::string &name, bool bodyOk)
{
	if (bodyOk)
		return name;
	if (name.empty())
		return "";
	for (unsigned char c : name)
		if (c < 0x20 || c > 0x7e)
			return "";
	return name;
}

} // namespace

Status Pool::readSnapshotOnce(Snapshot &out, bool &retry) const
{
	retry = false;
	auto g1 = committedGeneration();
	if (!g1)
		return g1.status();
	const uint8_t *cat = region_->base() + kCatalogOffset;
	size_t catBytes = (size_t)kCatalogSlots * kEntrySize;
	region_->invalidate(cat, catBytes);
	std::vector<CatalogEntry> copy(kCatalogSlots);
	std::memcpy(copy.data(), cat, catBytes);
	auto g2 = committedGeneration();
	if (!g2)
		return g2.status();
	if (*g1 != *g2) {
		retry = true;
		return Status::ok();
	}
	uint64_t G = *g1;
	Snapshot s;
	s.generation = G;
	auto kindName = [](EntryKind k) { return k == EntryKind::Table ? "table" : k == EntryKind::Model ? "model" : "slot"; };
	struct Held {
		uint64_t off, len;
		uint32_t slot;
	};
	std::vector<Held> extents; // every extent still held
	// A model entry's stored token map holds its extent like a table's data.
	auto holdMap = [&](const CatalogEntry &e, uint32_t i) {
		if (e.kind == (uint32_t)EntryKind::Model && hasStoredMap(e.model) && validateModelMap(e.model, sb_)) {
			extents.push_back({e.model.vocabMapOffset, e.model.vocabMapExtentBytes, i});
			s.usedBytes += e.model.vocabMapExtentBytes;
		}
	};
	for (uint32_t i = 0; i < kCatalogSlots; i++) {
		const CatalogEntry &e = copy[i];
		EntryView v = inspectEntry(e, i, G);
		switch (v.state) {
		case SlotState::Free:
			s.freeSlots++;
			continue;
		case SlotState::Pending:
			continue; // being written by the writer, not committed
		case SlotState::Corrupt:
			// Quarantined. Its extent stays held if its body still names a sane one.
			if (v.bodyOk && e.kind == (uint32_t)EntryKind::Table && validateTableBody(e.table, sb_)) {
				extents.push_back({e.table.dataOffset, e.table.extentBytes, i});
				s.usedBytes += e.table.extentBytes;
			}
			if (v.bodyOk)
				holdMap(e, i);
			s.problems.push_back({i, v.stateWordOk ? kindName(v.kind) : "slot", plausibleName(v.name, v.bodyOk),
					      v.bodyOk, "catalog slot " + std::to_string(i) + ": " + v.problem});
			continue;
		case SlotState::Removed:
			if (v.kind == EntryKind::Table && v.bodyOk && validateTableBody(e.table, sb_)) {
				extents.push_back({e.table.dataOffset, e.table.extentBytes, i});
				s.usedBytes += e.table.extentBytes;
				s.pendingReclaim++;
			}
			if (v.kind == EntryKind::Model && v.bodyOk)
				holdMap(e, i);
			continue;
		case SlotState::Visible:
			break;
		}
		if (v.kind == EntryKind::Table) {
			if (Status st = validateTableBody(e.table, sb_); !st) {
				s.problems.push_back({i, "table", v.name, true, "catalog slot " + std::to_string(i) + ": " + st.message()});
				continue;
			}
			extents.push_back({e.table.dataOffset, e.table.extentBytes, i});
			s.usedBytes += e.table.extentBytes;
			s.tables.push_back(tableFromBody(e.table, v.createdGen, i));
		} else {
			// A model whose stored token map is out of bounds is corrupt: quarantined, and
			// its tables with it (they refer to a model the snapshot does not hold).
			if (Status st = validateModelMap(e.model, sb_); !st) {
				s.problems.push_back({i, "model", v.name, true, "catalog slot " + std::to_string(i) + ": " + st.message()});
				continue;
			}
			holdMap(e, i);
			ModelRecord m;
			m.name = v.name;
			m.fingerprint = e.model.fingerprint;
			m.generation = v.createdGen;
			m.slot = i;
			m.body = e.model;
			s.models.push_back(std::move(m));
		}
	}
	// Cross-entry checks. Each failure quarantines the tables involved, not the pool.
	std::set<uint32_t> bad;
	auto quarantine = [&](const TableInfo &t, const std::string &why) {
		if (bad.insert(t.slot).second)
			s.problems.push_back({t.slot, "table", t.name, true, "table '" + t.name + "': " + why});
	};
	auto bySlot = [&](uint32_t slot) -> const TableInfo * {
		for (auto &t : s.tables)
			if (t.slot == slot)
				return &t;
		return nullptr;
	};
	std::set<uint32_t> badModels;
	auto quarantineModel = [&](uint32_t slot, const std::string &why) {
		for (auto &m : s.models)
			if (m.slot == slot && badModels.insert(slot).second)
				s.problems.push_back({slot, "model", m.name, true, "model '" + m.name + "': " + why});
	};
	std::sort(extents.begin(), extents.end(), [](auto &a, auto &b) { return a.off < b.off; });
	for (size_t i = 1; i < extents.size(); i++) {
		for (size_t j = i; j-- > 0;) {
			if (extents[j].off + extents[j].len <= extents[i].off)
				continue;
			std::string why = "its data overlaps another catalog entry's at offset " + std::to_string(extents[i].off);
			if (auto *a = bySlot(extents[i].slot))
				quarantine(*a, why);
			if (auto *b = bySlot(extents[j].slot))
				quarantine(*b, why);
			const std::string mapWhy =
				"its token map overlaps another catalog entry's extent at offset " + std::to_string(extents[i].off);
			quarantineModel(extents[i].slot, mapWhy);
			quarantineModel(extents[j].slot, mapWhy);
		}
	}
	std::map<std::string, uint32_t> quarantinedModels; // name -> slot, for the tables' message
	for (auto &p : s.problems)
		if (p.kind == "model" && p.nameTrusted)
			quarantinedModels.emplace(p.name, p.slot);
	if (!badModels.empty())
		s.models.erase(std::remove_if(s.models.begin(), s.models.end(),
					      [&](const ModelRecord &m) { return badModels.count(m.slot) != 0; }),
			       s.models.end());
	std::map<std::string, std::vector<const TableInfo *>> byName;
	for (auto &t : s.tables)
		byName[t.name].push_back(&t);
	for (auto &[name, list] : byName)
		if (list.size() > 1)
			for (auto *t : list)
				quarantine(*t, "the name appears in " + std::to_string(list.size()) + " catalog slots");
	std::map<std::string, int> modelCount;
	for (auto &m : s.models)
		modelCount[m.name]++;
	for (auto &t : s.tables) {
		const ModelRecord *m = s.findModel(t.model);
		if (!m) {
			auto q = quarantinedModels.find(t.model);
			quarantine(t, q == quarantinedModels.end()
					      ? "refers to missing model '" + t.model + "'"
					      : "its model '" + t.model + "' is quarantined (catalog slot " +
							std::to_string(q->second) + ")");
			continue;
		}
		if (modelCount[t.model] > 1) {
			quarantine(t, "its model '" + t.model + "' appears in more than one catalog slot");
			continue;
		}
		const ModelBody &b = m->body;
		bool inModel = false;
		for (uint32_t k = 0; k < std::min<uint32_t>(b.layerCount, kMaxLayers); k++)
			inModel |= b.layerIds[k] == t.layerId;
		if (t.modelFingerprint != m->fingerprint)
			quarantine(t, "model fingerprint " + fingerprintHex(t.modelFingerprint) + " differs from model '" +
					      t.model + "' (" + fingerprintHex(m->fingerprint) + ")");
		else if (!inModel)
			quarantine(t, "layer " + std::to_string(t.layerId) + " is not one of model '" + t.model + "''s layers");
		else if ((uint32_t)t.format.dtype != b.dtype || t.format.valuesPerRow != b.valuesPerRow ||
			 (uint32_t)t.format.scaleDtype != b.scaleDtype ||
			 (b.scaleBlock && t.format.scaleBlock != b.scaleBlock))
			quarantine(t, "row format (dtype " + std::to_string((uint32_t)t.format.dtype) + ", " +
					      std::to_string(t.format.valuesPerRow) + " values) differs from model '" + t.model +
					      "' (dtype " + std::to_string(b.dtype) + ", " + std::to_string(b.valuesPerRow) +
					      " values)");
	}
	if (!bad.empty())
		s.tables.erase(std::remove_if(s.tables.begin(), s.tables.end(),
					      [&](const TableInfo &t) { return bad.count(t.slot) != 0; }),
			       s.tables.end());
	if (!s.problems.empty())
		retry = true; // re-read a few times before believing it (a writer may be mid-publish)
	out = std::move(s);
	return Status::ok();
}

Result<Snapshot> Pool::snapshot() const
{
	Status last;
	for (int attempt = 0; attempt < 200; attempt++) {
		Snapshot s;
		bool retry = false;
		Status st = readSnapshotOnce(s, retry);
		if (st.isOk() && (!retry || (!s.problems.empty() && attempt >= 3)))
			return s; // problems that persist across re-reads are real: quarantined
		if (!st.isOk()) {
			last = st;
			// A corrupted entry that stays corrupted across retries is real.
			if (!retry || attempt >= 5)
				return last;
		}
		std::this_thread::sleep_for(std::chrono::microseconds(attempt < 10 ? 50 : 1000));
	}
	if (!last.isOk())
		return last;
	return makeError(EP_E_RETRY, "the catalog kept changing while reading it (a busy writer); retry");
}

const char *layoutName(TableLayout l)
{
	return l == TableLayout::Planar ? "planar" : "packed";
}

Result<TableLayout> parseLayout(const std::string &s)
{
	if (s == "packed")
		return TableLayout::Packed;
	if (s == "planar")
		return TableLayout::Planar;
	return makeError(-EINVAL, "unknown layout '" + s + "' (expected packed or planar)");
}

uint64_t outputRowBytes(const RowFormat &f, int outFormat)
{
	switch (outFormat) {
	case EP_OUT_PACKED: return f.rowBytes();
	case EP_OUT_VALUES: return f.valueBytes();
	case EP_OUT_SCALES: return f.scaleBytes();
	case EP_OUT_F32: return (uint64_t)f.valuesPerRow * 4;
	case EP_OUT_BF16: return (uint64_t)f.valuesPerRow * 2;
	case EP_OUT_PLANES: return f.scaleBytes() ? f.rowBytes() : 0;
	default: return 0;
	}
}

TablePlanes Pool::tablePlanes(const TableInfo &t) const
{
	TablePlanes p;
	p.values = region_->base() + t.dataOffset;
	if (t.planar()) {
		p.valuesPitch = t.valueBytes();
		p.scales = region_->base() + t.scalesOffset;
		p.scalesPitch = t.scaleBytes();
	} else {
		p.valuesPitch = t.rowStride;
		p.scales = t.scaleBytes() ? p.values + t.valueBytes() : nullptr;
		p.scalesPitch = p.scales ? t.rowStride : 0;
	}
	return p;
}

Result<std::pair<uint64_t, uint64_t>> Pool::headRows(const Snapshot &s, const TableInfo &t, uint32_t h0,
						     uint32_t h1) const
{
	const ModelRecord *m = s.findModel(t.model);
	if (!m)
		return makeError(EP_E_MODEL, "table '" + t.name + "': its model '" + t.model + "' has no record in the pool");
	const ModelBody &b = m->body;
	// The record is CRC-checked but still bounded here: the prime walk must stay short.
	if (b.maxNgramSize < 2 || b.maxNgramSize > kMaxNgramSize || b.nHeadPerNgram == 0 || b.nHeadPerNgram > 4096 ||
	    b.layerCount == 0 || b.layerCount > kMaxLayers)
		return makeError(EP_E_MODEL, "model record '" + t.model + "': n-gram size " + std::to_string(b.maxNgramSize) +
						     ", " + std::to_string(b.nHeadPerNgram) + " heads per n-gram, " +
						     std::to_string(b.layerCount) + " layers: outside what a model may have");
	ModelConfig c;
	c.maxNgramSize = b.maxNgramSize;
	c.nHeadPerNgram = b.nHeadPerNgram;
	for (uint32_t o = 0; o < c.orders(); o++) {
		if (b.engramVocabSize[o] == 0 || b.engramVocabSize[o] > (1ull << 62))
			return makeError(EP_E_MODEL, "model record '" + t.model + "': vocabulary size " +
							     std::to_string(b.engramVocabSize[o]) + " of order " +
							     std::to_string(o + 2) + " is out of range");
		c.engramVocabSize.push_back(b.engramVocabSize[o]);
	}
	size_t layer = b.layerCount;
	for (uint32_t k = 0; k < b.layerCount; k++) {
		c.layerIds.push_back(b.layerIds[k]);
		if (b.layerIds[k] == t.layerId && layer == b.layerCount)
			layer = k;
	}
	if (layer == b.layerCount)
		return makeError(EP_E_MODEL, "table '" + t.name + "': layer " + std::to_string(t.layerId) +
						     " is not in its model's record");
	const uint32_t heads = c.headsPerLayer();
	if (h0 == 0 && h1 == 0)
		h1 = heads;
	if (h0 > h1 || h1 > heads)
		return errorf(-EINVAL, "head range [%u, %u) is not inside the %u heads of table '%s'", h0, h1, heads,
			      t.name.c_str());
	auto primes = hashing::headPrimes(c);
	uint64_t begin = 0, end = 0, sum = 0;
	uint32_t h = 0;
	for (const auto &order : primes[layer])
		for (uint64_t p : order) {
			if (h == h0)
				begin = sum;
			sum += p;
			h++;
			if (h == h1)
				end = sum;
		}
	if (h0 == h1)
		end = begin = h0 == heads ? sum : begin;
	if (sum != t.rows)
		return errorf(EP_E_MODEL, "table '%s': its model's head primes add up to %llu rows, the table has %llu",
			      t.name.c_str(), (unsigned long long)sum, (unsigned long long)t.rows);
	return std::make_pair(begin, end);
}

Status Pool::readRows(const TableInfo &t, const uint64_t *rows, size_t n, void *dst, size_t dstBytes) const
{
	if (dstBytes / t.rowBytes < n) // -EINVAL here as before (ep_pool_read_rows); readRowsAs: -ENOSPC
		return errorf(-EINVAL, "destination holds %zu bytes, %zu rows of %u bytes need %zu", dstBytes, n, t.rowBytes,
			      n * (size_t)t.rowBytes);
	return readRowsAs(t, rows, n, EP_OUT_PACKED, dst, dstBytes);
}

Status Pool::readRowsAs(const TableInfo &t, const uint64_t *rows, size_t n, int outFormat, void *dst,
			size_t dstBytes) const
{
	const uint64_t outRow = outputRowBytes(t.format, outFormat);
	if (outRow == 0)
		return errorf(-EINVAL, "output format %d does not apply to table '%s' (%s): expected 0 packed, 1 values, "
				       "2 scales, 3 f32, 4 bf16 or 5 planes (scales and planes need a scale block)",
			      outFormat, t.name.c_str(), t.format.describe().c_str());
	if (dstBytes / outRow < n)
		return errorf(-ENOSPC, "destination holds %zu bytes, %zu rows of %llu bytes need %llu", dstBytes, n,
			      (unsigned long long)outRow, (unsigned long long)(n * outRow));
	for (size_t i = 0; i < n; i++)
		if (rows[i] >= t.rows)
			return errorf(-ERANGE, "row %llu is outside table '%s' (%llu rows)", (unsigned long long)rows[i],
				      t.name.c_str(), (unsigned long long)t.rows);
	const TablePlanes p = tablePlanes(t);
	const uint32_t vb = t.valueBytes(), sbytes = t.scaleBytes();
	auto *out = static_cast<uint8_t *>(dst);
	std::vector<float> tmp(outFormat == EP_OUT_BF16 ? t.format.valuesPerRow : 0);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *v = p.values + rows[i] * p.valuesPitch;
		const uint8_t *sc = p.scales ? p.scales + rows[i] * p.scalesPitch : nullptr;
		switch (outFormat) {
		case EP_OUT_PACKED:
			std::memcpy(out + i * outRow, v, vb);
			if (sbytes)
				std::memcpy(out + i * outRow + vb, sc, sbytes);
			break;
		case EP_OUT_VALUES: std::memcpy(out + i * outRow, v, vb); break;
		case EP_OUT_SCALES: std::memcpy(out + i * outRow, sc, sbytes); break;
		case EP_OUT_PLANES:
			std::memcpy(out + i * vb, v, vb);
			std::memcpy(out + n * vb + i * sbytes, sc, sbytes);
			break;
		case EP_OUT_F32: {
			float *f = reinterpret_cast<float *>(out + i * outRow);
			if (reinterpret_cast<uintptr_t>(f) % alignof(float) == 0) {
				dequantizeRow(t.format, v, sc, f);
				break;
			}
			tmp.resize(t.format.valuesPerRow);
			dequantizeRow(t.format, v, sc, tmp.data());
			std::memcpy(f, tmp.data(), outRow);
			break;
		}
		case EP_OUT_BF16: {
			// The caller's buffer may be unaligned for uint16_t: convert, then copy.
			tmp.resize(t.format.valuesPerRow * 3 / 2 + 1);
			uint16_t *b = reinterpret_cast<uint16_t *>(tmp.data() + t.format.valuesPerRow);
			dequantizeRowBf16(t.format, v, sc, b, tmp.data());
			std::memcpy(out + i * outRow, b, outRow);
			break;
		}
		}
	}
	return Status::ok();
}

Result<std::vector<VerifyReport>> Pool::verify(const std::string &name) const
{
	auto s = snapshot();
	if (!s)
		return s.status();
	auto hashTable = [&](const TableInfo &t) {
		// Packed: the table's bytes. Planar: its rows packed again (values then scales of
		// each row) a bounded chunk at a time, so a table has one checksum in either layout.
		Xxh3Stream h;
		if (t.planar()) {
			const uint64_t vb = t.valueBytes(), sb = t.scaleBytes(), rb = vb + sb;
			const uint64_t chunkRows = std::max<uint64_t>(1, (8ull << 20) / rb);
			std::vector<uint8_t> buf(chunkRows * rb);
			const uint8_t *values = tableData(t), *scales = region_->base() + t.scalesOffset;
			for (uint64_t r = 0; r < t.rows; r += chunkRows) {
				uint64_t n = std::min(chunkRows, t.rows - r);
				region_->invalidate(values + r * vb, n * vb);
				region_->invalidate(scales + r * sb, n * sb);
				for (uint64_t i = 0; i < n; i++) {
					std::memcpy(buf.data() + i * rb, values + (r + i) * vb, vb);
					std::memcpy(buf.data() + i * rb + vb, scales + (r + i) * sb, sb);
				}
				h.update(buf.data(), n * rb);
			}
		} else {
			const uint8_t *p = tableData(t);
			const uint64_t chunk = 8 << 20;
			for (uint64_t off = 0; off < t.dataBytes; off += chunk) {
				uint64_t len = std::min(chunk, t.dataBytes - off);
				region_->invalidate(p + off, len);
				h.update(p + off, len);
			}
		}
		return h.digest();
	};
	std::vector<VerifyReport> out;
	bool found = false;
	auto problem = [&](const std::string &object, const std::string &what, const std::string &why) {
		VerifyReport r;
		r.object = object;
		r.table = what;
		r.problem = why;
		out.push_back(std::move(r));
	};
	if (name.empty()) {
		// Master records: one bad record beside a valid one is a problem to repair;
		// two bad ones stop every writer.
		const uint8_t *mp = region_->base() + kMasterOffset;
		region_->invalidate(mp, 2 * sizeof(MasterRecord));
		MasterRecord rec[2];
		std::memcpy(rec, mp, sizeof(rec));
		static const MasterRecord zero{};
		int cur = currentMaster(rec);
		for (int i = 0; i < 2; i++)
			if (!masterValid(rec[i]) && std::memcmp(&rec[i], &zero, sizeof(zero)) != 0)
				problem("master", std::string("master record ") + (i ? "B" : "A"),
					cur < 0 ? "corrupted, and so is the other: no writer can publish; "
						  "'engrampool master --take' writes a new one"
						: "corrupted (the other record holds the master); 'verify --repair' rewrites it");
		if (cur < 0 && std::memcmp(&rec[0], &zero, sizeof(zero)) == 0 && std::memcmp(&rec[1], &zero, sizeof(zero)) == 0)
			problem("master", "master records", "both are empty: no master; 'engrampool master --take' sets one");
		for (auto &h : hosts()) {
			if (h.corrupt)
				problem("host", "host slot " + std::to_string(h.index),
					"corrupted (bad CRC or a torn rewrite); 'engrampool gc' clears it");
			else if (h.futureHeartbeat)
				problem("host", "host slot " + std::to_string(h.index),
					"heartbeat lies in the future (clock skew or a stray write): not trusted as live");
		}
	}
	for (const CatalogProblem &p : s->problems) {
		if (!name.empty() && p.name != name)
			continue;
		found = true;
		std::string what = p.nameTrusted && !p.name.empty() ? p.name : "catalog slot " + std::to_string(p.slot);
		problem(p.kind, what, p.problem + " (repair: 'engrampool verify --repair', or 'engrampool rm --slot " +
					      std::to_string(p.slot) + "')");
	}
	for (const TableInfo &first : s->tables) {
		if (!name.empty() && first.name != name)
			continue;
		found = true;
		TableInfo t = first;
		uint64_t gen = s->generation;
		VerifyReport r;
		r.table = t.name;
		r.layout = layoutName(t.layout);
		bool removed = false;
		for (int attempt = 0;; attempt++) {
			r.expected = t.dataXxh3;
			r.actual = hashTable(t);
			r.ok = r.actual == r.expected;
			if (r.ok)
				break;
			// This reader holds no host slot, so a table replaced or removed while it
			// was hashed may have had its space reclaimed and reused. A mismatch is
			// only real if the same version is still published.
			auto g = committedGeneration();
			if (!g)
				return g.status();
			if (*g == gen)
				break;
			auto s2 = snapshot();
			if (!s2)
				return s2.status();
			const TableInfo *t2 = s2->findTable(t.name);
			if (!t2) {
				removed = true;
				break;
			}
			if (t2->slot == t.slot && t2->generation == t.generation)
				break; // still published: published extents are never written
			if (attempt >= 20)
				return makeError(EP_E_RETRY, "table '" + t.name + "' kept being replaced during verify; retry");
			t = *t2;
			gen = s2->generation;
		}
		if (removed)
			continue;
		if (!r.ok)
			r.problem = "data checksum mismatch: stored " + fingerprintHex(r.expected) + ", computed " +
				    fingerprintHex(r.actual);
		out.push_back(std::move(r));
	}
	// Stored token maps: their checksum against the model record.
	for (const ModelRecord &m : s->models) {
		if (!name.empty() && m.name != name)
			continue;
		found |= !name.empty(); // a model without a stored map has nothing to check
		if (!m.tokenMapStored())
			continue;
		VerifyReport r;
		r.object = "model";
		r.tokenMap = true;
		r.table = m.name;
		r.expected = m.body.vocabMapHash;
		auto map = readStoredMap(m, &r.actual);
		r.ok = map.isOk();
		if (!r.ok) {
			// Removed and reused while read? tokenMap re-reads until the view is stable.
			auto again = tokenMap(m.name);
			if (!again && again.code() == -ENOENT)
				continue;
			r.ok = again.isOk();
			if (!r.ok)
				r.problem = "token map: " + again.status().message();
		}
		out.push_back(std::move(r));
	}
	if (!name.empty() && !found)
		return makeError(-ENOENT, "no table or model named '" + name + "' in the pool");
	return out;
}

namespace {

// The fingerprint of the model a record describes (modelFingerprint of its fields). The
// record is untrusted: counts are clamped, the arithmetic is unsigned.
uint64_t recordFingerprint(const ModelBody &b)
{
	ModelConfig c;
	c.maxNgramSize = b.maxNgramSize;
	const uint32_t orders = b.maxNgramSize >= 2 ? std::min(b.maxNgramSize - 1, kMaxNgramOrders) : 0;
	c.engramVocabSize.assign(b.engramVocabSize, b.engramVocabSize + orders);
	c.nEmbedPerNgram = b.nEmbedPerNgram;
	c.nHeadPerNgram = b.nHeadPerNgram;
	c.layerIds.assign(b.layerIds, b.layerIds + std::min(b.layerCount, kMaxLayers));
	c.padId = b.padId;
	c.seed = b.seed;
	c.tokenizerVocabSize = b.tokenizerVocabSize;
	c.compressedVocabSize = b.compressedVocabSize;
	c.vocabMapHash = b.vocabMapHash;
	c.clipOutOfVocab = b.clipOutOfVocab != 0;
	c.rowFormat.dtype = (Dtype)b.dtype;
	c.rowFormat.valuesPerRow = b.valuesPerRow;
	c.rowFormat.scaleDtype = (Dtype)b.scaleDtype;
	c.rowFormat.scaleBlock = b.scaleBlock;
	c.rowFormat.rowAlign = b.rowAlign;
	return modelFingerprint(c);
}

} // namespace

Result<std::vector<int64_t>> Pool::readStoredMap(const ModelRecord &m, uint64_t *actualHash) const
{
	// The snapshot validated the extent (validateModelMap): entries * 8 lies inside it.
	const ModelBody &b = m.body;
	if (actualHash)
		*actualHash = 0;
	// The map's checksum is one of the fields the model's fingerprint covers: a record
	// whose fields do not add up to its fingerprint vouches for no map.
	// (clipOutOfVocab is 0 or 1 in a record the writer made.)
	if (uint64_t fp = recordFingerprint(b); fp != m.fingerprint || b.clipOutOfVocab > 1)
		return makeError(EP_E_CORRUPT, "model '" + m.name + "': its record's fields (token map checksum " +
						       fingerprintHex(b.vocabMapHash) + " included) give fingerprint " +
						       fingerprintHex(fp) + ", the record says " + fingerprintHex(m.fingerprint) +
						       " (the record is damaged)");
	std::vector<int64_t> map(b.vocabMapEntries);
	const uint64_t bytes = b.vocabMapEntries * sizeof(int64_t);
	const uint8_t *src = region_->base() + b.vocabMapOffset;
	region_->invalidate(src, bytes);
	std::memcpy(map.data(), src, bytes); // little-endian on media, like every field of the format
	const uint64_t h = xxh3(map.data(), bytes);
	if (actualHash)
		*actualHash = h;
	if (h != b.vocabMapHash)
		return makeError(EP_E_CORRUPT, "model '" + m.name + "': the stored token map's checksum is " + fingerprintHex(h) +
						       ", its record says " + fingerprintHex(b.vocabMapHash) +
						       " (the map is damaged; re-import the model's tables)");
	for (size_t i = 0; i < map.size(); i++)
		if (map[i] < 0 || (uint64_t)map[i] >= b.compressedVocabSize)
			return errorf(EP_E_CORRUPT,
				      "model '%s': stored token map entry %zu is %lld, outside the compressed vocabulary "
				      "[0, %llu)",
				      m.name.c_str(), i, (long long)map[i], (unsigned long long)b.compressedVocabSize);
	return map;
}

Result<std::vector<int64_t>> Pool::tokenMap(const std::string &model) const
{
	for (int attempt = 0;; attempt++) {
		auto s = snapshot();
		if (!s)
			return s.status();
		const ModelRecord *m = s->findModel(model);
		if (!m) {
			for (const CatalogProblem &p : s->problems)
				if (p.kind == "model" && p.nameTrusted && p.name == model)
					return makeError(EP_E_CORRUPT, "model '" + model + "' is quarantined: " + p.problem +
									       " ('engrampool verify' names the damage)");
			return makeError(-ENOENT, "no model named '" + model + "' in the pool");
		}
		if (!m->tokenMapStored()) {
			if (m->body.vocabMapHash == 0)
				return makeError(-ENOENT, "model '" + model + "' has no token map: its vocabulary is the "
									      "tokenizer's (token ids are hashed as they are)");
			return makeError(-ENOENT, "model '" + model + "' uses a token map the pool does not store (it was "
								      "published by a format 1.0 build); " +
							  tokenMapHint());
		}
		auto map = readStoredMap(*m, nullptr);
		if (map)
			return map;
		// This reader holds no host slot: a model removed while its map was copied may
		// have had its extent reclaimed and reused. A mismatch is real only if the
		// generation it was read at is still the committed one.
		auto g = committedGeneration();
		if (!g)
			return g.status();
		if (*g == s->generation)
			return map.status();
		if (attempt >= 20)
			return makeError(EP_E_RETRY, "model '" + model + "' kept changing while its token map was read; retry");
	}
}

HostSlotRead Pool::readHostSlotSettled(uint32_t i, HostSlot &out) const
{
	const HostSlot *hs = hostSlot(i);
	for (int attempt = 0;; attempt++) {
		region_->invalidate(hs, sizeof(HostSlot));
		HostSlotRead rd = readHostSlot(hs, out);
		if (rd != HostSlotRead::Busy)
			return rd;
		if (attempt >= 200)
			return HostSlotRead::Corrupt;
		if (attempt < 20)
			std::this_thread::yield();
		else
			std::this_thread::sleep_for(std::chrono::microseconds(50));
	}
}

std::vector<HostInfo> Pool::hosts() const
{
	std::vector<HostInfo> out;
	uint64_t now = nowRealtimeNs();
	for (uint32_t i = 0; i < kHostSlots; i++) {
		HostSlot copy;
		HostSlotRead rd = readHostSlotSettled(i, copy);
		if (rd == HostSlotRead::Empty)
			continue;
		HostInfo h;
		h.index = i;
		if (rd == HostSlotRead::Corrupt) {
			h.corrupt = true;
			out.push_back(h);
			continue;
		}
		std::memcpy(h.host.data(), copy.hostUuid, 16);
		h.hostname = fixedString(copy.hostname, sizeof(copy.hostname));
		h.pid = copy.pid;
		h.state = copy.state;
		h.attachTimeNs = copy.attachTimeNs;
		h.heartbeatNs = copy.heartbeatNs;
		h.observedGen = copy.observedGen;
		h.leaseMs = copy.leaseMs ? copy.leaseMs : sb_.leaseMs;
		uint64_t leaseNs = std::min<uint64_t>(h.leaseMs, kMaxLeaseMs) * 1000000ull;
		// A heartbeat more than a lease ahead of this clock is not trusted (clock
		// skew or a stray write): such a host would otherwise stay live for ever.
		h.futureHeartbeat = copy.heartbeatNs > now + leaseNs;
		h.live = copy.state == 1 && !h.futureHeartbeat && now < copy.heartbeatNs + leaseNs;
		out.push_back(h);
	}
	return out;
}

Status Pool::writeHostSlot(uint32_t index, const HostSlot &slot)
{
	if (index >= kHostSlots)
		return errorf(-EINVAL, "host index %u outside [0, %u)", index, kHostSlots);
	if (!region_->writable())
		return makeError(-EPERM, "the pool is mapped read-only; host slots need a writable slot mapping");
	format::writeHostSlot(hostSlot(index), slot, [this](const void *p, size_t n) { region_->persist(p, n); });
	return Status::ok();
}

} // namespace engrampool
