// SPDX-License-Identifier: Apache-2.0
// cmd_destroy.cpp - `engrampool destroy URI`: remove an emul: or file: pool's backing object.
#include "cli.hpp"

namespace engrampool::cli {

namespace {
struct DestroyArgs {
	std::string uri;
	bool evenIfLive = false, json = false;
};

int runDestroy(const DestroyArgs &a)
{
	auto uri = parseRegionUri(a.uri);
	if (!uri)
		return fail(uri.status());
	// Only pools: never unlink an arbitrary file that a typo named.
	if (auto p = openPool(a.uri, false); !p)
		return fail(p.status());
	if (!a.evenIfLive)
		if (Status s = refuseIfLiveHosts(a.uri, "destroy"); !s)
			return fail(s);
	if (Status s = Region::destroy(*uri); !s)
		return fail(s);
	if (a.json)
		printJson({{"uri", a.uri}, {"destroyed", true}});
	else
		printf("destroyed %s\n", a.uri.c_str());
	return 0;
}
} // namespace

void addDestroyCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<DestroyArgs>();
	CLI::App *sub = root.add_subcommand("destroy", "Delete a file: or emul: pool's backing object");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	sub->add_flag("--even-if-live", a->evenIfLive,
		      "Destroy even while live hosts hold slots (refused otherwise; they fail on their next read)");
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runDestroy(*a); });
}

} // namespace engrampool::cli
