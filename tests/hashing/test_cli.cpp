// SPDX-License-Identifier: Apache-2.0
// test_cli.cpp - `engrampool hash` and `engrampool model` print the reference's ids and layout.
#include "hash_test_util.hpp"

#include <fstream>
#include <unistd.h>

using namespace hashtest;

namespace {

std::string cli()
{
	return eptest::buildRoot() + "/pool_manager/engrampool";
}

} // namespace

TEST(HashCli, HashAndModelMatchVectors)
{
	if (access(cli().c_str(), X_OK) != 0)
		GTEST_SKIP() << cli() << " not built";
	auto v = loadVectors();
	eptest::TempDir dir;
	for (auto &cs : v["cases"]) {
		const std::string model = dir.file(cs["name"].get<std::string>() + ".json");
		nlohmann::json cfg = cs["config"];
		if (!cfg.contains("vocab_map")) // identity vocabulary, said explicitly (issue 11)
			cfg["compressed_vocab_size"] = cfg["tokenizer_vocab_size"];
		std::ofstream(model) << cfg.dump();

		/* Every input batch as one ragged request. */
		nlohmann::json seqs = nlohmann::json::array();
		for (auto &batch : cs["inputs"])
			for (auto &s : batch)
				seqs.push_back(s);
		const std::string tokFile = dir.file("tokens.json");
		std::ofstream(tokFile) << seqs.dump();

		for (const std::string &arg : { "--tokens '" + seqs.dump() + "'", "--tokens-file " + tokFile }) {
			std::string out;
			ASSERT_EQ(eptest::runCommand(cli() + " hash --model " + model + " " + arg + " --json", &out, false), 0) << out;
			auto res = nlohmann::json::parse(out);
			ASSERT_EQ(res["layers"].size(), cs["config"]["layer_ids"].size());
			for (auto &L : res["layers"]) {
				const auto &exp = cs["outputs"][std::to_string(L["layer_id"].get<uint32_t>())];
				size_t b = 0;
				for (auto &batch : exp)
					for (size_t i = 0; i < batch["hash_ids"].size(); i++, b++) {
						EXPECT_EQ(L["hash_ids"][b], batch["hash_ids"][i]) << cs["name"];
						EXPECT_EQ(L["row_ids"][b], batch["row_ids"][i]) << cs["name"];
					}
				EXPECT_EQ(b, L["hash_ids"].size());
			}
		}

		std::string out;
		ASSERT_EQ(eptest::runCommand(cli() + " model " + model + " --json", &out, false), 0) << out;
		auto m = nlohmann::json::parse(out);
		for (auto &L : m["layers"]) {
			const auto &exp = cs["layers"][std::to_string(L["layer_id"].get<uint32_t>())];
			EXPECT_EQ(L["multipliers"], exp["multipliers"]);
			EXPECT_EQ(L["offsets"], exp["head_offsets"]);
			EXPECT_EQ(L["rows"], exp["total_rows"]);
			/* fp32 rows of n_embed / heads values by default. */
			EXPECT_EQ(L["table_bytes"].get<uint64_t>(),
				  exp["total_rows"].get<uint64_t>() * 4 * exp["embedding_dim_per_head"].get<uint64_t>());
		}
	}
}

TEST(HashCli, BadTokensFail)
{
	if (access(cli().c_str(), X_OK) != 0)
		GTEST_SKIP() << cli() << " not built";
	eptest::TempDir dir;
	const std::string model = dir.file("m.json");
	std::ofstream(model) << R"({"tokenizer_vocab_size": 1000, "compressed_vocab_size": 1000, "engram_vocab_size": [5000, 7000],
		"max_ngram_size": 3, "n_embed_per_ngram": 64, "n_head_per_ngram": 4,
		"layer_ids": [1, 15], "pad_id": 2, "seed": 0})";
	std::string out;
	EXPECT_NE(eptest::runCommand(cli() + " hash --model " + model + " --tokens '[[1,2,1000]]' --json", &out), 0);
	EXPECT_NE(out.find("1000"), std::string::npos) << out;
	EXPECT_NE(eptest::runCommand(cli() + " hash --model " + model + " --tokens '[[1,\"x\"]]'", &out), 0);
	EXPECT_NE(out.find("not an integer"), std::string::npos) << out;
}
