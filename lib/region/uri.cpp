// SPDX-License-Identifier: Apache-2.0
// uri.cpp - parse region URIs and their query parameters.
#include "region/uri.hpp"

#include <cctype>
#include <charconv>
#include <cstdlib>

namespace engrampool {

namespace {

Status bad(const std::string &uri, const std::string &why)
{
	return makeError(EP_E_URI, "invalid pool URI '" + uri + "': " + why);
}

bool parseUint(const std::string &s, uint64_t &out)
{
	auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
	return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool parseDouble(const std::string &s, double &out)
{
	char *end = nullptr;
	out = strtod(s.c_str(), &end);
	return !s.empty() && end == s.c_str() + s.size() && out >= 0;
}

} // namespace

const char *regionKindName(RegionKind k)
{
	switch (k) {
	case RegionKind::File: return "file";
	case RegionKind::Dax: return "dax";
	case RegionKind::Emul: return "emul";
	}
	return "?";
}

Result<RegionUri> parseRegionUri(const std::string &uri)
{
	RegionUri r;
	r.text = uri;
	auto colon = uri.find(':');
	if (colon == std::string::npos)
		return bad(uri, "expected SCHEME:..., with scheme file, dax or emul");
	std::string scheme = uri.substr(0, colon);
	std::string rest = uri.substr(colon + 1);
	std::string query;
	if (auto q = rest.find('?'); q != std::string::npos) {
		query = rest.substr(q + 1);
		rest = rest.substr(0, q);
	}
	// Query parameters: k=v&k=v
	size_t pos = 0;
	while (pos < query.size()) {
		size_t amp = query.find('&', pos);
		std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
		pos = amp == std::string::npos ? query.size() : amp + 1;
		if (kv.empty())
			continue;
		auto eq = kv.find('=');
		if (eq == std::string::npos || eq == 0)
			return bad(uri, "query parameter '" + kv + "' is not key=value");
		r.params[kv.substr(0, eq)] = kv.substr(eq + 1);
	}

	if (scheme == "file") {
		r.kind = RegionKind::File;
		if (rest.rfind("//", 0) == 0)
			rest = rest.substr(2); // file:///x -> /x
		if (rest.empty())
			return bad(uri, "file: needs a path, e.g. file:/dev/shm/pool");
		r.path = rest;
	} else if (scheme == "dax") {
		r.kind = RegionKind::Dax;
		if (rest.rfind("/dev/dax", 0) != 0)
			return bad(uri, "dax: needs a device DAX path such as dax:/dev/dax0.0");
		r.path = rest;
	} else if (scheme == "emul") {
		r.kind = RegionKind::Emul;
		if (rest.empty() || rest.size() > 64)
			return bad(uri, "emul: needs a name of 1..64 characters, e.g. emul:pool0?node=0");
		for (char c : rest)
			if (!(std::isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.'))
				return bad(uri, "emul: name may only use letters, digits, '-', '_' and '.'");
		r.name = rest;
		r.path = "/dev/shm/engrampool." + rest;
	} else {
		return bad(uri, "unknown scheme '" + scheme + "' (use file:, dax: or emul:)");
	}

	for (auto &[k, v] : r.params) {
		uint64_t u;
		double d;
		if (k == "node") {
			if (r.kind != RegionKind::Emul)
				return bad(uri, "'node' applies to emul: URIs only");
			if (!parseUint(v, u) || u > 4095)
				return bad(uri, "node must be a NUMA node number, found '" + v + "'");
			r.node = (int)u;
		} else if (k == "noncoherent") {
			if (r.kind != RegionKind::Emul)
				return bad(uri, "'noncoherent' applies to emul: URIs only");
			if (v != "0" && v != "1")
				return bad(uri, "noncoherent must be 0 or 1");
			r.noncoherent = v == "1";
		} else if (k == "pages") {
			if (r.kind != RegionKind::Emul)
				return bad(uri, "'pages' applies to emul: URIs only (a file: pool takes the pages of its filesystem)");
			if (v == "auto")
				r.pages = PagePref::Auto;
			else if (v == "4k" || v == "4K")
				r.pages = PagePref::Small;
			else if (v == "2m" || v == "2M" || v == "huge")
				r.pages = PagePref::Huge;
			else
				return bad(uri, "pages must be auto, 4k or 2m, found '" + v + "'");
		} else if (k == "latency_ns") {
			if (!parseUint(v, u) || u > 100000)
				return bad(uri, "latency_ns must be an integer in [0, 100000]");
			r.cost.latencyNs = (uint32_t)u;
		} else if (k == "link_gbps" || k == "bw_gbps") {
			if (!parseDouble(v, d))
				return bad(uri, k + " must be a non-negative number");
			r.cost.linkGbps = d;
		} else if (k == "mlp_lines") {
			if (r.kind != RegionKind::Emul)
				return bad(uri, "cost-model parameters apply to emul: URIs only");
			if (!parseUint(v, u) || u > 4096)
				return bad(uri, "mlp_lines must be an integer in [0, 4096] (0 = no per-core bound)");
			r.cost.mlpLines = (uint32_t)u;
		} else if (k == "switch_gbps") {
			if (!parseDouble(v, d))
				return bad(uri, "switch_gbps must be a non-negative number");
			r.cost.switchGbps = d;
			r.cost.switchName = r.name;
		} else {
			return bad(uri, "unknown parameter '" + k + "' (known: node, noncoherent, pages, latency_ns, link_gbps, switch_gbps, mlp_lines)");
		}
	}
	if (r.cost.enabled() && r.kind != RegionKind::Emul)
		return bad(uri, "cost-model parameters apply to emul: URIs only");
	return r;
}

} // namespace engrampool
