// SPDX-License-Identifier: Apache-2.0
// test_cli.cpp - the `engrampool` CLI: --help, --json documents, size suffixes, imports from .npy, one-line errors.
#include "pool_fixture.hpp"

using namespace engrampool;
using namespace eptest;
using nlohmann::json;

namespace {

void expectKeys(const json &j, std::initializer_list<const char *> keys, const std::string &what)
{
	ASSERT_TRUE(j.is_object()) << what << ": " << j.dump();
	for (const char *k : keys)
		EXPECT_TRUE(j.contains(k)) << what << " lacks '" << k << "': " << j.dump();
}

// Exit code 1 or 2, exactly one "engrampool: error: " line on stderr, nothing on stdout.
void expectOneLineError(const CliResult &r, const std::string &needle, const std::string &what)
{
	EXPECT_TRUE(r.rc == 1 || r.rc == 2) << what << ": rc " << r.rc;
	auto lines = r.errLines();
	ASSERT_EQ(lines.size(), 1u) << what << ":\n" << r.err;
	EXPECT_EQ(lines[0].rfind("engrampool: error: ", 0), 0u) << lines[0];
	EXPECT_NE(lines[0].find(needle), std::string::npos) << what << ": " << lines[0];
	EXPECT_EQ(r.out, "") << what;
}

class Cli : public ::testing::Test {
protected:
	void SetUp() override
	{
		model_ = dir_.file("tiny.json");
		writeFile(model_, tinyModelJson().dump(2));
		cfg_ = tinyModel();
	}
	std::string emulUri() { return "emul:" + uniqueName("eptest-cli"); }
	// Destroys emul pools named during the test.
	void TearDown() override
	{
		for (auto &u : made_)
			if (auto p = parseRegionUri(u); p)
				(void)Region::destroy(*p);
	}
	std::string track(const std::string &uri)
	{
		made_.push_back(uri);
		return uri;
	}
	uint64_t generationOf(const std::string &uri)
	{
		CliResult r = runCli("ls --json " + uri);
		EXPECT_EQ(r.rc, 0) << r.err;
		auto j = r.json();
		return j.is_discarded() ? 0 : j["generation"].get<uint64_t>();
	}
	TempDir dir_;
	std::string model_;
	ModelConfig cfg_;
	std::vector<std::string> made_;
};

} // namespace

TEST_F(Cli, HelpForEveryCommand)
{
	for (const char *cmd : {"create", "import", "ls", "stat", "verify", "rm", "hosts", "gc", "master", "destroy"}) {
		CliResult r = runCli(std::string(cmd) + " --help");
		EXPECT_EQ(r.rc, 0) << cmd << ": " << r.err;
		EXPECT_NE((r.out + r.err).find("--json"), std::string::npos) << cmd << " help lists --json";
		EXPECT_NE((r.out + r.err).find(cmd), std::string::npos) << cmd;
	}
	CliResult top = runCli("--help");
	EXPECT_EQ(top.rc, 0);
	for (const char *cmd : {"create", "import", "ls", "stat", "verify", "rm", "hosts", "gc", "master", "destroy"})
		EXPECT_NE((top.out + top.err).find(cmd), std::string::npos) << cmd;
	CliResult v = runCli("--version");
	EXPECT_EQ(v.rc, 0);
	EXPECT_FALSE(v.out.empty());
	CliResult none = runCli("");
	EXPECT_NE(none.rc, 0) << "a subcommand is required";
	EXPECT_LT(none.rc, 128);
	CliResult badOpt = runCli("ls --frobnicate emul:x");
	expectOneLineError(badOpt, "frobnicate", "unknown option");
}

