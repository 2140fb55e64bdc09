// SPDX-License-Identifier: Apache-2.0
// file_util.cpp - owned fds, full preads, capped whole-file reads and safe output files.
#include "io/file_util.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/units.hpp"

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

namespace {

const char *fileKind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISBLK(m))
		return "a block device";
	return "not a regular file";
}

} // namespace

Result<FileFd> openReadOnly(const std::string &path)
{
	// O_NONBLOCK: opening a FIFO must not wait for a writer before we can refuse it.
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return errnoError(errno, "open '" + path + "'");
	FileFd f(fd);
	struct stat st;
	if (::fstat(fd, &st) != 0)
		return errnoError(errno, "stat '" + path + "'");
	// Inputs are sized before they are read: only files (and block devices) have a size.
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return errorf(-EINVAL, "'%s' is %s; only regular files are read", path.c_str(), fileKind(st.st_mode));
	int fl = ::fcntl(fd, F_GETFL);
	if (fl < 0 || ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
		return errnoError(errno, "fcntl '" + path + "'");
	return f;
}

Result<std::string> readFileCapped(const std::string &path, uint64_t maxBytes, const std::string &what)
{
	auto fd = openReadOnly(path);
	if (!fd)
		return std::move(fd.status()).context(what + ": ");
	struct stat st;
	if (::fstat(fd->get(), &st) != 0)
		return errnoError(errno, what + " '" + path + "'");
	if (!S_ISREG(st.st_mode))
		return errorf(-EINVAL, "%s: '%s' is %s; only regular files are read", what.c_str(), path.c_str(),
			      fileKind(st.st_mode));
	auto tooBig = [&](uint64_t size, bool atLeast) {
		return errorf(-EFBIG, "%s: '%s' is %s%s; the limit is %s", what.c_str(), path.c_str(),
			      atLeast ? "more than " : "", formatBytes(size).c_str(), formatBytes(maxBytes).c_str());
	};
	if ((uint64_t)st.st_size > maxBytes)
		return tooBig((uint64_t)st.st_size, false);
	std::string out;
	out.resize((size_t)st.st_size);
	size_t got = 0;
	for (;;) {
		if (got == out.size()) {
			// Files can grow while read (or report size 0, like /proc files): go on in
			// chunks, never past the cap.
			if (got > maxBytes)
				return tooBig(maxBytes, true);
			out.resize(got + std::min<uint64_t>(maxBytes + 1 - got, 1 << 20));
		}
		ssize_t n = ::read(fd->get(), out.data() + got, out.size() - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errnoError(errno, what + ": read '" + path + "'");
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > maxBytes)
		return tooBig(maxBytes, true);
	out.resize(got);
	return out;
}

Status checkOutputPath(const std::string &path, const std::vector<std::pair<std::string, std::string>> &protect,
		       bool overwrite)
{
	if (path.empty())
		return makeError(-EINVAL, "no output file given");
	struct stat target;
	bool exists = ::stat(path.c_str(), &target) == 0; // follows symlinks: where the data would land
	for (const auto &[p, what] : protect) {
		struct stat ps;
		if (exists && !p.empty() && ::stat(p.c_str(), &ps) == 0 && ps.st_dev == target.st_dev &&
		    ps.st_ino == target.st_ino)
			return errorf(-EPERM, "refusing to write '%s': it is %s (%s)", path.c_str(), what.c_str(),
				      p.c_str());
	}
	struct stat own;
	if (::lstat(path.c_str(), &own) == 0) {
		if (!overwrite)
			return errorf(-EEXIST, "'%s' already exists", path.c_str());
		// Replacing a device node or a directory entry of another kind is never meant.
		if (!S_ISREG(own.st_mode) && !S_ISLNK(own.st_mode))
			return errorf(-EPERM, "refusing to replace '%s': it is %s", path.c_str(), fileKind(own.st_mode));
	} else if (errno != ENOENT) {
		return errnoError(errno, "stat '" + path + "'");
	}
	return Status::ok();
}

Status writeOutputFile(const std::string &path, const std::vector<std::pair<std::string, std::string>> &protect,
		       bool overwrite, const std::function<Status(const std::string &tmpPath)> &write)
{
	EP_TRY(checkOutputPath(path, protect, overwrite));
	std::filesystem::path tp(path);
	std::string dir = tp.parent_path().string();
	std::string tmp = (dir.empty() ? std::string(".") : dir) + "/." + tp.filename().string() + ".tmp.XXXXXX";
	int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
	if (fd < 0)
		return errnoError(errno, "create a temporary file next to '" + path + "'");
	// mkstemp makes 0600; an output file gets the usual 0666 & ~umask.
	mode_t mask = ::umask(0);
	::umask(mask);
	int rc = ::fchmod(fd, 0666 & ~mask);
	::close(fd);
	auto cleanup = [&](Status s) {
		::unlink(tmp.c_str());
		return s;
	};
	if (rc != 0)
		return cleanup(errnoError(errno, "chmod '" + tmp + "'"));
	if (Status s = write(tmp); !s)
		return cleanup(std::move(s));
	if (overwrite) {
		if (::rename(tmp.c_str(), path.c_str()) != 0)
			return cleanup(errnoError(errno, "rename '" + tmp + "' to '" + path + "'"));
		return Status::ok();
	}
	if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0)
		return Status::ok();
	if (errno == EEXIST)
		return cleanup(errorf(-EEXIST, "'%s' already exists", path.c_str()));
	if (errno != EINVAL && errno != ENOSYS)
		return cleanup(errnoError(errno, "rename '" + tmp + "' to '" + path + "'"));
	// A file system without RENAME_NOREPLACE: link() refuses an existing name as well.
	if (::link(tmp.c_str(), path.c_str()) != 0) {
		int e = errno;
		return cleanup(e == EEXIST ? errorf(-EEXIST, "'%s' already exists", path.c_str())
					   : errnoError(e, "link '" + tmp + "' to '" + path + "'"));
	}
	::unlink(tmp.c_str());
	return Status::ok();
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
