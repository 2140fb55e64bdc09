// SPDX-License-Identifier: Apache-2.0
// test_cli_dead.cpp - `engrampool hash --dead / --dead-file`: ids, the live mask, shape errors.
#include "hash_test_util.hpp"

#include <fstream>
#include <unistd.h>

using namespace hashtest;

namespace {

std::string cli()
{
	return eptest::buildRoot() + "/pool_manager/engrampool";
}

const char *kModel = R"({"tokenizer_vocab_size": 1000, "compressed_vocab_size": 1000, "engram_vocab_size": [5000, 7000, 9000],
	"max_ngram_size": 4, "n_embed_per_ngram": 64, "n_head_per_ngram": 4,
	"layer_ids": [1, 14], "pad_id": 2, "seed": 0})";

} // namespace

TEST(HashCliDead, DeadFlagsGiveTheLibrarysIdsAndALiveMask)
{
	if (access(cli().c_str(), X_OK) != 0)
		GTEST_SKIP() << cli() << " not built";
	eptest::TempDir dir;
	const std::string model = dir.file("m.json");
	std::ofstream(model) << kModel;
	auto cfg = parseModelJson(kModel, "", "m");
	ASSERT_TRUE(cfg.isOk()) << cfg.status().message();
	ModelLayout layout = mustLayout(*cfg);
	EngramHasher h = mustHasher(layout, Kernel::Scalar);

	/* The dead token 5000 is outside the vocabulary: not read, not checked. */
	const std::string tokens = "[[5,6,5000,7,8,9],[1,2]]", dead = "[[0,0,1,0,0,1],[0,0]]";
	const std::string deadFile = dir.file("dead.json");
	std::ofstream(deadFile) << dead;
	std::vector<int64_t> flat{ 5, 6, 5000, 7, 8, 9, 1, 2 };
	std::vector<uint8_t> flags{ 0, 0, 1, 0, 0, 1, 0, 0 };
	std::vector<uint64_t> offs{ 0, 6, 8 }, rows(h.outputSize(8)), hashes(rows.size());
	ASSERT_TRUE(h.hashBatch(flat, offs, rows, HashOutput::RowIds, flags).isOk());
	ASSERT_TRUE(h.hashBatch(flat, offs, hashes, HashOutput::HashIds, flags).isOk());
	const uint32_t J = layout.columns();

	for (const std::string &arg : { "--dead '" + dead + "'", "--dead-file " + deadFile }) {
		std::string out;
		ASSERT_EQ(eptest::runCommand(cli() + " hash --model " + model + " --tokens '" + tokens + "' " + arg + " --json",
					     &out, false),
			  0)
			<< out;
		auto res = nlohmann::json::parse(out);
		EXPECT_EQ(res["live"], nlohmann::json::parse("[[1,1,0,1,1,0],[1,1]]"));
		for (size_t l = 0; l < 2; l++) {
			const auto &L = res["layers"][l];
			for (size_t t = 0; t < 8; t++) {
				const size_t b = t < 6 ? 0 : 1, i = t < 6 ? t : t - 6;
				for (uint32_t j = 0; j < J; j++) {
					EXPECT_EQ(L["row_ids"][b][i][j].get<uint64_t>(), rows[(l * 8 + t) * J + j]);
					EXPECT_EQ(L["hash_ids"][b][i][j].get<uint64_t>(), hashes[(l * 8 + t) * J + j]);
				}
			}
		}
	}
	/* Text output marks dead tokens; without --dead every token is live. */
	std::string out;
	ASSERT_EQ(eptest::runCommand(cli() + " hash --model " + model + " --tokens '" + tokens + "' --dead '" + dead + "'", &out, false), 0);
	EXPECT_NE(out.find("token 2 (id 5000, dead)"), std::string::npos) << out;
	std::string js;
	ASSERT_EQ(eptest::runCommand(cli() + " hash --model " + model + " --tokens '[[5,6]]' --json", &js, false), 0);
	EXPECT_EQ(nlohmann::json::parse(js)["live"], nlohmann::json::parse("[[1,1]]"));
}

TEST(HashCliDead, ShapeMismatchesAreNamed)
{
	if (access(cli().c_str(), X_OK) != 0)
		GTEST_SKIP() << cli() << " not built";
	eptest::TempDir dir;
	const std::string model = dir.file("m.json");
	std::ofstream(model) << kModel;
	auto run = [&](const std::string &args) {
		std::string out;
		int rc = eptest::runCommand(cli() + " hash --model " + model + " " + args, &out);
		EXPECT_NE(rc, 0) << args;
		return out;
	};
	EXPECT_NE(run("--tokens '[[1,2,3],[4]]' --dead '[[0,1],[0]]'").find("--dead: sequence 0 has 2 dead flags for 3 tokens"),
		  std::string::npos);
	EXPECT_NE(run("--tokens '[[1,2,3],[4]]' --dead '[[0,1,0]]'").find("1 sequences of dead flags for 2 sequences of tokens"),
		  std::string::npos);
	EXPECT_NE(run("--tokens '[[1,2],[4]]' --dead '[[0,1],[2]]'").find("sequence 1 token 0: a dead flag is 0 or 1, found 2"),
		  std::string::npos);
	const std::string f = dir.file("d.json");
	std::ofstream(f) << "[[0]]";
	EXPECT_NE(run("--tokens '[[1]]' --dead '[[0]]' --dead-file " + f).find("at most one of --dead and --dead-file"),
		  std::string::npos);
	EXPECT_NE(run("--tokens '[[1,2]]' --dead-file " + f).find("sequence 0 has 1 dead flags for 2 tokens"),
		  std::string::npos);
	EXPECT_NE(run("--tokens '[[1]]' --dead-file " + dir.file("missing.json")).find("missing.json"), std::string::npos);
}
