// SPDX-License-Identifier: Apache-2.0
// sigbus.cpp - the process-wide SIGBUS handler and per-thread guarded calls.
#include "gather/sigbus.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <csetjmp>
#include <mutex>
#include <pthread.h>

namespace engrampool::gather {

namespace {

struct ThreadGuard {
	sigjmp_buf jump;
	volatile sig_atomic_t armed;
	volatile uintptr_t address;
};

// initial-exec: the handler must reach this without __tls_get_addr (which may
// allocate on first use); the thread has touched it when arming, before any fault.
thread_local ThreadGuard tGuard __attribute__((tls_model("initial-exec")));

struct sigaction gPrevious;
std::once_flag gOnce;
int gInstallError = 0;

void onSigbus(int sig, siginfo_t *info, void *uctx)
{
	ThreadGuard *g = &tGuard;
	// si_code > 0: raised by the kernel for this thread's access (BUS_ADRERR for a
	// page past the end of a file, BUS_MCEERR_AR for a poisoned page). A SIGBUS sent
	// with kill() is not a fault of the copy and is not ours to eat.
	if (g->armed && info && info->si_code > 0) {
		g->armed = 0;
		g->address = reinterpret_cast<uintptr_t>(info->si_addr);
		siglongjmp(g->jump, 1);
	}
	if ((gPrevious.sa_flags & SA_SIGINFO) && gPrevious.sa_sigaction) {
		gPrevious.sa_sigaction(sig, info, uctx);
		return;
	}
	if (gPrevious.sa_handler != SIG_DFL && gPrevious.sa_handler != SIG_IGN) {
		gPrevious.sa_handler(sig);
		return;
	}
	// Default (or ignored): put it back and raise again. The signal is blocked while
	// this handler runs, so it is delivered on return with the old disposition; a
	// hardware fault also re-executes the access and faults again.
	sigaction(SIGBUS, &gPrevious, nullptr);
	raise(SIGBUS);
}

void install()
{
	struct sigaction sa = {};
	sa.sa_sigaction = onSigbus;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &gPrevious) != 0)
		gInstallError = -errno;
}

} // namespace

int installSigbusHandler()
{
	std::call_once(gOnce, install);
	return gInstallError;
}

int guardedCall(void (*fn)(void *), void *ctx, uintptr_t *faultAddr)
{
	ThreadGuard *g = &tGuard;
	if (g->armed) {
		fn(ctx);
		return 0;
	}
	// savemask = 0: saving the mask is a syscall per call; the rare fault path
	// unblocks SIGBUS itself instead (the handler never returned, so it stays blocked).
	if (sigsetjmp(g->jump, 0)) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGBUS);
		pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
		if (faultAddr)
			*faultAddr = g->address;
		return -EFAULT;
	}
	g->armed = 1;
	std::atomic_signal_fence(std::memory_order_seq_cst);
	fn(ctx);
	std::atomic_signal_fence(std::memory_order_seq_cst);
	g->armed = 0;
	return 0;
}

} // namespace engrampool::gather
