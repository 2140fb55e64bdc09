// SPDX-License-Identifier: Apache-2.0
// status.cpp - error construction, names and the thread-local last-error message.
#include "util/status.hpp"

#include <cstdio>
#include <cstring>

namespace engrampool {

Status makeError(int code, std::string msg)
{
	Status s;
	s.code_ = code;
	s.msg_ = std::move(msg);
	return s;
}

Status errorf(int code, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return makeError(code, buf);
}

Status errnoError(int err, const std::string &what)
{
	return makeError(-err, what + ": " + std::strerror(err));
}

namespace {
thread_local std::string tlsLastError;
thread_local bool tlsOutOfMemory = false;
}

void setLastErrorMessage(const std::string &msg) noexcept
{
	try {
		tlsLastError = msg;
		tlsOutOfMemory = false;
	} catch (...) {
		tlsOutOfMemory = true;
	}
}

void setLastError(const Status &s) noexcept
{
	setLastErrorMessage(s.message());
}

const char *lastErrorMessage() noexcept
{
	return tlsOutOfMemory ? "out of memory (the error message could not be stored)" : tlsLastError.c_str();
}

const char *errorName(int code)
{
	switch (code) {
	case 0: return "success";
	case EP_E_CORRUPT: return "pool structure corrupted";
	case EP_E_VERSION: return "unsupported pool format version";
	case EP_E_NOT_POOL: return "not an engrampool pool";
	case EP_E_CHECKSUM: return "table data checksum mismatch";
	case EP_E_MODEL: return "invalid or mismatched model";
	case EP_E_NOT_MASTER: return "this host is not the pool master";
	case EP_E_STALE_EPOCH: return "pool mastership moved (stale epoch)";
	case EP_E_SHAPE: return "import source has the wrong shape or dtype";
	case EP_E_URI: return "invalid region URI";
	case EP_E_PREFLIGHT: return "backing store cannot hold the pool";
	case EP_E_UNSUPPORTED: return "not supported by this build or machine";
	case EP_E_RETRY: return "catalog kept changing; retry";
	case EP_E_TOKEN: return "token id outside the vocabulary";
	default:
		if (code < 0 && code > -4096)
			return strerror(-code);
		return "unknown error";
	}
}

} // namespace engrampool
