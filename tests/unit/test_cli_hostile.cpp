// SPDX-License-Identifier: Apache-2.0
// test_cli_hostile.cpp - hostile CLI inputs (issue 10): short leases, mismatched replaces, --out over the pool, live hosts, non-regular and huge inputs, oversized lookups, out-of-range integers, bad table names, misleading errors.
#include "pool_fixture.hpp"

#include <grp.h>

#include "pool/host_registration.hpp"
#include "util/host_identity.hpp"

using namespace engrampool;
using namespace eptest;
using nlohmann::json;

namespace {

// Exit code 1 or 2, exactly one "engrampool: error: " line naming `needle`, nothing on stdout.
void expectOneLineError(const CliResult &r, const std::string &needle, const std::string &what)
{
	EXPECT_TRUE(r.rc == 1 || r.rc == 2) << what << ": rc " << r.rc << "\n" << r.err;
	auto lines = r.errLines();
	ASSERT_EQ(lines.size(), 1u) << what << ":\n" << r.err;
	EXPECT_EQ(lines[0].rfind("engrampool: error: ", 0), 0u) << lines[0];
	EXPECT_NE(lines[0].find(needle), std::string::npos) << what << ": " << lines[0];
	EXPECT_EQ(r.out, "") << what;
}

bool hasRawControl(const std::string &s)
{
	for (unsigned char c : s)
		if ((c < 0x20 && c != '\n') || c == 0x7f)
			return true;
	return false;
}

bool exists(const std::string &path)
{
	struct stat st;
	return lstat(path.c_str(), &st) == 0;
}

std::string readAll(const std::string &path)
{
	std::ifstream f(path, std::ios::binary);
	std::stringstream ss;
	ss << f.rdbuf();
	return ss.str();
}

// Hostile inputs can make a broken CLI hang: never wait more than this.
const std::string kTimeout = "timeout 20 ";

class CliHostile : public ::testing::Test {
protected:
	void SetUp() override
	{
		model_ = dir_.file("tiny.json");
		writeFile(model_, tinyModelJson().dump(2));
		cfg_ = tinyModel();
	}
	void TearDown() override
	{
		for (auto &u : made_)
			if (auto p = parseRegionUri(u); p)
				(void)Region::destroy(*p);
	}
	std::string emulUri()
	{
		made_.push_back("emul:" + uniqueName("eptest-hostile"));
		return made_.back();
	}
	CliResult cli(const std::string &args) { return runCli(args, kTimeout); }
	// A file: pool with both layers of the tiny model.
	std::string filePoolWithTables()
	{
		std::string uri = "file:" + dir_.file("pool");
		EXPECT_EQ(cli("create " + uri + " --size 32M").rc, 0);
		EXPECT_EQ(cli("import " + uri + " --model " + model_ + " --layer 1 --random --seed 1").rc, 0);
		EXPECT_EQ(cli("import " + uri + " --model " + model_ + " --layer 15 --random --seed 2").rc, 0);
		return uri;
	}
	uint64_t generationOf(const std::string &uri)
	{
		auto j = cli("ls --json " + uri).json();
		return j.is_discarded() ? 0 : j["generation"].get<uint64_t>();
	}
	TempDir dir_;
	std::string model_;
	ModelConfig cfg_;
	std::vector<std::string> made_;
};

} // namespace

// #5: a lease shorter than a few heartbeats makes live agents look expired.
TEST_F(CliHostile, LeaseTooShortIsRefused)
{
	for (const char *lease : {"0", "1", "99"}) {
		std::string uri = emulUri();
		expectOneLineError(cli("create " + uri + " --size 32M --lease-ms " + lease), "at least 100 ms", lease);
		EXPECT_EQ(cli("ls " + uri).rc, 1) << "nothing was created for --lease-ms " << lease;
	}
	std::string uri = emulUri();
	CliResult r = cli("create " + uri + " --size 32M --lease-ms 100 --json");
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_EQ(openPool(uri, false)->superblock().leaseMs, 100u);
	CliResult help = cli("create --help");
	EXPECT_NE(help.out.find("at least 100"), std::string::npos) << help.out;
	// The library (and so the C ABI) refuses too.
	CreateOptions o;
	o.size = 32ull << 20;
	std::string other = emulUri();
	EXPECT_EQ(Pool::create(other, o, 0).code(), -EINVAL);
	EXPECT_EQ(Pool::create(other, o, 50).code(), -EINVAL);
	EXPECT_EQ(cli("ls " + other).rc, 1);
}

