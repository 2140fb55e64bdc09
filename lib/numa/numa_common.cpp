// SPDX-License-Identifier: Apache-2.0
// numa_common.cpp - the parts of lib/numa that need no libnuma: PCI bus ids and sysfs.
#include <cctype>
#include <cstdio>
#include <fstream>

#include "numa/numa.hpp"

namespace engrampool::numa {

namespace {

bool parseHex(std::string_view s, size_t maxDigits, unsigned long *out)
{
	if (s.empty() || s.size() > maxDigits)
		return false;
	unsigned long v = 0;
	for (char c : s) {
		if (!std::isxdigit((unsigned char)c))
			return false;
		v = v * 16 + (unsigned long)(std::isdigit((unsigned char)c) ? c - '0' : std::tolower((unsigned char)c) - 'a' + 10);
	}
	*out = v;
	return true;
}

} // namespace

std::string normalizePciBusId(std::string_view id)
{
	// [domain:]bus:dev.fn
	size_t dot = id.rfind('.');
	size_t c2 = id.rfind(':', dot);
	if (dot == std::string_view::npos || c2 == std::string_view::npos || c2 == 0)
		return {};
	size_t c1 = id.rfind(':', c2 - 1);
	std::string_view dom = c1 == std::string_view::npos ? std::string_view("0") : id.substr(0, c1);
	std::string_view bus = id.substr(c1 == std::string_view::npos ? 0 : c1 + 1, c2 - (c1 == std::string_view::npos ? 0 : c1 + 1));
	std::string_view dev = id.substr(c2 + 1, dot - c2 - 1);
	std::string_view fn = id.substr(dot + 1);
	unsigned long d, b, v, f;
	if (!parseHex(dom, 8, &d) || !parseHex(bus, 2, &b) || !parseHex(dev, 2, &v) || !parseHex(fn, 1, &f) || v > 0x1f ||
	    f > 7)
		return {};
	char buf[32];
	snprintf(buf, sizeof(buf), "%04lx:%02lx:%02lx.%lx", d, b, v, f);
	return buf;
}

int pciDeviceNodeFromSysfs(std::string_view busId, const std::string &sysfsRoot)
{
	std::string id = normalizePciBusId(busId);
	if (id.empty())
		return -1;
	std::ifstream in(sysfsRoot + "/bus/pci/devices/" + id + "/numa_node");
	int node = -1;
	if (!(in >> node) || node < 0)
		return -1;
	return node;
}

} // namespace engrampool::numa
