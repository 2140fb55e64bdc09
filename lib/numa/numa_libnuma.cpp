// SPDX-License-Identifier: Apache-2.0
// numa_libnuma.cpp - lib/numa with libnuma: node checks, mbind, thread placement.
#include <numa.h>
#include <numaif.h>

#include <string>

#include "numa/numa.hpp"

namespace engrampool::numa {

namespace {

// "0-1,3": the nodes set in mask (for messages).
std::string nodeList(const struct bitmask *mask, int maxNode)
{
	std::string s;
	for (int n = 0; n <= maxNode; n++) {
		if (!numa_bitmask_isbitset(mask, (unsigned)n))
			continue;
		int end = n;
		while (end + 1 <= maxNode && numa_bitmask_isbitset(mask, (unsigned)(end + 1)))
			end++;
		if (!s.empty())
			s += ",";
		s += std::to_string(n);
		if (end > n)
			s += "-" + std::to_string(end);
		n = end;
	}
	return s.empty() ? "none" : s;
}

bool nodeHasCpus(int node)
{
	struct bitmask *cpus = numa_allocate_cpumask();
	bool any = numa_node_to_cpus(node, cpus) == 0 && numa_bitmask_weight(cpus) > 0;
	numa_free_cpumask(cpus);
	return any;
}

std::string prefix(std::string_view what, int node)
{
	return std::string(what) + ": NUMA node " + std::to_string(node);
}

} // namespace

bool available()
{
	return numa_available() >= 0;
}

int nodeCount()
{
	return available() ? numa_max_node() + 1 : 1;
}

Status checkNode(int node, Need need, std::string_view what)
{
	if (node < 0)
		return Status::ok();
	if (!available()) {
		if (node == 0)
			return Status::ok();
		return makeError(-ENODEV, prefix(what, node) + ": this machine has no NUMA support (only node 0 exists)");
	}
	const int maxNode = numa_max_node();
	if (need == Need::Memory) {
		// numa_all_nodes_ptr: the nodes with memory this process may use.
		if (node > maxNode || !numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)node))
			return makeError(-ENODEV, prefix(what, node) + " does not exist or has no memory (nodes with memory: " +
							  nodeList(numa_all_nodes_ptr, maxNode) + ", see 'numactl -H')");
	} else if (node > maxNode || !nodeHasCpus(node)) {
		struct bitmask *withCpus = numa_allocate_nodemask();
		for (int n = 0; n <= maxNode; n++)
			if (nodeHasCpus(n))
				numa_bitmask_setbit(withCpus, (unsigned)n);
		std::string list = nodeList(withCpus, maxNode);
		numa_free_nodemask(withCpus);
		return makeError(-ENODEV, prefix(what, node) + " does not exist or has no CPUs (nodes with CPUs: " + list +
						  ", see 'numactl -H')");
	}
	return Status::ok();
}

Status bindMemory(void *p, size_t len, int node, std::string_view what)
{
	EP_TRY(checkNode(node, Need::Memory, what));
	if (node < 0 || !available())
		return Status::ok();
	struct bitmask *mask = numa_allocate_nodemask();
	numa_bitmask_setbit(mask, (unsigned)node);
	long rc = mbind(p, len, MPOL_BIND, mask->maskp, mask->size + 1, 0);
	int err = errno;
	numa_free_nodemask(mask);
	if (rc != 0)
		return errnoError(err, prefix(what, node) + ": mbind");
	return Status::ok();
}

Status runOnNode(int node, std::string_view what)
{
	EP_TRY(checkNode(node, Need::Cpus, what));
	if (node < 0 || !available())
		return Status::ok();
	if (numa_run_on_node(node) != 0)
		return errnoError(errno, prefix(what, node) + ": cannot run threads there");
	return Status::ok();
}

int nodeOfAddress(const void *p)
{
	if (!available())
		return 0;
	int status = -1;
	void *pages[1] = {const_cast<void *>(p)};
	if (move_pages(0, 1, pages, nullptr, &status, 0) != 0 || status < 0)
		return -1;
	return status;
}

int nodeOfPciDevice(std::string_view busId)
{
	int node = pciDeviceNodeFromSysfs(busId);
	if (node < 0 || !checkNode(node, Need::Memory, "PCI device").isOk())
		return -1;
	return node;
}

} // namespace engrampool::numa
