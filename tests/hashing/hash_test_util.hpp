// SPDX-License-Identifier: Apache-2.0
// hash_test_util.hpp - helpers shared by the hashing tests: configs, kernels, vector file.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "hashing/hasher.hpp"
#include "hashing/layout.hpp"
#include "model/model_config.hpp"
#include "test_util.hpp"

namespace hashtest {

using namespace engrampool;
using namespace engrampool::hashing;

inline ModelConfig makeConfig(std::vector<uint64_t> engramVocab, uint32_t maxNgram, uint32_t heads,
			      std::vector<uint32_t> layers, uint64_t tokenizerVocab, int64_t pad = 2,
			      uint64_t seed = 0, uint32_t embed = 0)
{
	ModelConfig c;
	c.name = "test";
	c.engramVocabSize = std::move(engramVocab);
	c.maxNgramSize = maxNgram;
	c.nHeadPerNgram = heads;
	c.nEmbedPerNgram = embed ? embed : heads * 16;
	c.layerIds = std::move(layers);
	c.padId = pad;
	c.seed = seed;
	c.tokenizerVocabSize = tokenizerVocab;
	c.compressedVocabSize = tokenizerVocab;
	c.rowFormat.dtype = Dtype::Fp32;
	c.rowFormat.valuesPerRow = c.nEmbedPerNgram / heads;
	return c;
}

inline ModelLayout mustLayout(const ModelConfig &c)
{
	auto r = ModelLayout::create(c);
	EXPECT_TRUE(r.isOk()) << r.status().message();
	return std::move(r).value();
}

inline EngramHasher mustHasher(const ModelLayout &l, Kernel k)
{
	auto r = EngramHasher::create(l, k);
	EXPECT_TRUE(r.isOk()) << r.status().message();
	return std::move(r).value();
}

// Every kernel this CPU runs, scalar first.
inline std::vector<Kernel> kernels()
{
	std::vector<Kernel> ks{ Kernel::Scalar };
	for (Kernel k : { Kernel::Avx2, Kernel::Avx512 })
		if (kernelSupported(k))
			ks.push_back(k);
	return ks;
}

inline nlohmann::json loadVectors()
{
	std::ifstream f(eptest::dataPath("engram_hash_cases.json"));
	EXPECT_TRUE(f.good()) << "missing " << eptest::dataPath("engram_hash_cases.json");
	std::stringstream ss;
	ss << f.rdbuf();
	return nlohmann::json::parse(ss.str());
}

} // namespace hashtest
