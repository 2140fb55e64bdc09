// SPDX-License-Identifier: Apache-2.0
// test_writers.cpp - one writer at a time, mastership (EP_HOST_ID, master --take, fencing epochs), reclamation vs hosts.
#include "pool_fixture.hpp"

#include <atomic>
#include <chrono>
#include <thread>

#include "pool/host_registration.hpp"
#include "util/host_identity.hpp"
#include "util/units.hpp"

using namespace engrampool;
using namespace engrampool::format;
using namespace eptest;

namespace {

constexpr const char *kOtherHost = "0123456789abcdef0123456789abcdef";

uint64_t msSince(std::chrono::steady_clock::time_point t0)
{
	return (uint64_t)std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
		.count();
}

} // namespace

TEST(Writers, SecondWriterFailsWithEBUSYWithinItsWait)
{
	ScopedPool sp("emul");
	auto w1 = openPool(sp.uri(), true);
	OpenOptions o;
	o.write = true;
	o.lockWaitMs = 300;
	auto t0 = std::chrono::steady_clock::now();
	auto w2 = Pool::open(sp.uri(), o);
	uint64_t ms = msSince(t0);
	ASSERT_FALSE(w2);
	EXPECT_EQ(w2.code(), -EBUSY);
	EXPECT_NE(w2.status().message().find("writer lock"), std::string::npos) << w2.status().message();
	EXPECT_GE(ms, 250u) << "it waited for the lock";
	EXPECT_LT(ms, 3000u) << "and gave up after about lockWaitMs";
	// Readers are never blocked by the writer.
	auto r = openPool(sp.uri(), false);
	EXPECT_TRUE(r->snapshot());
	// The CLI writer commands fail the same way, with one line.
	CliResult c = runCli("rm --wait-lock 100 " + sp.uri() + " t");
	EXPECT_EQ(c.rc, 1);
	ASSERT_EQ(c.errLines().size(), 1u) << c.err;
	EXPECT_NE(c.err.find("writer lock"), std::string::npos) << c.err;
	c = runCli("gc --wait-lock 100 " + sp.uri());
	EXPECT_EQ(c.rc, 1);
	// Once the first writer is gone the next one gets the lock.
	w1.reset();
	EXPECT_TRUE(openPool(sp.uri(), true, 100)->isWriter());
}

TEST(Writers, SecondWriterWaitsForTheFirst)
{
	ScopedPool sp("emul");
	ModelConfig cfg = tinyModel();
	auto w1 = openPool(sp.uri(), true);
	std::thread releaser([&] {
		std::this_thread::sleep_for(std::chrono::milliseconds(300));
		ASSERT_TRUE(importRandom(*w1, cfg, 1, 1));
		w1.reset();
	});
	auto t0 = std::chrono::steady_clock::now();
	auto w2 = openPool(sp.uri(), true, 10000);
	uint64_t ms = msSince(t0);
	releaser.join();
	EXPECT_GE(ms, 250u);
	// The waiting writer sees what the first one published, never a half state.
	auto s = w2->snapshot();
	ASSERT_TRUE(s);
	EXPECT_EQ(s->generation, 2u);
	ASSERT_EQ(s->tables.size(), 1u);
	auto r = importRandom(*w2, cfg, 15, 2);
	ASSERT_TRUE(r) << r.status().message();
	EXPECT_EQ(r->generation, 3u);
}

