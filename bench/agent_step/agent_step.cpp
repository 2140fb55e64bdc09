// SPDX-License-Identifier: Apache-2.0
// agent_step.cpp - latency of one agent step (prefetch -> wait for every Engram layer -> release).
//
// Benchmarks, registered in this order (pools are built lazily, one configuration at a time):
//   agent_step/<config>/lat_ns:<L>/decode:<B>    B sequences, one new token each per step
//   agent_step/<config>/lat_ns:<L>/prefill:<C>   one chunk of C tokens (a sequence start+end)
// Configurations (two Engram layers each, orders 2..N, 8 heads):
//   demo   the reference default (engram_demo_v1.json): 16 rows of 256 B (fp32 x64) per token per layer
//   27b    Engram-27B-like: 16 rows of 320 B (fp32 x80) per token per layer
//   v4f    DeepSeek-V4.1-Flash-like: orders 2-4, 24 rows of 264 B (fp8-e4m3 x256 + e8m0 x8)
// L is the emulated CXL latency of the pool (the emul: URI cost model, latency_ns=L).
//
// Counters, from the per-step samples of the run (wall clock, host device):
//   p50_us p99_us p999_us max_us  prefetch -> wait(-1) latency of one step
//   call_p50_us                   the prefetch() call alone (hash + queue)
//   rows                          rows per step (tokens x columns x layers)
//   GBps                          output bytes per step / p50
//   memcpy_p50_us memcpy_GBps     baseline of the same run: one sequential memcpy of the same
//                                 number of bytes out of the pool mapping (the bandwidth limit)
//   vs_memcpy                     memcpy_p50 / p50 (1.0 = as fast as a sequential copy)
//   probe_p50_us probe_p99_us     the limit probe of the same run (bench/throughput_loss/limit_probe.hpp):
//                                 a plain memcpy loop (prefetch distance 24) gathering the same row ids
//                                 of the same steps with the same threads from the agent's mapping
//   vs_probe_p50 vs_probe_p99     agent / probe (1.0 = the agent is at the machine's limit; goal <= 1.25)
//                                 (the probe runs in short blocks between agent steps, clock paused,
//                                 EP_BENCH_PROBE_BLOCK_BYTES of rows each, default 8 MiB, replaying
//                                 steps EP_BENCH_PROBE_LAG_BYTES behind, default 256 MiB)
//   probe_samples                 steps the probe replayed
//   page_kib                      page size of the pool mapping (2048: hugetlb, 4: /dev/shm)
//   samples                       steps measured
//
// Environment: EP_BENCH_TABLE_BYTES bytes per table (default 1 GiB; vocab sizes are scaled to
// it, far larger than the LLC), EP_BENCH_CONFIGS (default "demo,27b,v4f"), EP_BENCH_LATENCIES
// (default "0,250,750"), EP_BENCH_GATHER_THREADS (default 1), EP_BENCH_CACHE_ROWS (hot-row
// tier, default 0 = off; EP_BENCH_CACHE_ADMIT=0: no admission, EP_BENCH_CACHE_ADAPTIVE=0: the
// tier on every pass, never bypassed), EP_BENCH_SEED, EP_BENCH_OUTPUT (rows the agent delivers: packed,
// planes, f32 or bf16; default packed), EP_BENCH_LAYOUT (tables of scaled formats stored
// packed or planar; default packed). The probe always gathers packed rows, so with another
// output or layout vs_probe includes the cost of that choice.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "../throughput_loss/limit_probe.hpp"
#include "agent/agent.hpp"
#include "hashing/primes.hpp"
#include "io/row_source.hpp"
#include "pool/pool.hpp"
#include "region/hugepages.hpp"
#include "region/region.hpp"
#include "util/units.hpp"

using namespace engrampool;

