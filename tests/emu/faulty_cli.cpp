// SPDX-License-Identifier: Apache-2.0
// faulty_cli.cpp - the engrampool CLI for crash tests: EP_FAULT_KILL_AFTER_PERSIST=k
// SIGKILLs the process right after its k-th writer persist.
#include <csignal>
#include <cstdlib>

#include "cli.hpp"
#include "pool/fault_hooks.hpp"

namespace {
uint64_t gKillAfter = 0;

void killHook(uint64_t n)
{
	if (n >= gKillAfter)
		raise(SIGKILL);
}
} // namespace

int main(int argc, char **argv)
{
	if (const char *k = getenv("EP_FAULT_KILL_AFTER_PERSIST"); k && *k) {
		gKillAfter = strtoull(k, nullptr, 10);
		if (gKillAfter)
			engrampool::testhooks::setWriterPersistHook(killHook);
	}
	return engrampool::cli::cliMain(argc, argv);
}
