// SPDX-License-Identifier: Apache-2.0
// test_multihost.cpp - 8 emulated host processes with a live replacement, SIGKILLed hosts and lease expiry, and the read-only mappings of agents and host slots.
#include "emu_util.hpp"

#include <chrono>
#include <fstream>
#include <thread>

#include "../../emulation/launcher/emulate.hpp"
#include "agent/agent.hpp"
#include "pool/host_registration.hpp"
#include "region/hugepages.hpp"

using namespace engrampool;
using namespace eptest;

namespace {

// tokenizer 1000, engram_vocab_size [3000, 4000], 4 heads, n_embed 64: two 2 MiB tables.
nlohmann::json multiModelJson()
{
	nlohmann::json j = tinyModelJson();
	j["name"] = "multi";
	j["engram_vocab_size"] = {3000, 4000};
	return j;
}

// An emul pool with a chosen lease, destroyed at scope end.
struct LeasePool {
	std::string uri = "emul:" + uniqueName("epmulti");
	explicit LeasePool(uint32_t leaseMs, uint64_t size = 32ull << 20, PagePref pages = PagePref::Auto)
	{
		CreateOptions o;
		o.size = size;
		o.pages = pages;
		auto s = Pool::create(uri, o, leaseMs);
		if (!s)
			throw std::runtime_error("create " + uri + ": " + s.message());
	}
	~LeasePool()
	{
		if (auto u = parseRegionUri(uri); u)
			(void)Region::destroy(*u);
	}
};

emulate::Options baseOptions(const std::string &uri, const ModelConfig &m)
{
	emulate::Options o;
	o.uri = uri;
	o.model = m;
	o.hosts = 8;
	o.steps = 200;
	o.batch = 8;
	o.seed = 11;
	o.prepare = true;
	o.timeoutS = 40;
	o.progress = true;
	return o;
}

Expected expectSeed(const ModelConfig &m, uint64_t seed)
{
	Expected e;
	for (uint32_t l : m.layerIds)
		e.tables[defaultTableName(m.name, l)] = {&m, seed};
	e.models = 1;
	return e;
}

} // namespace

// 8 hosts x 200 steps, every layer's table replaced at step 100: every row of every
// host matches its generation's seed, every host served both versions, and the old
// versions' space is back once the hosts moved on.
TEST(MultiHost, EightHostsWithLiveReplacement)
{
	ModelConfig m = makeModel(multiModelJson());
	LeasePool pool(2000);
	auto o = baseOptions(pool.uri, m);
	o.replaceAt = 100;
	auto r = emulate::run(o);
	ASSERT_TRUE(r) << r.status().message();
	printf("%s", emulate::toTable(*r).c_str());
	EXPECT_TRUE(r->ok);
	for (auto &f : r->failures)
		ADD_FAILURE() << f;
	EXPECT_EQ(r->wrongRows, 0u);
	ASSERT_EQ(r->hosts.size(), 8u);
	ASSERT_EQ(r->replaceGenerations.size(), m.layerIds.size());
	for (auto &h : r->hosts) {
		EXPECT_EQ(h.status, "ok") << "host " << h.index;
		EXPECT_GE(h.steps, 200u);
		EXPECT_GT(h.rowsChecked, 0u);
		ASSERT_FALSE(h.generations.empty());
		EXPECT_LT(h.generations.front(), r->replaceGenerations.front()) << "host " << h.index;
		EXPECT_GE(h.generations.back(), r->replaceGenerations.back()) << "host " << h.index;
	}
	EXPECT_GE(r->reclaimedTables, m.layerIds.size());
	EXPECT_EQ(r->pendingReclaim, 0u);
	EXPECT_EQ(r->usedBytes, r->visibleExtentBytes);
	EXPECT_TRUE(r->verifyOk);
	// Independently: the pool holds exactly the new version, verify passes, nothing leaked.
	EXPECT_EQ(checkPoolHolds(pool.uri, expectSeed(m, r->newSeed), true), "");
	// Every host detached cleanly.
	auto p = openPool(pool.uri, false);
	for (auto &h : p->hosts())
		EXPECT_FALSE(h.live) << "slot " << h.index;
}

