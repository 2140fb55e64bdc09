// SPDX-License-Identifier: Apache-2.0
// hasher.hpp - Engram row ids for token batches: batch mode and streaming (decode) mode.
//
// Output layout of every call: out[(layer * T + t) * J + j'] for the T tokens of the
// call (all sequences concatenated, in order), layer in layer_ids order and column
// j' = (n-2) * H + head, i.e. the reference's hash_ids[layer][b][t][j'] flattened
// over (b, t). Calls never allocate; the object is immutable, so one hasher can be
// shared by any number of threads.
//
// Dead tokens (DeepSeek-V4.1: the positions of image spans). Every call takes an
// optional flag per token (dead[i] != 0: token i is dead; an empty span: none is).
// Lookback k of position t is blocked when lookback k-1 is, when t-k < 0, or when the
// token at t-k is dead, and a blocked lookback reads pad'. So a dead position's own ids
// are those of a window of N pad' ids (its k = 0 is blocked too), and no later n-gram
// reaches across it: the tokens after it are hashed as if a sequence started there.
// A dead token's id is neither read nor checked against the vocabulary.
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

// Per-sequence streaming state: the last N-1 compressed ids, oldest first, with
// blocking already applied: a dead token and every id before it are stored as pad'
// (a DEAD marker and the pad' it stands for give the same ids; blocking is monotone,
// so nothing older than a DEAD is ever read). Hence dead flags carry across decode steps.
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
	// tokens.size() (an empty seqOffsets means one sequence). dead: empty, or one flag
	// per token (see above). Errors: -EINVAL for bad offsets, a short output or dead
	// flags of another length, EP_E_TOKEN for a live id >= the vocabulary (unless the
	// model clips). Nothing is written on error.
	Status hashBatch(std::span<const int64_t> tokens, std::span<const uint64_t> seqOffsets,
			 std::span<uint64_t> out, HashOutput what = HashOutput::RowIds,
			 std::span<const uint8_t> dead = {}) const;

	// Streaming: start a sequence (its history becomes N-1 pad' ids).
	void beginSequence(StreamState &state) const;
	// Feed states[b] the new tokens tokens[seqOffsets[b], seqOffsets[b+1]) (zero or
	// more per sequence) and update it. Same output layout and errors as hashBatch;
	// on error no state changes. Results equal hashing each full sequence at once.
	// Dead flags as in hashBatch; a dead token blocks the lookbacks of the sequence's
	// later tokens in this call and in later calls.
	Status hashStream(std::span<StreamState> states, std::span<const int64_t> tokens,
			  std::span<const uint64_t> seqOffsets, std::span<uint64_t> out,
			  HashOutput what = HashOutput::RowIds, std::span<const uint8_t> dead = {}) const;

	// Vocabulary compression alone (same checks as hashing).
	Status compress(std::span<const int64_t> raw, std::span<int64_t> out) const;

private:
	struct Layer {
		detail::LayerTables tables;
		detail::KernelFn fn = nullptr;
	};

	EngramHasher() = default;
	Status checkTokens(std::span<const int64_t> tokens, std::span<const uint64_t> seqOffsets,
			   size_t sequences, size_t outSize, std::span<const uint8_t> dead = {}) const;
	int64_t compressOne(int64_t raw) const;
	// dead: nullptr (no dead token) or count flags.
	void hashRun(int64_t *history, const int64_t *tokens, const uint8_t *dead, size_t count,
		     size_t tokenBase, size_t totalTokens, uint64_t *out, bool rowIds) const;
	void hashLive(int64_t *history, const int64_t *tokens, size_t count, size_t tokenBase,
		      size_t totalTokens, uint64_t *out, bool rowIds) const;
	void hashDead(int64_t *history, size_t count, size_t tokenBase, size_t totalTokens, uint64_t *out,
		      bool rowIds) const;

	ModelLayout layout_;
	Kernel kernel_ = Kernel::Scalar;
	bool identity_ = false;
	std::vector<Layer> layers_;
	// N pad' ids: the window of every dead position (kernels read it with stride 0).
	std::array<int64_t, kMaxOrder> padWindow_{};
};

} // namespace engrampool::hashing
