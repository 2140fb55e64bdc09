// SPDX-License-Identifier: Apache-2.0
// decode_loop.cpp - a server-style decode loop over the agent (public C++ API only): continuous
// batching, prefetch as soon as a step's token ids exist, stand-in layer compute, a wait before
// each Engram layer, release; prints steps/s, stall time and the agent's metrics.
//
// Usage: decode_loop URI MODEL.json [STEPS=200] [LIVE=32] [LAYERS=24] [US_PER_LAYER=20]
//   e.g. engrampool create emul:demo --size 8G
//        engrampool import emul:demo --model examples/models/engram_demo_v1.json --layer 1 --random
//        engrampool import emul:demo --model examples/models/engram_demo_v1.json --layer 15 --random
//        decode_loop emul:demo examples/models/engram_demo_v1.json 500
#include <engrampool/engrampool.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using Clock = std::chrono::steady_clock;

namespace {

double usSince(Clock::time_point t0)
{
	return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// Stand-in for one transformer layer on the accelerator.
void layerCompute(double us)
{
	auto end = Clock::now() + std::chrono::duration<double, std::micro>(us);
	while (Clock::now() < end) {
	}
}

// tokenizer_vocab_size from the model file (a plain scan: the example needs no JSON library).
uint64_t vocabSize(const std::string &modelPath)
{
	std::ifstream in(modelPath);
	std::stringstream ss;
	ss << in.rdbuf();
	std::string s = ss.str();
	size_t at = s.find("\"tokenizer_vocab_size\"");
	if (at == std::string::npos)
		return 1000;
	at = s.find(':', at);
	return at == std::string::npos ? 1000 : std::strtoull(s.c_str() + at + 1, nullptr, 10);
}

struct Request {
	uint64_t id;
	std::vector<int64_t> prompt;
	uint32_t outputLen;
	uint32_t generated = 0;
	bool started = false;
	int64_t lastToken = 0;
};

double quantile(std::vector<double> v, double q)
{
	if (v.empty())
		return 0;
	size_t i = std::min(v.size() - 1, (size_t)(q * (double)v.size()));
	std::nth_element(v.begin(), v.begin() + (long)i, v.end());
	return v[i];
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s URI MODEL.json [STEPS=200] [LIVE=32] [LAYERS=24] [US_PER_LAYER=20]\n", argv[0]);
		return 2;
	}
	const std::string uri = argv[1], modelPath = argv[2];
	const int steps = argc > 3 ? atoi(argv[3]) : 200;
	const size_t live = argc > 4 ? (size_t)atoi(argv[4]) : 32;
	const uint32_t layers = argc > 5 ? (uint32_t)atoi(argv[5]) : 24;
	const double usPerLayer = argc > 6 ? atof(argv[6]) : 20.0;
	const uint64_t vocab = vocabSize(modelPath);

	ep_agent_config cfg = engrampool::AgentHandle::defaults();
	cfg.pool_uri = uri.c_str();
	cfg.model_path = modelPath.c_str();
	cfg.max_batch_tokens = 2048;
	cfg.slots = 2;
	engrampool::AgentHandle agent;
	if (auto e = engrampool::AgentHandle::create(cfg, agent)) {
		fprintf(stderr, "agent: %s (%s)\n", e.message.c_str(), ep_strerror(e.code));
		return 1;
	}

	std::mt19937_64 rng(2024);
	auto token = [&] { return (int64_t)(rng() % vocab); };
	uint64_t nextId = 1;
	auto newRequest = [&] {
		Request r;
		r.id = nextId++;
		r.prompt.resize(16 + rng() % 113);
		for (auto &t : r.prompt)
			t = token();
		r.outputLen = 16 + (uint32_t)(rng() % 241);
		return r;
	};

	std::vector<Request> running;
	std::vector<ep_seq_tokens> batch;
	std::vector<int64_t> decodeTokens;
	std::vector<double> stallPerStep;
	uint64_t tokens = 0, finished = 0, checksum = 0;
	double stallUs = 0, prefetchUs = 0;
	const uint32_t L = agent.layers();
	auto t0 = Clock::now();
	for (int step = 0; step < steps; step++) {
		// Continuous batching: fill free places with new requests (their prompt is this
		// step's prefill chunk) while the step's token budget allows.
		uint32_t budget = cfg.max_batch_tokens - (uint32_t)running.size();
		while (running.size() < live) {
			Request r = newRequest();
			if (r.prompt.size() > budget)
				break;
			budget -= (uint32_t)r.prompt.size();
			running.push_back(std::move(r));
		}
		batch.clear();
		decodeTokens.assign(running.size(), 0);
		for (size_t i = 0; i < running.size(); i++) {
			Request &r = running[i];
			ep_seq_tokens e{};
			e.seq_id = r.id;
			if (!r.started) {
				e.tokens = r.prompt.data();
				e.count = (uint32_t)r.prompt.size();
				e.flags = EP_SEQ_START;
			} else {
				decodeTokens[i] = r.lastToken;
				e.tokens = &decodeTokens[i];
				e.count = 1;
				e.flags = r.generated + 1 >= r.outputLen ? EP_SEQ_END : 0;
			}
			batch.push_back(e);
			tokens += e.count;
		}
		// The step's token ids exist: start the fetch now, before the first layer runs.
		auto tp = Clock::now();
		uint64_t id = 0;
		int rc = agent.prefetch(batch, id);
		prefetchUs += usSince(tp);
		if (rc != 0) {
			fprintf(stderr, "step %d: prefetch: %s %s\n", step, ep_strerror(rc), agent.lastError().c_str());
			return 1;
		}
		engrampool::TicketGuard ticket(agent, id);
		// Which model layers are Engram layers (output() is valid before the rows are).
		std::vector<uint32_t> engramLayer(L);
		for (uint32_t k = 0; k < L; k++) {
			ep_layer_output o;
			if (ticket.output(k, o) == 0)
				engramLayer[k] = o.layer_id;
		}
		double stepStall = 0;
		uint32_t next = 0;
		for (uint32_t layer = 0; layer < layers || next < L; layer++) {
			while (next < L && engramLayer[next] == layer) {
				auto tw = Clock::now();
				if ((rc = ticket.wait((int)next)) != 0) {
					fprintf(stderr, "step %d: wait: %s %s\n", step, ep_strerror(rc), agent.lastError().c_str());
					return 1;
				}
				stepStall += usSince(tw);
				// The Engram layer reads its rows: [tokens][columns] rows, row_stride apart.
				ep_layer_output o;
				ticket.output(next, o);
				const auto *rows = static_cast<const uint8_t *>(o.rows);
				for (uint32_t r = 0; r < o.tokens * o.columns; r++)
					checksum += rows[(size_t)r * o.row_stride];
				next++;
			}
			if (layer < layers)
				layerCompute(usPerLayer);
		}
		stallUs += stepStall;
		stallPerStep.push_back(stepStall);
		// Sample the next tokens; finished requests leave the batch.
		std::vector<Request> still;
		for (Request &r : running) {
			if (!r.started) {
				r.started = true;
			} else if (++r.generated >= r.outputLen) {
				finished++;
				continue;
			}
			r.lastToken = token();
			still.push_back(std::move(r));
		}
		running = std::move(still);
	}
	double secs = usSince(t0) / 1e6;
	printf("steps %d, tokens %llu, requests finished %llu, running %zu\n", steps, (unsigned long long)tokens,
	       (unsigned long long)finished, running.size());
	printf("%.1f steps/s, %.0f tokens/s; stand-in compute %u layers x %.1f us\n", steps / secs, tokens / secs, layers,
	       usPerLayer);
	printf("stall (wait blocked before an Engram layer): total %.1f ms, %.2f%% of wall time, per step p50 %.1f us "
	       "p99 %.1f us\n",
	       stallUs / 1e3, 100.0 * stallUs / (secs * 1e6), quantile(stallPerStep, 0.5), quantile(stallPerStep, 0.99));
	printf("prefetch call: %.1f us per step (checksum %llu)\n", prefetchUs / steps, (unsigned long long)checksum);
	for (Request &r : running)
		(void)agent.endSequence(r.id);
	printf("agent metrics:\n%s\n", agent.metrics().c_str());
	return 0;
}