// Two of eight hosts SIGKILLed (before the replacement, so they pin the old version)
// under a short lease: the survivors finish with zero wrong rows, gc releases the
// killed hosts' slots after the lease, and the versions they held are reclaimed.
TEST(MultiHost, KilledHostsLeasesExpireAndSpaceIsReclaimed)
{
	ModelConfig m = makeModel(multiModelJson());
	LeasePool pool(300);
	auto o = baseOptions(pool.uri, m);
	o.replaceAt = 80;
	o.killHosts = 2;
	o.heartbeatMs = 50;
	auto r = emulate::run(o);
	ASSERT_TRUE(r) << r.status().message();
	printf("%s", emulate::toTable(*r).c_str());
	EXPECT_TRUE(r->ok);
	for (auto &f : r->failures)
		ADD_FAILURE() << f;
	EXPECT_EQ(r->wrongRows, 0u);
	ASSERT_EQ(r->killedHosts.size(), 2u);
	uint32_t survivors = 0;
	std::set<int> killedSlots;
	for (auto &h : r->hosts) {
		bool killed = std::find(r->killedHosts.begin(), r->killedHosts.end(), h.index) != r->killedHosts.end();
		if (killed) {
			EXPECT_EQ(h.status, "killed");
			killedSlots.insert(h.slot);
			// Killed before the replacement: only old generations.
			for (auto g : h.generations)
				EXPECT_LT(g, r->replaceGenerations.front());
		} else {
			EXPECT_EQ(h.status, "ok") << "host " << h.index;
			EXPECT_GE(h.steps, 200u);
			EXPECT_GE(h.generations.back(), r->replaceGenerations.back());
			survivors++;
		}
	}
	EXPECT_EQ(survivors, 6u);
	EXPECT_TRUE(r->killedSlotsReleased);
	if (r->killedLeasesOutlivedRun) // the usual case: survivors end within the lease
		EXPECT_EQ(r->pendingHeldByKilled, m.layerIds.size());
	EXPECT_EQ(r->pendingReclaim, 0u);
	EXPECT_EQ(r->usedBytes, r->visibleExtentBytes);
	EXPECT_EQ(checkPoolHolds(pool.uri, expectSeed(m, r->newSeed), true), "");
	auto p = openPool(pool.uri, false);
	for (auto &h : p->hosts()) {
		EXPECT_FALSE(killedSlots.count((int)h.index)) << "killed host's slot " << h.index << " still listed";
		EXPECT_FALSE(h.live);
	}
}

// The lease path step by step: a host pinned to generation g is SIGKILLed; a
// replacement cannot be reclaimed while its lease runs, is once it expired, and gc
// (the CLI) releases the slot.
TEST(MultiHost, KilledHostPinsOldVersionUntilLeaseExpires)
{
	ModelConfig m = makeModel(multiModelJson());
	LeasePool pool(300);
	{
		auto w = openPool(pool.uri, true);
		for (uint32_t l : m.layerIds)
			ASSERT_TRUE(importRandom(*w, m, l, 5));
	}
	int ready[2];
	ASSERT_EQ(pipe(ready), 0);
	pid_t host = forkChild([&] {
		close(ready[0]);
		setenv("EP_HOST_ID", "00000000000000000000000000000b0b", 1);
		AgentConfig ac;
		ac.poolUri = pool.uri;
		ac.model = &m;
		ac.maxBatchTokens = 64;
		ac.maxSequences = 8;
		ac.registerHost = true;
		ac.hostIndex = 9;
		ac.heartbeatMs = 50;
		auto a = HostAgent::create(ac);
		if (!a)
			return 2;
		int64_t toks[4] = {1, 2, 3, 4};
		BatchEntry e{1, toks, 4, kSeqStart};
		uint64_t t = 0;
		// Hold an unreleased ticket: the generation stays pinned.
		if ((*a)->prefetch(&e, 1, &t) != 0 || (*a)->wait(t) != 0)
			return 3;
		char c = 1;
		if (write(ready[1], &c, 1) != 1)
			return 4;
		for (;;)
			pause();
	});
	close(ready[1]);
	char c = 0;
	ASSERT_EQ(read(ready[0], &c, 1), 1);
	close(ready[0]);
	std::this_thread::sleep_for(std::chrono::milliseconds(120)); // a heartbeat published the pin
	kill(host, SIGKILL);
	EXPECT_TRUE(killedBySigkill(waitChild(host)));

	auto w = openPool(pool.uri, true);
	for (uint32_t l : m.layerIds)
		ASSERT_TRUE(importRandom(*w, m, l, 6, "", true));
	auto hostsNow = w->hosts();
	bool sawSlot = false;
	for (auto &h : hostsNow)
		if (h.index == 9)
			sawSlot = true;
	EXPECT_TRUE(sawSlot);
	auto freed = w->reclaim();
	ASSERT_TRUE(freed);
	auto s = w->snapshot();
	ASSERT_TRUE(s);
	bool stillLive = false;
	for (auto &h : w->hosts())
		if (h.index == 9 && h.live)
			stillLive = true;
	if (stillLive) // within the lease: the killed host still pins the old versions
		EXPECT_EQ(s->pendingReclaim, m.layerIds.size());
	w.reset();
	std::this_thread::sleep_for(std::chrono::milliseconds(400));
	std::string out;
	std::string cli = buildRoot() + "/pool_manager/engrampool";
	ASSERT_EQ(runCommand(cli + " gc " + pool.uri + " --json", &out), 0) << out;
	EXPECT_NE(out.find("\"pending_reclaim\": 0"), std::string::npos) << out;
	auto p = openPool(pool.uri, false);
	for (auto &h : p->hosts())
		EXPECT_NE(h.index, 9u) << "expired slot not released";
	EXPECT_EQ(checkPoolHolds(pool.uri, expectSeed(m, 6), true), "");
	ASSERT_EQ(runCommand(cli + " hosts " + pool.uri, &out), 0) << out;
}

