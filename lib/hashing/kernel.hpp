// SPDX-License-Identifier: Apache-2.0
// kernel.hpp - the per-layer n-gram hash kernels (scalar, AVX2, AVX-512) and their constants.
//
// A kernel hashes `count` tokens of one layer: token t's compressed id is
// ids[t * stride] and the N-1 ids before it are ids[t * stride - 1] .. ids[t * stride
// - (N-1)] (stride 1: a sequence with its history in front; stride N: one window of N
// ids per token, as streaming builds them). out[t * J + j'] receives the hash (or
// row) id of column j'.
//
// The SIMD kernels put the J columns of one token in vector lanes: the XOR mix of
// order n is broadcast and reduced by a different prime in each lane. The reduction
// estimates q = u / d with a double reciprocal and corrects once:
//  - AVX-512 (F, DQ, IFMA): u -> double rounded toward zero, the reciprocal rounded
//    down and q' = floor(x * inv) from one FMA rounded toward zero, so q' <= q; the
//    relative error is < 2 * 2^-52, so q' >= q - 1 while u / d < 2^50. r = (u - q' d)
//    mod 2^52 comes from one IFMA (u plus the low 52 bits of q' (2^52 - d)), then
//    r = min(r, r - d).
//  - AVX2 (+FMA): round to nearest, |error| < 0.4, q' in {q - 1, q, q + 1}; the
//    remainder u - q' d is computed exactly in double (hi * 2^32 - q' d by one FMA,
//    then + lo), then corrected to [0, d).
// u / d < 2^50 holds for every 64-bit u when d >= 2^14. For smaller primes the
// kernels first reduce by a multiple of the prime that is >= 2^14 (exact, since
// (u mod kp) mod p = u mod p), then by the prime. Divisors must be < 2^50; a layer
// with a larger prime falls back to the scalar kernel. Mixes that are negative as
// int64 (only from negative ids, which pass through the vocab map) go to the exact
// scalar floor modulo.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "hashing/layout.hpp"
#include "hashing/modulus.hpp"

namespace engrampool::hashing::detail {

constexpr uint32_t kLanes = 8;                      // columns are padded to this
constexpr uint64_t kSingleRoundMin = uint64_t(1) << 14; // smaller divisors get a pre-reduction
constexpr uint64_t kSimdMaxDivisor = uint64_t(1) << 50;

struct KernelLayer {
	uint32_t n;        // max_ngram_size N
	uint32_t heads;    // H
	uint32_t columns;  // J = (N - 1) H
	bool twoRound;     // some prime < kSingleRoundMin
	const uint64_t *mult;    // [N]
	const uint64_t *order;   // [Jp] n - 2 of each column
	const uint64_t *offset;  // [Jp]
	const Modulus *mod;      // [J]
	/* Round A divides by a multiple of the prime (the prime itself when it is
	 * >= kSingleRoundMin), round B by the prime (used only when twoRound). */
	const uint64_t *divA;
	const double *invDownA;
	const double *invNearA;
	const uint64_t *negA;    // 2^52 - divA
	const double *divDA;     // divA as double (exact)
	const uint64_t *divB;
	const double *invDownB;
	const double *invNearB;
	const uint64_t *negB;
	const double *divDB;
	const double *offBias;   // 2^52 + offset, as double (AVX2 converts and adds at once)
};

using KernelFn = void (*)(const KernelLayer &L, const int64_t *ids, size_t stride, size_t count,
			  uint64_t *out, bool rowIds);

void hashScalar(const KernelLayer &L, const int64_t *ids, size_t stride, size_t count, uint64_t *out,
		bool rowIds);
void hashAvx2(const KernelLayer &L, const int64_t *ids, size_t stride, size_t count, uint64_t *out,
	      bool rowIds);
void hashAvx512(const KernelLayer &L, const int64_t *ids, size_t stride, size_t count, uint64_t *out,
		bool rowIds);

// Owns the constants of one layer; view() is what the kernels read.
struct LayerTables {
	uint32_t n = 0, heads = 0, columns = 0;
	bool twoRound = false;
	bool simdOk = true; // every divisor < kSimdMaxDivisor
	std::vector<uint64_t> mult, order, offset, divA, negA, divB, negB;
	std::vector<double> invDownA, invNearA, invDownB, invNearB, divDA, divDB, offBias;
	std::vector<Modulus> mod;

	// Any divisors >= 2 (primes in practice); offsets may be empty (all zero).
	static LayerTables build(const std::vector<uint64_t> &mult, const std::vector<uint64_t> &divisors,
				 const std::vector<uint64_t> &offsets, uint32_t heads);
	KernelLayer view() const;
};

bool cpuHasAvx2();
bool cpuHasAvx512();
// The largest of n int64 (INT64_MIN for none): the hasher's vocabulary check, 8 per step.
int64_t maxInt64Avx512(const int64_t *v, size_t n);

// One token, exact signed arithmetic (the reference's int64 floor modulo).
inline void hashTokenScalar(const KernelLayer &L, const int64_t *ids, uint64_t *out, bool rowIds)
{
	uint64_t mix[kMaxOrder];
	uint64_t acc = static_cast<uint64_t>(ids[0]) * L.mult[0];
	for (uint32_t k = 1; k < L.n; k++) {
		acc ^= static_cast<uint64_t>(ids[-static_cast<ptrdiff_t>(k)]) * L.mult[k];
		mix[k - 1] = acc;
	}
	for (uint32_t j = 0; j < L.columns; j++) {
		uint64_t v = L.mod[j].floorMod(static_cast<int64_t>(mix[L.order[j]]));
		out[j] = rowIds ? v + L.offset[j] : v;
	}
}

} // namespace engrampool::hashing::detail
