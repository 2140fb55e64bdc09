// SPDX-License-Identifier: Apache-2.0
// cmd_lookup.cpp - `engrampool lookup URI --model MODEL.json --tokens '[[...]]' --out FILE.npy`:
// one prefetch through the agent on the host device, written as
// [layers][B][T_max][(N-1)*H][D] (fp32/fp16 as stored, bf16 widened to fp32, scaled
// formats such as fp8-e4m3 + e8m0 dequantized to fp32; --raw: the stored row bytes,
// [layers][B][T_max][(N-1)*H][row_bytes] uint8), shorter sequences zero-padded, and the
// live mask [B][T_max] uint8 (1 = a live token, 0 = dead or padding) in FILE.live.npy.
#include <algorithm>
#include <cstring>
#include <optional>
#include <unistd.h>

#include "agent/agent.hpp"
#include "cli.hpp"
#include "dead_flags.hpp"
#include "io/file_util.hpp"
#include "io/npy.hpp"
#include "model/widen.hpp"
#include "util/units.hpp"

namespace engrampool::cli {

namespace {
struct LookupArgs {
	std::string uri, model, tokens, tokensFile, out, dead, deadFile;
	bool force = false, json = false, raw = false;
};

constexpr uint64_t kMaxOutputFixed = 4ull << 30;

// The dense output buffer's cap: 4 GiB, or a quarter of RAM when that is less.
uint64_t maxOutputBytes()
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	uint64_t ram = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
	return ram ? std::min(kMaxOutputFixed, ram / 4) : kMaxOutputFixed;
}

// Bytes of [L][B][T_max][J][D] x elem; nullopt on overflow.
std::optional<uint64_t> denseBytes(std::initializer_list<uint64_t> dims)
{
	uint64_t n = 1;
	for (uint64_t d : dims)
		if (__builtin_mul_overflow(n, d, &n))
			return std::nullopt;
	return n;
}

// FILE.npy -> FILE.live.npy (any other name: NAME.live.npy).
std::string livePath(const std::string &out)
{
	const std::string ext = ".npy";
	if (out.size() > ext.size() && out.compare(out.size() - ext.size(), ext.size(), ext) == 0)
		return out.substr(0, out.size() - ext.size()) + ".live.npy";
	return out + ".live.npy";
}

int runLookup(const LookupArgs &a)
{
	auto seqs = readTokens(a.tokens, a.tokensFile);
	if (!seqs)
		return fail(seqs.status());
	auto dead = readDeadFlags(a.dead, a.deadFile, *seqs);
	if (!dead)
		return fail(dead.status());
	auto cfg = loadModelFile(a.model);
	if (!cfg)
		return fail(cfg.status());
	size_t B = seqs->size(), Tmax = 0, total = 0;
	for (auto &s : *seqs) {
		Tmax = std::max(Tmax, s.size());
		total += s.size();
	}
	if (total == 0)
		return fail("--tokens holds no token ids");
	// The output is dense (sequences zero-padded to the longest): size it before any
	// allocation, with overflow checks.
	const RowFormat &f = cfg->rowFormat;
	const bool asFp16 = !a.raw && f.dtype == Dtype::Fp16;
	size_t L = cfg->layerIds.size(), J = cfg->headsPerLayer(), D = a.raw ? f.rowBytes() : f.valuesPerRow;
	size_t elem = a.raw ? 1 : asFp16 ? 2 : 4;
	const char *dtypeOut = a.raw ? "uint8" : asFp16 ? "float16" : "float32";
	auto outBytes = denseBytes({L, B, Tmax, J, D, elem});
	uint64_t cap = maxOutputBytes();
	if (!outBytes || *outBytes > cap)
		return fail("the output [" + std::to_string(L) + "][" + std::to_string(B) + "][" + std::to_string(Tmax) +
			    "][" + std::to_string(J) + "][" + std::to_string(D) + "] x " + std::to_string(elem) + " B would be " +
			    (outBytes ? formatBytes(*outBytes) : std::string("more than 16 EiB")) +
			    " (sequences are zero-padded to the longest, " + std::to_string(Tmax) + " tokens); the limit is " +
			    formatBytes(cap) + " (4 GiB or a quarter of RAM): split the batch or group sequences of similar length");
	// Never over the pool's own backing file (also through a symlink or hard link); never
	// over any existing file without --force; a symlink at --out is replaced, not followed.
	std::vector<std::pair<std::string, std::string>> protect;
	if (auto u = parseRegionUri(a.uri); u && !u->path.empty())
		protect.push_back({u->path, "the backing file of pool " + a.uri});
	auto outError = [&](const Status &s) {
		return fail(s.code() == -EEXIST ? "--out: " + s.message() + "; pass --force to replace it"
						: "--out: " + s.message());
	};
	if (Status s = io::checkOutputPath(a.out, protect, a.force); !s)
		return outError(s);
	const std::string liveOut = livePath(a.out);
	if (Status s = io::checkOutputPath(liveOut, protect, a.force); !s)
		return outError(s);
	AgentConfig ac;
	ac.poolUri = a.uri;
	ac.model = &cfg.value();
	ac.maxBatchTokens = (uint32_t)total;
	ac.maxSequences = (uint32_t)B;
	ac.slots = 1;
	ac.registerHost = false; // a one-shot tool, not a serving host
	auto agent = HostAgent::create(ac);
	if (!agent)
		return fail(agent.status());
	std::vector<BatchEntry> batch(B);
	std::vector<const uint8_t *> deadPtrs(B, nullptr);
	for (size_t b = 0; b < B; b++) {
		batch[b] = {b, (*seqs)[b].data(), (uint32_t)(*seqs)[b].size(), kSeqStart | kSeqEnd};
		if (!dead->empty())
			deadPtrs[b] = (*dead)[b].data();
	}
	uint64_t ticket = 0;
	if (int rc = (*agent)->prefetch(batch.data(), B, &ticket, dead->empty() ? nullptr : deadPtrs.data()); rc != 0) {
		// Data-plane codes carry no text: name the likely cause here.
		if (rc == EP_E_TOKEN)
			return fail(makeError(rc, "a token id is outside the model's vocabulary (tokenizer_vocab_size " +
							  std::to_string(cfg->tokenizerVocabSize) + ")"));
		return fail(makeError(rc, std::string("prefetch: ") + errorName(rc) + " " + (*agent)->lastError()));
	}
	if (int rc = (*agent)->wait(ticket); rc != 0)
		return fail(makeError(rc, "lookup: " + (*agent)->lastError()));

	if ((*agent)->layers() != L || (*agent)->layout().columns() != J)
		return fail("lookup: the agent's layout differs from the model file's");
	std::vector<uint8_t> outBuf(*outBytes, 0);
	uint64_t generation = 0; // the ticket's: a re-read after a replace may move it past the agent's
	for (size_t l = 0; l < L; l++) {
		LayerOutput o;
		if (int rc = (*agent)->output(ticket, (uint32_t)l, &o); rc != 0)
			return fail(makeError(rc, "lookup: output"));
		generation = o.generation;
		size_t tok = 0;
		for (size_t b = 0; b < B; b++)
			for (size_t t = 0; t < (*seqs)[b].size(); t++, tok++)
				for (size_t j = 0; j < J; j++) {
					const uint8_t *row = o.rows + (tok * J + j) * o.rowStride;
					uint8_t *dst = outBuf.data() + ((((l * B + b) * Tmax + t) * J + j) * D) * elem;
					if (a.raw)
						std::memcpy(dst, row, D);
					else if (asFp16)
						std::memcpy(dst, row, D * 2);
					else
						dequantizeRow(f, row, reinterpret_cast<float *>(dst));
				}
	}
	// The live mask: 1 for a live token, 0 for a dead one and for padding.
	std::vector<uint8_t> live(B * Tmax, 0), mask(total);
	size_t maskTokens = 0;
	if (int rc = (*agent)->liveMask(ticket, mask.data(), mask.size(), &maskTokens); rc != 0 || maskTokens != total)
		return fail(makeError(rc ? rc : -EIO, "lookup: live mask"));
	for (size_t b = 0, tok = 0; b < B; b++)
		for (size_t t = 0; t < (*seqs)[b].size(); t++, tok++)
			live[b * Tmax + t] = mask[tok];
	(*agent)->release(ticket);
	std::vector<uint64_t> shape = {L, B, Tmax, J, D};
	Status ws = io::writeOutputFile(a.out, protect, a.force, [&](const std::string &tmp) {
		return io::writeNpy(tmp, a.raw ? "|u1" : asFp16 ? "<f2" : "<f4", shape, outBuf.data(), outBuf.size());
	});
	if (!ws)
		return outError(ws);
	ws = io::writeOutputFile(liveOut, protect, a.force, [&](const std::string &tmp) {
		return io::writeNpy(tmp, "|u1", {B, Tmax}, live.data(), live.size());
	});
	if (!ws)
		return outError(ws);
	const size_t deadCount = std::count(mask.begin(), mask.end(), 0);
	if (a.json)
		printJson({{"out", a.out}, {"shape", shape}, {"dtype", dtypeOut}, {"dequantized", !a.raw && f.scaleBlock > 0},
			   {"live_out", liveOut}, {"live_shape", std::vector<uint64_t>{B, Tmax}}, {"dead_tokens", deadCount},
			   {"generation", generation}});
	else
		printf("wrote %s: [%zu, %zu, %zu, %zu, %zu] %s%s from generation %llu; live mask [%zu, %zu] in %s (%zu dead)\n",
		       a.out.c_str(), L, B, Tmax, J, D, dtypeOut, !a.raw && f.scaleBlock > 0 ? " (dequantized)" : "",
		       (unsigned long long)generation, B, Tmax, liveOut.c_str(), deadCount);
	return 0;
}
} // namespace

void addLookupCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<LookupArgs>();
	CLI::App *sub = root.add_subcommand("lookup", "Run one agent prefetch on the host device and write the rows as .npy");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	sub->add_option("--model", a->model, "MODEL.json")->required();
	sub->add_option("--tokens", a->tokens, "Token ids as JSON, e.g. '[[1,2,3],[4,5]]' (ragged allowed; ids 0..2^63-1, "
			"at most 65536 sequences and 1048576 ids)");
	sub->add_option("--tokens-file", a->tokensFile, "File holding the same JSON (a regular file of at most 256 MiB)");
	sub->add_option("--dead", a->dead, "Dead-token flags (DeepSeek-V4.1 image positions) as JSON 0/1 with the shape of "
			"--tokens: a dead position's rows are those of pad' only and no later n-gram reaches across it");
	sub->add_option("--dead-file", a->deadFile, "File holding the same JSON as --dead");
	sub->add_option("--out", a->out,
			"Output .npy: [layers][B][T_max][(N-1)*H][D] float32 (fp16 tables: float16; scaled fp8 tables "
			"dequantized), at most 4 GiB or a quarter of RAM; the live mask [B][T_max] uint8 goes to "
			"FILE.live.npy beside it")
		->required();
	sub->add_flag("--raw", a->raw, "Write the stored row bytes instead: [layers][B][T_max][(N-1)*H][row_bytes] uint8 "
		      "(values then scales, as packed in the pool)");
	sub->add_flag("--force", a->force,
		      "Replace an existing --out file (never the pool's own backing file; a symlink is replaced, not "
		      "followed)");
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runLookup(*a); });
}

} // namespace engrampool::cli