TEST_F(Cli, JsonDocumentsOfEveryCommand)
{
	std::string uri = track(emulUri());
	CliResult r = runCli("create " + uri + " --size 32M --json");
	ASSERT_EQ(r.rc, 0) << r.err;
	json j = r.json();
	expectKeys(j, {"uri", "uuid", "size", "data_bytes", "generation"}, "create");
	EXPECT_EQ(j["size"], 32ull << 20);
	EXPECT_EQ(j["generation"], 1);
	std::string uuid = j["uuid"];

	r = runCli("import " + uri + " --model " + model_ + " --layer 1 --random --seed 5 --json");
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_EQ(r.err, "") << "no progress bar when stdout is not a terminal";
	j = r.json();
	expectKeys(j, {"table", "model", "model_fingerprint", "layer_id", "rows", "row_bytes", "row_stride", "row_format",
		       "data_bytes", "data_offset", "xxh3", "generation", "replaced", "source", "seconds"},
		   "import");
	EXPECT_EQ(j["table"], "tiny/layer1");
	EXPECT_EQ(j["rows"], layerRows(cfg_, 1));
	EXPECT_EQ(j["row_bytes"], 64);
	EXPECT_EQ(j["generation"], 2);
	EXPECT_EQ(j["replaced"], false);
	EXPECT_EQ(j["model_fingerprint"], fingerprintHex(modelFingerprint(cfg_)));

	r = runCli("import " + uri + " --model " + model_ + " --layer 1 --random --seed 6 --replace --json");
	ASSERT_EQ(r.rc, 0) << r.err;
	j = r.json();
	EXPECT_EQ(j["generation"], 3);
	EXPECT_EQ(j["replaced"], true);

	r = runCli("import " + uri + " --model " + model_ + " --layer 15 --random --seed 7 --name other");
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_NE(r.out.find("imported other"), std::string::npos) << r.out;
	EXPECT_EQ(r.err, "");

	r = runCli("ls " + uri + " --json");
	ASSERT_EQ(r.rc, 0) << r.err;
	j = r.json();
	expectKeys(j, {"generation", "tables", "models"}, "ls");
	EXPECT_EQ(j["generation"], 4);
	ASSERT_EQ(j["tables"].size(), 2u);
	ASSERT_EQ(j["models"].size(), 1u);
	for (auto &t : j["tables"])
		expectKeys(t, {"name", "model", "model_fingerprint", "layer_id", "rows", "dtype", "values_per_row",
			       "scale_dtype", "scales_per_row", "row_bytes", "row_stride", "data_offset", "data_bytes", "xxh3",
			       "state", "generation"},
			   "ls table");
	expectKeys(j["models"][0], {"name", "fingerprint", "generation"}, "ls model");

	r = runCli("stat --json " + uri);
	ASSERT_EQ(r.rc, 0) << r.err;
	j = r.json();
	expectKeys(j, {"uri", "uuid", "format", "size", "align_unit", "data_offset", "data_bytes", "used_bytes",
		       "free_bytes", "generation", "tables", "models", "pending_reclaim", "catalog_slots", "catalog_free",
		       "host_slots", "hosts_live", "lease_ms", "master", "master_epoch", "region", "topology", "cuda"},
		   "stat");
	EXPECT_EQ(j["uuid"], uuid);
	EXPECT_EQ(j["format"], "1.1");
	EXPECT_EQ(j["tables"], 2);
	EXPECT_EQ(j["used_bytes"], 8ull << 20);
	EXPECT_EQ(j["free_bytes"], 22ull << 20);
	EXPECT_EQ(j["region"]["kind"], "emul");
	expectKeys(j["region"]["cost_model"], {"latency_ns", "link_gbps", "switch_gbps", "mlp_lines"}, "stat cost_model");
	EXPECT_EQ(j["region"]["cost_model"]["mlp_lines"], 32) << "the default per-thread lines in flight";
	// The cost model is the URI's: another process attaching with other parameters sees its own.
	r = runCli("stat --json '" + uri + "?latency_ns=750&mlp_lines=16'");
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_EQ(r.json()["region"]["cost_model"]["latency_ns"], 750);
	EXPECT_EQ(r.json()["region"]["cost_model"]["mlp_lines"], 16);

	r = runCli("verify --json " + uri);
	ASSERT_EQ(r.rc, 0) << r.err;
	j = r.json();
	expectKeys(j, {"ok", "bad_tables", "tables"}, "verify");
	EXPECT_EQ(j["ok"], true);
	EXPECT_EQ(j["tables"].size(), 2u);
	for (auto &t : j["tables"])
		expectKeys(t, {"table", "ok", "expected_xxh3", "actual_xxh3", "problem"}, "verify table");

	r = runCli("hosts --json " + uri);
	ASSERT_EQ(r.rc, 0) << r.err;
	j = r.json();
	expectKeys(j, {"hosts"}, "hosts");
	EXPECT_TRUE(j["hosts"].is_array());

	r = runCli("master --json " + uri);
	ASSERT_EQ(r.rc, 0) << r.err;
	j = r.json();
	expectKeys(j, {"master", "hostname", "epoch", "this_host"}, "master");
	EXPECT_EQ(j["this_host"], true);

	r = runCli("rm --json " + uri + " other");
	ASSERT_EQ(r.rc, 0) << r.err;
	j = r.json();
	expectKeys(j, {"removed", "generation"}, "rm");
	EXPECT_EQ(j["removed"], "other");
	EXPECT_EQ(j["generation"], 5);

	r = runCli("gc --json " + uri);
	ASSERT_EQ(r.rc, 0) << r.err;
	j = r.json();
	expectKeys(j, {"pending_reclaim", "used_bytes"}, "gc");
	EXPECT_EQ(j["used_bytes"], 4ull << 20);

	r = runCli("destroy --json " + uri);
	ASSERT_EQ(r.rc, 0) << r.err;
	j = r.json();
	expectKeys(j, {"uri", "destroyed"}, "destroy");
	EXPECT_EQ(j["destroyed"], true);
	expectOneLineError(runCli("ls " + uri), "does not exist", "ls after destroy");
}

