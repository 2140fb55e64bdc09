// SPDX-License-Identifier: Apache-2.0
// guard.hpp - the C ABI's one error channel: every entry point runs inside cApiCall,
// which turns any escaping exception into a code with one mapping, and reports
// failures through the calling thread's last error (ep_errormsg()).
#pragma once

#include <type_traits>
#include <utility>

#include "util/status.hpp"

namespace engrampool::capi {

// Set the calling thread's last error to s (cleared on success) and return its code.
inline int report(const Status &s)
{
	setLastError(s);
	return s.code();
}

// The code for the exception being handled (call only inside a catch block), with
// the thread's last error set to "<fn>: ...":
//   std::bad_alloc, std::length_error   -> -ENOMEM
//   std::system_error (errno category)  -> -errno
//   any other exception                 -> -EIO ("internal error: what()")
int reportCurrentException(const char *fn) noexcept;

// Run f (returning an int code) so that no exception crosses the ABI.
template <typename F>
int cApiCall(const char *fn, F &&f) noexcept
{
	try {
		return std::forward<F>(f)();
	} catch (...) {
		return reportCurrentException(fn);
	}
}

// Same for entry points that return a value instead of a code: onError on an exception.
template <typename R, typename F>
R cApiCallOr(const char *fn, R onError, F &&f) noexcept
{
	try {
		return std::forward<F>(f)();
	} catch (...) {
		(void)reportCurrentException(fn);
		return onError;
	}
}

} // namespace engrampool::capi
