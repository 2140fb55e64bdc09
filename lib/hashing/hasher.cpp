// SPDX-License-Identifier: Apache-2.0
// hasher.cpp - Engram row ids for token batches: batch mode and streaming (decode) mode.
#include "hashing/hasher.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <type_traits>

namespace engrampool::hashing {

using detail::KernelLayer;

namespace {

/* Tokens are compressed into a stack buffer this many at a time. */
constexpr size_t kChunk = 256;
/* Streaming builds one window of N ids per token, this many windows at a time. */
constexpr size_t kWindows = 128;

} // namespace

const char *kernelName(Kernel k)
{
	switch (k) {
	case Kernel::Auto:
		return "auto";
	case Kernel::Scalar:
		return "scalar";
	case Kernel::Avx2:
		return "avx2";
	case Kernel::Avx512:
		return "avx512";
	}
	return "?";
}

bool kernelSupported(Kernel k)
{
	switch (k) {
	case Kernel::Avx2:
		return detail::cpuHasAvx2();
	case Kernel::Avx512:
		return detail::cpuHasAvx512();
	default:
		return true;
	}
}

Result<EngramHasher> EngramHasher::create(const ModelLayout &layout, Kernel kernel)
{
	if (!kernelSupported(kernel))
		return errorf(EP_E_UNSUPPORTED, "hash kernel %s is not supported by this CPU",
			      kernelName(kernel));
	if (kernel == Kernel::Auto)
		kernel = detail::cpuHasAvx512() ? Kernel::Avx512
			 : detail::cpuHasAvx2() ? Kernel::Avx2
						: Kernel::Scalar;

	detail::KernelFn fn = kernel == Kernel::Avx512 ? detail::hashAvx512
			      : kernel == Kernel::Avx2 ? detail::hashAvx2
						     : detail::hashScalar;

	EngramHasher h;
	h.layout_ = layout;
	h.kernel_ = kernel;
	/* Identity map and no clipping: validated ids are copied as they are. */
	h.identity_ = layout.config().vocabMap.empty() && !layout.config().clipOutOfVocab;

	for (const LayerLayout &L : layout.layers()) {
		Layer layer;
		layer.tables = detail::LayerTables::build(L.multipliers, L.primes, L.offsets, layout.heads());
		layer.fn = layer.tables.simdOk ? fn : detail::hashScalar;
		h.layers_.push_back(std::move(layer));
	}
	h.padWindow_.fill(layout.compressedPad());
	return h;
}

int64_t EngramHasher::compressOne(int64_t raw) const
{
	/* Negative ids pass through the map unchanged, as in the reference. */
	if (raw < 0)
		return raw;
	const ModelConfig &cfg = layout_.config();
	const uint64_t limit = layout_.rawLimit();
	if (static_cast<uint64_t>(raw) >= limit)
		raw = static_cast<int64_t>(limit - 1); /* only reached with clipping on */
	return cfg.vocabMap.empty() ? raw : cfg.vocabMap[static_cast<size_t>(raw)];
}

Status EngramHasher::compress(std::span<const int64_t> raw, std::span<int64_t> out) const
{
	if (out.size() < raw.size())
		return errorf(-EINVAL, "compress: output holds %zu ids, %zu needed", out.size(), raw.size());
	EP_TRY(checkTokens(raw, {}, 1, SIZE_MAX));
	for (size_t i = 0; i < raw.size(); i++)
		out[i] = compressOne(raw[i]);
	return Status::ok();
}

Status EngramHasher::checkTokens(std::span<const int64_t> tokens, std::span<const uint64_t> seqOffsets,
				 size_t sequences, size_t outSize, std::span<const uint8_t> dead) const
{
	if (!dead.empty() && dead.size() != tokens.size())
		return errorf(-EINVAL, "%zu dead flags for %zu tokens (need one per token, or none)", dead.size(),
			      tokens.size());
	if (seqOffsets.empty()) {
		if (sequences != 1)
			return errorf(-EINVAL, "%zu sequence states but no sequence offsets", sequences);
	} else {
		if (seqOffsets.size() != sequences + 1)
			return errorf(-EINVAL, "%zu sequence offsets for %zu sequences (need %zu)",
				      seqOffsets.size(), sequences, sequences + 1);
		if (seqOffsets.front() != 0 || seqOffsets.back() != tokens.size())
			return errorf(-EINVAL, "sequence offsets must run from 0 to %zu tokens",
				      tokens.size());
		for (size_t b = 0; b + 1 < seqOffsets.size(); b++)
			if (seqOffsets[b] > seqOffsets[b + 1])
				return errorf(-EINVAL, "sequence offsets decrease at sequence %zu", b);
	}
	if (outSize != SIZE_MAX && outSize < outputSize(tokens.size()))
		return errorf(-EINVAL, "output holds %zu ids, %zu needed (%zu layers x %zu tokens x %u columns)",
			      outSize, outputSize(tokens.size()), layerCount(), tokens.size(), columns());

	if (layout_.config().clipOutOfVocab)
		return Status::ok();
	const int64_t limit = static_cast<int64_t>(layout_.rawLimit());
	int64_t mx = INT64_MIN;
	if (kernel_ == Kernel::Avx512)
		mx = detail::maxInt64Avx512(tokens.data(), tokens.size());
	else
		for (int64_t v : tokens)
			mx = std::max(mx, v);
	if (mx < limit)
		return Status::ok();
	for (size_t i = 0; i < tokens.size(); i++) {
		if (tokens[i] < limit || (!dead.empty() && dead[i]))
			continue; /* a dead token's id is never read */
		size_t b = 0;
		if (!seqOffsets.empty())
			b = std::upper_bound(seqOffsets.begin(), seqOffsets.end(), i) - seqOffsets.begin() - 1;
		return errorf(EP_E_TOKEN,
			      "token id %lld (sequence %zu, token %zu) is outside the vocabulary: ids must be < %lld",
			      static_cast<long long>(tokens[i]), b,
			      i - (seqOffsets.empty() ? 0 : seqOffsets[b]), static_cast<long long>(limit));
	}
	return Status::ok();
}

void EngramHasher::hashRun(int64_t *history, const int64_t *tokens, const uint8_t *dead, size_t count,
			   size_t tokenBase, size_t totalTokens, uint64_t *out, bool rowIds) const
{
	if (!dead) {
		hashLive(history, tokens, count, tokenBase, totalTokens, out, rowIds);
		return;
	}
	/* Alternate runs of live tokens (hashed as they are) and dead ones (pad' windows). */
	for (size_t i = 0; i < count;) {
		size_t e = i;
		while (e < count && !dead[e])
			e++;
		if (e > i)
			hashLive(history, tokens + i, e - i, tokenBase + i, totalTokens, out, rowIds);
		i = e;
		while (e < count && dead[e])
			e++;
		if (e > i)
			hashDead(history, e - i, tokenBase + i, totalTokens, out, rowIds);
		i = e;
	}
}

void EngramHasher::hashDead(int64_t *history, size_t count, size_t tokenBase, size_t totalTokens,
			    uint64_t *out, bool rowIds) const
{
	/* Every dead position hashes the same all-pad' window: stride 0 reads it count times. */
	const size_t N = layout_.maxNgram();
	const size_t J = columns();
	for (size_t l = 0; l < layers_.size(); l++) {
		KernelLayer k = layers_[l].tables.view();
		layers_[l].fn(k, padWindow_.data() + N - 1, 0, count, out + (l * totalTokens + tokenBase) * J, rowIds);
	}
	/* Everything up to and including a dead token is blocked for later positions. */
	std::fill_n(history, N - 1, layout_.compressedPad());
}

void EngramHasher::hashLive(int64_t *history, const int64_t *tokens, size_t count, size_t tokenBase,
			    size_t totalTokens, uint64_t *out, bool rowIds) const
{
	const size_t hist = layout_.maxNgram() - 1;
	const size_t J = columns();
	int64_t buf[kMaxOrder - 1 + kChunk];

	std::memcpy(buf, history, hist * sizeof(int64_t));
	for (size_t done = 0; done < count;) {
		const size_t n = std::min(kChunk, count - done);
		if (identity_)
			std::memcpy(buf + hist, tokens + done, n * sizeof(int64_t));
		else
			for (size_t i = 0; i < n; i++)
				buf[hist + i] = compressOne(tokens[done + i]);
		for (size_t l = 0; l < layers_.size(); l++) {
			KernelLayer k = layers_[l].tables.view();
			layers_[l].fn(k, buf + hist, 1, n, out + (l * totalTokens + tokenBase + done) * J, rowIds);
		}
		std::memmove(buf, buf + n, hist * sizeof(int64_t));
		done += n;
	}
	std::memcpy(history, buf, hist * sizeof(int64_t));
}

void EngramHasher::beginSequence(StreamState &state) const
{
	state.recent.fill(layout_.compressedPad());
}

Status EngramHasher::hashBatch(std::span<const int64_t> tokens, std::span<const uint64_t> seqOffsets,
			       std::span<uint64_t> out, HashOutput what, std::span<const uint8_t> dead) const
{
	const size_t sequences = seqOffsets.empty() ? 1 : seqOffsets.size() - 1;
	EP_TRY(checkTokens(tokens, seqOffsets, sequences, out.size(), dead));

	const bool rows = what == HashOutput::RowIds;
	for (size_t b = 0; b < sequences; b++) {
		const size_t begin = seqOffsets.empty() ? 0 : seqOffsets[b];
		const size_t end = seqOffsets.empty() ? tokens.size() : seqOffsets[b + 1];
		StreamState s;
		beginSequence(s);
		hashRun(s.recent.data(), tokens.data() + begin, dead.empty() ? nullptr : dead.data() + begin,
			end - begin, begin, tokens.size(), out.data(), rows);
	}
	return Status::ok();
}

Status EngramHasher::hashStream(std::span<StreamState> states, std::span<const int64_t> tokens,
				std::span<const uint64_t> seqOffsets, std::span<uint64_t> out,
				HashOutput what, std::span<const uint8_t> dead) const
{
	EP_TRY(checkTokens(tokens, seqOffsets, states.size(), out.size(), dead));

	/*
	 * Decode steps feed one or a few tokens to many sequences: rather than one
	 * kernel call per sequence, every token gets a window of its N ids (history
	 * first) and one call per layer hashes a block of windows. Long runs of one
	 * sequence use the contiguous path instead.
	 */
	const bool rows = what == HashOutput::RowIds;
	const size_t N = layout_.maxNgram();
	const size_t hist = N - 1;
	const size_t J = columns();
	const size_t T = tokens.size();
	const int64_t pad = layout_.compressedPad();
	int64_t win[kWindows * kMaxOrder];
	size_t filled = 0, firstToken = 0;

	auto flush = [&]() {
		for (size_t l = 0; l < layers_.size(); l++) {
			KernelLayer k = layers_[l].tables.view();
			layers_[l].fn(k, win + hist, N, filled, out.data() + (l * T + firstToken) * J, rows);
		}
		filled = 0;
	};

	/* Two instances, so that the loop without dead flags stays as it was. */
	auto feed = [&](auto withDead) {
		constexpr bool kDead = decltype(withDead)::value;
		for (size_t b = 0; b < states.size(); b++) {
			const size_t begin = seqOffsets.empty() ? 0 : seqOffsets[b];
			const size_t end = seqOffsets.empty() ? T : seqOffsets[b + 1];
			int64_t *recent = states[b].recent.data();
			if (end - begin >= kChunk / 4) {
				if (filled)
					flush();
				hashRun(recent, tokens.data() + begin, kDead ? dead.data() + begin : nullptr, end - begin,
					begin, T, out.data(), rows);
				continue;
			}
			for (size_t i = begin; i < end; i++) {
				if (filled == kWindows)
					flush();
				if (!filled)
					firstToken = i;
				int64_t *w = win + filled * N;
				if (kDead && dead[i]) {
					/* All lookbacks blocked, k = 0 included; later tokens see pad' only. */
					std::fill_n(w, N, pad);
					std::fill_n(recent, hist, pad);
				} else {
					std::memcpy(w, recent, hist * sizeof(int64_t));
					w[hist] = compressOne(tokens[i]);
					std::memmove(recent, w + 1, hist * sizeof(int64_t));
				}
				filled++;
			}
		}
	};
	if (dead.empty())
		feed(std::false_type{});
	else
		feed(std::true_type{});
	if (filled)
		flush();
	return Status::ok();
}

} // namespace engrampool::hashing
