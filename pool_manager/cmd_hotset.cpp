// SPDX-License-Identifier: Apache-2.0
// cmd_hotset.cpp - `engrampool hotset --trace FILE --model MODEL.json --rows N --out FILE`:
// a static hot set (the agent's hot-set frequency file, AgentConfig::hotSetFile) built
// from a token trace: the N (layer, row) pairs its n-grams look up most often.
#include "../emulation/trace/token_trace.hpp"
#include "cli.hpp"

namespace engrampool::cli {

namespace {
struct HotsetArgs {
	std::string trace, model, out;
	uint64_t rows = 262144;
	uint64_t skip = 0;  // leave the trace's first sequences out (e.g. a held-out slice)
	uint64_t take = 0;  // use at most this many sequences (0 = all)
	bool json = false;
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
	auto hs = trace::buildHotSet(*tr, *cfg, a.rows, a.skip, a.take);
	if (!hs)
		return fail(hs.status());
	size_t end = a.skip + hs->sequences;
	if (Status st = trace::writeHotSet(*hs, *cfg, a.out,
					   "trace " + a.trace + " sequences [" + std::to_string(a.skip) + ", " +
						   std::to_string(end) + "), " + std::to_string(hs->tokens) +
						   " tokens; model " + cfg->name);
	    !st)
		return fail(st);
	size_t n = hs->rows.size();
	uint64_t covered = hs->covered, lookups = hs->lookups, distinct = hs->distinct, tokens = hs->tokens;
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
