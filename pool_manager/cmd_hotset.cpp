// SPDX-License-Identifier: Apache-2.0
// cmd_hotset.cpp - `engrampool hotset --trace FILE --model MODEL.json --rows N --out FILE`:
// a static hot set (the agent's hot-set frequency file, AgentConfig::hotSetFile) built
// from a token trace: the N (layer, row) pairs its n-grams look up most often.
#include <algorithm>
#include <fstream>
#include <unordered_map>

#include "../emulation/trace/token_trace.hpp"
#include "cli.hpp"
#include "hashing/hasher.hpp"
#include "hashing/primes.hpp"

namespace engrampool::cli {

namespace {
struct HotsetArgs {
	std::string trace, model, out;
	uint64_t rows = 262144;
	uint64_t skip = 0;  // leave the trace's first sequences out (e.g. a held-out slice)
	uint64_t take = 0;  // use at most this many sequences (0 = all)
	bool json = false;
};

// Lookup counts of one layer: dense below 256 Mi rows, a hash map above.
struct Counts {
	std::vector<uint32_t> dense;
	std::unordered_map<uint64_t, uint32_t> sparse;
	void add(uint64_t row)
	{
		if (!dense.empty())
			dense[row] += dense[row] != UINT32_MAX;
		else
			sparse[row]++;
	}
};

int runHotset(const HotsetArgs &a)
{
	auto cfg = loadModelFile(a.model);
	if (!cfg)
		return fail(cfg.status());
	if (a.rows == 0)
		return fail("--rows must be positive");
	auto tr = trace::loadTrace(a.trace, cfg->tokenizerVocabSize);
	if (!tr)
		return fail(tr.status());
	if (a.skip >= tr->sequences())
		return fail("--skip " + std::to_string(a.skip) + " leaves no sequence of the trace's " +
			    std::to_string(tr->sequences()));
	auto layout = hashing::ModelLayout::create(*cfg);
	if (!layout)
		return fail(layout.status());
	auto h = hashing::EngramHasher::create(*layout);
	if (!h)
		return fail(h.status());
	auto tableRows = hashing::tableRows(*cfg);
	size_t L = cfg->layerIds.size();
	std::vector<Counts> counts(L);
	for (size_t l = 0; l < L; l++)
		if (tableRows[l] <= (256ull << 20))
			counts[l].dense.assign(tableRows[l], 0);
	size_t end = a.take ? std::min<size_t>(tr->sequences(), a.skip + a.take) : tr->sequences();
	std::vector<uint64_t> ids;
	uint64_t tokens = 0, lookups = 0;
	for (size_t s = a.skip; s < end; s++) {
		std::span<const int64_t> seq(tr->tokens.data() + tr->starts[s], tr->starts[s + 1] - tr->starts[s]);
		ids.resize(h->outputSize(seq.size()));
		std::vector<uint64_t> offs = {0, seq.size()};
		if (Status st = h->hashBatch(seq, offs, ids); !st)
			return fail(std::move(st).context("trace sequence " + std::to_string(s) + ": "));
		size_t per = seq.size() * h->columns();
		for (size_t l = 0; l < L; l++)
			for (size_t i = 0; i < per; i++)
				counts[l].add(ids[l * per + i]);
		tokens += seq.size();
		lookups += ids.size();
	}
	// The N most looked-up (layer, row) pairs over all layers.
	struct Hot {
		uint32_t count;
		uint32_t layer;
		uint64_t row;
	};
	std::vector<Hot> all;
	uint64_t distinct = 0;
	for (size_t l = 0; l < L; l++) {
		auto push = [&](uint64_t row, uint32_t c) {
			if (c)
				all.push_back({c, (uint32_t)l, row}), distinct++;
		};
		for (uint64_t r = 0; r < counts[l].dense.size(); r++)
			push(r, counts[l].dense[r]);
		for (auto &[r, c] : counts[l].sparse)
			push(r, c);
		counts[l] = Counts{};
	}
	size_t n = std::min<size_t>(a.rows, all.size());
	auto byCount = [](const Hot &x, const Hot &y) {
		return x.count != y.count ? x.count > y.count : x.layer != y.layer ? x.layer < y.layer : x.row < y.row;
	};
	std::partial_sort(all.begin(), all.begin() + (long)n, all.end(), byCount);
	uint64_t covered = 0;
	for (size_t i = 0; i < n; i++)
		covered += all[i].count;
	std::ofstream out(a.out);
	if (!out)
		return fail(errnoError(errno ? errno : EIO, "write " + a.out));
	out << "# engrampool hot set: LAYER_ID ROW_ID COUNT, most looked-up first\n"
	    << "# trace " << a.trace << " sequences [" << a.skip << ", " << end << "), " << tokens << " tokens; model "
	    << cfg->name << "\n";
	for (size_t i = 0; i < n; i++)
		out << cfg->layerIds[all[i].layer] << ' ' << all[i].row << ' ' << all[i].count << '\n';
	out.close();
	if (!out)
		return fail(errnoError(errno ? errno : EIO, "write " + a.out));
	double share = lookups ? (double)covered / (double)lookups : 0.0;
	if (a.json) {
		printJson({{"out", a.out},
			   {"model", cfg->name},
			   {"trace", a.trace},
			   {"sequences", end - a.skip},
			   {"tokens", tokens},
			   {"lookups", lookups},
			   {"distinct_rows", distinct},
			   {"rows", n},
			   {"lookups_covered", share}});
		return 0;
	}
	printf("wrote %zu hot rows to %s: %llu of the trace's %llu lookups (%.1f %%) hit them; %llu distinct rows "
	       "in %llu tokens of %zu sequences\n",
	       n, a.out.c_str(), (unsigned long long)covered, (unsigned long long)lookups, 100.0 * share,
	       (unsigned long long)distinct, (unsigned long long)tokens, (size_t)(end - a.skip));
	return 0;
}
} // namespace

void addHotsetCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<HotsetArgs>();
	CLI::App *sub = root.add_subcommand(
		"hotset", "Build a static hot set (the agent's hot-set file) from a token trace: the most looked-up rows");
	sub->footer("The file lists 'LAYER_ID ROW_ID COUNT' lines, most looked-up first; give it to the agent as\n"
		    "its hot-set file (AgentConfig::hotSetFile) with a hot tier of at least --rows rows. Pick it\n"
		    "from one slice of text (--skip/--take) and measure on another (throughput_loss --trace).");
	sub->add_option("--trace", a->trace, "Token trace (docs/TRACE.md)")->required();
	sub->add_option("--model", a->model, "MODEL.json")->required();
	sub->add_option("--out", a->out, "Hot-set file to write")->required();
	sub->add_option("--rows", a->rows, "Rows in the hot set (over all layers)")
		->check(kNonNegativeInt)
		->capture_default_str();
	sub->add_option("--skip", a->skip, "Leave out the trace's first sequences")->check(kNonNegativeInt);
	sub->add_option("--take", a->take, "Use at most this many sequences (0 = all)")->check(kNonNegativeInt);
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runHotset(*a); });
}

} // namespace engrampool::cli