namespace {

const char *envText(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

// EP_BENCH_OUTPUT: the agent's output format (ep_row_format_out); exits on an unknown name.
int outputFormat()
{
	std::string v = envText("EP_BENCH_OUTPUT", "packed");
	if (v == "packed")
		return EP_OUT_PACKED;
	if (v == "planes")
		return EP_OUT_PLANES;
	if (v == "f32")
		return EP_OUT_F32;
	if (v == "bf16")
		return EP_OUT_BF16;
	fprintf(stderr, "agent_step: EP_BENCH_OUTPUT=%s: use packed, planes, f32 or bf16\n", v.c_str());
	exit(2);
}

format::TableLayout tableLayout()
{
	std::string v = envText("EP_BENCH_LAYOUT", "packed");
	if (v == "packed")
		return format::TableLayout::Packed;
	if (v == "planar")
		return format::TableLayout::Planar;
	fprintf(stderr, "agent_step: EP_BENCH_LAYOUT=%s: use packed or planar\n", v.c_str());
	exit(2);
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

std::vector<std::string> envList(const char *name, const char *def)
{
	const char *v = getenv(name);
	std::stringstream ss(v && *v ? v : def);
	std::vector<std::string> out;
	std::string item;
	while (std::getline(ss, item, ','))
		if (!item.empty())
			out.push_back(item);
	return out;
}

struct ConfigSpec {
	std::string name;
	uint32_t maxNgram, heads, values;
	const char *dtype;
	bool scale;
	std::vector<uint32_t> layers;
};

const std::vector<ConfigSpec> &specs()
{
	static const std::vector<ConfigSpec> s = {
		{"demo", 3, 8, 64, "fp32", false, {1, 15}},
		{"27b", 3, 8, 80, "fp32", false, {1, 15}},
		{"v4f", 4, 8, 256, "fp8-e4m3", true, {1, 14}},
	};
	return s;
}

// The model of a configuration with per-head vocab sizes scaled so a table is ~tableBytes.
ModelConfig makeModel(const ConfigSpec &c, uint64_t tableBytes)
{
	uint32_t orders = c.maxNgram - 1;
	uint32_t rowBytes = c.values * (std::string(c.dtype) == "fp32" ? 4 : 1) + (c.scale ? c.values / 32 : 0);
	uint64_t perHead = std::max<uint64_t>(1000, tableBytes / ((uint64_t)orders * c.heads * rowBytes));
	nlohmann::json j = {{"name", "bench-" + c.name},
			    {"engram_vocab_size", std::vector<uint64_t>(orders, perHead)},
			    {"max_ngram_size", c.maxNgram},
			    {"n_embed_per_ngram", c.values * c.heads},
			    {"n_head_per_ngram", c.heads},
			    {"layer_ids", c.layers},
			    {"pad_id", 2},
			    {"seed", 0},
			    {"tokenizer_vocab_size", 129280},
			    {"compressed_vocab_size", 129280},
			    {"dtype", c.dtype}};
	if (c.scale)
		j["scale"] = {{"dtype", "e8m0"}, {"block", 32}};
	auto m = parseModelJson(j.dump(), "", c.name);
	if (!m) {
		fprintf(stderr, "agent_step: model %s: %s\n", c.name.c_str(), m.status().message().c_str());
		exit(1);
	}
	return m.value();
}

// The pool of the configuration being measured (one at a time: memory is shared).
struct Bench {
	std::string config;
	ModelConfig model;
	std::string uri;                       // emul:NAME (no cost model)
	std::unique_ptr<Pool> reader;
	const uint8_t *tableBase = nullptr;    // layer 0 table in the mapping
	uint64_t tableBytes = 0;
	std::map<uint32_t, std::unique_ptr<HostAgent>> agents; // by latency

	~Bench() { destroy(); }
	void destroy()
	{
		agents.clear();
		reader.reset();
		if (!uri.empty())
			if (auto u = parseRegionUri(uri); u)
				(void)Region::destroy(*u);
		uri.clear();
	}
};

Bench &bench()
{
	static Bench b;
	return b;
}

void destroyBench() { bench().destroy(); }

bool prepare(const std::string &config, benchmark::State &state)
{
	Bench &b = bench();
	if (b.config == config && !b.uri.empty())
		return true;
	b.destroy();
	const ConfigSpec *spec = nullptr;
	for (auto &s : specs())
		if (s.name == config)
			spec = &s;
	uint64_t perTable = envBytes("EP_BENCH_TABLE_BYTES", 1ull << 30);
	b.model = makeModel(*spec, perTable);
	b.config = config;
	b.uri = "emul:ep-agent-step-" + std::to_string(getpid());
	auto rows = hashing::tableRows(b.model);
	uint64_t need = 64ull << 20;
	for (auto r : rows)
		need += (r * b.model.rowFormat.rowStride() + (4ull << 20));
	CreateOptions co;
	co.size = need;
	if (auto s = Pool::create(b.uri, co); !s) {
		state.SkipWithError(("create " + b.uri + ": " + s.message()).c_str());
		b.uri.clear();
		return false;
	}
	OpenOptions wo;
	wo.write = true;
	auto w = Pool::open(b.uri, wo);
	if (!w) {
		state.SkipWithError(w.status().message().c_str());
		return false;
	}
	uint64_t seed = envBytes("EP_BENCH_SEED", 1);
	for (size_t l = 0; l < rows.size(); l++) {
		fprintf(stderr, "agent_step: %s: importing layer %u, %llu rows x %u B (%.2f GiB)\n", config.c_str(),
			b.model.layerIds[l], (unsigned long long)rows[l], b.model.rowFormat.rowStride(),
			rows[l] * b.model.rowFormat.rowStride() / double(1ull << 30));
		auto src = io::makeRandomSource(b.model.rowFormat, rows[l], seed + l);
		ImportRequest req;
		req.model = &b.model;
		req.layerId = b.model.layerIds[l];
		req.rows = rows[l];
		// Planar needs a scale block: unscaled configurations stay packed.
		if (b.model.rowFormat.scaleBytes() != 0)
			req.layout = tableLayout();
		auto r = (*w)->importTable(req, *src);
		if (!r) {
			state.SkipWithError(("import: " + r.status().message()).c_str());
			return false;
		}
	}
	w.value().reset();
	OpenOptions ro;
	auto rd = Pool::open(b.uri, ro);
	if (!rd) {
		state.SkipWithError(rd.status().message().c_str());
		return false;
	}
	b.reader = std::move(rd.value());
	auto snap = b.reader->snapshot();
	const TableInfo *t = snap ? snap->findTable(defaultTableName(b.model.name, b.model.layerIds[0])) : nullptr;
	if (!t) {
		state.SkipWithError("table missing after import");
		return false;
	}
	b.tableBase = b.reader->tableData(*t);
	b.tableBytes = t->dataBytes;
	fprintf(stderr, "agent_step: %s: pool %s at %s, %s pages\n", config.c_str(), b.uri.c_str(),
		b.reader->region().uri().path.c_str(), hugepages::pageSizeText(b.reader->region().pageSize()).c_str());
	return true;
}

// EP_BENCH_WAIT_HELPS=1: the waiting caller copies rows with the gather threads
// (AgentConfig::waitHelps; default off).
bool waitHelps()
{
	return envBytes("EP_BENCH_WAIT_HELPS", 0) != 0;
}

// Threads that copy an agent step's rows: the gather threads, and the caller while it waits
// in wait() when it helps. The probe gets as many.
uint32_t copyThreads()
{
	return (uint32_t)envBytes("EP_BENCH_GATHER_THREADS", 1) + (waitHelps() ? 1 : 0);
}

HostAgent *agentFor(uint32_t latencyNs, benchmark::State &state)
{
	Bench &b = bench();
	auto it = b.agents.find(latencyNs);
	if (it != b.agents.end())
		return it->second.get();
	AgentConfig c;
	c.poolUri = b.uri + (latencyNs ? "?latency_ns=" + std::to_string(latencyNs) : "");
	c.model = &b.model;
	c.maxBatchTokens = 8192;
	c.maxSequences = 1024;
	c.slots = 3;
	c.gatherThreads = (uint32_t)envBytes("EP_BENCH_GATHER_THREADS", 1);
	c.cacheRows = envBytes("EP_BENCH_CACHE_ROWS", 0);
	c.cacheAdmit = envBytes("EP_BENCH_CACHE_ADMIT", 1) != 0; // 0: a tier without admission (lookups only)
	c.cacheAdaptive = envBytes("EP_BENCH_CACHE_ADAPTIVE", 1) != 0; // 0: the tier on every pass
	c.waitHelps = waitHelps();
	c.dedupAdaptive = envBytes("EP_BENCH_DEDUP_ADAPTIVE", 1) != 0; // 0: every layer pass deduplicated
	c.outFormat = outputFormat();
	c.registerHost = false;
	auto a = HostAgent::create(c);
	if (!a) {
		state.SkipWithError(("agent: " + a.status().message()).c_str());
		return nullptr;
	}
	HostAgent *p = a.value().get();
	b.agents[latencyNs] = std::move(a.value());
	return p;
}

double quantileUs(std::vector<uint64_t> &v, double q)
{
	if (v.empty())
		return 0;
	size_t i = std::min(v.size() - 1, (size_t)(q * (double)v.size()));
	std::nth_element(v.begin(), v.begin() + (long)i, v.end());
	return v[i] / 1000.0;
}

// Sequential memcpy of `bytes` out of the pool mapping, p50 over `reps` copies.
double memcpyP50Us(size_t bytes, size_t reps)
{
	Bench &b = bench();
	static std::vector<uint8_t> dst;
	if (dst.size() < bytes)
		dst.assign(bytes, 1);
	std::mt19937_64 rng(bytes);
	std::vector<uint64_t> s;
	size_t span = b.tableBytes > bytes ? b.tableBytes - bytes : 0;
	for (size_t r = 0; r < reps; r++) {
		size_t off = span ? (rng() % span) & ~size_t(63) : 0;
		uint64_t t0 = nowMonotonicNs();
		std::memcpy(dst.data(), b.tableBase + off, bytes);
		benchmark::DoNotOptimize(dst.data());
		s.push_back(nowMonotonicNs() - t0);
	}
	return quantileUs(s, 0.5);
}

void runStep(benchmark::State &state, std::string config, uint32_t latencyNs, bool decode, uint32_t size)
{
	if (!prepare(config, state))
		return;
	HostAgent *a = agentFor(latencyNs, state);
	if (!a)
		return;
	Bench &b = bench();
	const uint32_t vocab = (uint32_t)b.model.tokenizerVocabSize;
	std::mt19937_64 rng(size * 131 + latencyNs);
	const uint32_t seqs = decode ? size : 1;
	const uint32_t perSeq = decode ? 1 : size;
	const uint32_t tokens = seqs * perSeq;
	// A pool of token ids drawn ahead: no RNG inside the timed region.
	std::vector<int64_t> pool(1 << 20);
	for (auto &t : pool)
		t = (int64_t)(rng() % vocab);
	size_t cursor = 0;
	std::vector<BatchEntry> batch(seqs);
	uint64_t ticket = 0;
	static uint64_t nextSeq = 1;
	uint64_t base = nextSeq;
	nextSeq += seqs + 1;
	if (decode) {
		// Start the sequences with a short prompt (not timed).
		for (uint32_t s = 0; s < seqs; s++)
			batch[s] = {base + s, pool.data() + (cursor += 8) - 8, 8, kSeqStart};
		if (a->prefetch(batch.data(), seqs, &ticket) || a->wait(ticket) || a->release(ticket)) {
			state.SkipWithError(("warm-up: " + a->lastError()).c_str());
			return;
		}
	}
	// The limit probe: the same row ids (same batches, same streaming state), the same
	// number of threads, the agent's own mapping, a plain memcpy loop (limit_probe.hpp).
	// It runs in short blocks between the agent's steps (clock paused), so both sides of
	// the ratio see the same moment of a shared machine: measured one after the other,
	// the probe's p50 alone moved 60-130 us between runs on an EPYC VM, and in a noisy hour
	// 75-214 us within minutes. A block is EP_BENCH_PROBE_BLOCK_BYTES of rows (default
	// 8 MiB, about a millisecond of copying) and replays steps at least
	// EP_BENCH_PROBE_LAG_BYTES of rows behind the agent (default 256 MiB, far more than
	// the LLC), so the probe never finds in cache the rows the agent just gathered. The
	// last lag's steps are not replayed (unless that would leave the probe under 64 steps).
	bench::LimitProbe lp;
	if (std::string why = lp.init(*a, b.model, copyThreads()); !why.empty()) {
		state.SkipWithError(("limit probe: " + why).c_str());
		return;
	}
	if (decode) {
		for (uint32_t s = 0; s < seqs; s++)
			batch[s] = {base + s, pool.data() + 8 * (size_t)s, 8, kSeqStart};
		lp.step(batch.data(), seqs, false);
	}
	const uint32_t J = b.model.orders() * b.model.nHeadPerNgram;
	const uint64_t rows = (uint64_t)tokens * J * b.model.layerIds.size();
	const uint64_t bytes = rows * b.model.rowFormat.rowBytes();
	const size_t blockSteps =
		std::max<uint64_t>(1, envBytes("EP_BENCH_PROBE_BLOCK_BYTES", 8ull << 20) / std::max<uint64_t>(bytes, 1));
	const size_t lagSteps =
		std::max<uint64_t>(1, envBytes("EP_BENCH_PROBE_LAG_BYTES", 256ull << 20) / std::max<uint64_t>(bytes, 1));
	std::vector<uint64_t> probe;
	size_t probed = 0;
	std::vector<size_t> cursors; // token offset of each measured step (the probe replays them)
	std::vector<uint64_t> seqIds; // prefill: the sequence id of each measured step
	// One measured step's batch: decode continues the sequences, prefill is one whole sequence.
	auto fillBatch = [&](size_t at, uint64_t prefillSeq) {
		for (uint32_t s = 0; s < seqs; s++)
			batch[s] = {decode ? base + s : prefillSeq, pool.data() + at + (size_t)s * perSeq, perSeq,
				    decode ? 0u : (kSeqStart | kSeqEnd)};
	};
	auto probeUpTo = [&](size_t end) {
		for (; probed < end; probed++) {
			fillBatch(cursors[probed], decode ? 0 : seqIds[probed]);
			probe.push_back(lp.step(batch.data(), seqs));
		}
		lp.park();
	};
	std::vector<uint64_t> lat, call;
	lat.reserve(1 << 16);
	call.reserve(1 << 16);
	cursors.reserve(1 << 16);
	seqIds.reserve(1 << 16);
	probe.reserve(1 << 16);
	for (auto _ : state) {
		if (cursors.size() - probed >= lagSteps + blockSteps) {
			state.PauseTiming();
			probeUpTo(probed + blockSteps);
			state.ResumeTiming();
		}
		if (cursor + tokens > pool.size())
			cursor = 0;
		cursors.push_back(cursor);
		if (!decode)
			seqIds.push_back(nextSeq++);
		fillBatch(cursor, decode ? 0 : seqIds.back());
		cursor += tokens;
		uint64_t t0 = nowMonotonicNs();
		int rc = a->prefetch(batch.data(), seqs, &ticket);
		uint64_t t1 = nowMonotonicNs();
		if (rc == 0)
			rc = a->wait(ticket);
		uint64_t t2 = nowMonotonicNs();
		if (rc != 0) {
			state.SkipWithError(("step failed: rc " + std::to_string(rc) + " " + a->lastError()).c_str());
			break;
		}
		a->release(ticket);
		lat.push_back(t2 - t0);
		call.push_back(t1 - t0);
	}
	if (decode)
		for (uint32_t s = 0; s < seqs; s++)
			(void)a->endSequence(base + s);
	if (lat.empty())
		return;

	if (probe.size() < 64)
		probeUpTo(cursors.size()); // a short run: the probe's figures include rows still in cache
	size_t n = lat.size();
	double mean = 0;
	for (auto v : lat)
		mean += v / 1000.0;
	mean /= (double)n;
	double p50 = quantileUs(lat, 0.5), p99 = quantileUs(lat, 0.99), p999 = quantileUs(lat, 0.999);
	double mx = *std::max_element(lat.begin(), lat.end()) / 1000.0;
	double mc = memcpyP50Us(bytes, std::clamp<size_t>(n, 20, 2000));
	state.counters["p50_us"] = p50;
	state.counters["p99_us"] = p99;
	state.counters["p999_us"] = p999;
	state.counters["max_us"] = mx;
	state.counters["mean_us"] = mean;
	state.counters["call_p50_us"] = quantileUs(call, 0.5);
	state.counters["rows"] = (double)rows;
	state.counters["GBps"] = bytes / (p50 * 1e3);
	state.counters["memcpy_p50_us"] = mc;
	state.counters["memcpy_GBps"] = mc > 0 ? bytes / (mc * 1e3) : 0;
	state.counters["vs_memcpy"] = p50 > 0 ? mc / p50 : 0;
	double pp50 = bench::probeQuantileUs(probe, 0.5), pp99 = bench::probeQuantileUs(probe, 0.99);
	state.counters["probe_p50_us"] = pp50;
	state.counters["probe_p99_us"] = pp99;
	state.counters["vs_probe_p50"] = pp50 > 0 ? p50 / pp50 : 0;
	state.counters["vs_probe_p99"] = pp99 > 0 ? p99 / pp99 : 0;
	state.counters["page_kib"] = (double)(a->pool().region().pageSize() >> 10);
	state.counters["samples"] = (double)n;
	state.counters["probe_samples"] = (double)probe.size();
	if (config == "27b" && decode && size == 64 && latencyNs == 0) {
		bool met = pp50 > 0 && p50 <= 1.25 * pp50 && p99 <= 1.25 * pp99;
		state.SetLabel(met ? "goal p50,p99<=1.25x probe: met" : "goal p50,p99<=1.25x probe: MISSED");
	}
}

} // namespace

int main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	(void)outputFormat(), (void)tableLayout(); // refuse unknown names before any pool is built
	benchmark::AddCustomContext("output", envText("EP_BENCH_OUTPUT", "packed"));
	benchmark::AddCustomContext("layout", envText("EP_BENCH_LAYOUT", "packed"));
	std::vector<uint32_t> lats;
	for (auto &s : envList("EP_BENCH_LATENCIES", "0,250,750"))
		lats.push_back((uint32_t)std::stoul(s));
	for (auto &cfg : envList("EP_BENCH_CONFIGS", "demo,27b,v4f")) {
		bool known = false;
		for (auto &s : specs())
			known |= s.name == cfg;
		if (!known) {
			fprintf(stderr, "agent_step: unknown configuration '%s' (demo, 27b, v4f)\n", cfg.c_str());
			return 1;
		}
		for (uint32_t lat : lats) {
			for (uint32_t bsz : {1u, 8u, 64u, 256u, 512u})
				benchmark::RegisterBenchmark(
					("agent_step/" + cfg + "/lat_ns:" + std::to_string(lat) + "/decode:" + std::to_string(bsz)).c_str(),
					[cfg, lat, bsz](benchmark::State &st) { runStep(st, cfg, lat, true, bsz); })
					->Unit(benchmark::kMicrosecond)
					->UseRealTime();
			for (uint32_t chunk : {2048u, 8192u})
				benchmark::RegisterBenchmark(
					("agent_step/" + cfg + "/lat_ns:" + std::to_string(lat) + "/prefill:" + std::to_string(chunk)).c_str(),
					[cfg, lat, chunk](benchmark::State &st) { runStep(st, cfg, lat, false, chunk); })
					->Unit(benchmark::kMicrosecond)
					->UseRealTime();
		}
	}
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	destroyBench();
	return 0;
}