TEST_F(Cli, SizesAcceptSuffixes)
{
	struct Case {
		const char *size;
		uint64_t bytes;
	} cases[] = {{"32M", 32ull << 20}, {"32768K", 32ull << 20}, {"0.03125G", 32ull << 20},
		     {"33554432", 32ull << 20}, {"6MiB", 6ull << 20},   {"4.5M", 0}, {"5M", 0}};
	for (auto &c : cases) {
		std::string uri = track(emulUri());
		CliResult r = runCli("create " + uri + " --json --size " + c.size);
		if (c.bytes == 0) {
			// Pools are whole 2 MiB units: a size that is not one is refused, never rounded.
			expectOneLineError(r, "multiple of 2 MiB", c.size);
			EXPECT_EQ(runCli("ls " + uri).rc, 1) << c.size;
			continue;
		}
		ASSERT_EQ(r.rc, 0) << c.size << ": " << r.err;
		EXPECT_EQ(r.json()["size"], c.bytes) << c.size;
		r = runCli("stat --json " + uri);
		EXPECT_EQ(r.json()["size"], c.bytes) << c.size;
	}
	for (const char *bad : {"12Q", "M", "-5M", "lots"}) {
		std::string uri = track(emulUri());
		CliResult r = runCli("create " + uri + " --size " + std::string(bad));
		EXPECT_NE(r.rc, 0) << bad;
		EXPECT_LT(r.rc, 128);
		EXPECT_EQ(r.errLines().size(), 1u) << bad << ": " << r.err;
		EXPECT_EQ(runCli("ls " + uri).rc, 1) << "nothing was created for " << bad;
	}
	std::string uri = track(emulUri());
	expectOneLineError(runCli("create " + uri), "--size", "create without --size");
	expectOneLineError(runCli("create " + uri + " --size 1M"), "too small", "create below the minimum");
}

TEST_F(Cli, UnknownSchemeIsOneLine)
{
	for (const char *cmd : {"ls", "stat", "verify", "hosts", "gc", "master", "destroy"}) {
		CliResult r = runCli(std::string(cmd) + " s3:bucket/pool");
		expectOneLineError(r, "unknown scheme 's3'", cmd);
	}
	expectOneLineError(runCli("create s3:bucket/pool --size 32M"), "unknown scheme 's3'", "create");
	expectOneLineError(runCli("rm s3:bucket/pool t"), "unknown scheme 's3'", "rm");
	expectOneLineError(runCli("import s3:bucket/pool --model " + model_ + " --layer 1 --random"),
			   "unknown scheme 's3'", "import");
}

