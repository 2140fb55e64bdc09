// SPDX-License-Identifier: Apache-2.0
// dax_pool.cpp - the whole pool path on a real device DAX (libdaxctl + libpmem2).
// Uses $EP_DAX_DEVICE or the first /dev/dax*; exits 77 (skip) when there is none.
// It formats the device: never point it at a device holding data you need.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "hashing/primes.hpp"
#include "io/row_source.hpp"
#include "pool/pool.hpp"

using namespace engrampool;

static int failWith(const char *what, const Status &s)
{
	fprintf(stderr, "FAIL %s: %s\n", what, s.message().c_str());
	return 1;
}

int main()
{
	std::string dev;
	if (const char *e = getenv("EP_DAX_DEVICE"))
		dev = e;
	else
		for (auto &ent : std::filesystem::directory_iterator("/dev"))
			if (ent.path().filename().string().rfind("dax", 0) == 0) {
				dev = ent.path().string();
				break;
			}
	if (dev.empty()) {
		printf("SKIP: no device DAX (/dev/daxX.Y) on this machine\n");
		return 77;
	}
	std::string uri = "dax:" + dev;
	auto info = backend::probeDax(dev);
	if (!info)
		return failWith("probe", info.status());
	printf("%s: %llu bytes, align %llu, region %d\n", dev.c_str(), (unsigned long long)info->size,
	       (unsigned long long)info->align, info->regionId);

	CreateOptions co; // whole device
	if (Status s = Pool::create(uri, co); !s)
		return failWith("create", s);
	auto cfg = parseModelJson(R"({"name":"dax","tokenizer_vocab_size":1000,"compressed_vocab_size":1000,"engram_vocab_size":[3000,4000],
		"max_ngram_size":3,"n_embed_per_ngram":64,"n_head_per_ngram":4,"layer_ids":[1],"pad_id":2,"seed":0})",
				  "");
	if (!cfg)
		return failWith("model", cfg.status());
	uint64_t rows = hashing::tableRows(*cfg)[0];
	{
		OpenOptions w;
		w.write = true;
		auto p = Pool::open(uri, w);
		if (!p)
			return failWith("open writer", p.status());
		auto src = io::makeRandomSource(cfg->rowFormat, rows, 42);
		ImportRequest req;
		req.model = &cfg.value();
		req.layerId = 1;
		req.rows = rows;
		auto r = (*p)->importTable(req, *src);
		if (!r)
			return failWith("import", r.status());
	}
	auto p = Pool::open(uri, OpenOptions{});
	if (!p)
		return failWith("open reader", p.status());
	auto v = (*p)->verify();
	if (!v || v->size() != 1 || !(*v)[0].ok)
		return failWith("verify", v ? makeError(EP_E_CHECKSUM, "table checksum mismatch") : v.status());
	auto snap = (*p)->snapshot();
	if (!snap)
		return failWith("snapshot", snap.status());
	const TableInfo &t = snap->tables.at(0);
	std::vector<uint8_t> got(t.rowStride), want(t.rowStride);
	for (uint64_t r : {0ull, 1ull, (unsigned long long)rows / 2, (unsigned long long)rows - 1}) {
		if (Status s = (*p)->readRows(t, &r, 1, got.data(), got.size()); !s)
			return failWith("read", s);
		io::randomRow(cfg->rowFormat, 42, r, want.data());
		if (got != want) {
			fprintf(stderr, "FAIL row %llu differs\n", (unsigned long long)r);
			return 1;
		}
	}
	printf("dax pool: create, import %llu rows, verify, read: ok\n", (unsigned long long)rows);
	return 0;
}
