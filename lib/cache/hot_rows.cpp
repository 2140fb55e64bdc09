// SPDX-License-Identifier: Apache-2.0
// hot_rows.cpp - slot map (bucketed linear probing, each bucket also holding the
// count-min counters of its keys), CLOCK eviction, frequency-file loading.
#include "cache/hot_rows.hpp"
#include "util/hash_util.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

namespace engrampool::cache {

HotRowCache::HotRowCache(size_t capacity, bool admit)
	: admitEnabled_(admit), slotKey_(capacity, kEmpty), slotRef_(capacity, 0), slotPinned_(capacity, 0)
{
	// Two entries per bucket on average when the tier is full (half the ways free, so a
	// bucket rarely overflows), and at least 64 buckets of counters for small tiers.
	size_t n = pow2AtLeast(std::max<size_t>(capacity / 2 + 1, 64));
	buckets_.assign(n, Bucket{});
	bucketMask_ = n - 1;
	// A reserve of ~1/32 of the tier (at most 8192 slots) evicted ahead of need.
	spareCap_ = std::clamp<size_t>(capacity / 32, capacity ? 1 : 0, 8192);
	spare_.reserve(spareCap_);
	resetFree();
}

void HotRowCache::resetFree()
{
	free_.resize(slotKey_.size());
	for (size_t i = 0; i < free_.size(); i++)
		free_[i] = (uint32_t)(free_.size() - 1 - i);
}

HotRowCache::Entry HotRowCache::locate(uint64_t k) const
{
	for (size_t b = home(k);; b = (b + 1) & bucketMask_) {
		const Bucket &B = buckets_[b];
		for (size_t w = 0; w < kWays; w++)
			if (B.key[w] == k)
				return {b, w};
		if (B.overflow == 0)
			return {SIZE_MAX, 0};
	}
}

void HotRowCache::insert(uint64_t k, uint32_t slot)
{
	// The map holds at most capacity keys in 2 x capacity ways: a free way always exists.
	for (size_t b = home(k);; b = (b + 1) & bucketMask_) {
		Bucket &B = buckets_[b];
		for (size_t w = 0; w < kWays; w++) {
			if (B.key[w] == kEmpty) {
				B.key[w] = k;
				B.slot[w] = slot;
				return;
			}
		}
		B.overflow++; // k passes over a full bucket
	}
}

void HotRowCache::erase(uint64_t k)
{
	const Entry e = locate(k);
	if (e.bucket == SIZE_MAX)
		return;
	buckets_[e.bucket].key[e.way] = kEmpty;
	// The buckets k passed over on insert no longer have it beyond them.
	for (size_t b = home(k); b != e.bucket; b = (b + 1) & bucketMask_)
		buckets_[b].overflow--;
}

void HotRowCache::counterPair(uint64_t k, size_t &c0, size_t &c1)
{
	const uint64_t h = mixBits(k ^ 0x7f4a7c15ull);
	c0 = (size_t)(h & 0xffff) % kCounters;
	c1 = (c0 + 1 + (size_t)((h >> 16) & 0xffff) % (kCounters - 1)) % kCounters; // never c0
}

uint32_t HotRowCache::frequency(uint64_t k) const
{
	size_t c0, c1;
	counterPair(k, c0, c1);
	const Bucket &B = buckets_[home(k)];
	return std::min<uint32_t>(B.count[c0], B.count[c1]);
}

void HotRowCache::touch(uint64_t k)
{
	size_t c0, c1;
	counterPair(k, c0, c1);
	Bucket &B = buckets_[home(k)];
	if (B.count[c0] < 255)
		B.count[c0]++;
	if (B.count[c1] < 255)
		B.count[c1]++;
	// Aging, spread out: every kAgeEvery additions one bucket's counters are halved, so old
	// popularity fades with one full sweep per (buckets x kAgeEvery) additions, and no
	// lookup ever pays for halving every counter at once.
	if ((++sketchAdds_ & (kAgeEvery - 1)) == 0) {
		Bucket &A = buckets_[ageBucket_];
		for (uint8_t &c : A.count)
			c >>= 1;
		ageBucket_ = (ageBucket_ + 1) & bucketMask_;
	}
}

int64_t HotRowCache::peek(uint32_t layer, uint64_t row) const
{
	if (slotKey_.empty())
		return -1;
	const Entry e = locate(key(layer, row));
	return e.bucket == SIZE_MAX ? -1 : (int64_t)buckets_[e.bucket].slot[e.way];
}

int64_t HotRowCache::record(uint32_t layer, uint64_t row, int64_t slot)
{
	if (slot < 0)
		stats_.misses++;
	else
		stats_.hits++;
	if (admitEnabled_ && !slotKey_.empty()) {
		touch(key(layer, row));
		if (slot >= 0)
			slotRef_[(size_t)slot] = 1; // CLOCK's reference bit (a static set never evicts)
	}
	return slot;
}

int64_t HotRowCache::takeSlot(uint64_t k, uint32_t s)
{
	slotKey_[s] = k;
	slotRef_[s] = 0;
	insert(k, s);
	used_++;
	stats_.admissions++;
	stats_.resident = used_;
	return (int64_t)s;
}

int64_t HotRowCache::admit(uint32_t layer, uint64_t row, bool evictInline)
{
	if (!admitEnabled_ || slotKey_.empty())
		return -1;
	uint64_t k = key(layer, row);
	size_t n = slotKey_.size();
	if (!free_.empty()) {
		uint32_t s = free_.back();
		free_.pop_back();
		return takeSlot(k, s);
	}
	if (!spare_.empty()) {
		// TinyLFU against the victim refill chose: the miss must be seen more often.
		if (frequency(k) <= spare_.back().frequency) {
			stats_.rejected++;
			return -1;
		}
		uint32_t s = spare_.back().slot;
		spare_.pop_back();
		return takeSlot(k, s);
	}
	if (!evictInline) {
		stats_.rejected++;
		return -1;
	}
	size_t budget = 2 * n;
	const int64_t v = clockVictim(budget);
	if (v < 0 || frequency(k) <= frequency(slotKey_[(size_t)v])) {
		stats_.rejected++;
		return -1;
	}
	const size_t s = (size_t)v;
	erase(slotKey_[s]);
	slotKey_[s] = k;
	insert(k, (uint32_t)s);
	stats_.evictions++;
	stats_.admissions++;
	return (int64_t)s;
}

int64_t HotRowCache::clockVictim(size_t &budget)
{
	const size_t n = slotKey_.size();
	while (budget) {
		budget--;
		size_t s = hand_;
		hand_ = (hand_ + 1) % n;
		if (slotPinned_[s] || slotKey_[s] == kEmpty)
			continue;
		if (slotRef_[s]) {
			slotRef_[s] = 0;
			continue;
		}
		return (int64_t)s;
	}
	return -1;
}

size_t HotRowCache::refill(size_t want)
{
	if (!admitEnabled_ || slotKey_.empty() || !free_.empty())
		return 0; // free slots left: nothing needs evicting yet
	size_t added = 0;
	// Bounded work per call: a sweep over referenced rows clears their bits as it goes.
	size_t budget = 16 * want + 64;
	while (added < want && spare_.size() < spareCap_) {
		const int64_t v = clockVictim(budget);
		if (v < 0)
			break;
		const size_t s = (size_t)v;
		spare_.push_back(Spare{(uint32_t)s, frequency(slotKey_[s])});
		erase(slotKey_[s]);
		slotKey_[s] = kEmpty;
		used_--;
		stats_.evictions++;
		added++;
	}
	stats_.resident = used_;
	return added;
}

int64_t HotRowCache::pin(uint32_t layer, uint64_t row)
{
	uint64_t k = key(layer, row);
	if (const Entry e = locate(k); e.bucket != SIZE_MAX) {
		const uint32_t s = buckets_[e.bucket].slot[e.way];
		slotPinned_[s] = 1;
		return (int64_t)s;
	}
	if (!free_.empty()) {
		uint32_t s = free_.back();
		free_.pop_back();
		slotKey_[s] = k;
		slotPinned_[s] = 1;
		insert(k, (uint32_t)s);
		used_++;
		stats_.pinned++;
		stats_.resident = used_;
		return (int64_t)s;
	}
	return -1;
}

void HotRowCache::clear()
{
	std::fill(slotKey_.begin(), slotKey_.end(), kEmpty);
	std::fill(slotRef_.begin(), slotRef_.end(), 0);
	std::fill(slotPinned_.begin(), slotPinned_.end(), 0);
	for (Bucket &B : buckets_) { // the counters stay: popularity outlives the rows
		std::fill(std::begin(B.key), std::end(B.key), kEmpty);
		B.overflow = 0;
	}
	used_ = 0;
	hand_ = 0;
	spare_.clear();
	resetFree();
	stats_.pinned = 0;
	stats_.resident = 0;
}

void HotRowCache::clearUnpinned()
{
	free_.clear();
	spare_.clear(); // its slots are empty: they go back to free_ below
	for (size_t s = slotKey_.size(); s-- > 0;) {
		slotRef_[s] = 0;
		if (slotPinned_[s])
			continue;
		if (slotKey_[s] != kEmpty) {
			erase(slotKey_[s]);
			slotKey_[s] = kEmpty;
			used_--;
		}
		free_.push_back((uint32_t)s);
	}
	std::reverse(free_.begin(), free_.end());
	hand_ = 0;
	stats_.resident = used_;
}

Result<std::vector<std::pair<uint32_t, uint64_t>>> HotRowCache::loadFrequencyFile(const std::string &path, size_t limit)
{
	std::ifstream in(path);
	if (!in)
		return errnoError(errno ? errno : ENOENT, "hot-set frequency file " + path);
	struct Entry {
		uint64_t count;
		uint32_t layer;
		uint64_t row;
	};
	std::vector<Entry> entries;
	std::string line;
	size_t lineNo = 0;
	while (std::getline(in, line)) {
		lineNo++;
		auto hash = line.find('#');
		if (hash != std::string::npos)
			line.resize(hash);
		std::istringstream ss(line);
		std::vector<std::string> words;
		for (std::string w; ss >> w;)
			words.push_back(w);
		if (words.empty())
			continue; // blank line
		// Every field a whole non-negative integer: "abc 1 2" or "1 2 3x" is an error, never
		// a skipped line or a count of 0; a layer id must fit 32 bits.
		auto number = [](const std::string &w, uint64_t &v) {
			auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
			return ec == std::errc() && end == w.data() + w.size();
		};
		uint64_t layer = 0, row = 0, count = 1;
		if (words.size() < 2 || words.size() > 3 || !number(words[0], layer) || layer > UINT32_MAX ||
		    !number(words[1], row) || (words.size() == 3 && !number(words[2], count)))
			return makeError(-EINVAL, path + ":" + std::to_string(lineNo) +
							  ": expected 'LAYER_ID ROW_ID [COUNT]' with non-negative integers (layer < 2^32), found '" +
							  line.substr(0, 80) + "'");
		entries.push_back({(uint64_t)count, (uint32_t)layer, (uint64_t)row});
	}
	std::stable_sort(entries.begin(), entries.end(), [](const Entry &a, const Entry &b) { return a.count > b.count; });
	std::vector<std::pair<uint32_t, uint64_t>> out;
	for (auto &e : entries) {
		if (out.size() >= limit)
			break;
		out.emplace_back(e.layer, e.row);
	}
	return out;
}

} // namespace engrampool::cache
