// SPDX-License-Identifier: Apache-2.0
// test_model_config.cpp - MODEL.json parsing: every invalid field is named; fingerprints.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "hashing/primes.hpp"
#include "model/model_config.hpp"
#include "test_util.hpp"

using namespace engrampool;
using nlohmann::json;

namespace {

json baseModel()
{
	return json::parse(R"({"name":"m","tokenizer_vocab_size":1000,"compressed_vocab_size":1000,"engram_vocab_size":[5000,7000],
		"max_ngram_size":3,"n_embed_per_ngram":64,"n_head_per_ngram":4,"layer_ids":[1,15],"pad_id":2,"seed":0})");
}

// Write a 1-D .npy array with the given descr and raw element bytes.
void writeNpy(const std::string &path, const std::string &descr, const void *data, size_t n, size_t item)
{
	std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + std::to_string(n) + ",), }";
	size_t total = 10 + dict.size() + 1;
	size_t pad = (64 - total % 64) % 64;
	dict += std::string(pad, ' ') + "\n";
	std::ofstream f(path, std::ios::binary);
	f.write("\x93NUMPY\x01\x00", 8);
	uint16_t hl = (uint16_t)dict.size();
	f.write(reinterpret_cast<const char *>(&hl), 2);
	f << dict;
	f.write(static_cast<const char *>(data), (std::streamsize)(n * item));
}

void expectFieldError(const json &j, const std::string &field, const std::string &dir = "")
{
	auto r = parseModelJson(j.dump(), dir);
	ASSERT_FALSE(r.isOk()) << "accepted: " << j.dump();
	EXPECT_EQ(r.code(), EP_E_MODEL);
	EXPECT_NE(r.status().message().find("'" + field + "'"), std::string::npos) << r.status().message();
}

} // namespace

TEST(ModelConfig, ParsesReferenceFields)
{
	auto r = parseModelJson(baseModel().dump(), "");
	ASSERT_TRUE(r.isOk()) << r.status().message();
	EXPECT_EQ(r->name, "m");
	EXPECT_EQ(r->orders(), 2u);
	EXPECT_EQ(r->headDim(), 16u);
	EXPECT_EQ(r->compressedVocabSize, 1000u);
	EXPECT_EQ(r->rowFormat.rowBytes(), 64u);
	EXPECT_EQ(r->compressedPadId(), 2);
	// A single engram_vocab_size applies to every order.
	json j = baseModel();
	j["engram_vocab_size"] = 646400;
	auto r2 = parseModelJson(j.dump(), "");
	ASSERT_TRUE(r2.isOk());
	EXPECT_EQ(r2->engramVocabSize, (std::vector<uint64_t>{646400, 646400}));
}

TEST(ModelConfig, NamesEachBadField)
{
	for (const char *f : {"max_ngram_size", "n_embed_per_ngram", "n_head_per_ngram", "layer_ids", "pad_id", "seed",
			      "tokenizer_vocab_size", "engram_vocab_size"}) {
		json j = baseModel();
		j.erase(f);
		expectFieldError(j, f);
	}
	json j = baseModel();
	j["n_head_per_ngram"] = 5; // 64 % 5 != 0
	expectFieldError(j, "n_embed_per_ngram");
	j = baseModel();
	j["layer_ids"] = json::array();
	expectFieldError(j, "layer_ids");
	j = baseModel();
	j["layer_ids"] = {1, 1};
	expectFieldError(j, "layer_ids");
	j = baseModel();
	j["engram_vocab_size"] = {5000};
	expectFieldError(j, "engram_vocab_size");
	j = baseModel();
	j["max_ngram_size"] = "3";
	expectFieldError(j, "max_ngram_size");
	j = baseModel();
	j["pad_id"] = 1000;
	expectFieldError(j, "pad_id");
	j = baseModel();
	j["dtype"] = "int4";
	expectFieldError(j, "dtype");
	j = baseModel();
	j["scale"] = {{"dtype", "e8m0"}, {"block", 5}}; // 16 values not divisible by 5
	auto r = parseModelJson(j.dump(), "");
	EXPECT_FALSE(r.isOk());
	j = baseModel();
	j["out_of_vocab"] = "wrap";
	expectFieldError(j, "out_of_vocab");
	EXPECT_EQ(parseModelJson("{not json", "").code(), EP_E_MODEL);
	EXPECT_EQ(parseModelJson("[1,2]", "").code(), EP_E_MODEL);
}

