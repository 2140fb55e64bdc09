// SPDX-License-Identifier: Apache-2.0
// token_map.cpp - read a tokenizer.json, decode every id alone, key it, number the keys.
#include "tokenizer/token_map.hpp"

#include <nlohmann/json.hpp>

#include <unordered_map>
#include <unordered_set>

#include "io/file_util.hpp"
#include "io/npy.hpp"
#include "tokenizer/decoder.hpp"
#include "tokenizer/normalize.hpp"

namespace engrampool::tokenizer {

namespace {

using nlohmann::json;

Status fieldError(const std::string &field, const std::string &msg)
{
	return makeError(EP_E_MODEL, "tokenizer field '" + field + "' " + msg);
}

// id -> token string, the way the tokenizer resolves an id: an added token first, then
// the model's vocabulary.
struct Vocab {
	std::vector<std::string> byId;
	std::vector<bool> present;
	uint64_t distinct = 0;  // what len(tokenizer) counts: distinct strings over both
};

Status place(Vocab &v, uint64_t id, const std::string &tok)
{
	if (id >= kMaxTokenizerIds)
		return makeError(EP_E_MODEL, "tokenizer: token '" + tok + "' has id " + std::to_string(id) +
						     ", past the largest tokenizer this reads (" +
						     std::to_string(kMaxTokenizerIds) + " ids)");
	if (id >= v.byId.size()) {
		v.byId.resize(id + 1);
		v.present.resize(id + 1, false);
	}
	return Status::ok();
}

Result<Vocab> readVocab(const json &j)
{
	Vocab v;
	if (!j.contains("model") || !j["model"].is_object())
		return fieldError("model", "must be an object holding the vocabulary (\"vocab\")");
	const json &model = j["model"];
	if (!model.contains("vocab"))
		return fieldError("model.vocab", "is missing");
	const json &vocab = model["vocab"];
	std::unordered_set<std::string> names;
	if (vocab.is_object()) {  // BPE, WordLevel, WordPiece: token -> id
		for (auto it = vocab.begin(); it != vocab.end(); ++it) {
			if (!it.value().is_number_unsigned())
				return fieldError("model.vocab", "maps '" + it.key() + "' to " + it.value().dump() +
									  ", not a non-negative integer id");
			uint64_t id = it.value().get<uint64_t>();
			EP_TRY(place(v, id, it.key()));
			if (v.present[id])
				return fieldError("model.vocab", "gives id " + std::to_string(id) + " to both '" +
									  v.byId[id] + "' and '" + it.key() + "'");
			v.byId[id] = it.key();
			v.present[id] = true;
			names.insert(it.key());
		}
	} else if (vocab.is_array()) {  // Unigram: [[token, score], ...], the id is the index
		for (size_t i = 0; i < vocab.size(); i++) {
			const json &e = vocab[i];
			if (!e.is_array() || e.empty() || !e[0].is_string())
				return fieldError("model.vocab[" + std::to_string(i) + "]", "must be [token, score]");
			EP_TRY(place(v, i, e[0].get<std::string>()));
			v.byId[i] = e[0].get<std::string>();
			v.present[i] = true;
			names.insert(v.byId[i]);
		}
	} else {
		return fieldError("model.vocab", "must be an object (token -> id) or an array of [token, score]");
	}

	if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
		const json &added = j["added_tokens"];
		if (!added.is_array())
			return fieldError("added_tokens", "must be an array");
		for (size_t i = 0; i < added.size(); i++) {
			const std::string f = "added_tokens[" + std::to_string(i) + "]";
			const json &a = added[i];
			if (!a.is_object() || !a.contains("id") || !a["id"].is_number_unsigned())
				return fieldError(f + ".id", "must be a non-negative integer");
			if (!a.contains("content") || !a["content"].is_string())
				return fieldError(f + ".content", "must be a string");
			uint64_t id = a["id"].get<uint64_t>();
			std::string content = a["content"].get<std::string>();
			EP_TRY(place(v, id, content));
			v.byId[id] = content;  // an added token wins over the vocabulary's
			v.present[id] = true;
			names.insert(content);
		}
	}
	if (v.byId.empty())
		return fieldError("model.vocab", "holds no tokens");
	for (size_t id = 0; id < v.byId.size(); id++)
		if (!v.present[id])
			return makeError(EP_E_MODEL, "tokenizer: id " + std::to_string(id) +
							     " has no token (neither model.vocab nor added_tokens gives it; "
							     "ids must run 0.." +
							     std::to_string(v.byId.size() - 1) + " without gaps)");
	v.distinct = names.size();
	// len(tokenizer) counts distinct strings; the reference maps ids 0..len-1. When that
	// is not every id (an added token repeating a vocabulary string under another id, or
	// replacing one), the map it would build is not the one the ids need: refuse.
	if (v.distinct != v.byId.size())
		return makeError(EP_E_MODEL, "tokenizer: ids run 0.." + std::to_string(v.byId.size() - 1) + " but " +
						     std::to_string(v.distinct) +
						     " distinct token strings (len(tokenizer)); an added token shares its "
						     "content with another id");
	return v;
}

} // namespace

Result<TokenMap> buildTokenMapFromJson(const std::string &jsonText)
{
	json j;
	try {
		j = json::parse(jsonText);
	} catch (const json::exception &e) {
		return makeError(EP_E_MODEL, std::string("tokenizer: not JSON: ") + e.what());
	}
	if (!j.is_object())
		return makeError(EP_E_MODEL, "tokenizer: the document must be a JSON object");
	auto vocab = readVocab(j);
	if (!vocab)
		return vocab.status();
	auto decoder = Decoder::fromJson(j.contains("decoder") ? j["decoder"] : json());
	if (!decoder)
		return decoder.status();

	TokenMap m;
	m.tokenizerSize = vocab->byId.size();
	m.map.resize(m.tokenizerSize);
	std::unordered_map<std::string, int64_t> keys;
	keys.reserve(m.tokenizerSize);
	static const std::string kReplacement = "\xEF\xBF\xBD";
	for (uint64_t id = 0; id < m.tokenizerSize; id++) {
		const std::string &raw = vocab->byId[id];
		std::string text = decoder->decode({ raw });
		std::string key;
		if (text.find(kReplacement) != std::string::npos) {
			key = raw;  // part of a UTF-8 sequence: the raw vocabulary string
		} else {
			auto n = normalizeKey(text);
			if (!n)
				return std::move(n.status()).context("tokenizer: id " + std::to_string(id) + ": ");
			key = n->empty() ? text : std::move(*n);
		}
		auto [it, fresh] = keys.emplace(std::move(key), static_cast<int64_t>(keys.size()));
		m.map[id] = it->second;
	}
	m.compressedSize = keys.size();
	return m;
}

Result<TokenMap> buildTokenMap(const std::string &tokenizerJsonPath)
{
	auto text = io::readFileCapped(tokenizerJsonPath, kMaxTokenizerJsonBytes, "tokenizer file");
	if (!text)
		return text.status();
	auto m = buildTokenMapFromJson(*text);
	if (!m)
		return std::move(m.status()).context("'" + tokenizerJsonPath + "': ");
	return m;
}

Status writeTokenMapNpy(const TokenMap &m, const std::string &path)
{
	if (m.map.size() != m.tokenizerSize)
		return errorf(-EINVAL, "token map: %zu entries for a tokenizer of %llu ids", m.map.size(),
			      static_cast<unsigned long long>(m.tokenizerSize));
	return io::writeNpy(path, "<i8", { m.tokenizerSize }, m.map.data(), m.map.size() * sizeof(int64_t));
}

} // namespace engrampool::tokenizer
