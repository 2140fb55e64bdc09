// SPDX-License-Identifier: Apache-2.0
// cpu_supports.h - clang < 15 lacks __builtin_cpu_supports("clwb"/"clflushopt"); answer via CPUID (fuzz build only).
#pragma once

#include <cpuid.h>
#include <string.h>

static inline int ep_fuzz_cpu_supports(const char *feature)
{
	unsigned a = 0, b = 0, c = 0, d = 0;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	if (strcmp(feature, "clwb") == 0)
		return (b >> 24) & 1;
	if (strcmp(feature, "clflushopt") == 0)
		return (b >> 23) & 1;
	return 0;
}

// Only force-included into files that ask for nothing but clwb/clflushopt.
#define __builtin_cpu_supports(feature) ep_fuzz_cpu_supports(feature)
