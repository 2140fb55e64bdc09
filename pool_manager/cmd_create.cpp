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
	bool force = false, evenIfLive = false, json = false;
};

// Pool::create refuses leases below this (agents renew every max(10 ms, lease / 4)).
constexpr uint32_t kMinLeaseMs = 100;

int runCreate(const CreateArgs &a)
{
	// Every option is checked before anything is created or formatted.
	auto uri = parseRegionUri(a.uri);
	if (!uri)
		return fail(uri.status());
	CreateOptions o;
	if (!a.size.empty()) {
		auto sz = parseSize(a.size);
		if (!sz)
			return fail(sz.status());
		// Pools are whole 2 MiB units; never silently give a different size.
		if (*sz >= format::kMinPoolSize && *sz % format::kAlignUnit != 0) {
			uint64_t down = *sz / format::kAlignUnit * format::kAlignUnit;
			return fail("--size " + a.size + " (" + std::to_string(*sz) + " bytes) is not a multiple of 2 MiB: use " +
				    formatBytes(down) + " or " + formatBytes(down + format::kAlignUnit));
		}
		o.size = *sz;
	} else if (uri->kind != RegionKind::Dax) {
		return fail("--size is required for " + std::string(regionKindName(uri->kind)) + ": pools");
	}
	if (a.leaseMs < kMinLeaseMs)
		return fail("--lease-ms " + std::to_string(a.leaseMs) + " is too short: live hosts renew their lease every "
			    "max(10 ms, lease / 4), so it must be at least " + std::to_string(kMinLeaseMs) + " ms");
	char *end = nullptr;
	unsigned long mode = strtoul(a.mode.c_str(), &end, 8);
	if (a.mode.empty() || a.mode.find_first_not_of("01234567") != std::string::npos || !end || *end || mode > 0777)
		return fail("--mode must be octal permissions such as 0660, found '" + displayText(a.mode) + "'");
	o.mode = (uint32_t)mode;
	o.force = a.force;
	struct group *g = nullptr;
	if (!a.group.empty()) {
		if (uri->kind == RegionKind::Dax)
			return fail("--group applies to file: and emul: pools; set a dax device's group with udev rules");
		g = getgrnam(a.group.c_str());
		if (!g)
			return fail("--group: no group named '" + displayText(a.group) + "'");
	}
	if (a.force && !a.evenIfLive)
		if (Status s = refuseIfLiveHosts(a.uri, "format over"); !s)
			return fail(s);
	struct stat before;
	bool existed = uri->kind != RegionKind::Dax && stat(uri->path.c_str(), &before) == 0;
	if (Status s = Pool::create(a.uri, o, a.leaseMs); !s) {
		if (s.code() == -EEXIST)
			return fail(s.message() + " (use --force)");
		return fail(s);
	}
	if (g && chown(uri->path.c_str(), (uid_t)-1, g->gr_gid) != 0) {
		int e = errno;
		// Leave nothing behind that a re-run would have to --force over.
		if (!existed)
			(void)Region::destroy(*uri);
		return fail(errnoError(e, "chown " + uri->path + " to group " + displayText(a.group)));
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
	sub->add_option("--size", a->size,
			"Pool size with K/M/G/T suffix, a multiple of 2 MiB (dax: defaults to the whole device)");
	sub->add_option("--lease-ms", a->leaseMs,
			"Host lease period in milliseconds, at least " + std::to_string(kMinLeaseMs) +
				" (agents renew every max(10 ms, lease / 4))")
		->check(kNonNegativeInt)
		->capture_default_str();
	sub->add_option("--mode", a->mode, "Permissions of the backing file (octal)")->capture_default_str();
	sub->add_option("--group", a->group, "Group owning the backing file (agents in it may attach)");
	sub->add_flag("--force", a->force, "Format even if the region already holds a pool (refused while live hosts "
					 "hold slots, see --even-if-live)");
	sub->add_flag("--even-if-live", a->evenIfLive,
		      "With --force: format even while live hosts are attached (they fail on their next read)");
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runCreate(*a); });
}

} // namespace engrampool::cli
