// SPDX-License-Identifier: Apache-2.0
// checkpoint.cpp - Hugging Face checkpoint directories: config.json, the shard index, Engram tables.
#include "io/checkpoint.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <set>

#include "format/layout.hpp"
#include "hashing/primes.hpp"
#include "io/file_util.hpp"
#include "io/source_internal.hpp"

namespace engrampool::io {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// config.json and the index are a few KiB to a few MiB; a cap keeps a hostile file small.
constexpr uint64_t kMaxConfigBytes = 16ull << 20;
constexpr uint64_t kMaxIndexBytes = 256ull << 20;

Status cfgError(const std::string &path, const std::string &field, const std::string &what)
{
	return makeError(EP_E_MODEL, "'" + path + "': " + field + " " + what);
}

Result<uint64_t> cfgUnsigned(const json &j, const std::string &path, const char *field, uint64_t minV, uint64_t maxV)
{
	if (!j.contains(field))
		return cfgError(path, field, "missing");
	const json &v = j[field];
	if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
		return cfgError(path, field, "must be a non-negative integer, found " + v.dump());
	uint64_t u = v.get<uint64_t>();
	if (u < minV || u > maxV)
		return cfgError(path, field, std::to_string(u) + " is outside [" + std::to_string(minV) + ", " +
						     std::to_string(maxV) + "]");
	return u;
}

Result<std::vector<uint64_t>> cfgList(const json &j, const std::string &path, const char *field, size_t n,
				      uint64_t minV, uint64_t maxV)
{
	if (!j.contains(field))
		return cfgError(path, field, "missing");
	const json &v = j[field];
	std::vector<uint64_t> out;
	if (v.is_number_integer()) {
		auto u = cfgUnsigned(j, path, field, minV, maxV);
		if (!u)
			return u.status();
		out.assign(n, *u);
		return out;
	}
	if (!v.is_array() || v.size() != n)
		return cfgError(path, field, "needs one integer or a list of " + std::to_string(n) + ", found " + v.dump());
	for (const json &e : v) {
		if (!e.is_number_unsigned() || e.get<uint64_t>() < minV || e.get<uint64_t>() > maxV)
			return cfgError(path, field, "entries must be integers in [" + std::to_string(minV) + ", " +
							     std::to_string(maxV) + "], found " + e.dump());
		out.push_back(e.get<uint64_t>());
	}
	return out;
}

Status parseQuantization(const json &j, const std::string &path, CheckpointConfig &c)
{
	RowFormat &f = c.rowFormat;
	f.valuesPerRow = c.headDim;
	if (!j.contains("quantization_config") || !j["quantization_config"].is_object())
		return cfgError(path, "quantization_config",
				"missing: only fp8 checkpoints (e4m3 values, ue8m0 scales) are read");
	const json &q = j["quantization_config"];
	auto str = [&](const char *k, const char *def) {
		return q.contains(k) && q[k].is_string() ? q[k].get<std::string>() : std::string(def);
	};
	std::string method = str("quant_method", "fp8");
	std::string fmt = str("fmt", "e4m3");
	std::string scaleFmt = str("scale_fmt", "ue8m0");
	if (method != "fp8")
		return cfgError(path, "quantization_config.quant_method", "is \"" + method + "\"; only \"fp8\" is read");
	if (fmt != "e4m3")
		return cfgError(path, "quantization_config.fmt", "is \"" + fmt + "\"; only \"e4m3\" is read");
	if (scaleFmt != "ue8m0" && scaleFmt != "e8m0")
		return cfgError(path, "quantization_config.scale_fmt", "is \"" + scaleFmt + "\"; only \"ue8m0\" is read");
	uint64_t block = 32;
	if (q.contains("weight_block_size")) {
		const json &b = q["weight_block_size"];
		if (!b.is_array() || b.empty() || !b.back().is_number_unsigned() || b.back().get<uint64_t>() == 0)
			return cfgError(path, "quantization_config.weight_block_size", "must be a list of positive integers, found " +
											       b.dump());
		block = b.back().get<uint64_t>();
	}
	if (block > c.headDim || c.headDim % block != 0)
		return cfgError(path, "quantization_config.weight_block_size", "block " + std::to_string(block) +
										       " does not divide engram_head_dim " +
										       std::to_string(c.headDim));
	f.dtype = Dtype::Fp8E4M3;
	f.scaleDtype = Dtype::E8M0;
	f.scaleBlock = (uint32_t)block;
	return f.validate();
}

Status parseConfig(const std::string &path, CheckpointConfig &c)
{
	auto text = readFileCapped(path, kMaxConfigBytes, "checkpoint config");
	if (!text)
		return text.status();
	json j = json::parse(*text, nullptr, false);
	if (j.is_discarded() || !j.is_object())
		return makeError(EP_E_MODEL, "'" + path + "': not a JSON object");

	if (!j.contains("engram_layer_ids") || !j["engram_layer_ids"].is_array() || j["engram_layer_ids"].empty())
		return cfgError(path, "engram_layer_ids", "missing or not a non-empty list: not an Engram checkpoint");
	if (j["engram_layer_ids"].size() > format::kMaxLayers)
		return cfgError(path, "engram_layer_ids", "has more than " + std::to_string(format::kMaxLayers) + " layers");
	std::set<uint32_t> seen;
	for (const json &e : j["engram_layer_ids"]) {
		if (!e.is_number_unsigned() || e.get<uint64_t>() > 100000)
			return cfgError(path, "engram_layer_ids", "entries must be layer indices, found " + e.dump());
		if (!seen.insert(e.get<uint32_t>()).second)
			return cfgError(path, "engram_layer_ids", "holds layer " + e.dump() + " twice");
		c.layerIds.push_back(e.get<uint32_t>());
	}
	auto N = cfgUnsigned(j, path, "engram_max_ngram_size", 2, format::kMaxNgramSize);
	if (!N)
		return N.status();
	c.maxNgramSize = (uint32_t)*N;
	auto H = cfgUnsigned(j, path, "engram_n_heads", 1, 1024);
	if (!H)
		return H.status();
	c.nHeads = (uint32_t)*H;
	auto D = cfgUnsigned(j, path, "engram_head_dim", 1, 1u << 16);
	if (!D)
		return D.status();
	c.headDim = (uint32_t)*D;
	auto ev = cfgList(j, path, "engram_vocab_size", c.maxNgramSize - 1, 2, 1ull << 62);
	if (!ev)
		return ev.status();
	c.engramVocabSize = *ev;
	if (j.contains("engram_num_embeddings")) {
		auto ne = cfgList(j, path, "engram_num_embeddings", c.layerIds.size(), 1, 1ull << 52);
		if (!ne)
			return ne.status();
		c.numEmbeddings = *ne;
	}
	if (j.contains("engram_compressed_vocab_size")) {
		auto v = cfgUnsigned(j, path, "engram_compressed_vocab_size", 1, 1ull << 40);
		if (!v)
			return v.status();
		c.compressedVocabSize = *v;
	}
	const char *padField = j.contains("engram_pad_token_id") ? "engram_pad_token_id" : "engram_pad_id";
	auto pad = cfgUnsigned(j, path, padField, 0, 1ull << 40);
	if (!pad)
		return pad.status().message().find("missing") != std::string::npos
			       ? cfgError(path, "engram_pad_token_id", "missing (nor engram_pad_id)")
			       : pad.status();
	c.padId = (int64_t)*pad;
	if (j.contains("vocab_size")) {
		auto v = cfgUnsigned(j, path, "vocab_size", 1, 1ull << 40);
		if (!v)
			return v.status();
		c.vocabSize = *v;
	}
	if (j.contains("engram_seed")) {
		auto s = cfgUnsigned(j, path, "engram_seed", 0, 1ull << 62);
		if (!s)
			return s.status();
		c.seed = *s;
	}
	return parseQuantization(j, path, c);
}

Status parseIndex(Checkpoint &ck)
{
	auto text = readFileCapped(ck.indexPath, kMaxIndexBytes, "checkpoint index");
	if (!text)
		return text.status();
	json j = json::parse(*text, nullptr, false);
	if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
		return makeError(EP_E_MODEL, "'" + ck.indexPath + "': not a safetensors index (no \"weight_map\" object)");
	for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
		if (!it.value().is_string())
			return makeError(EP_E_MODEL, "'" + ck.indexPath + "': weight_map entry '" + it.key() +
							     "' is not a file name");
		std::string shard = it.value().get<std::string>();
		// Shards live in the checkpoint directory: no absolute paths, no "..".
		fs::path p(shard);
		if (shard.empty() || p.is_absolute() || shard.find("..") != std::string::npos)
			return makeError(EP_E_MODEL, "'" + ck.indexPath + "': weight_map entry '" + it.key() +
							     "' names shard '" + shard + "' outside the checkpoint directory");
		ck.weightMap[it.key()] = (fs::path(ck.dir) / p).string();
	}
	return Status::ok();
}