TEST(ModelConfig, VocabMapIsCheckedAndFingerprinted)
{
	eptest::TempDir dir;
	std::vector<int64_t> map(1000);
	for (size_t i = 0; i < map.size(); i++)
		map[i] = (int64_t)(i / 2); // 500 compressed ids
	writeNpy(dir.file("map.npy"), "<i8", map.data(), map.size(), 8);
	json j = baseModel();
	j.erase("compressed_vocab_size"); // the map says it
	j["vocab_map"] = "map.npy";
	auto r = parseModelJson(j.dump(), dir.path());
	ASSERT_TRUE(r.isOk()) << r.status().message();
	EXPECT_EQ(r->compressedVocabSize, 500u);
	EXPECT_EQ(r->compressedPadId(), 1);
	uint64_t fp1 = modelFingerprint(*r);

	// Same config, one entry different: a different tokenizer revision.
	map[999] = 0;
	writeNpy(dir.file("map2.npy"), "<i8", map.data(), map.size(), 8);
	j["vocab_map"] = "map2.npy";
	auto r2 = parseModelJson(j.dump(), dir.path());
	ASSERT_TRUE(r2.isOk()) << r2.status().message();
	EXPECT_NE(modelFingerprint(*r2), fp1);

	// Wrong length.
	writeNpy(dir.file("short.npy"), "<i8", map.data(), 999, 8);
	j["vocab_map"] = "short.npy";
	expectFieldError(j, "vocab_map", dir.path());
	// Wrong dtype.
	std::vector<float> fl(1000, 1.0f);
	writeNpy(dir.file("float.npy"), "<f4", fl.data(), fl.size(), 4);
	j["vocab_map"] = "float.npy";
	expectFieldError(j, "vocab_map", dir.path());
	// Missing file.
	j["vocab_map"] = "nope.npy";
	expectFieldError(j, "vocab_map", dir.path());
	// Not dense: ids 0 and 7 only.
	std::vector<int64_t> sparse(1000, 0);
	sparse[5] = 7;
	writeNpy(dir.file("sparse.npy"), "<i8", sparse.data(), sparse.size(), 8);
	j["vocab_map"] = "sparse.npy";
	expectFieldError(j, "vocab_map", dir.path());
}

// A compressed id may stand for hundreds of tokenizer ids (whitespace and case variants
// of one key): the density check counted with an 8-bit counter that wrapped at 256.
TEST(ModelConfig, VocabMapKeyCoveringManyIdsIsDense)
{
	eptest::TempDir dir;
	std::vector<int64_t> map(1000, 0);
	for (size_t i = 700; i < map.size(); i++)
		map[i] = (int64_t)(i - 699); // id 0 covers 700 tokenizer ids; 301 keys in all
	writeNpy(dir.file("map.npy"), "<i8", map.data(), map.size(), 8);
	json j = baseModel();
	j.erase("compressed_vocab_size");
	j["vocab_map"] = "map.npy";
	auto r = parseModelJson(j.dump(), dir.path());
	ASSERT_TRUE(r.isOk()) << r.status().message();
	EXPECT_EQ(r->compressedVocabSize, 301u);
}

