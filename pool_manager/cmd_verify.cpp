// SPDX-License-Identifier: Apache-2.0
// cmd_verify.cpp - `engrampool verify URI [--table NAME] [--repair]`: check everything,
// name every problem (table, catalog slot, master record, host slot), optionally repair.
#include "cli.hpp"

namespace engrampool::cli {

namespace {
struct VerifyArgs {
	std::string uri, table;
	bool json = false;
	bool repair = false;
	uint32_t waitMs = 10000;
};

nlohmann::json reportJson(const VerifyReport &v)
{
	nlohmann::json j = {{"object", v.object}, {"table", v.table}, {"ok", v.ok}, {"problem", v.problem}};
	if (!v.layout.empty())
		j["layout"] = v.layout;
	if (v.tokenMap)
		j["check"] = "token_map";
	if ((v.object == "table" || v.tokenMap) && (v.expected || v.actual)) {
		j["expected_xxh3"] = fingerprintHex(v.expected);
		j["actual_xxh3"] = fingerprintHex(v.actual);
	}
	return j;
}

// With --json a document is printed whatever happens, then the one-line error.
int failWithJson(const VerifyArgs &a, const Status &s)
{
	if (a.json)
		printJson({{"ok", false},
			   {"error", s.message()},
			   {"bad_tables", 0},
			   {"bad_token_maps", 0},
			   {"problems", nlohmann::json::array()},
			   {"tables", nlohmann::json::array()},
			   {"token_maps", nlohmann::json::array()}});
	return fail(s);
}

int runVerify(const VerifyArgs &a)
{
	nlohmann::json repaired = nlohmann::json::array();
	if (a.repair) {
		auto w = openPool(a.uri, true, a.waitMs);
		if (!w)
			return failWithJson(a, w.status());
		auto done = (*w)->repair();
		if (!done)
			return failWithJson(a, done.status());
		for (auto &line : *done) {
			repaired.push_back(line);
			if (!a.json)
				printf("repaired: %s\n", displayText(line).c_str());
		}
		if (!a.json && done->empty())
			printf("repair: nothing to repair in the catalog, master or host slots\n");
	}
	auto pool = openPool(a.uri, false);
	if (!pool)
		return failWithJson(a, pool.status());
	auto r = (*pool)->verify(a.table);
	if (!r)
		return failWithJson(a, r.status());
	int badTables = 0, badMaps = 0, problems = 0;
	nlohmann::json tables = nlohmann::json::array(), maps = nlohmann::json::array(), others = nlohmann::json::array();
	std::string names;
	for (auto &v : *r) {
		bool isTableCheck = v.object == "table" && (v.ok || v.expected || v.actual);
		if (!v.ok) {
			(isTableCheck ? badTables : v.tokenMap ? badMaps : problems)++;
			names += (names.empty() ? "" : ", ") + displayText(v.table) + (v.tokenMap ? " (token map)" : "");
		}
		(isTableCheck ? tables : v.tokenMap ? maps : others).push_back(reportJson(v));
		if (!a.json)
			printf("%-40s %s%s%s\n", (displayText(v.table) + (v.tokenMap ? " (token map)" : "")).c_str(),
			       v.ok ? "ok" : "BAD", v.ok ? "" : ": ", displayText(v.problem).c_str());
	}
	int bad = badTables + badMaps + problems;
	if (a.json) {
		nlohmann::json doc = {{"ok", bad == 0},     {"bad_tables", badTables}, {"bad_token_maps", badMaps},
				      {"problems", others}, {"tables", tables},        {"token_maps", maps}};
		if (a.repair)
			doc["repaired"] = repaired;
		printJson(doc);
	} else {
		printf("%zu table(s) checked, %d bad; %zu token map(s) checked, %d bad; %d other problem(s)\n",
		       tables.size(), badTables, maps.size(), badMaps, problems);
	}
	if (bad)
		return fail("verify found " + std::to_string(bad) + " problem(s): " + names +
			    (a.repair ? "" : " (see 'engrampool verify --repair' and 'engrampool rm')"));
	return 0;
}
} // namespace

void addVerifyCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<VerifyArgs>();
	CLI::App *sub = root.add_subcommand(
		"verify", "Validate the pool's structure (superblock, master records, catalog, host slots) and recompute "
			  "table checksums; every problem is named. --repair fixes the structure without reformatting");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	sub->add_option("--table", a->table, "Only this table (or this model: its stored token map)");
	sub->add_flag("--repair", a->repair,
		      "As the writer, in one publish: restore catalog state words from intact entries, unpublish "
		      "corrupted or inconsistent entries, clear unreadable slots, rewrite a corrupted master record "
		      "from the valid one, clear corrupt host slots; then verify");
	sub->add_option("--wait-lock", a->waitMs, "Milliseconds to wait for another writer (--repair)")
		->capture_default_str();
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runVerify(*a); });
}

} // namespace engrampool::cli
