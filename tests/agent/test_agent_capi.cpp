// SPDX-License-Identifier: Apache-2.0
// test_agent_capi.cpp - the agent through the C ABI (round trip, metrics JSON and Prometheus
// text) and `engrampool lookup --out X.npy` against direct indexing (fp32, bf16 widened).
#include "agent_test_util.hpp"

#include <engrampool/engrampool.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "io/npy.hpp"
#include "model/widen.hpp"

using namespace eptest;
using namespace engrampool;

namespace {

struct ModelFile {
	TempDir dir;
	std::string path;
	explicit ModelFile(const nlohmann::json &j)
	{
		path = dir.file("model.json");
		writeFile(path, j.dump());
	}
};

} // namespace

TEST(AgentCapi, RoundTrip)
{
	nlohmann::json mj = tinyModelJson();
	ModelConfig m = makeModel(mj);
	AgentPool p(m, 42);
	ModelFile mf(mj);
	Expect e(m);

	ep_agent_config cfg;
	ep_agent_config_init(&cfg);
	EXPECT_EQ(2048u, cfg.max_batch_tokens);
	EXPECT_EQ(3u, cfg.slots);
	EXPECT_EQ(-1, cfg.numa_node);
	ep_agent *a = nullptr;
	EXPECT_EQ(-EINVAL, ep_agent_create(&a, &cfg)) << "pool_uri and model_path are required";
	EXPECT_NE(std::string(), ep_errormsg());
	cfg.pool_uri = p.uri().c_str();
	std::string missing = mf.dir.file("nope.json");
	cfg.model_path = missing.c_str();
	EXPECT_EQ(-ENOENT, ep_agent_create(&a, &cfg));
	EXPECT_NE(std::string::npos, std::string(ep_errormsg()).find("nope.json")) << ep_errormsg();
	EXPECT_EQ(nullptr, a);
	cfg.model_path = mf.path.c_str();
	cfg.flags = EP_AGENT_NO_REGISTER;
	cfg.max_batch_tokens = 64;
	ASSERT_EQ(0, ep_agent_create(&a, &cfg)) << ep_errormsg();
	ASSERT_NE(nullptr, a);
	EXPECT_EQ(2u, ep_agent_layers(a));
	EXPECT_STREQ("", ep_agent_last_error(a));

	std::vector<int64_t> s1 = {1, 2, 3, 4}, s2 = {7, 8};
	ep_seq_tokens batch[2] = {{10, s1.data(), 4, EP_SEQ_START}, {11, s2.data(), 2, EP_SEQ_START | EP_SEQ_END}};
	uint64_t t = 0;
	ASSERT_EQ(0, ep_agent_prefetch(a, batch, 2, &t));
	ASSERT_EQ(0, ep_agent_wait(a, t, 0));
	ASSERT_EQ(0, ep_agent_wait(a, t, -1));
	EXPECT_EQ(nullptr, ep_agent_event(a, t, 0)) << "no CUDA event on the host device";
	auto id1 = e.rowIds(s1), id2 = e.rowIds(s2);
	uint32_t J = e.columns();
	std::vector<uint8_t> want(m.rowFormat.rowStride());
	for (uint32_t l = 0; l < 2; l++) {
		ep_layer_output o;
		ASSERT_EQ(0, ep_agent_output(a, t, l, &o));
		EXPECT_EQ(6u, o.tokens);
		EXPECT_EQ(J, o.columns);
		EXPECT_EQ(m.rowFormat.rowBytes(), o.row_bytes);
		EXPECT_EQ(m.layerIds[l], o.layer_id);
		EXPECT_EQ(p.tables.at(m.layerIds[l]).generation <= o.generation, true);
		const uint8_t *rows = static_cast<const uint8_t *>(o.rows);
		for (uint32_t tok = 0; tok < 6; tok++)
			for (uint32_t j = 0; j < J; j++) {
				uint64_t r = tok < 4 ? id1[(l * 4 + tok) * J + j] : id2[(l * 2 + tok - 4) * J + j];
				io::randomRow(m.rowFormat, p.seed, r, want.data());
				ASSERT_EQ(0, memcmp(rows + (tok * J + j) * o.row_stride, want.data(), o.row_bytes))
					<< "layer " << l << " token " << tok << " column " << j;
			}
	}
	ep_layer_output o;
	EXPECT_EQ(-EINVAL, ep_agent_output(a, t, 2, &o));
	EXPECT_EQ(-EINVAL, ep_agent_output(a, t, 0, nullptr));
	ASSERT_EQ(0, ep_agent_release(a, t));
	EXPECT_EQ(-ENOENT, ep_agent_release(a, t));
	EXPECT_EQ(-ENOENT, ep_agent_wait(a, t, -1));
	// Bad input through the C ABI: codes, no text needed.
	std::vector<int64_t> oov = {1000};
	ep_seq_tokens bad = {10, oov.data(), 1, 0};
	EXPECT_EQ(EP_E_TOKEN, ep_agent_prefetch(a, &bad, 1, &t));
	ep_seq_tokens unknown = {11, s2.data(), 1, 0};
	EXPECT_EQ(-ENOENT, ep_agent_prefetch(a, &unknown, 1, &t));
	EXPECT_EQ(-ENOENT, ep_agent_end_sequence(a, 11));
	EXPECT_EQ(0, ep_agent_end_sequence(a, 10));

	// Metrics: size query, JSON with the documented keys, Prometheus histogram lines.
	size_t need = 0;
	EXPECT_EQ(-ENOSPC, ep_agent_metrics(a, 0, nullptr, 0, &need));
	ASSERT_GT(need, 1u);
	std::string buf(need, '\0');
	ASSERT_EQ(0, ep_agent_metrics(a, 0, buf.data(), buf.size(), &need));
	auto j = nlohmann::json::parse(std::string(buf.c_str()), nullptr, false);
	ASSERT_FALSE(j.is_discarded()) << buf;
	for (const char *k : {"tickets", "rows", "cache", "stalls", "ticket_latency_us"})
		EXPECT_TRUE(j.contains(k)) << k;
	EXPECT_EQ(1u, j["tickets"].get<uint64_t>());
	EXPECT_EQ(6u * J * 2, j["rows"].get<uint64_t>());
	EXPECT_EQ(1u, j["ticket_latency_us"]["count"].get<uint64_t>());
	EXPECT_GT(j["ticket_latency_us"]["p50"].get<double>(), 0.0);
	EXPECT_TRUE(j["stalls"].contains("total_us"));
	EXPECT_TRUE(j["cache"].contains("hit_rate"));
	ASSERT_EQ(-ENOSPC, ep_agent_metrics(a, 1, nullptr, 0, &need));
	std::string prom(need, '\0');
	ASSERT_EQ(0, ep_agent_metrics(a, 1, prom.data(), prom.size(), &need));
	prom.resize(need - 1);
	EXPECT_NE(std::string::npos, prom.find("engrampool_agent_ticket_latency_seconds_bucket{le=\"")) << prom;
	EXPECT_NE(std::string::npos, prom.find("engrampool_agent_ticket_latency_seconds_bucket{le=\"+Inf\"} 1")) << prom;
	EXPECT_NE(std::string::npos, prom.find("engrampool_agent_ticket_latency_seconds_count 1")) << prom;
	EXPECT_NE(std::string::npos, prom.find("# TYPE engrampool_agent_ticket_latency_seconds histogram"));
	EXPECT_NE(std::string::npos, prom.find("engrampool_agent_tickets_total 1"));
	EXPECT_EQ(-EINVAL, ep_agent_metrics(a, 0, nullptr, 5, &need));

	ep_agent_destroy(&a);
	EXPECT_EQ(nullptr, a);
	ep_agent_destroy(&a); // NULL-safe
	EXPECT_EQ(-EINVAL, ep_agent_prefetch(nullptr, batch, 1, &t));
	EXPECT_EQ(-EINVAL, ep_agent_wait(nullptr, 1, -1));
	EXPECT_EQ(0u, ep_agent_layers(nullptr));
	EXPECT_STREQ("", ep_agent_last_error(nullptr));
}