// The first name of `names` the checkpoint has ("" if none).
std::string findTensor(const Checkpoint &ck, const std::vector<std::string> &names)
{
	for (const std::string &n : names)
		if (ck.weightMap.count(n))
			return n;
	return "";
}

std::string layerList(const std::vector<uint32_t> &ids)
{
	std::string s;
	for (uint32_t l : ids)
		s += (s.empty() ? "" : ", ") + std::to_string(l);
	return s;
}

} // namespace

Result<Checkpoint> openCheckpoint(const std::string &dir)
{
	Checkpoint ck;
	ck.dir = dir;
	std::error_code ec;
	if (!fs::is_directory(dir, ec))
		return makeError(-ENOTDIR, "checkpoint '" + dir + "' is not a directory");
	ck.configPath = (fs::path(dir) / "config.json").string();
	ck.tokenizerPath = (fs::path(dir) / "tokenizer.json").string();
	EP_TRY(parseConfig(ck.configPath, ck.config));
	std::string index = (fs::path(dir) / "model.safetensors.index.json").string();
	if (fs::exists(index, ec)) {
		ck.indexPath = index;
		EP_TRY(parseIndex(ck));
	} else {
		// A checkpoint small enough for one file has no index.
		std::string single = (fs::path(dir) / "model.safetensors").string();
		auto f = readSafetensors(single);
		if (!f)
			return makeError(-ENOENT, "checkpoint '" + dir +
							  "' has neither model.safetensors.index.json nor a readable "
							  "model.safetensors (" + f.status().message() + ")");
		for (const auto &[name, t] : f->tensors)
			ck.weightMap[name] = single;
	}
	return ck;
}

