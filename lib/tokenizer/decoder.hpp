// SPDX-License-Identifier: Apache-2.0
// decoder.hpp - the decoders of a tokenizer.json ("decoder" field), as Hugging Face's
// tokenizers library applies them: each step maps the list of token strings to a new
// list, and the result is the concatenation.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "util/status.hpp"

namespace engrampool::tokenizer {

class Decoder {
public:
	// From the "decoder" value (null or absent: tokens joined by a space). Supported types:
	// ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace (String pattern), BPEDecoder
	// and Sequence of those; anything else is EP_E_MODEL naming the type.
	static Result<Decoder> fromJson(const nlohmann::json &j);
	std::string decode(const std::vector<std::string> &tokens) const;

	struct Step {
		enum class Kind { ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, BpeSuffix } kind;
		std::string text;          // Metaspace replacement, Strip content, Replace pattern, BPE suffix
		std::string content;       // Replace content
		bool dropFirst = false;    // Metaspace: replacements of the first token vanish
		uint64_t start = 0, stop = 0;  // Strip
	};

private:
	bool none_ = true;
	std::vector<Step> steps_;
};

// The GPT-2 byte-level alphabet: byteToChar[b] is the code point that stands for byte b.
// Computed (printable Latin-1 bytes stand for themselves, the others for 256 + n).
const std::vector<char32_t> &byteLevelAlphabet();

} // namespace engrampool::tokenizer
