// SPDX-License-Identifier: Apache-2.0
// checksum.cpp - CRC32C (hardware instruction with a bitwise fallback) and XXH3 wrappers.
#include "util/checksum.hpp"

#include <cstring>
#include <nmmintrin.h>
#include <xxhash.h>

namespace engrampool {

namespace {

__attribute__((target("sse4.2"))) uint32_t crc32cHw(const uint8_t *p, size_t len, uint32_t crc)
{
	uint64_t c = crc;
	while (len >= 8) {
		uint64_t v;
		std::memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = static_cast<uint32_t>(c);
	while (len--)
		c32 = _mm_crc32_u8(c32, *p++);
	return c32;
}

uint32_t crc32cSw(const uint8_t *p, size_t len, uint32_t crc)
{
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return crc;
}

const bool kHaveSse42 = __builtin_cpu_supports("sse4.2");

} // namespace

uint32_t crc32c(const void *data, size_t len, uint32_t seed)
{
	const auto *p = static_cast<const uint8_t *>(data);
	uint32_t crc = ~seed;
	crc = kHaveSse42 ? crc32cHw(p, len, crc) : crc32cSw(p, len, crc);
	return ~crc;
}

uint64_t xxh3(const void *data, size_t len, uint64_t seed)
{
	return XXH3_64bits_withSeed(data, len, seed);
}

Xxh3Stream::Xxh3Stream() : state_(XXH3_createState())
{
	XXH3_64bits_reset(static_cast<XXH3_state_t *>(state_));
}

Xxh3Stream::~Xxh3Stream()
{
	XXH3_freeState(static_cast<XXH3_state_t *>(state_));
}

void Xxh3Stream::update(const void *data, size_t len)
{
	XXH3_64bits_update(static_cast<XXH3_state_t *>(state_), data, len);
}

uint64_t Xxh3Stream::digest() const
{
	return XXH3_64bits_digest(static_cast<XXH3_state_t *>(state_));
}

} // namespace engrampool
