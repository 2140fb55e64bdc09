// SPDX-License-Identifier: Apache-2.0
// tokenizer_json.hpp - build small tokenizer.json documents for the token map tests.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "tokenizer/decoder.hpp"
#include "tokenizer/normalize.hpp"

namespace tktest {

// The byte-level (GPT-2) spelling of UTF-8 text or raw bytes, as a vocabulary stores it.
inline std::string byteLevel(const std::string &bytes)
{
	const auto &a = engrampool::tokenizer::byteLevelAlphabet();
	std::string out;
	for (unsigned char b : bytes)
		engrampool::tokenizer::appendUtf8(out, a[b]);
	return out;
}

// A BPE tokenizer.json: vocab entries get ids 0.. in order; added tokens follow (or take
// the given ids).
struct TokenizerSpec {
	std::vector<std::string> vocab;                    // already in the model's spelling
	std::vector<std::pair<uint64_t, std::string>> added;  // id, content
	nlohmann::json decoder = { { "type", "ByteLevel" }, { "add_prefix_space", true },
				   { "trim_offsets", true }, { "use_regex", true } };

	nlohmann::json toJson() const
	{
		nlohmann::json v = nlohmann::json::object();
		for (size_t i = 0; i < vocab.size(); i++)
			v[vocab[i]] = i;
		nlohmann::json a = nlohmann::json::array();
		for (auto &[id, content] : added)
			a.push_back({ { "id", id }, { "content", content }, { "single_word", false }, { "lstrip", false },
				      { "rstrip", false }, { "normalized", false }, { "special", true } });
		return { { "version", "1.0" },
			 { "truncation", nullptr },
			 { "padding", nullptr },
			 { "added_tokens", a },
			 { "normalizer", nullptr },
			 { "pre_tokenizer", nullptr },
			 { "post_processor", nullptr },
			 { "decoder", decoder },
			 { "model", { { "type", "BPE" }, { "vocab", v }, { "merges", nlohmann::json::array() } } } };
	}
};

} // namespace tktest
