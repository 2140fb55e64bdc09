// SPDX-License-Identifier: Apache-2.0
// records.cpp - the on-media write protocol (see records.hpp).
#include "format/records.hpp"

#include <atomic>

#include <algorithm>
#include <cstring>

namespace engrampool::format {

void publishWord(uint64_t *word, uint64_t value, const PersistFn &persist)
{
	__atomic_store_n(word, value, __ATOMIC_RELEASE);
	persist(word, sizeof(*word));
}

uint64_t loadWord(const uint64_t *word)
{
	return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}

EntryView inspectEntry(const CatalogEntry &e, uint32_t index, uint64_t G)
{
	EntryView v;
	v.index = index;
	if (!decodeStateWord(e.stateWord, v.kind, v.createdGen)) {
		v.stateWordOk = false;
		v.state = SlotState::Corrupt;
		v.problem = "state word is corrupted";
	} else if (v.kind == EntryKind::Free) {
		return v;
	}
	auto removed = decodeRemovedWord(e.removedWord);
	if (!removed) {
		v.removedWordOk = false;
		if (v.state != SlotState::Corrupt) {
			v.state = SlotState::Corrupt;
			v.problem = "removal word is corrupted";
		}
	} else {
		v.removedGen = *removed;
	}
	uint64_t gen = v.stateWordOk ? v.createdGen : e.createdGen;
	EntryKind kind = v.stateWordOk ? v.kind : (EntryKind)e.kind;
	v.bodyOk = e.crc == entryCrc(e) && e.kind == (uint32_t)kind && e.createdGen == gen &&
		   (kind == EntryKind::Table || kind == EntryKind::Model);
	if (kind == EntryKind::Table)
		v.name = fixedString(e.table.name, sizeof(e.table.name));
	else if (kind == EntryKind::Model)
		v.name = fixedString(e.model.name, sizeof(e.model.name));
	if (v.state == SlotState::Corrupt) {
		if (!v.bodyOk)
			v.problem += " and the entry's CRC does not match";
		return v;
	}
	if (v.createdGen > G) {
		v.state = SlotState::Pending;
		return v;
	}
	bool visible = v.removedGen == 0 || v.removedGen > G;
	if (!visible) {
		// A removed entry may be reclaimed and its slot rewritten under a reader: its
		// body is not checked (nobody reads it).
		v.state = SlotState::Removed;
		return v;
	}
	if (!v.bodyOk) {
		v.state = SlotState::Corrupt;
		v.problem = "CRC mismatch, the entry is corrupted";
		return v;
	}
	v.state = SlotState::Visible;
	return v;
}

void writeEntry(CatalogEntry *dst, EntryKind kind, uint64_t gen, const void *body, size_t bodyLen,
		const PersistFn &persist)
{
	CatalogEntry tmp;
	std::memset(&tmp, 0, sizeof(tmp));
	tmp.kind = (uint32_t)kind;
	tmp.createdGen = gen;
	std::memcpy(tmp.raw, body, std::min(bodyLen, sizeof(tmp.raw)));
	tmp.crc = entryCrc(tmp);
	// The removal word is part of the rewrite (it may hold a reclaimed entry's removal).
	std::memcpy(reinterpret_cast<uint8_t *>(dst) + 8, reinterpret_cast<const uint8_t *>(&tmp) + 8, sizeof(tmp) - 8);
	persist(dst, sizeof(*dst));
	publishWord(&dst->stateWord, encodeStateWord(kind, gen), persist);
}

uint64_t stateWordFromBody(const CatalogEntry &e)
{
	return encodeStateWord((EntryKind)e.kind, e.createdGen);
}

HostSlotRead readHostSlot(const HostSlot *src, HostSlot &out)
{
	uint64_t before = loadWord(&src->seq);
	std::memcpy(&out, src, sizeof(out));
	std::atomic_thread_fence(std::memory_order_acquire);
	uint64_t after = loadWord(&src->seq);
	if ((before & 1) || before != after)
		return HostSlotRead::Busy;
	out.seq = before;
	if (out.seq == 0 && out.state == 0)
		return HostSlotRead::Empty;
	if (out.crc != hostSlotCrc(out))
		return HostSlotRead::Corrupt;
	return out.state == 0 ? HostSlotRead::Empty : HostSlotRead::Valid;
}

void writeHostSlot(HostSlot *dst, const HostSlot &body, const PersistFn &persist)
{
	uint64_t cur = loadWord(&dst->seq);
	uint64_t seq = cur + 1 + (cur & 1); // odd: being rewritten
	publishWord(&dst->seq, seq, persist);
	HostSlot tmp = body;
	tmp.seq = seq + 1;
	tmp.crc = hostSlotCrc(tmp);
	std::memcpy(reinterpret_cast<uint8_t *>(dst) + 8, reinterpret_cast<const uint8_t *>(&tmp) + 8,
		    sizeof(HostSlot) - 8);
	persist(reinterpret_cast<uint8_t *>(dst) + 8, sizeof(HostSlot) - 8);
	publishWord(&dst->seq, seq + 1, persist);
}

MasterRecord makeMaster(const Uuid &host, uint64_t epoch, const std::string &hostname, uint64_t nowNs)
{
	MasterRecord m{};
	std::memcpy(m.hostUuid, host.data(), 16);
	m.epoch = epoch;
	m.takeTimeNs = nowNs;
	setFixedString(m.hostname, sizeof(m.hostname), hostname.substr(0, sizeof(m.hostname) - 1));
	m.crc = masterCrc(m);
	return m;
}

bool masterValid(const MasterRecord &m)
{
	return m.epoch != 0 && m.crc == masterCrc(m);
}

int currentMaster(const MasterRecord rec[2])
{
	int cur = -1;
	for (int i = 0; i < 2; i++)
		if (masterValid(rec[i]) && (cur < 0 || rec[i].epoch > rec[cur].epoch))
			cur = i;
	return cur;
}

int writeMaster(MasterRecord *recs, const MasterRecord &m, const PersistFn &persist)
{
	MasterRecord copy[2];
	std::memcpy(copy, recs, sizeof(copy));
	int target = currentMaster(copy) == 0 ? 1 : 0;
	std::memcpy(&recs[target], &m, sizeof(m));
	persist(&recs[target], sizeof(m));
	return target;
}

} // namespace engrampool::format
