// SPDX-License-Identifier: Apache-2.0
// cmd_rm.cpp - `engrampool rm URI TABLE`: unpublish a table; space is reused once no host reads it.
#include "cli.hpp"

namespace engrampool::cli {

namespace {
struct RmArgs {
	std::string uri, table;
	uint32_t waitMs = 10000;
	bool json = false;
};

int runRm(const RmArgs &a)
{
	auto pool = openPool(a.uri, true, a.waitMs);
	if (!pool)
		return fail(pool.status());
	if (Status s = (*pool)->removeTable(a.table); !s)
		return fail(s);
	auto g = (*pool)->committedGeneration();
	if (a.json)
		printJson({{"removed", a.table}, {"generation", g ? *g : 0}});
	else
		printf("removed %s at generation %llu\n", a.table.c_str(), (unsigned long long)(g ? *g : 0));
	return 0;
}
} // namespace

void addRmCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<RmArgs>();
	CLI::App *sub = root.add_subcommand("rm", "Remove a table");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	sub->add_option("TABLE", a->table, "Table name (see 'ls')")->required();
	sub->add_option("--wait-lock", a->waitMs, "Milliseconds to wait for another writer")->capture_default_str();
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runRm(*a); });
}

} // namespace engrampool::cli
