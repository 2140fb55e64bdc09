// SPDX-License-Identifier: Apache-2.0
// cacheops.hpp - write back and invalidate CPU cache lines over shared pool memory.
//
// Hosts on a CXL pool are not assumed coherent: a writer flushes what it wrote,
// a reader invalidates what it is about to read. The instruction (clwb,
// clflushopt, clflush) is chosen once at start-up.
#pragma once

#include <cstddef>

namespace engrampool {

inline constexpr size_t kCacheLine = 64;

// Write back [p, p+len) to memory (lines may stay cached). Follow with storeFence().
void flushLines(const void *p, size_t len);
// Write back and drop [p, p+len) from the cache so the next load comes from memory.
void invalidateLines(const void *p, size_t len);
void storeFence();
// Name of the instruction flushLines uses ("clwb", "clflushopt", "clflush").
const char *flushInstruction();

} // namespace engrampool
