// SPDX-License-Identifier: Apache-2.0
// test_hot_rows.cpp - the hot-row tier on its own: slot lookup and keys, stats, the
// static-only tier, TinyLFU admission over CLOCK, pins through admissions and clears,
// frequency aging, and the frequency file. Only the public API is used: no assertion
// depends on exact counter values or on when (or how incrementally) the sketch ages.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cache/hot_rows.hpp"
#include "test_util.hpp"

using engrampool::cache::HotRowCache;
using engrampool::cache::Stats;

namespace {

using Key = std::pair<uint32_t, uint64_t>;

// Admit rows into the free slots of a tier that has room: every admit must succeed with
// a slot no other row holds. Returns slot -> (layer, row).
std::map<int64_t, Key> admitAll(HotRowCache &c, const std::vector<Key> &rows)
{
	std::map<int64_t, Key> bySlot;
	for (auto &[layer, row] : rows) {
		int64_t s = c.admit(layer, row);
		EXPECT_GE(s, 0) << "layer " << layer << " row " << row;
		EXPECT_LT(s, (int64_t)c.capacity());
		EXPECT_TRUE(bySlot.emplace(s, Key{layer, row}).second) << "slot " << s << " handed out twice";
	}
	return bySlot;
}

std::vector<Key> rowsOf(uint32_t layer, uint64_t first, size_t n)
{
	std::vector<Key> v;
	for (size_t i = 0; i < n; i++)
		v.emplace_back(layer, first + i);
	return v;
}

// Look every row up `rounds` times, round-robin (as a stream of tokens would).
void lookUp(HotRowCache &c, const std::vector<Key> &rows, int rounds)
{
	for (int r = 0; r < rounds; r++)
		for (auto &[layer, row] : rows)
			(void)c.find(layer, row);
}

void writeFile(const std::string &path, const std::string &text)
{
	std::ofstream out(path);
	out << text;
	ASSERT_TRUE(out.good()) << path;
}

} // namespace

TEST(HotRows, FindAdmitAndKeys)
{
	HotRowCache c(16, true);
	EXPECT_EQ(c.capacity(), 16u);
	EXPECT_EQ(c.find(0, 5), -1);

	// The same row ids under two layers: 16 distinct keys fill the 16 slots.
	std::vector<Key> rows = rowsOf(0, 100, 8);
	auto l1 = rowsOf(1, 100, 8);
	rows.insert(rows.end(), l1.begin(), l1.end());
	auto bySlot = admitAll(c, rows);
	ASSERT_EQ(bySlot.size(), 16u);
	for (auto &[slot, k] : bySlot)
		EXPECT_EQ(c.find(k.first, k.second), slot) << "layer " << k.first << " row " << k.second;

	// Row ids that are resident under layers 0 and 1 are different keys under layer 2;
	// rows never admitted miss under every layer.
	for (uint64_t row = 100; row < 108; row++)
		EXPECT_EQ(c.find(2, row), -1) << "row " << row;
	EXPECT_EQ(c.find(0, 108), -1);
	EXPECT_EQ(c.find(1, 99), -1);

	// A layer-1-only tier: a row admitted under layer 1 misses under layer 0.
	HotRowCache d(4, true);
	int64_t s = d.admit(1, 7);
	ASSERT_GE(s, 0);
	EXPECT_EQ(d.find(1, 7), s);
	EXPECT_EQ(d.find(0, 7), -1);
	EXPECT_EQ(d.find(3, 7), -1);

	// A tier of no capacity misses, admits and pins nothing.
	HotRowCache z(0, true);
	EXPECT_EQ(z.capacity(), 0u);
	EXPECT_EQ(z.find(0, 1), -1);
	EXPECT_EQ(z.admit(0, 1), -1);
	EXPECT_EQ(z.pin(0, 1), -1);
	EXPECT_EQ(z.find(0, 1), -1);
}

