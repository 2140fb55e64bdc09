// SPDX-License-Identifier: Apache-2.0
// cmd_import.cpp - `engrampool import URI --model MODEL.json --layer L --from FILE | --random`.
#include <algorithm>

#include "cli.hpp"
#include "hashing/primes.hpp"
#include "io/row_source.hpp"
#include "util/units.hpp"

namespace engrampool::cli {

namespace {

struct ImportArgs {
	std::string uri, model, from, tensor, scaleTensor, scales, name;
	int64_t layer = -1;
	bool random = false, replace = false, json = false;
	uint64_t seed = 0;
	uint32_t waitMs = 10000;
};

int runImport(const ImportArgs &a)
{
	auto cfg = loadModelFile(a.model);
	if (!cfg)
		return fail(cfg.status());
	if (a.layer < 0)
		return fail("--layer must be a non-negative integer (one of the model's layer_ids)");
	auto it = a.layer > UINT32_MAX ? cfg->layerIds.end()
				       : std::find(cfg->layerIds.begin(), cfg->layerIds.end(), (uint32_t)a.layer);
	if (it == cfg->layerIds.end()) {
		std::string ids;
		for (auto l : cfg->layerIds)
			ids += (ids.empty() ? "" : ", ") + std::to_string(l);
		return fail("--layer " + std::to_string(a.layer) + " is not an Engram layer of model '" + cfg->name +
			    "' (layer_ids: " + ids + ")");
	}
	uint64_t rows = hashing::tableRows(*cfg)[(size_t)(it - cfg->layerIds.begin())];
	if (a.random == !a.from.empty())
		return fail("give exactly one source: --from FILE or --random");

	std::unique_ptr<io::RowSource> src;
	if (a.random) {
		src = io::makeRandomSource(cfg->rowFormat, rows, a.seed);
	} else {
		io::SourceSpec spec{a.from, a.tensor, a.scaleTensor, a.scales};
		auto s = io::openFileSource(spec, cfg->rowFormat, rows);
		if (!s)
			return fail(s.status());
		src = std::move(s.value());
	}
	// Everything about the input is checked before the pool is touched.
	auto pool = openPool(a.uri, true, a.waitMs);
	if (!pool)
		return fail(pool.status());

	Progress progress(!a.json && stdoutIsTty(), rows, cfg->rowFormat.rowStride(), "import");
	ImportRequest req;
	req.tableName = a.name;
	req.model = &cfg.value();
	req.layerId = (uint32_t)a.layer;
	req.rows = rows;
	req.replace = a.replace;
	req.progress = [&](uint64_t done) { progress.update(done); };
	uint64_t t0 = nowMonotonicNs();
	auto res = (*pool)->importTable(req, *src);
	if (!res)
		return fail(res.status());
	progress.finish();
	double secs = (nowMonotonicNs() - t0) / 1e9;
	const TableInfo &t = res->table;
	if (a.json) {
		printJson({{"table", t.name},
			   {"model", t.model},
			   {"model_fingerprint", fingerprintHex(t.modelFingerprint)},
			   {"layer_id", t.layerId},
			   {"rows", t.rows},
			   {"row_bytes", t.rowBytes},
			   {"row_stride", t.rowStride},
			   {"row_format", t.format.describe()},
			   {"data_bytes", t.dataBytes},
			   {"data_offset", t.dataOffset},
			   {"xxh3", fingerprintHex(t.dataXxh3)},
			   {"generation", res->generation},
			   {"replaced", res->replacedSlot != UINT64_MAX},
			   {"source", src->describe()},
			   {"seconds", secs}});
	} else {
		printf("imported %s: %llu rows x %u B (%s) from %s at generation %llu, %.2f GB/s\n", t.name.c_str(),
		       (unsigned long long)t.rows, t.rowBytes, formatBytes(t.dataBytes).c_str(), src->describe().c_str(),
		       (unsigned long long)res->generation, secs > 0 ? t.dataBytes / secs / 1e9 : 0.0);
	}
	return 0;
}

} // namespace

void addImportCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<ImportArgs>();
	CLI::App *sub = root.add_subcommand("import", "Import (or --replace) the table of one Engram layer");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	sub->add_option("--model", a->model, "MODEL.json (reference field names)")->required();
	sub->add_option("--layer", a->layer, "Engram layer id (one of the model's layer_ids)")
		->check(kNonNegativeInt)
		->required();
	sub->add_option("--from", a->from, "Source file: .npy or .safetensors");
	sub->add_option("--tensor", a->tensor, "safetensors: weight tensor name");
	sub->add_option("--scale-tensor", a->scaleTensor, "safetensors: scale tensor (formats with a scale block)");
	sub->add_option("--scales", a->scales, "npy: scales file (formats with a scale block)");
	sub->add_flag("--random", a->random, "Fill rows deterministically from --seed (demos, benchmarks)");
	sub->add_option("--seed", a->seed, "Seed for --random (0..2^64-1)")->check(kNonNegativeInt)->capture_default_str();
	sub->add_option("--name", a->name,
			"Table name (default MODEL/layerL): 1..63 bytes of UTF-8, no control characters, not blank");
	sub->add_flag("--replace", a->replace, "Publish a new version of an existing table");
	sub->add_option("--wait-lock", a->waitMs, "Milliseconds to wait for another writer")
		->check(kNonNegativeInt)
		->capture_default_str();
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runImport(*a); });
}

} // namespace engrampool::cli
