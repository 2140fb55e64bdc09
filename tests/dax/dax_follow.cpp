// SPDX-License-Identifier: Apache-2.0
// dax_follow.cpp - a read-only host that follows another host's pool: waits for a table at a generation.
// Usage: test_dax_follow URI MODEL.json LAYER SEED MIN_GENERATION TIMEOUT_SECONDS
// Attaches read-only (no mastership, no writes), polls the pool's committed generation
// (each snapshot invalidates the metadata lines first) until the table of LAYER exists
// at a generation >= MIN_GENERATION, then reads every row and checks it against the
// deterministic rows of SEED (io::randomRow) and the table's checksum. Prints
// "EP-FOLLOW generation=G rows=N seed=S" and exits 0; 1 on a mismatch or error, 2 on
// timeout. This is the second host of the two-guest QEMU scenario.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "hashing/primes.hpp"
#include "io/row_source.hpp"
#include "pool/pool.hpp"
#include "util/units.hpp"

using namespace engrampool;

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: %s URI MODEL.json LAYER SEED MIN_GENERATION TIMEOUT_SECONDS\n", argv[0]);
		return 1;
	}
	std::string uri = argv[1];
	uint32_t layer = (uint32_t)strtoul(argv[3], nullptr, 10);
	uint64_t seed = strtoull(argv[4], nullptr, 10);
	uint64_t minGen = strtoull(argv[5], nullptr, 10);
	double timeoutS = atof(argv[6]);
	auto cfg = loadModelFile(argv[2]);
	if (!cfg) {
		fprintf(stderr, "FAIL model: %s\n", cfg.status().message().c_str());
		return 1;
	}
	std::string name = defaultTableName(cfg->name, layer);
	uint64_t deadline = nowMonotonicNs() + (uint64_t)(timeoutS * 1e9);
	auto nap = [] { std::this_thread::sleep_for(std::chrono::milliseconds(50)); };
	std::string waitingFor = "the pool";
	std::unique_ptr<Pool> pool;
	uint64_t lastGen = UINT64_MAX, polls = 0;

	while (nowMonotonicNs() < deadline) {
		polls++;
		if (!pool) {
			auto p = Pool::open(uri, OpenOptions{}); // read-only
			if (!p) {
				waitingFor = "a pool on " + uri + " (" + p.status().message() + ")";
				nap();
				continue;
			}
			pool = std::move(p.value());
			printf("attached read-only to %s\n", uri.c_str());
		}
		auto snap = pool->snapshot();
		if (!snap) {
			waitingFor = "a consistent snapshot (" + snap.status().message() + ")";
			nap();
			continue;
		}
		if (snap->generation != lastGen) {
			printf("observed generation %llu (%zu tables)\n", (unsigned long long)snap->generation,
			       snap->tables.size());
			lastGen = snap->generation;
		}
		const TableInfo *t = snap->findTable(name);
		if (snap->generation < minGen || !t) {
			waitingFor = "table " + name + " at generation >= " + std::to_string(minGen) + " (now at " +
				     std::to_string(snap->generation) + ")";
			nap();
			continue;
		}
		if (t->rows != hashing::tableRows(*cfg)[0] && cfg->layerIds.size() == 1) {
			fprintf(stderr, "FAIL %s has %llu rows, the model says %llu\n", name.c_str(),
				(unsigned long long)t->rows, (unsigned long long)hashing::tableRows(*cfg)[0]);
			return 1;
		}
		// Every row, in batches, against the writer's deterministic rows.
		const uint64_t batch = 1024;
		std::vector<uint64_t> ids(batch);
		std::vector<uint8_t> got(batch * t->rowStride), want(t->rowStride);
		uint64_t bad = 0, firstBad = 0;
		for (uint64_t r0 = 0; r0 < t->rows; r0 += batch) {
			uint64_t n = std::min(batch, t->rows - r0);
			for (uint64_t i = 0; i < n; i++)
				ids[i] = r0 + i;
			if (Status s = pool->readRows(*t, ids.data(), n, got.data(), got.size()); !s) {
				fprintf(stderr, "FAIL read: %s\n", s.message().c_str());
				return 1;
			}
			for (uint64_t i = 0; i < n; i++) {
				io::randomRow(t->format, seed, r0 + i, want.data());
				if (memcmp(got.data() + i * t->rowStride, want.data(), t->rowStride) != 0 && bad++ == 0)
					firstBad = r0 + i;
			}
		}
		auto now = pool->committedGeneration();
		if (bad && now && *now != snap->generation) {
			printf("generation moved %llu -> %llu while reading; again\n", (unsigned long long)snap->generation,
			       (unsigned long long)*now);
			continue;
		}
		if (bad) {
			fprintf(stderr, "FAIL %s at generation %llu: %llu of %llu rows differ from seed %llu (first: row %llu)\n",
				name.c_str(), (unsigned long long)snap->generation, (unsigned long long)bad,
				(unsigned long long)t->rows, (unsigned long long)seed, (unsigned long long)firstBad);
			return 1;
		}
		auto v = pool->verify(name);
		if (!v || v->size() != 1 || !(*v)[0].ok) {
			fprintf(stderr, "FAIL verify %s: %s\n", name.c_str(),
				v ? (v->empty() ? "no table" : (*v)[0].problem.c_str()) : v.status().message().c_str());
			return 1;
		}
		printf("EP-FOLLOW generation=%llu rows=%llu seed=%llu table=%s polls=%llu\n",
		       (unsigned long long)snap->generation, (unsigned long long)t->rows, (unsigned long long)seed,
		       name.c_str(), (unsigned long long)polls);
		return 0;
	}
	fprintf(stderr, "FAIL timed out after %.0f s waiting for %s\n", timeoutS, waitingFor.c_str());
	return 2;
}
