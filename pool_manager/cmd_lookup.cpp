// SPDX-License-Identifier: Apache-2.0
// cmd_lookup.cpp - `engrampool lookup URI --model MODEL.json --tokens '[[...]]' --out FILE.npy`:
// one prefetch through the agent on the host device, written as
// [layers][B][T_max][(N-1)*H][D] (fp32/fp16 as stored, bf16/fp8 widened to fp32,
// scale blocks left out, shorter sequences zero-padded).
#include <cstring>

#include "agent/agent.hpp"
#include "cli.hpp"
#include "io/npy.hpp"
#include "model/widen.hpp"

namespace engrampool::cli {

namespace {
struct LookupArgs {
	std::string uri, model, tokens, tokensFile, out;
	bool json = false;
};

int runLookup(const LookupArgs &a)
{
	auto seqs = readTokens(a.tokens, a.tokensFile);
	if (!seqs)
		return fail(seqs.status());
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
	for (size_t b = 0; b < B; b++)
		batch[b] = {b, (*seqs)[b].data(), (uint32_t)(*seqs)[b].size(), kSeqStart | kSeqEnd};
	uint64_t ticket = 0;
	if (int rc = (*agent)->prefetch(batch.data(), B, &ticket); rc != 0) {
		// Data-plane codes carry no text: name the likely cause here.
		if (rc == EP_E_TOKEN)
			return fail(makeError(rc, "a token id is outside the model's vocabulary (tokenizer_vocab_size " +
							  std::to_string(cfg->tokenizerVocabSize) + ")"));
		return fail(makeError(rc, std::string("prefetch: ") + errorName(rc) + " " + (*agent)->lastError()));
	}
	if (int rc = (*agent)->wait(ticket); rc != 0)
		return fail(makeError(rc, "lookup: " + (*agent)->lastError()));

	const RowFormat &f = cfg->rowFormat;
	bool asFp16 = f.dtype == Dtype::Fp16;
	size_t L = (*agent)->layers(), J = (*agent)->layout().columns(), D = f.valuesPerRow;
	size_t elem = asFp16 ? 2 : 4;
	std::vector<uint8_t> outBuf(L * B * Tmax * J * D * elem, 0);
	for (size_t l = 0; l < L; l++) {
		LayerOutput o;
		if (int rc = (*agent)->output(ticket, (uint32_t)l, &o); rc != 0)
			return fail(makeError(rc, "lookup: output"));
		size_t tok = 0;
		for (size_t b = 0; b < B; b++)
			for (size_t t = 0; t < (*seqs)[b].size(); t++, tok++)
				for (size_t j = 0; j < J; j++) {
					const uint8_t *row = o.rows + (tok * J + j) * o.rowStride;
					uint8_t *dst = outBuf.data() + ((((l * B + b) * Tmax + t) * J + j) * D) * elem;
					if (asFp16)
						std::memcpy(dst, row, D * 2);
					else
						widenToFloat(f.dtype, row, D, reinterpret_cast<float *>(dst));
				}
	}
	(*agent)->release(ticket);
	std::vector<uint64_t> shape = {L, B, Tmax, J, D};
	if (Status s = io::writeNpy(a.out, asFp16 ? "<f2" : "<f4", shape, outBuf.data(), outBuf.size()); !s)
		return fail(s);
	if (a.json)
		printJson({{"out", a.out}, {"shape", shape}, {"dtype", asFp16 ? "float16" : "float32"},
			   {"generation", (*agent)->generation()}});
	else
		printf("wrote %s: [%zu, %zu, %zu, %zu, %zu] %s from generation %llu\n", a.out.c_str(), L, B, Tmax, J, D,
		       asFp16 ? "float16" : "float32", (unsigned long long)(*agent)->generation());
	return 0;
}
} // namespace

void addLookupCommand(CLI::App &root, Runner &runner)
{
	auto a = std::make_shared<LookupArgs>();
	CLI::App *sub = root.add_subcommand("lookup", "Run one agent prefetch on the host device and write the rows as .npy");
	sub->add_option("URI", a->uri, "Pool URI")->required();
	sub->add_option("--model", a->model, "MODEL.json")->required();
	sub->add_option("--tokens", a->tokens, "Token ids as JSON, e.g. '[[1,2,3],[4,5]]' (ragged allowed)");
	sub->add_option("--tokens-file", a->tokensFile, "File holding the same JSON");
	sub->add_option("--out", a->out, "Output .npy: [layers][B][T_max][(N-1)*H][D]")->required();
	addJsonFlag(sub, a->json);
	runner.on(sub, [a] { return runLookup(*a); });
}

} // namespace engrampool::cli