// #6: a replace may publish new rows of the same table, never another layer or model.
TEST_F(CliHostile, ReplaceKeepsLayerAndModel)
{
	std::string uri = emulUri();
	ASSERT_EQ(cli("create " + uri + " --size 32M").rc, 0);
	ASSERT_EQ(cli("import " + uri + " --model " + model_ + " --layer 1 --random --seed 1").rc, 0);
	ASSERT_EQ(cli("import " + uri + " --model " + model_ + " --layer 15 --random --seed 1").rc, 0);
	CliResult r = cli("import " + uri + " --model " + model_ + " --layer 15 --random --replace --name tiny/layer1");
	expectOneLineError(r, "layer 1 of model 'tiny'", "replace with another layer");
	EXPECT_NE(r.err.find("layer 15 of model 'tiny'"), std::string::npos) << r.err;

	json other = tinyModelJson();
	other["name"] = "tiny2";
	std::string otherModel = dir_.file("tiny2.json");
	writeFile(otherModel, other.dump());
	r = cli("import " + uri + " --model " + otherModel + " --layer 1 --random --replace --name tiny/layer1");
	expectOneLineError(r, "model 'tiny2'", "replace with another model");
	EXPECT_NE(r.err.find("model 'tiny'"), std::string::npos) << r.err;
	EXPECT_EQ(generationOf(uri), 3u) << "nothing was published";
	auto j = cli("ls --json " + uri).json();
	for (auto &t : j["tables"]) {
		if (t["name"] == "tiny/layer1") {
			EXPECT_EQ(t["layer_id"], 1);
		}
	}
	// A same-layer, same-model replace still works.
	ASSERT_EQ(cli("import " + uri + " --model " + model_ + " --layer 1 --random --seed 9 --replace").rc, 0);
	EXPECT_EQ(generationOf(uri), 4u);

	// The library refuses as well.
	auto w = openPool(uri, true);
	auto res = importRandom(*w, cfg_, 15, 3, "tiny/layer1", true);
	ASSERT_FALSE(res);
	EXPECT_EQ(res.code(), EP_E_MODEL);
	ModelConfig cfg2 = makeModel(other);
	res = importRandom(*w, cfg2, 1, 3, "tiny/layer1", true);
	ASSERT_FALSE(res);
	EXPECT_EQ(res.code(), EP_E_MODEL);
}

