// SPDX-License-Identifier: Apache-2.0
// checkpoint.hpp - a Hugging Face model directory holding Engram tables (DeepSeek-V4.1).
//
// config.json: engram_layer_ids, engram_max_ngram_size, engram_n_heads,
// engram_vocab_size (int or list), engram_num_embeddings, engram_head_dim,
// engram_compressed_vocab_size, engram_pad_token_id (alias engram_pad_id), vocab_size,
// quantization_config {fmt, scale_fmt, weight_block_size}; no seed field: seed 0.
// model.safetensors.index.json: weight_map tensor -> shard (or one model.safetensors).
// Per Engram layer L: layers.{L}.engram.embed.weight F8_E4M3 [rows, D] and
// layers.{L}.engram.embed.scale (alias weight_scale_inv) F8_E8M0 [rows, D/32].
// Every field and tensor is untrusted input: a mismatch is refused naming the file,
// the field or tensor, and both numbers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/row_source.hpp"
#include "model/model_config.hpp"
#include "util/status.hpp"

namespace engrampool::io {

struct CheckpointConfig {
	std::vector<uint32_t> layerIds;
	uint32_t maxNgramSize = 0;
	uint32_t nHeads = 0;
	std::vector<uint64_t> engramVocabSize;   // one per order 2..N
	std::vector<uint64_t> numEmbeddings;     // per layer; empty when config.json has none
	uint32_t headDim = 0;
	uint64_t compressedVocabSize = 0;        // 0 when config.json has none
	int64_t padId = 0;
	uint64_t vocabSize = 0;                  // tokenizer ids of the model (0 when absent)
	uint64_t seed = 0;
	RowFormat rowFormat;                     // fp8-e4m3 + e8m0 per block from quantization_config
};

struct Checkpoint {
	std::string dir;
	std::string configPath;
	std::string tokenizerPath;               // dir/tokenizer.json
	std::string indexPath;                   // dir/model.safetensors.index.json, or "" (one file)
	CheckpointConfig config;
	std::map<std::string, std::string> weightMap; // tensor name -> shard path
};

// Read config.json and the index; checks the engram_* fields (not the shards).
Result<Checkpoint> openCheckpoint(const std::string &dir);

// A model name from the directory's name: [A-Za-z0-9._-], at most the pool's limit.
std::string checkpointModelName(const Checkpoint &ck);

// The MODEL.json document of the checkpoint; vocabMapRef is written as "vocab_map".
nlohmann::json checkpointModelJson(const Checkpoint &ck, const std::string &name, uint64_t tokenizerSize,
				   const std::string &vocabMapRef);

// The model config with a token map in memory (map[tokenizer id] = compressed id).
// Refused, naming both numbers: a map whose distinct count is not
// engram_compressed_vocab_size; a layer whose prime sum is not engram_num_embeddings.
Result<ModelConfig> checkpointModel(const Checkpoint &ck, const std::string &name, const std::vector<int64_t> &map,
				    const std::string &mapPath);

// The layer's table as a row source (values then scales per row), streamed from the
// shards with pread in bounded chunks. Checks names, dtypes, shapes and that the
// shards hold every byte (a truncated shard is refused here).
Result<std::unique_ptr<RowSource>> openCheckpointLayer(const Checkpoint &ck, const ModelConfig &model,
						       uint32_t layerId, uint64_t expectedRows);

} // namespace engrampool::io