TEST(HotRows, Stats)
{
	HotRowCache c(8, true);
	Stats s0 = c.stats();
	EXPECT_EQ(s0.hits, 0u);
	EXPECT_EQ(s0.misses, 0u);
	EXPECT_EQ(s0.admissions, 0u);
	EXPECT_EQ(s0.evictions, 0u);
	EXPECT_EQ(s0.rejected, 0u);
	EXPECT_EQ(s0.pinned, 0u);
	EXPECT_EQ(s0.resident, 0u);

	// Misses are counted by find, admissions by admit.
	EXPECT_EQ(c.find(0, 1), -1);
	EXPECT_EQ(c.find(0, 2), -1);
	EXPECT_EQ(c.stats().misses, 2u);
	EXPECT_EQ(c.stats().hits, 0u);
	ASSERT_GE(c.admit(0, 1), 0);
	ASSERT_GE(c.admit(0, 2), 0);
	EXPECT_EQ(c.stats().admissions, 2u);
	EXPECT_EQ(c.stats().resident, 2u);
	EXPECT_EQ(c.stats().misses, 2u) << "admit must not count a lookup";

	// Hits are counted by find.
	for (int i = 0; i < 3; i++) {
		EXPECT_GE(c.find(0, 1), 0);
		EXPECT_GE(c.find(0, 2), 0);
	}
	EXPECT_EQ(c.stats().hits, 6u);
	EXPECT_EQ(c.find(0, 3), -1);
	EXPECT_EQ(c.stats().misses, 3u);

	// A pin is counted as pinned and resident, not as an admission.
	ASSERT_GE(c.pin(5, 5), 0);
	EXPECT_EQ(c.stats().pinned, 1u);
	EXPECT_EQ(c.stats().resident, 3u);
	EXPECT_EQ(c.stats().admissions, 2u);

	// Nothing was full: nothing evicted or rejected.
	EXPECT_EQ(c.stats().evictions, 0u);
	EXPECT_EQ(c.stats().rejected, 0u);
}

TEST(HotRows, StaticOnlyTier)
{
	const size_t cap = 8;
	HotRowCache c(cap, false);
	EXPECT_EQ(c.capacity(), cap);

	// No admission at all, not even into free slots, however often a row is looked up.
	for (int i = 0; i < 100; i++)
		EXPECT_EQ(c.find(0, 42), -1);
	EXPECT_EQ(c.admit(0, 42), -1);
	EXPECT_EQ(c.admit(1, 1), -1);
	EXPECT_EQ(c.stats().admissions, 0u);
	EXPECT_EQ(c.stats().resident, 0u);

	// Pins fill the tier with distinct slots, and find hits them.
	std::map<int64_t, Key> bySlot;
	for (uint64_t row = 0; row < cap; row++) {
		uint32_t layer = (uint32_t)(row % 3);
		int64_t s = c.pin(layer, row * 1000);
		ASSERT_GE(s, 0) << "row " << row;
		ASSERT_LT(s, (int64_t)cap);
		ASSERT_TRUE(bySlot.emplace(s, Key{layer, row * 1000}).second) << "slot " << s << " handed out twice";
	}
	EXPECT_EQ(c.stats().pinned, cap);
	EXPECT_EQ(c.stats().resident, cap);
	for (auto &[slot, k] : bySlot)
		EXPECT_EQ(c.find(k.first, k.second), slot);

	// Full: a new pin fails, a repeated pin returns the row's slot, admit still refuses.
	EXPECT_EQ(c.pin(7, 7), -1);
	EXPECT_EQ(c.find(7, 7), -1);
	for (auto &[slot, k] : bySlot)
		EXPECT_EQ(c.pin(k.first, k.second), slot);
	EXPECT_EQ(c.stats().pinned, cap) << "re-pinning a pinned row must not count it twice";
	EXPECT_EQ(c.admit(7, 7), -1);
	EXPECT_EQ(c.stats().admissions, 0u);
	EXPECT_EQ(c.stats().evictions, 0u);
	for (auto &[slot, k] : bySlot)
		EXPECT_EQ(c.find(k.first, k.second), slot);
}

