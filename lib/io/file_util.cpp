// SPDX-License-Identifier: Apache-2.0
// file_util.cpp - owned fds and full preads for the import readers.
#include "io/file_util.hpp"

#include <cerrno>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace engrampool::io {

FileFd::~FileFd()
{
	if (fd_ >= 0)
		::close(fd_);
}

FileFd &FileFd::operator=(FileFd &&o) noexcept
{
	if (this != &o) {
		if (fd_ >= 0)
			::close(fd_);
		fd_ = std::exchange(o.fd_, -1);
	}
	return *this;
}

Result<FileFd> openReadOnly(const std::string &path)
{
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errnoError(errno, "open '" + path + "'");
	return FileFd(fd);
}

Result<uint64_t> fileSize(int fd, const std::string &path)
{
	struct stat st;
	if (::fstat(fd, &st) != 0)
		return errnoError(errno, "stat '" + path + "'");
	if (S_ISREG(st.st_mode))
		return static_cast<uint64_t>(st.st_size);
	if (S_ISBLK(st.st_mode)) {
		uint64_t bytes = 0;
		if (::ioctl(fd, BLKGETSIZE64, &bytes) != 0)
			return errnoError(errno, "size of '" + path + "'");
		return bytes;
	}
	// Pipes and character devices have no size we could check the shape against.
	return errorf(-EINVAL, "'%s' is not a regular file", path.c_str());
}

Status preadFull(int fd, void *dst, size_t len, uint64_t off, const std::string &path)
{
	auto *p = static_cast<uint8_t *>(dst);
	while (len > 0) {
		ssize_t n = ::pread(fd, p, len, static_cast<off_t>(off));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errnoError(errno, "read '" + path + "'");
		}
		if (n == 0)
			return errorf(-EIO, "read '%s': unexpected end of file at offset %llu (file shrank?)",
				      path.c_str(), static_cast<unsigned long long>(off));
		p += n;
		len -= static_cast<size_t>(n);
		off += static_cast<uint64_t>(n);
	}
	return Status::ok();
}

std::string shapeString(const std::vector<uint64_t> &shape)
{
	std::string s = "[";
	for (size_t i = 0; i < shape.size(); i++) {
		if (i)
			s += ", ";
		s += std::to_string(shape[i]);
	}
	return s + "]";
}

} // namespace engrampool::io