// #8: lookup --out never writes over the pool, never follows a symlink, never overwrites
// without --force.
TEST_F(CliHostile, LookupOutNeverOverwritesThePool)
{
	std::string uri = filePoolWithTables();
	std::string pool = dir_.file("pool");
	uint64_t before = metadataHash(pool);
	std::string tok = " --model " + model_ + " --tokens '[[1,2,3]]' --out ";

	expectOneLineError(cli("lookup " + uri + tok + pool), "backing file", "--out the pool");
	expectOneLineError(cli("lookup " + uri + tok + pool + " --force"), "backing file", "--out the pool, --force");
	std::string link = dir_.file("link.npy");
	ASSERT_EQ(symlink(pool.c_str(), link.c_str()), 0);
	expectOneLineError(cli("lookup " + uri + tok + link + " --force"), "backing file", "symlink to the pool");
	std::string hard = dir_.file("hard.npy");
	ASSERT_EQ(::link(pool.c_str(), hard.c_str()), 0);
	expectOneLineError(cli("lookup " + uri + tok + hard + " --force"), "backing file", "hard link to the pool");
	EXPECT_EQ(metadataHash(pool), before);
	EXPECT_EQ(cli("verify " + uri).rc, 0) << "the pool is intact";

	// Any existing file needs --force.
	std::string out = dir_.file("out.npy");
	writeFile(out, "precious");
	expectOneLineError(cli("lookup " + uri + tok + out), "--force", "existing --out");
	EXPECT_EQ(readAll(out), "precious");
	CliResult r = cli("lookup " + uri + tok + out + " --force --json");
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_EQ(readAll(out).substr(0, 6), "\x93NUMPY");

	// --force replaces a symlink, it does not write through it.
	std::string target = dir_.file("target");
	writeFile(target, "untouched");
	std::string link2 = dir_.file("link2.npy");
	ASSERT_EQ(symlink(target.c_str(), link2.c_str()), 0);
	expectOneLineError(cli("lookup " + uri + tok + link2), "--force", "symlink without --force");
	ASSERT_EQ(cli("lookup " + uri + tok + link2 + " --force").rc, 0);
	EXPECT_EQ(readAll(target), "untouched");
	struct stat st;
	ASSERT_EQ(lstat(link2.c_str(), &st), 0);
	EXPECT_TRUE(S_ISREG(st.st_mode)) << "the link itself was replaced";
	// A dangling symlink is an existing path too.
	std::string dangling = dir_.file("dangling.npy");
	ASSERT_EQ(symlink(dir_.file("nowhere").c_str(), dangling.c_str()), 0);
	expectOneLineError(cli("lookup " + uri + tok + dangling), "--force", "dangling symlink");
	EXPECT_FALSE(exists(dir_.file("nowhere")));

	// A new file is written, and no temporary file is left behind.
	std::string fresh = dir_.file("fresh.npy");
	ASSERT_EQ(cli("lookup " + uri + tok + fresh).rc, 0);
	EXPECT_TRUE(exists(fresh));
	for (auto &e : std::filesystem::directory_iterator(dir_.path()))
		EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
	EXPECT_EQ(metadataHash(pool), before);
}

// #9: formatting over or destroying a pool that live hosts read needs an explicit override.
TEST_F(CliHostile, LiveHostsBlockDestroyAndForcedCreate)
{
	std::string uri = emulUri();
	ASSERT_EQ(cli("create " + uri + " --size 32M").rc, 0);
	ASSERT_EQ(cli("import " + uri + " --model " + model_ + " --layer 1 --random").rc, 0);
	auto p = openPool(uri, false);
	auto reg = HostRegistration::attach(*p, 5, *p->committedGeneration(), 0);
	ASSERT_TRUE(reg) << reg.status().message();
	std::string host = localHostName();

	CliResult r = cli("destroy " + uri);
	expectOneLineError(r, "--even-if-live", "destroy with a live host");
	EXPECT_NE(r.err.find("slot 5"), std::string::npos) << r.err;
	EXPECT_NE(r.err.find(host), std::string::npos) << r.err;
	r = cli("create " + uri + " --size 32M --force");
	expectOneLineError(r, "--even-if-live", "create --force with a live host");
	EXPECT_NE(r.err.find("slot 5"), std::string::npos) << r.err;
	EXPECT_EQ(generationOf(uri), 2u) << "the pool is untouched";
	EXPECT_NE(cli("destroy --help").out.find("--even-if-live"), std::string::npos);
	EXPECT_NE(cli("create --help").out.find("--even-if-live"), std::string::npos);

	// A host that detached cleanly holds nothing.
	ASSERT_TRUE((*reg)->detach().isOk());
	ASSERT_EQ(cli("create " + uri + " --size 32M --force").rc, 0);
	EXPECT_EQ(generationOf(uri), 1u);

	// The override.
	auto p2 = openPool(uri, false);
	auto reg2 = HostRegistration::attach(*p2, 7, *p2->committedGeneration(), 0);
	ASSERT_TRUE(reg2);
	ASSERT_EQ(cli("create " + uri + " --size 32M --force --even-if-live").rc, 0);
	auto p3 = openPool(uri, false);
	auto reg3 = HostRegistration::attach(*p3, 2, *p3->committedGeneration(), 0);
	ASSERT_TRUE(reg3);
	EXPECT_NE(cli("destroy " + uri).rc, 0);
	r = cli("destroy " + uri + " --even-if-live");
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_EQ(cli("ls " + uri).rc, 1);
}

