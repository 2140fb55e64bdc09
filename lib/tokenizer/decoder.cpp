// SPDX-License-Identifier: Apache-2.0
// decoder.cpp - tokenizer.json decoders: byte-level and the simple string decoders.
#include "tokenizer/decoder.hpp"

#include <unordered_map>

#include "tokenizer/normalize.hpp"

namespace engrampool::tokenizer {

namespace {

using nlohmann::json;

Status decoderError(const std::string &where, const std::string &msg)
{
	return makeError(EP_E_MODEL, "tokenizer field '" + where + "' " + msg);
}

const std::unordered_map<char32_t, uint8_t> &charToByte()
{
	static const std::unordered_map<char32_t, uint8_t> m = [] {
		std::unordered_map<char32_t, uint8_t> r;
		const auto &a = byteLevelAlphabet();
		for (size_t b = 0; b < 256; b++)
			r[a[b]] = static_cast<uint8_t>(b);
		return r;
	}();
	return m;
}

// A field that holds exactly one character (Metaspace replacement, Strip content).
Result<std::string> oneChar(const json &j, const char *field, const std::string &where, const char *dflt)
{
	if (!j.contains(field))
		return std::string(dflt);
	if (!j[field].is_string() || utf8ToCodePoints(j[field].get<std::string>()).size() != 1)
		return decoderError(where + "." + field, "must be a string of one character");
	return j[field].get<std::string>();
}

Result<uint64_t> count(const json &j, const char *field, const std::string &where)
{
	if (!j.contains(field))
		return uint64_t{0};
	if (!j[field].is_number_unsigned())
		return decoderError(where + "." + field, "must be a non-negative integer");
	return j[field].get<uint64_t>();
}

Status addSteps(const json &j, const std::string &where, std::vector<Decoder::Step> &steps, int depth)
{
	using Kind = Decoder::Step::Kind;
	if (depth > 8)
		return decoderError(where, "nests Sequence decoders too deeply");
	if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
		return decoderError(where, "must be an object with a string \"type\"");
	const std::string type = j["type"].get<std::string>();
	Decoder::Step s{};
	if (type == "Sequence") {
		if (!j.contains("decoders") || !j["decoders"].is_array())
			return decoderError(where + ".decoders", "must be an array of decoders");
		for (size_t i = 0; i < j["decoders"].size(); i++)
			EP_TRY(addSteps(j["decoders"][i], where + ".decoders[" + std::to_string(i) + "]", steps, depth + 1));
		return Status::ok();
	} else if (type == "ByteLevel") {
		s.kind = Kind::ByteLevel;
	} else if (type == "ByteFallback") {
		s.kind = Kind::ByteFallback;
	} else if (type == "Fuse") {
		s.kind = Kind::Fuse;
	} else if (type == "Metaspace") {
		s.kind = Kind::Metaspace;
		auto r = oneChar(j, "replacement", where, "\xE2\x96\x81");
		if (!r)
			return r.status();
		s.text = *r;
		// prepend_scheme (current) or add_prefix_space (older files): a scheme other than
		// "never" means the first token's replacement characters are the added prefix.
		s.dropFirst = true;
		if (j.contains("prepend_scheme")) {
			const json &p = j["prepend_scheme"];
			if (!p.is_string() || (p != "always" && p != "first" && p != "never"))
				return decoderError(where + ".prepend_scheme", "must be \"always\", \"first\" or \"never\"");
			s.dropFirst = p != "never";
		} else if (j.contains("add_prefix_space")) {
			if (!j["add_prefix_space"].is_boolean())
				return decoderError(where + ".add_prefix_space", "must be true or false");
			s.dropFirst = j["add_prefix_space"].get<bool>();
		}
	} else if (type == "Strip") {
		s.kind = Kind::Strip;
		auto c = oneChar(j, "content", where, " ");
		if (!c)
			return c.status();
		s.text = *c;
		auto a = count(j, "start", where), b = count(j, "stop", where);
		if (!a)
			return a.status();
		if (!b)
			return b.status();
		s.start = *a;
		s.stop = *b;
	} else if (type == "Replace") {
		s.kind = Kind::Replace;
		if (!j.contains("pattern") || !j["pattern"].is_object())
			return decoderError(where + ".pattern", "must be {\"String\": ...} or {\"Regex\": ...}");
		if (j["pattern"].contains("Regex"))
			return makeError(EP_E_UNSUPPORTED, "tokenizer field '" + where +
								   ".pattern': a Replace decoder with a Regex pattern is not "
								   "supported (only {\"String\": ...})");
		if (!j["pattern"].contains("String") || !j["pattern"]["String"].is_string() ||
		    j["pattern"]["String"].get<std::string>().empty())
			return decoderError(where + ".pattern", "must be {\"String\": \"non-empty text\"}");
		if (!j.contains("content") || !j["content"].is_string())
			return decoderError(where + ".content", "must be a string");
		s.text = j["pattern"]["String"].get<std::string>();
		s.content = j["content"].get<std::string>();
	} else if (type == "BPEDecoder") {
		s.kind = Kind::BpeSuffix;
		s.text = "</w>";
		if (j.contains("suffix")) {
			if (!j["suffix"].is_string())
				return decoderError(where + ".suffix", "must be a string");
			s.text = j["suffix"].get<std::string>();
		}
	} else {
		return makeError(EP_E_UNSUPPORTED,
				 "tokenizer field '" + where + ".type': decoder type '" + type +
					 "' is not supported (supported: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, "
					 "Replace, BPEDecoder, Sequence)");
	}
	steps.push_back(std::move(s));
	return Status::ok();
}

std::string replaceAll(const std::string &s, const std::string &from, const std::string &to)
{
	if (from.empty())
		return s;
	std::string out;
	size_t pos = 0;
	for (size_t f; (f = s.find(from, pos)) != std::string::npos; pos = f + from.size())
		out.append(s, pos, f - pos).append(to);
	return out.append(s, pos);
}

std::vector<std::string> byteLevel(const std::vector<std::string> &tokens)
{
	const auto &c2b = charToByte();
	std::string bytes;
	for (const std::string &t : tokens) {
		std::string mine;
		bool all = true;
		for (char32_t c : utf8ToCodePoints(t)) {
			auto it = c2b.find(c);
			if (it == c2b.end()) {
				all = false;
				break;
			}
			mine += static_cast<char>(it->second);
		}
		bytes += all ? mine : t;  // a token outside the alphabet stays as it is
	}
	return { utf8Lossy(bytes) };
}

// "<0xAB>" tokens become bytes; a run of them that is not UTF-8 becomes one U+FFFD per byte.
std::vector<std::string> byteFallback(const std::vector<std::string> &tokens)
{
	std::vector<std::string> out;
	std::string run;
	auto flush = [&] {
		if (run.empty())
			return;
		if (isValidUtf8(run)) {
			out.push_back(run);
		} else {
			for (size_t i = 0; i < run.size(); i++)
				out.emplace_back("\xEF\xBF\xBD");
		}
		run.clear();
	};
	auto hex = [](char c) { return isxdigit(static_cast<unsigned char>(c)) != 0; };
	for (const std::string &t : tokens) {
		// Rust's u8::from_str_radix also takes a leading '+' ("<0x+A>").
		bool isByte = t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
			      ((hex(t[3]) && hex(t[4])) || (t[3] == '+' && hex(t[4])));
		if (isByte) {
			run += static_cast<char>(std::stoul(t.substr(t[3] == '+' ? 4 : 3, t[3] == '+' ? 1 : 2), nullptr, 16));
			continue;
		}
		flush();
		out.push_back(t);
	}
	flush();
	return out;
}

std::string strip(const std::string &t, char32_t c, uint64_t start, uint64_t stop)
{
	std::u32string cps = utf8ToCodePoints(t);
	size_t b = 0, e = cps.size();
	while (b < e && b < start && cps[b] == c)
		b++;
	size_t cut = 0;
	while (e > b && cut < stop && cps[e - 1] == c) {
		e--;
		cut++;
	}
	std::string out;
	for (size_t i = b; i < e; i++)
		appendUtf8(out, cps[i]);
	return out;
}

} // namespace

const std::vector<char32_t> &byteLevelAlphabet()
{
	static const std::vector<char32_t> a = [] {
		std::vector<char32_t> r(256);
		char32_t next = 256;
		for (unsigned b = 0; b < 256; b++) {
			bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
			r[b] = printable ? b : next++;
		}
		return r;
	}();
	return a;
}

Result<Decoder> Decoder::fromJson(const json &j)
{
	Decoder d;
	if (j.is_null())
		return d;
	d.none_ = false;
	EP_TRY(addSteps(j, "decoder", d.steps_, 0));
	return d;
}

std::string Decoder::decode(const std::vector<std::string> &tokens) const
{
	if (none_) {
		std::string out;
		for (size_t i = 0; i < tokens.size(); i++)
			out += (i ? " " : "") + tokens[i];
		return out;
	}
	std::vector<std::string> cur = tokens;
	for (const Step &s : steps_) {
		switch (s.kind) {
		case Step::Kind::ByteLevel:
			cur = byteLevel(cur);
			break;
		case Step::Kind::ByteFallback:
			cur = byteFallback(cur);
			break;
		case Step::Kind::Fuse: {
			std::string all;
			for (const std::string &t : cur)
				all += t;
			cur = { all };
			break;
		}
		case Step::Kind::Metaspace:
			for (size_t i = 0; i < cur.size(); i++)
				cur[i] = replaceAll(cur[i], s.text, i == 0 && s.dropFirst ? "" : " ");
			break;
		case Step::Kind::Strip: {
			char32_t c = utf8ToCodePoints(s.text)[0];
			for (std::string &t : cur)
				t = strip(t, c, s.start, s.stop);
			break;
		}
		case Step::Kind::Replace:
			for (std::string &t : cur)
				t = replaceAll(t, s.text, s.content);
			break;
		case Step::Kind::BpeSuffix:
			for (size_t i = 0; i < cur.size(); i++)
				cur[i] = replaceAll(cur[i], s.text, i + 1 == cur.size() ? "" : " ");
			break;
		}
	}
	std::string out;
	for (const std::string &t : cur)
		out += t;
	return out;
}

} // namespace engrampool::tokenizer
