// SPDX-License-Identifier: Apache-2.0
// sigbus.hpp - turn a SIGBUS inside a pool copy (truncated file, poisoned page) into
// an error return instead of a dead process.
//
// One process-wide handler, installed once, chained to whatever was installed before.
// A thread arms a thread-local sigjmp_buf around a copy; a bus error raised by the
// kernel while armed jumps out of the copy and the call returns -EFAULT with the
// faulting address. Any other SIGBUS goes to the previous handler, or, when that was
// the default (or ignore), the previous disposition is restored and the signal raised
// again: a bus error the engine does not own is never swallowed.
#pragma once

#include <cstdint>
#include <exception>
#include <utility>

namespace engrampool::gather {

// Install the handler (idempotent, thread-safe). 0 or -errno.
int installSigbusHandler();

// Run fn(ctx) with SIGBUS armed on this thread. Returns 0, or -EFAULT with *faultAddr
// set to si_addr. fn must be restartable from nothing: it is abandoned mid-way (no
// destructors run), so it must not own resources or locks. Not reentrant: a nested
// call runs fn unguarded by the inner frame (the outer one still catches).
int guardedCall(void (*fn)(void *), void *ctx, uintptr_t *faultAddr);

// guardedCall for a C++ callable (a lambda over pool metadata or a host-slot write).
// An exception thrown by f is caught inside the armed region and rethrown after the
// guard is disarmed, so it never leaves a stale jump buffer armed. On a fault, f's
// frame is abandoned like guardedCall's: whatever it had allocated is leaked (callers
// keep fault paths rare, e.g. by checking the backing object's size first), and it
// must hold no lock while it touches the mapping.
template <typename F>
int guardedInvoke(F &&f, uintptr_t *faultAddr)
{
	struct Ctx {
		F *fn;
		std::exception_ptr error;
	} ctx{&f, nullptr};
	int rc = guardedCall(
		[](void *p) {
			auto *c = static_cast<Ctx *>(p);
			try {
				(*c->fn)();
			} catch (...) {
				c->error = std::current_exception();
			}
		},
		&ctx, faultAddr);
	if (ctx.error)
		std::rethrow_exception(ctx.error);
	return rc;
}

} // namespace engrampool::gather
