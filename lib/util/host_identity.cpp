// SPDX-License-Identifier: Apache-2.0
// host_identity.cpp - host ids from EP_HOST_ID or /etc/machine-id; random UUIDs.
#include "util/host_identity.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sys/random.h>
#include <unistd.h>
#include <cstring>

#include "util/checksum.hpp"

namespace engrampool {

bool parseUuid(const std::string &in, Uuid &out)
{
	std::string s;
	for (char c : in)
		if (c != '-')
			s += c;
	if (s.size() != 32)
		return false;
	for (int i = 0; i < 16; i++) {
		unsigned v;
		if (sscanf(s.substr(2 * i, 2).c_str(), "%2x", &v) != 1)
			return false;
		out[i] = (uint8_t)v;
	}
	return true;
}

std::string uuidToString(const Uuid &u)
{
	char buf[40];
	snprintf(buf, sizeof(buf), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	return buf;
}

std::string localHostName()
{
	char buf[256] = {};
	if (gethostname(buf, sizeof(buf) - 1) != 0)
		return "unknown";
	return buf;
}

Uuid localHostId()
{
	Uuid id{};
	if (const char *env = getenv("EP_HOST_ID"); env && *env) {
		if (parseUuid(env, id))
			return id;
		// Any other string names a host too: hash it.
		uint64_t a = xxh3(env, strlen(env), 1), b = xxh3(env, strlen(env), 2);
		memcpy(id.data(), &a, 8);
		memcpy(id.data() + 8, &b, 8);
		return id;
	}
	std::ifstream f("/etc/machine-id");
	std::string mid;
	if (f && std::getline(f, mid) && parseUuid(mid, id))
		return id;
	std::string h = localHostName();
	uint64_t a = xxh3(h.data(), h.size(), 1), b = xxh3(h.data(), h.size(), 2);
	memcpy(id.data(), &a, 8);
	memcpy(id.data() + 8, &b, 8);
	return id;
}

Uuid randomUuid()
{
	Uuid u{};
	if (getrandom(u.data(), u.size(), 0) != (ssize_t)u.size()) {
		std::random_device rd;
		for (auto &b : u)
			b = (uint8_t)rd();
	}
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	return u;
}

} // namespace engrampool
