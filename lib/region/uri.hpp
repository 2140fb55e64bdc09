// SPDX-License-Identifier: Apache-2.0
// uri.hpp - region URIs: file:/path, dax:/dev/daxX.Y, emul:NAME?node=N&latency_ns=..
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "util/status.hpp"

namespace engrampool {

enum class RegionKind { File, Dax, Emul };

// Page size of a new emul: pool (?pages=): Auto = 2 MiB huge pages where they can be had,
// else 4 KiB with a warning; Small = 4 KiB (/dev/shm); Huge = huge pages or an error.
enum class PagePref { Auto, Small, Huge };

// The CXL cost model of an emulated region (applied by the gather engine; all zero
// = no modelling, no cost). Parsed here so the URI is the single place to set it.
struct CostModel {
	uint32_t latencyNs = 0;    // added latency per dependent access
	double linkGbps = 0;       // per-host link bandwidth cap, GB/s (0 = none)
	double switchGbps = 0;     // shared switch bandwidth cap, GB/s (0 = none)
	// Cache lines one gather worker keeps in flight at most (memory-level parallelism):
	// a core tracks a bounded number of outstanding misses (L1 fill buffers, L2 miss
	// queue: 16 / 48 on Golden Cove, 24 / 64 on Zen 4), however far ahead software
	// prefetches. 0 = no per-core bound (rows in flight = prefetch distance x workers).
	uint32_t mlpLines = 32;
	// The switch every host of the pool shares (emul: the pool name): the gather engine
	// applies switchGbps through the shared model /dev/shm/ep-switch.pool.<switchName>.
	std::string switchName;
	bool enabled() const { return latencyNs || linkGbps > 0 || switchGbps > 0; }
};

struct RegionUri {
	RegionKind kind = RegionKind::File;
	std::string text;          // the URI as given
	std::string path;          // file: and dax: path; emul: /dev/shm/engrampool.NAME until a Region
	                           // resolves where it lives (Region::uri().path: maybe a hugetlbfs file)
	std::string name;          // emul: the pool name
	int node = -1;             // emul: NUMA node (-1 = no binding)
	// emul: non-coherence checker. Read-only attachments see pool metadata through a
	// private snapshot refreshed only by Region::invalidate(), like a host whose cache
	// is not coherent with the writer's: a missing invalidate shows up as stale data.
	bool noncoherent = false;
	PagePref pages = PagePref::Auto; // emul: create only (open finds the pool wherever it is)
	CostModel cost;
	std::map<std::string, std::string> params;
};

Result<RegionUri> parseRegionUri(const std::string &uri);
const char *regionKindName(RegionKind k);

} // namespace engrampool
