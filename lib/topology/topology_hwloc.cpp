// SPDX-License-Identifier: Apache-2.0
// topology_hwloc.cpp - read NUMA nodes and GPU/CXL PCI locality with hwloc.
#include <hwloc.h>

#include <cstdio>

#include "topology/topology.hpp"

namespace engrampool {

namespace {

std::string bitmapList(hwloc_const_bitmap_t b)
{
	char *s = nullptr;
	hwloc_bitmap_list_asprintf(&s, b);
	std::string out = s ? s : "";
	free(s);
	return out;
}

} // namespace

Topology readTopology()
{
	Topology t;
	hwloc_topology_t topo;
	if (hwloc_topology_init(&topo) != 0)
		return t;
	hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
	if (hwloc_topology_load(topo) != 0) {
		hwloc_topology_destroy(topo);
		return t;
	}
	t.available = true;
	unsigned api = hwloc_get_api_version();
	char ver[32];
	snprintf(ver, sizeof(ver), "hwloc %u.%u.%u", api >> 16, (api >> 8) & 0xff, api & 0xff);
	t.source = ver;
	t.packages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
	t.cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
	t.pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
	int nn = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
	for (int i = 0; i < nn; i++) {
		hwloc_obj_t o = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, i);
		NumaNodeInfo n;
		n.os_index = (int)o->os_index;
		n.totalBytes = o->attr ? o->attr->numanode.local_memory : 0;
		n.cpus = o->cpuset ? bitmapList(o->cpuset) : "";
		t.nodes.push_back(n);
	}
	for (hwloc_obj_t o = hwloc_get_next_pcidev(topo, nullptr); o; o = hwloc_get_next_pcidev(topo, o)) {
		uint32_t cls = o->attr->pcidev.class_id;
		std::string kind;
		if ((cls >> 8) == 0x03)
			kind = "gpu"; // display controllers: VGA 0x0300, 3D 0x0302
		else if (cls == 0x0502)
			kind = "cxl"; // CXL memory device
		else
			continue;
		PciDeviceInfo d;
		char bus[32];
		snprintf(bus, sizeof(bus), "%04x:%02x:%02x.%01x", o->attr->pcidev.domain, o->attr->pcidev.bus,
			 o->attr->pcidev.dev, o->attr->pcidev.func);
		d.busId = bus;
		d.vendor = o->attr->pcidev.vendor_id;
		d.device = o->attr->pcidev.device_id;
		d.classId = cls;
		d.kind = kind;
		const char *nm = hwloc_obj_get_info_by_name(o, "PCIDevice");
		d.name = nm ? nm : "";
		hwloc_obj_t parent = hwloc_get_non_io_ancestor_obj(topo, o);
		if (parent && parent->nodeset) {
			int idx = hwloc_bitmap_first(parent->nodeset);
			if (idx >= 0 && hwloc_bitmap_weight(parent->nodeset) == 1)
				d.numaNode = idx;
		}
		t.devices.push_back(d);
	}
	hwloc_topology_destroy(topo);
	return t;
}

} // namespace engrampool
