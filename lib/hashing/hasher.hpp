// SPDX-License-Identifier: Apache-2.0
// hasher.hpp - Engram row ids for token batches: batch mode and streaming (decode) mode.
//
// Output layout of every call: out[(layer * T + t) * J + j'] for the T tokens of the
// call (all sequences concatenated, in order), layer in layer_ids order and column
// j' = (n-2) * H + head, i.e. the reference's hash_ids[layer][b][t][j'] flattened
// over (b, t). Calls never allocate; the object is immutable, so one hasher can be
// shared by any number of threads.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "hashing/kernel.hpp"
#include "hashing/layout.hpp"
#include "util/status.hpp"

namespace engrampool::hashing {

enum class Kernel { Auto, Scalar, Avx2, Avx512 };
const char *kernelName(Kernel k);
// Built in and supported by this CPU (Auto and Scalar always are).
bool kernelSupported(Kernel k);

enum class HashOutput {
	HashIds, // hash[j'] in [0, prime)
	RowIds,  // hash[j'] + offset[j']: row in the layer's concatenated table
};

// Per-sequence streaming state: the last N-1 compressed ids, oldest first.
struct StreamState {
	std::array<int64_t, kMaxOrder - 1> recent{};
};

class EngramHasher {
public:
	// EP_E_UNSUPPORTED when the requested kernel is not available here.
	static Result<EngramHasher> create(const ModelLayout &layout, Kernel kernel = Kernel::Auto);

	const ModelLayout &layout() const { return layout_; }
	// The kernel in use (a layer with a prime >= 2^50 always runs scalar).
	Kernel kernel() const { return kernel_; }
	uint32_t columns() const { return layout_.columns(); }
	size_t layerCount() const { return layout_.layers().size(); }
	size_t outputSize(size_t tokens) const { return layerCount() * tokens * columns(); }

	// Whole sequences, each left-padded with pad' as the reference does. Sequence b is
	// tokens[seqOffsets[b], seqOffsets[b+1]); seqOffsets starts at 0 and ends at
	// tokens.size() (an empty seqOffsets means one sequence). Errors: -EINVAL for
	// bad offsets or a short output, EP_E_TOKEN for an id >= the vocabulary (unless
	// the model clips). Nothing is written on error.
	Status hashBatch(std::span<const int64_t> tokens, std::span<const uint64_t> seqOffsets,
			 std::span<uint64_t> out, HashOutput what = HashOutput::RowIds) const;

	// Streaming: start a sequence (its history becomes N-1 pad' ids).
	void beginSequence(StreamState &state) const;
	// Feed states[b] the new tokens tokens[seqOffsets[b], seqOffsets[b+1]) (zero or
	// more per sequence) and update it. Same output layout and errors as hashBatch;
	// on error no state changes. Results equal hashing each full sequence at once.
	Status hashStream(std::span<StreamState> states, std::span<const int64_t> tokens,
			  std::span<const uint64_t> seqOffsets, std::span<uint64_t> out,
			  HashOutput what = HashOutput::RowIds) const;

	// Vocabulary compression alone (same checks as hashing).
	Status compress(std::span<const int64_t> raw, std::span<int64_t> out) const;

private:
	struct Layer {
		detail::LayerTables tables;
		detail::KernelFn fn = nullptr;
	};

	EngramHasher() = default;
	Status checkTokens(std::span<const int64_t> tokens, std::span<const uint64_t> seqOffsets,
			   size_t sequences, size_t outSize) const;
	int64_t compressOne(int64_t raw) const;
	void hashRun(int64_t *history, const int64_t *tokens, size_t count, size_t tokenBase,
		     size_t totalTokens, uint64_t *out, bool rowIds) const;

	ModelLayout layout_;
	Kernel kernel_ = Kernel::Scalar;
	bool identity_ = false;
	std::vector<Layer> layers_;
};

} // namespace engrampool::hashing
