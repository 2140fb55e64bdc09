// SPDX-License-Identifier: Apache-2.0
// cmd_rm.cpp - `engrampool rm URI TABLE | --slot N`: unpublish a table (or whatever a
// catalog slot holds, even a corrupted entry); space is reused once no host reads it.
#include "cli.hpp"

namespace engrampool::cli {

namespace {
struct RmArgs {
	std::string uri, table;
	int64_t slot = -1;
	uint32_t waitMs = 10000;
	bool json = false;
};

int runRm(const RmArgs &a)
{
	auto pool = openPool(a.uri, true, a.waitMs);
	if (!pool)
		return fail(pool.status());
	if (a.table.empty() == (a.slot < 0))
		return fail(makeError(-EINVAL, "name either a TABLE or a catalog --slot N, not both"));
	std::string what = a.slot >= 0 ? "catalog slot " + std::to_string(a.slot) : a.table;
	if (Status s = a.slot >= 0 ? (*pool)->removeSlot((uint32_t)std::min<int64_t>(a.slot, UINT32_MAX))
				   : (*pool)->removeTable(a.table);
	    !s)
		return fail(s);
	auto g = (*pool)->committedGeneration();
	if (a.json)
		printJson({{"removed", what}, {"generation", g ? *g : 0}});
	else
		printf("removed %s at generation %llu\n", displayText(what).c_str(), (unsigned long long)(g ? *g : 0));
	return 0;
}
} // namespace

void addRmCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<RmArgs>();
	CLI::App *sub = root.add_subcommand("rm", "Remove a table");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	sub->add_option("TABLE", a->table, "Table name (see 'ls')");
	sub->add_option("--slot", a->slot,
			"Remove whatever catalog slot N holds, even a corrupted entry 'verify' names (instead of TABLE)")
		->check(kNonNegativeInt);
	sub->add_option("--wait-lock", a->waitMs, "Milliseconds to wait for another writer")->capture_default_str();
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runRm(*a); });
}

} // namespace engrampool::cli