std::string checkpointModelName(const Checkpoint &ck)
{
	std::string base = fs::path(ck.dir).lexically_normal().filename().string();
	if (base.empty() || base == "." || base == "..")
		base = fs::absolute(ck.dir).lexically_normal().filename().string();
	std::string out;
	for (char ch : base)
		out += (isalnum((unsigned char)ch) || ch == '.' || ch == '_' || ch == '-') ? ch : '-';
	if (out.empty())
		out = "checkpoint";
	if (out.size() > format::kModelNameMax)
		out.resize(format::kModelNameMax);
	return out;
}

json checkpointModelJson(const Checkpoint &ck, const std::string &name, uint64_t tokenizerSize,
			 const std::string &vocabMapRef)
{
	const CheckpointConfig &c = ck.config;
	json j = {{"name", name},
		  {"comment", "Engram model of the checkpoint " + ck.dir + " (engrampool model --from-checkpoint)"},
		  {"engram_vocab_size", c.engramVocabSize},
		  {"max_ngram_size", c.maxNgramSize},
		  {"n_embed_per_ngram", (uint64_t)c.headDim * c.nHeads},
		  {"n_head_per_ngram", c.nHeads},
		  {"layer_ids", c.layerIds},
		  {"pad_id", c.padId},
		  {"seed", c.seed},
		  {"tokenizer_vocab_size", tokenizerSize},
		  {"vocab_map", vocabMapRef},
		  {"dtype", dtypeName(c.rowFormat.dtype)},
		  {"scale", {{"dtype", dtypeName(c.rowFormat.scaleDtype)}, {"block", c.rowFormat.scaleBlock}}}};
	if (c.compressedVocabSize)
		j["compressed_vocab_size"] = c.compressedVocabSize;
	if (!c.numEmbeddings.empty())
		j["num_embeddings"] = c.numEmbeddings;
	return j;
}

Result<ModelConfig> checkpointModel(const Checkpoint &ck, const std::string &name, const std::vector<int64_t> &map,
				    const std::string &mapPath)
{
	const CheckpointConfig &c = ck.config;
	// The checkpoint's own words first, so the message names config.json's fields.
	if (c.compressedVocabSize) {
		std::vector<int64_t> sorted(map);
		std::sort(sorted.begin(), sorted.end());
		uint64_t distinct = (uint64_t)(std::unique(sorted.begin(), sorted.end()) - sorted.begin());
		if (distinct != c.compressedVocabSize)
			return makeError(EP_E_MODEL, "'" + ck.configPath + "': engram_compressed_vocab_size is " +
							     std::to_string(c.compressedVocabSize) + " but the token map of '" +
							     ck.tokenizerPath + "' has " + std::to_string(distinct) +
							     " distinct keys (" + std::to_string(map.size()) +
							     " ids): the tokenizer does not belong to this model");
	}
	json j = checkpointModelJson(ck, name, map.size(), mapPath);
	j.erase("num_embeddings"); // checked below with the checkpoint's field name
	ModelParseOptions opts;
	opts.vocabMap = &map;
	auto m = parseModelJson(j.dump(), "", name, opts);
	if (!m)
		return std::move(m.status()).context("'" + ck.dir + "': ");
	if (!c.numEmbeddings.empty()) {
		auto rows = hashing::tableRows(*m);
		for (size_t i = 0; i < rows.size(); i++)
			if (rows[i] != c.numEmbeddings[i])
				return makeError(EP_E_MODEL, "'" + ck.configPath + "': engram_num_embeddings[" +
								     std::to_string(i) + "] (layer " +
								     std::to_string(c.layerIds[i]) + ") is " +
								     std::to_string(c.numEmbeddings[i]) +
								     " but the sum of the layer's primes is " +
								     std::to_string(rows[i]) +
								     " (engram_vocab_size, engram_n_heads, engram_layer_ids)");
		m->numEmbeddings = c.numEmbeddings;
	}
	return m;
}

