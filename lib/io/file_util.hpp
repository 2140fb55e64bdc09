// SPDX-License-Identifier: Apache-2.0
// file_util.hpp - private file helpers: an owned fd, full preads, capped whole-file reads, safe output files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "util/status.hpp"

namespace engrampool::io {

// Move-only owner of a read-only file descriptor.
class FileFd {
public:
	FileFd() = default;
	explicit FileFd(int fd) : fd_(fd) {}
	~FileFd();
	FileFd(FileFd &&o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
	FileFd &operator=(FileFd &&o) noexcept;
	FileFd(const FileFd &) = delete;
	FileFd &operator=(const FileFd &) = delete;
	int get() const { return fd_; }
	bool valid() const { return fd_ >= 0; }

private:
	int fd_ = -1;
};

// Open an input file for reading. Only regular files and block devices: a FIFO, a
// character device (/dev/zero, /dev/stdin on a terminal), a socket or a directory is
// refused (-EINVAL naming the path) instead of blocking or reading forever; the open
// itself never blocks on a FIFO. Errors are -errno naming the path.
Result<FileFd> openReadOnly(const std::string &path);
// The whole content of a regular file of at most maxBytes (-EFBIG naming the path, its
// size and the cap otherwise; a file that grows past the cap while read is refused too).
// `what` names the input in messages ("model file", "--tokens-file").
Result<std::string> readFileCapped(const std::string &path, uint64_t maxBytes, const std::string &what);
// Size of a regular file (or block device) in bytes.
Result<uint64_t> fileSize(int fd, const std::string &path);
// Read exactly len bytes at off; a short read (file shrank) is -EIO naming the path.
Status preadFull(int fd, void *dst, size_t len, uint64_t off, const std::string &path);
// Write an output file without harming what is there:
//  - never over a file in `protect` (compared by st_dev/st_ino, so also through a
//    symlink or a hard link: e.g. the pool's own backing file) - always refused;
//  - never over an existing path (file, symlink, anything) unless `overwrite`;
//  - the data goes to a new temporary file (O_EXCL) in the target's directory, written
//    by `write(tmpPath)`, then renamed onto the path (RENAME_NOREPLACE without
//    `overwrite`), so a symlink at the path is replaced, never followed, and a failed
//    write leaves the old file whole.
// Each protect entry is {path, what it is}; an error names both (-EPERM); an existing
// path without overwrite is -EEXIST.
// The checks of writeOutputFile alone, to refuse before doing the work.
Status checkOutputPath(const std::string &path, const std::vector<std::pair<std::string, std::string>> &protect,
		       bool overwrite);
Status writeOutputFile(const std::string &path,
		       const std::vector<std::pair<std::string, std::string>> &protect, bool overwrite,
		       const std::function<Status(const std::string &tmpPath)> &write);
// "[3, 4]" - how shapes appear in error messages.
std::string shapeString(const std::vector<uint64_t> &shape);

} // namespace engrampool::io
