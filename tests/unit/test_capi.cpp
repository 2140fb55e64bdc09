// SPDX-License-Identifier: Apache-2.0
// test_capi.cpp - the C ABI (create/open/info/list/find/read_rows/verify/remove, errors) and its C++ wrappers.
#include "pool_fixture.hpp"

#include <engrampool/engrampool.h>
#include <engrampool/engrampool.hpp>

#include <atomic>
#include <new>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "capi/guard.hpp"

using namespace eptest;
namespace ep = engrampool;

namespace {

// A pool created through the C ABI holding tiny/layer1 (seed 1) and t15 (seed 2).
class CApi : public ::testing::Test {
protected:
	void SetUp() override
	{
		sp_ = std::make_unique<ScopedPool>("emul", 0, false);
		ASSERT_EQ(ep_pool_create(sp_->uri().c_str(), 32ull << 20), 0) << ep_errormsg();
		cfg_ = tinyModel();
		// The C ABI has no import: publish with the library's writer.
		auto w = openPool(sp_->uri(), true);
		ASSERT_TRUE(importRandom(*w, cfg_, 1, 1));
		ASSERT_TRUE(importRandom(*w, cfg_, 15, 2, "t15"));
	}
	std::unique_ptr<ScopedPool> sp_;
	ep::ModelConfig cfg_;
};

} // namespace

TEST_F(CApi, OpenInfoListFindRead)
{
	ep_pool *p = nullptr;
	ASSERT_EQ(ep_pool_open(&p, sp_->uri().c_str(), EP_OPEN_READONLY), 0) << ep_errormsg();
	ASSERT_NE(p, nullptr);
	ep_pool_info info;
	ASSERT_EQ(ep_pool_info_get(p, &info), 0);
	EXPECT_EQ(info.size, 32ull << 20);
	EXPECT_EQ(info.align_unit, 2ull << 20);
	EXPECT_EQ(info.data_offset, 2ull << 20);
	EXPECT_EQ(info.data_bytes, 30ull << 20);
	EXPECT_EQ(info.generation, 3u);
	EXPECT_EQ(info.tables, 2u);
	EXPECT_EQ(info.models, 1u);
	EXPECT_EQ(info.master_epoch, 1u);
	EXPECT_EQ(info.format_major, 1u);
	EXPECT_EQ(info.catalog_slots, 1024u);
	EXPECT_EQ(info.host_slots, 256u);
	EXPECT_EQ(info.used_bytes, 8ull << 20);

	size_t count = 0;
	ASSERT_EQ(ep_pool_list_tables(p, nullptr, 0, &count), 0);
	EXPECT_EQ(count, 2u);
	ep_table_info one[1];
	ASSERT_EQ(ep_pool_list_tables(p, one, 1, &count), 0);
	EXPECT_EQ(count, 2u) << "the total even when the buffer is smaller";
	ep_table_info all[4];
	ASSERT_EQ(ep_pool_list_tables(p, all, 4, &count), 0);
	ASSERT_EQ(count, 2u);
	EXPECT_TRUE(std::string(all[0].name) == "tiny/layer1" || std::string(all[1].name) == "tiny/layer1");

	ep_table_info t;
	ASSERT_EQ(ep_pool_find_table(p, "t15", &t), 0);
	EXPECT_STREQ(t.name, "t15");
	EXPECT_STREQ(t.model, "tiny");
	EXPECT_EQ(t.model_fingerprint, ep::modelFingerprint(cfg_));
	EXPECT_EQ(t.layer_id, 15u);
	EXPECT_EQ(t.dtype, (uint32_t)EP_DTYPE_FP32);
	EXPECT_EQ(t.values_per_row, 16u);
	EXPECT_EQ(t.scale_dtype, (uint32_t)EP_DTYPE_NONE);
	EXPECT_EQ(t.scales_per_row, 0u);
	EXPECT_EQ(t.row_bytes, 64u);
	EXPECT_EQ(t.row_stride, 64u);
	EXPECT_EQ(t.rows, layerRows(cfg_, 15));
	EXPECT_EQ(t.data_bytes, t.rows * 64);
	EXPECT_EQ(t.generation, 3u);

	std::vector<uint64_t> rows = {0, 1, t.rows / 2, t.rows - 1, 12345};
	std::vector<uint8_t> got(rows.size() * 64), want(64);
	ASSERT_EQ(ep_pool_read_rows(p, "t15", rows.data(), rows.size(), got.data(), got.size()), 0) << ep_errormsg();
	for (size_t i = 0; i < rows.size(); i++) {
		ep::io::randomRow(cfg_.rowFormat, 2, rows[i], want.data());
		EXPECT_EQ(std::memcmp(got.data() + i * 64, want.data(), 64), 0) << "row " << rows[i];
	}
	EXPECT_EQ(ep_pool_verify(p, nullptr), 0);
	EXPECT_EQ(ep_pool_verify(p, "t15"), 0);
	ep_pool_close(&p);
	EXPECT_EQ(p, nullptr);
	ep_pool_close(&p); // NULL-safe
	ep_pool_close(nullptr);
}

