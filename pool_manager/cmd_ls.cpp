// SPDX-License-Identifier: Apache-2.0
// cmd_ls.cpp - `engrampool ls URI`: the tables visible at the committed generation.
#include "cli.hpp"
#include "util/units.hpp"

namespace engrampool::cli {

namespace {
struct LsArgs {
	std::string uri;
	bool json = false;
};

nlohmann::json tableJson(const TableInfo &t)
{
	return {{"name", t.name},
		{"model", t.model},
		{"model_fingerprint", fingerprintHex(t.modelFingerprint)},
		{"layer_id", t.layerId},
		{"rows", t.rows},
		{"dtype", dtypeName(t.format.dtype)},
		{"values_per_row", t.format.valuesPerRow},
		{"scale_dtype", dtypeName(t.format.scaleDtype)},
		{"scales_per_row", t.format.scalesPerRow()},
		{"row_bytes", t.rowBytes},
		{"row_stride", t.rowStride},
		{"layout", layoutName(t.layout)},
		{"data_offset", t.dataOffset},
		{"data_bytes", t.dataBytes},
		{"xxh3", fingerprintHex(t.dataXxh3)},
		{"state", "published"},
		{"generation", t.generation}};
}

// What the pool holds of a model's token map.
nlohmann::json tokenMapJson(const ModelRecord &m)
{
	if (m.tokenMapStored())
		return {{"stored", true}, {"entries", m.tokenMapEntries()}, {"bytes", m.tokenMapEntries() * sizeof(int64_t)},
			{"extent_bytes", m.tokenMapExtentBytes()}, {"xxh3", fingerprintHex(m.body.vocabMapHash)}};
	return {{"stored", false}, {"identity", m.body.vocabMapHash == 0}};
}

std::string tokenMapText(const ModelRecord &m)
{
	if (m.tokenMapStored())
		return "stored, " + std::to_string(m.tokenMapEntries()) + " ids -> " +
		       std::to_string(m.body.compressedVocabSize) + " (" +
		       formatBytes(m.tokenMapEntries() * sizeof(int64_t)) + ")";
	return m.body.vocabMapHash == 0 ? "none (identity vocabulary)" : "NOT STORED (published by a format 1.0 build)";
}

int runLs(const LsArgs &a)
{
	auto pool = openPool(a.uri, false);
	if (!pool)
		return fail(pool.status());
	auto s = (*pool)->snapshot();
	if (!s)
		return fail(s.status());
	// Quarantined slots do not stop the listing; they are counted and pointed at.
	if (!s->problems.empty())
		fprintf(stderr, "engrampool: warning: %zu catalog slot(s) are quarantined; 'engrampool verify' names them\n",
			s->problems.size());
	if (a.json) {
		nlohmann::json tables = nlohmann::json::array();
		for (auto &t : s->tables)
			tables.push_back(tableJson(t));
		nlohmann::json models = nlohmann::json::array();
		for (auto &m : s->models)
			models.push_back({{"name", m.name},
					  {"fingerprint", fingerprintHex(m.fingerprint)},
					  {"generation", m.generation},
					  {"token_map", tokenMapJson(m)}});
		printJson({{"generation", s->generation}, {"tables", tables}, {"models", models},
			   {"quarantined_slots", s->problems.size()}});
		return 0;
	}
	printf("%-32s %-16s %6s %12s  %-28s %-6s %11s %5s\n", "TABLE", "MODEL", "LAYER", "ROWS", "ROW FORMAT", "LAYOUT",
	       "SIZE", "GEN");
	for (auto &t : s->tables)
		printf("%-32s %-16s %6u %12llu  %-28s %-6s %11s %5llu\n", displayText(t.name).c_str(),
		       displayText(t.model).c_str(), t.layerId, (unsigned long long)t.rows, t.format.describe().c_str(),
		       layoutName(t.layout), formatBytes(t.dataBytes).c_str(), (unsigned long long)t.generation);
	printf("%zu table(s) at generation %llu\n", s->tables.size(), (unsigned long long)s->generation);
	for (auto &m : s->models)
		printf("model %s  fingerprint %s  token map %s\n", displayText(m.name).c_str(),
		       fingerprintHex(m.fingerprint).c_str(), tokenMapText(m).c_str());
	return 0;
}
} // namespace

void addLsCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<LsArgs>();
	CLI::App *sub = root.add_subcommand("ls", "List the pool's tables");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runLs(*a); });
}

} // namespace engrampool::cli
