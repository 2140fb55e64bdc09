// SPDX-License-Identifier: Apache-2.0
// cmd_emulate.cpp - `engrampool emulate URI --model MODEL.json --hosts N --steps M`: N forked host processes serve verified Zipfian (or --trace) streams; optional live replacement and host kills.
#include "../emulation/launcher/emulate.hpp"
#include "cli.hpp"

namespace engrampool::cli {

namespace {
struct EmulateArgs {
	std::string uri, model;
	emulate::Options o;
	bool json = false;
};

int runEmulate(EmulateArgs &a)
{
	auto cfg = loadModelFile(a.model);
	if (!cfg)
		return fail(cfg.status());
	a.o.uri = a.uri;
	a.o.model = std::move(cfg.value());
	a.o.progress = !a.json;
	auto r = emulate::run(a.o);
	if (!r)
		return fail(r.status());
	if (a.json)
		printJson(emulate::toJson(*r));
	else
		fputs(emulate::toTable(*r).c_str(), stdout);
	return r->ok ? 0 : 1;
}
} // namespace

void addEmulateCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<EmulateArgs>();
	CLI::App *sub = root.add_subcommand(
		"emulate", "Run N emulated hosts against one pool, verify every row; optional live replace and host kills");
	sub->footer("The pool must hold every Engram layer of the model imported with `import --random --seed S`\n"
		    "(same S as --seed), or pass --prepare to import the missing layers. Exit status 1 on any\n"
		    "wrong row, failed host, unreleased slot of a killed host or unreclaimed space.");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	sub->add_option("--model", a->model, "MODEL.json")->required();
	sub->add_option("--hosts", a->o.hosts, "Host processes (1..256 - --host-index-base)")
		->check(kNonNegativeInt)
		->capture_default_str();
	sub->add_option("--steps", a->o.steps, "Steps per host")->check(kNonNegativeInt)->capture_default_str();
	sub->add_option("--batch", a->o.batch,
			"Live sequences per host (continuous batching), at most " + std::to_string(emulate::kMaxBatch) +
				", and --batch x --max-prefill at most " + std::to_string(emulate::kMaxStepTokens))
		->check(kNonNegativeInt)
		->capture_default_str();
	sub->add_option("--max-prefill", a->o.maxPrefill, "Tokens of a sequence's first chunk, at most")
		->check(kNonNegativeInt)
		->capture_default_str();
	sub->add_option("--max-seq-len", a->o.maxSeqLen, "Tokens of a sequence, at most (at least 2)")
		->check(kNonNegativeInt)
		->capture_default_str();
	sub->add_option("--zipf", a->o.zipfS, "Zipf exponent of the token stream (finite, >= 0)")
		->check(kFinite)
		->capture_default_str();
	sub->add_option("--trace", a->o.tracePath,
			"Replay a token trace (docs/TRACE.md): each new sequence reads real token ids from a random "
			"trace sequence's start instead of Zipf draws");
	sub->add_option("--seed", a->o.seed, "Seed the tables were imported with (--random --seed)")
		->check(kNonNegativeInt)
		->capture_default_str();
	sub->add_option("--replace-at", a->o.replaceAt,
			"Replace every layer's table (new seed) once all hosts reached this step (below --steps)")
		->check(kNonNegativeInt);
	sub->add_option("--kill-hosts", a->o.killHosts, "SIGKILL this many random hosts mid-run")
		->check(kNonNegativeInt)
		->capture_default_str();
	sub->add_option("--kill-at", a->o.killAt, "Step of the kills, below --steps (default: --replace-at, else steps/2)")
		->check(kNonNegativeInt);
	sub->add_option("--reclaim-ms", a->o.reclaimMs, "Reclaim period after a replacement")
		->check(kNonNegativeInt)
		->capture_default_str();
	sub->add_option("--compute-us", a->o.computeUs, "Modeled compute between prefetch and wait")
		->check(kNonNegativeInt)
		->capture_default_str();
	sub->add_option("--cache-rows", a->o.cacheRows, "Agent hot-row tier capacity")
		->check(kNonNegativeInt)
		->capture_default_str();
	sub->add_option("--heartbeat-ms", a->o.heartbeatMs, "Agent heartbeat period (0 = lease / 4)")
		->check(kNonNegativeInt)
		->capture_default_str();
	sub->add_option("--host-index-base", a->o.hostIndexBase, "Host i claims slot BASE + i (0..255)")
		->check(kNonNegativeInt)
		->capture_default_str();
	sub->add_option("--timeout", a->o.timeoutS, "Seconds before the run is aborted")
		->check(kFinite)
		->capture_default_str();
	sub->add_flag("--prepare", a->o.prepare, "Import missing layer tables with --random --seed first");
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runEmulate(*a); });
}

} // namespace engrampool::cli