TEST(AgentCapi, OutputFormatsThroughFlagsEqualReadRowsAs)
{
	// EP_AGENT_OUT(fmt) in flags: the rows of each format equal ep_pool_read_rows_as of
	// the same row ids; an unknown format fails creation with one clear line.
	nlohmann::json mj = agentModelJson("fp8-e4m3", 256, 2, 64, true);
	ModelConfig m = makeModel(mj);
	AgentPool p(m, 43);
	ModelFile mf(mj);
	Expect e(m);
	ep_pool *pool = nullptr;
	ASSERT_EQ(0, ep_pool_open(&pool, p.uri().c_str(), 0)) << ep_errormsg();
	std::vector<int64_t> s1 = {5, 6, 7, 5, 6, 7};
	auto ids = e.rowIds(s1);
	const uint32_t J = e.columns(), D = m.rowFormat.valuesPerRow;
	const size_t n = s1.size() * J;
	struct Want {
		int fmt;
		uint32_t rowBytes;
		size_t bytes;
	};
	for (Want w : {Want{EP_OUT_PACKED, 264, 0}, Want{EP_OUT_PLANES, D, n * (D + D / 32)},
		       Want{EP_OUT_F32, 4 * D, n * 4 * D}, Want{EP_OUT_BF16, 2 * D, n * 2 * D}}) {
		ep_agent_config cfg;
		ep_agent_config_init(&cfg);
		cfg.pool_uri = p.uri().c_str();
		cfg.model_path = mf.path.c_str();
		cfg.max_batch_tokens = 16;
		cfg.flags = EP_AGENT_NO_REGISTER | EP_AGENT_OUT(w.fmt);
		ep_agent *a = nullptr;
		ASSERT_EQ(0, ep_agent_create(&a, &cfg)) << ep_errormsg();
		ep_seq_tokens batch = {1, s1.data(), (uint32_t)s1.size(), EP_SEQ_START | EP_SEQ_END};
		uint64_t t = 0;
		ASSERT_EQ(0, ep_agent_prefetch(a, &batch, 1, &t));
		ASSERT_EQ(0, ep_agent_wait(a, t, -1));
		for (uint32_t l = 0; l < 2; l++) {
			ep_layer_output o;
			ASSERT_EQ(0, ep_agent_output(a, t, l, &o));
			EXPECT_EQ((uint32_t)w.fmt, o.format);
			EXPECT_EQ(w.rowBytes, o.row_bytes) << "format " << w.fmt;
			std::vector<uint64_t> lid(ids.begin() + l * n, ids.begin() + (l + 1) * n);
			std::vector<uint8_t> want(n * (w.fmt == EP_OUT_PACKED ? 264 : w.bytes / n));
			ASSERT_EQ(0, ep_pool_read_rows_as(pool, p.tables.at(m.layerIds[l]).name.c_str(), lid.data(), n, w.fmt,
							  want.data(), want.size()))
				<< ep_errormsg();
			const uint8_t *rows = static_cast<const uint8_t *>(o.rows);
			if (w.fmt == EP_OUT_PACKED) {
				for (size_t i = 0; i < n; i++)
					ASSERT_EQ(0, memcmp(rows + i * o.row_stride, want.data() + i * 264, 264)) << i;
			} else {
				EXPECT_EQ(o.row_bytes, o.row_stride);
				ASSERT_EQ(0, memcmp(rows, want.data(), want.size())) << "format " << w.fmt << " layer " << l;
			}
			if (w.fmt == EP_OUT_PLANES) // the scales plane starts after tokens*columns values rows
				EXPECT_EQ(0, memcmp(rows + (size_t)o.tokens * o.columns * o.row_stride,
						    want.data() + n * D, n * D / 32));
		}
		ASSERT_EQ(0, ep_agent_release(a, t));
		ep_agent_destroy(&a);
	}
	ep_agent_config cfg;
	ep_agent_config_init(&cfg);
	cfg.pool_uri = p.uri().c_str();
	cfg.model_path = mf.path.c_str();
	cfg.flags = EP_AGENT_NO_REGISTER | EP_AGENT_OUT(9);
	ep_agent *a = nullptr;
	EXPECT_EQ(-EINVAL, ep_agent_create(&a, &cfg));
	EXPECT_EQ(nullptr, a);
	std::string msg = ep_errormsg();
	EXPECT_NE(std::string::npos, msg.find("output format 9 is unknown")) << msg;
	EXPECT_EQ(std::string::npos, msg.find('\n')) << msg;
	ep_pool_close(&pool);
}

