// SPDX-License-Identifier: Apache-2.0
// cmd_stat.cpp - `engrampool stat URI`: pool geometry, usage, master, region and topology.
#include <algorithm>
#include "cli.hpp"
#include "device/cuda.hpp"
#include "ep_config.h"
#include "region/hugepages.hpp"
#include "topology/topology.hpp"
#include "util/cacheops.hpp"
#include "util/units.hpp"

namespace engrampool::cli {

namespace {
struct StatArgs {
	std::string uri;
	bool json = false;
};

int runStat(const StatArgs &a)
{
	auto pool = openPool(a.uri, false);
	if (!pool)
		return fail(pool.status());
	const Pool &p = **pool;
	auto s = p.snapshot();
	if (!s)
		return fail(s.status());
	auto m = p.master();
	const auto &sb = p.superblock();
	const Region &r = p.region();
	auto hosts = p.hosts();
	size_t live = 0;
	for (auto &h : hosts)
		live += h.live;
	Topology topo = readTopology();
	cuda::Probe gpu = cuda::probe();
	int node = r.residentNode(sb.dataOffset);

	nlohmann::json region = {{"kind", regionKindName(r.uri().kind)},
				 {"path", r.uri().path},
				 {"mapped_bytes", r.size()},
				 {"page_size", r.pageSize()},
				 {"mapper", r.mapping().mapper},
				 {"byte_granular", r.mapping().byteGranular},
				 {"flush", flushInstruction()},
				 {"numa_node_of_data", node}};
	if (r.uri().kind == RegionKind::Emul) {
		region["bound_node"] = r.uri().node;
		region["cost_model"] = {{"latency_ns", r.uri().cost.latencyNs},
					{"link_gbps", r.uri().cost.linkGbps},
					{"switch_gbps", r.uri().cost.switchGbps},
					{"mlp_lines", r.uri().cost.mlpLines}};
	}
	if (r.uri().kind == RegionKind::Dax)
		region["dax"] = {{"device", r.dax().devname}, {"region", r.dax().regionId}, {"size", r.dax().size},
				 {"align", r.dax().align}, {"target_node", r.dax().targetNode}, {"mode", "devdax"}};
	nlohmann::json nodes = nlohmann::json::array();
	for (auto &n : topo.nodes)
		nodes.push_back({{"node", n.os_index}, {"bytes", n.totalBytes}, {"cpus", n.cpus}});
	nlohmann::json devs = nlohmann::json::array();
	for (auto &d : topo.devices)
		devs.push_back({{"pci", d.busId}, {"kind", d.kind}, {"vendor", d.vendor}, {"device", d.device},
				{"name", d.name}, {"numa_node", d.numaNode}});
	nlohmann::json gpus = nlohmann::json::array();
	for (auto &d : gpu.devices)
		gpus.push_back({{"index", d.index}, {"name", d.name}, {"pci", d.pciBusId}, {"bytes", d.totalBytes}});

	size_t planar = std::count_if(s->tables.begin(), s->tables.end(), [](const TableInfo &t) { return t.planar(); });
	nlohmann::json maps = nlohmann::json::array();
	for (auto &mr : s->models)
		maps.push_back({{"model", mr.name},
				{"stored", mr.tokenMapStored()},
				{"entries", mr.tokenMapEntries()},
				{"bytes", mr.tokenMapEntries() * sizeof(int64_t)},
				{"identity", mr.body.vocabMapHash == 0}});
	if (a.json) {
		printJson({{"uri", a.uri},
			   {"uuid", uuidToString(*reinterpret_cast<const Uuid *>(sb.poolUuid))},
			   {"format", std::to_string(sb.major) + "." + std::to_string(sb.minor)},
			   {"size", sb.poolSize},
			   {"align_unit", sb.alignUnit},
			   {"data_offset", sb.dataOffset},
			   {"data_bytes", sb.dataBytes},
			   {"used_bytes", s->usedBytes},
			   {"free_bytes", sb.dataBytes - s->usedBytes},
			   {"generation", s->generation},
			   {"tables", s->tables.size()},
			   {"layouts", {{"packed", s->tables.size() - planar}, {"planar", planar}}},
			   {"models", s->models.size()},
			   {"token_maps", maps},
			   {"pending_reclaim", s->pendingReclaim},
			   {"catalog_slots", sb.catalogSlots},
			   {"catalog_free", s->freeSlots},
			   {"host_slots", sb.hostSlots},
			   {"hosts_live", live},
			   {"lease_ms", sb.leaseMs},
			   {"master", m ? uuidToString(m->host) : ""},
			   {"master_hostname", m ? m->hostname : ""},
			   {"master_epoch", m ? m->epoch : 0},
			   {"region", region},
			   {"topology", {{"source", topo.source}, {"numa_nodes", nodes}, {"pci_devices", devs},
					 {"cores", topo.cores}, {"pus", topo.pus}}},
			   {"cuda", {{"built", gpu.built}, {"usable", gpu.usable}, {"reason", gpu.reason}, {"devices", gpus}}}});
		return 0;
	}
	printf("pool        %s\n", a.uri.c_str());
	printf("uuid        %s   format %u.%u\n", uuidToString(*reinterpret_cast<const Uuid *>(sb.poolUuid)).c_str(), sb.major,
	       sb.minor);
	printf("size        %s, data %s, used %s, free %s (2 MiB extents)\n", formatBytes(sb.poolSize).c_str(),
	       formatBytes(sb.dataBytes).c_str(), formatBytes(s->usedBytes).c_str(),
	       formatBytes(sb.dataBytes - s->usedBytes).c_str());
	printf("generation  %llu   tables %zu (%zu planar)   models %zu   awaiting reclaim %u   catalog %u/%u free\n",
	       (unsigned long long)s->generation, s->tables.size(), planar, s->models.size(), s->pendingReclaim,
	       s->freeSlots, sb.catalogSlots);
	for (auto &mr : s->models) {
		std::string what = mr.tokenMapStored()
					   ? "token map stored: " + std::to_string(mr.tokenMapEntries()) + " ids, " +
						     formatBytes(mr.tokenMapEntries() * sizeof(int64_t))
				   : mr.body.vocabMapHash == 0 ? "no token map (identity vocabulary)"
							       : "token map NOT stored (published by a format 1.0 build)";
		printf("model       %s  fingerprint %s, %s\n", displayText(mr.name).c_str(),
		       fingerprintHex(mr.fingerprint).c_str(), what.c_str());
	}
	if (m)
		printf("master      %s (%s) epoch %llu\n", uuidToString(m->host).c_str(), displayText(m->hostname).c_str(),
		       (unsigned long long)m->epoch);
	printf("hosts       %zu live of %zu slots in use (lease %u ms)\n", live, hosts.size(), sb.leaseMs);
	printf("region      %s %s, mapped with %s (%s), pages %s, flush %s, data on NUMA node %d\n",
	       regionKindName(r.uri().kind), r.uri().path.c_str(), r.mapping().mapper.c_str(),
	       r.mapping().byteGranular ? "byte-granular" : "page-granular", hugepages::pageSizeText(r.pageSize()).c_str(),
	       flushInstruction(), node);
	if (r.uri().kind == RegionKind::Dax)
		printf("dax region  %s in region %d, %s, align %s, mode devdax\n", r.dax().devname.c_str(), r.dax().regionId,
		       formatBytes(r.dax().size).c_str(), formatBytes(r.dax().align).c_str());
	printf("topology    %s: %d cores, %d PUs\n", topo.source.c_str(), topo.cores, topo.pus);
	for (auto &n : topo.nodes)
		printf("  node %d   %s, cpus %s\n", n.os_index, formatBytes(n.totalBytes).c_str(), n.cpus.c_str());
	for (auto &d : topo.devices)
		printf("  %-4s %s %s (NUMA node %d)\n", d.kind.c_str(), d.busId.c_str(), d.name.c_str(), d.numaNode);
	if (gpu.usable)
		for (auto &d : gpu.devices)
			printf("  cuda %d  %s %s, %s\n", d.index, d.pciBusId.c_str(), d.name.c_str(), formatBytes(d.totalBytes).c_str());
	else
		printf("  cuda: %s\n", gpu.reason.c_str());
	return 0;
}
} // namespace

void addStatCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<StatArgs>();
	CLI::App *sub = root.add_subcommand("stat", "Show the pool's geometry, usage, master, region and topology");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runStat(*a); });
}

} // namespace engrampool::cli
