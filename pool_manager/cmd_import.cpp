// SPDX-License-Identifier: Apache-2.0
// cmd_import.cpp - `engrampool import URI --model MODEL.json --layer L --from FILE | --random`,
// and `engrampool import URI --checkpoint DIR [--layer L]...` (every Engram layer of a
// Hugging Face checkpoint, one publish per layer, layers already published skipped).
#include <algorithm>
#include <cstring>
#include <memory>

#include "cli.hpp"
#include "hashing/primes.hpp"
#include "io/checkpoint.hpp"
#include "io/row_source.hpp"
#include "tokenizer/token_map.hpp"
#include "util/checksum.hpp"
#include "util/units.hpp"

namespace engrampool::cli {

namespace {

struct ImportArgs {
	std::string uri, model, from, tensor, scaleTensor, scales, name, checkpoint, layout;
	std::vector<int64_t> layers;
	int64_t layer = -1;
	bool random = false, replace = false, json = false;
	uint64_t seed = 0;
	uint32_t waitMs = 10000;
	uint32_t threads = 0;
};

// XXH3 of the rows a source would write, as the writer computes it: packed, rows x
// stride; planar, the rows packed without padding (values then scales of each row).
Result<uint64_t> sourceXxh3(io::RowSource &src, const RowFormat &f, format::TableLayout layout, Progress &progress)
{
	const bool planar = layout == format::TableLayout::Planar;
	const uint64_t stride = f.rowStride();
	const uint64_t hashed = planar ? f.rowBytes() : stride;
	Xxh3Stream hash;
	const uint64_t chunkRows = std::max<uint64_t>(1, (16ull << 20) / stride);
	std::unique_ptr<uint8_t[]> buf(new uint8_t[chunkRows * stride]);
	for (uint64_t r = 0; r < src.rows(); r += chunkRows) {
		uint64_t n = std::min(chunkRows, src.rows() - r);
		EP_TRY(src.read(r, n, buf.get()));
		if (hashed == stride)
			hash.update(buf.get(), n * stride);
		else
			for (uint64_t i = 0; i < n; i++)
				hash.update(buf.get() + i * stride, hashed);
		progress.update(r + n);
	}
	return hash.digest();
}

// --layout: default packed (measured: README "Planar or packed tables").
Result<format::TableLayout> importLayout(const ImportArgs &a, const RowFormat &f)
{
	if (a.layout.empty())
		return format::TableLayout::Packed;
	auto l = parseLayout(a.layout);
	if (!l)
		return l.status();
	if (*l == format::TableLayout::Planar && f.scaleBytes() == 0)
		return makeError(-EINVAL, "--layout planar needs a row format with a scale block (values and scales "
					  "planes); the model's rows are " + f.describe() + ": import them packed");
	return *l;
}

nlohmann::json tableJson(const TableInfo &t)
{
	return {{"table", t.name},
		{"model", t.model},
		{"model_fingerprint", fingerprintHex(t.modelFingerprint)},
		{"layer_id", t.layerId},
		{"rows", t.rows},
		{"row_bytes", t.rowBytes},
		{"row_stride", t.rowStride},
		{"row_format", t.format.describe()},
		{"layout", layoutName(t.layout)},
		{"data_bytes", t.dataBytes},
		{"data_offset", t.dataOffset},
		{"xxh3", fingerprintHex(t.dataXxh3)},
		{"generation", t.generation}};
}

int runCheckpointImport(const ImportArgs &a)
{
	if (!a.model.empty() || !a.from.empty() || a.random || !a.tensor.empty() || !a.scaleTensor.empty() ||
	    !a.scales.empty())
		return fail("--checkpoint takes the model and the tables from the checkpoint: drop --model, --from, "
			    "--random, --tensor, --scale-tensor and --scales");
	if (!a.name.empty() && a.layers.size() != 1)
		return fail("--name names one table: give it with exactly one --layer");
	// Everything about the input is checked, for every layer, before the pool is touched.
	auto ck = io::openCheckpoint(a.checkpoint);
	if (!ck)
		return fail(ck.status());
	auto tm = tokenizer::buildTokenMap(ck->tokenizerPath);
	if (!tm)
		return fail(tm.status());
	auto cfg = io::checkpointModel(*ck, io::checkpointModelName(*ck), tm->map, ck->tokenizerPath);
	if (!cfg)
		return fail(cfg.status());
	const uint64_t fp = modelFingerprint(*cfg);
	const auto rows = hashing::tableRows(*cfg);
	auto layout = importLayout(a, cfg->rowFormat);
	if (!layout)
		return fail(layout.status());
	struct Job {
		uint32_t layer;
		uint64_t rows;
		std::unique_ptr<io::RowSource> src;
	};
	std::vector<Job> jobs;
	std::vector<int64_t> wanted = a.layers;
	if (wanted.empty())
		wanted.assign(cfg->layerIds.begin(), cfg->layerIds.end());
	for (int64_t l : wanted) {
		auto it = l > UINT32_MAX ? cfg->layerIds.end()
					 : std::find(cfg->layerIds.begin(), cfg->layerIds.end(), (uint32_t)l);
		if (it == cfg->layerIds.end()) {
			std::string ids;
			for (auto x : cfg->layerIds)
				ids += (ids.empty() ? "" : ", ") + std::to_string(x);
			return fail("--layer " + std::to_string(l) + " is not an Engram layer of '" + a.checkpoint +
				    "' (engram_layer_ids: " + ids + ")");
		}
		for (const Job &j : jobs)
			if (j.layer == (uint32_t)l)
				return fail("--layer " + std::to_string(l) + " given twice");
		uint64_t n = rows[(size_t)(it - cfg->layerIds.begin())];
		auto src = io::openCheckpointLayer(*ck, *cfg, (uint32_t)l, n);
		if (!src)
			return fail(src.status());
		jobs.push_back({(uint32_t)l, n, std::move(src.value())});
	}

	auto pool = openPool(a.uri, true, a.waitMs);
	if (!pool)
		return fail(pool.status());
	const uint64_t stride = cfg->rowFormat.rowStride();
	nlohmann::json out = nlohmann::json::array();
	for (Job &j : jobs) {
		const std::string name = a.name.empty() ? defaultTableName(cfg->name, j.layer) : a.name;
		auto snap = (*pool)->snapshot();
		if (!snap)
			return fail(snap.status());
		const TableInfo *old = snap->findTable(name);
		bool replace = false;
		if (old) {
			// A re-run after an interruption: the same model and the same rows are
			// already published. Reading the source is cheaper than writing and publishing.
			// Another layout is another table: it is replaced (with --replace), not skipped.
			if (old->modelFingerprint == fp && old->rows == j.rows && old->layout == *layout &&
			    old->rowBytes == cfg->rowFormat.rowBytes() &&
			    (*layout == format::TableLayout::Planar || old->rowStride == stride)) {
				Progress verifying(!a.json && stdoutIsTty(), j.rows, stride, "check " + name);
				auto h = sourceXxh3(*j.src, cfg->rowFormat, *layout, verifying);
				if (!h)
					return fail(h.status());
				verifying.finish();
				if (*h == old->dataXxh3) {
					if (!a.json)
						printf("%s: already published from this checkpoint (xxh3 %s), skipped\n",
						       name.c_str(), fingerprintHex(*h).c_str());
					nlohmann::json t = tableJson(*old);
					t["skipped"] = true;
					out.push_back(t);
					continue;
				}
			}
			if (!a.replace)
				return fail("table '" + name + "' already holds other rows (model fingerprint " +
					    fingerprintHex(old->modelFingerprint) + ", " + layoutName(old->layout) +
					    ", xxh3 " + fingerprintHex(old->dataXxh3) +
					    "): --replace publishes the checkpoint's version (" + layoutName(*layout) + ")");
			replace = true;
		}
		Progress progress(!a.json && stdoutIsTty(), j.rows, stride, "import " + name);
		ImportRequest req;
		req.tableName = name;
		req.model = &cfg.value();
		req.layerId = j.layer;
		req.rows = j.rows;
		req.replace = replace;
		req.layout = *layout;
		req.progress = [&](uint64_t done) { progress.update(done); };
		req.threads = a.threads;
		uint64_t t0 = nowMonotonicNs();
		auto res = (*pool)->importTable(req, *j.src);
		if (!res)
			return fail(res.status());
		progress.finish();
		double secs = (nowMonotonicNs() - t0) / 1e9;
		const TableInfo &t = res->table;
		if (!a.json)
			printf("imported %s: %llu rows x %u B (%s) from %s at generation %llu, %.2f GB/s, xxh3 %s\n",
			       t.name.c_str(), (unsigned long long)t.rows, t.rowBytes, formatBytes(t.dataBytes).c_str(),
			       j.src->describe().c_str(), (unsigned long long)res->generation,
			       secs > 0 ? t.dataBytes / secs / 1e9 : 0.0, fingerprintHex(t.dataXxh3).c_str());
		nlohmann::json tj = tableJson(t);
		tj["generation"] = res->generation;
		tj["skipped"] = false;
		tj["replaced"] = res->replacedSlot != UINT64_MAX;
		tj["source"] = j.src->describe();
		tj["seconds"] = secs;
		out.push_back(tj);
	}
	if (a.json)
		printJson({{"checkpoint", a.checkpoint},
			   {"model", cfg->name},
			   {"model_fingerprint", fingerprintHex(fp)},
			   {"compressed_vocab_size", cfg->compressedVocabSize},
			   {"tokenizer_vocab_size", cfg->tokenizerVocabSize},
			   {"tables", out}});
	return 0;
}

int runModelImport(const ImportArgs &a)
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
	auto layout = importLayout(a, cfg->rowFormat);
	if (!layout)
		return fail(layout.status());

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
	req.layout = *layout;
	req.progress = [&](uint64_t done) { progress.update(done); };
	req.threads = a.threads;
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
			   {"layout", layoutName(t.layout)},
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

int runImport(const ImportArgs &a)
{
	if (!a.checkpoint.empty())
		return runCheckpointImport(a);
	if (a.model.empty())
		return fail("give --model MODEL.json (with --from FILE or --random), or --checkpoint DIR");
	if (a.layers.size() != 1)
		return fail("--model imports one table: give exactly one --layer");
	ImportArgs one = a;
	one.layer = a.layers[0];
	return runModelImport(one);
}

} // namespace

void addImportCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<ImportArgs>();
	CLI::App *sub = root.add_subcommand(
		"import", "Import (or --replace) the table of one Engram layer, or every layer of a checkpoint");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	sub->add_option("--model", a->model, "MODEL.json (reference field names)");
	sub->add_option("--checkpoint", a->checkpoint,
			"Hugging Face model directory (config.json, tokenizer.json, safetensors shards): import every "
			"Engram layer, or those given with --layer; layers already published from it are skipped");
	sub->add_option("--layer", a->layers, "Engram layer id (one of the model's layer_ids); repeatable with --checkpoint")
		->check(kNonNegativeInt);
	sub->add_option("--from", a->from, "Source file: .npy or .safetensors");
	sub->add_option("--tensor", a->tensor, "safetensors: weight tensor name");
	sub->add_option("--scale-tensor", a->scaleTensor, "safetensors: scale tensor (formats with a scale block)");
	sub->add_option("--scales", a->scales, "npy: scales file (formats with a scale block)");
	sub->add_flag("--random", a->random, "Fill rows deterministically from --seed (demos, benchmarks)");
	sub->add_option("--seed", a->seed, "Seed for --random (0..2^64-1)")->check(kNonNegativeInt)->capture_default_str();
	sub->add_option("--name", a->name,
			"Table name (default MODEL/layerL): 1..63 bytes of UTF-8, no control characters, not blank");
	sub->add_flag("--replace", a->replace, "Publish a new version of an existing table");
	sub->add_option("--layout", a->layout,
			"packed (default: each row's values then its scales) or planar (a values plane and a scales "
			"plane, each with exact row pitch, 2 MiB-aligned; formats with a scale block only)");
	sub->add_option("--threads", a->threads,
			"Threads reading rows into the pool (default 0: one per CPU, at most 4); the checksum "
			"follows on the calling thread")
		->check(CLI::Range(0, 64));
	sub->add_option("--wait-lock", a->waitMs, "Milliseconds to wait for another writer")
		->check(kNonNegativeInt)
		->capture_default_str();
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runImport(*a); });
}

} // namespace engrampool::cli
