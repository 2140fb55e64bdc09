// SPDX-License-Identifier: Apache-2.0
// cli.cpp - runner, error printing, JSON output and the progress bar.
#include "cli.hpp"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <unistd.h>

#include "io/file_util.hpp"
#include "util/units.hpp"
#include "util/utf8.hpp"

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
	// One line, and no control bytes: messages can quote names read from the pool.
	std::string m;
	for (unsigned char c : msg) {
		if (c == '\n' || c == '\t') {
			m += ' ';
		} else if (c < 0x20 || c == 0x7f) {
			char buf[8];
			snprintf(buf, sizeof(buf), "\\x%02x", c);
			m += buf;
		} else {
			m += (char)c;
		}
	}
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

namespace {

// SAX reader of token batches: ids go straight into the vectors (8 bytes a token, no
// JSON DOM), every id is range-checked, nesting deeper than [[id]] is refused early.
class TokenReader : public nlohmann::json_sax<nlohmann::json> {
public:
	explicit TokenReader(const std::string &what) : what_(what) {}
	std::vector<std::vector<int64_t>> seqs;
	std::string error;

	bool start_array(std::size_t) override
	{
		if (depth_ == 0) {
			depth_ = 1;
			return true;
		}
		if (depth_ == 1 && !flat_) {
			if (seqs.size() >= kMaxBatchSequences) {
				error = what_ + ": more than " + std::to_string(kMaxBatchSequences) +
					" sequences in one batch; the limit is " + std::to_string(kMaxBatchSequences);
				return false;
			}
			nested_ = true;
			depth_ = 2;
			seqs.emplace_back();
			return true;
		}
		return notInteger("an array");
	}
	bool end_array() override
	{
		depth_--;
		return true;
	}
	bool number_integer(number_integer_t v) override
	{
		if (!place())
			return false;
		if (v < 0)
			return bad(here() + "id " + std::to_string(v) + " is negative: ids are 0.." + std::to_string(INT64_MAX));
		seqs.back().push_back(v);
		return true;
	}
	bool number_unsigned(number_unsigned_t v) override
	{
		if (!place())
			return false;
		if (v > (uint64_t)INT64_MAX)
			return bad(here() + "id " + std::to_string(v) + " is out of range: ids are 0.." +
				   std::to_string(INT64_MAX));
		seqs.back().push_back((int64_t)v);
		return true;
	}
	bool number_float(number_float_t, const string_t &s) override
	{
		return notInteger("'" + s + "'");
	}
	bool null() override { return notInteger("null"); }
	bool boolean(bool) override { return notInteger("a boolean"); }
	bool string(string_t &) override { return notInteger("a string"); }
	bool binary(binary_t &) override { return notInteger("binary"); }
	bool start_object(std::size_t) override { return notInteger("an object"); }
	bool key(string_t &) override { return false; }
	bool end_object() override { return false; }
	bool parse_error(std::size_t pos, const std::string &, const nlohmann::detail::exception &) override
	{
		if (error.empty())
			error = what_ + ": not valid JSON (at byte " + std::to_string(pos) +
				"): expected a JSON array of token id arrays";
		return false;
	}

private:
	// "token T: " of the id being read (a flat list is sequence 0).
	std::string here() const { return "token " + std::to_string(seqs.empty() ? 0 : seqs.back().size()) + ": "; }
	bool bad(const std::string &msg)
	{
		if (error.empty())
			error = what_ + ": sequence " + std::to_string(seqs.empty() ? 0 : seqs.size() - 1) + ", " + msg;
		return false;
	}
	bool notInteger(const std::string &found)
	{
		if (depth_ == 0) {
			error = what_ + ": expected a JSON array of token id arrays";
			return false;
		}
		if (depth_ == 1 && nested_) {
			error = what_ + ": sequence " + std::to_string(seqs.size()) + " is not an array";
			return false;
		}
		size_t t = seqs.empty() ? 0 : seqs.back().size();
		return bad("token " + std::to_string(t) + " is not an integer (found " + found + ")");
	}
	// Where the next id goes: a sequence array, or the one flat [ids...] sequence.
	bool place()
	{
		if (++tokens_ > kMaxBatchTokens) {
			error = what_ + ": more than " + std::to_string(kMaxBatchTokens) +
				" token ids in one batch; the limit is " + std::to_string(kMaxBatchTokens);
			return false;
		}
		if (depth_ == 0) {
			error = what_ + ": expected a JSON array of token id arrays";
			return false;
		}
		if (depth_ == 1) {
			if (nested_) {
				error = what_ + ": sequence " + std::to_string(seqs.size()) + " is not an array";
				return false;
			}
			if (!flat_) {
				flat_ = true;
				seqs.emplace_back();
			}
		}
		return true;
	}

