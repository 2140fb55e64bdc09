// SPDX-License-Identifier: Apache-2.0
// fuzz_common.hpp - helpers shared by the fuzz targets: a per-process scratch folder, files, input reader.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <fcntl.h>
#include <unistd.h>

namespace fuzz {

// A scratch folder for this process (tmpfs when there is one), removed at exit.
inline const std::string &scratchDir()
{
	static std::string dir = [] {
		const char *base = getenv("FUZZ_TMPDIR");
		std::string tmpl;
		if (base)
			tmpl = base;
		else if (access("/dev/shm", W_OK) == 0)
			tmpl = "/dev/shm";
		else
			tmpl = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		tmpl += "/engrampool-fuzz-XXXXXX";
		if (!mkdtemp(tmpl.data())) {
			perror("mkdtemp");
			abort();
		}
		static std::string keep = tmpl;
		atexit([] {
			std::string cmd = "rm -rf '" + keep + "'";
			if (system(cmd.c_str()) != 0) {
			}
		});
		return tmpl;
	}();
	return dir;
}

inline void writeFile(const std::string &path, const uint8_t *data, size_t len)
{
	int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror(path.c_str());
		abort();
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n <= 0) {
			perror("write");
			abort();
		}
		done += (size_t)n;
	}
	close(fd);
}

// Little-endian reader over the fuzz input; past the end it yields zeros.
class Reader {
public:
	Reader(const uint8_t *d, size_t n) : d_(d), n_(n) {}
	bool empty() const { return p_ >= n_; }
	size_t left() const { return p_ < n_ ? n_ - p_ : 0; }
	uint64_t u(int bytes)
	{
		uint64_t v = 0;
		for (int i = 0; i < bytes; i++)
			v |= (uint64_t)(p_ < n_ ? d_[p_++] : 0) << (8 * i);
		return v;
	}
	uint8_t u8() { return (uint8_t)u(1); }
	// Up to `want` bytes (fewer at the end of the input).
	const uint8_t *bytes(size_t want, size_t &got)
	{
		got = want < left() ? want : left();
		const uint8_t *p = d_ + p_;
		p_ += got;
		return p;
	}

private:
	const uint8_t *d_;
	size_t n_;
	size_t p_ = 0;
};

} // namespace fuzz
