// SPDX-License-Identifier: Apache-2.0
// primes.hpp - exact 64-bit primality and the reference's distinct-prime walk.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model_config.hpp"

namespace engrampool::hashing {

// Deterministic Miller-Rabin, exact for all 64-bit n.
bool isPrime(uint64_t n);

// Head table sizes for every layer: primes[layerIndex][order n-2][head j], walked
// as ENGRAM_HASHING.md section 3 says (one set of used primes across all layers).
std::vector<std::vector<std::vector<uint64_t>>> headPrimes(const ModelConfig &cfg);

// Rows of the table of each layer (sum of its primes), in layer_ids order.
std::vector<uint64_t> tableRows(const ModelConfig &cfg);

} // namespace engrampool::hashing