TEST(AgentCapi, CreateFailsOnAModelThePoolDoesNotHold)
{
	nlohmann::json mj = tinyModelJson();
	ModelConfig m = makeModel(mj);
	AgentPool p(m, 1);
	mj["seed"] = 3;
	ModelFile mf(mj);
	ep_agent_config cfg;
	ep_agent_config_init(&cfg);
	cfg.pool_uri = p.uri().c_str();
	cfg.model_path = mf.path.c_str();
	cfg.flags = EP_AGENT_NO_REGISTER;
	ep_agent *a = nullptr;
	EXPECT_EQ(EP_E_MODEL, ep_agent_create(&a, &cfg));
	EXPECT_NE(std::string::npos, std::string(ep_errormsg()).find("tiny/layer1")) << ep_errormsg();
	EXPECT_EQ(nullptr, a);
}

namespace {

ep_agent *capiAgent(const AgentPool &p, const ModelFile &mf)
{
	ep_agent_config cfg;
	ep_agent_config_init(&cfg);
	cfg.pool_uri = p.uri().c_str();
	cfg.model_path = mf.path.c_str();
	cfg.flags = EP_AGENT_NO_REGISTER;
	cfg.max_batch_tokens = 512;
	ep_agent *a = nullptr;
	EXPECT_EQ(0, ep_agent_create(&a, &cfg)) << ep_errormsg();
	return a;
}

} // namespace