TEST_F(Cli, CreateRefusesToFormatOverAPool)
{
	std::string uri = track(emulUri());
	ASSERT_EQ(runCli("create " + uri + " --size 32M").rc, 0);
	ASSERT_EQ(runCli("import " + uri + " --model " + model_ + " --layer 1 --random").rc, 0);
	expectOneLineError(runCli("create " + uri + " --size 32M"), "--force", "create over a pool");
	EXPECT_EQ(generationOf(uri), 2u) << "the pool is untouched";
	CliResult r = runCli("create " + uri + " --size 32M --force --json");
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_EQ(generationOf(uri), 1u);
}

TEST_F(Cli, ImportArgumentErrors)
{
	std::string uri = track(emulUri());
	ASSERT_EQ(runCli("create " + uri + " --size 32M").rc, 0);
	expectOneLineError(runCli("import " + uri + " --model " + model_ + " --layer 2 --random"), "layer_ids: 1, 15",
			   "layer outside the model");
	expectOneLineError(runCli("import " + uri + " --model " + model_ + " --layer 1"), "--random", "no source");
	expectOneLineError(runCli("import " + uri + " --model " + dir_.file("none.json") + " --layer 1 --random"),
			   "none.json", "missing model file");
	std::string badModel = dir_.file("bad.json");
	writeFile(badModel, "{\"name\": \"bad\", \"max_ngram_size\": 3}");
	expectOneLineError(runCli("import " + uri + " --model " + badModel + " --layer 1 --random"), "engram_vocab_size",
			   "invalid model");
	ASSERT_EQ(runCli("import " + uri + " --model " + model_ + " --layer 1 --random").rc, 0);
	expectOneLineError(runCli("import " + uri + " --model " + model_ + " --layer 1 --random"), "already exists",
			   "existing table");
	expectOneLineError(runCli("rm " + uri + " nope"), "nope", "rm of a missing table");
	expectOneLineError(runCli("verify " + uri + " --table nope"), "nope", "verify of a missing table");
	nlohmann::json other = tinyModelJson();
	other["seed"] = 99;
	std::string otherModel = dir_.file("tiny2.json");
	writeFile(otherModel, other.dump());
	expectOneLineError(runCli("import " + uri + " --model " + otherModel + " --layer 15 --random"), "fingerprint",
			   "same model name, other fingerprint");
	EXPECT_EQ(generationOf(uri), 2u);
}

