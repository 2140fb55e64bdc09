// SPDX-License-Identifier: Apache-2.0
// model_config.cpp - parse and validate MODEL.json; the model fingerprint.
#include "model/model_config.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "format/layout.hpp"
#include "hashing/primes.hpp"
#include "io/file_util.hpp"
#include "io/npy.hpp"
#include "util/checksum.hpp"

namespace engrampool {

using nlohmann::json;

namespace {

Status fieldError(const std::string &field, const std::string &what)
{
	return makeError(EP_E_MODEL, "model field '" + field + "': " + what);
}

Result<uint64_t> getUnsigned(const json &j, const char *field, bool required, uint64_t def,
			     uint64_t minValue = 0, uint64_t maxValue = UINT64_MAX)
{
	if (!j.contains(field)) {
		if (required)
			return fieldError(field, "missing");
		return def;
	}
	const json &v = j[field];
	if (!v.is_number_integer())
		return fieldError(field, "must be an integer, found " + v.dump());
	if (v.is_number_unsigned()) {
		uint64_t u = v.get<uint64_t>();
		if (u < minValue || u > maxValue)
			return fieldError(field, "value " + std::to_string(u) + " outside [" + std::to_string(minValue) +
							 ", " + std::to_string(maxValue) + "]");
		return u;
	}
	int64_t s = v.get<int64_t>();
	if (s < 0 || (uint64_t)s < minValue || (uint64_t)s > maxValue)
		return fieldError(field, "value " + std::to_string(s) + " outside [" + std::to_string(minValue) + ", " +
						 std::to_string(maxValue) + "]");
	return (uint64_t)s;
}

} // namespace

int64_t ModelConfig::compressedPadId() const
{
	if (vocabMap.empty() || padId < 0)
		return padId;
	if ((uint64_t)padId >= vocabMap.size())
		return vocabMap.back();
	return vocabMap[(size_t)padId];
}

std::string tokenMapHint()
{
	return "build the model file and its map with `engrampool model --from-checkpoint DIR --out MODEL.json`, "
	       "or the map alone with `engrampool tokenmap tokenizer.json --out MAP.npy` and set \"vocab_map\"";
}

Result<ModelConfig> parseModelJson(const std::string &text, const std::string &baseDir, const std::string &defaultName,
				   const ModelParseOptions &opts)
{
	json j = json::parse(text, nullptr, false);
	if (j.is_discarded())
		return makeError(EP_E_MODEL, "model file is not valid JSON");
	if (!j.is_object())
		return makeError(EP_E_MODEL, "model file must hold a JSON object");

	ModelConfig c;
	c.name = defaultName;
	if (j.contains("name")) {
		if (!j["name"].is_string() || j["name"].get<std::string>().empty() ||
		    j["name"].get<std::string>().size() > format::kModelNameMax)
			return fieldError("name", "must be a non-empty string of at most " +
							  std::to_string(format::kModelNameMax) + " bytes");
		c.name = j["name"].get<std::string>();
	}

	auto N = getUnsigned(j, "max_ngram_size", true, 0, 2, format::kMaxNgramSize);
	if (!N)
		return N.status();
	c.maxNgramSize = (uint32_t)*N;

	if (!j.contains("engram_vocab_size"))
		return fieldError("engram_vocab_size", "missing");
	const json &ev = j["engram_vocab_size"];
	if (ev.is_number_integer()) {
		auto v = getUnsigned(j, "engram_vocab_size", true, 0, 2, (1ull << 62));
		if (!v)
			return v.status();
		c.engramVocabSize.assign(c.orders(), *v);
	} else if (ev.is_array()) {
		if (ev.size() != c.orders())
			return fieldError("engram_vocab_size", "needs one entry per order 2.." + std::to_string(c.maxNgramSize) +
								       " (" + std::to_string(c.orders()) + "), found " +
								       std::to_string(ev.size()));
		for (auto &e : ev) {
			if (!e.is_number_integer() || e.get<int64_t>() < 2 || e.get<uint64_t>() > (1ull << 62))
				return fieldError("engram_vocab_size", "entries must be integers in [2, 2^62], found " + e.dump());
			c.engramVocabSize.push_back(e.get<uint64_t>());
		}
	} else {
		return fieldError("engram_vocab_size", "must be an integer or a list of integers");
	}

	auto E = getUnsigned(j, "n_embed_per_ngram", true, 0, 1, 1u << 20);
	if (!E)
		return E.status();
	c.nEmbedPerNgram = (uint32_t)*E;
	auto H = getUnsigned(j, "n_head_per_ngram", true, 0, 1, 1024);
	if (!H)
		return H.status();
	c.nHeadPerNgram = (uint32_t)*H;
	if (c.nEmbedPerNgram % c.nHeadPerNgram != 0)
		return fieldError("n_embed_per_ngram", std::to_string(c.nEmbedPerNgram) + " is not divisible by n_head_per_ngram " +
								    std::to_string(c.nHeadPerNgram));

	if (!j.contains("layer_ids"))
		return fieldError("layer_ids", "missing");
	if (!j["layer_ids"].is_array() || j["layer_ids"].empty())
		return fieldError("layer_ids", "must be a non-empty list of layer indices");
	if (j["layer_ids"].size() > format::kMaxLayers)
		return fieldError("layer_ids", "at most " + std::to_string(format::kMaxLayers) +
						       " Engram layers are supported");
	std::set<uint32_t> seen;
	for (auto &e : j["layer_ids"]) {
		if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > 100000)
			return fieldError("layer_ids", "entries must be integers in [0, 100000], found " + e.dump());
		uint32_t id = e.get<uint32_t>();
		if (!seen.insert(id).second)
			return fieldError("layer_ids", "duplicate layer id " + std::to_string(id));
		c.layerIds.push_back(id);
	}