TEST(ModelConfig, FingerprintCoversRowIdAndRowByteFields)
{
	auto base = parseModelJson(baseModel().dump(), "");
	ASSERT_TRUE(base.isOk());
	uint64_t fp = modelFingerprint(*base);
	EXPECT_EQ(fp, modelFingerprint(*parseModelJson(baseModel().dump(), "")));
	std::vector<std::pair<std::string, json>> changes = {
		{"seed", 1}, {"pad_id", 3}, {"layer_ids", {15, 1}}, {"engram_vocab_size", {5000, 7001}},
		{"n_head_per_ngram", 8}, {"tokenizer_vocab_size", 1001}, {"dtype", "bf16"}, {"out_of_vocab", "clip"}};
	for (auto &[k, v] : changes) {
		json j = baseModel();
		j[k] = v;
		if (k == "tokenizer_vocab_size")
			j["compressed_vocab_size"] = v;
		auto r = parseModelJson(j.dump(), "");
		ASSERT_TRUE(r.isOk()) << k << ": " << r.status().message();
		EXPECT_NE(modelFingerprint(*r), fp) << "fingerprint ignores " << k;
	}
	// The name is not part of the fingerprint.
	json j = baseModel();
	j["name"] = "other";
	EXPECT_EQ(modelFingerprint(*parseModelJson(j.dump(), "")), fp);
}

// The trap of issue 11: a model without a token map whose tokenizer size is not the
// compressed size it was trained with hashes every row id wrong. It is refused.
TEST(ModelConfig, ModelWithoutMapMustSayWhichVocabulary)
{
	json j = baseModel();
	j.erase("compressed_vocab_size");
	auto r = parseModelJson(j.dump(), "");
	ASSERT_FALSE(r.isOk());
	EXPECT_EQ(r.code(), EP_E_MODEL);
	const std::string m = r.status().message();
	EXPECT_NE(m.find("'compressed_vocab_size'"), std::string::npos) << m;
	EXPECT_NE(m.find("1000"), std::string::npos) << m;
	EXPECT_NE(m.find("identity_vocab"), std::string::npos) << m;
	EXPECT_NE(m.find("--from-checkpoint"), std::string::npos) << m;

	// Either declaration of the identity works and fingerprints the same.
	auto a = parseModelJson(baseModel().dump(), "");
	ASSERT_TRUE(a.isOk()) << a.status().message();
	j["identity_vocab"] = true;
	j["vocab_map"] = nullptr;
	auto b = parseModelJson(j.dump(), "");
	ASSERT_TRUE(b.isOk()) << b.status().message();
	EXPECT_EQ(b->compressedVocabSize, 1000u);
	EXPECT_EQ(modelFingerprint(*a), modelFingerprint(*b));

	// identity_vocab contradicting a declared compressed size.
	j["compressed_vocab_size"] = 900;
	expectFieldError(j, "compressed_vocab_size");
	j = baseModel();
	j["identity_vocab"] = "yes";
	expectFieldError(j, "identity_vocab");

	// The trap itself: V' != tokenizer size and no map. Both numbers and the fix named.
	j = baseModel();
	j["compressed_vocab_size"] = 700;
	r = parseModelJson(j.dump(), "");
	ASSERT_FALSE(r.isOk());
	const std::string t = r.status().message();
	EXPECT_NE(t.find("'vocab_map'"), std::string::npos) << t;
	EXPECT_NE(t.find("'compressed_vocab_size' 700"), std::string::npos) << t;
	EXPECT_NE(t.find("'tokenizer_vocab_size' 1000"), std::string::npos) << t;
	EXPECT_NE(t.find("engrampool tokenmap"), std::string::npos) << t;
	// Shown as a layout only when asked, and marked.
	ModelParseOptions lenient;
	lenient.allowMissingVocabMap = true;
	auto l = parseModelJson(j.dump(), "", "m", lenient);
	ASSERT_TRUE(l.isOk()) << l.status().message();
	EXPECT_TRUE(l->vocabMapMissing);
	EXPECT_EQ(l->compressedVocabSize, 700u);
}