TEST_F(Cli, ImportFromNpyAndBadNpyChangesNothing)
{
	std::string uri = track(emulUri());
	ASSERT_EQ(runCli("create " + uri + " --size 32M").rc, 0);
	uint64_t rows = layerRows(cfg_, 1);
	std::vector<uint8_t> data(rows * 64);
	for (uint64_t r = 0; r < rows; r++)
		io::randomRow(cfg_.rowFormat, 42, r, data.data() + r * 64);
	std::string good = dir_.file("layer1.npy");
	writeNpyFile(good, "<f4", {rows, 16}, data);
	CliResult r = runCli("import " + uri + " --model " + model_ + " --layer 1 --from " + good + " --json");
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_EQ(r.json()["generation"], 2);
	{
		auto p = openPool(uri, false);
		auto s = p->snapshot();
		ASSERT_TRUE(s);
		ASSERT_EQ(s->tables.size(), 1u);
		EXPECT_EQ(rowMismatches(*p, s->tables[0], cfg_.rowFormat, 42, 500), 0u) << "the file's rows, byte for byte";
	}
	uint64_t rows15 = layerRows(cfg_, 15);
	// Truncated: the header promises more rows than the file holds.
	std::string trunc = dir_.file("trunc.npy");
	writeNpyFile(trunc, "<f4", {rows15, 16}, std::vector<uint8_t>(rows15 * 64 / 2, 0x3c));
	expectOneLineError(runCli("import " + uri + " --model " + model_ + " --layer 15 --from " + trunc), "truncated",
			   "truncated npy");
	// Wrong shape: one row short; the error names both shapes.
	std::string shortNpy = dir_.file("short.npy");
	writeNpyFile(shortNpy, "<f4", {rows15 - 1, 16}, std::vector<uint8_t>((rows15 - 1) * 64, 0));
	r = runCli("import " + uri + " --model " + model_ + " --layer 15 --from " + shortNpy);
	expectOneLineError(r, std::to_string(rows15), "short npy");
	EXPECT_NE(r.err.find(std::to_string(rows15 - 1)), std::string::npos) << r.err;
	// Wrong dtype.
	std::string f8 = dir_.file("f8.npy");
	writeNpyFile(f8, "<f8", {rows15, 16}, std::vector<uint8_t>(rows15 * 128, 0));
	expectOneLineError(runCli("import " + uri + " --model " + model_ + " --layer 15 --from " + f8), "f8", "f8 npy");
	// Garbage.
	std::string junk = dir_.file("junk.npy");
	writeFile(junk, "this is not numpy");
	r = runCli("import " + uri + " --model " + model_ + " --layer 15 --from " + junk);
	EXPECT_EQ(r.rc, 1);
	EXPECT_EQ(r.errLines().size(), 1u) << r.err;
	EXPECT_EQ(generationOf(uri), 2u) << "no failed import published anything";
	r = runCli("ls --json " + uri);
	EXPECT_EQ(r.json()["tables"].size(), 1u);
	EXPECT_EQ(runCli("verify " + uri).rc, 0);
}

TEST_F(Cli, FilePoolsAndDestroy)
{
	std::string path = dir_.file("pool.bin");
	std::string uri = "file:" + path;
	CliResult r = runCli("create " + uri + " --size 16M --mode 0600 --json");
	ASSERT_EQ(r.rc, 0) << r.err;
	struct stat st;
	ASSERT_EQ(stat(path.c_str(), &st), 0);
	EXPECT_EQ((uint64_t)st.st_size, 16ull << 20);
	EXPECT_EQ(st.st_mode & 0777, 0600u);
	r = runCli("import " + uri + " --model " + model_ + " --layer 15 --random --seed 3");
	ASSERT_EQ(r.rc, 0) << r.err;
	r = runCli("ls " + uri);
	ASSERT_EQ(r.rc, 0);
	EXPECT_NE(r.out.find("tiny/layer15"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("1 table(s) at generation 2"), std::string::npos) << r.out;
	r = runCli("destroy " + uri);
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_NE(access(path.c_str(), F_OK), 0) << "the file is gone";
	expectOneLineError(runCli("ls " + uri), "No such file", "ls of a destroyed file pool");
}

TEST_F(Cli, PreflightRefusesAndCreatesNothing)
{
	std::string name = uniqueName("eptest-pre");
	CliResult r = runCli("create emul:" + name + " --size 100T");
	expectOneLineError(r, "100.00 TiB", "emul pool larger than /dev/shm");
	EXPECT_NE(r.err.find("free"), std::string::npos) << r.err;
	EXPECT_NE(access(("/dev/shm/engrampool." + name).c_str(), F_OK), 0) << "no shm object left behind";
	EXPECT_EQ(engrampool::hugepages::locateEmul(name), "") << "no hugetlbfs file left behind";
	std::string path = dir_.file("huge");
	expectOneLineError(runCli("create file:" + path + " --size 100T"), "100.00 TiB", "file pool larger than its fs");
	EXPECT_NE(access(path.c_str(), F_OK), 0) << "no file left behind";
	r = runCli("create 'emul:" + name + "?node=4000' --size 8M");
	expectOneLineError(r, "NUMA node 4000", "missing NUMA node");
	EXPECT_NE(access(("/dev/shm/engrampool." + name).c_str(), F_OK), 0);
}
