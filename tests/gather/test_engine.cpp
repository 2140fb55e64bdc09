// SPDX-License-Identifier: Apache-2.0
// test_engine.cpp - the threaded engine equals a per-row memcpy for thread counts 1..4,
// survives many back-to-back runs (spinning and sleeping helpers), validates options
// and adds at least the modeled cost, including the switch shared by a pool's hosts.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "ep_config.h"
#include "gather/gather.hpp"
#include "gather_test_util.hpp"
#include "region/uri.hpp"
#include "../../emulation/switch/switch_model.hpp"

#if EP_HAVE_NUMA
#include <numa.h>
#endif

using namespace engrampool;
using namespace engrampool::gather;

namespace {

std::unique_ptr<Engine> makeEngine(Options o)
{
	auto e = Engine::create(o);
	EXPECT_TRUE(e.isOk()) << e.status().message();
	return e.isOk() ? std::move(e).value() : nullptr;
}

struct Case {
	uint32_t rowBytes, rowStride;
	size_t count;
};

TEST(GatherEngine, EqualsPerRowMemcpyForThreadCounts)
{
	std::vector<uint8_t> table = eptest::patternTable(8 << 20);
	const Case cases[] = { { 264, 264, 1 }, { 264, 264, 255 }, { 264, 264, 256 }, { 320, 320, 4099 },
			       { 64, 64, 10007 }, { 1000, 1024, 700 }, { 4096, 4096, 513 }, { 7, 13, 3000 } };
	uint64_t seed = 11;
	for (uint32_t threads = 1; threads <= 4; threads++) {
		for (bool nt : { false, true }) {
			for (size_t threshold : { size_t(0), size_t(256) }) {
				Options o;
				o.threads = threads;
				o.nonTemporal = nt;
				o.parallelThreshold = threshold;
				auto e = makeEngine(o);
				ASSERT_TRUE(e);
				for (const Case &c : cases) {
					uint64_t tableRows = (table.size() - c.rowBytes) / c.rowStride + 1;
					auto rows = eptest::randomRows(c.count, tableRows, seed++);
					size_t dstStride = c.rowBytes + (nt ? 0 : 3);
					std::vector<uint8_t> out(c.count * dstStride + 1, 0x5A), ref(out.size(), 0x5A);
					Job j{ table.data(), tableRows, c.rowStride, c.rowBytes, rows.data(), c.count, ref.data(), dstStride };
					eptest::referenceGather(j);
					j.dst = out.data();
					ASSERT_EQ(0, e->run(j));
					ASSERT_EQ(ref, out) << "threads " << threads << " nt " << nt << " threshold " << threshold
							    << " rowBytes " << c.rowBytes << " count " << c.count;
					EXPECT_FALSE(e->fault().sigbus);
				}
			}
		}
	}
}

TEST(GatherEngine, ZeroRowsTouchNothing)
{
	Options o;
	o.threads = 2;
	o.parallelThreshold = 0;
	auto e = makeEngine(o);
	ASSERT_TRUE(e);
	std::vector<uint8_t> table = eptest::patternTable(4096);
	std::vector<uint8_t> out(256, 0x33);
	Job j{ table.data(), 16, 256, 256, nullptr, 0, out.data(), 256 };
	EXPECT_EQ(0, e->run(j));
	EXPECT_EQ(std::vector<uint8_t>(256, 0x33), out);
}

// Many short runs in a row: every handoff between caller and helpers is exercised,
// with helpers that always sleep (spinNs 0) and helpers that spin.
TEST(GatherEngine, BackToBackRuns)
{
	std::vector<uint8_t> table = eptest::patternTable(4 << 20, 5);
	const uint32_t rowBytes = 320;
	const uint64_t tableRows = table.size() / rowBytes;
	for (uint32_t spinNs : { 0u, 20000u }) {
		for (uint32_t threads : { 2u, 3u }) {
			Options o;
			o.threads = threads;
			o.parallelThreshold = 0;
			o.spinNs = spinNs;
			auto e = makeEngine(o);
			ASSERT_TRUE(e);
			for (int run = 0; run < 300; run++) {
				size_t count = 1 + (run * 37) % 700;
				auto rows = eptest::randomRows(count, tableRows, run + 1000 * threads + spinNs);
				std::vector<uint8_t> out(count * rowBytes), ref(count * rowBytes);
				Job j{ table.data(), tableRows, rowBytes, rowBytes, rows.data(), count, ref.data(), rowBytes };
				eptest::referenceGather(j);
				j.dst = out.data();
				ASSERT_EQ(0, e->run(j));
				ASSERT_EQ(ref, out) << "run " << run << " threads " << threads << " spinNs " << spinNs;
				// Now and then let the helpers fall asleep between runs.
				if (run % 50 == 49)
					std::this_thread::sleep_for(std::chrono::milliseconds(2));
			}
		}
	}
}

// warm() wakes sleeping helpers ahead of a run; runs after it (soon, late, or with a
// destination index) are still exact, and a warm() never followed by a run lets the
// helpers go back to sleep (the engine still stops).
TEST(GatherEngine, WarmBeforeRuns)
{
	std::vector<uint8_t> table = eptest::patternTable(4 << 20, 9);
	const uint32_t rowBytes = 160;
	const uint64_t tableRows = table.size() / rowBytes;
	for (uint32_t threads : { 1u, 2u, 3u }) {
		Options o;
		o.threads = threads;
		o.parallelThreshold = 0;
		o.spinNs = 0;
		auto e = makeEngine(o);
		ASSERT_TRUE(e);
		for (int run = 0; run < 60; run++) {
			size_t count = 1 + (run * 53) % 900;
			auto rows = eptest::randomRows(count, tableRows, run + 77 * threads);
			std::vector<uint32_t> dst(count);
			for (size_t i = 0; i < count; i++)
				dst[i] = (uint32_t)(count - 1 - i);
			std::vector<uint8_t> out(count * rowBytes), ref(count * rowBytes);
			Job j{ table.data(), tableRows, rowBytes, rowBytes, rows.data(), count, ref.data(), rowBytes };
			if (run % 2)
				j.dstIndex = dst.data();
			eptest::referenceGather(j);
			j.dst = out.data();
			e->warm(run % 3 == 0 ? 100000 : 2000000);
			if (run % 10 == 9)
				std::this_thread::sleep_for(std::chrono::milliseconds(1));
			ASSERT_EQ(0, e->run(j));
			ASSERT_EQ(ref, out) << "run " << run << " threads " << threads;
		}
		e->warm(1000000); // no run follows
	}
}

TEST(GatherEngine, EveryKernelThroughTheEngine)
{
	std::vector<uint8_t> table = eptest::patternTable(2 << 20, 9);
	for (Isa isa : { Isa::Naive, Isa::Scalar, Isa::Avx2, Isa::Avx512 }) {
		if (!isaSupported(isa))
			continue;
		Options o;
		o.threads = 2;
		o.isa = isa;
		o.parallelThreshold = 0;
		auto e = makeEngine(o);
		ASSERT_TRUE(e);
		auto rows = eptest::randomRows(1000, table.size() / 264, 77);
		std::vector<uint8_t> out(1000 * 264), ref(out.size());
		Job j{ table.data(), table.size() / 264, 264, 264, rows.data(), 1000, ref.data(), 264 };
		eptest::referenceGather(j);
		j.dst = out.data();
		ASSERT_EQ(0, e->run(j));
		EXPECT_EQ(ref, out) << isaName(isa);
	}
}

TEST(GatherEngine, RejectsBadOptions)
{
	Options o;
	o.threads = 0;
	auto e = Engine::create(o);
	ASSERT_FALSE(e.isOk());
	EXPECT_EQ(-EINVAL, e.code());
	EXPECT_NE(std::string::npos, e.status().message().find("threads"));

	o.threads = 100000;
	EXPECT_EQ(-EINVAL, Engine::create(o).code());

	o.threads = 1;
	o.cost.linkGbps = -1;
	EXPECT_EQ(-EINVAL, Engine::create(o).code());
}

TEST(GatherEngine, NumaNode)
{
	Options o;
	o.threads = 2;
	o.numaNode = 0;   // node 0 exists everywhere (or there is no NUMA: no pinning)
	auto e = makeEngine(o);
	ASSERT_TRUE(e);
	std::vector<uint8_t> table = eptest::patternTable(1 << 20);
	auto rows = eptest::randomRows(600, 4096, 1);
	std::vector<uint8_t> out(600 * 256), ref(out.size());
	Job j{ table.data(), 4096, 256, 256, rows.data(), 600, ref.data(), 256 };
	eptest::referenceGather(j);
	j.dst = out.data();
	ASSERT_EQ(0, e->run(j));
	EXPECT_EQ(ref, out);
#if EP_HAVE_NUMA
	if (numa_available() >= 0) {
		o.numaNode = numa_max_node() + 1;
		auto bad = Engine::create(o);
		ASSERT_FALSE(bad.isOk());
		EXPECT_EQ(-ENODEV, bad.code());
	}
#endif
}

// Only a lower bound: a slow machine may take longer, never less than the model.
TEST(GatherEngine, CostModelAddsAtLeastTheModeledTime)
{
	std::vector<uint8_t> table = eptest::patternTable(4 << 20);
	auto rows = eptest::randomRows(1000, table.size() / 256, 3);
	std::vector<uint8_t> out(1000 * 256);
	Job j{ table.data(), table.size() / 256, 256, 256, rows.data(), 1000, out.data(), 256 };
	struct Setting {
		uint32_t threads, latencyNs;
		double linkGbps;
	};
	for (Setting s : { Setting{ 1, 2000, 0 }, Setting{ 2, 3000, 0 }, Setting{ 1, 0, 0.25 }, Setting{ 2, 100, 0.5 } }) {
		Options o;
		o.threads = s.threads;
		o.prefetchDistance = 4;
		o.parallelThreshold = 0;
		o.cost.latencyNs = s.latencyNs;
		o.cost.linkGbps = s.linkGbps;
		auto e = makeEngine(o);
		ASSERT_TRUE(e);
		uint64_t expect = modeledNs(o.cost, 1000, 1000 * 256, 4, s.threads);
		ASSERT_GT(expect, 100000u);  // the settings above model at least 100 us
		for (int rep = 0; rep < 3; rep++) {
			auto t0 = std::chrono::steady_clock::now();
			ASSERT_EQ(0, e->run(j));
			auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
			EXPECT_GE((uint64_t)ns, expect) << "threads " << s.threads << " latency " << s.latencyNs;
		}
	}
	// All zero: no model, nothing added (checked only as "it runs").
	Options o;
	auto e = makeEngine(o);
	ASSERT_TRUE(e);
	EXPECT_FALSE(e->options().cost.enabled());
	EXPECT_EQ(0, e->run(j));
}

// switch_gbps: every run waits until the shared switch has carried its bytes, so a
// gather takes at least bytes / switch bandwidth; engines of one pool (hosts) share the
// switch, so two concurrent gathers take at least twice that. Lower bounds only.
TEST(GatherEngine, SlowSwitchTakesAtLeastBytesOverBandwidth)
{
	auto uri = parseRegionUri("emul:sw-test?switch_gbps=0.05");
	ASSERT_TRUE(uri);
	EXPECT_EQ("sw-test", uri->cost.switchName) << "the switch is named after the pool";

	const std::string name = "gather-test-" + std::to_string(getpid());
	emu::SwitchModel::destroy("pool." + name);
	std::vector<uint8_t> table = eptest::patternTable(4 << 20);
	auto rows = eptest::randomRows(1000, table.size() / 256, 5);
	const uint64_t bytes = 1000 * 256;
	Options o;
	o.threads = 2;
	o.parallelThreshold = 0;
	o.cost.switchGbps = 0.05; // bytes per ns: 256000 bytes take 5.12 ms
	o.cost.switchName = name;
	const uint64_t serviceNs = (uint64_t)std::ceil((double)bytes / o.cost.switchGbps);
	EXPECT_GT(serviceNs, modeledNs(o.cost, 1000, bytes, 8)) << "the switch is not part of the per-host formula";
	auto elapsed = [](auto t0) {
		return (uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
			.count();
	};

	auto a = makeEngine(o), b = makeEngine(o);
	ASSERT_TRUE(a && b);
	std::vector<uint8_t> outA(bytes), outB(bytes), ref(bytes);
	Job ja{ table.data(), table.size() / 256, 256, 256, rows.data(), 1000, outA.data(), 256 };
	Job jr = ja;
	jr.dst = ref.data();
	eptest::referenceGather(jr);
	for (int rep = 0; rep < 2; rep++) {
		auto t0 = std::chrono::steady_clock::now();
		ASSERT_EQ(0, a->run(ja));
		EXPECT_GE(elapsed(t0), serviceNs - 1000) << "one host alone";
	}
	EXPECT_EQ(ref, outA);

	// Two hosts at once share the switch: together at least twice the time.
	Job jb = ja;
	jb.dst = outB.data();
	auto t0 = std::chrono::steady_clock::now();
	int rcB = -1;
	std::thread tb([&] { rcB = b->run(jb); });
	ASSERT_EQ(0, a->run(ja));
	tb.join();
	ASSERT_EQ(0, rcB);
	EXPECT_GE(elapsed(t0), 2 * serviceNs - 1000) << "two hosts through one switch";
	EXPECT_EQ(ref, outB);

	// The segment is the shared one, and it counted every byte.
	std::string err;
	auto sw = emu::SwitchModel::open("pool." + name, &err);
	ASSERT_TRUE(sw) << err;
	EXPECT_DOUBLE_EQ(0.05, sw->stats().gbps);
	EXPECT_EQ(4 * bytes, sw->stats().bytes);
	sw.reset();

	// Hosts of one pool must agree on the switch's bandwidth.
	Options other = o;
	other.cost.switchGbps = 1;
	auto c = Engine::create(other);
	ASSERT_FALSE(c.isOk());
	EXPECT_EQ(-EINVAL, c.code());
	EXPECT_NE(std::string::npos, c.status().message().find("switch_gbps")) << c.status().message();
	a.reset();
	b.reset();
	// Once nobody uses it, a new setting replaces the stale segment.
	auto d = makeEngine(other);
	ASSERT_TRUE(d);
	d.reset();
	emu::SwitchModel::destroy("pool." + name);

	// Without a name the switch is private to the engine: the same lower bound.
	Options priv = o;
	priv.cost.switchName.clear();
	auto p = makeEngine(priv);
	ASSERT_TRUE(p);
	t0 = std::chrono::steady_clock::now();
	ASSERT_EQ(0, p->run(ja));
	EXPECT_GE(elapsed(t0), serviceNs - 1000);

	for (double bad : { -1.0, (double)NAN, (double)INFINITY }) {
		Options x = o;
		x.cost.switchGbps = bad;
		EXPECT_EQ(-EINVAL, Engine::create(x).code()) << bad;
	}
}

} // namespace

// A task job is a parallel loop on the engine's workers: every index in [0, count) is
// visited exactly once, by spans the workers share, and no cost model applies.
TEST(GatherEngine, TaskVisitsEveryIndexOnce)
{
	for (uint32_t threads : { 1u, 2u, 3u }) {
		Options o;
		o.threads = threads;
		o.parallelThreshold = 64;
		o.cost.latencyNs = 1000000; // 1 ms per miss: a task must not pay it
		auto e = makeEngine(o);
		ASSERT_TRUE(e);
		for (size_t count : { size_t(1), size_t(63), size_t(5000) }) {
			std::vector<std::atomic<uint32_t>> seen(count);
			struct Ctx {
				std::vector<std::atomic<uint32_t>> *seen;
				std::atomic<uint32_t> spans{0};
			} ctx{&seen};
			Job j;
			j.count = count;
			j.taskCtx = &ctx;
			j.task = [](void *p, size_t begin, size_t end) {
				auto *c = static_cast<Ctx *>(p);
				c->spans.fetch_add(1);
				for (size_t i = begin; i < end; i++)
					(*c->seen)[i].fetch_add(1);
			};
			auto t0 = std::chrono::steady_clock::now();
			ASSERT_EQ(0, e->run(j));
			auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
			for (size_t i = 0; i < count; i++)
				ASSERT_EQ(1u, seen[i].load()) << "index " << i << " threads " << threads << " count " << count;
			if (threads > 1 && count >= 5000)
				EXPECT_GT(ctx.spans.load(), 1u) << "a large task was not split";
			EXPECT_LT(ms, 1000) << "the cost model was applied to a task";
		}
	}
}

namespace {
// rows of `bytes` bytes, packed in the table and in dst.
Job packedJob(const std::vector<uint8_t> &table, uint64_t tableRows, uint32_t bytes, const std::vector<uint64_t> &rows,
	      std::vector<uint8_t> &dst)
{
	Job g;
	g.table = table.data();
	g.tableRows = tableRows;
	g.rowStride = bytes;
	g.rowBytes = bytes;
	g.rows = rows.data();
	g.count = rows.size();
	g.dst = dst.data();
	g.dstStride = bytes;
	return g;
}
} // namespace

// A guest (Options::guests, help() from another thread) takes chunks of the open run: the
// rows it copies are in dst when run() returns, and with guests off help() never joins.
TEST(GatherEngine, GuestHelpsARunFromAnotherThread)
{
	for (uint32_t threads : {1u, 2u}) {
		SCOPED_TRACE(threads);
		Options o;
		o.threads = threads;
		o.guests = true;
		auto e = makeEngine(o);
		ASSERT_TRUE(e);
		EXPECT_FALSE(e->help()) << "no run yet";
		// The caller's first span waits (up to 10 s) until a guest has taken a span, so the
		// guest's part is certain; every index is visited once either way.
		struct Ctx {
			std::atomic<uint32_t> visits[4096];
			std::atomic<bool> guestIn{false};
			std::thread::id caller;
		} ctx;
		for (auto &v : ctx.visits)
			v.store(0);
		ctx.caller = std::this_thread::get_id();
		std::atomic<bool> stop{false};
		std::atomic<uint64_t> joined{0};
		static thread_local bool tGuest = false;
		std::thread guest([&] {
			tGuest = true;
			while (!stop.load())
				if (e->help())
					joined++;
		});
		Job j;
		j.count = 4096;
		j.taskCtx = &ctx;
		j.task = [](void *p, size_t begin, size_t end) {
			auto &c = *static_cast<Ctx *>(p);
			if (tGuest)
				c.guestIn.store(true);
			else
				for (int i = 0; i < 10000 && !c.guestIn.load(); i++)
					std::this_thread::sleep_for(std::chrono::milliseconds(1));
			for (size_t i = begin; i < end; i++)
				c.visits[i]++;
		};
		ASSERT_EQ(0, e->run(j));
		stop = true;
		guest.join();
		EXPECT_TRUE(ctx.guestIn.load()) << "the guest never took a span";
		EXPECT_GE(joined.load(), 1u);
		for (size_t i = 0; i < 4096; i++)
			ASSERT_EQ(1u, ctx.visits[i].load()) << "index " << i;
		// Rows, not a task: the guest's copies are the run's.
		auto t = eptest::patternTable(20000 * 320, 7);
		auto rows = eptest::randomRows(3000, 20000, 8);
		std::vector<uint8_t> dst(rows.size() * 320);
		std::atomic<bool> stop2{false};
		std::thread guest2([&] {
			while (!stop2.load())
				e->help();
		});
		for (int r = 0; r < 50; r++) {
			std::fill(dst.begin(), dst.end(), 0);
			ASSERT_EQ(0, e->run(packedJob(t, 20000, 320, rows, dst)));
			for (size_t i = 0; i < rows.size(); i++)
				ASSERT_EQ(0, memcmp(dst.data() + i * 320, t.data() + rows[i] * 320, 320)) << "run " << r << " row " << i;
		}
		stop2 = true;
		guest2.join();
	}
	Options off;
	off.threads = 2;
	auto e = makeEngine(off);
	ASSERT_TRUE(e);
	std::atomic<bool> stop{false}, helped{false};
	std::thread guest([&] {
		while (!stop.load())
			if (e->help())
				helped = true;
	});
	auto t = eptest::patternTable(4096 * 64, 3);
	auto rows = eptest::randomRows(4096, 4096, 4);
	std::vector<uint8_t> dst(rows.size() * 64);
	for (int r = 0; r < 20; r++) {
		ASSERT_EQ(0, e->run(packedJob(t, 4096, 64, rows, dst)));
	}
	stop = true;
	guest.join();
	EXPECT_FALSE(helped.load()) << "help() joined an engine without guests";
}
