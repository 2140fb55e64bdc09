// SPDX-License-Identifier: Apache-2.0
// model_record.cpp - a pool's model record as a model file and a ModelConfig.
#include "pool/model_record.hpp"

#include <algorithm>

#include "util/units.hpp"

namespace engrampool {

nlohmann::json modelRecordJson(const ModelRecord &m, const std::string &uri, const std::string &mapRef)
{
	const format::ModelBody &b = m.body;
	const uint32_t orders = b.maxNgramSize >= 2 ? std::min(b.maxNgramSize - 1, format::kMaxNgramOrders) : 0;
	std::vector<uint64_t> vocab(b.engramVocabSize, b.engramVocabSize + orders);
	std::vector<uint32_t> layers(b.layerIds, b.layerIds + std::min(b.layerCount, format::kMaxLayers));
	nlohmann::json j = {{"name", m.name},
			    {"comment", "model '" + m.name + "' of the pool " + uri + " (engrampool model --from-pool)"},
			    {"engram_vocab_size", vocab},
			    {"max_ngram_size", b.maxNgramSize},
			    {"n_embed_per_ngram", b.nEmbedPerNgram},
			    {"n_head_per_ngram", b.nHeadPerNgram},
			    {"layer_ids", layers},
			    {"pad_id", b.padId},
			    {"seed", b.seed},
			    {"tokenizer_vocab_size", b.tokenizerVocabSize},
			    {"compressed_vocab_size", b.compressedVocabSize},
			    {"out_of_vocab", b.clipOutOfVocab ? "clip" : "error"},
			    {"dtype", dtypeName((Dtype)b.dtype)}};
	if (!mapRef.empty())
		j["vocab_map"] = mapRef;
	if (b.scaleDtype != (uint32_t)Dtype::None)
		j["scale"] = {{"dtype", dtypeName((Dtype)b.scaleDtype)}, {"block", b.scaleBlock}};
	if (b.rowAlign)
		j["row_align"] = b.rowAlign;
	return j;
}

Result<ModelConfig> poolModelConfig(const Pool &pool, const std::string &name)
{
	auto s = pool.snapshot();
	if (!s)
		return s.status();
	const ModelRecord *m = nullptr;
	if (name.empty()) {
		if (s->models.size() != 1) {
			std::string names;
			for (auto &r : s->models)
				names += (names.empty() ? "" : ", ") + r.name;
			return makeError(-ENOENT, "the pool holds " + std::to_string(s->models.size()) +
							  " models: name one" + (names.empty() ? "" : " (" + names + ")"));
		}
		m = &s->models[0];
	} else {
		m = s->findModel(name);
	}
	if (!m) {
		// tokenMap names a quarantined model's damage.
		auto map = pool.tokenMap(name);
		return map ? makeError(-ENOENT, "no model named '" + name + "' in the pool") : map.status();
	}
	const bool identity = m->body.vocabMapHash == 0;
	std::vector<int64_t> map;
	if (!identity) {
		auto stored = pool.tokenMap(m->name);
		if (!stored)
			return stored.status();
		map = std::move(stored.value());
	}
	ModelParseOptions opts;
	opts.vocabMap = identity ? nullptr : &map;
	nlohmann::json doc = modelRecordJson(*m, pool.region().uri().text, identity ? "" : "(stored in the pool)");
	auto cfg = parseModelJson(doc.dump(), "", m->name, opts);
	if (!cfg)
		return std::move(cfg.status()).context("model '" + m->name + "' of the pool: ");
	if (modelFingerprint(*cfg) != m->fingerprint)
		return makeError(EP_E_MODEL, "model '" + m->name + "': its record rebuilds to fingerprint " +
						     fingerprintHex(modelFingerprint(*cfg)) + ", the pool says " +
						     fingerprintHex(m->fingerprint));
	return cfg;
}

} // namespace engrampool
