// SPDX-License-Identifier: Apache-2.0
// test_checkpoint.cpp - Hugging Face checkpoints: import, rows read back, refusals that publish nothing, re-run skips.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <unistd.h>

#include "../unit/pool_fixture.hpp"
#include "checkpoint_fixture.hpp"
#include "io/checkpoint.hpp"

using namespace eptest;
using engrampool::io::openCheckpoint;

namespace {

bool cliBuilt()
{
	return access(cliPath().c_str(), X_OK) == 0;
}

// Every row of every table equals the checkpoint's tensors packed (values then scales).
void expectTablesEqualCheckpoint(const std::string &uri, const GeneratedCheckpoint &ck,
				 const std::vector<uint32_t> &layers, const std::string &model,
				 const std::string &suffix = "scale")
{
	auto p = openPool(uri, false);
	auto s = p->snapshot();
	ASSERT_TRUE(s.isOk());
	for (uint32_t L : layers) {
		const TableInfo *t = s->findTable(model + "/layer" + std::to_string(L));
		ASSERT_NE(t, nullptr) << "layer " << L;
		auto want = ck.packedRows(L, suffix);
		ASSERT_EQ(t->rowStride, 264u);
		ASSERT_EQ(t->rows * 264, want.size());
		EXPECT_EQ(std::memcmp(p->tableData(*t), want.data(), want.size()), 0) << "layer " << L;
		EXPECT_EQ(t->dataXxh3, engrampool::xxh3(want.data(), want.size()));
		// And through readRows at scattered row ids.
		std::vector<uint8_t> got(264);
		for (uint64_t r : {uint64_t{0}, t->rows / 3, t->rows - 1}) {
			ASSERT_TRUE(p->readRows(*t, &r, 1, got.data(), got.size()).isOk());
			EXPECT_EQ(std::memcmp(got.data(), want.data() + r * 264, 264), 0) << "layer " << L << " row " << r;
		}
	}
}

// A refused import names `needles` and leaves the pool's metadata byte for byte.
void expectRefused(const CheckpointSpec &spec, const std::vector<std::string> &needles, const std::string &extra = "")
{
	TempDir dir;
	auto ck = makeCheckpoint(dir.path(), spec);
	ScopedPool sp("file", 64ull << 20);
	uint64_t before = metadataHash(sp.backingPath());
	CliResult r = runCli("import " + sp.uri() + " --checkpoint " + dir.path() + extra);
	EXPECT_NE(r.rc, 0) << r.out;
	ASSERT_EQ(r.errLines().size(), 1u) << r.err;
	for (const std::string &n : needles)
		EXPECT_NE(r.err.find(n), std::string::npos) << "no '" << n << "' in: " << r.err;
	EXPECT_EQ(metadataHash(sp.backingPath()), before) << "a refused import changed the pool";
	// model --from-checkpoint refuses the same inputs and writes nothing (tensors aside:
	// it does not read them).
	(void)ck;
}

} // namespace

