// SPDX-License-Identifier: Apache-2.0
// cacheops.cpp - clwb / clflushopt / clflush selected at run time.
#include "util/cacheops.hpp"

#include <cstdint>
#include <cpuid.h>
#include <immintrin.h>

namespace engrampool {

namespace {

enum class Op { Clwb, Clflushopt, Clflush };

// CPUID leaf 7 EBX: bit 23 clflushopt, bit 24 clwb (read directly: not every
// compiler's __builtin_cpu_supports knows these names).
uint32_t leaf7Ebx()
{
	unsigned a, b, c, d;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	return b;
}

Op pickFlush()
{
	uint32_t b = leaf7Ebx();
	if (b & (1u << 24))
		return Op::Clwb;
	if (b & (1u << 23))
		return Op::Clflushopt;
	return Op::Clflush;
}

Op pickInvalidate()
{
	return (leaf7Ebx() & (1u << 23)) ? Op::Clflushopt : Op::Clflush;
}

const Op kFlush = pickFlush();
const Op kInvalidate = pickInvalidate();

__attribute__((target("clwb"))) void lineClwb(const void *p) { _mm_clwb(const_cast<void *>(p)); }
__attribute__((target("clflushopt"))) void lineClflushopt(const void *p) { _mm_clflushopt(const_cast<void *>(p)); }
void lineClflush(const void *p) { _mm_clflush(p); }

void forLines(const void *p, size_t len, Op op)
{
	if (len == 0)
		return;
	uintptr_t a = reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)(kCacheLine - 1);
	uintptr_t end = reinterpret_cast<uintptr_t>(p) + len;
	for (; a < end; a += kCacheLine) {
		const void *line = reinterpret_cast<const void *>(a);
		switch (op) {
		case Op::Clwb: lineClwb(line); break;
		case Op::Clflushopt: lineClflushopt(line); break;
		case Op::Clflush: lineClflush(line); break;
		}
	}
}

} // namespace

void flushLines(const void *p, size_t len) { forLines(p, len, kFlush); }

void invalidateLines(const void *p, size_t len)
{
	forLines(p, len, kInvalidate);
	_mm_mfence();
}

void storeFence() { _mm_sfence(); }

const char *flushInstruction()
{
	switch (kFlush) {
	case Op::Clwb: return "clwb";
	case Op::Clflushopt: return "clflushopt";
	default: return "clflush";
	}
}

} // namespace engrampool
