// SPDX-License-Identifier: Apache-2.0
// gather_bench.cpp - rows/s and GB/s of the gather engine from a table far larger than the LLC.
//
// Benchmarks (all wall-clock time; every ratio is against a baseline of the same run):
//   gather/<rowBytes>/threads:<t>/nt:<0|1>  random rows, a batch of ~EP_BENCH_BATCH_BYTES
//       per run(). Counters: GBps, Mrows_s, and measured right after with the same thread
//       count: memcpy_GBps (sequential memcpy of the same bytes, the bandwidth limit),
//       naive_GBps (one memcpy per row, no prefetch), probe_GBps (the limit probe,
//       bench/common/probe_copy.hpp: memcpy per row with every line of the row 24 rows
//       ahead prefetched, the rows split over the same number of plain threads), and the
//       ratios vs_memcpy, vs_naive, vs_probe (issue 13's goal at 256-512 B: >= 0.8).
//       With one thread also cpu_GBps / cpu_memcpy_GBps / cpu_vs_memcpy: the same in the
//       thread's CPU time, which a loaded machine does not skew (time spent descheduled
//       is not counted), the figure to compare with scripts/bench_gather_numpy.py.
//   memcpy/<threads>    sequential memcpy alone (4 KiB pieces over the threads).
//   step/<threads>/gap_us:<g>  latency of one decode-step gather (64 tokens x 16 rows x
//       2 layers of 320 B = 2048 rows): p50/p99/max in us. gap 0 = back-to-back runs
//       (helpers still spinning); gap 1000 = helpers asleep on the futex, so the
//       difference to gap 0 is the cost of waking them.
//
//   layout/<packed|planar|planar_fused>/threads:<t>  (only with --layout packed|planar|both)
//       the same random rows of a DeepSeek-V4.1 table (256 fp8 values + 8 e8m0 scales) as
//       264-byte packed rows, or from a planar table (values plane [rows][256] and scales
//       plane [rows][8] at the next 2 MiB boundary) into packed 264-byte staging rows:
//       planar = two engine passes (values, then scales), what the agent does;
//       planar_fused = one loop copying both parts of each row (one thread). Counters:
//       ns_row (wall ns per row), Mrows_s, GBps (264 B per row).
//
// Environment: EP_BENCH_TABLE_BYTES (default 2 GiB), EP_BENCH_BATCH_BYTES (default
// 4 MiB), EP_BENCH_NODE (NUMA node of table and helper threads, default 0 where libnuma
// works), EP_BENCH_HUGEPAGES=0 to back the table with 4 KiB pages (a /dev/shm pool is
// 4 KiB-paged; devdax is 2 MiB), EP_BENCH_THREADS (max threads, default nproc).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <benchmark/benchmark.h>

#include "../common/probe_copy.hpp"
#include "ep_config.h"
#include "gather/gather.hpp"

#if EP_HAVE_NUMA
#include <numa.h>
#endif

using namespace engrampool;
using namespace engrampool::gather;
using Clock = std::chrono::steady_clock;

