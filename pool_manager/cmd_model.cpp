// SPDX-License-Identifier: Apache-2.0
// cmd_model.cpp - `engrampool model MODEL.json`: the layout derived from a model file;
// `engrampool model --from-checkpoint DIR --out MODEL.json`: the model file (and its
// token map .npy beside it) of a Hugging Face checkpoint;
// `engrampool model --from-pool URI [--name MODEL] --out MODEL.json`: the same from what
// a pool holds (its model record and stored token map).
#include <filesystem>
#include <fstream>

#include "cli.hpp"
#include "hashing/layout.hpp"
#include "io/checkpoint.hpp"
#include "io/file_util.hpp"
#include "io/npy.hpp"
#include "pool/model_record.hpp"
#include "tokenizer/token_map.hpp"
#include "util/units.hpp"

namespace engrampool::cli {

namespace {

using namespace engrampool::hashing;

struct ModelArgs {
	std::string path, checkpoint, pool, out, name;
	bool json = false, force = false;
};

int runModel(const ModelArgs &a);

// The map goes beside the model file: MODEL.json -> MODEL.vocab_map.npy.
std::string mapPathFor(const std::string &modelPath)
{
	std::filesystem::path p(modelPath);
	return (p.parent_path() / (p.stem().string() + ".vocab_map.npy")).string();
}

// Write the model file `doc` to `out` (atomically), then load it back the strict way, as
// hash, lookup and the agent will: it must rebuild to `fingerprint` (`what` names whose).
Result<ModelConfig> writeModelFile(const std::string &out, bool force, const nlohmann::json &doc,
				   uint64_t fingerprint, const std::string &what)
{
	Status s = io::writeOutputFile(out, {}, force, [&](const std::string &tmp) -> Status {
		std::ofstream f(tmp);
		f << doc.dump(2) << "\n";
		f.close();
		if (!f)
			return makeError(-EIO, "write '" + tmp + "' failed");
		return Status::ok();
	});
	if (!s)
		return s;
	auto back = loadModelFile(out);
	if (!back)
		return back.status();
	if (modelFingerprint(*back) != fingerprint)
		return makeError(EP_E_MODEL, "'" + out + "' does not load back to " + what + " (fingerprint " +
						     fingerprintHex(modelFingerprint(*back)) + " != " + fingerprintHex(fingerprint) +
						     ")");
	return back;
}

int runFromCheckpoint(const ModelArgs &a)
{
	if (a.out.empty())
		return fail("--from-checkpoint needs --out MODEL.json");
	if (!a.path.empty())
		return fail("give a MODEL file to show, or --from-checkpoint DIR --out MODEL.json, not both");
	const std::string mapPath = mapPathFor(a.out);
	// Refuse before the work (building the map reads the whole tokenizer).
	if (Status s = io::checkOutputPath(a.out, {}, a.force); !s)
		return fail(s.code() == -EEXIST ? makeError(s.code(), s.message() + " (--force overwrites)") : s);
	if (Status s = io::checkOutputPath(mapPath, {}, a.force); !s)
		return fail(s.code() == -EEXIST ? makeError(s.code(), s.message() + " (--force overwrites)") : s);
	auto ck = io::openCheckpoint(a.checkpoint);
	if (!ck)
		return fail(ck.status());
	auto tm = tokenizer::buildTokenMap(ck->tokenizerPath);
	if (!tm)
		return fail(tm.status());
	const std::string name = a.name.empty() ? io::checkpointModelName(*ck) : a.name;
	// Every check (map size, prime sums) before anything is written.
	auto cfg = io::checkpointModel(*ck, name, tm->map, mapPath);
	if (!cfg)
		return fail(cfg.status());
	const std::string mapRef = std::filesystem::path(mapPath).filename().string();
	nlohmann::json doc = io::checkpointModelJson(*ck, name, tm->map.size(), mapRef);
	Status s = io::writeOutputFile(mapPath, {}, a.force,
				       [&](const std::string &tmp) { return tokenizer::writeTokenMapNpy(*tm, tmp); });
	if (!s)
		return fail(s);
	auto back = writeModelFile(a.out, a.force, doc, modelFingerprint(*cfg), "the checkpoint's model");
	if (!back)
		return fail(back.status());
	if (!a.json)
		printf("wrote %s and %s: model %s, %llu tokenizer ids -> %llu compressed, pad' %lld, fingerprint %s\n",
		       a.out.c_str(), mapPath.c_str(), name.c_str(), (unsigned long long)tm->tokenizerSize,
		       (unsigned long long)tm->compressedSize, (long long)back->compressedPadId(),
		       fingerprintHex(modelFingerprint(*back)).c_str());
	ModelArgs show;
	show.path = a.out;
	show.json = a.json;
	return a.json ? runModel(show) : 0;
}

int runFromPool(const ModelArgs &a)
{
	if (a.out.empty())
		return fail("--from-pool needs --out MODEL.json");
	if (!a.path.empty() || !a.checkpoint.empty())
		return fail("give one of a MODEL file to show, --from-checkpoint DIR or --from-pool URI");
	auto pool = openPool(a.pool, false);
	if (!pool)
		return fail(pool.status());
	auto s = (*pool)->snapshot();
	if (!s)
		return fail(s.status());
	std::string name = a.name;
	if (name.empty()) {
		if (s->models.size() != 1) {
			std::string names;
			for (auto &m : s->models)
				names += (names.empty() ? "" : ", ") + displayText(m.name);
			return fail("--from-pool: the pool holds " + std::to_string(s->models.size()) +
				    " models; say which with --name MODEL" + (names.empty() ? "" : " (" + names + ")"));
		}
		name = s->models[0].name;
	}
	const ModelRecord *m = s->findModel(name);
	if (!m) {
		// tokenMap names a quarantined model's damage.
		auto map = (*pool)->tokenMap(name);
		return fail(map ? makeError(-ENOENT, "no model named '" + displayText(name) + "' in " + a.pool) : map.status());
	}
	const bool identity = m->body.vocabMapHash == 0;
	const std::string mapPath = identity ? "" : mapPathFor(a.out);
	if (Status st = io::checkOutputPath(a.out, {}, a.force); !st)
		return fail(st.code() == -EEXIST ? makeError(st.code(), st.message() + " (--force overwrites)") : st);
	if (!identity)
		if (Status st = io::checkOutputPath(mapPath, {}, a.force); !st)
			return fail(st.code() == -EEXIST ? makeError(st.code(), st.message() + " (--force overwrites)") : st);
	std::vector<int64_t> map;
	if (!identity) {
		auto stored = (*pool)->tokenMap(name);
		if (!stored)
			return fail(stored.status());
		map = std::move(stored.value());
	}
	const std::string mapRef = identity ? "" : std::filesystem::path(mapPath).filename().string();
	nlohmann::json doc = modelRecordJson(*m, a.pool, mapRef);
	// Every check before anything is written: the record must parse back to its fingerprint.
	ModelParseOptions opts;
	opts.vocabMap = identity ? nullptr : &map;
	auto cfg = parseModelJson(doc.dump(), std::filesystem::path(a.out).parent_path().string(), m->name, opts);
	if (!cfg)
		return fail(std::move(cfg.status()).context("model '" + displayText(name) + "' of the pool: "));
	if (modelFingerprint(*cfg) != m->fingerprint)
		return fail(makeError(EP_E_MODEL, "model '" + displayText(name) + "': its record rebuilds to fingerprint " +
							  fingerprintHex(modelFingerprint(*cfg)) + ", the pool says " +
							  fingerprintHex(m->fingerprint)));
	Status st;
	if (!identity) {
		st = io::writeOutputFile(mapPath, {}, a.force, [&](const std::string &tmp) {
			return io::writeNpy(tmp, "<i8", {map.size()}, map.data(), map.size() * sizeof(int64_t));
		});
		if (!st)
			return fail(st);
	}
	auto back = writeModelFile(a.out, a.force, doc, m->fingerprint, "the pool's model");
	if (!back)
		return fail(back.status());
	if (!a.json) {
		if (identity)
			printf("wrote %s: model %s of %s, identity vocabulary (%llu ids), fingerprint %s\n", a.out.c_str(),
			       displayText(name).c_str(), a.pool.c_str(), (unsigned long long)back->tokenizerVocabSize,
			       fingerprintHex(m->fingerprint).c_str());
		else
			printf("wrote %s and %s: model %s of %s, %llu tokenizer ids -> %llu compressed, fingerprint %s\n",
			       a.out.c_str(), mapPath.c_str(), displayText(name).c_str(), a.pool.c_str(),
			       (unsigned long long)back->tokenizerVocabSize, (unsigned long long)back->compressedVocabSize,
			       fingerprintHex(m->fingerprint).c_str());
		return 0;
	}
	ModelArgs show;
	show.path = a.out;
	show.json = true;
	return runModel(show);
}

int runModel(const ModelArgs &a)
{
	if (!a.pool.empty())
		return runFromPool(a);
	if (!a.checkpoint.empty())
		return runFromCheckpoint(a);
	if (a.path.empty())
		return fail("give a MODEL file, --from-checkpoint DIR --out MODEL.json or --from-pool URI --out MODEL.json");
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
	CLI::App *sub = root.add_subcommand(
		"model", "Show the row layout derived from a model file, or write the model file of a checkpoint or "
			 "of a model a pool holds");
	sub->add_option("MODEL", a->path, "Model file (MODEL.json)");
	sub->add_option("--from-checkpoint", a->checkpoint,
			"Hugging Face model directory: write its model file (--out) and token map (beside it, "
			"MODEL.vocab_map.npy), built from config.json and tokenizer.json");
	sub->add_option("--from-pool", a->pool,
			"Pool URI: write the model file (--out) of a model the pool holds, and its token map as the "
			"pool stores it (beside it, MODEL.vocab_map.npy); the file's fingerprint is the pool's");
	sub->add_option("--out", a->out, "With --from-checkpoint or --from-pool: the model file to write");
	sub->add_option("--name", a->name,
			"With --from-checkpoint: the model's name (default: the directory's); with --from-pool: the "
			"pool's model to write (default: the only one)");
	sub->add_flag("--force", a->force, "With --from-checkpoint or --from-pool: overwrite the model file and its map");
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runModel(*a); });
}

} // namespace engrampool::cli
