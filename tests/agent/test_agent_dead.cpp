// SPDX-License-Identifier: Apache-2.0
// test_agent_dead.cpp - dead tokens through the agent (C++ and C ABI, streaming across
// decode steps, live mask) and `engrampool lookup --dead` / dequantized fp8 / --raw.
#include "agent_test_util.hpp"

#include <engrampool/engrampool.h>
#include <engrampool/engrampool.hpp>
#include <unistd.h>

#include <cstdio>

#include "io/npy.hpp"

using namespace eptest;
using namespace engrampool;

namespace {

// Whole-sequence row ids with dead flags, by batch hashing (checked against numpy in
// tests/hashing/test_dead.cpp).
std::vector<uint64_t> rowIdsDead(const Expect &e, const std::vector<int64_t> &seq, const std::vector<uint8_t> &dead)
{
	std::vector<uint64_t> out(e.hasher().outputSize(seq.size()));
	std::vector<uint64_t> offs = {0, seq.size()};
	auto s = e.hasher().hashBatch(seq, offs, out, hashing::HashOutput::RowIds, dead);
	if (!s)
		throw std::runtime_error("hashBatch: " + s.message());
	return out;
}

struct ModelFile {
	TempDir dir;
	std::string path;
	explicit ModelFile(const nlohmann::json &j)
	{
		path = dir.file("model.json");
		writeFile(path, j.dump());
	}
};

std::vector<uint8_t> readNpyData(const std::string &path, io::NpyHeader *hdr)
{
	auto h = io::readNpyHeader(path);
	if (!h)
		throw std::runtime_error("npy: " + h.status().message());
	*hdr = *h;
	size_t n = 1;
	for (auto d : h->shape)
		n *= d;
	size_t elem = h->descr == "|u1" ? 1 : h->descr == "<f2" ? 2 : 4;
	std::vector<uint8_t> data(n * elem);
	FILE *fp = fopen(path.c_str(), "rb");
	if (!fp)
		throw std::runtime_error("open " + path);
	fseek(fp, (long)h->dataOffset, SEEK_SET);
	size_t got = fread(data.data(), 1, data.size(), fp);
	fclose(fp);
	if (got != data.size())
		throw std::runtime_error("short npy " + path);
	return data;
}

// e4m3 and e8m0 decoded from their definitions (not through model/widen), in double.
double e4m3(uint8_t b)
{
	int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
	if (e == 15 && m == 7)
		return NAN;
	double v = e == 0 ? m / 8.0 * std::ldexp(1.0, -6) : (1 + m / 8.0) * std::ldexp(1.0, e - 7);
	return s ? -v : v;
}

double e8m0(uint8_t e)
{
	return e == 255 ? NAN : std::ldexp(1.0, (int)e - 127);
}

} // namespace

