// SPDX-License-Identifier: Apache-2.0
// cli.cpp - runner, error printing, JSON output and the progress bar.
#include "cli.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <iostream>
#include <unistd.h>

#include "util/units.hpp"

namespace engrampool::cli {

int Runner::run(CLI::App &root)
{
	for (auto &[sub, fn] : fns_)
		if (sub->parsed())
			return fn();
	std::cerr << root.help();
	return 2;
}

int fail(const std::string &msg)
{
	std::string m = msg;
	for (auto &c : m)
		if (c == '\n')
			c = ' ';
	fprintf(stderr, "engrampool: error: %s\n", m.c_str());
	return 1;
}

int fail(const Status &s)
{
	return fail(s.message().empty() ? std::string(errorName(s.code())) : s.message());
}

Result<std::unique_ptr<Pool>> openPool(const std::string &uri, bool write, uint32_t lockWaitMs)
{
	OpenOptions o;
	o.write = write;
	o.lockWaitMs = lockWaitMs;
	return Pool::open(uri, o);
}

Result<uint64_t> sizeArg(const std::string &text)
{
	return parseSize(text);
}

// [[ids...], ...] (ragged) or one flat [ids...] as a single sequence.
Result<std::vector<std::vector<int64_t>>> parseTokens(const std::string &text, const std::string &what)
{
	nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
	if (j.is_discarded() || !j.is_array())
		return errorf(-EINVAL, "%s: expected a JSON array of token id arrays", what.c_str());
	if (!j.empty() && !j[0].is_array())
		j = nlohmann::json::array({ j });
	std::vector<std::vector<int64_t>> seqs;
	for (size_t b = 0; b < j.size(); b++) {
		if (!j[b].is_array())
			return errorf(-EINVAL, "%s: sequence %zu is not an array", what.c_str(), b);
		std::vector<int64_t> s;
		for (size_t t = 0; t < j[b].size(); t++) {
			if (!j[b][t].is_number_integer())
				return errorf(-EINVAL, "%s: sequence %zu, token %zu is not an integer", what.c_str(), b, t);
			s.push_back(j[b][t].get<int64_t>());
		}
		seqs.push_back(std::move(s));
	}
	return seqs;
}

Result<std::vector<std::vector<int64_t>>> readTokens(const std::string &inline_, const std::string &file)
{
	if (inline_.empty() == file.empty())
		return makeError(-EINVAL, "give exactly one of --tokens and --tokens-file");
	if (file.empty())
		return parseTokens(inline_, "--tokens");
	std::ifstream f(file);
	if (!f)
		return errnoError(errno, "open " + file);
	std::stringstream ss;
	ss << f.rdbuf();
	return parseTokens(ss.str(), file);
}

void printJson(const nlohmann::json &j)
{
	std::cout << j.dump(2) << std::endl;
}

void addJsonFlag(CLI::App *sub, bool &flag)
{
	sub->add_flag("--json", flag, "Print machine-readable JSON on stdout");
}

bool stdoutIsTty()
{
	return isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
}

Progress::Progress(bool enabled, uint64_t total, uint64_t bytesPerUnit, std::string what)
	: enabled_(enabled), total_(total), unitBytes_(bytesPerUnit), what_(std::move(what)),
	  startNs_(nowMonotonicNs())
{
}

void Progress::update(uint64_t done)
{
	if (!enabled_)
		return;
	uint64_t now = nowMonotonicNs();
	if (now - lastNs_ < 100000000ull && done < total_)
		return;
	lastNs_ = now;
	double secs = (now - startNs_) / 1e9;
	double frac = total_ ? (double)done / (double)total_ : 1.0;
	double gbps = secs > 0 ? (double)done * unitBytes_ / secs / 1e9 : 0.0;
	double eta = (frac > 0 && frac < 1) ? secs / frac - secs : 0.0;
	const int width = 30;
	int fill = (int)(frac * width);
	std::string bar(fill, '#');
	bar.resize(width, '.');
	fprintf(stderr, "\r%s [%s] %5.1f%%  %llu/%llu rows  %.2f GB/s  ETA %.0fs   ", what_.c_str(), bar.c_str(),
		frac * 100.0, (unsigned long long)done, (unsigned long long)total_, gbps, eta);
	fflush(stderr);
}

void Progress::finish()
{
	if (!enabled_)
		return;
	lastNs_ = 0;
	update(total_);
	fprintf(stderr, "\n");
}

} // namespace engrampool::cli
