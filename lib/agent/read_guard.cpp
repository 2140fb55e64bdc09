// SPDX-License-Identifier: Apache-2.0
// read_guard.cpp - SIGBUS-guarded pool reads and re-validation for readers without a host slot.
#include "agent/read_guard.hpp"

#include <atomic>
#include <sys/stat.h>

#include "format/layout.hpp"
#include "gather/sigbus.hpp"
#include "util/units.hpp"

namespace engrampool {

namespace {

struct HookSlot {
	std::atomic<testhooks::ReadHook> hook{nullptr};
	std::atomic<void *> ctx{nullptr};
};
HookSlot gHook;

// The state word of catalog slot `slot`, read fresh from the pool.
uint64_t loadStateWord(const Pool &pool, uint32_t slot)
{
	const uint8_t *p = pool.region().base() + format::kCatalogOffset + (uint64_t)slot * format::kEntrySize +
			   offsetof(format::CatalogEntry, stateWord);
	pool.region().invalidate(p, 8);
	return *reinterpret_cast<const volatile uint64_t *>(p);
}

} // namespace

namespace testhooks {
void setReadHook(ReadHook hook, void *ctx)
{
	gHook.ctx.store(ctx, std::memory_order_relaxed);
	gHook.hook.store(hook, std::memory_order_release);
}
} // namespace testhooks

void callReadHook(testhooks::ReadStage stage, uint32_t index)
{
	if (auto h = gHook.hook.load(std::memory_order_acquire))
		h(stage, index, gHook.ctx.load(std::memory_order_relaxed));
}

bool poolBackingTruncated(const Pool &pool, uint64_t *nowBytes)
{
	const Region &r = pool.region();
	if (r.uri().kind == RegionKind::Dax || r.fd() < 0)
		return false;
	struct stat st;
	if (fstat(r.fd(), &st) != 0)
		return false;
	if (nowBytes)
		*nowBytes = (uint64_t)st.st_size;
	return (uint64_t)st.st_size < r.size();
}

std::string poolFaultText(const Pool &pool, const std::string &what, uintptr_t addr)
{
	const Region &r = pool.region();
	std::string text = "SIGBUS " + what;
	uintptr_t base = reinterpret_cast<uintptr_t>(r.base());
	if (addr >= base && addr - base < r.size())
		text += " at pool offset " + std::to_string(addr - base);
	uint64_t now = 0;
	if (poolBackingTruncated(pool, &now))
		text += ": pool " + r.uri().text + " was truncated (now " + std::to_string(now) + " bytes, the pool maps " +
			formatBytes(r.size()) + ")";
	else
		text += ": a page of pool " + r.uri().text + " is unreadable (truncated and re-extended, or poisoned)";
	return text;
}

Result<bool> tablesStillHeld(const Pool &pool, uint64_t snapGen, const HeldTable *tables, size_t n)
{
	// Loads of the rows (this thread's, or helpers' that handed over with a release) come
	// before these loads.
	std::atomic_thread_fence(std::memory_order_seq_cst);
	bool held = true;
	uintptr_t addr = 0;
	int rc = gather::guardedInvoke(
		[&] {
			// Fast path. An unreadable generation word is no answer: check the slots.
			auto g = pool.committedGeneration();
			if (g && *g == snapGen)
				return;
			for (size_t i = 0; i < n && held; i++) {
				format::EntryKind kind;
				uint64_t gen = 0;
				if (tables[i].slot >= format::kCatalogSlots ||
				    !format::decodeStateWord(loadStateWord(pool, tables[i].slot), kind, gen) ||
				    kind != format::EntryKind::Table || gen != tables[i].generation)
					held = false;
			}
		},
		&addr);
	if (rc != 0)
		return makeError(-EFAULT, poolFaultText(pool, "re-validating a read", addr));
	return held;
}

Status readRowsValidated(const Pool &pool, const std::string &table, const uint64_t *rows, size_t n, void *dst,
			 size_t dstBytes, uint64_t *generation, int outFormat)
{
	if (int rc = gather::installSigbusHandler())
		return errorf(rc, "cannot install the SIGBUS handler");
	for (int attempt = 0; attempt <= kMaxReadRetries; attempt++) {
		Result<Snapshot> s = makeError(-EFAULT, "");
		uintptr_t addr = 0;
		if (gather::guardedInvoke([&] { s = pool.snapshot(); }, &addr) != 0)
			return makeError(-EFAULT, poolFaultText(pool, "reading the catalog", addr));
		if (!s)
			return s.status();
		const TableInfo *t = s->findTable(table);
		if (!t)
			return makeError(-ENOENT, "no table named '" + table + "'");
		callReadHook(testhooks::ReadStage::BeforeRead, 0);
		Status st;
		if (gather::guardedInvoke(
			    [&] {
				    st = outFormat == EP_OUT_PACKED ? pool.readRows(*t, rows, n, dst, dstBytes)
								    : pool.readRowsAs(*t, rows, n, outFormat, dst, dstBytes);
			    },
			    &addr) != 0)
			return makeError(-EFAULT, poolFaultText(pool, "reading rows of table '" + table + "'", addr));
		if (!st)
			return st;
		callReadHook(testhooks::ReadStage::AfterRead, 0);
		HeldTable h{t->slot, t->generation};
		auto ok = tablesStillHeld(pool, s->generation, &h, 1);
		if (!ok)
			return ok.status();
		if (*ok) {
			if (generation)
				*generation = s->generation;
			return Status::ok();
		}
		// Replaced after the snapshot and its space may have been reused: what was read
		// may be another table's bytes. Read the new version.
	}
	return makeError(EP_E_RETRY, "table '" + table + "' kept being replaced while its rows were read (" +
					     std::to_string(kMaxReadRetries + 1) + " tries); retry");
}

} // namespace engrampool
