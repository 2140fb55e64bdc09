// SPDX-License-Identifier: Apache-2.0
// hot_rows.hpp - the hot-row tier: which (layer, row) pairs live in the device-memory
// cache, and which misses to admit. The bytes live in the device's cache buffer; this
// class only manages slots. Changed by the agent's pipeline thread alone: no locks, and
// find/admit never allocate; while the pipeline thread waits, the gather threads may
// call peek (read-only) on it.
//
// Policy: a static hot set (from a frequency file) is pinned; the rest of the capacity
// is managed by CLOCK with a TinyLFU-style admission filter: a miss is admitted only
// when its estimated frequency beats the CLOCK victim's. n-grams are Zipf-distributed,
// so a small cache of the head of the distribution serves a large share of lookups.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "util/hash_util.hpp"
#include "util/huge_alloc.hpp"
#include "util/status.hpp"

namespace engrampool::cache {

struct Stats {
	uint64_t hits = 0, misses = 0, admissions = 0, evictions = 0, rejected = 0;
	// evictions: rows the tier dropped (inline CLOCK, or in advance by refill)
	uint64_t pinned = 0, resident = 0;
};

class HotRowCache {
public:
	// capacity rows in total; admit=false keeps only the static hot set.
	HotRowCache(size_t capacity, bool admit);

	size_t capacity() const { return slotKey_.size(); }
	// Slot holding (layer, row), or -1. Counts a hit or a miss.
	int64_t find(uint32_t layer, uint64_t row) { return record(layer, row, peek(layer, row)); }
	// find in two halves, for lookups spread over threads: peek only reads (any number of
	// threads at once, while nothing else runs on the tier); record, on one thread, does
	// the rest of find for the slot peek returned (counts it; with admission, the row's
	// frequency and CLOCK bit) and returns it.
	int64_t peek(uint32_t layer, uint64_t row) const;
	int64_t record(uint32_t layer, uint64_t row, int64_t slot);
	bool admits() const { return admitEnabled_; }
	// Decide whether a miss enters the cache; returns the slot the caller must fill
	// with the row's bytes before the next lookup can hit it, or -1. A full tier takes
	// the slot of the spare reserve's next victim (see refill) when the miss is seen more
	// often than that victim was; with no spare it runs CLOCK here when evictInline,
	// else rejects the miss (the agent's hot path: no sweep, no eviction's cache misses).
	int64_t admit(uint32_t layer, uint64_t row, bool evictInline = true);
	// Evict up to `n` CLOCK victims in advance into the spare reserve (at most
	// spareCapacity() slots), remembering each victim's frequency for admit's comparison.
	// The agent calls this between tickets, off the ticket's path. Returns slots added.
	size_t refill(size_t n);
	size_t spares() const { return spare_.size(); }
	size_t spareCapacity() const { return spareCap_; }
	// Pin (layer, row) into a free slot (static hot set). Returns the slot or -1 when full.
	int64_t pin(uint32_t layer, uint64_t row);
	// Forget everything (pins included).
	void clear();
	// Forget every unpinned row (a table was replaced: cached bytes would be stale).
	// Pinned (layer, row) pairs keep their slots; the caller refills their bytes.
	void clearUnpinned();
	const Stats &stats() const { return stats_; }
	// Start loading what find/admit of (layer, row) will read: its bucket, one cache line
	// holding its map entries and its frequency counters. Call a few rows ahead of find.
	void prefetch(uint32_t layer, uint64_t row) const
	{
		if (slotKey_.empty())
			return;
		const Bucket *b = &buckets_[home(key(layer, row))];
		if (admitEnabled_)
			__builtin_prefetch(b, 1); // find also counts the row in this line
		else
			__builtin_prefetch(b, 0);
	}

	// Frequency file: text lines "LAYER_ID ROW_ID COUNT" ('#' comments). Returns the
	// (layer, row) pairs sorted by descending count, at most `limit`.
	static Result<std::vector<std::pair<uint32_t, uint64_t>>> loadFrequencyFile(const std::string &path,
										 size_t limit);

private:
	static uint64_t key(uint32_t layer, uint64_t row) { return ((uint64_t)layer << 48) ^ row ^ 0x9e3779b97f4a7c15ull; }
	// The map and the frequency sketch share their cache lines: a key's bucket holds up to
	// four (key, slot) entries and the counters of every key homed there, so a lookup that
	// also counts the row touches one line (two when its home bucket overflowed).
	static constexpr size_t kWays = 4;
	static constexpr size_t kCounters = 14;
	struct alignas(64) Bucket {
		uint64_t key[kWays];          // kEmpty = free
		uint32_t slot[kWays];
		// Entries that passed over this bucket because it was full (their home is here or
		// earlier): a lookup goes on to the next bucket only while this is non-zero.
		uint16_t overflow;
		uint8_t count[kCounters];     // count-min counters (2 per key) of the keys homed here
	};
	static_assert(sizeof(Bucket) == 64, "one bucket, one cache line");
	size_t home(uint64_t k) const { return mixBits(k) & bucketMask_; }
	struct Entry {
		size_t bucket;
		size_t way;
	};
	// Where k lives, or bucket == SIZE_MAX.
	Entry locate(uint64_t k) const;
	void insert(uint64_t k, uint32_t slot);
	void erase(uint64_t k);
	// A key's two counters among its home bucket's kCounters.
	static void counterPair(uint64_t k, size_t &c0, size_t &c1);
	uint32_t frequency(uint64_t k) const;
	void touch(uint64_t k);

	static constexpr uint64_t kEmpty = 0;
	bool admitEnabled_;
	std::vector<uint64_t> slotKey_;     // key per slot (kEmpty = free)
	std::vector<uint8_t> slotRef_;      // CLOCK reference bit
	std::vector<uint8_t> slotPinned_;
	std::vector<Bucket, HugePageAllocator<Bucket>> buckets_; // bucketed linear probing, at most half full
	size_t bucketMask_ = 0;
	size_t hand_ = 0;
	size_t used_ = 0;
	std::vector<uint32_t> free_;        // free slots (stack)
	struct Spare {
		uint32_t slot;
		uint32_t frequency;           // the evicted row's estimated frequency
	};
	std::vector<Spare> spare_;          // slots evicted in advance (stack), never more than spareCap_
	size_t spareCap_ = 0;
	int64_t takeSlot(uint64_t k, uint32_t s);
	// CLOCK: the next unpinned resident slot whose reference bit is clear (clearing the
	// bits it passes), looking at no more than `budget` slots (decremented); -1 if none.
	int64_t clockVictim(size_t &budget);
	void resetFree();
	uint64_t sketchAdds_ = 0;
	static constexpr uint64_t kAgeEvery = 64; // additions per halved bucket (a power of two)
	size_t ageBucket_ = 0;                    // the next bucket whose counters are halved
	Stats stats_;
};

} // namespace engrampool::cache
