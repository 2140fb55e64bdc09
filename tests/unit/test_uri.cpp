// SPDX-License-Identifier: Apache-2.0
// test_uri.cpp - region URI parsing: schemes, emul names, query parameters, errors.
#include <gtest/gtest.h>

#include "region/uri.hpp"

using namespace engrampool;

TEST(Uri, FileUris)
{
	auto u = parseRegionUri("file:/dev/shm/pool0");
	ASSERT_TRUE(u) << u.status().message();
	EXPECT_EQ(u->kind, RegionKind::File);
	EXPECT_EQ(u->path, "/dev/shm/pool0");
	EXPECT_EQ(u->text, "file:/dev/shm/pool0");
	EXPECT_EQ(u->node, -1);
	EXPECT_FALSE(u->cost.enabled());

	auto triple = parseRegionUri("file:///mnt/pmem/p");
	ASSERT_TRUE(triple);
	EXPECT_EQ(triple->path, "/mnt/pmem/p");

	auto rel = parseRegionUri("file:relative/pool");
	ASSERT_TRUE(rel);
	EXPECT_EQ(rel->path, "relative/pool");
	EXPECT_STREQ(regionKindName(RegionKind::File), "file");
}

TEST(Uri, DaxUris)
{
	auto u = parseRegionUri("dax:/dev/dax0.0");
	ASSERT_TRUE(u);
	EXPECT_EQ(u->kind, RegionKind::Dax);
	EXPECT_EQ(u->path, "/dev/dax0.0");
	EXPECT_STREQ(regionKindName(RegionKind::Dax), "dax");
	auto bad = parseRegionUri("dax:/dev/sda");
	EXPECT_EQ(bad.code(), EP_E_URI);
	EXPECT_NE(bad.status().message().find("/dev/dax"), std::string::npos);
}

TEST(Uri, EmulUrisWithParameters)
{
	auto u = parseRegionUri("emul:pool0");
	ASSERT_TRUE(u);
	EXPECT_EQ(u->kind, RegionKind::Emul);
	EXPECT_EQ(u->name, "pool0");
	EXPECT_EQ(u->path, "/dev/shm/engrampool.pool0");
	EXPECT_EQ(u->node, -1);

	auto p = parseRegionUri("emul:cxl-A_1.x?node=1&latency_ns=250&link_gbps=32.5&switch_gbps=64");
	ASSERT_TRUE(p) << p.status().message();
	EXPECT_EQ(p->name, "cxl-A_1.x");
	EXPECT_EQ(p->node, 1);
	EXPECT_EQ(p->cost.latencyNs, 250u);
	EXPECT_DOUBLE_EQ(p->cost.linkGbps, 32.5);
	EXPECT_DOUBLE_EQ(p->cost.switchGbps, 64.0);
	EXPECT_TRUE(p->cost.enabled());
	EXPECT_EQ(p->params.size(), 4u);

	EXPECT_EQ(p->cost.mlpLines, 32u) << "default per-core lines in flight";
	auto mlp = parseRegionUri("emul:p?latency_ns=750&mlp_lines=16");
	ASSERT_TRUE(mlp) << mlp.status().message();
	EXPECT_EQ(mlp->cost.mlpLines, 16u);
	auto unbounded = parseRegionUri("emul:p?mlp_lines=0");
	ASSERT_TRUE(unbounded);
	EXPECT_EQ(unbounded->cost.mlpLines, 0u);

	auto bw = parseRegionUri("emul:p?bw_gbps=8");
	ASSERT_TRUE(bw);
	EXPECT_DOUBLE_EQ(bw->cost.linkGbps, 8.0) << "bw_gbps is an alias of link_gbps";
	auto empty = parseRegionUri("emul:p?node=0&&");
	ASSERT_TRUE(empty) << "empty parameters are skipped";
	EXPECT_EQ(empty->node, 0);
}

TEST(Uri, UnknownSchemeNamesIt)
{
	for (const char *text : {"s3:bucket/pool", "http://x/y", "cxl:/dev/x", "File:/x"}) {
		auto u = parseRegionUri(text);
		ASSERT_FALSE(u) << text;
		EXPECT_EQ(u.code(), EP_E_URI) << text;
		std::string scheme = std::string(text).substr(0, std::string(text).find(':'));
		EXPECT_NE(u.status().message().find("unknown scheme '" + scheme + "'"), std::string::npos)
			<< u.status().message();
	}
	auto none = parseRegionUri("/dev/shm/pool");
	EXPECT_EQ(none.code(), EP_E_URI) << "no scheme";
	EXPECT_NE(none.status().message().find("SCHEME"), std::string::npos);
}

TEST(Uri, BadParametersAndNames)
{
	struct Case {
		const char *uri;
		const char *needle;
	} cases[] = {
		{"file:", "needs a path"},
		{"emul:", "name"},
		{"emul:a/b", "letters"},
		{"emul:a b", "letters"},
		{"emul:x?node=abc", "node"},
		{"emul:x?node=-1", "node"},
		{"emul:x?node=99999", "node"},
		{"emul:x?latency_ns=1e3", "latency_ns"},
		{"emul:x?latency_ns=100001", "latency_ns"},
		{"emul:x?link_gbps=-1", "link_gbps"},
		{"emul:x?mlp_lines=5000", "mlp_lines"},
		{"emul:x?mlp_lines=many", "mlp_lines"},
		{"emul:x?switch_gbps=fast", "switch_gbps"},
		{"emul:x?colour=blue", "unknown parameter 'colour'"},
		{"emul:x?node", "key=value"},
		{"emul:x?=1", "key=value"},
		{"file:/x?node=0", "emul: URIs only"},
		{"file:/x?latency_ns=10", "emul: URIs only"},
	};
	for (auto &c : cases) {
		auto u = parseRegionUri(c.uri);
		ASSERT_FALSE(u) << c.uri;
		EXPECT_EQ(u.code(), EP_E_URI) << c.uri;
		EXPECT_NE(u.status().message().find(c.needle), std::string::npos) << c.uri << ": " << u.status().message();
		EXPECT_NE(u.status().message().find(c.uri), std::string::npos) << "the message quotes the URI";
	}
	std::string longName = "emul:" + std::string(65, 'a');
	EXPECT_EQ(parseRegionUri(longName).code(), EP_E_URI);
	EXPECT_TRUE(parseRegionUri("emul:" + std::string(64, 'a')));
}
