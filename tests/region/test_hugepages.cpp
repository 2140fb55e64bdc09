// SPDX-License-Identifier: Apache-2.0
// test_hugepages.cpp - emul: pools in 2 MiB pages (a hugetlbfs file), the 4 KiB /dev/shm
// fallback with its warning, open by name from another process wherever the pool lives,
// destroy, and the page size reported by the region, `stat` and the agent's metrics.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "agent/agent.hpp"
#include "format/layout.hpp"
#include "hashing/hasher.hpp"
#include "hashing/primes.hpp"
#include "io/row_source.hpp"
#include "pool/host_registration.hpp"
#include "pool/pool.hpp"
#include "region/hugepages.hpp"
#include "region/region.hpp"
#include "test_util.hpp"

using namespace engrampool;

namespace {

constexpr uint64_t k2M = 2ull << 20;

bool exists(const std::string &p)
{
	struct stat st;
	return ::stat(p.c_str(), &st) == 0;
}

// Sets an environment variable for the scope of one test.
struct ScopedEnv {
	std::string name;
	std::string old;
	bool had;
	ScopedEnv(const char *n, const char *v) : name(n)
	{
		const char *o = getenv(n);
		had = o != nullptr;
		if (had)
			old = o;
		setenv(n, v, 1);
	}
	~ScopedEnv()
	{
		if (had)
			setenv(name.c_str(), old.c_str(), 1);
		else
			unsetenv(name.c_str());
	}
};

struct Emul {
	std::string name = eptest::uniqueName("hp");
	std::string uri(const std::string &q = "") const { return "emul:" + name + q; }
	~Emul()
	{
		if (auto u = parseRegionUri(uri()); u)
			(void)Region::destroy(*u);
	}
};

// Create an emul pool in huge pages (pages=2m). When the kernel has none free and we are
// root, reserve a few more (the test needs 2) and retry; otherwise skip with the reason.
// Another test may take pages between the two steps: then we skip too, never fail.
std::string createHugeOrSkipReason(const Emul &e, uint64_t size)
{
	if (hugepages::hugetlbDirs().empty())
		return "no hugetlbfs mount (run scripts/setup.sh as root: it mounts /dev/hugepages)";
	CreateOptions co;
	co.size = size;
	Status s = Pool::create(e.uri("?pages=2m"), co);
	if (s)
		return "";
	if (geteuid() == 0) {
		auto g = hugepages::readFigures();
		std::ofstream("/proc/sys/vm/nr_hugepages") << (g.total + size / k2M + 2);
		s = Pool::create(e.uri("?pages=2m"), co);
		if (s)
			return "";
	}
	return "no huge pages could be reserved: " + s.message();
}

} // namespace

TEST(HugePages, EmulPoolLivesInHugePagesAndOpensByName)
{
	Emul e;
	std::string why = createHugeOrSkipReason(e, 8 << 20);
	if (!why.empty())
		GTEST_SKIP() << why;
	std::string at = hugepages::locateEmul(e.name);
	ASSERT_FALSE(at.empty());
	EXPECT_TRUE(hugepages::pathOnHugetlbfs(at)) << at;
	EXPECT_FALSE(exists("/dev/shm/engrampool." + e.name)) << "no /dev/shm copy of a hugetlb pool";

	auto p = Pool::open(e.uri(), OpenOptions{});
	ASSERT_TRUE(p.isOk()) << p.status().message();
	EXPECT_EQ((*p)->region().pageSize(), k2M);
	EXPECT_EQ((*p)->region().uri().path, at);
	EXPECT_EQ((*p)->region().size(), 8u << 20);

	// Another process opens it by name, claims a host slot (a sub-range mapping at a
	// 2 MiB-aligned offset on hugetlbfs) and writes a byte into the data area.
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		OpenOptions w;
		w.write = true;
		auto q = Pool::open(e.uri(), w);
		if (!q || (*q)->region().pageSize() != k2M)
			_exit(2);
		auto reg = HostRegistration::attach(**q, 5, 1, 0);
		if (!reg)
			_exit(3);
		(*q)->region().base()[format::kDataOffset + 123] = 0x5a;
		(*q)->region().persist((*q)->region().base() + format::kDataOffset + 123, 1);
		_exit(0);
	}
	int st = 0;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0) << "child: 2 open, 3 host slot";
	(*p)->region().invalidate((*p)->region().base() + format::kDataOffset + 123, 1);
	EXPECT_EQ((*p)->region().base()[format::kDataOffset + 123], 0x5a);
	bool sawSlot = false;
	for (auto &h : (*p)->hosts())
		sawSlot |= h.index == 5 && h.pid == (uint32_t)pid;
	EXPECT_TRUE(sawSlot) << "the child's host slot 5 is in the shared pool";

	// A second create of the name is refused wherever the pool lives.
	CreateOptions co;
	co.size = 4 << 20;
	Status again = Pool::create(e.uri("?pages=4k"), co);
	EXPECT_FALSE(again);
	p->reset();
	ASSERT_TRUE(Region::destroy(*parseRegionUri(e.uri())));
	EXPECT_FALSE(exists(at)) << "destroy removes the hugetlbfs file";
	EXPECT_TRUE(hugepages::locateEmul(e.name).empty());
}

