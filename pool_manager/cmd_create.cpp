// SPDX-License-Identifier: Apache-2.0
// cmd_create.cpp - `engrampool create URI --size SIZE`: format a region as a pool.
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.hpp"
#include "format/layout.hpp"
#include "util/units.hpp"

namespace engrampool::cli {

namespace {

struct CreateArgs {
	std::string uri, size, group, mode = "0660";
	uint32_t leaseMs = 10000;
	bool force = false, json = false;
};

int runCreate(const CreateArgs &a)
{
	auto uri = parseRegionUri(a.uri);
	if (!uri)
		return fail(uri.status());
	CreateOptions o;
	if (!a.size.empty()) {
		auto sz = parseSize(a.size);
		if (!sz)
			return fail(sz.status());
		o.size = *sz;
	} else if (uri->kind != RegionKind::Dax) {
		return fail("--size is required for " + std::string(regionKindName(uri->kind)) + ": pools");
	}
	char *end = nullptr;
	unsigned long mode = strtoul(a.mode.c_str(), &end, 8);
	if (!end || *end || mode > 0777)
		return fail("--mode must be octal permissions such as 0660");
	o.mode = (uint32_t)mode;
	o.force = a.force;
	if (Status s = Pool::create(a.uri, o, a.leaseMs); !s) {
		if (s.code() == -EEXIST)
			return fail(s.message() + " (use --force)");
		return fail(s);
	}
	if (!a.group.empty() && uri->kind != RegionKind::Dax) {
		struct group *g = getgrnam(a.group.c_str());
		if (!g)
			return fail("--group: no group named '" + a.group + "'");
		if (chown(uri->path.c_str(), (uid_t)-1, g->gr_gid) != 0)
			return fail(errnoError(errno, "chown " + uri->path));
	}
	auto p = openPool(a.uri, false);
	if (!p)
		return fail(p.status());
	const auto &sb = (*p)->superblock();
	if (a.json) {
		printJson({{"uri", a.uri},
			   {"uuid", uuidToString(*reinterpret_cast<const Uuid *>(sb.poolUuid))},
			   {"size", sb.poolSize},
			   {"data_bytes", sb.dataBytes},
			   {"generation", 1}});
	} else {
		printf("created pool %s: %s (%s for data), uuid %s\n", a.uri.c_str(), formatBytes(sb.poolSize).c_str(),
		       formatBytes(sb.dataBytes).c_str(), uuidToString(*reinterpret_cast<const Uuid *>(sb.poolUuid)).c_str());
	}
	return 0;
}

} // namespace

void addCreateCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<CreateArgs>();
	CLI::App *sub = root.add_subcommand("create", "Format a region as an empty pool (this host becomes its master)");
	sub->add_option("URI", a->uri, "file:/path, dax:/dev/daxX.Y or emul:NAME?node=N")->required();
	sub->add_option("--size", a->size, "Pool size with K/M/G/T suffix (dax: defaults to the whole device)");
	sub->add_option("--lease-ms", a->leaseMs, "Host lease period in milliseconds")->capture_default_str();
	sub->add_option("--mode", a->mode, "Permissions of the backing file (octal)")->capture_default_str();
	sub->add_option("--group", a->group, "Group owning the backing file (agents in it may attach)");
	sub->add_flag("--force", a->force, "Format even if the region already holds a pool");
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runCreate(*a); });
}

} // namespace engrampool::cli