Result<std::unique_ptr<RowSource>> openCheckpointLayer(const Checkpoint &ck, const ModelConfig &model,
						       uint32_t layerId, uint64_t expectedRows)
{
	const RowFormat &fmt = model.rowFormat;
	if (std::find(ck.config.layerIds.begin(), ck.config.layerIds.end(), layerId) == ck.config.layerIds.end())
		return makeError(-EINVAL, "layer " + std::to_string(layerId) + " is not an Engram layer of '" + ck.dir +
						  "' (engram_layer_ids: " + layerList(ck.config.layerIds) + ")");
	const std::string L = std::to_string(layerId);
	const std::vector<std::string> weightNames = {"layers." + L + ".engram.embed.weight",
						      "model.layers." + L + ".engram.embed.weight"};
	const std::vector<std::string> scaleNames = {
		"layers." + L + ".engram.embed.scale", "layers." + L + ".engram.embed.weight_scale_inv",
		"model.layers." + L + ".engram.embed.scale", "model.layers." + L + ".engram.embed.weight_scale_inv"};
	const std::string where = ck.indexPath.empty() ? ck.dir + "/model.safetensors" : ck.indexPath;
	std::string wName = findTensor(ck, weightNames);
	if (wName.empty())
		return makeError(-ENOENT, "'" + where + "': no tensor '" + weightNames[0] + "' (Engram layer " + L + ")");
	std::string sName = findTensor(ck, scaleNames);
	if (sName.empty())
		return makeError(-ENOENT, "'" + where + "': no tensor '" + scaleNames[0] + "' (nor '" + scaleNames[1] +
						  "') (Engram layer " + L + ")");

	auto wFile = readSafetensors(ck.weightMap.at(wName));
	if (!wFile)
		return wFile.status();
	auto sFile = readSafetensors(ck.weightMap.at(sName));
	if (!sFile)
		return sFile.status();
	auto wt = wFile->tensors.find(wName);
	if (wt == wFile->tensors.end())
		return makeError(-ENOENT, "'" + wFile->path + "': no tensor '" + wName + "', though '" + where +
						  "' maps it to this shard; available: " + stNameList(wFile->tensors));
	auto st = sFile->tensors.find(sName);
	if (st == sFile->tensors.end())
		return makeError(-ENOENT, "'" + sFile->path + "': no tensor '" + sName + "', though '" + where +
						  "' maps it to this shard; available: " + stNameList(sFile->tensors));
	const StTensor &w = wt->second, &s = st->second;
	const std::vector<uint64_t> wShape = {expectedRows, fmt.valuesPerRow};
	const std::vector<uint64_t> sShape = {expectedRows, fmt.scalesPerRow()};
	if (w.dtype != "F8_E4M3" || w.shape != wShape)
		return makeError(EP_E_SHAPE, "'" + wFile->path + "': tensor '" + wName + "': expected " +
						     shapeString(wShape) + " F8_E4M3, found " + stTensorString(w));
	if (s.dtype != "F8_E8M0" || s.shape != sShape)
		return makeError(EP_E_SHAPE, "'" + sFile->path + "': tensor '" + sName + "': expected " +
						     shapeString(sShape) + " F8_E8M0, found " + stTensorString(s));
	// parseTensor has checked [begin, end) against the file and dtype x shape: the shards
	// hold every byte the import will read.
	std::vector<SourceFile> files;
	files.push_back({std::move(wFile->fd), wFile->path});
	files.push_back({std::move(sFile->fd), sFile->path});
	std::vector<RowSegment> segs = {{0, w.begin, fmt.valueBytes(), 0}, {1, s.begin, fmt.scaleBytes(), fmt.valueBytes()}};
	std::string desc = "checkpoint '" + ck.dir + "' " + wName + " " + stTensorString(w) + " + " + sName + " " +
			   stTensorString(s);
	return makeSegmentSource(std::move(files), std::move(segs), fmt, expectedRows, std::move(desc));
}

} // namespace engrampool::io
