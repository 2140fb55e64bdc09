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
	MasterRecord m{};
	Uuid me = localHostId();
	std::memcpy(m.hostUuid, me.data(), 16);
	m.epoch = 1;
	m.takeTimeNs = nowRealtimeNs();
	setFixedString(m.hostname, sizeof(m.hostname), localHostName().substr(0, sizeof(m.hostname) - 1));
	m.crc = masterCrc(m);
	std::memcpy(base + kMasterOffset, &m, sizeof(m));
	*reinterpret_cast<volatile uint64_t *>(base + kGenWordOffset) = encodeGenWord(1);
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
		if (const char *k = getenv("EP_FAULT_KILL_AFTER_PERSIST"))
			p->killAfterPersist_ = strtoull(k, nullptr, 10);
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
	auto g = decodeGenWord(*w);
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
	const MasterRecord *best = nullptr;
	for (auto &r : rec)
		if (r.epoch != 0 && r.crc == masterCrc(r) && (!best || r.epoch > best->epoch))
			best = &r;
	if (!best)
		return makeError(EP_E_CORRUPT, "both master records are corrupted");
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
	t.format.rowAlign = b.rowStride != b.rowBytes ? b.rowStride : 0;
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
	std::vector<std::pair<uint64_t, uint64_t>> extents; // every extent still held
	for (uint32_t i = 0; i < kCatalogSlots; i++) {
		const CatalogEntry &e = copy[i];
		EntryKind kind;
		uint64_t gen;
		if (!decodeStateWord(e.stateWord, kind, gen)) {
			retry = true;
			return errorf(EP_E_CORRUPT, "catalog slot %u: state word is corrupted", i);
		}
		if (kind == EntryKind::Free) {
			s.freeSlots++;
			continue;
		}
		if (gen > G)
			continue; // being written by the writer, not committed
		auto removed = decodeRemovedWord(e.removedWord);
		if (!removed) {
			retry = true;
			return errorf(EP_E_CORRUPT, "catalog slot %u: removal word is corrupted", i);
		}
		bool visible = *removed == 0 || *removed > G;
		if (e.crc != entryCrc(e) || e.kind != (uint32_t)kind || e.createdGen != gen) {
			if (!visible)
				continue; // a removed entry may be reclaimed under us
			retry = true;
			return errorf(EP_E_CORRUPT, "catalog slot %u (generation %llu): CRC mismatch, the entry is corrupted", i,
				      (unsigned long long)gen);
		}
		if (kind == EntryKind::Table) {
			EP_TRY(validateTableBody(e.table, sb_));
			extents.emplace_back(e.table.dataOffset, e.table.extentBytes);
			s.usedBytes += e.table.extentBytes;
			if (!visible) {
				s.pendingReclaim++;
				continue;
			}
			s.tables.push_back(tableFromBody(e.table, gen, i));
		} else {
			if (!visible)
				continue;
			ModelRecord m;
			m.name = fixedString(e.model.name, sizeof(e.model.name));
			m.fingerprint = e.model.fingerprint;
			m.generation = gen;
			m.slot = i;
			m.body = e.model;
			s.models.push_back(std::move(m));
		}
	}
	// Cross-entry checks: no two held extents overlap, names are unique.
	std::sort(extents.begin(), extents.end());
	for (size_t i = 1; i < extents.size(); i++)
		if (extents[i - 1].first + extents[i - 1].second > extents[i].first)
			return errorf(EP_E_CORRUPT, "catalog: two tables share data at offset %llu",
				      (unsigned long long)extents[i].first);
	std::set<std::string> names;
	for (auto &t : s.tables) {
		if (!names.insert(t.name).second)
			return makeError(EP_E_CORRUPT, "catalog: table '" + t.name + "' appears twice");
		if (!s.findModel(t.model))
			return makeError(EP_E_CORRUPT, "catalog: table '" + t.name + "' refers to missing model '" + t.model + "'");
	}
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
		if (st.isOk() && !retry)
			return s;
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