TEST(Checkpoint, ReadsConfigAndIndex)
{
	TempDir dir;
	auto gen = makeCheckpoint(dir.path());
	auto ck = openCheckpoint(dir.path());
	ASSERT_TRUE(ck.isOk()) << ck.status().message();
	EXPECT_EQ(ck->config.layerIds, (std::vector<uint32_t>{1, 14}));
	EXPECT_EQ(ck->config.maxNgramSize, 4u);
	EXPECT_EQ(ck->config.nHeads, 8u);
	EXPECT_EQ(ck->config.headDim, 256u);
	EXPECT_EQ(ck->config.padId, 2); // via the alias engram_pad_id
	EXPECT_EQ(ck->config.seed, 0u);
	EXPECT_EQ(ck->config.numEmbeddings, gen.rows);
	EXPECT_EQ(ck->config.compressedVocabSize, gen.compressed);
	EXPECT_EQ(ck->config.rowFormat.rowStride(), 264u);
	EXPECT_EQ(ck->weightMap.size(), 5u);
	auto tm = engrampool::tokenizer::buildTokenMap(ck->tokenizerPath);
	ASSERT_TRUE(tm.isOk()) << tm.status().message();
	EXPECT_LT(tm->compressedSize, tm->tokenizerSize) << "case variants share keys";
	auto m = engrampool::io::checkpointModel(*ck, "v41", tm->map, ck->tokenizerPath);
	ASSERT_TRUE(m.isOk()) << m.status().message();
	EXPECT_EQ(m->compressedVocabSize, gen.compressed);
	EXPECT_NE(m->vocabMapHash, 0u);
	// The row source packs values then scales from two shards.
	auto src = engrampool::io::openCheckpointLayer(*ck, *m, 14, gen.rows[1]);
	ASSERT_TRUE(src.isOk()) << src.status().message();
	auto want = gen.packedRows(14);
	std::vector<uint8_t> got(want.size());
	ASSERT_TRUE((*src)->read(0, gen.rows[1], got.data()).isOk());
	EXPECT_EQ(got, want);
	// Wrong row count: a shape error naming both shapes.
	auto bad = engrampool::io::openCheckpointLayer(*ck, *m, 14, gen.rows[1] + 1);
	ASSERT_FALSE(bad.isOk());
	EXPECT_EQ(bad.code(), EP_E_SHAPE);
	EXPECT_NE(bad.status().message().find(std::to_string(gen.rows[1] + 1)), std::string::npos);
}

TEST(Checkpoint, ImportThenRowsEqualTheTensorsAndReRunSkips)
{
	if (!cliBuilt())
		GTEST_SKIP() << "engrampool not built";
	TempDir dir;
	std::string ckDir = dir.file("DeepSeek-V4.1-mini");
	std::filesystem::create_directory(ckDir);
	auto ck = makeCheckpoint(ckDir);
	ScopedPool sp("file", 64ull << 20);
	CliResult r = runCli("import " + sp.uri() + " --checkpoint " + ckDir + " --json");
	ASSERT_EQ(r.rc, 0) << r.err;
	auto j = r.json();
	ASSERT_TRUE(j.is_object()) << r.out;
	ASSERT_EQ(j["tables"].size(), 2u);
	EXPECT_EQ(j["model"], "DeepSeek-V4.1-mini");
	EXPECT_EQ(j["compressed_vocab_size"], ck.compressed);
	for (auto &t : j["tables"])
		EXPECT_FALSE(t["skipped"].get<bool>());
	expectTablesEqualCheckpoint(sp.uri(), ck, {1, 14}, "DeepSeek-V4.1-mini");
	EXPECT_EQ(runCli("verify " + sp.uri()).rc, 0);

	// A re-run publishes nothing: same fingerprint, same content checksum.
	uint64_t meta = metadataHash(sp.backingPath());
	uint64_t gen = *openPool(sp.uri(), false)->committedGeneration();
	CliResult again = runCli("import " + sp.uri() + " --checkpoint " + ckDir + " --json");
	ASSERT_EQ(again.rc, 0) << again.err;
	const nlohmann::json aj = again.json();
	ASSERT_TRUE(aj.is_object()) << again.out;
	for (auto &t : aj["tables"])
		EXPECT_TRUE(t["skipped"].get<bool>()) << t.dump();
	EXPECT_EQ(*openPool(sp.uri(), false)->committedGeneration(), gen);
	EXPECT_EQ(metadataHash(sp.backingPath()), meta);

	// Changed rows under the same model: refused without --replace, published with it.
	TempDir dir2;
	std::string ck2Dir = dir2.file("DeepSeek-V4.1-mini");
	std::filesystem::create_directory(ck2Dir);
	CheckpointSpec other;
	other.seed = 99;
	auto ck2 = makeCheckpoint(ck2Dir, other);
	CliResult noReplace = runCli("import " + sp.uri() + " --checkpoint " + ck2Dir + " --layer 14");
	EXPECT_NE(noReplace.rc, 0);
	EXPECT_NE(noReplace.err.find("--replace"), std::string::npos) << noReplace.err;
	EXPECT_EQ(metadataHash(sp.backingPath()), meta);
	CliResult replace = runCli("import " + sp.uri() + " --checkpoint " + ck2Dir + " --layer 14 --replace");
	ASSERT_EQ(replace.rc, 0) << replace.err;
	expectTablesEqualCheckpoint(sp.uri(), ck2, {14}, "DeepSeek-V4.1-mini");
	expectTablesEqualCheckpoint(sp.uri(), ck, {1}, "DeepSeek-V4.1-mini");

	// model --from-checkpoint writes the model file + map whose fingerprint is the pool's.
	std::string model = dir.file("v41.json");
	CliResult mr = runCli("model --from-checkpoint " + ckDir + " --out " + model);
	ASSERT_EQ(mr.rc, 0) << mr.err;
	EXPECT_TRUE(std::filesystem::exists(dir.file("v41.vocab_map.npy")));
	auto cfg = engrampool::loadModelFile(model);
	ASSERT_TRUE(cfg.isOk()) << cfg.status().message();
	auto snap = openPool(sp.uri(), false)->snapshot();
	ASSERT_TRUE(snap.isOk());
	EXPECT_EQ(engrampool::modelFingerprint(*cfg), snap->findTable("DeepSeek-V4.1-mini/layer1")->modelFingerprint);
	EXPECT_EQ(cfg->numEmbeddings, ck.rows);
	// No overwrite without --force.
	CliResult again2 = runCli("model --from-checkpoint " + ckDir + " --out " + model);
	EXPECT_NE(again2.rc, 0);
	EXPECT_NE(again2.err.find("--force"), std::string::npos) << again2.err;
	EXPECT_EQ(runCli("model --from-checkpoint " + ckDir + " --out " + model + " --force").rc, 0);
}