TEST(HugePages, FallbackTo4KiBWarnsAndWorks)
{
	ScopedEnv env("EP_HUGETLBFS", "none");
	Emul e;
	CreateOptions co;
	co.size = 4 << 20;
	testing::internal::CaptureStderr();
	Status s = Pool::create(e.uri(), co);
	std::string err = testing::internal::GetCapturedStderr();
	ASSERT_TRUE(s) << s.message();
	EXPECT_NE(err.find("warning: emul:" + e.name + " uses 4 KiB pages"), std::string::npos) << err;
	EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "one line: " << err;
	EXPECT_TRUE(exists("/dev/shm/engrampool." + e.name));
	auto p = Pool::open(e.uri(), OpenOptions{});
	ASSERT_TRUE(p.isOk()) << p.status().message();
	EXPECT_EQ((*p)->region().pageSize(), 4096u);
	EXPECT_EQ((*p)->region().uri().path, "/dev/shm/engrampool." + e.name);

	// pages=2m is a requirement: refused with the reason, nothing left behind.
	Emul e2;
	Status h = Pool::create(e2.uri("?pages=2m"), co);
	ASSERT_FALSE(h);
	EXPECT_NE(h.message().find("needs huge pages"), std::string::npos) << h.message();
	EXPECT_NE(h.message().find("EP_HUGETLBFS=none"), std::string::npos) << h.message();
	EXPECT_TRUE(hugepages::locateEmul(e2.name).empty());
}

TEST(HugePages, ExplicitSmallPagesAreQuietAndExistingShmPoolsStayUsable)
{
	Emul e;
	CreateOptions co;
	co.size = 4 << 20;
	co.pages = PagePref::Small; // as an existing /dev/shm pool, made before huge pages
	testing::internal::CaptureStderr();
	Status s = Pool::create(e.uri(), co);
	std::string err = testing::internal::GetCapturedStderr();
	ASSERT_TRUE(s) << s.message();
	EXPECT_EQ(err, "");
	EXPECT_EQ(hugepages::locateEmul(e.name), "/dev/shm/engrampool." + e.name);
	// Found by name even though a hugetlbfs mount is searched first.
	OpenOptions w;
	w.write = true;
	auto p = Pool::open(e.uri(), w);
	ASSERT_TRUE(p.isOk()) << p.status().message();
	EXPECT_EQ((*p)->region().pageSize(), 4096u);
	auto reg = HostRegistration::attach(**p, 3, 1, 0);
	ASSERT_TRUE(reg.isOk()) << reg.status().message();
	reg->reset();
	p->reset();
	// The default (huge) create of the same name is refused: it exists in /dev/shm.
	CreateOptions c2;
	c2.size = 4 << 20;
	Status again = Region::create(*parseRegionUri(e.uri()), c2).status();
	EXPECT_EQ(again.code(), -EEXIST) << again.message();
	ASSERT_TRUE(Region::destroy(*parseRegionUri(e.uri())));
	EXPECT_FALSE(exists("/dev/shm/engrampool." + e.name));
	Status gone = Region::destroy(*parseRegionUri(e.uri()));
	EXPECT_EQ(gone.code(), -ENOENT) << gone.message();
}

TEST(HugePages, EnvironmentForcesSmallPages)
{
	ScopedEnv env("EP_HUGEPAGES", "0");
	Emul e;
	CreateOptions co;
	co.size = 4 << 20;
	testing::internal::CaptureStderr();
	Status s = Pool::create(e.uri(), co);
	std::string err = testing::internal::GetCapturedStderr();
	ASSERT_TRUE(s) << s.message();
	EXPECT_EQ(err, "");
	EXPECT_EQ(hugepages::locateEmul(e.name), "/dev/shm/engrampool." + e.name);
}

TEST(HugePages, UriPagesParameter)
{
	EXPECT_EQ(parseRegionUri("emul:x?pages=4k")->pages, PagePref::Small);
	EXPECT_EQ(parseRegionUri("emul:x?pages=2m")->pages, PagePref::Huge);
	EXPECT_EQ(parseRegionUri("emul:x")->pages, PagePref::Auto);
	auto bad = parseRegionUri("emul:x?pages=64k");
	ASSERT_FALSE(bad);
	EXPECT_NE(bad.status().message().find("pages must be auto, 4k or 2m"), std::string::npos);
	EXPECT_FALSE(parseRegionUri("file:/tmp/x?pages=4k"));
}

