// SPDX-License-Identifier: Apache-2.0
// test_primes.cpp - exact Miller-Rabin on hard composites and the distinct-prime walk.
#include "hash_test_util.hpp"

#include <set>

#include "hashing/primes.hpp"

using namespace hashtest;

namespace {

bool trialDivision(uint64_t n)
{
	if (n < 2)
		return false;
	for (uint64_t d = 2; d * d <= n; d++)
		if (n % d == 0)
			return false;
	return true;
}

} // namespace

TEST(HashPrimes, MatchesTrialDivisionBelow200k)
{
	for (uint64_t n = 0; n < 200000; n++)
		ASSERT_EQ(isPrime(n), trialDivision(n)) << n;
}

TEST(HashPrimes, HardCompositesAndLargePrimes)
{
	/* Carmichael numbers and strong pseudoprimes to many small bases. */
	for (uint64_t c : { 561ULL, 41041ULL, 825265ULL, 3215031751ULL, 2152302898747ULL,
			    3474749660383ULL, 341550071728321ULL, 3825123056546413051ULL,
			    4294967297ULL /* 641 * 6700417 */, 18446744030759878681ULL /* 4294967291^2 */,
			    0xffffffffffffffffULL })
		EXPECT_FALSE(isPrime(c)) << c;
	for (uint64_t p : { 2ULL, 3ULL, 4294967291ULL, 4294967311ULL, 1000000007ULL,
			    2305843009213693951ULL /* 2^61 - 1 */, 18446744073709551557ULL /* largest */,
			    9223372036854775783ULL })
		EXPECT_TRUE(isPrime(p)) << p;
	/* 2^64 - 59 is the largest 64-bit prime: everything above it is composite. */
	for (uint64_t n = 18446744073709551558ULL; n != 0; n++)
		EXPECT_FALSE(isPrime(n)) << n;
	/* Distance to the next prime below 2^63 matches the known gap (2^63 - 25). */
	uint64_t n = (uint64_t(1) << 63) - 1;
	while (!isPrime(n))
		n--;
	EXPECT_EQ(n, (uint64_t(1) << 63) - 25);
}

TEST(HashPrimes, WalkIsDistinctAcrossLayersAndOrders)
{
	/* Equal vocab sizes for both orders and three layers share one used set. */
	ModelConfig c = makeConfig({ 1000, 1000, 1000 }, 4, 5, { 3, 1, 7 }, 100);
	auto primes = headPrimes(c);
	std::set<uint64_t> seen;
	for (auto &layer : primes) {
		ASSERT_EQ(layer.size(), 3u);
		for (auto &order : layer) {
			ASSERT_EQ(order.size(), 5u);
			for (uint64_t p : order) {
				EXPECT_TRUE(isPrime(p));
				EXPECT_GT(p, 999u);
				EXPECT_TRUE(seen.insert(p).second) << p << " reused";
			}
		}
	}
	/* The first head may be the vocab size itself when it is prime. */
	ModelConfig c2 = makeConfig({ 1009, 2003 }, 3, 2, { 0 }, 100);
	auto p2 = headPrimes(c2);
	EXPECT_EQ(p2[0][0], (std::vector<uint64_t>{ 1009, 1013 }));
	EXPECT_EQ(p2[0][1], (std::vector<uint64_t>{ 2003, 2011 }));
	EXPECT_EQ(tableRows(c2), (std::vector<uint64_t>{ 1009 + 1013 + 2003 + 2011 }));
}