TEST(Checkpoint, ScaleAliasAndNamedLayers)
{
	if (!cliBuilt())
		GTEST_SKIP() << "engrampool not built";
	TempDir dir;
	CheckpointSpec spec;
	spec.scaleSuffix = "weight_scale_inv";
	auto ck = makeCheckpoint(dir.path(), spec);
	ScopedPool sp("file", 64ull << 20);
	std::string model = std::filesystem::path(dir.path()).filename().string();
	CliResult r = runCli("import " + sp.uri() + " --checkpoint " + dir.path() + " --layer 14");
	ASSERT_EQ(r.rc, 0) << r.err;
	auto s = openPool(sp.uri(), false)->snapshot();
	ASSERT_TRUE(s.isOk());
	EXPECT_EQ(s->tables.size(), 1u);
	expectTablesEqualCheckpoint(sp.uri(), ck, {14}, model, "weight_scale_inv");
	CliResult bad = runCli("import " + sp.uri() + " --checkpoint " + dir.path() + " --layer 3");
	EXPECT_NE(bad.rc, 0);
	EXPECT_NE(bad.err.find("engram_layer_ids: 1, 14"), std::string::npos) << bad.err;
}

TEST(Checkpoint, RefusedNamingBothNumbersAndNothingPublished)
{
	if (!cliBuilt())
		GTEST_SKIP() << "engrampool not built";
	const std::string w14 = "layers.14.engram.embed.weight", s14 = "layers.14.engram.embed.scale";
	{
		SCOPED_TRACE("wrong weight dtype");
		CheckpointSpec s;
		s.dtype[w14] = "F8_E5M2";
		expectRefused(s, {w14, "F8_E4M3", "F8_E5M2"});
	}
	{
		SCOPED_TRACE("wrong scale dtype");
		CheckpointSpec s;
		s.dtype[s14] = "U8";
		expectRefused(s, {s14, "F8_E8M0", "U8"});
	}
	{
		SCOPED_TRACE("wrong scale shape");
		TempDir probe;
		auto g = makeCheckpoint(probe.path());
		CheckpointSpec s;
		s.shape[s14] = {g.rows[1], 4};
		expectRefused(s, {s14, "[" + std::to_string(g.rows[1]) + ", 8]", "[" + std::to_string(g.rows[1]) + ", 4]"});
	}
	{
		SCOPED_TRACE("wrong weight rows");
		TempDir probe;
		auto g = makeCheckpoint(probe.path());
		CheckpointSpec s;
		s.shape[w14] = {g.rows[1] - 1, 256};
		expectRefused(s, {w14, std::to_string(g.rows[1]), std::to_string(g.rows[1] - 1)});
	}
	{
		SCOPED_TRACE("missing tensor");
		CheckpointSpec s;
		s.omit = {s14};
		expectRefused(s, {"no tensor '" + s14 + "'"});
	}
	{
		SCOPED_TRACE("engram_num_embeddings");
		TempDir probe;
		auto g = makeCheckpoint(probe.path());
		CheckpointSpec s;
		s.numEmbeddingsDelta = 5;
		expectRefused(s, {"engram_num_embeddings", std::to_string(g.rows[1] + 5), std::to_string(g.rows[1])});
	}
	{
		SCOPED_TRACE("engram_compressed_vocab_size");
		TempDir probe;
		auto g = makeCheckpoint(probe.path());
		CheckpointSpec s;
		s.compressedDelta = -1;
		expectRefused(s, {"engram_compressed_vocab_size", std::to_string(g.compressed - 1),
				  std::to_string(g.compressed)});
	}
}