// The CLI front end: `engrampool emulate --prepare --replace-at --json`.
TEST(MultiHost, EmulateCommand)
{
	ModelConfig m = makeModel(multiModelJson());
	LeasePool pool(1000);
	TempDir dir;
	std::string model = dir.file("multi.json");
	std::ofstream(model) << multiModelJson().dump();
	std::string out;
	std::string cli = buildRoot() + "/pool_manager/engrampool";
	int rc = runCommand(cli + " emulate " + pool.uri + " --model " + model +
				    " --hosts 4 --steps 60 --replace-at 30 --seed 3 --prepare --json",
			    &out, false);
	ASSERT_EQ(rc, 0) << out;
	auto j = nlohmann::json::parse(out);
	EXPECT_TRUE(j["ok"].get<bool>());
	EXPECT_EQ(j["total"]["wrong_rows"].get<uint64_t>(), 0u);
	EXPECT_EQ(j["hosts"].size(), 4u);
	EXPECT_EQ(j["pending_reclaim"].get<uint64_t>(), 0u);
	// Wrong seed: refused before any host starts.
	rc = runCommand(cli + " emulate " + pool.uri + " --model " + model + " --hosts 2 --steps 5 --seed 4", &out);
	EXPECT_NE(rc, 0);
	EXPECT_NE(out.find("--seed 4"), std::string::npos) << out;
}

// Permissions: an agent's pool mapping is read-only (a store faults), and a host's
// only writable mapping of the pool is its own slot page.
TEST(MultiHost, AgentMappingIsReadOnlyAndSlotPageIsPrivate)
{
	ModelConfig m = makeModel(multiModelJson());
	// 4 KiB pages: a slot page of its own needs pages as small as a slot (on 2 MiB pages,
	// hugetlbfs like devdax, a host's writable mapping is the whole 2 MiB metadata unit).
	LeasePool pool(1000, 32ull << 20, PagePref::Small);
	{
		auto w = openPool(pool.uri, true);
		for (uint32_t l : m.layerIds)
			ASSERT_TRUE(importRandom(*w, m, l, 5));
	}
	// Each child claims its own slot: a child that faulted still holds its slot for the lease.
	int nextIndex = 10;
	auto agentChild = [&](uint64_t offset) {
		int index = nextIndex++;
		return forkChild([&, offset, index] {
			AgentConfig ac;
			ac.poolUri = pool.uri;
			ac.model = &m;
			ac.maxBatchTokens = 64;
			ac.maxSequences = 8;
			ac.registerHost = true;
			ac.hostIndex = index;
			auto a = HostAgent::create(ac);
			if (!a) {
				fprintf(stderr, "agent: %s\n", a.status().message().c_str());
				return 2;
			}
			auto *base = const_cast<uint8_t *>((*a)->pool().region().base());
			*reinterpret_cast<volatile uint8_t *>(base + offset) = 0x5a;
			return 0; // not reached
		});
	};
	// Data area, catalog, its own slot page (index 12) and another host's, through the pool mapping.
	for (uint64_t off : std::initializer_list<uint64_t>{format::kDataOffset + 64, format::kCatalogOffset + 8,
			     format::kHostsOffset + 12ull * format::kHostSlotSize,
			     format::kHostsOffset + 4ull * format::kHostSlotSize}) {
		int st = waitChild(agentChild(off));
		EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) << "offset " << off << ": " << describeStatus(st);
	}
	// A registered host: exactly one writable mapping of the pool's backing object, one
	// page, at its own slot.
	auto u = parseRegionUri(pool.uri);
	ASSERT_TRUE(u);
	std::string backing = hugepages::locateEmul(u->name);
	ASSERT_EQ(backing, u->path);
	int st = waitChild(forkChild([&] {
		auto p = openPool(pool.uri, false);
		auto reg = HostRegistration::attach(*p, 6, *p->committedGeneration(), 0);
		if (!reg)
			return 2;
		if (!(*reg)->heartbeat(*p->committedGeneration()))
			return 3;
		std::ifstream maps("/proc/self/maps");
		std::string line;
		int writable = 0, right = 0;
		while (std::getline(maps, line)) {
			if (line.find(backing) == std::string::npos)
				continue;
			unsigned long lo = 0, hi = 0, off = 0;
			char perms[8] = {};
			if (sscanf(line.c_str(), "%lx-%lx %4s %lx", &lo, &hi, perms, &off) != 4)
				return 4;
			if (perms[1] != 'w')
				continue;
			writable++;
			if (hi - lo == format::kHostSlotSize && off == format::kHostsOffset + 6ull * format::kHostSlotSize)
				right++;
		}
		if (writable != 1 || right != 1) {
			fprintf(stderr, "writable mappings of %s: %d (own slot page: %d)\n", backing.c_str(), writable, right);
			return 5;
		}
		return 0;
	}));
	EXPECT_TRUE(exitedOk(st)) << describeStatus(st);
	auto p = openPool(pool.uri, false);
	bool found = false;
	for (auto &h : p->hosts())
		if (h.index == 6)
			found = true;
	EXPECT_TRUE(found) << "the registered host's slot was not written";
}