Status Pool::readRows(const TableInfo &t, const uint64_t *rows, size_t n, void *dst, size_t dstBytes) const
{
	if (dstBytes / t.rowBytes < n)
		return errorf(-EINVAL, "destination holds %zu bytes, %zu rows of %u bytes need %zu", dstBytes, n, t.rowBytes,
			      n * (size_t)t.rowBytes);
	const uint8_t *base = tableData(t);
	auto *out = static_cast<uint8_t *>(dst);
	for (size_t i = 0; i < n; i++) {
		if (rows[i] >= t.rows)
			return errorf(-ERANGE, "row %llu is outside table '%s' (%llu rows)", (unsigned long long)rows[i],
				      t.name.c_str(), (unsigned long long)t.rows);
		std::memcpy(out + i * t.rowBytes, base + rows[i] * t.rowStride, t.rowBytes);
	}
	return Status::ok();
}

Result<std::vector<VerifyReport>> Pool::verify(const std::string &name) const
{
	auto s = snapshot();
	if (!s)
		return s.status();
	auto hashTable = [&](const TableInfo &t) {
		Xxh3Stream h;
		const uint8_t *p = tableData(t);
		const uint64_t chunk = 8 << 20;
		for (uint64_t off = 0; off < t.dataBytes; off += chunk) {
			uint64_t len = std::min(chunk, t.dataBytes - off);
			region_->invalidate(p + off, len);
			h.update(p + off, len);
		}
		return h.digest();
	};
	std::vector<VerifyReport> out;
	bool found = false;
	for (const TableInfo &first : s->tables) {
		if (!name.empty() && first.name != name)
			continue;
		found = true;
		TableInfo t = first;
		uint64_t gen = s->generation;
		VerifyReport r;
		r.table = t.name;
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
	if (!name.empty() && !found)
		return makeError(-ENOENT, "no table named '" + name + "' in the pool");
	return out;
}

std::vector<HostInfo> Pool::hosts() const
{
	std::vector<HostInfo> out;
	uint64_t now = nowRealtimeNs();
	for (uint32_t i = 0; i < kHostSlots; i++) {
		const HostSlot *hs = hostSlot(i);
		region_->invalidate(hs, sizeof(HostSlot));
		HostSlot copy;
		std::memcpy(&copy, hs, sizeof(copy));
		if (copy.seq == 0 && copy.state == 0)
			continue;
		HostInfo h;
		h.index = i;
		if (copy.crc != hostSlotCrc(copy) || (copy.seq & 1)) {
			h.corrupt = true;
			out.push_back(h);
			continue;
		}
		if (copy.state == 0)
			continue;
		std::memcpy(h.host.data(), copy.hostUuid, 16);
		h.hostname = fixedString(copy.hostname, sizeof(copy.hostname));
		h.pid = copy.pid;
		h.state = copy.state;
		h.attachTimeNs = copy.attachTimeNs;
		h.heartbeatNs = copy.heartbeatNs;
		h.observedGen = copy.observedGen;
		h.leaseMs = copy.leaseMs ? copy.leaseMs : sb_.leaseMs;
		h.live = copy.state == 1 && now < copy.heartbeatNs + h.leaseMs * 1000000ull;
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
	HostSlot *dst = hostSlot(index);
	// Single writer per slot: odd seq while rewriting, body, CRC, then even seq.
	uint64_t seq = dst->seq + 1 + (dst->seq & 1);
	reinterpret_cast<volatile uint64_t &>(dst->seq) = seq;
	region_->persist(&dst->seq, 8);
	HostSlot tmp = slot;
	tmp.seq = seq + 1;
	tmp.crc = hostSlotCrc(tmp);
	std::memcpy(reinterpret_cast<uint8_t *>(dst) + 8, reinterpret_cast<const uint8_t *>(&tmp) + 8, sizeof(HostSlot) - 8);
	region_->persist(reinterpret_cast<uint8_t *>(dst) + 8, sizeof(HostSlot) - 8);
	reinterpret_cast<volatile uint64_t &>(dst->seq) = seq + 1;
	region_->persist(&dst->seq, 8);
	return Status::ok();
}

} // namespace engrampool
