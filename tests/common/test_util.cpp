// SPDX-License-Identifier: Apache-2.0
// test_util.cpp - temp dirs, data paths, unique names, command runner.
#include "test_util.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sys/wait.h>
#include <unistd.h>

namespace eptest {

TempDir::TempDir()
{
	const char *base = getenv("TMPDIR");
	std::string tmpl = std::string(base && *base ? base : "/tmp") + "/eptest.XXXXXX";
	char *p = mkdtemp(tmpl.data());
	path_ = p ? p : "/tmp";
}

TempDir::~TempDir()
{
	std::error_code ec;
	if (path_ != "/tmp")
		std::filesystem::remove_all(path_, ec);
}

std::string dataPath(const std::string &name)
{
	const char *d = getenv("EP_TEST_DATA");
	return std::string(d ? d : "tests/data") + "/" + name;
}

std::string uniqueName(const std::string &prefix)
{
	static std::atomic<int> n{0};
	return prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

std::string buildRoot()
{
	const char *d = getenv("EP_BUILD_ROOT");
	return d ? d : ".";
}

std::string sourceRoot()
{
	const char *d = getenv("EP_SOURCE_ROOT");
	return d ? d : ".";
}

int runCommand(const std::string &cmd, std::string *out, bool mergeStderr)
{
	std::string full = cmd + (mergeStderr ? " 2>&1" : "");
	FILE *f = popen(full.c_str(), "r");
	if (!f)
		return -1;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (out)
			out->append(buf, n);
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

} // namespace eptest
