// SPDX-License-Identifier: Apache-2.0
// dead_flags.hpp - `--dead` / `--dead-file` of `hash` and `lookup`: per-token dead flags.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.hpp"

namespace engrampool::cli {

// The flags as JSON 0/1 with the shape of the tokens (ragged [[...], ...], or one flat
// array for one sequence), from --dead TEXT or --dead-file FILE (at most one of them).
// Empty when neither is given. A shape that differs from the tokens' is refused naming
// the first sequence (and its two lengths) or the two sequence counts.
Result<std::vector<std::vector<uint8_t>>> readDeadFlags(const std::string &inline_, const std::string &file,
							const std::vector<std::vector<int64_t>> &seqs);

// Concatenated flags of every sequence (empty when there are none).
std::vector<uint8_t> flattenDeadFlags(const std::vector<std::vector<uint8_t>> &dead);

} // namespace engrampool::cli