// #10: non-regular files are refused before they are read; input sizes are capped.
TEST_F(CliHostile, NonRegularAndHugeInputsAreRefused)
{
	std::string fifo = dir_.file("fifo");
	ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
	std::string uri = emulUri();
	ASSERT_EQ(cli("create " + uri + " --size 32M").rc, 0);
	for (const std::string &bad : {std::string("/dev/zero"), fifo, dir_.path()}) {
		expectOneLineError(cli("model " + bad), bad, "model " + bad);
		expectOneLineError(cli("hash --model " + bad + " --tokens '[[1]]'"), "regular file", "hash --model " + bad);
		expectOneLineError(cli("hash --model " + model_ + " --tokens-file " + bad), "regular file",
				   "hash --tokens-file " + bad);
		expectOneLineError(cli("lookup " + uri + " --model " + model_ + " --tokens-file " + bad + " --out " +
				       dir_.file("o.npy")),
				   "regular file", "lookup --tokens-file " + bad);
		expectOneLineError(cli("import " + uri + " --model " + model_ + " --layer 1 --from " + bad), "regular file",
				   "import --from " + bad);
		json m = tinyModelJson();
		m["vocab_map"] = bad;
		std::string vm = dir_.file("vm.json");
		writeFile(vm, m.dump());
		expectOneLineError(cli("model " + vm), "regular file", "vocab_map " + bad);
	}
	std::string npyFifo = dir_.file("rows.npy");
	ASSERT_EQ(mkfifo(npyFifo.c_str(), 0600), 0);
	expectOneLineError(cli("import " + uri + " --model " + model_ + " --layer 1 --from " + npyFifo), "FIFO",
			   ".npy FIFO");
	EXPECT_EQ(generationOf(uri), 1u);

	// Sparse files: huge sizes cost nothing on disk.
	std::string bigModel = dir_.file("big.json");
	writeFile(bigModel, "{");
	ASSERT_EQ(::truncate(bigModel.c_str(), 65ll << 20), 0);
	expectOneLineError(cli("model " + bigModel), "64.00 MiB", "65 MiB model file");
	std::string bigTokens = dir_.file("big_tokens.json");
	writeFile(bigTokens, "[[1]]");
	ASSERT_EQ(::truncate(bigTokens.c_str(), 257ll << 20), 0);
	expectOneLineError(cli("hash --model " + model_ + " --tokens-file " + bigTokens), "256.00 MiB",
			   "257 MiB tokens file");
	EXPECT_NE(cli("hash --help").out.find("256 MiB"), std::string::npos) << "the cap is stated";
	EXPECT_NE(cli("lookup --help").out.find("256 MiB"), std::string::npos) << "the cap is stated";
}

// #11: a lookup whose dense output cannot be allocated is refused with its size.
TEST_F(CliHostile, LookupOutputSizeIsCheckedBeforeAllocating)
{
	std::string uri = filePoolWithTables();
	std::string tokens = dir_.file("tokens.json");
	{
		std::ofstream f(tokens);
		f << "[[";
		for (int i = 0; i < 100000; i++)
			f << (i ? "," : "") << (i % 1000);
		f << "]";
		for (int i = 0; i < 10000; i++)
			f << ",[7]";
		f << "]";
	}
	CliResult r = cli("lookup " + uri + " --model " + model_ + " --tokens-file " + tokens + " --out " +
			  dir_.file("o.npy"));
	expectOneLineError(r, "the limit is", "100k x 10k lookup");
	EXPECT_NE(r.err.find("GiB"), std::string::npos) << r.err;
	EXPECT_EQ(r.err.find("bad_alloc"), std::string::npos) << r.err;
	EXPECT_FALSE(exists(dir_.file("o.npy")));

	// Absurd batch sizes are refused before the agent sizes anything.
	{
		std::ofstream f(tokens);
		f << "[";
		for (int i = 0; i < 70000; i++)
			f << (i ? "," : "") << "[1]";
		f << "]";
	}
	expectOneLineError(cli("lookup " + uri + " --model " + model_ + " --tokens-file " + tokens + " --out " +
			       dir_.file("o.npy")),
			   "the limit is 65536", "70000 sequences");
	expectOneLineError(cli("hash --model " + model_ + " --tokens-file " + tokens), "the limit is 65536",
			   "hash of 70000 sequences");
	{
		std::ofstream f(tokens);
		f << "[[";
		for (int i = 0; i < (1 << 20) + 1; i++)
			f << (i ? ",1" : "1");
		f << "]]";
	}
	expectOneLineError(cli("lookup " + uri + " --model " + model_ + " --tokens-file " + tokens + " --out " +
			       dir_.file("o.npy")),
			   "the limit is 1048576", "2^20 + 1 tokens");
	expectOneLineError(cli("hash --model " + model_ + " --tokens-file " + tokens), "the limit is 1048576",
			   "hash of 2^20 + 1 tokens");
	// An ordinary ragged lookup still works.
	ASSERT_EQ(cli("lookup " + uri + " --model " + model_ + " --tokens '[[1,2,3],[4]]' --out " + dir_.file("ok.npy"))
			  .rc,
		  0);
}

