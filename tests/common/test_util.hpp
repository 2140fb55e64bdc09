// SPDX-License-Identifier: Apache-2.0
// test_util.hpp - helpers shared by the tests: temp dirs, data paths, unique names.
#pragma once

#include <string>

namespace eptest {

// A fresh directory under $TMPDIR (or /tmp), removed by the destructor.
class TempDir {
public:
	TempDir();
	~TempDir();
	TempDir(const TempDir &) = delete;
	TempDir &operator=(const TempDir &) = delete;
	const std::string &path() const { return path_; }
	std::string file(const std::string &name) const { return path_ + "/" + name; }

private:
	std::string path_;
};

// $EP_TEST_DATA/name (tests/data in the source tree).
std::string dataPath(const std::string &name);
// A name unique to this process and call, for shared-memory pools.
std::string uniqueName(const std::string &prefix);
// Directory with built binaries ($EP_BUILD_ROOT).
std::string buildRoot();
std::string sourceRoot();
// Run a shell command, capture stdout (+stderr when mergeStderr), return exit status.
int runCommand(const std::string &cmd, std::string *out = nullptr, bool mergeStderr = true);

} // namespace eptest
