// SPDX-License-Identifier: Apache-2.0
// profile.hpp - backbone profiles: a model of a GPU running a dense/MoE backbone, layer by layer.
//
// A profile (bench/profiles/NAME.json) gives the backbone's shape, the GPU's rates and
// a calibrated time scale; layerUs() turns a step's batch into per-layer forward time:
//   layer_us(tokens, ctx) = scale * (launch_us + max(weight_bytes / BW, tokens * 2 * params / F)
//                                    + ctx * kv_bytes / BW)
//   step_overhead_us(seqs) = scale * (step_fixed_us + max(lm_bytes / BW, seqs * 2 * lm_params / F))
// with BW = hbm_gbps * hbm_efficiency and F = tflops * mfu, tokens the step's batch
// tokens and ctx the context tokens the step's attention reads (decode). It is a model
// of the GPU, not a measurement; bench/profiles/README.md says how each was derived.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_config.hpp"
#include "util/status.hpp"

namespace engrampool::bench {

struct WorkloadSpec {
	uint32_t sequences = 512;
	uint32_t promptMin = 100, promptMax = 1024;   // Uniform, inclusive
	uint32_t outputMin = 100, outputMax = 1024;
	uint32_t maxBatchTokens = 16384;               // nano-vLLM max_num_batched_tokens
	uint32_t maxSeqs = 512;                        // nano-vLLM max_num_seqs
	double zipf = 1.0;                             // token rank exponent
	uint64_t seed = 1;
};

struct Profile {
	std::string name, description, path, source;
	// Backbone.
	uint32_t layers = 0;
	double paramsPerLayer = 0;                     // active parameters per layer (FLOPs = 2 * this per token)
	double weightBytesPerLayer = 0;                // bytes the layer's weights read per step
	double kvBytesPerToken = 0;                    // KV-cache bytes per context token per layer
	double lmHeadParams = 0, lmHeadBytes = 0;
	// GPU.
	std::string gpu;
	double hbmGBps = 0, hbmEfficiency = 0.8, tflops = 0, mfu = 0.5, launchUs = 0, stepFixedUs = 0;
	double timeScale = 1.0;                        // calibrated (README)
	double targetTokensPerS = 0;                   // the paper's baseline the scale reproduces (0 = none)
	// Engram.
	nlohmann::json engram;                         // model JSON at nominal (paper) table size
	WorkloadSpec workload;

	double layerUs(uint64_t tokens, uint64_t ctxTokens) const;
	double stepOverheadUs(uint64_t logitSeqs) const;
	// Engram layer ids (= backbone layer indices, 0-based).
	std::vector<uint32_t> engramLayers() const;
};

// NAME (looked up in the profile directory) or a path to a .json file.
Result<Profile> loadProfile(const std::string &nameOrPath, const std::string &profileDir);
std::vector<std::string> listProfiles(const std::string &profileDir);

// The profile's Engram model with its tables scaled down so all of them together take
// at most budgetBytes in the pool (never scaled up past the nominal size).
Result<ModelConfig> scaledModel(const Profile &p, uint64_t budgetBytes, double *scaleOut);

} // namespace engrampool::bench