// #13: every option is checked before anything is created.
TEST_F(CliHostile, CreateValidatesOptionsFirst)
{
	std::string path = dir_.file("p.pool");
	expectOneLineError(cli("create file:" + path + " --size 32M --group nosuchgroup-ep"), "nosuchgroup-ep",
			   "unknown group");
	EXPECT_FALSE(exists(path)) << "no pool is left behind";
	for (const char *mode : {"999", "abc", "07777", "-1", "''"}) {
		expectOneLineError(cli("create file:" + path + " --size 32M --mode " + mode), "--mode", mode);
		EXPECT_FALSE(exists(path)) << mode;
	}
	std::string uri = emulUri();
	expectOneLineError(cli("create " + uri + " --size 32M --group nosuchgroup-ep"), "nosuchgroup-ep", "emul group");
	EXPECT_EQ(cli("ls " + uri).rc, 1);
	// The retry with good options needs no --force.
	ASSERT_EQ(cli("create file:" + path + " --size 32M").rc, 0);
	if (struct group *g = getgrgid(getgid()); g) {
		std::string path2 = dir_.file("p2.pool");
		CliResult r = cli("create file:" + path2 + " --size 32M --group " + std::string(g->gr_name));
		ASSERT_EQ(r.rc, 0) << r.err;
		struct stat st;
		ASSERT_EQ(stat(path2.c_str(), &st), 0);
		EXPECT_EQ(st.st_gid, g->gr_gid);
	}
}

// #14: out-of-range integers are refused, naming the value.
TEST_F(CliHostile, OutOfRangeIntegersAreRefused)
{
	expectOneLineError(cli("hash --model " + model_ + " --tokens '[[9223372036854775808]]'"), "9223372036854775808",
			   "token id above INT64_MAX");
	expectOneLineError(cli("hash --model " + model_ + " --tokens '[[1,18446744073709551615]]'"),
			   "18446744073709551615", "token id 2^64-1");
	expectOneLineError(cli("hash --model " + model_ + " --tokens '[[1,-1]]'"), "-1", "negative token id");
	expectOneLineError(cli("hash --model " + model_ + " --tokens '[5, -7]'"), "token 1", "flat list, negative id");
	expectOneLineError(cli("hash --model " + model_ + " --tokens '[[1e30]]'"), "not an integer", "float id");
	expectOneLineError(cli("hash --model " + model_ + " --tokens '[[1000]]'"), "1000", "id outside the vocabulary");
	expectOneLineError(cli("hash --model " + model_ + " --tokens '[[[1]]]'"), "not an integer", "nested too deep");
	expectOneLineError(cli("hash --model " + model_ + " --tokens '[[1],2]'"), "not an array", "mixed batch");
	ASSERT_EQ(cli("hash --model " + model_ + " --tokens '[[1,2],[999]]' --json").rc, 0);
	ASSERT_EQ(cli("hash --model " + model_ + " --tokens '[1,2,3]' --json").rc, 0);

	std::string uri = emulUri();
	ASSERT_EQ(cli("create " + uri + " --size 32M").rc, 0);
	expectOneLineError(cli("import " + uri + " --model " + model_ + " --layer 1 --random --seed -1"), "'-1'",
			   "import --seed -1");
	expectOneLineError(cli("import " + uri + " --model " + model_ + " --layer 1 --random --seed 0x10"), "'0x10'",
			   "import --seed in hex");
	expectOneLineError(cli("emulate " + uri + " --model " + model_ + " --seed -1"), "'-1'", "emulate --seed -1");
	expectOneLineError(cli("create " + emulUri() + " --size 32M --lease-ms -5"), "'-5'", "negative lease");
	EXPECT_EQ(generationOf(uri), 1u);
	CliResult r = cli("import " + uri + " --model " + model_ + " --layer 1 --random --seed 18446744073709551615 --json");
	ASSERT_EQ(r.rc, 0) << r.err;
}

