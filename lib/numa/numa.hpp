// SPDX-License-Identifier: Apache-2.0
// numa.hpp - NUMA in one place: which nodes can be used, binding memory, running
// threads on a node, the node of a page and of a PCI device (a GPU). libnuma
// (numa_libnuma.cpp) or its numa_none.cpp twin, picked by meson; numa_common.cpp
// (bus ids, sysfs) is built either way.
//
// A node argument < 0 always means "no placement" and is never an error. Errors name
// `what` (the caller's object: "device memory", "gather threads", "emul:pool0") and
// the node: -ENODEV for a node this machine does not have (or has without memory /
// CPUs), EP_E_UNSUPPORTED for a node other than 0 in a build without libnuma.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "util/status.hpp"

namespace engrampool::numa {

// True when libnuma is built in and the kernel has NUMA support; false means there is
// one node, 0, and binding or pinning to it does nothing.
bool available();
// Highest node number + 1 (1 without NUMA).
int nodeCount();

// What a caller puts on a node: memory (needs a node with memory) or threads (needs a
// node with CPUs; a CXL memory node usually has none).
enum class Need { Memory, Cpus };

// The one check every user makes before placing something on a node.
Status checkNode(int node, Need need, std::string_view what);
// Bind [p, p+len) (untouched memory, anonymous or a shared mapping) to node with
// MPOL_BIND, after checkNode(node, Need::Memory).
Status bindMemory(void *p, size_t len, int node, std::string_view what);
// Run the calling thread on node's CPUs, after checkNode(node, Need::Cpus).
Status runOnNode(int node, std::string_view what);
// Node holding the (mapped) page at p; -1 unknown.
int nodeOfAddress(const void *p);

// --- PCI devices (numa_common.cpp) ---------------------------------------------------
// "domain:bus:dev.fn" in the kernel's form ("0000:3b:00.0"): hex digits lower-cased,
// the domain (any width; CUDA gives 8 digits, none means 0) as at least 4 digits.
// Empty when id is not a PCI bus id.
std::string normalizePciBusId(std::string_view id);
// The node sysfs gives for the device with this bus id (exact match of the normalised
// id: <sysfsRoot>/bus/pci/devices/<id>/numa_node), -1 when unknown.
int pciDeviceNodeFromSysfs(std::string_view busId, const std::string &sysfsRoot = "/sys");
// The node to place memory and threads near the device on: the sysfs node when it is
// usable for memory here (checkNode), otherwise -1 (no placement).
int nodeOfPciDevice(std::string_view busId);

} // namespace engrampool::numa