	std::string what_;
	int depth_ = 0;
	size_t tokens_ = 0;
	bool flat_ = false, nested_ = false;
};

} // namespace

// [[ids...], ...] (ragged) or one flat [ids...] as a single sequence; ids 0..INT64_MAX.
Result<std::vector<std::vector<int64_t>>> parseTokens(const std::string &text, const std::string &what)
{
	TokenReader r(what);
	bool ok = nlohmann::json::sax_parse(text, &r);
	if (!ok || !r.error.empty())
		return makeError(-EINVAL, r.error.empty() ? what + ": expected a JSON array of token id arrays" : r.error);
	return std::move(r.seqs);
}

Result<std::vector<std::vector<int64_t>>> readTokens(const std::string &inline_, const std::string &file)
{
	if (inline_.empty() == file.empty())
		return makeError(-EINVAL, "give exactly one of --tokens and --tokens-file");
	if (file.empty())
		return parseTokens(inline_, "--tokens");
	auto text = io::readFileCapped(file, kMaxTokensFileBytes, "--tokens-file");
	if (!text)
		return text.status();
	return parseTokens(*text, file);
}

const CLI::Validator kNonNegativeInt(
	[](std::string &v) -> std::string {
		if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
			return "must be a non-negative integer, found '" + displayText(v) + "'";
		return {};
	},
	"", "non-negative integer");

const CLI::Validator kFinite(
	[](std::string &v) -> std::string {
		char *end = nullptr;
		errno = 0;
		double d = std::strtod(v.c_str(), &end);
		if (v.empty() || !end || *end || !std::isfinite(d))
			return "must be a finite number, found '" + displayText(v) + "'";
		return {};
	},
	"", "finite number");

std::string displayText(const std::string &s)
{
	std::string out;
	auto hex = [&](unsigned char c) {
		char buf[8];
		snprintf(buf, sizeof(buf), "\\x%02x", c);
		out += buf;
	};
	for (size_t i = 0; i < s.size();) {
		if (s[i] == '\\') {
			out += "\\\\";
			i++;
			continue;
		}
		size_t at = i;
		int32_t cp = nextCodePoint(s, i);
		// Controls, ill-formed bytes and bidirectional overrides would act on the terminal.
		bool unsafe = cp < 0 || isControlCodePoint(cp) || (cp >= 0x202a && cp <= 0x202e) ||
			      (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f;
		if (unsafe)
			for (size_t k = at; k < i; k++)
				hex((unsigned char)s[k]);
		else
			out.append(s, at, i - at);
	}
	return out;
}

Status refuseIfLiveHosts(const std::string &uri, const std::string &action)
{
	auto p = openPool(uri, false);
	if (!p)
		return Status::ok();
	std::string names;
	size_t n = 0;
	for (const HostInfo &h : (*p)->hosts()) {
		if (!h.live || h.corrupt)
			continue;
		n++;
		names += (names.empty() ? "" : ", ") + displayText(h.hostname) + " (slot " + std::to_string(h.index) +
			 ", pid " + std::to_string(h.pid) + ")";
	}
	if (n == 0)
		return Status::ok();
	return errorf(-EBUSY,
		      "refusing to %s %s: %zu live host(s) hold slots: %s; stop them or wait for their lease to "
		      "expire, or pass --even-if-live",
		      action.c_str(), uri.c_str(), n, names.c_str());
}

void printJson(const nlohmann::json &j)
{
	// The pool is untrusted: invalid UTF-8 in a name becomes U+FFFD instead of an exception.
	std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
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
