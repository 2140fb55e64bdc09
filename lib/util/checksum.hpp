// SPDX-License-Identifier: Apache-2.0
// checksum.hpp - CRC32C for metadata records, XXH3 for table data (libxxhash).
#pragma once

#include <cstddef>
#include <cstdint>

namespace engrampool {

// CRC32C (Castagnoli); SSE4.2 instruction when the CPU has it.
uint32_t crc32c(const void *data, size_t len, uint32_t seed = 0);

// XXH3-64 of a buffer (table data, vocab maps, fingerprints).
uint64_t xxh3(const void *data, size_t len, uint64_t seed = 0);

// Streaming XXH3-64 for data written in chunks.
class Xxh3Stream {
public:
	Xxh3Stream();
	~Xxh3Stream();
	Xxh3Stream(const Xxh3Stream &) = delete;
	Xxh3Stream &operator=(const Xxh3Stream &) = delete;
	void update(const void *data, size_t len);
	uint64_t digest() const;

private:
	void *state_;
};

} // namespace engrampool
