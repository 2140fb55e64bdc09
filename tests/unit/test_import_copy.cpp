// SPDX-License-Identifier: Apache-2.0
// test_import_copy.cpp - the import's parallel row copy (lib/pool/import_copy): the same
// bytes and checksum for any thread count and chunking, planes read directly or split
// from packed rows, the first failure in row order reported, progress in order.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#include "io/row_source.hpp"
#include "model/row_format.hpp"
#include "pool/import_copy.hpp"
#include "util/checksum.hpp"

using namespace engrampool;

namespace {

RowFormat fp8Format(uint32_t rowAlign = 0)
{
	RowFormat f;
	f.rowAlign = rowAlign;
	f.dtype = Dtype::Fp8E4M3;
	f.valuesPerRow = 64;
	f.scaleDtype = Dtype::E8M0;
	f.scaleBlock = 32;
	return f;
}

// The rows a random source yields, packed at the format's stride.
std::vector<uint8_t> expectedRows(const RowFormat &f, uint64_t rows, uint64_t seed)
{
	std::vector<uint8_t> v(rows * f.rowStride());
	for (uint64_t r = 0; r < rows; r++)
		io::randomRow(f, seed, r, v.data() + r * f.rowStride());
	return v;
}

// XXH3 of the rows packed without padding: what the catalog records for a planar table
// (and for a packed one whose rows have no padding).
uint64_t packedChecksum(const RowFormat &f, const std::vector<uint8_t> &rows)
{
	std::vector<uint8_t> tight;
	for (size_t r = 0; r < rows.size() / f.rowStride(); r++)
		tight.insert(tight.end(), rows.begin() + r * f.rowStride(), rows.begin() + r * f.rowStride() + f.rowBytes());
	return xxh3(tight.data(), tight.size());
}

// A source that can also write planes (like a safetensors checkpoint), and can be told
// to fail on the chunks that contain given rows. It counts readPlanes calls.
class PlaneSource : public io::RowSource {
public:
	PlaneSource(const RowFormat &f, uint64_t rows, uint64_t seed, bool planes)
		: f_(f), inner_(io::makeRandomSource(f, rows, seed)), rows_(rows), planes_(planes)
	{
	}
	uint64_t rows() const override { return rows_; }
	std::string describe() const override { return "plane test source"; }
	Status read(uint64_t first, uint64_t count, uint8_t *dst) override
	{
		if (Status s = failure(first, count); !s)
			return s;
		return inner_->read(first, count, dst);
	}
	bool readsPlanes() const override { return planes_; }
	Status readPlanes(uint64_t first, uint64_t count, uint8_t *values, uint8_t *scales) override
	{
		planeCalls++;
		if (Status s = failure(first, count); !s)
			return s;
		std::vector<uint8_t> buf(count * f_.rowStride());
		EP_TRY(inner_->read(first, count, buf.data()));
		for (uint64_t i = 0; i < count; i++) {
			std::memcpy(values + i * f_.valueBytes(), buf.data() + i * f_.rowStride(), f_.valueBytes());
			std::memcpy(scales + i * f_.scaleBytes(), buf.data() + i * f_.rowStride() + f_.valueBytes(),
				    f_.scaleBytes());
		}
		return Status::ok();
	}
	std::vector<uint64_t> failAt;
	std::atomic<int> planeCalls{0};

private:
	Status failure(uint64_t first, uint64_t count) const
	{
		for (uint64_t r : failAt)
			if (r >= first && r < first + count)
				return makeError(-EIO, "bad sector at row " + std::to_string(r));
		return Status::ok();
	}
	RowFormat f_;
	std::unique_ptr<io::RowSource> inner_;
	uint64_t rows_;
	bool planes_;
};

struct Planes {
	std::vector<uint8_t> values, scales;
};

Planes splitPlanes(const RowFormat &f, const std::vector<uint8_t> &rows)
{
	Planes p;
	for (size_t r = 0; r < rows.size() / f.rowStride(); r++) {
		const uint8_t *row = rows.data() + r * f.rowStride();
		p.values.insert(p.values.end(), row, row + f.valueBytes());
		p.scales.insert(p.scales.end(), row + f.valueBytes(), row + f.rowBytes());
	}
	return p;
}

} // namespace