	if (!j.contains("pad_id"))
		return fieldError("pad_id", "missing");
	if (!j["pad_id"].is_number_integer())
		return fieldError("pad_id", "must be an integer");
	c.padId = j["pad_id"].get<int64_t>();

	auto S = getUnsigned(j, "seed", true, 0, 0, (1ull << 62));
	if (!S)
		return S.status();
	c.seed = *S;
	auto V = getUnsigned(j, "tokenizer_vocab_size", true, 0, 1, (1ull << 40));
	if (!V)
		return V.status();
	c.tokenizerVocabSize = *V;

	if (j.contains("out_of_vocab")) {
		if (!j["out_of_vocab"].is_string())
			return fieldError("out_of_vocab", "must be \"error\" or \"clip\"");
		std::string p = j["out_of_vocab"];
		if (p == "clip")
			c.clipOutOfVocab = true;
		else if (p != "error")
			return fieldError("out_of_vocab", "must be \"error\" or \"clip\", found \"" + p + "\"");
	}

	// Which vocabulary the multipliers use (see the header: the no-map trap).
	std::optional<uint64_t> declaredV;
	if (j.contains("compressed_vocab_size")) {
		auto d = getUnsigned(j, "compressed_vocab_size", true, 0, 1, (1ull << 40));
		if (!d)
			return d.status();
		declaredV = *d;
	}
	bool identityVocab = false;
	if (j.contains("identity_vocab")) {
		if (!j["identity_vocab"].is_boolean())
			return fieldError("identity_vocab", "must be true or false");
		identityVocab = j["identity_vocab"].get<bool>();
	}
	const bool hasMap = j.contains("vocab_map") && !j["vocab_map"].is_null();
	if (identityVocab && hasMap)
		return fieldError("identity_vocab", "is true but the model also names a \"vocab_map\"; keep one of the two");

