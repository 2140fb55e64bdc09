// SPDX-License-Identifier: Apache-2.0
// token_trace.cpp - load a JSON-lines token trace (docs/TRACE.md).
#include "token_trace.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

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

} // namespace engrampool::trace