TEST(HotRows, TinyLfuAdmissionWhenFull)
{
	const size_t cap = 64;
	HotRowCache c(cap, true);
	auto residents = rowsOf(0, 1000, cap);
	auto bySlot = admitAll(c, residents);
	ASSERT_EQ(bySlot.size(), cap);
	// Every resident is looked up many times (and so has its CLOCK reference bit set).
	lookUp(c, residents, 30);
	EXPECT_EQ(c.stats().hits, 30 * cap);

	// Rows seen once are rejected: each admit sweeps the CLOCK past set reference bits
	// and compares with a resident seen 30 times.
	const Stats before = c.stats();
	auto cold = rowsOf(9, 5000, 8);
	for (auto &[layer, row] : cold) {
		ASSERT_EQ(c.find(layer, row), -1);
		EXPECT_EQ(c.admit(layer, row), -1) << "a row seen once displaced a popular resident: row " << row;
	}
	EXPECT_EQ(c.stats().rejected, before.rejected + cold.size());
	EXPECT_EQ(c.stats().admissions, before.admissions);
	EXPECT_EQ(c.stats().evictions, 0u);
	EXPECT_EQ(c.stats().resident, cap);
	for (auto &[layer, row] : cold)
		EXPECT_EQ(c.find(layer, row), -1);

	// A row looked up ten times as often as any resident is admitted over a victim.
	const uint32_t hotLayer = 2;
	const uint64_t hotRow = 777;
	for (int i = 0; i < 300; i++)
		ASSERT_EQ(c.find(hotLayer, hotRow), -1);
	const Stats mid = c.stats();
	int64_t s = c.admit(hotLayer, hotRow);
	ASSERT_GE(s, 0) << "a row looked up 300 times was rejected";
	ASSERT_LT(s, (int64_t)cap);
	EXPECT_EQ(c.stats().evictions, mid.evictions + 1);
	EXPECT_EQ(c.stats().admissions, mid.admissions + 1);
	EXPECT_EQ(c.stats().rejected, mid.rejected);
	EXPECT_EQ(c.stats().resident, cap);
	EXPECT_EQ(c.find(hotLayer, hotRow), s);

	// The victim was the resident of that slot; every other resident kept its slot.
	ASSERT_TRUE(bySlot.count(s));
	const Key victim = bySlot[s];
	EXPECT_EQ(c.find(victim.first, victim.second), -1) << "the evicted row is still found";
	for (auto &[slot, k] : bySlot) {
		if (slot != s) {
			EXPECT_EQ(c.find(k.first, k.second), slot) << "row " << k.second;
		}
	}
}

TEST(HotRows, ClockSparesReferencedRows)
{
	// Eight residents of which four are looked up again (CLOCK reference bit set): a
	// newcomer that beats the residents' frequency takes the slot of one of the four that
	// were not, wherever the CLOCK hand stands.
	const size_t cap = 8;
	HotRowCache c(cap, true);
	auto rows = rowsOf(0, 300, cap);
	auto bySlot = admitAll(c, rows);
	ASSERT_EQ(bySlot.size(), cap);
	std::vector<Key> referenced(rows.begin(), rows.begin() + cap / 2);
	std::vector<Key> idle(rows.begin() + cap / 2, rows.end());
	for (auto &[layer, row] : referenced)
		ASSERT_GE(c.find(layer, row), 0);

	for (int i = 0; i < 20; i++)
		ASSERT_EQ(c.find(5, 99), -1);
	int64_t s = c.admit(5, 99);
	ASSERT_GE(s, 0) << "a row looked up 20 times lost to rows looked up at most once";
	EXPECT_EQ(c.stats().evictions, 1u);
	ASSERT_TRUE(bySlot.count(s));
	const Key victim = bySlot[s];
	EXPECT_TRUE(std::find(idle.begin(), idle.end(), victim) != idle.end())
		<< "evicted row " << victim.second << ", which was just looked up";
	for (auto &[layer, row] : referenced)
		EXPECT_GE(c.find(layer, row), 0) << "referenced row " << row << " evicted";
	size_t idleLeft = 0;
	for (auto &[layer, row] : idle)
		idleLeft += c.find(layer, row) >= 0;
	EXPECT_EQ(idleLeft, idle.size() - 1);
}

