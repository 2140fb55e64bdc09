// SPDX-License-Identifier: Apache-2.0
// primes.cpp - exact 64-bit primality and the reference's distinct-prime walk.
#include "hashing/primes.hpp"

#include <algorithm>
#include <unordered_set>

namespace engrampool::hashing {

namespace {

uint64_t mulMod(uint64_t a, uint64_t b, uint64_t m)
{
	return static_cast<uint64_t>(static_cast<unsigned __int128>(a) * b % m);
}

uint64_t powMod(uint64_t base, uint64_t exp, uint64_t m)
{
	uint64_t result = 1;
	base %= m;
	while (exp) {
		if (exp & 1)
			result = mulMod(result, base, m);
		base = mulMod(base, base, m);
		exp >>= 1;
	}
	return result;
}

} // namespace

bool isPrime(uint64_t n)
{
	static constexpr uint64_t kSmall[] = { 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37 };

	if (n < 2)
		return false;
	for (uint64_t p : kSmall) {
		if (n % p == 0)
			return n == p;
	}
	if (n < 41 * 41)
		return true;

	uint64_t d = n - 1;
	unsigned s = 0;
	while ((d & 1) == 0) {
		d >>= 1;
		s++;
	}

	/*
	 * The first twelve primes as witnesses make Miller-Rabin deterministic for
	 * every n < 3.3e24, which covers all of uint64_t.
	 */
	for (uint64_t a : kSmall) {
		uint64_t x = powMod(a, d, n);
		if (x == 1 || x == n - 1)
			continue;
		bool composite = true;
		for (unsigned r = 1; r < s; r++) {
			x = mulMod(x, x, n);
			if (x == n - 1) {
				composite = false;
				break;
			}
		}
		if (composite)
			return false;
	}
	return true;
}

std::vector<std::vector<std::vector<uint64_t>>> headPrimes(const ModelConfig &cfg)
{
	std::vector<std::vector<std::vector<uint64_t>>> out;
	std::unordered_set<uint64_t> used;
	const uint32_t orders = cfg.maxNgramSize >= 2 ? cfg.orders() : 0;

	out.reserve(cfg.layerIds.size());
	for (size_t l = 0; l < cfg.layerIds.size(); l++) {
		std::vector<std::vector<uint64_t>> layer(orders);
		for (uint32_t o = 0; o < orders; o++) {
			/* A short list repeats its last entry, as a scalar size would. */
			uint64_t size = 0;
			if (!cfg.engramVocabSize.empty())
				size = cfg.engramVocabSize[std::min<size_t>(o, cfg.engramVocabSize.size() - 1)];
			uint64_t start = size ? size - 1 : 0;
			layer[o].reserve(cfg.nHeadPerNgram);
			for (uint32_t j = 0; j < cfg.nHeadPerNgram; j++) {
				uint64_t c = start + 1;
				while (!isPrime(c) || used.count(c))
					c++;
				used.insert(c);
				layer[o].push_back(c);
				start = c;
			}
		}
		out.push_back(std::move(layer));
	}
	return out;
}

std::vector<uint64_t> tableRows(const ModelConfig &cfg)
{
	std::vector<uint64_t> rows;
	for (const auto &layer : headPrimes(cfg)) {
		uint64_t sum = 0;
		for (const auto &order : layer)
			for (uint64_t p : order)
				sum += p;
		rows.push_back(sum);
	}
	return rows;
}

} // namespace engrampool::hashing
