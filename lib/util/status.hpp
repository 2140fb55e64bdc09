// SPDX-License-Identifier: Apache-2.0
// status.hpp - error codes, Status/Result and the per-thread last-error message.
#pragma once

#include <cerrno>
#include <cstdarg>
#include <string>
#include <utility>
#include <variant>

#include <engrampool/engrampool.h>

namespace engrampool {

// A code (0 or negative, see engrampool.h) plus the message set at the failure site.
class [[nodiscard]] Status {
public:
	Status() = default;
	static Status ok() { return {}; }
	bool isOk() const { return code_ == 0; }
	explicit operator bool() const { return isOk(); }
	int code() const { return code_; }
	const std::string &message() const { return msg_; }

	// Prefix context ("import 'x': ") to the message, keeping the code.
	Status &&context(const std::string &prefix) &&
	{
		msg_ = prefix + msg_;
		return std::move(*this);
	}

	friend Status makeError(int code, std::string msg);

private:
	int code_ = 0;
	std::string msg_;
};

Status makeError(int code, std::string msg);
// printf-style convenience.
Status errorf(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// -errno with strerror appended: "open /x: No such file or directory".
Status errnoError(int err, const std::string &what);

template <typename T>
class [[nodiscard]] Result {
public:
	Result(T value) : v_(std::move(value)) {}
	Result(Status s) : v_(std::move(s)) {}
	bool isOk() const { return v_.index() == 0; }
	explicit operator bool() const { return isOk(); }
	T &value() & { return std::get<0>(v_); }
	T &&value() && { return std::get<0>(std::move(v_)); }
	const T &value() const & { return std::get<0>(v_); }
	T *operator->() { return &std::get<0>(v_); }
	const T *operator->() const { return &std::get<0>(v_); }
	T &operator*() { return std::get<0>(v_); }
	Status status() const { return isOk() ? Status::ok() : std::get<1>(v_); }
	int code() const { return isOk() ? 0 : std::get<1>(v_).code(); }

private:
	std::variant<T, Status> v_;
};

// The C ABI's one error channel: the calling thread's last error message (PMDK style:
// set at the failure site, separate from the code). Each thread has its own; the
// pointer from lastErrorMessage() stays valid until this thread sets it again.
// Never throws: without memory for the text the message becomes "out of memory".
void setLastError(const Status &s) noexcept;
void setLastErrorMessage(const std::string &msg) noexcept;
const char *lastErrorMessage() noexcept;
const char *errorName(int code);

#define EP_TRY(expr)                                   \
	do {                                           \
		::engrampool::Status ep_s_ = (expr);   \
		if (!ep_s_.isOk())                     \
			return ep_s_;                  \
	} while (0)

} // namespace engrampool