TEST(HotRows, PinsSurviveAdmissionsAndClears)
{
	const size_t cap = 64, nPinned = 16;
	HotRowCache c(cap, true);
	std::map<int64_t, Key> pinned;
	for (auto &[layer, row] : rowsOf(3, 0, nPinned)) {
		int64_t s = c.pin(layer, row);
		ASSERT_GE(s, 0);
		ASSERT_TRUE(pinned.emplace(s, Key{layer, row}).second);
	}
	// The rest of the tier: rows admitted once and never looked up again.
	auto filler = rowsOf(0, 0, cap - nPinned);
	auto fillerSlots = admitAll(c, filler);
	for (auto &[slot, k] : fillerSlots)
		EXPECT_FALSE(pinned.count(slot)) << "admit reused pinned slot " << slot;
	ASSERT_EQ(c.stats().resident, cap);

	// Popular rows stream in, found and admitted as the agent does. The pinned rows are
	// never looked up (the coldest rows of all), yet no admission may take their slots.
	auto hot = rowsOf(4, 0, cap - nPinned);
	for (int round = 0; round < 300; round++)
		for (auto &[layer, row] : hot)
			if (c.find(layer, row) < 0) {
				int64_t s = c.admit(layer, row);
				if (s >= 0) {
					ASSERT_FALSE(pinned.count(s)) << "admit evicted pinned slot " << s;
				}
			}
	EXPECT_GT(c.stats().evictions, 0u);
	EXPECT_EQ(c.stats().pinned, nPinned);
	for (auto &[slot, k] : pinned)
		EXPECT_EQ(c.find(k.first, k.second), slot) << "pinned row " << k.second;

	// clearUnpinned: pins keep their slots, everything else is forgotten.
	size_t hotResident = 0;
	for (auto &[layer, row] : hot)
		hotResident += c.find(layer, row) >= 0;
	EXPECT_GT(hotResident, 0u);
	c.clearUnpinned();
	EXPECT_EQ(c.stats().resident, nPinned);
	EXPECT_EQ(c.stats().pinned, nPinned);
	for (auto &[slot, k] : pinned)
		EXPECT_EQ(c.find(k.first, k.second), slot) << "pinned row " << k.second;
	for (auto &[layer, row] : hot)
		EXPECT_EQ(c.find(layer, row), -1) << "row " << row << " survived clearUnpinned";
	for (auto &[layer, row] : filler)
		EXPECT_EQ(c.find(layer, row), -1) << "row " << row << " survived clearUnpinned";
	// The freed capacity is free again: new rows fill exactly the unpinned slots.
	auto fresh = admitAll(c, rowsOf(6, 0, cap - nPinned));
	for (auto &[slot, k] : fresh)
		EXPECT_FALSE(pinned.count(slot)) << "admit reused pinned slot " << slot;
	EXPECT_EQ(c.stats().resident, cap);

	// clear: pins included.
	c.clear();
	EXPECT_EQ(c.stats().pinned, 0u);
	EXPECT_EQ(c.stats().resident, 0u);
	for (auto &[slot, k] : pinned)
		EXPECT_EQ(c.find(k.first, k.second), -1) << "pinned row " << k.second << " survived clear";
	for (auto &[slot, k] : fresh)
		EXPECT_EQ(c.find(k.first, k.second), -1) << "row " << k.second << " survived clear";
	// The whole capacity can be pinned again.
	std::set<int64_t> again;
	for (auto &[layer, row] : rowsOf(8, 0, cap)) {
		int64_t s = c.pin(layer, row);
		ASSERT_GE(s, 0);
		ASSERT_TRUE(again.insert(s).second);
	}
	EXPECT_EQ(c.pin(8, cap), -1);
}

