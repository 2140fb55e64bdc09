// SPDX-License-Identifier: Apache-2.0
// test_tokenmap_cli.cpp - `engrampool tokenmap`, and the map against an independent Python
// implementation (unicodedata, no ICU) on generated tokenizers of a few thousand tokens.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "io/npy.hpp"
#include "test_util.hpp"
#include "tokenizer/token_map.hpp"
#include "tokenizer_json.hpp"

using namespace engrampool;
using nlohmann::json;

namespace {

std::string cli()
{
	return eptest::buildRoot() + "/pool_manager/engrampool";
}

std::string refScript()
{
	return eptest::sourceRoot() + "/tests/tokenizer/token_map_ref.py";
}

std::string slurp(const std::string &path)
{
	std::ifstream f(path, std::ios::binary);
	std::stringstream ss;
	ss << f.rdbuf();
	return ss.str();
}

std::string writeTokenizer(const eptest::TempDir &dir)
{
	tktest::TokenizerSpec t;
	for (const char *s : { "<s>", "</s>", "<pad>", "Hello", " hello", "\xC3\xA9", "e", "\xC3" })
		t.vocab.push_back(tktest::byteLevel(s));
	t.added.push_back({ 8, "<think>" });
	const std::string path = dir.file("tokenizer.json");
	std::ofstream(path) << t.toJson().dump();
	return path;
}

} // namespace

TEST(TokenMapCli, WritesTheMapAndReportsIt)
{
	if (access(cli().c_str(), X_OK) != 0)
		GTEST_SKIP() << cli() << " not built";
	eptest::TempDir dir;
	const std::string tok = writeTokenizer(dir), out = dir.file("map.npy");
	std::string o;
	ASSERT_EQ(eptest::runCommand(cli() + " tokenmap " + tok + " --out " + out + " --json", &o, false), 0) << o;
	json j = json::parse(o);
	EXPECT_EQ(j["ids"], 9);
	EXPECT_EQ(j["compressed_vocab_size"], 7);
	EXPECT_EQ(j["pad_map"]["2"], 2);
	auto m = io::loadNpyInt64(out);
	ASSERT_TRUE(m.isOk()) << m.status().message();
	EXPECT_EQ(*m, (std::vector<int64_t>{ 0, 1, 2, 3, 3, 4, 4, 5, 6 }));

	// --pad names another id; the plain output says the same in one line.
	o.clear();
	ASSERT_EQ(eptest::runCommand(cli() + " tokenmap " + tok + " --out " + out + " --force --pad 4 --json", &o, false), 0);
	EXPECT_EQ(json::parse(o)["pad_map"]["4"], 3);
	o.clear();
	ASSERT_EQ(eptest::runCommand(cli() + " tokenmap " + tok + " --out " + out + " --force", &o), 0) << o;
	EXPECT_NE(o.find("9 tokenizer ids -> 7 compressed ids"), std::string::npos) << o;
}

TEST(TokenMapCli, TheMapIsAModelFilesVocabMap)
{
	if (access(cli().c_str(), X_OK) != 0)
		GTEST_SKIP() << cli() << " not built";
	eptest::TempDir dir;
	const std::string tok = writeTokenizer(dir);
	std::string o;
	ASSERT_EQ(eptest::runCommand(cli() + " tokenmap " + tok + " --out " + dir.file("map.npy"), &o), 0) << o;
	json model = { { "name", "m" },          { "tokenizer_vocab_size", 9 }, { "vocab_map", "map.npy" },
		       { "engram_vocab_size", 5000 }, { "max_ngram_size", 3 },      { "n_embed_per_ngram", 64 },
		       { "n_head_per_ngram", 4 },     { "layer_ids", { 1, 15 } },   { "pad_id", 2 },
		       { "seed", 0 } };
	std::ofstream(dir.file("model.json")) << model.dump();
	o.clear();
	ASSERT_EQ(eptest::runCommand(cli() + " model " + dir.file("model.json") + " --json", &o, false), 0) << o;
	json m = json::parse(o);
	EXPECT_EQ(m["compressed_vocab_size"], 7);
	EXPECT_EQ(m["compressed_pad_id"], 2);
}

TEST(TokenMapCli, RefusesToOverwriteAndBadInput)
{
	if (access(cli().c_str(), X_OK) != 0)
		GTEST_SKIP() << cli() << " not built";
	eptest::TempDir dir;
	const std::string tok = writeTokenizer(dir), out = dir.file("map.npy");
	std::ofstream(out) << "keep";
	std::string o;
	EXPECT_EQ(eptest::runCommand(cli() + " tokenmap " + tok + " --out " + out, &o), 1);
	EXPECT_NE(o.find("--force"), std::string::npos) << o;
	EXPECT_EQ(slurp(out), "keep");
	// Never over the tokenizer itself, even with --force.
	EXPECT_EQ(eptest::runCommand(cli() + " tokenmap " + tok + " --out " + tok + " --force", &o), 1);
	EXPECT_NE(o.find("tokenizer file"), std::string::npos) << o;
	EXPECT_EQ(eptest::runCommand(cli() + " tokenmap " + tok + " --out " + dir.file("x.npy") + " --pad 9", &o), 1);
	EXPECT_NE(o.find("--pad 9"), std::string::npos) << o;
	EXPECT_EQ(eptest::runCommand(cli() + " tokenmap /dev/zero --out " + dir.file("x.npy"), &o), 1);
	EXPECT_NE(o.find("engrampool: error:"), std::string::npos) << o;
	const std::string wp = dir.file("wp.json");
	std::ofstream(wp) << R"({"model":{"vocab":{"a":0}},"decoder":{"type":"WordPiece","prefix":"##"}})";
	EXPECT_EQ(eptest::runCommand(cli() + " tokenmap " + wp + " --out " + dir.file("x.npy"), &o), 1);
	EXPECT_NE(o.find("'WordPiece'"), std::string::npos) << o;
	EXPECT_NE(access(dir.file("x.npy").c_str(), F_OK), 0);  // nothing written on an error
}

TEST(TokenMapReference, MatchesPythonUnicodedata)
{
	if (access("/usr/bin/python3", X_OK) != 0)
		GTEST_SKIP() << "no /usr/bin/python3";
	eptest::TempDir dir;
	int n = 0;
	for (const char *style : { "bytelevel", "spm" }) {
		for (int seed = 1; seed <= 3; seed++, n++) {
			const std::string tok = dir.file(std::to_string(n) + "-tokenizer.json");
			const std::string out = dir.file(std::to_string(n) + "-map.npy");
			std::string o;
			ASSERT_EQ(eptest::runCommand("/usr/bin/python3 " + refScript() + " gen " + std::to_string(seed) + " " + tok +
							     " 3000 " + style,
						     &o),
				  0)
				<< o;
			auto m = tokenizer::buildTokenMap(tok);
			ASSERT_TRUE(m.isOk()) << m.status().message();
			EXPECT_GE(m->tokenizerSize, 3000u);
			EXPECT_LT(m->compressedSize, m->tokenizerSize);  // keys do merge
			ASSERT_TRUE(tokenizer::writeTokenMapNpy(*m, out).isOk());
			EXPECT_EQ(eptest::runCommand("/usr/bin/python3 " + refScript() + " check " + tok + " " + out, &o), 0)
				<< style << " seed " << seed << ":\n"
				<< o;
		}
	}
}
