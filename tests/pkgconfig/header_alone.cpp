// SPDX-License-Identifier: Apache-2.0
// header_alone.cpp - the public C++ header compiles alone (C++20) and its wrappers work.
#include <engrampool/engrampool.hpp>

#include <cstdio>
#include <cstring>

int main()
{
	engrampool::PoolHandle h;
	engrampool::Error e = engrampool::PoolHandle::open("file:/nonexistent/engrampool/pool", h);
	if (!e || e.code != -ENOENT || h.valid()) {
		std::fprintf(stderr, "expected -ENOENT, got %d (%s)\n", e.code, e.message.c_str());
		return 1;
	}
	if (e.message.find("/nonexistent/engrampool/pool") == std::string::npos) {
		std::fprintf(stderr, "message does not name the path: %s\n", e.message.c_str());
		return 1;
	}
	engrampool::PoolHandle moved = std::move(h);
	std::printf("ok: %s\n", e.message.c_str());
	return moved.valid() ? 1 : 0;
}