TEST(HotRows, FrequenciesFade)
{
	// The old popular set is looked up far past any counter's saturation: without aging
	// it could never be displaced (a newcomer must beat the victim's estimate strictly).
	const size_t cap = 64;
	HotRowCache c(cap, true);
	auto oldSet = rowsOf(0, 0, cap);
	auto newSet = rowsOf(1, 1u << 20, cap);
	(void)admitAll(c, oldSet);
	lookUp(c, oldSet, 2000);
	for (auto &[layer, row] : oldSet)
		ASSERT_GE(c.find(layer, row), 0);

	// Then only the new set is looked up: ~1.3 million finds on a 64-row tier, so the
	// sketch has aged all over many times, however the aging is scheduled.
	const Stats before = c.stats();
	for (int round = 0; round < 20000; round++)
		for (auto &[layer, row] : newSet)
			if (c.find(layer, row) < 0)
				(void)c.admit(layer, row);
	EXPECT_GE(c.stats().evictions, before.evictions + cap);

	for (auto &[layer, row] : newSet)
		EXPECT_GE(c.find(layer, row), 0) << "new popular row " << row << " not admitted";
	for (auto &[layer, row] : oldSet)
		EXPECT_EQ(c.find(layer, row), -1) << "faded row " << row << " still resident";
	// The new set now hits every time.
	const Stats settled = c.stats();
	lookUp(c, newSet, 10);
	EXPECT_EQ(c.stats().hits, settled.hits + 10 * cap);
	EXPECT_EQ(c.stats().misses, settled.misses);
}

TEST(HotRows, FrequencyFile)
{
	eptest::TempDir dir;
	const std::string path = dir.file("freq.txt");
	writeFile(path, "# layer row count\n"
			"0 10 5\n"
			"\n"
			"1 20 100   # the hottest\n"
			"   \t\n"
			"2 30 50\n"
			"# 9 9 9999 is commented out\n"
			"7 70 0\n"
			"3 40 7\n"
			"5 55 # COUNT omitted: it counts 1, above 7 70's 0\n");

	auto all = HotRowCache::loadFrequencyFile(path, 100);
	ASSERT_TRUE(all) << all.status().message();
	std::vector<Key> want = {{1, 20}, {2, 30}, {3, 40}, {0, 10}, {5, 55}, {7, 70}};
	EXPECT_EQ(*all, want);

	auto two = HotRowCache::loadFrequencyFile(path, 2);
	ASSERT_TRUE(two) << two.status().message();
	EXPECT_EQ(*two, (std::vector<Key>{{1, 20}, {2, 30}}));

	auto none = HotRowCache::loadFrequencyFile(path, 0);
	ASSERT_TRUE(none) << none.status().message();
	EXPECT_TRUE(none->empty());

	// Large ids survive the parse.
	const std::string big = dir.file("big.txt");
	writeFile(big, "61 123456789012 3\n60 5 4\n");
	auto b = HotRowCache::loadFrequencyFile(big, 10);
	ASSERT_TRUE(b) << b.status().message();
	EXPECT_EQ(*b, (std::vector<Key>{{60, 5}, {61, 123456789012ull}}));

	// A file of comments only is an empty hot set, not an error.
	const std::string empty = dir.file("empty.txt");
	writeFile(empty, "# nothing yet\n\n");
	auto e = HotRowCache::loadFrequencyFile(empty, 10);
	ASSERT_TRUE(e) << e.status().message();
	EXPECT_TRUE(e->empty());

	// Malformed lines: the error names the file and the line.
	struct Bad {
		const char *name, *text, *where;
	};
	for (const Bad &bad : {Bad{"no_row.txt", "0 10 5\n# ok\n7\n", ":3"},
			       Bad{"neg_count.txt", "1 2 -3\n", ":1"},
			       Bad{"neg_row.txt", "0 1 1\n1 -2 3\n", ":2"},
			       Bad{"word_row.txt", "\n4 many 3\n", ":2"},
			       Bad{"word_layer.txt", "0 1 1\nabc 1 2\n", ":2"},
			       Bad{"word_count.txt", "1 2 abc\n", ":1"},
			       Bad{"suffix_count.txt", "1 2 3x\n", ":1"},
			       Bad{"wide_layer.txt", "4294967296 1 1\n", ":1"},
			       Bad{"extra_field.txt", "1 2 3 4\n", ":1"}}) {
		const std::string p = dir.file(bad.name);
		writeFile(p, bad.text);
		auto r = HotRowCache::loadFrequencyFile(p, 10);
		ASSERT_FALSE(r) << bad.name << " was accepted";
		EXPECT_LT(r.code(), 0);
		EXPECT_NE(r.status().message().find(p + bad.where), std::string::npos)
			<< bad.name << ": " << r.status().message();
	}

	// A missing file: an error naming the file.
	const std::string missing = dir.file("missing.txt");
	auto m = HotRowCache::loadFrequencyFile(missing, 10);
	ASSERT_FALSE(m);
	EXPECT_EQ(m.code(), -ENOENT);
	EXPECT_NE(m.status().message().find(missing), std::string::npos) << m.status().message();
}

