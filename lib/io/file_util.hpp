// SPDX-License-Identifier: Apache-2.0
// file_util.hpp - private helpers for the import readers: an owned fd and full preads.
#pragma once

#include <cstddef>
#include <cstdint>
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

// Open for reading; errors are -errno naming the path.
Result<FileFd> openReadOnly(const std::string &path);
// Size of a regular file (or block device) in bytes.
Result<uint64_t> fileSize(int fd, const std::string &path);
// Read exactly len bytes at off; a short read (file shrank) is -EIO naming the path.
Status preadFull(int fd, void *dst, size_t len, uint64_t off, const std::string &path);
// "[3, 4]" - how shapes appear in error messages.
std::string shapeString(const std::vector<uint64_t> &shape);

} // namespace engrampool::io
