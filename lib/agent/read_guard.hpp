// SPDX-License-Identifier: Apache-2.0
// read_guard.hpp - safe reads of pool memory by an agent or a Pool handle.
//
// Two hazards of reading a mapped pool:
//  - The backing object can shrink under the mapping (`truncate` of a file: pool, a
//    poisoned page): an access then raises SIGBUS. Every read or write of the mapping
//    that is not a gather (gathers have their own guard) goes through guardedInvoke()
//    from gather/sigbus.hpp; poolFaultText() turns the fault into a message that names
//    the pool and what happened to it.
//  - A reader that holds no host slot (`engrampool lookup`, ep_pool_read_rows) does not
//    hold back reclamation: a table replaced or removed after its snapshot may have its
//    extent reclaimed and reused by a later import while the reader copies rows out of
//    it. Such a reader re-validates after each read (tablesStillHeld) and retries.
#pragma once

#include <cstdint>
#include <string>

#include "pool/pool.hpp"
#include "util/status.hpp"

namespace engrampool {

// A table as read from a snapshot: its catalog slot and the generation it was published at.
struct HeldTable {
	uint32_t slot = 0;
	uint64_t generation = 0;
};

// True when none of `tables` (taken from a snapshot at generation `snapGen`) can have had
// its extent reclaimed since: the committed generation is still `snapGen` (reclaiming needs
// a committed removal), or else each table's catalog state word still names that table at
// that generation (reclaim clears the state word before the space is reused; a corrupted
// generation word falls back to that check). Bytes read from those extents before this
// call are then the table's bytes. False: read again from a new snapshot. Reads the pool
// under the SIGBUS guard (-EFAULT on a fault).
Result<bool> tablesStillHeld(const Pool &pool, uint64_t snapGen, const HeldTable *tables, size_t n);

// Pool::readRows for a reader that holds no host slot: snapshot, read the rows, re-validate;
// when the table was replaced and its space may have been reused, read again from the new
// generation (bounded; then EP_E_RETRY). Never returns a mix of two versions. SIGBUS-guarded.
// *generation (optional): the generation the rows belong to.
// outFormat: enum ep_row_format_out (Pool::readRowsAs).
Status readRowsValidated(const Pool &pool, const std::string &table, const uint64_t *rows, size_t n, void *dst,
			 size_t dstBytes, uint64_t *generation = nullptr, int outFormat = EP_OUT_PACKED);

// The backing object of a file:/emul: pool is shorter than the mapping (truncated).
// *nowBytes: its current size. Always false for dax: (a device does not shrink).
bool poolBackingTruncated(const Pool &pool, uint64_t *nowBytes = nullptr);

// Text for a SIGBUS at `addr` while touching `what` of the pool (no trailing period), e.g.
// "SIGBUS reading the catalog: pool file:/dev/shm/p was truncated (now 0 bytes, the pool
// maps 32.0 MiB)".
std::string poolFaultText(const Pool &pool, const std::string &what, uintptr_t addr);

// How many times a reader without a host slot re-reads before giving up with EP_E_RETRY.
inline constexpr int kMaxReadRetries = 8;

namespace testhooks {
// Test-only hook (not part of the C ABI; hidden in the shared library): called by the
// re-validating readers on the reading thread, before a read (BeforeRead) and between a
// read and its validation (AfterRead). `index` is the layer index for the agent, 0 for
// readRowsValidated. Lets a test run a writer at exactly that point. nullptr removes it.
enum class ReadStage { BeforeRead, AfterRead };
using ReadHook = void (*)(ReadStage stage, uint32_t index, void *ctx);
void setReadHook(ReadHook hook, void *ctx);
} // namespace testhooks

// Internal: invoke the hook when one is set (one relaxed load otherwise).
void callReadHook(testhooks::ReadStage stage, uint32_t index);

} // namespace engrampool
