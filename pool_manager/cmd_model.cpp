// SPDX-License-Identifier: Apache-2.0
// cmd_model.cpp - `engrampool model MODEL.json`: the layout derived from a model file.
#include "cli.hpp"
#include "hashing/layout.hpp"
#include "util/units.hpp"

namespace engrampool::cli {

namespace {

using namespace engrampool::hashing;

struct ModelArgs {
	std::string path;
	bool json = false;
};

int runModel(const ModelArgs &a)
{
	// Showing a layout needs no token map; hashing with this config would (it is
	// refused everywhere else), so say so.
	ModelParseOptions opts;
	opts.allowMissingVocabMap = true;
	auto cfg = loadModelFile(a.path, opts);
	if (!cfg)
		return fail(cfg.status());
	auto layout = ModelLayout::create(*cfg);
	if (!layout)
		return fail(layout.status());
	const ModelLayout &m = *layout;

	nlohmann::json layers = nlohmann::json::array();
	for (const LayerLayout &L : m.layers())
		layers.push_back({ { "layer_id", L.layerId },
				   { "multipliers", L.multipliers },
				   { "primes", L.primes },
				   { "offsets", L.offsets },
				   { "rows", L.rows },
				   { "table_bytes", L.tableBytes } });

	if (a.json) {
		printJson({ { "name", cfg->name },
			    { "fingerprint", fingerprintHex(m.fingerprint()) },
			    { "max_ngram_size", m.maxNgram() },
			    { "n_head_per_ngram", m.heads() },
			    { "ids_per_token_per_layer", m.columns() },
			    { "compressed_vocab_size", m.compressedVocab() },
			    { "compressed_pad_id", m.compressedPad() },
			    { "half_bound", m.halfBound() },
			    { "tokenizer_vocab_size", cfg->tokenizerVocabSize },
			    { "vocab_map", cfg->vocabMapPath.empty() ? nlohmann::json(nullptr) : nlohmann::json(cfg->vocabMapPath) },
			    { "vocab_map_missing", cfg->vocabMapMissing },
			    { "out_of_vocab", cfg->clipOutOfVocab ? "clip" : "error" },
			    { "row_format", cfg->rowFormat.describe() },
			    { "row_stride", m.rowStride() },
			    { "layers", layers },
			    { "total_rows", m.totalRows() },
			    { "total_bytes", m.totalBytes() } });
		return 0;
	}

	printf("model %s  fingerprint %s\n", cfg->name.c_str(), fingerprintHex(m.fingerprint()).c_str());
	printf("orders 2..%u x %u heads = %u ids per token per layer; V' %llu, pad' %lld, out-of-vocab %s\n",
	       m.maxNgram(), m.heads(), m.columns(), static_cast<unsigned long long>(m.compressedVocab()),
	       static_cast<long long>(m.compressedPad()), cfg->clipOutOfVocab ? "clip" : "error");
	if (cfg->vocabMapMissing)
		printf("NO TOKEN MAP: V' %llu != tokenizer %llu; hash, lookup, import and the agent refuse this model: %s\n",
		       static_cast<unsigned long long>(cfg->compressedVocabSize),
		       static_cast<unsigned long long>(cfg->tokenizerVocabSize), tokenMapHint().c_str());
	printf("row format %s, stride %llu B\n", cfg->rowFormat.describe().c_str(),
	       static_cast<unsigned long long>(m.rowStride()));
	for (const LayerLayout &L : m.layers()) {
		printf("layer %u: %llu rows, %s\n", L.layerId, static_cast<unsigned long long>(L.rows),
		       formatBytes(L.tableBytes).c_str());
		printf("  multipliers %s\n", nlohmann::json(L.multipliers).dump().c_str());
		printf("  primes      %s\n", nlohmann::json(L.primes).dump().c_str());
	}
	printf("total %llu rows, %s\n", static_cast<unsigned long long>(m.totalRows()),
	       formatBytes(m.totalBytes()).c_str());
	return 0;
}

} // namespace

void addModelCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<ModelArgs>();
	CLI::App *sub = root.add_subcommand("model", "Show the row layout derived from a model file");
	sub->add_option("MODEL", a->path, "Model file (MODEL.json)")->required();
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runModel(*a); });
}

} // namespace engrampool::cli