TEST(HotRows, ChurnMatchesAModel)
{
	// Thousands of random admissions, advance evictions, pins and clears on a tier whose
	// buckets fill past their four ways (a 1000-row tier: ~2 keys per bucket, so some
	// overflow into the next): after every step each resident row is found at the slot
	// it was given, and every evicted row is gone.
	const size_t cap = 1000;
	HotRowCache c(cap, true);
	std::map<Key, int64_t> model; // (layer, row) -> slot
	std::set<Key> pinned;
	std::mt19937_64 rng(7);
	auto check = [&](const char *when) {
		std::set<int64_t> slots;
		for (auto &[k, s] : model) {
			ASSERT_EQ(c.find(k.first, k.second), s) << when << ": row " << k.second;
			ASSERT_TRUE(slots.insert(s).second) << when << ": slot " << s << " held twice";
		}
		ASSERT_EQ(c.stats().resident, model.size()) << when;
	};
	auto draw = [&] { return Key{(uint32_t)(rng() % 3), rng() % 5000}; };
	for (int round = 0; round < 40; round++) {
		for (int i = 0; i < 400; i++) {
			Key k = draw();
			int64_t found = c.find(k.first, k.second);
			auto it = model.find(k);
			ASSERT_EQ(found, it == model.end() ? -1 : it->second) << "row " << k.second;
			if (found >= 0)
				continue;
			int64_t s = c.admit(k.first, k.second);
			if (s >= 0) {
				// The slot was free or taken from a victim the model must forget.
				for (auto v = model.begin(); v != model.end(); ++v)
					if (v->second == s) {
						ASSERT_FALSE(pinned.count(v->first)) << "a pinned row was evicted";
						model.erase(v);
						break;
					}
				model[k] = s;
			}
		}
		check("after admissions");
		const size_t before = model.size();
		const size_t evicted = c.refill(64);
		// The victims no longer resolve; every other row keeps its slot (check below).
		for (auto it = model.begin(); it != model.end();)
			it = c.find(it->first.first, it->first.second) < 0 ? model.erase(it) : std::next(it);
		ASSERT_EQ(model.size(), before - evicted);
		check("after refill");
		if (round % 10 == 9) {
			// Unpinned rows go; pins stay; then a few more rows are pinned into free slots.
			c.clearUnpinned();
			for (auto it = model.begin(); it != model.end();)
				it = pinned.count(it->first) ? std::next(it) : model.erase(it);
			check("after clearUnpinned");
			for (int i = 0; i < 5; i++) {
				Key p = draw();
				int64_t s = c.pin(p.first, p.second);
				ASSERT_GE(s, 0) << "a tier with free slots refused a pin";
				pinned.insert(p);
				model[p] = s;
			}
			check("after pins");
		}
	}
	for (const Key &p : pinned)
		EXPECT_GE(c.find(p.first, p.second), 0) << "pinned row " << p.second << " was evicted";
	EXPECT_GT(c.stats().evictions, 0u);
	c.clear();
	model.clear();
	check("after clear");
}