TEST(AgentDead, StreamingTicketsWithDeadSpansEqualDirectIndexing)
{
	ModelConfig m = makeModel(agentModelJson("fp32", 16, 4, 0, false, 4));
	AgentPool p(m, 7);
	auto a = makeAgent(agentConfig(p, 512));
	Expect e(m);
	const uint32_t J = e.columns();
	std::mt19937_64 rng(99);

	// Four sequences: prompts with image spans, then decode steps where dead tokens
	// arrive alone, at a step's end, at its start, or not at all.
	const size_t S = 4;
	std::vector<std::vector<int64_t>> full(S);
	std::vector<std::vector<uint8_t>> fullDead(S);
	size_t deadSeen = 0;
	for (int step = 0; step < 40; step++) {
		std::vector<BatchEntry> batch;
		std::vector<const uint8_t *> deadPtr;
		std::vector<std::vector<int64_t>> tok(S);
		std::vector<std::vector<uint8_t>> dd(S);
		std::vector<size_t> first(S);
		for (size_t s = 0; s < S; s++) {
			if (step > 0 && rng() % 3 == 0)
				continue; // not scheduled
			size_t n = step == 0 ? 20 + rng() % 40 : 1 + rng() % 3;
			for (size_t i = 0; i < n; i++) {
				bool dead = step == 0 ? (i >= 5 && i < 12) || rng() % 9 == 0 : rng() % 4 == 0;
				tok[s].push_back(dead && rng() % 2 ? 5000 + (int64_t)(rng() % 100) : (int64_t)(rng() % 1000));
				dd[s].push_back(dead);
			}
			first[s] = full[s].size();
			full[s].insert(full[s].end(), tok[s].begin(), tok[s].end());
			fullDead[s].insert(fullDead[s].end(), dd[s].begin(), dd[s].end());
			batch.push_back({s, tok[s].data(), (uint32_t)n, step == 0 ? kSeqStart : 0u});
			// Half the entries pass flags only when one is set (nullptr = all live).
			bool any = std::count(dd[s].begin(), dd[s].end(), 1) > 0;
			deadPtr.push_back(any || rng() % 2 ? dd[s].data() : nullptr);
		}
		if (batch.empty())
			continue;
		ExpectedTicket exp;
		exp.rows.assign(e.layers(), {});
		std::vector<uint8_t> wantLive;
		for (auto &be : batch) {
			size_t s = be.seqId;
			auto ids = rowIdsDead(e, full[s], fullDead[s]);
			size_t T = full[s].size();
			for (size_t l = 0; l < e.layers(); l++)
				for (size_t k = 0; k < be.count; k++)
					for (uint32_t j = 0; j < J; j++)
						exp.rows[l].push_back(ids[(l * T + first[s] + k) * J + j]);
			for (size_t k = 0; k < be.count; k++)
				wantLive.push_back(fullDead[s][first[s] + k] ? 0 : 1);
			exp.tokens += be.count;
		}
		uint64_t t = 0;
		ASSERT_EQ(0, a->prefetch(batch.data(), batch.size(), &t, deadPtr.data())) << "step " << step;
		ASSERT_EQ(0, a->wait(t));
		std::string why;
		ASSERT_EQ(0u, outputMismatches(*a, t, exp, m.rowFormat, p.seed, -1, nullptr, &why)) << "step " << step << " " << why;
		std::vector<uint8_t> live(exp.tokens + 3, 9);
		size_t n = 0;
		ASSERT_EQ(0, a->liveMask(t, live.data(), live.size(), &n));
		ASSERT_EQ(exp.tokens, n);
		live.resize(n);
		EXPECT_EQ(wantLive, live);
		deadSeen += std::count(wantLive.begin(), wantLive.end(), 0);
		ASSERT_EQ(0, a->release(t));
	}
	EXPECT_GT(deadSeen, 20u);

	// Without flags the mask is all live; a released ticket has none.
	std::vector<int64_t> s1 = {1, 2, 3};
	BatchEntry one{77, s1.data(), 3, kSeqStart | kSeqEnd};
	uint64_t t = 0;
	ASSERT_EQ(0, a->prefetch(&one, 1, &t));
	ASSERT_EQ(0, a->wait(t));
	std::vector<uint8_t> live(3, 0);
	size_t n = 0;
	ASSERT_EQ(0, a->liveMask(t, live.data(), 3, &n));
	EXPECT_EQ((std::vector<uint8_t>{1, 1, 1}), live);
	ASSERT_EQ(0, a->release(t));
	EXPECT_EQ(-ENOENT, a->liveMask(t, live.data(), 3, &n));
}

