// SPDX-License-Identifier: Apache-2.0
// token_trace.hpp - token traces (docs/TRACE.md): real token ids with sequence boundaries,
// replayed by `throughput_loss --trace` and `engrampool emulate --trace` next to the
// Zipf model, and read by `engrampool hotset --trace`.
//
// Format: UTF-8 text, one JSON object per line, one line per sequence:
//   {"tokens": [101, 7592, 2088, ...]}
// Other keys are ignored; blank lines and lines starting with '#' are skipped. Ids are
// the tokenizer's raw ids (before vocabulary compression), 0 <= id < the model's
// tokenizer_vocab_size. Make one with scripts/make_trace.py.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/model_config.hpp"
#include "util/status.hpp"

namespace engrampool::trace {

struct TokenTrace {
	std::string path;
	std::vector<int64_t> tokens;   // every sequence, concatenated
	std::vector<uint64_t> starts;  // sequence i is tokens[starts[i], starts[i+1]); starts.back() == tokens.size()
	size_t sequences() const { return starts.empty() ? 0 : starts.size() - 1; }
	// Tokens from sequence `seq`'s start, `count` of them, continuing into the next
	// sequences (and wrapping at the end) when it is shorter.
	void take(size_t seq, size_t count, int64_t *out) const;
};

// Loads and checks a trace: every id in [0, vocab) (vocab 0 = no check), at least one
// token. Errors name the file and the line.
Result<TokenTrace> loadTrace(const std::string &path, uint64_t vocab);

// A static hot set: the most looked-up (layer, row) pairs of trace sequences
// [skip, skip + take) (take 0 = to the end), hashed whole with the model.
struct HotRow {
	uint32_t count;
	uint32_t layerIndex;   // index in the model's layer_ids
	uint64_t row;
};
struct HotSet {
	std::vector<HotRow> rows;      // most looked-up first (ties: layer, row)
	size_t sequences = 0;
	uint64_t tokens = 0, lookups = 0, distinct = 0, covered = 0; // covered: lookups that hit `rows`
};
Result<HotSet> buildHotSet(const TokenTrace &t, const ModelConfig &m, size_t rows, size_t skip = 0, size_t take = 0);
// The agent's hot-set file (AgentConfig::hotSetFile): "LAYER_ID ROW_ID COUNT" lines.
Status writeHotSet(const HotSet &h, const ModelConfig &m, const std::string &path, const std::string &comment);

} // namespace engrampool::trace
