// SPDX-License-Identifier: Apache-2.0
// checkpoint_fixture.hpp - a generated DeepSeek-V4.1-shaped checkpoint (index + 2 shards, F8 tensors) for tests.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hashing/primes.hpp"
#include "model/model_config.hpp"
#include "test_util.hpp"
#include "tokenizer/decoder.hpp"
#include "tokenizer/token_map.hpp"

namespace eptest {

struct CheckpointSpec {
	std::vector<uint32_t> layers{1, 14};
	uint64_t engramVocab = 300;          // per order: ~7k rows per layer
	std::string scaleSuffix = "scale";   // or "weight_scale_inv"
	// Faults, per tensor name: dtype and shape overrides, tensors left out.
	std::map<std::string, std::string> dtype;
	std::map<std::string, std::vector<uint64_t>> shape;
	std::vector<std::string> omit;
	int64_t numEmbeddingsDelta = 0;      // added to engram_num_embeddings of the last layer
	int64_t compressedDelta = 0;         // added to engram_compressed_vocab_size
	uint64_t seed = 7;
};

struct GeneratedCheckpoint {
	std::string dir;
	std::vector<uint64_t> rows;          // per layer
	uint64_t compressed = 0, tokenizerIds = 0;
	std::map<std::string, std::vector<uint8_t>> data; // tensor -> bytes as written
	std::map<std::string, std::string> shardOf;       // tensor -> shard file name
	std::string weightName(uint32_t l) const { return "layers." + std::to_string(l) + ".engram.embed.weight"; }
	std::string scaleName(uint32_t l, const std::string &suffix = "scale") const
	{
		return "layers." + std::to_string(l) + ".engram.embed." + suffix;
	}
	// The packed pool row of layer l: 256 e4m3 values, then 8 e8m0 scales.
	std::vector<uint8_t> packedRows(uint32_t l, const std::string &suffix = "scale") const
	{
		const auto &w = data.at(weightName(l)), &s = data.at(scaleName(l, suffix));
		uint64_t n = w.size() / 256;
		std::vector<uint8_t> out;
		out.reserve(n * 264);
		for (uint64_t r = 0; r < n; r++) {
			out.insert(out.end(), w.begin() + r * 256, w.begin() + (r + 1) * 256);
			out.insert(out.end(), s.begin() + r * 8, s.begin() + (r + 1) * 8);
		}
		return out;
	}
};

inline std::string utf8(char32_t c)
{
	std::string s;
	if (c < 0x80) {
		s += (char)c;
	} else if (c < 0x800) {
		s += (char)(0xC0 | (c >> 6));
		s += (char)(0x80 | (c & 0x3F));
	} else if (c < 0x10000) {
		s += (char)(0xE0 | (c >> 12));
		s += (char)(0x80 | ((c >> 6) & 0x3F));
		s += (char)(0x80 | (c & 0x3F));
	} else {
		s += (char)(0xF0 | (c >> 18));
		s += (char)(0x80 | ((c >> 12) & 0x3F));
		s += (char)(0x80 | ((c >> 6) & 0x3F));
		s += (char)(0x80 | (c & 0x3F));
	}
	return s;
}

// A byte-level BPE tokenizer.json: 3 special tokens, 256 byte tokens, words with
// case variants (which share a compressed key), an added non-special token.
inline nlohmann::json makeTokenizerJson()
{
	const auto &alpha = engrampool::tokenizer::byteLevelAlphabet();
	auto enc = [&](const std::string &s) {
		std::string o;
		for (unsigned char b : s)
			o += utf8(alpha[b]);
		return o;
	};
	nlohmann::json vocab = nlohmann::json::object();
	int64_t id = 3;
	auto add = [&](const std::string &tok) {
		if (!vocab.contains(tok))
			vocab[tok] = id++;
	};
	for (int b = 0; b < 256; b++)
		add(utf8(alpha[b]));
	for (const char *w : {"the", "The", " the", " The", "engram", " engram", "Engram", "café", " Café", "naïve",
			      "ＡＢ", "ab", "  ", "\n\n"})
		add(enc(w));
	nlohmann::json added = nlohmann::json::array();
	const char *specials[] = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"};
	for (int i = 0; i < 3; i++)
		added.push_back({{"id", i}, {"content", specials[i]}, {"special", true}, {"normalized", false},
				 {"lstrip", false}, {"rstrip", false}, {"single_word", false}});
	added.push_back({{"id", id}, {"content", "<image>"}, {"special", false}, {"normalized", false},
			 {"lstrip", false}, {"rstrip", false}, {"single_word", false}});
	return {{"version", "1.0"},
		{"added_tokens", added},
		{"normalizer", nullptr},
		{"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
		{"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}}},
		{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
}

inline void writeSafetensors(const std::string &path,
			     const std::vector<std::tuple<std::string, std::string, std::vector<uint64_t>,
							  const std::vector<uint8_t> *>> &tensors)
{
	nlohmann::json h = nlohmann::json::object();
	uint64_t off = 0;
	for (auto &[name, dtype, shape, bytes] : tensors) {
		h[name] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {off, off + bytes->size()}}};
		off += bytes->size();
	}
	std::string hs = h.dump();
	hs.append((8 - hs.size() % 8) % 8, ' ');
	std::ofstream f(path, std::ios::binary);
	uint64_t n = hs.size();
	f.write(reinterpret_cast<const char *>(&n), 8);
	f << hs;
	for (auto &t : tensors)
		f.write(reinterpret_cast<const char *>(std::get<3>(t)->data()), (std::streamsize)std::get<3>(t)->size());
	if (!f)
		throw std::runtime_error("write " + path);
}

// Layer i's weight goes to shard (i % 2) + 1 and its scale to the other shard, so every
// layer spans both shards; shard 1 also holds a non-Engram tensor.
inline GeneratedCheckpoint makeCheckpoint(const std::string &dir, const CheckpointSpec &spec = {})
{
	GeneratedCheckpoint ck;
	ck.dir = dir;
	nlohmann::json tok = makeTokenizerJson();
	std::ofstream(dir + "/tokenizer.json") << tok.dump();
	auto tm = engrampool::tokenizer::buildTokenMapFromJson(tok.dump());
	if (!tm)
		throw std::runtime_error("fixture tokenizer: " + tm.status().message());
	ck.compressed = tm->compressedSize;
	ck.tokenizerIds = tm->tokenizerSize;

	nlohmann::json probe = {{"engram_vocab_size", spec.engramVocab}, {"max_ngram_size", 4},
				{"n_embed_per_ngram", 2048}, {"n_head_per_ngram", 8},
				{"layer_ids", spec.layers}, {"pad_id", 2}, {"seed", 0},
				{"tokenizer_vocab_size", 1000}, {"compressed_vocab_size", 1000}};
	auto m = engrampool::parseModelJson(probe.dump(), "");
	if (!m)
		throw std::runtime_error("fixture model: " + m.status().message());
	ck.rows = engrampool::hashing::tableRows(*m);

	std::vector<uint64_t> numEmb = ck.rows;
	numEmb.back() = (uint64_t)((int64_t)numEmb.back() + spec.numEmbeddingsDelta);
	nlohmann::json config = {
		{"architectures", {"DeepseekV41ForCausalLM"}},
		{"model_type", "deepseek_v41"},
		{"vocab_size", ck.tokenizerIds + 10},
		{"engram_layer_ids", spec.layers},
		{"engram_max_ngram_size", 4},
		{"engram_n_heads", 8},
		{"engram_vocab_size", spec.engramVocab},
		{"engram_num_embeddings", numEmb},
		{"engram_head_dim", 256},
		{"engram_compressed_vocab_size", (uint64_t)((int64_t)ck.compressed + spec.compressedDelta)},
		{"engram_pad_id", 2},
		{"quantization_config",
		 {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"scale_fmt", "ue8m0"}, {"weight_block_size", {32, 32}}}}};
	std::ofstream(dir + "/config.json") << config.dump(2);

	std::mt19937_64 rng(spec.seed);
	static const std::vector<uint8_t> dummy(64, 1);
	std::vector<std::tuple<std::string, std::string, std::vector<uint64_t>, const std::vector<uint8_t> *>> shards[2];
	shards[0].push_back({"embed.weight", "BF16", {4, 8}, &dummy});
	ck.shardOf["embed.weight"] = "model-00001-of-00002.safetensors";
	const char *names[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
	for (size_t i = 0; i < spec.layers.size(); i++) {
		uint32_t L = spec.layers[i];
		std::string wn = ck.weightName(L), sn = ck.scaleName(L, spec.scaleSuffix);
		auto &w = ck.data[wn];
		auto &s = ck.data[sn];
		w.resize(ck.rows[i] * 256);
		s.resize(ck.rows[i] * 8);
		for (auto &b : w)
			b = (uint8_t)rng();
		for (auto &b : s)
			b = (uint8_t)(120 + rng() % 16);
		for (const std::string &n : {wn, sn}) {
			bool omit = std::find(spec.omit.begin(), spec.omit.end(), n) != spec.omit.end();
			if (omit)
				continue;
			bool isW = n == wn;
			std::string dt = spec.dtype.count(n) ? spec.dtype.at(n) : (isW ? "F8_E4M3" : "F8_E8M0");
			std::vector<uint64_t> shape = {ck.rows[i], isW ? 256u : 8u};
			if (spec.shape.count(n)) {
				shape = spec.shape.at(n);
				// Keep the file self-consistent: the bytes match the declared shape.
				uint64_t bytes = 1;
				for (uint64_t d : shape)
					bytes *= d;
				(isW ? w : s).resize(bytes);
			}
			int shard = (int)((i + (isW ? 0 : 1)) % 2);
			shards[shard].push_back({n, dt, shape, isW ? &w : &s});
			ck.shardOf[n] = names[shard];
		}
	}
	nlohmann::json wm = nlohmann::json::object();
	for (int k = 0; k < 2; k++) {
		writeSafetensors(dir + "/" + names[k], shards[k]);
		for (auto &t : shards[k])
			wm[std::get<0>(t)] = names[k];
	}
	std::ofstream(dir + "/model.safetensors.index.json") << nlohmann::json{{"metadata", {{"total_size", 0}}},
										   {"weight_map", wm}}.dump(2);
	return ck;
}

} // namespace eptest
