// SPDX-License-Identifier: Apache-2.0
// units.cpp - size parsing/printing and clock helpers.
#include "util/units.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace engrampool {

Result<uint64_t> parseSize(std::string_view text)
{
	std::string t(text);
	size_t i = 0;
	while (i < t.size() && (std::isdigit((unsigned char)t[i]) || t[i] == '.'))
		i++;
	if (i == 0)
		return errorf(-EINVAL, "invalid size '%s': expected a number with an optional K/M/G/T suffix", t.c_str());
	double num = 0;
	auto [ptr, ec] = std::from_chars(t.data(), t.data() + i, num);
	if (ec != std::errc() || ptr != t.data() + i)
		return errorf(-EINVAL, "invalid size '%s'", t.c_str());
	std::string suf = t.substr(i);
	for (auto &c : suf)
		c = (char)std::toupper((unsigned char)c);
	double mul = 1;
	if (suf.empty() || suf == "B")
		mul = 1;
	else if (suf == "K" || suf == "KB" || suf == "KIB")
		mul = 1024.0;
	else if (suf == "M" || suf == "MB" || suf == "MIB")
		mul = 1024.0 * 1024;
	else if (suf == "G" || suf == "GB" || suf == "GIB")
		mul = 1024.0 * 1024 * 1024;
	else if (suf == "T" || suf == "TB" || suf == "TIB")
		mul = 1024.0 * 1024 * 1024 * 1024;
	else
		return errorf(-EINVAL, "invalid size suffix in '%s' (use K, M, G or T)", t.c_str());
	double v = num * mul;
	if (!(v >= 0) || v > 1.8e19)
		return errorf(-ERANGE, "size '%s' out of range", t.c_str());
	return static_cast<uint64_t>(std::llround(v));
}

std::string formatBytes(uint64_t b)
{
	const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	char buf[64];
	if (u == 0)
		snprintf(buf, sizeof(buf), "%llu B", (unsigned long long)b);
	else
		snprintf(buf, sizeof(buf), "%.2f %s", v, units[u]);
	return buf;
}

uint64_t nowRealtimeNs()
{
	timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t nowMonotonicNs()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

} // namespace engrampool