TEST(ImportCopy, PackedRowsAndChecksumDoNotDependOnThreadsOrChunks)
{
	for (uint32_t align : {0u, 128u}) { // 66-byte rows, tight and padded to 128
	RowFormat f = fp8Format(align);
	SCOPED_TRACE("row stride " + std::to_string(f.rowStride()));
	const uint64_t rows = 1009;
	auto want = expectedRows(f, rows, 11);
	uint64_t wantSum = xxh3(want.data(), want.size()); // packed: every byte, padding included
	if (align == 0)
		EXPECT_EQ(wantSum, packedChecksum(f, want));
	for (uint32_t threads : {1u, 2u, 3u, 4u})
		for (uint64_t chunk : {1ull, 7ull, 64ull, 5000ull}) {
			auto src = io::makeRandomSource(f, rows, 11);
			std::vector<uint8_t> dst(rows * f.rowStride(), 0xEE);
			std::mutex mu;
			std::vector<std::pair<const void *, size_t>> persisted;
			std::vector<uint64_t> progress;
			ImportCopy c;
			c.format = &f;
			c.rows = rows;
			c.data = dst.data();
			c.stride = f.rowStride();
			c.threads = threads;
			c.chunkRows = chunk;
			c.progress = [&](uint64_t done) { progress.push_back(done); };
			c.persist = [&](const void *p, size_t len) {
				std::lock_guard<std::mutex> g(mu);
				persisted.emplace_back(p, len);
			};
			auto sum = copyImportRows(c, *src);
			ASSERT_TRUE(sum) << sum.status().message();
			EXPECT_EQ(*sum, wantSum) << threads << " threads, chunks of " << chunk;
			EXPECT_EQ(dst, want) << threads << " threads, chunks of " << chunk;
			// Every byte persisted exactly once.
			size_t bytes = 0;
			for (auto &[p, len] : persisted)
				bytes += len;
			EXPECT_EQ(bytes, dst.size());
			// Progress in row order, ending at every row.
			ASSERT_FALSE(progress.empty());
			EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
			EXPECT_EQ(progress.back(), rows);
		}
	}
}

TEST(ImportCopy, PlanarFromPackedSourcesAndFromPlaneSourcesAgree)
{
	RowFormat f = fp8Format();
	const uint64_t rows = 777;
	auto want = expectedRows(f, rows, 3);
	Planes wantPlanes = splitPlanes(f, want);
	uint64_t wantSum = packedChecksum(f, want);
	for (bool direct : {false, true})
		for (uint32_t threads : {1u, 4u}) {
			PlaneSource src(f, rows, 3, direct);
			Planes got{std::vector<uint8_t>(rows * f.valueBytes(), 0xEE),
				   std::vector<uint8_t>(rows * f.scaleBytes(), 0xEE)};
			ImportCopy c;
			c.format = &f;
			c.rows = rows;
			c.planar = true;
			c.data = got.values.data();
			c.scales = got.scales.data();
			c.threads = threads;
			c.chunkRows = 50;
			auto sum = copyImportRows(c, src);
			ASSERT_TRUE(sum) << sum.status().message();
			EXPECT_EQ(*sum, wantSum) << "the checksum is the packed rows', in either layout";
			EXPECT_EQ(got.values, wantPlanes.values);
			EXPECT_EQ(got.scales, wantPlanes.scales);
			EXPECT_EQ(src.planeCalls.load() > 0, direct) << "planes are read directly only when the source can";
		}
}

TEST(ImportCopy, TheFirstFailureInRowOrderIsReported)
{
	RowFormat f = fp8Format();
	const uint64_t rows = 2000;
	for (uint32_t threads : {1u, 2u, 4u}) {
		auto src = std::make_unique<PlaneSource>(f, rows, 9, false);
		src->failAt = {1500, 430}; // two bad chunks; row 430 comes first
		std::vector<uint8_t> dst(rows * f.rowStride());
		std::vector<uint64_t> progress;
		ImportCopy c;
		c.format = &f;
		c.rows = rows;
		c.data = dst.data();
		c.stride = f.rowStride();
		c.threads = threads;
		c.chunkRows = 10;
		c.progress = [&](uint64_t done) { progress.push_back(done); };
		auto sum = copyImportRows(c, *src);
		ASSERT_FALSE(sum);
		EXPECT_EQ(sum.code(), -EIO);
		EXPECT_NE(sum.status().message().find("row 430"), std::string::npos) << sum.status().message();
		// Nothing past the failing chunk was reported done.
		for (uint64_t d : progress)
			EXPECT_LE(d, 430u);
	}
}

TEST(ImportCopy, AnEmptyCopyIsTheEmptyChecksum)
{
	RowFormat f = fp8Format();
	auto src = io::makeRandomSource(f, 0, 1);
	ImportCopy c;
	c.format = &f;
	c.rows = 0;
	c.stride = f.rowStride();
	auto sum = copyImportRows(c, *src);
	ASSERT_TRUE(sum);
	EXPECT_EQ(*sum, xxh3(nullptr, 0));
}
