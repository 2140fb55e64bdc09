// SPDX-License-Identifier: Apache-2.0
// guard.cpp - the exception -> code mapping shared by every C ABI file.
#include "capi/guard.hpp"

#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

namespace engrampool::capi {

namespace {

Status statusOfCurrentException(const std::string &fn)
{
	try {
		throw;
	} catch (const std::bad_alloc &) {
		return makeError(-ENOMEM, fn + ": out of memory");
	} catch (const std::length_error &e) {
		return makeError(-ENOMEM, fn + ": out of memory (" + e.what() + ")");
	} catch (const std::system_error &e) {
		int v = e.code().value();
		bool isErrno = (e.code().category() == std::generic_category() || e.code().category() == std::system_category()) &&
			       v > 0 && v < 4096;
		return makeError(isErrno ? -v : -EIO, fn + ": " + e.what());
	} catch (const std::exception &e) {
		return makeError(-EIO, fn + ": internal error: " + e.what());
	} catch (...) {
		return makeError(-EIO, fn + ": internal error: unknown exception");
	}
}

} // namespace

int reportCurrentException(const char *fn) noexcept
{
	try {
		return report(statusOfCurrentException(fn ? fn : "engrampool"));
	} catch (...) {
		// Building the message itself failed (no memory): the code alone.
		return -ENOMEM;
	}
}

} // namespace engrampool::capi