// ep_agent_last_error from many threads while tickets run and other threads fail
// their own control-plane calls: no shared buffer is written (clean under TSan), and
// every thread reads only its own messages.
TEST(AgentCapi, LastErrorIsThreadSafe)
{
	nlohmann::json mj = tinyModelJson();
	ModelConfig m = makeModel(mj);
	AgentPool p(m, 5);
	ModelFile mf(mj);
	ep_agent *a = capiAgent(p, mf);
	ASSERT_NE(nullptr, a);
	std::atomic<bool> stop{false};
	std::atomic<int> wrong{0};
	std::vector<std::thread> ts;
	for (int i = 0; i < 4; i++)
		ts.emplace_back([&] {
			while (!stop.load()) {
				std::string e = ep_agent_last_error(a);
				if (!e.empty() || std::string(ep_errormsg()) != e)
					wrong++;
			}
		});
	for (int i = 0; i < 2; i++)
		ts.emplace_back([&, i] {
			std::string missing = mf.dir.file("missing" + std::to_string(i) + ".json");
			ep_agent_config cfg;
			ep_agent_config_init(&cfg);
			cfg.pool_uri = p.uri().c_str();
			cfg.model_path = missing.c_str();
			cfg.flags = EP_AGENT_NO_REGISTER;
			for (int k = 0; k < 50; k++) {
				ep_agent *b = nullptr;
				if (ep_agent_create(&b, &cfg) != -ENOENT || b)
					wrong++;
				if (std::string(ep_errormsg()).find(missing) == std::string::npos)
					wrong++;
				if (std::string(ep_agent_last_error(a)) != "")
					wrong++;
			}
		});
	std::vector<int64_t> toks = {1, 2, 3, 4, 5, 6};
	for (uint64_t seq = 1; seq <= 200; seq++) {
		ep_seq_tokens b = {seq, toks.data(), (uint32_t)toks.size(), EP_SEQ_START | EP_SEQ_END};
		uint64_t t = 0;
		ASSERT_EQ(0, ep_agent_prefetch(a, &b, 1, &t));
		ASSERT_EQ(0, ep_agent_wait(a, t, -1));
		ASSERT_EQ(0, ep_agent_release(a, t));
	}
	stop = true;
	for (auto &t : ts)
		t.join();
	EXPECT_EQ(0, wrong.load());
	ep_agent_destroy(&a);
}