// #16: table names are printable UTF-8; what the pool holds is never printed raw.
TEST_F(CliHostile, TableNamesAndPoolTextAreSafe)
{
	std::string uri = emulUri();
	// 4 KiB pages: the bytes are poked below through a small mapping at a 4 KiB offset.
	ASSERT_EQ(cli("create '" + uri + "?pages=4k' --size 32M").rc, 0);
	std::string imp = "import " + uri + " --model " + model_ + " --layer 1 --random --name ";
	// Raw bytes in single quotes: /bin/sh (dash) has no $'...'.
	for (const char *name : {"a\x1b[31mred", " ", "   ", "\t", "a\nb", "bad\xff", "c1\xc2\x9b", "del\x7f",
				 "\xc0\xaf", "\xed\xa0\x80"}) {
		CliResult r = cli(imp + "'" + name + "'");
		expectOneLineError(r, "table name", name);
		EXPECT_FALSE(hasRawControl(r.err)) << name;
	}
	EXPECT_EQ(generationOf(uri), 1u);
	ASSERT_EQ(cli(imp + "'caf\xc3\xa9 layer 1'").rc, 0) << "UTF-8 and inner spaces are fine";

	// The library refuses them too.
	{
		auto w = openPool(uri, true);
		for (const std::string &name : {std::string("a\x1b[31mred"), std::string(" "), std::string("x\xff")}) {
			auto res = importRandom(*w, cfg_, 15, 1, name);
			ASSERT_FALSE(res) << name;
			EXPECT_EQ(res.code(), -EINVAL);
		}
	}

	// A pool is untrusted: write escape sequences into a catalog name and a hostname
	// (with valid CRCs) and check ls / hosts / stat escape them.
	ASSERT_EQ(cli(imp.substr(0, imp.find("--layer")) + "--layer 15 --random --name evilXname").rc, 0);
	auto u = parseRegionUri(uri);
	ASSERT_TRUE(u);
	ASSERT_EQ(hugepages::locateEmul(u->name), u->path) << "the pool is the /dev/shm object";
	auto meta = peekBytes(u->path, 0, format::kDataOffset);
	std::string hay(meta.begin(), meta.end());
	size_t at = hay.find("evilXname");
	ASSERT_NE(at, std::string::npos);
	ASSERT_GE(at, format::kCatalogOffset);
	uint64_t entryOff = format::kCatalogOffset + (at - format::kCatalogOffset) / format::kEntrySize * format::kEntrySize;
	format::CatalogEntry e;
	std::memcpy(&e, meta.data() + entryOff, sizeof(e));
	char *n = e.table.name;
	ASSERT_EQ(std::string(n), "evilXname");
	n[4] = '\x1b';
	e.crc = format::entryCrc(e);
	pokeBytes(u->path, entryOff, &e, sizeof(e));

	auto p = openPool(uri, false);
	auto reg = HostRegistration::attach(*p, 4, *p->committedGeneration(), 0);
	ASSERT_TRUE(reg);
	uint64_t slotOff = format::kHostsOffset + 4ull * format::kHostSlotSize;
	format::HostSlot h;
	auto sb = peekBytes(u->path, slotOff, sizeof(h));
	std::memcpy(&h, sb.data(), sizeof(h));
	std::memset(h.hostname, 0, sizeof(h.hostname));
	std::memcpy(h.hostname, "host\x1b]0;pwned\x07\xff", 15);
	h.crc = format::hostSlotCrc(h);
	pokeBytes(u->path, slotOff, &h, sizeof(h));

	CliResult r = cli("ls " + uri);
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_FALSE(hasRawControl(r.out)) << r.out;
	EXPECT_NE(r.out.find("evil\\x1bname"), std::string::npos) << r.out;
	r = cli("ls --json " + uri);
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_FALSE(r.json().is_discarded());
	EXPECT_FALSE(hasRawControl(r.out));
	r = cli("hosts " + uri);
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_FALSE(hasRawControl(r.out)) << r.out;
	EXPECT_NE(r.out.find("host\\x1b]0;pwned\\x07\\xff"), std::string::npos) << r.out;
	r = cli("hosts --json " + uri);
	ASSERT_EQ(r.rc, 0) << r.err;
	EXPECT_FALSE(r.json().is_discarded()) << "invalid UTF-8 does not break the JSON: " << r.out;
	EXPECT_FALSE(hasRawControl(r.out));
	r = cli("destroy " + uri);
	EXPECT_NE(r.rc, 0);
	EXPECT_FALSE(hasRawControl(r.err)) << "the live-host error names the hostname escaped: " << r.err;
	EXPECT_NE(r.err.find("pwned"), std::string::npos) << r.err;
	ASSERT_TRUE((*reg)->detach().isOk());
}