TEST(ModelConfig, CompressedSizeMustMatchTheMap)
{
	eptest::TempDir dir;
	std::vector<int64_t> map(1000);
	for (size_t i = 0; i < map.size(); i++)
		map[i] = (int64_t)(i % 300);
	writeNpy(dir.file("map.npy"), "<i8", map.data(), map.size(), 8);
	json j = baseModel();
	j["vocab_map"] = "map.npy";
	j["compressed_vocab_size"] = 301;
	auto r = parseModelJson(j.dump(), dir.path());
	ASSERT_FALSE(r.isOk());
	EXPECT_NE(r.status().message().find("'compressed_vocab_size'"), std::string::npos);
	EXPECT_NE(r.status().message().find("301"), std::string::npos);
	EXPECT_NE(r.status().message().find("300 distinct"), std::string::npos) << r.status().message();
	j["compressed_vocab_size"] = 300;
	auto ok = parseModelJson(j.dump(), dir.path());
	ASSERT_TRUE(ok.isOk()) << ok.status().message();
	EXPECT_EQ(ok->compressedVocabSize, 300u);
	j["identity_vocab"] = true;
	expectFieldError(j, "identity_vocab", dir.path());
}

TEST(ModelConfig, NumEmbeddingsIsChecked)
{
	auto base = parseModelJson(baseModel().dump(), "");
	ASSERT_TRUE(base.isOk());
	json j = baseModel();
	// Primes of [5000, 7000] x 4 heads, layers 1 and 15 (distinct across layers).
	auto rows = engrampool::hashing::tableRows(*base);
	j["num_embeddings"] = rows;
	auto r = parseModelJson(j.dump(), "");
	ASSERT_TRUE(r.isOk()) << r.status().message();
	EXPECT_EQ(r->numEmbeddings, rows);
	EXPECT_EQ(modelFingerprint(*r), modelFingerprint(*base));
	j["num_embeddings"] = {rows[0], rows[1] + 1};
	r = parseModelJson(j.dump(), "");
	ASSERT_FALSE(r.isOk());
	const std::string m = r.status().message();
	EXPECT_NE(m.find("'num_embeddings'"), std::string::npos) << m;
	EXPECT_NE(m.find("layer 15"), std::string::npos) << m;
	EXPECT_NE(m.find(std::to_string(rows[1] + 1)), std::string::npos) << m;
	EXPECT_NE(m.find(std::to_string(rows[1])), std::string::npos) << m;
	j["num_embeddings"] = {rows[0]};
	expectFieldError(j, "num_embeddings");
}

// The shipped V4.1 model: the real geometry checks out, but without its token map it
// refuses to be used for hashing and says how to build the map.
TEST(ModelConfig, DeepSeekV41FlashExample)
{
	const std::string path = eptest::sourceRoot() + "/examples/models/deepseek_v41_flash.json";
	auto r = loadModelFile(path);
	ASSERT_FALSE(r.isOk());
	const std::string m = r.status().message();
	EXPECT_NE(m.find("99092"), std::string::npos) << m;
	EXPECT_NE(m.find("129280"), std::string::npos) << m;
	EXPECT_NE(m.find("engrampool model --from-checkpoint"), std::string::npos) << m;
	ModelParseOptions lenient;
	lenient.allowMissingVocabMap = true;
	auto l = loadModelFile(path, lenient);
	ASSERT_TRUE(l.isOk()) << l.status().message();
	EXPECT_EQ(l->numEmbeddings, (std::vector<uint64_t>{384006168, 384016682}));
	EXPECT_EQ(l->rowFormat.rowStride(), 264u);
	for (const char *f : {"engram_27b.json", "engram_demo_v1.json"}) {
		auto e = loadModelFile(eptest::sourceRoot() + "/examples/models/" + f);
		EXPECT_TRUE(e.isOk()) << f << ": " << e.status().message();
	}
}