namespace {

double threadCpuSeconds()
{
	timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

uint64_t envBytes(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end = nullptr;
	double x = strtod(v, &end);
	switch (end && *end ? *end : ' ') {
	case 'k': case 'K': x *= 1024; break;
	case 'm': case 'M': x *= 1024 * 1024; break;
	case 'g': case 'G': x *= 1024.0 * 1024 * 1024; break;
	default: break;
	}
	return (uint64_t)x;
}

struct Table {
	uint8_t *data = nullptr;
	uint64_t bytes = 0;
	int node = -1;
};

Table &table()
{
	static Table t = [] {
		Table t;
		t.bytes = envBytes("EP_BENCH_TABLE_BYTES", 2ULL << 30) & ~uint64_t(4095);
		void *p = mmap(nullptr, t.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			perror("gather bench: mmap table");
			exit(1);
		}
		const char *hp = getenv("EP_BENCH_HUGEPAGES");
		madvise(p, t.bytes, hp && !strcmp(hp, "0") ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
#if EP_HAVE_NUMA
		if (numa_available() >= 0) {
			t.node = (int)envBytes("EP_BENCH_NODE", 0);
			numa_tonode_memory(p, t.bytes, t.node);
		}
#endif
		t.data = static_cast<uint8_t *>(p);
		// Touch every page (and make rows distinct) before timing anything.
		for (uint64_t off = 0; off < t.bytes; off += 4096)
			memset(t.data + off, (int)(off >> 12), 4096);
		return t;
	}();
	return t;
}

// Random row ids, enough that a full pass touches far more than the LLC.
const std::vector<uint64_t> &rowIds(uint32_t rowStride)
{
	static std::vector<std::pair<uint32_t, std::vector<uint64_t>>> cache;
	for (auto &c : cache)
		if (c.first == rowStride)
			return c.second;
	uint64_t rows = table().bytes / rowStride;
	std::vector<uint64_t> ids(std::min<uint64_t>(rows, 16u << 20));
	std::mt19937_64 rng(rowStride);
	for (auto &v : ids)
		v = rng() % rows;
	cache.emplace_back(rowStride, std::move(ids));
	return cache.back().second;
}

struct Staging {
	uint8_t *data = nullptr;
	size_t bytes = 0;
	explicit Staging(size_t n) : bytes(n)
	{
		data = static_cast<uint8_t *>(aligned_alloc(4096, (n + 4095) & ~size_t(4095)));
		memset(data, 0, n);
	}
	~Staging() { free(data); }
};

std::unique_ptr<Engine> engine(uint32_t threads, Isa isa, bool nt, size_t threshold = 256)
{
	Options o;
	o.threads = threads;
	o.isa = isa;
	o.nonTemporal = nt;
	o.numaNode = table().node;
	o.parallelThreshold = threshold;
	auto e = Engine::create(o);
	if (!e) {
		fprintf(stderr, "gather bench: %s\n", e.status().message().c_str());
		exit(1);
	}
	return std::move(e).value();
}

// Gathers of random batches for about `seconds` (or `iters` runs); returns GB/s.
struct Walker {
	const std::vector<uint64_t> &ids;
	size_t pos = 0;
	const uint64_t *next(size_t count)
	{
		if (pos + count > ids.size())
			pos = 0;
		const uint64_t *p = ids.data() + pos;
		pos += count;
		return p;
	}
};

double timedGather(Engine &e, Job job, Walker &w, double seconds)
{
	uint64_t bytes = 0;
	auto t0 = Clock::now(), t1 = t0;
	do {
		job.rows = w.next(job.count);
		if (e.run(job) != 0)
			abort();
		bytes += job.count * job.rowBytes;
		t1 = Clock::now();
	} while (std::chrono::duration<double>(t1 - t0).count() < seconds);
	return bytes / std::chrono::duration<double>(t1 - t0).count() / 1e9;
}

// Sequential memcpy of `batch` bytes per run through the same thread pool: the source
// window walks the table, so it is not cache-resident either. 4 KiB pieces, each a
// plain memcpy (the Naive kernel), split over the threads like a gather.
constexpr uint32_t kPiece = 4096;

double timedMemcpy(uint32_t threads, size_t batch, uint8_t *dst, double seconds, double *cpuGbps = nullptr)
{
	auto e = engine(threads, Isa::Naive, false, 0);
	size_t pieces = batch / kPiece;
	std::vector<uint64_t> seq(pieces);
	for (size_t i = 0; i < pieces; i++)
		seq[i] = i;
	Table &t = table();
	uint64_t off = 0, bytes = 0;
	double c0 = threadCpuSeconds();
	auto t0 = Clock::now(), t1 = t0;
	do {
		if (off + pieces * kPiece > t.bytes)
			off = 0;
		Job j{ t.data + off, pieces, kPiece, kPiece, seq.data(), pieces, dst, kPiece };
		if (threads == 1)
			memcpy(dst, t.data + off, pieces * kPiece);   // one call: the true sequential limit
		else if (e->run(j) != 0)
			abort();
		off += pieces * kPiece;
		bytes += pieces * kPiece;
		t1 = Clock::now();
	} while (std::chrono::duration<double>(t1 - t0).count() < seconds);
	if (cpuGbps)
		*cpuGbps = bytes / (threadCpuSeconds() - c0) / 1e9;
	return bytes / std::chrono::duration<double>(t1 - t0).count() / 1e9;
}

// The limit probe over the same kind of batches: the caller and threads-1 plain threads
// each copy a contiguous share of the batch's rows with probeCopy. Workers spin between
// batches (the batches follow back to back), so no wake-up is measured.
class Probe {
public:
	explicit Probe(uint32_t threads) : threads_(std::max(1u, threads))
	{
		for (uint32_t i = 1; i < threads_; i++)
			workers_.emplace_back([this, i] { loop(i); });
	}
	~Probe()
	{
		quit_.store(true, std::memory_order_release);
		for (auto &w : workers_)
			w.join();
	}
	void run(const Job &j)
	{
		job_ = j;
		go_.fetch_add(1, std::memory_order_release);
		part(0);
		while (done_.load(std::memory_order_acquire) != threads_ - 1)
			__builtin_ia32_pause();
		done_.store(0, std::memory_order_relaxed);
	}

private:
	void part(uint32_t k)
	{
		size_t lo = job_.count * k / threads_, hi = job_.count * (k + 1) / threads_;
		bench::probeCopy(job_.table, job_.rows + lo, hi - lo, job_.rowStride, job_.rowBytes,
				 job_.dst + lo * job_.dstStride);
	}
	void loop(uint32_t k)
	{
		uint64_t seen = 0;
		while (!quit_.load(std::memory_order_acquire)) {
			uint64_t g = go_.load(std::memory_order_acquire);
			if (g == seen) {
				__builtin_ia32_pause();
				continue;
			}
			seen = g;
			part(k);
			done_.fetch_add(1, std::memory_order_acq_rel);
		}
	}
	uint32_t threads_;
	Job job_{};
	std::vector<std::thread> workers_;
	std::atomic<uint64_t> go_{0};
	std::atomic<uint32_t> done_{0};
	std::atomic<bool> quit_{false};
};

double timedProbe(uint32_t threads, Job job, Walker &w, double seconds)
{
	Probe probe(threads);
	uint64_t bytes = 0;
	auto t0 = Clock::now(), t1 = t0;
	do {
		job.rows = w.next(job.count);
		probe.run(job);
		bytes += job.count * job.rowBytes;
		t1 = Clock::now();
	} while (std::chrono::duration<double>(t1 - t0).count() < seconds);
	return bytes / std::chrono::duration<double>(t1 - t0).count() / 1e9;
}

size_t batchRows(uint32_t rowBytes)
{
	return std::max<size_t>(64, envBytes("EP_BENCH_BATCH_BYTES", 4u << 20) / rowBytes);
}

void gatherBench(benchmark::State &state, uint32_t rowBytes, uint32_t threads, bool nt)
{
	Table &t = table();
	const size_t count = batchRows(rowBytes);
	Staging dst(count * rowBytes + 64);
	auto e = engine(threads, Isa::Auto, nt);
	Walker w{ rowIds(rowBytes) };
	Job job{ t.data, t.bytes / rowBytes, rowBytes, rowBytes, nullptr, count, dst.data, rowBytes };

	uint64_t bytes = 0;
	auto t0 = Clock::now();
	double c0 = threadCpuSeconds();
	for (auto _ : state) {
		job.rows = w.next(count);
		if (e->run(job) != 0) {
			state.SkipWithError("gather faulted");
			return;
		}
		bytes += count * rowBytes;
	}
	double sec = std::chrono::duration<double>(Clock::now() - t0).count();
	double cpuSec = threadCpuSeconds() - c0;
	double gbps = bytes / sec / 1e9;
	state.SetBytesProcessed((int64_t)bytes);
	state.SetItemsProcessed((int64_t)(bytes / rowBytes));

	// Same-run baselines, same thread count, about as long as the measurement.
	double base = std::clamp(sec, 0.05, 0.5);
	double memcpyCpuGbps = 0;
	double memcpyGbps = timedMemcpy(threads, count * rowBytes, dst.data, base, &memcpyCpuGbps);
	auto naive = engine(threads, Isa::Naive, false);
	Walker w2{ rowIds(rowBytes) };
	w2.pos = w.pos;   // rows not touched by the measurement just before
	double naiveGbps = timedGather(*naive, job, w2, base);
	naive.reset(); // its helper threads must not share the cores with the probe's
	Walker w3{ rowIds(rowBytes) };
	w3.pos = w2.pos;
	double probeGbps = timedProbe(threads, job, w3, base);

	state.counters["GBps"] = gbps;
	state.counters["Mrows_s"] = gbps * 1e9 / rowBytes / 1e6;
	state.counters["memcpy_GBps"] = memcpyGbps;
	state.counters["naive_GBps"] = naiveGbps;
	state.counters["vs_memcpy"] = gbps / memcpyGbps;
	state.counters["vs_naive"] = gbps / naiveGbps;
	state.counters["probe_GBps"] = probeGbps;
	state.counters["vs_probe"] = gbps / probeGbps;
	if (threads == 1) {
		double cpuGbps = bytes / cpuSec / 1e9;
		state.counters["cpu_GBps"] = cpuGbps;
		state.counters["cpu_memcpy_GBps"] = memcpyCpuGbps;
		state.counters["cpu_vs_memcpy"] = cpuGbps / memcpyCpuGbps;
	}
	state.SetLabel(std::string(isaName(bestIsa())) + (nt ? "+nt" : ""));
}

void memcpyBench(benchmark::State &state, uint32_t threads)
{
	const size_t batch = envBytes("EP_BENCH_BATCH_BYTES", 4u << 20) & ~size_t(kPiece - 1);
	Staging dst(batch);
	double gbps = 0;
	uint64_t runs = 0;
	for (auto _ : state) {
		gbps = timedMemcpy(threads, batch, dst.data, 0.05);
		runs++;
	}
	state.counters["GBps"] = gbps;
}

double percentile(std::vector<double> &v, double p)
{
	if (v.empty())
		return 0;
	size_t k = std::min(v.size() - 1, (size_t)(p * (v.size() - 1) + 0.5));
	std::nth_element(v.begin(), v.begin() + k, v.end());
	return v[k];
}

void stepBench(benchmark::State &state, uint32_t threads, uint32_t gapUs)
{
	constexpr uint32_t kRow = 320;
	constexpr size_t kRows = 64 * 16 * 2;
	Table &t = table();
	Staging dst(kRows * kRow);
	auto e = engine(threads, Isa::Auto, false);
	Walker w{ rowIds(kRow) };
	Job job{ t.data, t.bytes / kRow, kRow, kRow, nullptr, kRows, dst.data, kRow };
	std::vector<double> us;
	us.reserve(1 << 20);
	for (auto _ : state) {
		job.rows = w.next(kRows);
		auto t0 = Clock::now();
		e->run(job);
		auto t1 = Clock::now();
		double s = std::chrono::duration<double>(t1 - t0).count();
		state.SetIterationTime(s);
		if (us.size() < us.capacity())
			us.push_back(s * 1e6);
		if (gapUs) {
			// Sleep, not spin: the helpers must reach the futex, as between real decode steps.
			std::this_thread::sleep_for(std::chrono::microseconds(gapUs));
		}
	}
	state.SetItemsProcessed((int64_t)(state.iterations() * kRows));
	state.SetBytesProcessed((int64_t)(state.iterations() * kRows * kRow));
	state.counters["p50_us"] = percentile(us, 0.50);
	state.counters["p99_us"] = percentile(us, 0.99);
	state.counters["max_us"] = percentile(us, 1.0);
}

// --- packed vs planar tables (issue 11 #5) -------------------------------------------
constexpr uint32_t kV = 256, kS = 8, kR = kV + kS;

struct PlanarGeometry {
	uint64_t rows = 0, scalesOff = 0;
};

PlanarGeometry planarGeometry()
{
	Table &t = table();
	PlanarGeometry g;
	g.rows = (t.bytes - (4ull << 20)) / kR; // both layouts fit: values, 2 MiB padding, scales
	g.scalesOff = (g.rows * kV + (2ull << 20) - 1) & ~((2ull << 20) - 1);
	return g;
}

const std::vector<uint64_t> &layoutIds()
{
	static const std::vector<uint64_t> ids = [] {
		uint64_t rows = planarGeometry().rows;
		std::vector<uint64_t> v(std::min<uint64_t>(rows, 16u << 20));
		std::mt19937_64 rng(kR);
		for (auto &x : v)
			x = rng() % rows;
		return v;
	}();
	return ids;
}

// One loop over the rows, both parts of each row (prefetching both planes ahead).
void fusedPlanarGather(const uint8_t *values, const uint8_t *scales, const uint64_t *rows, size_t n, uint8_t *dst,
		       uint32_t dist)
{
	for (size_t i = 0; i < n; i++) {
		if (i + dist < n) {
			const uint8_t *v = values + rows[i + dist] * kV;
			for (uint32_t k = 0; k < kV; k += 64)
				__builtin_prefetch(v + k, 0, 2);
			__builtin_prefetch(scales + rows[i + dist] * kS, 0, 2);
		}
		__builtin_memcpy(dst + i * kR, values + rows[i] * kV, kV);
		__builtin_memcpy(dst + i * kR + kV, scales + rows[i] * kS, kS);
	}
}

void layoutBench(benchmark::State &state, int mode, uint32_t threads) // 0 packed, 1 planar, 2 fused
{
	Table &t = table();
	const PlanarGeometry g = planarGeometry();
	const size_t count = batchRows(kR);
	Staging dst(count * kR + 64);
	auto e = engine(threads, Isa::Auto, false);
	Walker w{ layoutIds() };
	Job packed{ t.data, g.rows, kR, kR, nullptr, count, dst.data, kR };
	Job values{ t.data, g.rows, kV, kV, nullptr, count, dst.data, kR };
	Job scales{ t.data + g.scalesOff, g.rows, kS, kS, nullptr, count, dst.data + kV, kR };
	auto t0 = Clock::now();
	for (auto _ : state) {
		const uint64_t *ids = w.next(count);
		if (mode == 0) {
			packed.rows = ids;
			if (e->run(packed) != 0)
				abort();
		} else if (mode == 1) {
			values.rows = scales.rows = ids;
			if (e->run(values) != 0 || e->run(scales) != 0)
				abort();
		} else {
			fusedPlanarGather(t.data, t.data + g.scalesOff, ids, count, dst.data, e->options().prefetchDistance);
		}
		benchmark::DoNotOptimize(dst.data);
	}
	double secs = std::chrono::duration<double>(Clock::now() - t0).count();
	double n = (double)state.iterations() * count;
	state.SetItemsProcessed((int64_t)n);
	state.counters["ns_row"] = secs / n * 1e9;
	state.counters["Mrows_s"] = n / secs / 1e6;
	state.counters["GBps"] = n * kR / secs / 1e9;
}

// Run what was registered, with the table and kernel in the report's context.
int runRegistered(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::AddCustomContext("table_bytes", std::to_string(table().bytes));
	benchmark::AddCustomContext("gather_isa", isaName(bestIsa()));
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	// --layout packed|planar|both: run only the layout comparison (not a google-benchmark flag).
	std::string layout;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		int eat = 0;
		if (a.rfind("--layout=", 0) == 0) {
			layout = a.substr(9);
			eat = 1;
		} else if (a == "--layout" && i + 1 < argc) {
			layout = argv[i + 1];
			eat = 2;
		}
		if (eat) {
			for (int j = i; j + eat <= argc; j++)
				argv[j] = argv[j + eat];
			argc -= eat;
			i--;
		}
	}
	if (!layout.empty() && layout != "packed" && layout != "planar" && layout != "both") {
		fprintf(stderr, "gather bench: --layout %s: expected packed, planar or both\n", layout.c_str());
		return 2;
	}
	if (!layout.empty()) {
		uint32_t maxT = (uint32_t)envBytes("EP_BENCH_THREADS", std::max(1u, std::thread::hardware_concurrency()));
		for (uint32_t threads = 1; threads <= maxT; threads++) {
			auto reg = [&](const char *name, int mode) {
				benchmark::RegisterBenchmark(
					("layout/" + std::string(name) + "/threads:" + std::to_string(threads)).c_str(),
					layoutBench, mode, threads)
					->UseRealTime()
					->Unit(benchmark::kMicrosecond);
			};
			if (layout != "planar")
				reg("packed", 0);
			if (layout != "packed") {
				reg("planar", 1);
				if (threads == 1)
					reg("planar_fused", 2);
			}
		}
		return runRegistered(argc, argv);
	}

	uint32_t maxThreads = (uint32_t)envBytes("EP_BENCH_THREADS", std::max(1u, std::thread::hardware_concurrency()));
	for (uint32_t rowBytes : { 64u, 128u, 256u, 264u, 320u, 512u, 1024u, 2048u, 4096u })
		for (uint32_t threads = 1; threads <= maxThreads; threads++)
			for (bool nt : { false, true })
				benchmark::RegisterBenchmark(("gather/" + std::to_string(rowBytes) + "/threads:" +
							      std::to_string(threads) + "/nt:" + std::to_string(nt))
								     .c_str(),
							     gatherBench, rowBytes, threads, nt)
					->UseRealTime()
					->Unit(benchmark::kMicrosecond);
	for (uint32_t threads = 1; threads <= maxThreads; threads++)
		benchmark::RegisterBenchmark(("memcpy/" + std::to_string(threads)).c_str(), memcpyBench, threads)
			->UseRealTime()
			->Iterations(3)
			->Unit(benchmark::kMillisecond);
	for (uint32_t threads = 1; threads <= maxThreads; threads++)
		for (uint32_t gap : { 0u, 1000u })
			benchmark::RegisterBenchmark(("step/" + std::to_string(threads) + "/gap_us:" + std::to_string(gap)).c_str(),
						     stepBench, threads, gap)
				->UseManualTime()
				->Unit(benchmark::kMicrosecond);
	return runRegistered(argc, argv);
}
