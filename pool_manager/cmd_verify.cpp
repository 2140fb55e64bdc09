// SPDX-License-Identifier: Apache-2.0
// cmd_verify.cpp - `engrampool verify URI [--table NAME]`: check structure and checksums.
#include "cli.hpp"

namespace engrampool::cli {

namespace {
struct VerifyArgs {
	std::string uri, table;
	bool json = false;
};

int runVerify(const VerifyArgs &a)
{
	auto pool = openPool(a.uri, false);
	if (!pool)
		return fail(pool.status());
	auto r = (*pool)->verify(a.table);
	if (!r)
		return fail(r.status());
	int bad = 0;
	nlohmann::json tables = nlohmann::json::array();
	for (auto &v : *r) {
		if (!v.ok)
			bad++;
		tables.push_back({{"table", v.table}, {"ok", v.ok}, {"expected_xxh3", fingerprintHex(v.expected)},
				  {"actual_xxh3", fingerprintHex(v.actual)}, {"problem", v.problem}});
		if (!a.json)
			printf("%-40s %s%s%s\n", v.table.c_str(), v.ok ? "ok" : "BAD", v.ok ? "" : ": ", v.problem.c_str());
	}
	if (a.json)
		printJson({{"ok", bad == 0}, {"bad_tables", bad}, {"tables", tables}});
	else
		printf("%zu table(s) checked, %d bad\n", r->size(), bad);
	if (bad) {
		std::string names;
		for (auto &v : *r)
			if (!v.ok)
				names += (names.empty() ? "" : ", ") + v.table;
		return fail("verify failed for " + std::to_string(bad) + " table(s): " + names);
	}
	return 0;
}
} // namespace

void addVerifyCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<VerifyArgs>();
	CLI::App *sub = root.add_subcommand("verify", "Validate the pool's structure and recompute table checksums");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	sub->add_option("--table", a->table, "Only this table");
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runVerify(*a); });
}

} // namespace engrampool::cli
