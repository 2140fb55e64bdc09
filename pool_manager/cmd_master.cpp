// SPDX-License-Identifier: Apache-2.0
// cmd_master.cpp - `engrampool master URI [--take]`: show or move pool mastership.
#include "cli.hpp"
#include "util/units.hpp"

namespace engrampool::cli {

namespace {
struct MasterArgs {
	std::string uri;
	bool take = false, json = false;
};

int runMaster(const MasterArgs &a)
{
	if (a.take)
		if (Status s = Pool::takeMaster(a.uri); !s)
			return fail(s);
	auto pool = openPool(a.uri, false);
	if (!pool)
		return fail(pool.status());
	auto m = (*pool)->master();
	if (!m)
		return fail(m.status());
	bool me = m->host == localHostId();
	if (a.json)
		printJson({{"master", uuidToString(m->host)}, {"hostname", m->hostname}, {"epoch", m->epoch},
			   {"this_host", me}});
	else
		printf("master %s (%s), epoch %llu%s\n", uuidToString(m->host).c_str(), displayText(m->hostname).c_str(),
		       (unsigned long long)m->epoch, me ? " - this host" : "");
	return 0;
}
} // namespace

void addMasterCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<MasterArgs>();
	CLI::App *sub = root.add_subcommand("master", "Show the pool master; --take makes this host the master");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	sub->add_flag("--take", a->take, "Take mastership (epoch+1); only when the old master is known dead");
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runMaster(*a); });
}

} // namespace engrampool::cli
