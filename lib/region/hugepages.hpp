// SPDX-License-Identifier: Apache-2.0
// hugepages.hpp - where emul: pools live, and which page size backs a mapping.
//
// A devdax device is mapped with 2 MiB (or 1 GiB) pages; an emulated pool in 4 KiB
// tmpfs pages costs a TLB miss per random row on top of the cache miss. So an emul:
// pool is created as a file on a hugetlbfs mount (engrampool.NAME in, e.g.,
// /dev/hugepages), which any process opens by the pool's name like the /dev/shm object
// it replaces. Where no huge page can be had (no mount, no free pages, no permission)
// the pool goes to /dev/shm/engrampool.NAME with 4 KiB pages and a one-line warning.
//
// Search order for a name (create refuses a name found anywhere): the hugetlbfs
// directories below, then /dev/shm. Directories: $EP_HUGETLBFS when set (a directory;
// "none" = no hugetlbfs at all, which forces the 4 KiB path), else every hugetlbfs mount
// of /proc/mounts, 2 MiB mounts first.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace engrampool::hugepages {

inline constexpr const char *kShmDir = "/dev/shm";
inline constexpr const char *kFilePrefix = "engrampool.";

// Hugetlbfs directories to create emul pools in, in preference order.
std::vector<std::string> hugetlbDirs();
// Every path an emul pool NAME may live at, in search order (hugetlbfs dirs, /dev/shm).
std::vector<std::string> emulCandidates(const std::string &name);
// The path emul pool NAME lives at now, or "" when it exists nowhere.
std::string locateEmul(const std::string &name);

// True when fd / path is on hugetlbfs.
bool onHugetlbfs(int fd);
bool pathOnHugetlbfs(const std::string &path);
// Page size backing a shared mapping of fd: the huge page size on hugetlbfs, else the
// base page size (tmpfs THP is not counted: it is best-effort and off on most hosts).
uint64_t pageSizeOfFd(int fd);
// "2 MiB", "4 KiB", "1 GiB".
std::string pageSizeText(uint64_t bytes);

// System huge page figures (/proc/meminfo): default huge page size and free / total pages.
struct Figures {
	uint64_t pageSize = 0;
	uint64_t total = 0;
	uint64_t free = 0;
	uint64_t reserved = 0;   // HugePages_Rsvd: promised to mappings, not yet faulted
};
Figures readFigures();

} // namespace engrampool::hugepages