TEST(Mastership, OtherHostIsNotMasterUntilItTakesMastership)
{
	ScopedPool sp("file");
	ModelConfig cfg = tinyModel();
	{
		auto w = openPool(sp.uri(), true);
		ASSERT_TRUE(importRandom(*w, cfg, 1, 1));
	}
	Uuid me = localHostId(), other{};
	ASSERT_TRUE(parseUuid(kOtherHost, other));
	ASSERT_NE(me, other);
	std::string env = std::string("EP_HOST_ID=") + kOtherHost + " ";
	{
		ScopedEnv e("EP_HOST_ID", kOtherHost);
		OpenOptions o;
		o.write = true;
		auto w = Pool::open(sp.uri(), o);
		ASSERT_FALSE(w);
		EXPECT_EQ(w.code(), EP_E_NOT_MASTER);
		EXPECT_NE(w.status().message().find("master --take"), std::string::npos) << w.status().message();
		// Reading needs no mastership.
		EXPECT_TRUE(openPool(sp.uri(), false)->snapshot());
	}
	CliResult c = runCli("rm " + sp.uri() + " tiny/layer1", env);
	EXPECT_EQ(c.rc, 1);
	ASSERT_EQ(c.errLines().size(), 1u) << c.err;
	EXPECT_NE(c.err.find("not the pool master"), std::string::npos) << c.err;

	// The other host takes over: epoch 2.
	c = runCli("master --take --json " + sp.uri(), env);
	ASSERT_EQ(c.rc, 0) << c.err;
	auto j = c.json();
	ASSERT_FALSE(j.is_discarded()) << c.out;
	EXPECT_EQ(j["epoch"], 2);
	EXPECT_EQ(j["this_host"], true);
	EXPECT_EQ(j["master"], uuidToString(other));
	{
		auto m = openPool(sp.uri(), false)->master();
		ASSERT_TRUE(m);
		EXPECT_EQ(m->host, other);
		EXPECT_EQ(m->epoch, 2u);
	}
	// Writes now work from that identity (in process and through the CLI)...
	{
		ScopedEnv e("EP_HOST_ID", kOtherHost);
		auto w = openPool(sp.uri(), true);
		auto r = importRandom(*w, cfg, 15, 2);
		ASSERT_TRUE(r) << r.status().message();
		EXPECT_EQ(r->generation, 3u);
	}
	c = runCli("rm --json " + sp.uri() + " tiny/layer15", env);
	ASSERT_EQ(c.rc, 0) << c.err;
	EXPECT_EQ(c.json()["generation"], 4);
	// ...and the old identity is fenced off.
	{
		OpenOptions o;
		o.write = true;
		auto w = Pool::open(sp.uri(), o);
		EXPECT_EQ(w.code(), EP_E_NOT_MASTER) << w.status().message();
	}
	c = runCli("master --json " + sp.uri());
	ASSERT_EQ(c.rc, 0) << c.err;
	EXPECT_EQ(c.json()["this_host"], false);
	EXPECT_EQ(c.json()["epoch"], 2);
	// Taking it back bumps the epoch again (the records alternate, never overwriting the valid one).
	c = runCli("master --take --json " + sp.uri());
	ASSERT_EQ(c.rc, 0) << c.err;
	EXPECT_EQ(c.json()["epoch"], 3);
	EXPECT_EQ(c.json()["this_host"], true);
	auto w = openPool(sp.uri(), true);
	EXPECT_TRUE(w->removeTable("tiny/layer1").isOk());
	auto s = w->snapshot();
	ASSERT_TRUE(s);
	EXPECT_EQ(s->generation, 5u);
	EXPECT_TRUE(s->tables.empty());
}

TEST(Mastership, WriterWithAStaleEpochPublishesNothing)
{
	ScopedPool sp("file");
	ModelConfig cfg = tinyModel();
	auto w = openPool(sp.uri(), true);
	ASSERT_TRUE(importRandom(*w, cfg, 1, 1));
	uint64_t gen = *w->committedGeneration();
	// Another host takes mastership while this writer is open. flock does not reach
	// across hosts, so write its master record the way its takeMaster would.
	auto cur = w->master();
	ASSERT_TRUE(cur);
	MasterRecord rec[2];
	auto raw = peekBytes(sp.backingPath(), kMasterOffset, sizeof(rec));
	std::memcpy(rec, raw.data(), sizeof(rec));
	int target = rec[0].epoch == cur->epoch ? 1 : 0;
	MasterRecord m{};
	Uuid other{};
	ASSERT_TRUE(parseUuid(kOtherHost, other));
	std::memcpy(m.hostUuid, other.data(), 16);
	m.epoch = cur->epoch + 1;
	setFixedString(m.hostname, sizeof(m.hostname), "other");
	m.crc = masterCrc(m);
	pokeBytes(sp.backingPath(), kMasterOffset + target * sizeof(MasterRecord), &m, sizeof(m));

	auto r = importRandom(*w, cfg, 15, 2);
	EXPECT_EQ(r.code(), EP_E_STALE_EPOCH) << r.status().message();
	EXPECT_EQ(w->removeTable("tiny/layer1").code(), EP_E_STALE_EPOCH);
	auto rep = importRandom(*w, cfg, 1, 3, "", true);
	EXPECT_EQ(rep.code(), EP_E_STALE_EPOCH);
	auto rd = openPool(sp.uri(), false);
	auto s = rd->snapshot();
	ASSERT_TRUE(s) << s.status().message();
	EXPECT_EQ(s->generation, gen);
	ASSERT_EQ(s->tables.size(), 1u);
	EXPECT_EQ(s->tables[0].name, "tiny/layer1");
	EXPECT_EQ(rowMismatches(*rd, s->tables[0], cfg.rowFormat, 1, 200), 0u) << "the old version is intact";
	w.reset();
	// The new master's first open recovers what the fenced writer left behind.
	ScopedEnv e("EP_HOST_ID", kOtherHost);
	auto nw = openPool(sp.uri(), true);
	auto ns = nw->snapshot();
	ASSERT_TRUE(ns);
	EXPECT_EQ(ns->freeSlots, kCatalogSlots - 2) << "orphan entries of the fenced writer are freed";
	EXPECT_EQ(ns->usedBytes, s->tables[0].extentBytes);
	auto ok = importRandom(*nw, cfg, 15, 2);
	ASSERT_TRUE(ok) << ok.status().message();
	EXPECT_EQ(ok->generation, gen + 1);
}