TEST_F(CApi, ErrorsSetTheThreadMessage)
{
	ep_pool *p = nullptr;
	EXPECT_EQ(ep_pool_open(&p, "nope:x", EP_OPEN_READONLY), EP_E_URI);
	EXPECT_EQ(p, nullptr) << "*out is set only on success";
	EXPECT_NE(std::string(ep_errormsg()).find("unknown scheme 'nope'"), std::string::npos) << ep_errormsg();
	EXPECT_STRNE(ep_strerror(EP_E_URI), "");
	EXPECT_EQ(ep_pool_open(&p, "emul:does-not-exist-xyz", EP_OPEN_READONLY), -ENOENT);
	EXPECT_NE(std::string(ep_errormsg()).find("does-not-exist-xyz"), std::string::npos) << ep_errormsg();
	EXPECT_EQ(ep_pool_open(nullptr, sp_->uri().c_str(), 0), -EINVAL);
	EXPECT_EQ(ep_pool_create(nullptr, 1 << 20), -EINVAL);
	EXPECT_GT(std::strlen(ep_errormsg()), 0u);
	EXPECT_EQ(ep_pool_create(sp_->uri().c_str(), 32ull << 20), -EEXIST);

	ASSERT_EQ(ep_pool_open(&p, sp_->uri().c_str(), EP_OPEN_READONLY), 0);
	ep_table_info t;
	EXPECT_EQ(ep_pool_find_table(p, "missing", &t), -ENOENT);
	EXPECT_NE(std::string(ep_errormsg()).find("missing"), std::string::npos);
	uint64_t rows[2] = {0, layerRows(cfg_, 1)}; // the second is one past the end
	std::vector<uint8_t> buf(2 * 64);
	EXPECT_EQ(ep_pool_read_rows(p, "tiny/layer1", rows, 2, buf.data(), buf.size()), -ERANGE);
	EXPECT_NE(std::string(ep_errormsg()).find(std::to_string(rows[1])), std::string::npos) << ep_errormsg();
	uint64_t huge = ~0ull;
	EXPECT_EQ(ep_pool_read_rows(p, "tiny/layer1", &huge, 1, buf.data(), buf.size()), -ERANGE);
	EXPECT_EQ(ep_pool_read_rows(p, "tiny/layer1", rows, 2, buf.data(), 64), -EINVAL) << "destination too small";
	EXPECT_EQ(ep_pool_read_rows(p, "missing", rows, 1, buf.data(), buf.size()), -ENOENT);
	EXPECT_EQ(ep_pool_read_rows(p, "tiny/layer1", nullptr, 1, buf.data(), buf.size()), -EINVAL);
	EXPECT_EQ(ep_pool_verify(p, "missing"), -ENOENT);
	EXPECT_EQ(ep_pool_remove_table(p, "t15"), -EPERM) << "a read-only handle cannot remove";
	EXPECT_GT(std::strlen(ep_errormsg()), 0u);
	EXPECT_EQ(ep_pool_info_get(p, nullptr), -EINVAL);
	EXPECT_EQ(ep_pool_list_tables(p, nullptr, 3, nullptr), -EINVAL);
	ep_pool_close(&p);
}

