// SPDX-License-Identifier: Apache-2.0
// token_trace.cpp - load a JSON-lines token trace (docs/TRACE.md).
#include "token_trace.hpp"

#include <algorithm>
#include <fstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "hashing/hasher.hpp"
#include "hashing/primes.hpp"

namespace engrampool::trace {

void TokenTrace::take(size_t seq, size_t count, int64_t *out) const
{
	size_t n = tokens.size();
	size_t pos = starts[seq % sequences()];
	for (size_t i = 0; i < count; i++)
		out[i] = tokens[(pos + i) % n];
}

Result<TokenTrace> loadTrace(const std::string &path, uint64_t vocab)
{
	std::ifstream f(path);
	if (!f)
		return errnoError(errno ? errno : ENOENT, "trace " + path);
	TokenTrace t;
	t.path = path;
	t.starts.push_back(0);
	std::string line;
	uint64_t lineNo = 0;
	while (std::getline(f, line)) {
		lineNo++;
		size_t first = line.find_first_not_of(" \t\r");
		if (first == std::string::npos || line[first] == '#')
			continue;
		auto where = [&] { return "trace " + path + " line " + std::to_string(lineNo) + ": "; };
		nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
		if (j.is_discarded() || !j.is_object())
			return makeError(-EINVAL, where() + "not a JSON object (expected {\"tokens\": [ids...]})");
		auto it = j.find("tokens");
		if (it == j.end() || !it->is_array())
			return makeError(-EINVAL, where() + "no \"tokens\" array");
		for (auto &v : *it) {
			if (!v.is_number_integer())
				return makeError(-EINVAL, where() + "token " + v.dump() + " is not an integer id");
			int64_t id = v.get<int64_t>();
			if (id < 0 || (vocab && (uint64_t)id >= vocab))
				return makeError(EP_E_TOKEN, where() + "token id " + std::to_string(id) +
								   " is outside the model's vocabulary [0, " +
								   std::to_string(vocab) + ")");
			t.tokens.push_back(id);
		}
		if (t.tokens.size() > t.starts.back())
			t.starts.push_back(t.tokens.size());
	}
	if (f.bad())
		return errnoError(errno ? errno : EIO, "read trace " + path);
	if (t.tokens.empty())
		return makeError(-EINVAL, "trace " + path + " holds no token (one {\"tokens\": [...]} line per sequence)");
	return t;
}

namespace {
// Lookup counts of one layer: dense below 256 Mi rows, a hash map above.
struct Counts {
	std::vector<uint32_t> dense;
	std::unordered_map<uint64_t, uint32_t> sparse;
	void add(uint64_t row)
	{
		if (!dense.empty())
			dense[row] += dense[row] != UINT32_MAX;
		else
			sparse[row]++;
	}
};
} // namespace

Result<HotSet> buildHotSet(const TokenTrace &t, const ModelConfig &m, size_t rows, size_t skip, size_t take)
{
	if (rows == 0)
		return makeError(-EINVAL, "a hot set needs at least one row");
	if (skip >= t.sequences())
		return makeError(-EINVAL, "skipping " + std::to_string(skip) + " sequences leaves none of the trace's " +
						  std::to_string(t.sequences()));
	auto layout = hashing::ModelLayout::create(m);
	if (!layout)
		return layout.status();
	auto h = hashing::EngramHasher::create(*layout);
	if (!h)
		return h.status();
	auto tableRows = hashing::tableRows(m);
	size_t L = m.layerIds.size();
	std::vector<Counts> counts(L);
	for (size_t l = 0; l < L; l++)
		if (tableRows[l] <= (256ull << 20))
			counts[l].dense.assign(tableRows[l], 0);
	size_t end = take ? std::min(t.sequences(), skip + take) : t.sequences();
	HotSet hs;
	std::vector<uint64_t> ids;
	for (size_t s = skip; s < end; s++) {
		std::span<const int64_t> seq(t.tokens.data() + t.starts[s], t.starts[s + 1] - t.starts[s]);
		ids.resize(h->outputSize(seq.size()));
		std::vector<uint64_t> offs = {0, seq.size()};
		if (Status st = h->hashBatch(seq, offs, ids); !st)
			return std::move(st).context("trace sequence " + std::to_string(s) + ": ");
		size_t per = seq.size() * h->columns();
		for (size_t l = 0; l < L; l++)
			for (size_t i = 0; i < per; i++)
				counts[l].add(ids[l * per + i]);
		hs.tokens += seq.size();
		hs.lookups += ids.size();
	}
	hs.sequences = end - skip;
	std::vector<HotRow> all;
	for (size_t l = 0; l < L; l++) {
		for (uint64_t r = 0; r < counts[l].dense.size(); r++)
			if (counts[l].dense[r])
				all.push_back({counts[l].dense[r], (uint32_t)l, r});
		for (auto &[r, c] : counts[l].sparse)
			all.push_back({c, (uint32_t)l, r});
		counts[l] = Counts{};
	}
	hs.distinct = all.size();
	size_t n = std::min(rows, all.size());
	std::partial_sort(all.begin(), all.begin() + (long)n, all.end(), [](const HotRow &x, const HotRow &y) {
		return x.count != y.count ? x.count > y.count : x.layerIndex != y.layerIndex ? x.layerIndex < y.layerIndex
											: x.row < y.row;
	});
	all.resize(n);
	for (auto &r : all)
		hs.covered += r.count;
	hs.rows = std::move(all);
	return hs;
}

Status writeHotSet(const HotSet &h, const ModelConfig &m, const std::string &path, const std::string &comment)
{
	std::ofstream out(path);
	if (!out)
		return errnoError(errno ? errno : EIO, "write " + path);
	out << "# engrampool hot set: LAYER_ID ROW_ID COUNT, most looked-up first\n# " << comment << "\n";
	for (auto &r : h.rows)
		out << m.layerIds[r.layerIndex] << ' ' << r.row << ' ' << r.count << '\n';
	out.close();
	if (!out)
		return errnoError(errno ? errno : EIO, "write " + path);
	return Status::ok();
}

} // namespace engrampool::trace
