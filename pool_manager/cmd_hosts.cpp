// SPDX-License-Identifier: Apache-2.0
// cmd_hosts.cpp - `engrampool hosts URI`: the host table (attached hosts, heartbeats, leases).
#include "cli.hpp"
#include "util/units.hpp"

namespace engrampool::cli {

namespace {
struct HostsArgs {
	std::string uri;
	bool json = false;
};

int runHosts(const HostsArgs &a)
{
	auto pool = openPool(a.uri, false);
	if (!pool)
		return fail(pool.status());
	auto hs = (*pool)->hosts();
	uint64_t now = nowRealtimeNs();
	nlohmann::json arr = nlohmann::json::array();
	if (!a.json)
		printf("%-5s %-36s %-20s %8s %-8s %10s %12s\n", "SLOT", "HOST", "HOSTNAME", "PID", "STATE", "GEN", "HEARTBEAT");
	for (auto &h : hs) {
		std::string state = h.corrupt ? "corrupt" : h.state == 2 ? "detached" : h.live ? "live" : "expired";
		double age = h.heartbeatNs && now > h.heartbeatNs ? (now - h.heartbeatNs) / 1e9 : 0.0;
		if (a.json) {
			arr.push_back({{"slot", h.index}, {"host", uuidToString(h.host)}, {"hostname", h.hostname},
				       {"pid", h.pid}, {"state", state}, {"observed_generation", h.observedGen},
				       {"heartbeat_age_s", age}, {"lease_ms", h.leaseMs}});
		} else {
			printf("%-5u %-36s %-20s %8u %-8s %10llu %10.1fs\n", h.index, uuidToString(h.host).c_str(),
			       displayText(h.hostname).c_str(), h.pid, state.c_str(), (unsigned long long)h.observedGen, age);
		}
	}
	if (a.json)
		printJson({{"hosts", arr}});
	else
		printf("%zu host slot(s) in use\n", hs.size());
	return 0;
}
} // namespace

void addHostsCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<HostsArgs>();
	CLI::App *sub = root.add_subcommand("hosts", "Show the hosts attached to the pool");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runHosts(*a); });
}

} // namespace engrampool::cli
