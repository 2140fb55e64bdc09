// SPDX-License-Identifier: Apache-2.0
// dead_flags.cpp - `--dead` / `--dead-file`: parsed like --tokens, then checked for 0/1 and shape.
#include "dead_flags.hpp"

#include "cli.hpp"
#include "io/file_util.hpp"

namespace engrampool::cli {

Result<std::vector<std::vector<uint8_t>>> readDeadFlags(const std::string &inline_, const std::string &file,
							const std::vector<std::vector<int64_t>> &seqs)
{
	if (!inline_.empty() && !file.empty())
		return makeError(-EINVAL, "give at most one of --dead and --dead-file");
	if (inline_.empty() && file.empty())
		return std::vector<std::vector<uint8_t>>{};
	const std::string what = file.empty() ? "--dead" : "--dead-file " + file;
	Result<std::vector<std::vector<int64_t>>> raw = makeError(-EINVAL, "");
	if (file.empty()) {
		raw = parseTokens(inline_, "--dead");
	} else {
		auto text = io::readFileCapped(file, kMaxTokensFileBytes, "--dead-file");
		if (!text)
			return text.status();
		raw = parseTokens(*text, what);
	}
	if (!raw)
		return raw.status();
	if (raw->size() != seqs.size())
		return makeError(-EINVAL, what + ": " + std::to_string(raw->size()) + " sequences of dead flags for " +
						  std::to_string(seqs.size()) + " sequences of tokens (the shapes must be equal)");
	std::vector<std::vector<uint8_t>> dead(seqs.size());
	for (size_t b = 0; b < seqs.size(); b++) {
		const auto &r = (*raw)[b];
		if (r.size() != seqs[b].size())
			return makeError(-EINVAL, what + ": sequence " + std::to_string(b) + " has " + std::to_string(r.size()) +
							  " dead flags for " + std::to_string(seqs[b].size()) +
							  " tokens (the shapes must be equal)");
		dead[b].resize(r.size());
		for (size_t t = 0; t < r.size(); t++) {
			if (r[t] != 0 && r[t] != 1)
				return makeError(-EINVAL, what + ": sequence " + std::to_string(b) + " token " + std::to_string(t) +
								  ": a dead flag is 0 or 1, found " + std::to_string(r[t]));
			dead[b][t] = (uint8_t)r[t];
		}
	}
	return dead;
}

std::vector<uint8_t> flattenDeadFlags(const std::vector<std::vector<uint8_t>> &dead)
{
	std::vector<uint8_t> flat;
	for (const auto &d : dead)
		flat.insert(flat.end(), d.begin(), d.end());
	return flat;
}

} // namespace engrampool::cli
