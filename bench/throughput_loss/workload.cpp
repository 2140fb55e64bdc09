// SPDX-License-Identifier: Apache-2.0
// workload.cpp - Zipf token sampling (alias method) and the continuous-batching schedule.
#include "workload.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <numeric>
#include <random>

namespace engrampool::bench {

namespace {

// Walker's alias method over Zipf(s) ranks, ranks mapped to shuffled token ids.
class ZipfSampler {
public:
	ZipfSampler(uint64_t n, double s, std::mt19937_64 &rng) : prob_(n), alias_(n), ids_(n)
	{
		std::vector<double> w(n);
		double sum = 0;
		for (uint64_t r = 0; r < n; r++)
			sum += w[r] = 1.0 / std::pow((double)(r + 1), s);
		std::vector<uint64_t> small, large;
		for (uint64_t r = 0; r < n; r++) {
			w[r] = w[r] * (double)n / sum;
			(w[r] < 1.0 ? small : large).push_back(r);
		}
		while (!small.empty() && !large.empty()) {
			uint64_t a = small.back(), b = large.back();
			small.pop_back();
			prob_[a] = w[a];
			alias_[a] = b;
			w[b] -= 1.0 - w[a];
			if (w[b] < 1.0) {
				large.pop_back();
				small.push_back(b);
			}
		}
		for (auto r : small)
			prob_[r] = 1.0;
		for (auto r : large)
			prob_[r] = 1.0;
		std::iota(ids_.begin(), ids_.end(), 0);
		std::shuffle(ids_.begin(), ids_.end(), rng);
	}
	int64_t operator()(std::mt19937_64 &rng)
	{
		uint64_t r = rng() % prob_.size();
		double u = (double)(rng() >> 11) * 0x1p-53;
		return ids_[u < prob_[r] ? r : alias_[r]];
	}

private:
	std::vector<double> prob_;
	std::vector<uint64_t> alias_;
	std::vector<int64_t> ids_;
};

} // namespace

Schedule buildSchedule(const WorkloadSpec &w, uint64_t vocab, double lengthScale, uint32_t maxSteps,
		       const trace::TokenTrace *trace)
{
	std::mt19937_64 rng(w.seed * 0x9e3779b97f4a7c15ull + 12345);
	ZipfSampler zipf(vocab, w.zipf, rng);
	auto draw = [&](uint32_t lo, uint32_t hi, uint32_t cap) {
		uint32_t v = std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
		return std::clamp<uint32_t>((uint32_t)std::lround(v * lengthScale), 1, cap);
	};
	Schedule s;
	s.sequences = w.sequences;
	std::vector<uint32_t> prompt(w.sequences), output(w.sequences), done(w.sequences, 0);
	std::vector<uint64_t> base(w.sequences);
	uint64_t total = 0;
	for (uint32_t i = 0; i < w.sequences; i++) {
		prompt[i] = draw(w.promptMin, w.promptMax, w.maxBatchTokens);
		output[i] = draw(w.outputMin, w.outputMax, 1u << 30);
		base[i] = total;
		total += prompt[i] + output[i];
	}
	s.tokens.resize(total);
	if (trace && trace->sequences()) {
		for (uint32_t i = 0; i < w.sequences; i++)
			trace->take((i + w.seed * 1000003ull) % trace->sequences(), prompt[i] + output[i],
				    s.tokens.data() + base[i]);
	} else {
		for (auto &t : s.tokens)
			t = zipf(rng);
	}

	std::deque<uint32_t> waiting;
	for (uint32_t i = 0; i < w.sequences; i++)
		waiting.push_back(i);
	std::vector<uint32_t> running;
	while (!waiting.empty() || !running.empty()) {
		if (maxSteps && s.steps.size() >= maxSteps)
			break;
		Step st;
		st.firstEntry = (uint32_t)s.entries.size();
		// Prefill: whole prompts while the step has room.
		while (!waiting.empty() && running.size() + st.entries < w.maxSeqs) {
			uint32_t q = waiting.front();
			if (st.tokens + prompt[q] > w.maxBatchTokens)
				break;
			waiting.pop_front();
			BatchEntry e;
			e.seqId = q;
			e.tokens = s.tokens.data() + base[q];
			e.count = prompt[q];
			e.flags = kSeqStart;
			done[q] = 1; // the prefill samples the first output token
			if (done[q] >= output[q])
				e.flags |= kSeqEnd;
			else
				running.push_back(q);
			s.entries.push_back(e);
			st.entries++;
			st.tokens += prompt[q];
			s.promptTokens += prompt[q];
		}
		if (st.entries) {
			st.prefill = true;
			st.outputTokens = st.entries;
		} else {
			// Decode: every running sequence feeds its last sampled token.
			std::vector<uint32_t> still;
			still.reserve(running.size());
			for (uint32_t q : running) {
				BatchEntry e;
				e.seqId = q;
				e.tokens = s.tokens.data() + base[q] + prompt[q] + (done[q] - 1);
				e.count = 1;
				st.ctxTokens += prompt[q] + done[q];
				done[q]++;
				if (done[q] >= output[q])
					e.flags = kSeqEnd;
				else
					still.push_back(q);
				s.entries.push_back(e);
				st.entries++;
			}
			running.swap(still);
			st.tokens = st.entries;
			st.outputTokens = st.entries;
		}
		s.outputTokens += st.outputTokens;
		s.maxEntries = std::max(s.maxEntries, st.entries);
		s.maxStepTokens = std::max(s.maxStepTokens, st.tokens);
		s.steps.push_back(st);
	}
	return s;
}

} // namespace engrampool::bench
