// SPDX-License-Identifier: Apache-2.0
// import_copy.cpp - parallel row copy of an import, checksummed in row order.
#include "pool/import_copy.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "util/checksum.hpp"

namespace engrampool {

namespace {

// Rows per chunk: a few MiB keeps every thread's preads long enough for disk speed
// and the checksum thread close behind the copies.
constexpr uint64_t kChunkBytes = 8ull << 20;
constexpr uint32_t kMaxThreads = 4;
// Planar rows are re-packed for the checksum through a buffer this size (stays in L1/L2).
constexpr uint64_t kHashBlockRows = 64;

enum ChunkState : int { kPending = 0, kDone = 1, kFailed = 2, kSkipped = 3 };

struct Chunk {
	std::atomic<int> state{kPending};
	Status error;
};

} // namespace

Result<uint64_t> copyImportRows(const ImportCopy &c, io::RowSource &src)
{
	const RowFormat &f = *c.format;
	const uint32_t vb = f.valueBytes(), sb = f.scaleBytes(), rb = f.rowBytes();
	const uint64_t srcStride = f.rowStride();
	const bool direct = c.planar && src.readsPlanes();
	const uint64_t chunkRows =
		c.chunkRows ? c.chunkRows : std::max<uint64_t>(1, kChunkBytes / (c.planar ? srcStride : c.stride));
	const uint64_t nChunks = (c.rows + chunkRows - 1) / chunkRows;
	if (nChunks == 0)
		return Xxh3Stream().digest();
	uint32_t threads = c.threads ? c.threads : std::min(kMaxThreads, std::max(1u, std::thread::hardware_concurrency()));
	threads = (uint32_t)std::max<uint64_t>(1, std::min<uint64_t>(threads, nChunks));

	std::unique_ptr<Chunk[]> chunks(new Chunk[nChunks]);
	std::atomic<uint64_t> next{0};
	std::atomic<bool> stop{false};

	auto work = [&]() {
		std::unique_ptr<uint8_t[]> bounce;
		if (c.planar && !direct)
			bounce.reset(new uint8_t[chunkRows * srcStride]);
		for (;;) {
			uint64_t k = next.fetch_add(1, std::memory_order_relaxed);
			if (k >= nChunks)
				return;
			Chunk &ch = chunks[k];
			if (stop.load(std::memory_order_acquire)) {
				ch.state.store(kSkipped, std::memory_order_release);
				ch.state.notify_one();
				return;
			}
			uint64_t r = k * chunkRows, n = std::min(chunkRows, c.rows - r);
			Status s;
			if (!c.planar) {
				s = src.read(r, n, c.data + r * c.stride);
				if (s && c.persist)
					c.persist(c.data + r * c.stride, n * c.stride);
			} else {
				uint8_t *values = c.data + r * vb, *scales = c.scales + r * sb;
				if (direct) {
					s = src.readPlanes(r, n, values, scales);
				} else if ((s = src.read(r, n, bounce.get()))) {
					for (uint64_t i = 0; i < n; i++) {
						const uint8_t *row = bounce.get() + i * srcStride;
						std::memcpy(values + i * vb, row, vb);
						std::memcpy(scales + i * sb, row + vb, sb);
					}
				}
				if (s && c.persist) {
					c.persist(values, n * vb);
					c.persist(scales, n * sb);
				}
			}
			if (!s) {
				ch.error = std::move(s);
				stop.store(true, std::memory_order_release);
			}
			ch.state.store(ch.error ? kDone : kFailed, std::memory_order_release);
			ch.state.notify_one();
		}
	};

	std::vector<std::thread> pool;
	pool.reserve(threads);
	for (uint32_t i = 0; i < threads; i++)
		pool.emplace_back(work);
	auto joinAll = [&]() {
		for (auto &t : pool)
			if (t.joinable())
				t.join();
	};

	// This thread: the checksum, in row order, right behind the copies.
	Xxh3Stream hash;
	std::unique_ptr<uint8_t[]> packed;
	if (c.planar)
		packed.reset(new uint8_t[kHashBlockRows * rb]);
	for (uint64_t k = 0; k < nChunks; k++) {
		Chunk &ch = chunks[k];
		int st;
		while ((st = ch.state.load(std::memory_order_acquire)) == kPending)
			ch.state.wait(kPending, std::memory_order_acquire);
		if (st != kDone) {
			stop.store(true, std::memory_order_release);
			joinAll();
			// The first failure in row order (a skipped chunk only means another failed).
			for (uint64_t j = 0; j < nChunks; j++)
				if (chunks[j].state.load(std::memory_order_acquire) == kFailed)
					return std::move(chunks[j].error);
			return makeError(-EIO, "import copy stopped without an error (internal)");
		}
		uint64_t r = k * chunkRows, n = std::min(chunkRows, c.rows - r);
		if (!c.planar) {
			hash.update(c.data + r * c.stride, n * c.stride);
		} else {
			for (uint64_t i = 0; i < n; i += kHashBlockRows) {
				uint64_t m = std::min(kHashBlockRows, n - i);
				const uint8_t *values = c.data + (r + i) * vb, *scales = c.scales + (r + i) * sb;
				for (uint64_t j = 0; j < m; j++) {
					std::memcpy(packed.get() + j * rb, values + j * vb, vb);
					std::memcpy(packed.get() + j * rb + vb, scales + j * sb, sb);
				}
				hash.update(packed.get(), m * rb);
			}
		}
		if (c.progress)
			c.progress(r + n);
	}
	joinAll();
	return hash.digest();
}

} // namespace engrampool
