// SPDX-License-Identifier: Apache-2.0
// uri.hpp - region URIs: file:/path, dax:/dev/daxX.Y, emul:NAME?node=N&latency_ns=..
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "util/status.hpp"

namespace engrampool {

enum class RegionKind { File, Dax, Emul };

// The CXL cost model of an emulated region (applied by the gather engine; all zero
// = no modelling, no cost). Parsed here so the URI is the single place to set it.
struct CostModel {
	uint32_t latencyNs = 0;    // added latency per dependent access
	double linkGbps = 0;       // per-host link bandwidth cap, GB/s (0 = none)
	double switchGbps = 0;     // shared switch bandwidth cap, GB/s (0 = none)
	// The switch every host of the pool shares (emul: the pool name): the gather engine
	// applies switchGbps through the shared model /dev/shm/ep-switch.pool.<switchName>.
	std::string switchName;
	bool enabled() const { return latencyNs || linkGbps > 0 || switchGbps > 0; }
};

struct RegionUri {
	RegionKind kind = RegionKind::File;
	std::string text;          // the URI as given
	std::string path;          // file: and dax: path; emul: the /dev/shm object path
	std::string name;          // emul: the pool name
	int node = -1;             // emul: NUMA node (-1 = no binding)
	// emul: non-coherence checker. Read-only attachments see pool metadata through a
	// private snapshot refreshed only by Region::invalidate(), like a host whose cache
	// is not coherent with the writer's: a missing invalidate shows up as stale data.
	bool noncoherent = false;
	CostModel cost;
	std::map<std::string, std::string> params;
};

Result<RegionUri> parseRegionUri(const std::string &uri);
const char *regionKindName(RegionKind k);

} // namespace engrampool
