// SPDX-License-Identifier: Apache-2.0
// records.hpp - HOW bytes reach the media: the on-media write protocol in one home.
//
// pool.cpp and writer.cpp decide WHAT is published and WHEN; host_registration.cpp
// decides when a host renews its slot. All of them write through these functions,
// and every byte they write reaches the media through the one persist path of the
// mapping it lives in (Region::persist / persistMapped: cache-line write-back +
// fence where stores are not byte-granular, then the mapper's persist: libpmem2
// flush+drain on pmem/CXL, msync elsewhere).
//
//   publishWord      one aligned 8-byte store with its own check bits, then persist
//                    (generation word, catalog state and removal words)
//   writeEntry       catalog entry body + CRC under a free state word, persist, then
//                    the state word (the entry's own publish)
//   writeHostSlot    odd seq, body + CRC, even seq (a reader never trusts a torn slot)
//   writeMaster      a master record into the slot that does not hold the current one
//   inspectEntry     the one decoder of a catalog slot (readers, writer, verify, repair)
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "format/layout.hpp"

namespace engrampool::format {

// Makes [p, p+len) durable and visible to other hosts. The one persist path of a mapping.
using PersistFn = std::function<void(const void *, size_t)>;

// --- the 8-byte publish -------------------------------------------------------------
void publishWord(uint64_t *word, uint64_t value, const PersistFn &persist);
// An aligned 8-byte load of a word another host publishes.
uint64_t loadWord(const uint64_t *word);

// --- catalog entries ----------------------------------------------------------------
enum class SlotState {
	Free,       // state word 0
	Pending,    // published above the committed generation (a writer at work, or killed)
	Visible,    // committed and not removed at the committed generation
	Removed,    // removed at or below the committed generation, space not yet reclaimed
	Corrupt,    // a check failed: quarantined, never read, never reused until repaired
};

struct EntryView {
	uint32_t index = 0;
	SlotState state = SlotState::Free;
	EntryKind kind = EntryKind::Free;
	uint64_t createdGen = 0;
	uint64_t removedGen = 0;     // 0 = live
	bool stateWordOk = true;
	bool removedWordOk = true;
	bool bodyOk = true;          // CRC and the copies of kind/generation under it
	std::string name;            // table or model name as read (untrusted when !bodyOk)
	std::string problem;         // for Corrupt: what failed
};

// Decode slot `index` of a catalog copy against committed generation G. Pure: no I/O.
EntryView inspectEntry(const CatalogEntry &e, uint32_t index, uint64_t committedGen);

// Publish a new entry in a free slot: body + CRC (state word still 0), persist, then
// the state word, persist. A crash before the state word leaves the slot free.
void writeEntry(CatalogEntry *dst, EntryKind kind, uint64_t gen, const void *body, size_t bodyLen,
		const PersistFn &persist);
// Repair: rewrite a state word from the kind and generation kept under the body's CRC.
uint64_t stateWordFromBody(const CatalogEntry &e);

// --- host slots ---------------------------------------------------------------------
// Busy: the owner was rewriting the slot during the copy (seq odd, or changed under
// the copy); read it again. A slot that stays Busy (a writer died mid-write) is corrupt.
enum class HostSlotRead { Empty, Corrupt, Valid, Busy };
// Copy a slot out of shared memory and check it (seq even and unchanged, CRC). `out`
// holds the copy.
HostSlotRead readHostSlot(const HostSlot *src, HostSlot &out);
// Rewrite a slot (only its owner, or the master clearing a dead host's slot).
void writeHostSlot(HostSlot *dst, const HostSlot &body, const PersistFn &persist);

// --- master records -----------------------------------------------------------------
MasterRecord makeMaster(const Uuid &host, uint64_t epoch, const std::string &hostname, uint64_t nowNs);
// Index (0 = A, 1 = B) of the valid record with the highest epoch, or -1 when neither is valid.
int currentMaster(const MasterRecord rec[2]);
bool masterValid(const MasterRecord &m);
// Write `m` into the record that does not hold the current master (never overwrite
// the valid one); returns the index written.
int writeMaster(MasterRecord *recs, const MasterRecord &m, const PersistFn &persist);

} // namespace engrampool::format