TEST_F(CApi, RemoveWithAWriterHandle)
{
	ep_pool *w = nullptr;
	ASSERT_EQ(ep_pool_open(&w, sp_->uri().c_str(), EP_OPEN_WRITE), 0) << ep_errormsg();
	EXPECT_EQ(ep_pool_remove_table(w, "missing"), -ENOENT);
	ASSERT_EQ(ep_pool_remove_table(w, "t15"), 0) << ep_errormsg();
	ep_table_info t;
	EXPECT_EQ(ep_pool_find_table(w, "t15", &t), -ENOENT);
	ep_pool_info info;
	ASSERT_EQ(ep_pool_info_get(w, &info), 0);
	EXPECT_EQ(info.generation, 4u);
	EXPECT_EQ(info.tables, 1u);
	EXPECT_EQ(info.used_bytes, 4ull << 20);
	ep_pool_close(&w);
	ep_pool *r = nullptr;
	ASSERT_EQ(ep_pool_open(&r, sp_->uri().c_str(), EP_OPEN_READONLY), 0);
	size_t n = 0;
	ASSERT_EQ(ep_pool_list_tables(r, nullptr, 0, &n), 0);
	EXPECT_EQ(n, 1u);
	ep_pool_close(&r);
}

TEST_F(CApi, VerifyFollowsTheZeroOrNegativeRule)
{
	// Flip bytes in both tables' data through a separate mapping.
	ep::TableInfo t15, t1;
	{
		auto r = openPool(sp_->uri(), false);
		auto s = r->snapshot();
		ASSERT_TRUE(s);
		t15 = *s->findTable("t15");
		t1 = *s->findTable("tiny/layer1");
	}
	ep_pool *p = nullptr;
	ASSERT_EQ(ep_pool_open(&p, sp_->uri().c_str(), EP_OPEN_READONLY), 0);
	size_t bad = 99;
	EXPECT_EQ(ep_pool_verify_tables(p, nullptr, &bad), 0);
	EXPECT_EQ(bad, 0u);
	EXPECT_STREQ(ep_errormsg(), "") << "a call that succeeds clears the message";

	pokeRandom(sp_->backingPath(), t15.dataOffset + 64 * 7, 16, 3);
	// Never a positive count: EP_E_CHECKSUM, the count through the out-parameter.
	EXPECT_EQ(ep_pool_verify(p, nullptr), EP_E_CHECKSUM);
	EXPECT_NE(std::string(ep_errormsg()).find("t15"), std::string::npos) << ep_errormsg();
	EXPECT_EQ(ep_pool_verify_tables(p, nullptr, &bad), EP_E_CHECKSUM);
	EXPECT_EQ(bad, 1u);
	EXPECT_EQ(ep_pool_verify_tables(p, "tiny/layer1", &bad), 0);
	EXPECT_EQ(bad, 0u);
	EXPECT_EQ(ep_pool_verify(p, "t15"), EP_E_CHECKSUM);
	bad = 99;
	EXPECT_EQ(ep_pool_verify_tables(p, "missing", &bad), -ENOENT);
	EXPECT_EQ(bad, 0u) << "no count when the check could not run";

	// Every bad table is named, and counted.
	pokeRandom(sp_->backingPath(), t1.dataOffset + 64 * 3, 16, 4);
	EXPECT_EQ(ep_pool_verify_tables(p, nullptr, &bad), EP_E_CHECKSUM);
	EXPECT_EQ(bad, 2u);
	std::string msg = ep_errormsg();
	EXPECT_NE(msg.find("t15"), std::string::npos) << msg;
	EXPECT_NE(msg.find("tiny/layer1"), std::string::npos) << msg;
	EXPECT_NE(msg.find("2 bad table"), std::string::npos) << msg;
	EXPECT_EQ(ep_pool_verify_tables(nullptr, nullptr, &bad), -EINVAL);

	// The C++ wrapper: an Error, and the count.
	ep::PoolHandle h;
	ASSERT_FALSE(ep::PoolHandle::open(sp_->uri(), h));
	size_t n = 0;
	ep::Error e = h.verify("", &n);
	EXPECT_EQ(e.code, EP_E_CHECKSUM);
	EXPECT_EQ(n, 2u);
	EXPECT_NE(e.message.find("t15"), std::string::npos) << e.message;
	ep_pool_close(&p);
}

