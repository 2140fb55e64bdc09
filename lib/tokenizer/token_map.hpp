// SPDX-License-Identifier: Apache-2.0
// token_map.hpp - the compressed token map (tokenizer id -> compressed id) built from a tokenizer.json.
//
// The rules are DeepSeek's (DEEPSEEK_V41.md, "Addressing", item 1; the Engram reference's
// CompressedTokenizer): each id 0..len(tokenizer)-1 is decoded alone with the tokenizer's
// own decoder (special and added tokens kept), the text is normalized (NFKC, NFD, marks
// removed, per-character full lowercase, whitespace runs, lone-space sentinel, strip), a
// text with U+FFFD keys on its raw vocabulary string, and keys get compressed ids in order
// of first appearance.
//
// Choices, checked against Hugging Face's tokenizers (npm `tokenizers` 0.23, the Rust
// library DeepSeek's Python code calls) by tests/tokenizer/tokenmap_hf.sh:
//  - An added or special token goes through the decoder like any token, as the library's
//    decode([id], skip_special_tokens=False) does (ByteLevel keeps a token with characters
//    outside its alphabet as it is, so "<｜User｜>" stays; "ĠWorld" becomes " World").
//  - len(tokenizer) counts distinct token strings (model.vocab plus added_tokens); the
//    reference maps ids 0..len-1 and an id with no token would decode to "". This refuses
//    instead: ids must run 0..max without gaps and len must be max + 1 (DeepSeek's own
//    tokenizers have no gaps), so every id the model can see has its own entry.
//  - The lone-space sentinel is the reference's U+E000, so a U+E000 in a token's text also
//    ends up a space.
//  - Unicode tables are ICU's (Unicode 15 in Debian 12). The Rust library's normalization
//    tables predate Unicode 13: for characters added since (marks such as U+1ABF..U+1ACE)
//    it keeps what this removes. Not checked against DeepSeek's real tokenizer.json (not
//    available here); the generated tests avoid those characters in the comparison.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.hpp"

namespace engrampool::tokenizer {

struct TokenMap {
	std::vector<int64_t> map;     // map[tokenizer id] = compressed id
	uint64_t compressedSize = 0;  // number of distinct keys
	uint64_t tokenizerSize = 0;   // len(tokenizer): base vocab + added tokens
};

// Largest tokenizer.json read (DeepSeek's is ~8 MB) and the largest tokenizer (ids).
inline constexpr uint64_t kMaxTokenizerJsonBytes = 256ull << 20;
inline constexpr uint64_t kMaxTokenizerIds = 1ull << 24;

// Build from a Hugging Face tokenizer.json: a regular file of at most
// kMaxTokenizerJsonBytes. Errors (EP_E_MODEL, or -errno / -EFBIG for the file) name the
// file and the field: not JSON, no model.vocab, a decoder type this does not implement,
// an id with no token, ids past kMaxTokenizerIds.
Result<TokenMap> buildTokenMap(const std::string &tokenizerJsonPath);
// The same from the JSON text (tests).
Result<TokenMap> buildTokenMapFromJson(const std::string &jsonText);
// Write map as a 1-D int64 .npy [tokenizerSize], the format of a model file's "vocab_map".
Status writeTokenMapNpy(const TokenMap &m, const std::string &path);

} // namespace engrampool::tokenizer
