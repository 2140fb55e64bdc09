// SPDX-License-Identifier: Apache-2.0
// hugepages.cpp - hugetlbfs discovery, emul: pool paths and page sizes.
#include "region/hugepages.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

namespace engrampool::hugepages {

namespace {

// "pagesize=2M" of a mount's options, in bytes (0 = not given: the default size).
uint64_t mountPageSize(const std::string &opts)
{
	std::stringstream ss(opts);
	for (std::string o; std::getline(ss, o, ',');) {
		if (o.rfind("pagesize=", 0) != 0)
			continue;
		char *end = nullptr;
		uint64_t v = strtoull(o.c_str() + 9, &end, 10);
		switch (end && *end ? *end : ' ') {
		case 'K': case 'k': v <<= 10; break;
		case 'M': case 'm': v <<= 20; break;
		case 'G': case 'g': v <<= 30; break;
		default: break;
		}
		return v;
	}
	return 0;
}

// /proc/mounts escapes blanks in paths as \040 (octal).
std::string unescapeMount(const std::string &s)
{
	std::string out;
	for (size_t i = 0; i < s.size(); i++) {
		if (s[i] == '\\' && i + 3 < s.size() && std::isdigit((unsigned char)s[i + 1])) {
			out += (char)std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8);
			i += 3;
		} else {
			out += s[i];
		}
	}
	return out;
}

} // namespace

std::vector<std::string> hugetlbDirs()
{
	if (const char *e = getenv("EP_HUGETLBFS"); e && *e) {
		if (std::strcmp(e, "none") == 0)
			return {};
		return {e};
	}
	std::vector<std::pair<int, std::string>> found; // rank, dir
	std::ifstream f("/proc/mounts");
	for (std::string line; std::getline(f, line);) {
		std::stringstream ss(line);
		std::string dev, dir, type, opts;
		if (!(ss >> dev >> dir >> type >> opts) || type != "hugetlbfs")
			continue;
		uint64_t ps = mountPageSize(opts);
		// 2 MiB pages first (the devdax alignment the pool format is built around).
		int rank = ps == 0 || ps == (2ull << 20) ? 0 : 1;
		found.emplace_back(rank, unescapeMount(dir));
	}
	std::stable_sort(found.begin(), found.end(), [](auto &a, auto &b) { return a.first < b.first; });
	std::vector<std::string> out;
	for (auto &[rank, dir] : found)
		if (std::find(out.begin(), out.end(), dir) == out.end())
			out.push_back(dir);
	return out;
}

std::vector<std::string> emulCandidates(const std::string &name)
{
	std::vector<std::string> out;
	for (auto &d : hugetlbDirs())
		out.push_back(d + "/" + kFilePrefix + name);
	out.push_back(std::string(kShmDir) + "/" + kFilePrefix + name);
	return out;
}

std::string locateEmul(const std::string &name)
{
	for (auto &p : emulCandidates(name)) {
		struct stat st;
		if (lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode))
			return p;
	}
	return "";
}

bool onHugetlbfs(int fd)
{
	struct statfs fs;
	return fstatfs(fd, &fs) == 0 && (unsigned long)fs.f_type == (unsigned long)HUGETLBFS_MAGIC;
}

bool pathOnHugetlbfs(const std::string &path)
{
	struct statfs fs;
	return statfs(path.c_str(), &fs) == 0 && (unsigned long)fs.f_type == (unsigned long)HUGETLBFS_MAGIC;
}

uint64_t pageSizeOfFd(int fd)
{
	struct statfs fs;
	if (fstatfs(fd, &fs) == 0 && (unsigned long)fs.f_type == (unsigned long)HUGETLBFS_MAGIC && fs.f_bsize > 0)
		return (uint64_t)fs.f_bsize;
	return (uint64_t)sysconf(_SC_PAGESIZE);
}

std::string pageSizeText(uint64_t b)
{
	if (b >= (1ull << 30) && b % (1ull << 30) == 0)
		return std::to_string(b >> 30) + " GiB";
	if (b >= (1ull << 20) && b % (1ull << 20) == 0)
		return std::to_string(b >> 20) + " MiB";
	if (b >= 1024 && b % 1024 == 0)
		return std::to_string(b >> 10) + " KiB";
	return std::to_string(b) + " B";
}

Figures readFigures()
{
	Figures g;
	std::ifstream f("/proc/meminfo");
	for (std::string line; std::getline(f, line);) {
		auto colon = line.find(':');
		if (colon == std::string::npos)
			continue;
		std::string key = line.substr(0, colon);
		uint64_t v = strtoull(line.c_str() + colon + 1, nullptr, 10);
		if (key == "Hugepagesize")
			g.pageSize = v * 1024;
		else if (key == "HugePages_Total")
			g.total = v;
		else if (key == "HugePages_Free")
			g.free = v;
		else if (key == "HugePages_Rsvd")
			g.reserved = v;
	}
	return g;
}

} // namespace engrampool::hugepages