TEST(Reclamation, RemovedTableWaitsForLiveHostsToMoveOn)
{
	ScopedPool sp("emul");
	ModelConfig cfg = tinyModel();
	auto w = openPool(sp.uri(), true);
	auto a = importRandom(*w, cfg, 1, 1, "a");
	ASSERT_TRUE(a);
	uint64_t gen = a->generation;
	// A live host that has observed generation `gen` only.
	HostSlot h{};
	Uuid id{};
	ASSERT_TRUE(parseUuid(kOtherHost, id));
	std::memcpy(h.hostUuid, id.data(), 16);
	setFixedString(h.hostname, sizeof(h.hostname), "reader");
	h.pid = 1;
	h.state = 1;
	h.attachTimeNs = h.heartbeatNs = nowRealtimeNs();
	h.observedGen = gen;
	h.leaseMs = 60000;
	ASSERT_TRUE(w->writeHostSlot(7, h).isOk());
	ASSERT_TRUE(w->removeTable("a").isOk());
	auto s = w->snapshot();
	ASSERT_TRUE(s);
	EXPECT_EQ(s->findTable("a"), nullptr);
	EXPECT_EQ(s->pendingReclaim, 1u) << "host 7 may still read a";
	EXPECT_EQ(s->usedBytes, a->table.extentBytes);
	// Its bytes are intact for that host.
	EXPECT_EQ(rowMismatches(*w, a->table, cfg.rowFormat, 1, 100), 0u);
	// The next import must not land in a's extent.
	auto b = importRandom(*w, cfg, 1, 2, "b");
	ASSERT_TRUE(b);
	EXPECT_NE(b->table.dataOffset, a->table.dataOffset);
	EXPECT_EQ(rowMismatches(*w, a->table, cfg.rowFormat, 1, 100), 0u);
	auto r = w->reclaim();
	ASSERT_TRUE(r);
	EXPECT_EQ(*r, 0u);
	CliResult c = runCli("stat --json " + sp.uri());
	ASSERT_EQ(c.rc, 0) << c.err;
	EXPECT_EQ(c.json()["pending_reclaim"], 1);
	EXPECT_EQ(c.json()["hosts_live"], 1);
	// The host moves on: the space is freed.
	h.observedGen = *w->committedGeneration();
	ASSERT_TRUE(w->writeHostSlot(7, h).isOk());
	r = w->reclaim();
	ASSERT_TRUE(r);
	EXPECT_EQ(*r, 2u) << "a and the model record removed with it (b brought a new one)";
	s = w->snapshot();
	ASSERT_TRUE(s);
	EXPECT_EQ(s->pendingReclaim, 0u);
	EXPECT_EQ(s->usedBytes, b->table.extentBytes);
	auto hs = w->hosts();
	ASSERT_EQ(hs.size(), 1u);
	EXPECT_TRUE(hs[0].live);
	EXPECT_EQ(hs[0].hostname, "reader");
}

TEST(Reclamation, ExpiredHostNoLongerBlocksAndIsReleased)
{
	ScopedPool sp("emul");
	ModelConfig cfg = tinyModel();
	auto w = openPool(sp.uri(), true);
	auto a = importRandom(*w, cfg, 1, 1, "a");
	ASSERT_TRUE(a);
	HostSlot h{};
	setFixedString(h.hostname, sizeof(h.hostname), "dead");
	h.state = 1;
	h.attachTimeNs = h.heartbeatNs = nowRealtimeNs() - 120ull * 1000000000ull; // 2 minutes ago
	h.observedGen = 1;
	h.leaseMs = 1000;
	ASSERT_TRUE(w->writeHostSlot(2, h).isOk());
	auto hs = w->hosts();
	ASSERT_EQ(hs.size(), 1u);
	EXPECT_FALSE(hs[0].live);
	ASSERT_TRUE(w->removeTable("a").isOk());
	auto s = w->snapshot();
	ASSERT_TRUE(s);
	EXPECT_EQ(s->pendingReclaim, 0u) << "a host whose lease expired blocks nothing";
	w.reset();
	CliResult c = runCli("gc --json " + sp.uri());
	ASSERT_EQ(c.rc, 0) << c.err;
	EXPECT_EQ(c.json()["pending_reclaim"], 0);
	EXPECT_TRUE(openPool(sp.uri(), false)->hosts().empty()) << "the expired slot was released";
}

// A reader that copies a host slot while its owner rewrites it must see the old or the
// new slot, never a torn one reported as corrupted (which also dropped observedGen to 0
// and made reclaim free a live host's extents).
TEST(HostSlots, ReadersNeverSeeAHeartbeatMidWriteAsCorrupted)
{
	ScopedPool sp("emul");
	auto p = openPool(sp.uri(), false);
	auto reg = HostRegistration::attach(*p, 3, 7, 0);
	ASSERT_TRUE(reg) << reg.status().message();
	std::atomic<bool> stop{false};
	std::thread beat([&] {
		while (!stop.load(std::memory_order_relaxed))
			(void)(*reg)->heartbeat(7);
	});
	auto reader = openPool(sp.uri(), false);
	size_t corrupt = 0, seen = 0;
	auto t0 = std::chrono::steady_clock::now();
	while (msSince(t0) < 300) {
		for (auto &h : reader->hosts()) {
			seen++;
			if (h.corrupt || h.observedGen != 7)
				corrupt++;
		}
	}
	stop = true;
	beat.join();
	EXPECT_GT(seen, 0u);
	EXPECT_EQ(0u, corrupt) << "of " << seen << " reads";
}