// A failed ticket's text reaches every thread that asks, through its own last error.
TEST(AgentCapi, FailedTicketTextReachesEveryThread)
{
	// In a child: a SIGBUS that escaped would kill it, not the test runner.
	int rc = runForked([]() -> int {
		nlohmann::json mj = tinyModelJson();
		ModelConfig m = makeModel(mj);
		AgentPool p(m, 9, 32ull << 20, "file");
		ModelFile mf(mj);
		ep_agent *a = capiAgent(p, mf);
		if (!a)
			return 10;
		const TableInfo &t0 = p.tables.at(m.layerIds[0]);
		const TableInfo &t1 = p.tables.at(m.layerIds[1]);
		uint64_t cut = std::min(t0.dataOffset, t1.dataOffset) + 65536;
		if (truncate(p.pool.backingPath().c_str(), (off_t)cut) != 0)
			return 11;
		std::vector<int64_t> toks(400);
		for (size_t i = 0; i < toks.size(); i++)
			toks[i] = (int64_t)((i * 7919) % m.tokenizerVocabSize);
		ep_seq_tokens b = {1, toks.data(), (uint32_t)toks.size(), EP_SEQ_START | EP_SEQ_END};
		uint64_t t = 0;
		if (ep_agent_prefetch(a, &b, 1, &t) != 0)
			return 12;
		if (ep_agent_wait(a, t, -1) != -EFAULT)
			return 13;
		std::string mine = ep_agent_last_error(a);
		fprintf(stderr, "ep_agent_last_error: %s\n", mine.c_str());
		if (mine.find("faulted") == std::string::npos || std::string(ep_errormsg()) != mine)
			return 14;
		std::atomic<int> wrong{0};
		std::vector<std::thread> ts;
		for (int i = 0; i < 4; i++)
			ts.emplace_back([&] {
				ep_errormsg(); // this thread's own, empty message
				for (int k = 0; k < 100; k++)
					if (ep_agent_last_error(a) != std::string(ep_errormsg()) || mine != ep_errormsg())
						wrong++;
			});
		for (auto &th : ts)
			th.join();
		if (wrong.load())
			return 15;
		ep_agent_release(a, t);
		ep_agent_destroy(&a);
		return 0;
	});
	EXPECT_EQ(0, rc);
}