TEST(Checkpoint, TruncatedShardIsRefusedBeforeAnythingIsPublished)
{
	if (!cliBuilt())
		GTEST_SKIP() << "engrampool not built";
	TempDir dir;
	auto ck = makeCheckpoint(dir.path());
	// Layer 1's weight (first layer) is in shard 1; cut shard 2, which holds layer 1's
	// scale and layer 14's weight: nothing may be published, layer 1 included.
	std::string shard = dir.file("model-00002-of-00002.safetensors");
	auto size = std::filesystem::file_size(shard);
	std::filesystem::resize_file(shard, size - 1000);
	ScopedPool sp("file", 64ull << 20);
	uint64_t before = metadataHash(sp.backingPath());
	CliResult r = runCli("import " + sp.uri() + " --checkpoint " + dir.path());
	EXPECT_NE(r.rc, 0);
	EXPECT_NE(r.err.find("model-00002-of-00002.safetensors"), std::string::npos) << r.err;
	EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
	EXPECT_EQ(metadataHash(sp.backingPath()), before);
	(void)ck;
}

TEST(Checkpoint, ConfigErrorsNameTheField)
{
	TempDir dir;
	makeCheckpoint(dir.path());
	auto cfgText = [&] {
		std::ifstream f(dir.file("config.json"));
		return nlohmann::json::parse(f);
	};
	nlohmann::json orig = cfgText();
	for (const char *field : {"engram_layer_ids", "engram_n_heads", "engram_head_dim", "engram_vocab_size",
				  "engram_max_ngram_size", "engram_pad_id", "quantization_config"}) {
		nlohmann::json j = orig;
		j.erase(field);
		std::ofstream(dir.file("config.json")) << j.dump();
		auto r = openCheckpoint(dir.path());
		ASSERT_FALSE(r.isOk()) << field;
		EXPECT_NE(r.status().message().find(field == std::string("engram_pad_id") ? "engram_pad_token_id" : field),
			  std::string::npos)
			<< r.status().message();
	}
	nlohmann::json j = orig;
	j.erase("engram_pad_id");
	j["engram_pad_token_id"] = 2;
	std::ofstream(dir.file("config.json")) << j.dump();
	EXPECT_TRUE(openCheckpoint(dir.path()).isOk());
	// A shard named outside the directory.
	std::ofstream(dir.file("model.safetensors.index.json"))
		<< R"({"weight_map": {"layers.1.engram.embed.weight": "../../etc/passwd"}})";
	auto r = openCheckpoint(dir.path());
	ASSERT_FALSE(r.isOk());
	EXPECT_NE(r.status().message().find("outside the checkpoint directory"), std::string::npos);
}
