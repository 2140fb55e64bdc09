// SPDX-License-Identifier: Apache-2.0
// emu_util.hpp - multi-process helpers of the emu tests: fork a writer, wait for it, check a pool's state.
#pragma once

#include "../unit/pool_fixture.hpp"
#include "pool/fault_hooks.hpp"

#include <functional>
#include <map>
#include <signal.h>
#include <sys/wait.h>

namespace eptest {

// The writer persist hook of the crash tests: SIGKILL this process at the k-th persist.
inline uint64_t &killAfterPersistCount()
{
	static uint64_t k = 0;
	return k;
}
inline void killAtPersistCount(uint64_t n)
{
	if (killAfterPersistCount() && n >= killAfterPersistCount())
		raise(SIGKILL);
}

// Fork a child that runs fn() (killed at its killAfter-th writer persist when non-zero)
// and _exits with its result (exceptions -> 99). The parent must not hold the writer
// lock: a forked child would share its open file description.
inline pid_t forkChild(const std::function<int()> &fn, uint64_t killAfter = 0)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	killAfterPersistCount() = killAfter;
	engrampool::testhooks::setWriterPersistHook(killAfter ? killAtPersistCount : nullptr);
	int rc = 99;
	try {
		rc = fn();
	} catch (const std::exception &e) {
		fprintf(stderr, "child: %s\n", e.what());
	}
	fflush(stdout);
	fflush(stderr);
	_exit(rc);
}

inline int waitChild(pid_t pid)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	return st;
}

inline bool killedBySigkill(int st) { return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL; }
inline bool exitedOk(int st) { return WIFEXITED(st) && WEXITSTATUS(st) == 0; }

inline std::string describeStatus(int st)
{
	if (WIFEXITED(st))
		return "exit " + std::to_string(WEXITSTATUS(st));
	if (WIFSIGNALED(st))
		return "signal " + std::to_string(WTERMSIG(st));
	return "status " + std::to_string(st);
}

// What a pool should hold: table name -> (model config, random seed of its rows).
struct Expected {
	std::map<std::string, std::pair<const ModelConfig *, uint64_t>> tables;
	size_t models = 0;
};

// Check that the pool at `uri` holds exactly `e`: visible set, rows, checksums, and
// that no catalog slot or data extent is held by anything else (after a writer's
// recovery). Returns a description of the first problem, "" when all is well.
inline std::string checkPoolHolds(const std::string &uri, const Expected &e, bool expectClean, int samples = 64)
{
	auto p = openPool(uri, false);
	auto s = p->snapshot();
	if (!s)
		return "snapshot: " + s.status().message();
	if (s->tables.size() != e.tables.size())
		return "expected " + std::to_string(e.tables.size()) + " tables, found " + std::to_string(s->tables.size());
	if (s->models.size() != e.models)
		return "expected " + std::to_string(e.models) + " models, found " + std::to_string(s->models.size());
	uint64_t extents = 0;
	for (auto &[name, want] : e.tables) {
		const TableInfo *t = s->findTable(name);
		if (!t)
			return "table '" + name + "' is missing";
		if (t->generation > s->generation)
			return "table '" + name + "' is newer than the committed generation";
		extents += t->extentBytes;
		if (uint64_t bad = rowMismatches(*p, *t, want.first->rowFormat, want.second, samples, t->generation))
			return "table '" + name + "': " + std::to_string(bad) + " sampled rows differ from seed " +
			       std::to_string(want.second);
	}
	// Models' stored token maps hold an extent each and read back whole.
	for (auto &m : s->models) {
		if (!m.tokenMapStored())
			continue;
		extents += m.tokenMapExtentBytes();
		if (auto map = p->tokenMap(m.name); !map)
			return "token map of model '" + m.name + "': " + map.status().message();
	}
	auto v = p->verify();
	if (!v)
		return "verify: " + v.status().message();
	for (auto &r : *v)
		if (!r.ok)
			return "verify: " + std::string(r.tokenMap ? "model" : "table") + " '" + r.table + "': " + r.problem;
	if (expectClean) {
		if (s->pendingReclaim != 0)
			return std::to_string(s->pendingReclaim) + " removed tables still hold space";
		if (s->usedBytes != extents)
			return "used bytes " + std::to_string(s->usedBytes) + " != extents of the visible tables " +
			       std::to_string(extents);
		uint32_t want = engrampool::format::kCatalogSlots - (uint32_t)(e.tables.size() + e.models);
		if (s->freeSlots != want)
			return "free catalog slots " + std::to_string(s->freeSlots) + ", expected " + std::to_string(want) +
			       " (leaked entries)";
	}
	return "";
}

} // namespace eptest