namespace {

// Run `engrampool lookup` and compare the .npy with direct indexing of the tables.
void checkLookup(const nlohmann::json &mj, const std::vector<std::vector<int64_t>> &seqs)
{
	ModelConfig m = makeModel(mj);
	AgentPool p(m, 77);
	ModelFile mf(mj);
	Expect e(m);
	std::string out = mf.dir.file("rows.npy");
	nlohmann::json tj = seqs;
	auto r = runCli("lookup " + p.uri() + " --model " + mf.path + " --tokens '" + tj.dump() + "' --out " + out);
	ASSERT_EQ(0, r.rc) << r.err << r.out;
	auto h = io::readNpyHeader(out);
	ASSERT_TRUE(h) << h.status().message();
	const RowFormat &f = m.rowFormat;
	bool fp16 = f.dtype == Dtype::Fp16;
	EXPECT_EQ(fp16 ? "<f2" : "<f4", h->descr);
	size_t L = m.layerIds.size(), B = seqs.size(), Tmax = 0, J = e.columns(), D = f.valuesPerRow;
	for (auto &s : seqs)
		Tmax = std::max(Tmax, s.size());
	ASSERT_EQ((std::vector<uint64_t>{L, B, Tmax, J, D}), h->shape);
	size_t elem = fp16 ? 2 : 4, bytes = L * B * Tmax * J * D * elem;
	std::vector<uint8_t> data(bytes);
	{
		FILE *fp = fopen(out.c_str(), "rb");
		ASSERT_NE(nullptr, fp);
		fseek(fp, (long)h->dataOffset, SEEK_SET);
		ASSERT_EQ(bytes, fread(data.data(), 1, bytes, fp));
		fclose(fp);
	}
	std::vector<uint8_t> raw(f.rowStride());
	std::vector<float> wide(D);
	for (size_t b = 0; b < B; b++) {
		auto ids = e.rowIds(seqs[b]);
		size_t T = seqs[b].size();
		for (size_t l = 0; l < L; l++)
			for (size_t t = 0; t < Tmax; t++)
				for (size_t j = 0; j < J; j++) {
					const uint8_t *got = data.data() + ((((l * B + b) * Tmax + t) * J + j) * D) * elem;
					if (t >= T) {
						for (size_t k = 0; k < D * elem; k++)
							ASSERT_EQ(0, got[k]) << "padding must be zero";
						continue;
					}
					uint64_t row = ids[(l * T + t) * J + j];
					io::randomRow(f, p.seed, row, raw.data());
					if (fp16) {
						ASSERT_EQ(0, memcmp(got, raw.data(), D * 2));
						continue;
					}
					for (size_t k = 0; k < D; k++) {
						float want;
						if (f.dtype == Dtype::Fp32)
							memcpy(&want, raw.data() + 4 * k, 4);
						else {
							uint16_t v;
							memcpy(&v, raw.data() + 2 * k, 2);
							want = bf16ToFloat(v);
						}
						float g;
						memcpy(&g, got + 4 * k, 4);
						ASSERT_EQ(0, memcmp(&want, &g, 4)) << "l " << l << " b " << b << " t " << t
										   << " j " << j << " k " << k;
					}
				}
	}
}

} // namespace

TEST(AgentLookup, Fp32NpyEqualsDirectIndexing)
{
	checkLookup(tinyModelJson(), {{1, 2, 3, 4, 5}, {999, 0}, {42, 42, 42, 42, 42, 42, 42}});
}

TEST(AgentLookup, Bf16NpyIsWidenedToFp32)
{
	checkLookup(agentModelJson("bf16", 40, 4, 64), {{17, 18}, {5, 6, 7, 8, 9, 10}, {3}});
}

TEST(AgentLookup, Fp16NpyKeepsFp16)
{
	checkLookup(agentModelJson("fp16", 24), {{100, 200, 300}, {400}});
}

TEST(AgentLookup, BadTokenIsAClearError)
{
	nlohmann::json mj = tinyModelJson();
	ModelConfig m = makeModel(mj);
	AgentPool p(m, 1);
	ModelFile mf(mj);
	auto r = runCli("lookup " + p.uri() + " --model " + mf.path + " --tokens '[[1, 1000]]' --out " +
			mf.dir.file("x.npy"));
	EXPECT_NE(0, r.rc);
	EXPECT_NE(std::string::npos, r.err.find("vocabulary")) << r.err;
	EXPECT_EQ(0, access(mf.dir.file("x.npy").c_str(), F_OK) == 0 ? 1 : 0) << "no output file on error";
}