// #17: each error names the real problem.
TEST_F(CliHostile, ErrorsNameTheRealProblem)
{
	CliResult r = cli("frobnicate");
	expectOneLineError(r, "unknown command 'frobnicate'", "unknown command");
	EXPECT_NE(r.err.find("create"), std::string::npos) << "lists the commands: " << r.err;
	EXPECT_NE(r.err.find("lookup"), std::string::npos) << r.err;
	expectOneLineError(cli("--json frobnicate"), "unknown command 'frobnicate'", "after a flag");

	std::string uri = emulUri();
	ASSERT_EQ(cli("create " + uri + " --size 32M").rc, 0);
	expectOneLineError(cli("import " + uri + " --model " + model_ + " --layer -1 --random"), "non-negative integer",
			   "--layer -1");
	expectOneLineError(cli("import " + uri + " --model " + model_ + " --layer 4294967297 --random"), "--layer",
			   "--layer beyond 32 bits");

	for (const char *size : {"4.5M", "5M", "33M", "32.5M"}) {
		std::string u2 = emulUri();
		expectOneLineError(cli("create " + u2 + " --size " + size), "multiple of 2 MiB", size);
		EXPECT_EQ(cli("ls " + u2).rc, 1) << size;
	}

	std::string emu = "emulate " + uri + " --model " + model_;
	r = cli(emu + " --host-index-base 256");
	expectOneLineError(r, "--host-index-base 256", "host index base 256");
	EXPECT_NE(r.err.find("0..255"), std::string::npos) << r.err;
	r = cli(emu + " --host-index-base 250 --hosts 8");
	expectOneLineError(r, "--hosts must be 1..6", "8 hosts from 250");
	expectOneLineError(cli(emu + " --kill-at 1000 --steps 20 --kill-hosts 1"), "--kill-at 1000", "kill-at past steps");
	expectOneLineError(cli(emu + " --kill-at 20 --steps 20"), "below --steps", "kill-at == steps");
	for (const char *z : {"nan", "inf", "-inf", "NaN"})
		expectOneLineError(cli(emu + " --zipf " + z), "finite", z);
	expectOneLineError(cli(emu + " --zipf -1"), "--zipf", "negative zipf");
	expectOneLineError(cli(emu + " --timeout nan"), "finite", "timeout nan");
	r = cli(emu + " --batch 1000000");
	expectOneLineError(r, "1024", "huge batch");
	expectOneLineError(cli(emu + " --batch 1024 --max-prefill 64"), "32768", "tokens per step");
	CliResult help = cli("emulate --help");
	EXPECT_NE(help.out.find("1024"), std::string::npos) << help.out;
	EXPECT_EQ(generationOf(uri), 1u) << "no emulation started";
}
