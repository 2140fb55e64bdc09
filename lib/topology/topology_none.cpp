// SPDX-License-Identifier: Apache-2.0
// topology_none.cpp - built without hwloc: no topology report.
#include "topology/topology.hpp"

namespace engrampool {

Topology readTopology()
{
	Topology t;
	t.source = "unavailable (built without hwloc)";
	return t;
}

} // namespace engrampool