	// Vocabulary map.
	if (hasMap) {
		if (!j["vocab_map"].is_string())
			return fieldError("vocab_map", "must be the path of an int64 .npy file");
		std::filesystem::path p(j["vocab_map"].get<std::string>());
		if (p.is_relative() && !baseDir.empty())
			p = std::filesystem::path(baseDir) / p;
		c.vocabMapPath = p.string();
		if (opts.vocabMap) {
			c.vocabMap = *opts.vocabMap;
		} else {
			auto m = io::loadNpyInt64(c.vocabMapPath);
			if (!m)
				return makeError(EP_E_MODEL, "model field 'vocab_map': " + m.status().message());
			c.vocabMap = std::move(m.value());
		}
		if (c.vocabMap.size() != c.tokenizerVocabSize)
			return fieldError("vocab_map", "has " + std::to_string(c.vocabMap.size()) +
							       " entries but tokenizer_vocab_size is " +
							       std::to_string(c.tokenizerVocabSize));
		int64_t maxId = -1;
		for (int64_t v : c.vocabMap) {
			if (v < 0)
				return fieldError("vocab_map", "holds a negative id " + std::to_string(v));
			maxId = std::max(maxId, v);
		}
		// Dense ids are below the map's length; check before sizing anything by maxId.
		if ((uint64_t)maxId >= c.vocabMap.size())
			return fieldError("vocab_map", "compressed ids must be dense 0..V'-1; found id " + std::to_string(maxId) +
							       " in a map of " + std::to_string(c.vocabMap.size()) + " entries");
		std::vector<uint8_t> used((size_t)maxId + 1, 0);
		uint64_t distinct = 0;
		for (int64_t v : c.vocabMap)
			if (!used[(size_t)v]) { // a flag, not a counter: a key may cover thousands of ids
				used[(size_t)v] = 1;
				distinct++;
			}
		if (distinct != (uint64_t)maxId + 1)
			return fieldError("vocab_map", "compressed ids must be dense 0..V'-1; found " + std::to_string(distinct) +
							       " distinct ids with maximum " + std::to_string(maxId));
		if (declaredV && *declaredV != distinct)
			return fieldError("compressed_vocab_size", "is " + std::to_string(*declaredV) + " but the vocab map '" +
									   c.vocabMapPath + "' has " + std::to_string(distinct) +
									   " distinct ids; the map does not belong to this model");
		c.compressedVocabSize = distinct;
		c.vocabMapHash = xxh3(c.vocabMap.data(), c.vocabMap.size() * sizeof(int64_t));
	} else if (identityVocab || (declaredV && *declaredV == c.tokenizerVocabSize)) {
		if (declaredV && *declaredV != c.tokenizerVocabSize)
			return fieldError("compressed_vocab_size", "is " + std::to_string(*declaredV) +
									   " but \"identity_vocab\": true needs it equal to "
									   "'tokenizer_vocab_size' " +
									   std::to_string(c.tokenizerVocabSize));
		c.compressedVocabSize = c.tokenizerVocabSize;
	} else if (declaredV) {
		// The trap: hashing raw ids with multipliers of another vocabulary size.
		if (!opts.allowMissingVocabMap)
			return fieldError("vocab_map",
					  "missing, but 'compressed_vocab_size' " + std::to_string(*declaredV) +
						  " differs from 'tokenizer_vocab_size' " + std::to_string(c.tokenizerVocabSize) +
						  ": token ids must go through the model's token map before hashing, "
						  "without it every row id is wrong; " +
						  tokenMapHint());
		c.compressedVocabSize = *declaredV;
		c.vocabMapMissing = true;
	} else {
		return fieldError("compressed_vocab_size",
				  "missing: a model without \"vocab_map\" must say which vocabulary its hash multipliers "
				  "use. Trained on raw token ids: add \"compressed_vocab_size\": " +
					  std::to_string(c.tokenizerVocabSize) +
					  " (equal to 'tokenizer_vocab_size', or \"identity_vocab\": true). Trained on a "
					  "compressed token map (DeepSeek Engram models): " +
					  tokenMapHint());
	}
	if (c.padId < 0 || (uint64_t)c.padId >= c.tokenizerVocabSize)
		return fieldError("pad_id", std::to_string(c.padId) + " is outside the tokenizer vocabulary [0, " +
						    std::to_string(c.tokenizerVocabSize) + ")");

