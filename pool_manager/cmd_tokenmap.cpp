// SPDX-License-Identifier: Apache-2.0
// cmd_tokenmap.cpp - `engrampool tokenmap TOKENIZER.json --out MAP.npy`: DeepSeek's compressed token map.
#include "cli.hpp"
#include "io/file_util.hpp"
#include "tokenizer/token_map.hpp"

namespace engrampool::cli {

namespace {

struct TokenMapArgs {
	std::string tokenizer, out;
	uint64_t pad = 2;
	bool force = false, json = false;
};

int runTokenMap(const TokenMapArgs &a)
{
	// Never over the tokenizer itself; over another file only with --force. Checked before
	// the work, and again when the file is written.
	std::vector<std::pair<std::string, std::string>> protect = { { a.tokenizer, "the tokenizer file" } };
	auto outError = [&](const Status &s) {
		return fail(s.code() == -EEXIST ? "--out: " + s.message() + "; pass --force to replace it"
						: "--out: " + s.message());
	};
	if (Status s = io::checkOutputPath(a.out, protect, a.force); !s)
		return outError(s);
	auto m = tokenizer::buildTokenMap(a.tokenizer);
	if (!m)
		return fail(m.status());
	if (a.pad >= m->tokenizerSize)
		return fail("--pad " + std::to_string(a.pad) + " is not a tokenizer id (the tokenizer has " +
			    std::to_string(m->tokenizerSize) + " ids)");
	Status ws = io::writeOutputFile(a.out, protect, a.force,
					[&](const std::string &tmp) { return tokenizer::writeTokenMapNpy(*m, tmp); });
	if (!ws)
		return outError(ws);
	const int64_t padMapped = m->map[a.pad];
	if (a.json) {
		printJson({ { "tokenizer", a.tokenizer },
			    { "out", a.out },
			    { "ids", m->tokenizerSize },
			    { "compressed_vocab_size", m->compressedSize },
			    { "pad_id", a.pad },
			    { "pad_map", { { std::to_string(a.pad), padMapped } } } });
		return 0;
	}
	printf("%s: %llu tokenizer ids -> %llu compressed ids; map[%llu] = %lld; wrote %s\n",
	       displayText(a.tokenizer).c_str(), static_cast<unsigned long long>(m->tokenizerSize),
	       static_cast<unsigned long long>(m->compressedSize), static_cast<unsigned long long>(a.pad),
	       static_cast<long long>(padMapped), displayText(a.out).c_str());
	return 0;
}

} // namespace

void addTokenMapCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<TokenMapArgs>();
	CLI::App *sub = root.add_subcommand(
		"tokenmap", "Build the compressed token map (DeepSeek Engram rules) of a Hugging Face tokenizer.json");
	sub->add_option("TOKENIZER", a->tokenizer, "tokenizer.json of the model")->required();
	sub->add_option("--out", a->out, "Output .npy: int64 [ids], map[tokenizer id] = compressed id (a model file's "
					  "vocab_map)")
		->required();
	sub->add_option("--pad", a->pad, "Pad token id whose compressed id is reported (default 2, DeepSeek's)")
		->check(kNonNegativeInt);
	sub->add_flag("--force", a->force,
		      "Replace an existing --out file (never the tokenizer file; a symlink is replaced, not followed)");
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runTokenMap(*a); });
}

} // namespace engrampool::cli