// The one exception -> code mapping every C ABI entry point runs under, and the
// per-thread message it sets.
TEST(CApiGuard, ExceptionsMapToOneSetOfCodes)
{
	using ep::capi::cApiCall;
	EXPECT_EQ(cApiCall("f_ok", [] { return 0; }), 0);
	EXPECT_EQ(cApiCall("f_oom", []() -> int { throw std::bad_alloc(); }), -ENOMEM);
	EXPECT_NE(std::string(ep_errormsg()).find("f_oom: out of memory"), std::string::npos) << ep_errormsg();
	EXPECT_EQ(cApiCall("f_len", []() -> int { std::vector<int> v; v.reserve(v.max_size() + 1); return 0; }), -ENOMEM);
	EXPECT_EQ(cApiCall("f_sys", []() -> int { throw std::system_error(EACCES, std::generic_category(), "open x"); }),
		  -EACCES);
	EXPECT_NE(std::string(ep_errormsg()).find("f_sys: open x"), std::string::npos) << ep_errormsg();
	EXPECT_EQ(cApiCall("f_rt", []() -> int { throw std::runtime_error("boom"); }), -EIO);
	EXPECT_STREQ(ep_errormsg(), "f_rt: internal error: boom");
	EXPECT_EQ(cApiCall("f_int", []() -> int { throw 42; }), -EIO);
	EXPECT_STREQ(ep_errormsg(), "f_int: internal error: unknown exception");
	EXPECT_EQ(ep::capi::cApiCallOr("f_ptr", (void *)nullptr, []() -> void * { throw std::runtime_error("x"); }),
		  nullptr);
	EXPECT_EQ(cApiCall("f_report", [] { return ep::capi::report(ep::makeError(-ENOENT, "gone")); }), -ENOENT);
	EXPECT_STREQ(ep_errormsg(), "gone");
	EXPECT_EQ(cApiCall("f_clear", [] { return ep::capi::report(ep::Status::ok()); }), 0);
	EXPECT_STREQ(ep_errormsg(), "");
}

TEST(CApiGuard, MessagesArePerThread)
{
	const int kThreads = 8;
	std::atomic<int> wrong{0};
	std::vector<std::thread> ts;
	for (int i = 0; i < kThreads; i++)
		ts.emplace_back([i, &wrong] {
			std::string uri = "nope" + std::to_string(i) + ":x";
			for (int k = 0; k < 200; k++) {
				ep_pool *p = nullptr;
				if (ep_pool_open(&p, uri.c_str(), EP_OPEN_READONLY) != EP_E_URI)
					wrong++;
				if (std::string(ep_errormsg()).find("'nope" + std::to_string(i) + "'") == std::string::npos)
					wrong++;
			}
		});
	for (auto &t : ts)
		t.join();
	EXPECT_EQ(wrong.load(), 0);
}

TEST_F(CApi, CppWrappers)
{
	ep::PoolHandle h;
	EXPECT_FALSE(h.valid());
	ep::Error e = ep::PoolHandle::open("bogus:x", h);
	EXPECT_TRUE(e);
	EXPECT_EQ(e.code, EP_E_URI);
	EXPECT_FALSE(e.message.empty());
	ASSERT_FALSE(ep::PoolHandle::open(sp_->uri(), h)) << "open";
	ASSERT_TRUE(h.valid());
	std::vector<ep_table_info> tables;
	ASSERT_FALSE(h.tables(tables));
	EXPECT_EQ(tables.size(), 2u);
	ep_table_info t;
	ASSERT_FALSE(h.find("tiny/layer1", t));
	std::vector<uint64_t> rows = {3, 4};
	std::vector<std::byte> buf(128);
	ASSERT_FALSE(h.readRows("tiny/layer1", rows, buf));
	std::vector<uint8_t> want(64);
	ep::io::randomRow(cfg_.rowFormat, 1, 4, want.data());
	EXPECT_EQ(std::memcmp(buf.data() + 64, want.data(), 64), 0);
	rows[1] = t.rows;
	EXPECT_EQ(h.readRows("tiny/layer1", rows, buf).code, -ERANGE);
	EXPECT_FALSE(h.verify());
	ep::PoolHandle moved = std::move(h);
	EXPECT_FALSE(h.valid());
	EXPECT_TRUE(moved.valid());
	ep_pool_info info;
	EXPECT_FALSE(moved.info(info));
	EXPECT_EQ(info.tables, 2u);
	EXPECT_NE(std::string(ep_version()), "");
}