	// Row format.
	RowFormat &f = c.rowFormat;
	f.valuesPerRow = c.headDim();
	if (j.contains("dtype")) {
		if (!j["dtype"].is_string())
			return fieldError("dtype", "must be a string such as \"fp32\"");
		auto d = parseDtype(j["dtype"].get<std::string>());
		if (!d)
			return fieldError("dtype", d.status().message());
		f.dtype = *d;
	}
	if (j.contains("scale") && !j["scale"].is_null()) {
		const json &s = j["scale"];
		if (!s.is_object() || !s.contains("dtype") || !s["dtype"].is_string() || !s.contains("block") ||
		    !s["block"].is_number_integer() || s["block"].get<int64_t>() <= 0)
			return fieldError("scale", "must be {\"dtype\": \"e8m0\", \"block\": VALUES_PER_SCALE}");
		auto d = parseDtype(s["dtype"].get<std::string>());
		if (!d)
			return fieldError("scale.dtype", d.status().message());
		f.scaleDtype = *d;
		f.scaleBlock = s["block"].get<uint32_t>();
	}
	if (j.contains("row_align")) {
		auto a = getUnsigned(j, "row_align", false, 0, 0, 4096);
		if (!a)
			return a.status();
		f.rowAlign = (uint32_t)*a;
	}
	if (Status st = f.validate(); !st)
		return makeError(EP_E_MODEL, "model row format: " + st.message());

	if (j.contains("num_embeddings") && !j["num_embeddings"].is_null()) {
		const json &ne = j["num_embeddings"];
		if (!ne.is_array() || ne.size() != c.layerIds.size())
			return fieldError("num_embeddings", "needs one row count per layer of layer_ids (" +
								    std::to_string(c.layerIds.size()) + "), found " + ne.dump());
		for (const json &e : ne) {
			if (!e.is_number_unsigned())
				return fieldError("num_embeddings", "entries must be non-negative integers, found " + e.dump());
			c.numEmbeddings.push_back(e.get<uint64_t>());
		}
		auto rows = hashing::tableRows(c);
		for (size_t i = 0; i < rows.size(); i++)
			if (rows[i] != c.numEmbeddings[i])
				return fieldError("num_embeddings",
						  "layer " + std::to_string(c.layerIds[i]) + " declares " +
							  std::to_string(c.numEmbeddings[i]) + " rows but the sum of its primes is " +
							  std::to_string(rows[i]) +
							  " (check engram_vocab_size, max_ngram_size, n_head_per_ngram and layer_ids)");
	}
	return c;
}

Result<ModelConfig> loadModelFile(const std::string &path, const ModelParseOptions &opts)
{
	// Model files are a few KiB; the cap keeps /dev/zero-like or runaway inputs from
	// eating memory (non-regular files are refused outright).
	constexpr uint64_t kMaxModelFileBytes = 64ull << 20;
	auto text = io::readFileCapped(path, kMaxModelFileBytes, "model file");
	if (!text)
		return text.status();
	std::filesystem::path p(path);
	auto r = parseModelJson(*text, p.parent_path().string(), p.stem().string(), opts);
	if (!r)
		return r.status().isOk() ? r.status() : std::move(r.status()).context(path + ": ");
	return r;
}

uint64_t modelFingerprint(const ModelConfig &c)
{
	// Canonical little-endian serialisation of every row-id or row-byte affecting field.
	std::vector<uint64_t> w;
	w.push_back(0x454e4752414d3031ull); // "ENGRAM01": bump if the field list changes
	w.push_back(c.maxNgramSize);
	for (auto v : c.engramVocabSize)
		w.push_back(v);
	w.push_back(c.nEmbedPerNgram);
	w.push_back(c.nHeadPerNgram);
	w.push_back(c.layerIds.size());
	for (auto l : c.layerIds)
		w.push_back(l);
	w.push_back((uint64_t)c.padId);
	w.push_back(c.seed);
	w.push_back(c.tokenizerVocabSize);
	w.push_back(c.compressedVocabSize);
	w.push_back(c.vocabMapHash);
	w.push_back(c.clipOutOfVocab);
	w.push_back((uint64_t)c.rowFormat.dtype);
	w.push_back(c.rowFormat.valuesPerRow);
	w.push_back((uint64_t)c.rowFormat.scaleDtype);
	w.push_back(c.rowFormat.scaleBlock);
	w.push_back(c.rowFormat.rowStride());
	return xxh3(w.data(), w.size() * sizeof(uint64_t));
}

std::string fingerprintHex(uint64_t fp)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%016" PRIx64, fp);
	return buf;
}

} // namespace engrampool