TEST(AgentDead, CApiPrefetchExAndLiveMask)
{
	nlohmann::json mj = tinyModelJson();
	ModelConfig m = makeModel(mj);
	AgentPool p(m, 42);
	ModelFile mf(mj);
	Expect e(m);

	ep_agent_config cfg;
	ep_agent_config_init(&cfg);
	cfg.pool_uri = p.uri().c_str();
	cfg.model_path = mf.path.c_str();
	cfg.flags = EP_AGENT_NO_REGISTER;
	cfg.max_batch_tokens = 64;
	ep_agent *a = nullptr;
	ASSERT_EQ(0, ep_agent_create(&a, &cfg)) << ep_errormsg();

	std::vector<int64_t> s1 = {1, 2, 999999, 4, 5}, s2 = {7, 8};
	std::vector<uint8_t> d1 = {0, 0, 1, 0, 0};
	ep_seq_tokens batch[2] = {{10, s1.data(), 5, EP_SEQ_START}, {11, s2.data(), 2, EP_SEQ_START | EP_SEQ_END}};
	const uint8_t *dead[2] = {d1.data(), nullptr};
	ep_prefetch_opts o;
	ep_prefetch_opts_init(&o);
	EXPECT_EQ(sizeof(ep_prefetch_opts), o.struct_size);
	o.dead = dead;
	uint64_t t = 0;

	// Without the flags, the dead token's id 999999 is out of the vocabulary.
	EXPECT_EQ(EP_E_TOKEN, ep_agent_prefetch(a, batch, 2, &t));
	// Bad option structs are refused and change nothing.
	ep_prefetch_opts bad = o;
	bad.struct_size = 4;
	EXPECT_EQ(-EINVAL, ep_agent_prefetch_ex(a, batch, 2, &bad, &t));
	bad = o;
	bad.flags = 1;
	EXPECT_EQ(-EINVAL, ep_agent_prefetch_ex(a, batch, 2, &bad, &t));
	// A newer caller's larger struct: accepted when its unknown tail is zero.
	struct {
		ep_prefetch_opts o;
		uint64_t future;
	} big = {o, 5};
	big.o.struct_size = sizeof(big);
	EXPECT_EQ(-EINVAL, ep_agent_prefetch_ex(a, batch, 2, &big.o, &t));
	// An older caller's struct without the dead field: no flags (so 999999 is refused).
	bad = o;
	bad.struct_size = 8;
	EXPECT_EQ(EP_E_TOKEN, ep_agent_prefetch_ex(a, batch, 2, &bad, &t));

	big.future = 0;
	ASSERT_EQ(0, ep_agent_prefetch_ex(a, batch, 2, &big.o, &t)) << "zero tail accepted";
	ASSERT_EQ(0, ep_agent_wait(a, t, -1));
	ASSERT_EQ(0, ep_agent_release(a, t));
	// Sequence 10 carries the dead token's blocking into the next step.
	std::vector<int64_t> s1b = {6};
	ep_seq_tokens next[1] = {{10, s1b.data(), 1, 0}};
	ASSERT_EQ(0, ep_agent_prefetch_ex(a, next, 1, nullptr, &t));
	ASSERT_EQ(0, ep_agent_wait(a, t, -1));
	std::vector<int64_t> fullSeq = {1, 2, 999999, 4, 5, 6};
	auto want = rowIdsDead(e, fullSeq, {0, 0, 1, 0, 0, 0});
	const uint32_t J = e.columns();
	std::vector<uint8_t> row(m.rowFormat.rowStride());
	for (uint32_t l = 0; l < 2; l++) {
		ep_layer_output out;
		ASSERT_EQ(0, ep_agent_output(a, t, l, &out));
		for (uint32_t j = 0; j < J; j++) {
			io::randomRow(m.rowFormat, p.seed, want[(l * 6 + 5) * J + j], row.data());
			EXPECT_EQ(0, memcmp(static_cast<const uint8_t *>(out.rows) + j * out.row_stride, row.data(),
					    m.rowFormat.rowBytes()));
		}
	}
	ASSERT_EQ(0, ep_agent_release(a, t));

	// Live mask through the C ABI and the C++ wrapper.
	ASSERT_EQ(0, ep_agent_prefetch_ex(a, batch, 2, &o, &t));
	size_t n = 0;
	ASSERT_EQ(0, ep_agent_live_mask(a, t, nullptr, 0, &n));
	EXPECT_EQ(7u, n);
	std::vector<uint8_t> live(7, 9);
	ASSERT_EQ(0, ep_agent_live_mask(a, t, live.data(), live.size(), &n));
	EXPECT_EQ((std::vector<uint8_t>{1, 1, 0, 1, 1, 1, 1}), live);
	EXPECT_EQ(-EINVAL, ep_agent_live_mask(a, t, nullptr, 3, &n));
	ASSERT_EQ(0, ep_agent_release(a, t));
	EXPECT_EQ(-ENOENT, ep_agent_live_mask(a, t, live.data(), live.size(), &n));
	ep_agent_destroy(&a);

	AgentHandle h;
	ASSERT_FALSE(AgentHandle::create(cfg, h)) << ep_errormsg();
	ep_seq_tokens b2[1] = {{20, s1.data(), 5, EP_SEQ_START | EP_SEQ_END}};
	const uint8_t *d2[1] = {d1.data()};
	ASSERT_EQ(0, h.prefetch(std::span<const ep_seq_tokens>(b2, 1), std::span<const uint8_t *const>(d2, 1), t));
	std::vector<uint8_t> m2(5);
	ASSERT_EQ(0, h.liveMask(t, m2, n));
	EXPECT_EQ((std::vector<uint8_t>{1, 1, 0, 1, 1}), m2);
	EXPECT_EQ(0, h.release(t));
	// An empty dead span means no dead token (so 999999 is out of the vocabulary); a
	// span of another length than the batch is refused.
	EXPECT_EQ(EP_E_TOKEN, h.prefetch(std::span<const ep_seq_tokens>(b2, 1), std::span<const uint8_t *const>(d2, 0), t));
	const uint8_t *d3[2] = {d1.data(), nullptr};
	EXPECT_EQ(-EINVAL, h.prefetch(std::span<const ep_seq_tokens>(b2, 1), std::span<const uint8_t *const>(d3, 2), t));
}