TEST(HugePages, StatReportsPageSize)
{
	Emul e;
	std::string out;
	std::string cli = eptest::buildRoot() + "/pool_manager/engrampool";
	ASSERT_EQ(eptest::runCommand(cli + " create " + e.uri("?pages=4k") + " --size 4M", &out), 0) << out;
	out.clear();
	ASSERT_EQ(eptest::runCommand(cli + " stat " + e.uri() + " --json", &out, false), 0) << out;
	auto j = nlohmann::json::parse(out);
	EXPECT_EQ(j["region"]["page_size"], 4096) << out;
	EXPECT_EQ(j["region"]["path"], "/dev/shm/engrampool." + e.name) << out;
	out.clear();
	ASSERT_EQ(eptest::runCommand(cli + " stat " + e.uri(), &out), 0) << out;
	EXPECT_NE(out.find("pages 4 KiB"), std::string::npos) << out;
}

// An agent with a host slot on a pool in huge pages: its rows equal the pool's, and its
// metrics report the 2 MiB page size.
TEST(HugePages, AgentOnHugePagesGathersAndReportsPageSize)
{
	Emul e;
	std::string why = createHugeOrSkipReason(e, 16 << 20);
	if (!why.empty())
		GTEST_SKIP() << why;
	auto mc = parseModelJson(R"({"name":"hp","tokenizer_vocab_size":1000,"compressed_vocab_size":1000,
		"engram_vocab_size":[3000,4000],"max_ngram_size":3,"n_embed_per_ngram":64,"n_head_per_ngram":4,
		"layer_ids":[1],"pad_id":2,"seed":0})",
				 "");
	ASSERT_TRUE(mc.isOk()) << mc.status().message();
	ModelConfig m = *mc;
	TableInfo table;
	{
		OpenOptions w;
		w.write = true;
		auto p = Pool::open(e.uri(), w);
		ASSERT_TRUE(p.isOk()) << p.status().message();
		uint64_t rows = hashing::tableRows(m)[0];
		auto src = io::makeRandomSource(m.rowFormat, rows, 9);
		ImportRequest req;
		req.model = &m;
		req.layerId = 1;
		req.rows = rows;
		auto r = (*p)->importTable(req, *src);
		ASSERT_TRUE(r.isOk()) << r.status().message();
		table = r->table;
	}
	AgentConfig c;
	c.poolUri = e.uri();
	c.model = &m;
	c.maxBatchTokens = 64;
	c.maxSequences = 8;
	c.registerHost = true;
	auto a = HostAgent::create(c);
	ASSERT_TRUE(a.isOk()) << a.status().message();
	EXPECT_GE((*a)->hostSlot(), 0);
	auto j = nlohmann::json::parse((*a)->metricsJson());
	EXPECT_EQ(j["page_size"], k2M) << j.dump();

	std::vector<int64_t> tokens = {5, 17, 999, 3, 42, 42, 7, 100};
	BatchEntry be{1, tokens.data(), (uint32_t)tokens.size(), kSeqStart | kSeqEnd};
	uint64_t t = 0;
	ASSERT_EQ((*a)->prefetch(&be, 1, &t), 0) << (*a)->lastError();
	ASSERT_EQ((*a)->wait(t), 0) << (*a)->lastError();
	LayerOutput out;
	ASSERT_EQ((*a)->output(t, 0, &out), 0);
	auto layout = hashing::ModelLayout::create(m);
	ASSERT_TRUE(layout.isOk());
	auto h = hashing::EngramHasher::create(*layout);
	ASSERT_TRUE(h.isOk());
	std::vector<uint64_t> ids(h->outputSize(tokens.size()));
	std::vector<uint64_t> offs = {0, tokens.size()};
	ASSERT_TRUE(h->hashBatch(tokens, offs, ids));
	ASSERT_EQ(out.tokens * out.columns, ids.size());
	auto reader = Pool::open(e.uri(), OpenOptions{});
	ASSERT_TRUE(reader.isOk());
	std::vector<uint8_t> want(out.rowBytes);
	size_t bad = 0;
	for (size_t i = 0; i < ids.size(); i++) {
		ASSERT_TRUE((*reader)->readRows(table, &ids[i], 1, want.data(), want.size()));
		bad += std::memcmp(out.rows + i * out.rowStride, want.data(), out.rowBytes) != 0;
	}
	EXPECT_EQ(bad, 0u);
	EXPECT_EQ((*a)->release(t), 0);
}
