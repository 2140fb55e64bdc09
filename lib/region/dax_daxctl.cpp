// SPDX-License-Identifier: Apache-2.0
// dax_daxctl.cpp - find a /dev/daxX.Y with libdaxctl: size, alignment, mode.
#include <daxctl/libdaxctl.h>
#include <sys/stat.h>

#include "region/backends.hpp"

namespace engrampool::backend {

Result<DaxInfo> probeDax(const std::string &path)
{
	std::string devname = path.substr(path.rfind('/') + 1);
	daxctl_ctx *ctx = nullptr;
	if (int rc = daxctl_new(&ctx); rc < 0)
		return makeError(rc, "libdaxctl: cannot create a context");
	DaxInfo info;
	bool found = false;
	daxctl_region *region;
	daxctl_region_foreach(ctx, region)
	{
		daxctl_dev *dev;
		daxctl_dev_foreach(region, dev)
		{
			const char *name = daxctl_dev_get_devname(dev);
			if (!name || devname != name)
				continue;
			found = true;
			info.devname = name;
			info.regionId = daxctl_region_get_id(region);
			info.size = daxctl_dev_get_size(dev);
			info.align = daxctl_dev_get_align(dev);
			if (info.align == 0)
				info.align = daxctl_region_get_align(region);
			info.targetNode = daxctl_dev_get_target_node(dev);
			daxctl_memory *mem = daxctl_dev_get_memory(dev);
			info.systemRam = mem != nullptr && daxctl_dev_is_enabled(dev);
			break;
		}
		if (found)
			break;
	}
	daxctl_unref(ctx);
	if (!found) {
		struct stat st;
		if (stat(path.c_str(), &st) != 0)
			return makeError(-ENOENT, "device DAX " + path + " does not exist (see 'daxctl list')");
		return makeError(-ENODEV, "libdaxctl does not list " + devname + " as a device DAX instance");
	}
	return info;
}

} // namespace engrampool::backend
