// SPDX-License-Identifier: Apache-2.0
// cmd_hash.cpp - `engrampool hash`: Engram hash ids and row ids of token sequences.
#include <fstream>
#include <sstream>

#include "cli.hpp"
#include "dead_flags.hpp"
#include "hashing/hasher.hpp"

namespace engrampool::cli {

namespace {

using namespace engrampool::hashing;

struct HashArgs {
	std::string model;
	std::string tokens;
	std::string tokensFile;
	std::string dead, deadFile;
	std::string kernel = "auto";
	bool json = false;
};

Result<Kernel> parseKernel(const std::string &s)
{
	for (Kernel k : { Kernel::Auto, Kernel::Scalar, Kernel::Avx2, Kernel::Avx512 })
		if (s == kernelName(k))
			return k;
	return errorf(-EINVAL, "--kernel: unknown kernel '%s' (auto, scalar, avx2, avx512)", s.c_str());
}

int runHash(const HashArgs &a)
{
	auto seqs = readTokens(a.tokens, a.tokensFile);
	if (!seqs)
		return fail(seqs.status());
	auto dead = readDeadFlags(a.dead, a.deadFile, *seqs);
	if (!dead)
		return fail(dead.status());
	const std::vector<uint8_t> flags = flattenDeadFlags(*dead);
	auto kernel = parseKernel(a.kernel);
	if (!kernel)
		return fail(kernel.status());

	auto cfg = loadModelFile(a.model);
	if (!cfg)
		return fail(cfg.status());
	auto layout = ModelLayout::create(*cfg);
	if (!layout)
		return fail(layout.status());
	auto hasher = EngramHasher::create(*layout, *kernel);
	if (!hasher)
		return fail(hasher.status());

	std::vector<int64_t> tokens;
	std::vector<uint64_t> offsets{ 0 };
	for (const auto &s : *seqs) {
		tokens.insert(tokens.end(), s.begin(), s.end());
		offsets.push_back(tokens.size());
	}
	std::vector<uint64_t> hashes(hasher->outputSize(tokens.size()));
	std::vector<uint64_t> rows(hashes.size());
	Status st = hasher->hashBatch(tokens, offsets, hashes, HashOutput::HashIds, flags);
	if (st)
		st = hasher->hashBatch(tokens, offsets, rows, HashOutput::RowIds, flags);
	if (!st)
		return fail(st);

	const size_t T = tokens.size();
	const uint32_t J = hasher->columns();
	nlohmann::json layers = nlohmann::json::array();
	for (size_t l = 0; l < layout->layers().size(); l++) {
		nlohmann::json h = nlohmann::json::array(), r = nlohmann::json::array();
		for (size_t b = 0; b < seqs->size(); b++) {
			nlohmann::json hb = nlohmann::json::array(), rb = nlohmann::json::array();
			for (size_t t = offsets[b]; t < offsets[b + 1]; t++) {
				const size_t at = (l * T + t) * J;
				hb.push_back(std::vector<uint64_t>(hashes.begin() + at, hashes.begin() + at + J));
				rb.push_back(std::vector<uint64_t>(rows.begin() + at, rows.begin() + at + J));
			}
			h.push_back(std::move(hb));
			r.push_back(std::move(rb));
		}
		layers.push_back({ { "layer_id", layout->layers()[l].layerId },
				   { "hash_ids", std::move(h) },
				   { "row_ids", std::move(r) } });
	}
	// The live mask (1 live, 0 dead) in the tokens' shape: what a server zeroes the gate with.
	nlohmann::json live = nlohmann::json::array();
	for (size_t b = 0; b < seqs->size(); b++) {
		std::vector<int> m((*seqs)[b].size(), 1);
		if (!flags.empty())
			for (size_t t = 0; t < m.size(); t++)
				m[t] = flags[offsets[b] + t] ? 0 : 1;
		live.push_back(std::move(m));
	}
	if (a.json) {
		printJson({ { "layers", std::move(layers) }, { "live", std::move(live) } });
		return 0;
	}

	printf("model %s (fingerprint %s), %u ids per token per layer, kernel %s\n", cfg->name.c_str(),
	       fingerprintHex(layout->fingerprint()).c_str(), J, kernelName(hasher->kernel()));
	for (const auto &L : layers) {
		printf("layer %u\n", L["layer_id"].get<uint32_t>());
		for (size_t b = 0; b < L["row_ids"].size(); b++)
			for (size_t t = 0; t < L["row_ids"][b].size(); t++)
				printf("  seq %zu token %zu (id %lld%s): rows %s\n", b, t,
				       static_cast<long long>((*seqs)[b][t]), live[b][t] == 0 ? ", dead" : "",
				       L["row_ids"][b][t].dump().c_str());
	}
	return 0;
}

} // namespace

void addHashCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<HashArgs>();
	CLI::App *sub = root.add_subcommand("hash", "Engram hash ids and row ids of token sequences");
	sub->add_option("--model", a->model, "Model file (MODEL.json)")->required();
	sub->add_option("--tokens", a->tokens, "Token ids as JSON, e.g. '[[1,2,3],[4,5]]' (ragged allowed; ids 0..2^63-1, "
			"at most 65536 sequences and 1048576 ids)");
	sub->add_option("--tokens-file", a->tokensFile, "File holding the same JSON (a regular file of at most 256 MiB)");
	sub->add_option("--dead", a->dead, "Dead-token flags (DeepSeek-V4.1 image positions) as JSON 0/1 with the shape of "
			"--tokens, e.g. '[[0,1,1,0],[0,0]]': a dead position hashes pad' only and no later n-gram reaches "
			"across it; --json adds the live mask \"live\"");
	sub->add_option("--dead-file", a->deadFile, "File holding the same JSON as --dead");
	sub->add_option("--kernel", a->kernel, "Hash kernel: auto, scalar, avx2, avx512")->capture_default_str();
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runHash(*a); });
}

} // namespace engrampool::cli
