// SPDX-License-Identifier: Apache-2.0
// cmd_gc.cpp - `engrampool gc URI`: free removed tables no live host can read, release expired slots.
#include "cli.hpp"

namespace engrampool::cli {

namespace {
struct GcArgs {
	std::string uri;
	uint32_t waitMs = 10000;
	bool json = false;
};

int runGc(const GcArgs &a)
{
	// Opening as writer already recovers and reclaims; report what remains.
	auto pool = openPool(a.uri, true, a.waitMs);
	if (!pool)
		return fail(pool.status());
	auto freed = (*pool)->reclaim();
	if (!freed)
		return fail(freed.status());
	auto s = (*pool)->snapshot();
	if (!s)
		return fail(s.status());
	if (a.json)
		printJson({{"pending_reclaim", s->pendingReclaim}, {"used_bytes", s->usedBytes},
			   {"quarantined_slots", s->problems.size()}});
	else
		printf("gc done: %u removed table(s) still wait for hosts to move on\n", s->pendingReclaim);
	// Corrupted catalog slots are not gc's to fix (they may hold a table): say where to go.
	if (!s->problems.empty())
		fprintf(stderr, "engrampool: warning: %zu catalog slot(s) are quarantined; 'engrampool verify' names them, "
				"'engrampool verify --repair' fixes them\n",
			s->problems.size());
	return 0;
}
} // namespace

void addGcCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<GcArgs>();
	CLI::App *sub = root.add_subcommand("gc", "Reclaim space of removed tables and expired host slots");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	sub->add_option("--wait-lock", a->waitMs, "Milliseconds to wait for another writer")->capture_default_str();
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runGc(*a); });
}

} // namespace engrampool::cli