TEST(AgentLookup, DeadFlagsLiveMaskAndDequantizedFp8)
{
	// fp8-e4m3 rows of 64 values with an e8m0 scale per 32: 66 B packed.
	nlohmann::json mj = agentModelJson("fp8-e4m3", 64, 2, 0, true);
	ModelConfig m = makeModel(mj);
	AgentPool p(m, 5);
	ModelFile mf(mj);
	Expect e(m);
	const RowFormat &f = m.rowFormat;
	ASSERT_EQ(66u, f.rowBytes());

	std::vector<std::vector<int64_t>> seqs = {{1, 2, 3, 4, 5, 6}, {9, 8}};
	std::vector<std::vector<uint8_t>> dead = {{0, 1, 1, 0, 0, 1}, {0, 0}};
	const std::string out = mf.dir.file("rows.npy"), liveOut = mf.dir.file("rows.live.npy");
	auto r = runCli("lookup " + p.uri() + " --model " + mf.path + " --tokens '" + nlohmann::json(seqs).dump() +
			"' --dead '" + nlohmann::json(dead).dump() + "' --out " + out + " --json");
	ASSERT_EQ(0, r.rc) << r.err << r.out;
	auto js = nlohmann::json::parse(r.out);
	EXPECT_EQ("float32", js["dtype"]);
	EXPECT_EQ(true, js["dequantized"]);
	EXPECT_EQ(liveOut, js["live_out"]);
	EXPECT_EQ(3, js["dead_tokens"]);

	io::NpyHeader h, lh;
	auto data = readNpyData(out, &h);
	auto live = readNpyData(liveOut, &lh);
	const size_t L = 2, B = 2, Tmax = 6, J = e.columns(), D = 64;
	ASSERT_EQ((std::vector<uint64_t>{L, B, Tmax, J, D}), h.shape);
	EXPECT_EQ("<f4", h.descr);
	ASSERT_EQ((std::vector<uint64_t>{B, Tmax}), lh.shape);
	EXPECT_EQ("|u1", lh.descr);
	EXPECT_EQ((std::vector<uint8_t>{1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0}), live);

	std::vector<uint8_t> raw(f.rowStride());
	size_t checked = 0, nan = 0;
	for (size_t b = 0; b < B; b++) {
		auto ids = rowIdsDead(e, seqs[b], dead[b]);
		const size_t T = seqs[b].size();
		for (size_t l = 0; l < L; l++)
			for (size_t t = 0; t < T; t++)
				for (size_t j = 0; j < J; j++) {
					io::randomRow(f, p.seed, ids[(l * T + t) * J + j], raw.data());
					const float *got = reinterpret_cast<const float *>(data.data()) +
							   (((l * B + b) * Tmax + t) * J + j) * D;
					for (size_t k = 0; k < D; k++) {
						double want = e4m3(raw[k]) * e8m0(raw[64 + k / 32]);
						if (std::isnan(want)) {
							ASSERT_TRUE(std::isnan(got[k]));
							nan++;
						} else if (std::fabs(want) > 3.4028234663852886e38) {
							ASSERT_TRUE(std::isinf(got[k]) && (got[k] > 0) == (want > 0));
						} else {
							ASSERT_EQ(want, (double)got[k]) << "b " << b << " l " << l << " t " << t
											<< " j " << j << " k " << k;
						}
						checked++;
					}
				}
	}
	EXPECT_EQ(L * 8 * J * D, checked);

	// --raw: the stored bytes, uint8 [L][B][T_max][J][row_bytes].
	auto rr = runCli("lookup " + p.uri() + " --model " + mf.path + " --tokens '" + nlohmann::json(seqs).dump() +
			 "' --dead '" + nlohmann::json(dead).dump() + "' --out " + out + " --raw --force");
	ASSERT_EQ(0, rr.rc) << rr.err;
	data = readNpyData(out, &h);
	EXPECT_EQ("|u1", h.descr);
	ASSERT_EQ((std::vector<uint64_t>{L, B, Tmax, J, 66}), h.shape);
	for (size_t b = 0; b < B; b++) {
		auto ids = rowIdsDead(e, seqs[b], dead[b]);
		const size_t T = seqs[b].size();
		for (size_t l = 0; l < L; l++)
			for (size_t t = 0; t < Tmax; t++)
				for (size_t j = 0; j < J; j++) {
					const uint8_t *got = data.data() + (((l * B + b) * Tmax + t) * J + j) * 66;
					if (t >= T) {
						ASSERT_EQ(std::vector<uint8_t>(66, 0), std::vector<uint8_t>(got, got + 66));
						continue;
					}
					io::randomRow(f, p.seed, ids[(l * T + t) * J + j], raw.data());
					ASSERT_EQ(0, memcmp(got, raw.data(), 66));
				}
	}

	// Shapes that differ from --tokens are refused, naming the difference; nothing written.
	const std::string other = mf.dir.file("other.npy");
	auto bad = runCli("lookup " + p.uri() + " --model " + mf.path + " --tokens '[[1,2,3],[4]]' --dead '[[0,1],[0]]' --out " + other);
	EXPECT_NE(0, bad.rc);
	EXPECT_NE(std::string::npos, bad.err.find("sequence 0 has 2 dead flags for 3 tokens")) << bad.err;
	bad = runCli("lookup " + p.uri() + " --model " + mf.path + " --tokens '[[1,2,3],[4]]' --dead '[[0,1,0]]' --out " + other);
	EXPECT_NE(0, bad.rc);
	EXPECT_NE(std::string::npos, bad.err.find("1 sequences of dead flags for 2 sequences")) << bad.err;
	EXPECT_NE(0, access(other.c_str(), F_OK));
	EXPECT_NE(0, access(mf.dir.file("other.live.npy").c_str(), F_OK));
	// An existing live mask file is not replaced without --force.
	writeFile(mf.dir.file("x.live.npy"), "keep");
	bad = runCli("lookup " + p.uri() + " --model " + mf.path + " --tokens '[[1]]' --out " + mf.dir.file("x.npy"));
	EXPECT_NE(0, bad.rc);
	EXPECT_NE(std::string::npos, bad.err.find("x.live.npy")) << bad.err;
	(void)nan;
}
