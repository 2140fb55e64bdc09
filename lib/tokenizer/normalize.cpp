// SPDX-License-Identifier: Apache-2.0
// normalize.cpp - the Engram key normalizer on ICU, and strict UTF-8 decoding.
#include "tokenizer/normalize.hpp"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <cerrno>

namespace engrampool::tokenizer {

namespace {

// Length of the well-formed sequence at s[i] (1..4), or 0 when ill-formed; then *bad is
// the length of its maximal subpart (at least 1), the bytes one U+FFFD replaces.
size_t utf8Step(const std::string &s, size_t i, char32_t *cp, size_t *bad)
{
	auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
	unsigned char c = b(i);
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF;
	char32_t v;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		v = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0;  // no overlongs
		if (c == 0xED)
			hi = 0x9F;  // no surrogates
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		v = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F;  // nothing past U+10FFFF
	} else {
		*bad = 1;
		return 0;
	}
	for (size_t k = 1; k <= need; k++) {
		if (i + k >= s.size() || b(i + k) < lo || b(i + k) > hi) {
			*bad = k;
			return 0;
		}
		v = (v << 6) | (b(i + k) & 0x3F);
		lo = 0x80;
		hi = 0xBF;
	}
	*cp = v;
	return need + 1;
}

bool isMark(UChar32 c)
{
	int8_t t = u_charType(c);
	return t == U_NON_SPACING_MARK || t == U_COMBINING_SPACING_MARK || t == U_ENCLOSING_MARK;
}

bool isRunSpace(char32_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

Status icuError(UErrorCode e, const char *what)
{
	return errorf(-EINVAL, "normalizing a token: ICU %s failed: %s", what, u_errorName(e));
}

Result<std::u16string> normalizeWith(const UNormalizer2 *n, const std::u16string &in)
{
	UErrorCode e = U_ZERO_ERROR;
	int32_t len = unorm2_normalize(n, reinterpret_cast<const UChar *>(in.data()), static_cast<int32_t>(in.size()),
				       nullptr, 0, &e);
	if (e != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(e))
		return icuError(e, "unorm2_normalize");
	std::u16string out(static_cast<size_t>(len), u'\0');
	e = U_ZERO_ERROR;
	unorm2_normalize(n, reinterpret_cast<const UChar *>(in.data()), static_cast<int32_t>(in.size()),
			 reinterpret_cast<UChar *>(out.data()), len, &e);
	if (U_FAILURE(e))
		return icuError(e, "unorm2_normalize");
	return out;
}

// Append the lowercase of c, taken alone: u_strToLower on a one-code-point string has
// no neighbours to apply a context rule to, and "" is the root locale (no Turkish or
// Lithuanian tailoring).
Status lowerInto(UChar32 c, std::u32string &out)
{
	UChar src[2], dst[8];
	int32_t n = 0;
	U16_APPEND_UNSAFE(src, n, c);
	UErrorCode e = U_ZERO_ERROR;
	int32_t m = u_strToLower(dst, 8, src, n, "", &e);
	if (U_FAILURE(e))
		return icuError(e, "u_strToLower");
	for (int32_t j = 0; j < m;) {
		UChar32 lc;
		U16_NEXT(dst, j, m, lc);
		out += static_cast<char32_t>(lc);
	}
	return Status::ok();
}

} // namespace

Result<std::string> lowercaseCodePoint(char32_t cp)
{
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return errorf(-EINVAL, "lowercase: U+%04X is not a Unicode scalar value", static_cast<unsigned>(cp));
	std::u32string lc;
	EP_TRY(lowerInto(static_cast<UChar32>(cp), lc));
	std::string out;
	for (char32_t c : lc)
		appendUtf8(out, c);
	return out;
}

bool isValidUtf8(const std::string &s)
{
	for (size_t i = 0; i < s.size();) {
		char32_t cp;
		size_t bad;
		size_t n = utf8Step(s, i, &cp, &bad);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

void appendUtf8(std::string &out, char32_t cp)
{
	if (cp < 0x80) {
		out += static_cast<char>(cp);
	} else if (cp < 0x800) {
		out += static_cast<char>(0xC0 | (cp >> 6));
		out += static_cast<char>(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		out += static_cast<char>(0xE0 | (cp >> 12));
		out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
		out += static_cast<char>(0x80 | (cp & 0x3F));
	} else {
		out += static_cast<char>(0xF0 | (cp >> 18));
		out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
		out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
		out += static_cast<char>(0x80 | (cp & 0x3F));
	}
}

std::string utf8Lossy(const std::string &s)
{
	std::string out;
	out.reserve(s.size());
	for (size_t i = 0; i < s.size();) {
		char32_t cp;
		size_t bad;
		size_t n = utf8Step(s, i, &cp, &bad);
		if (n == 0) {
			appendUtf8(out, 0xFFFD);
			i += bad;
		} else {
			out.append(s, i, n);
			i += n;
		}
	}
	return out;
}

std::u32string utf8ToCodePoints(const std::string &s)
{
	std::u32string out;
	for (size_t i = 0; i < s.size();) {
		char32_t cp;
		size_t bad;
		size_t n = utf8Step(s, i, &cp, &bad);
		if (n == 0) {
			out += char32_t{0xFFFD};
			i += bad;
		} else {
			out += cp;
			i += n;
		}
	}
	return out;
}

Result<std::string> normalizeKey(const std::string &text)
{
	if (!isValidUtf8(text))
		return makeError(-EINVAL, "normalizing a token: the text is not valid UTF-8");
	std::u16string u16;
	for (char32_t cp : utf8ToCodePoints(text)) {
		UChar buf[2];
		int32_t n = 0;
		U16_APPEND_UNSAFE(buf, n, static_cast<UChar32>(cp));
		u16.append(reinterpret_cast<const char16_t *>(buf), static_cast<size_t>(n));
	}

	UErrorCode e = U_ZERO_ERROR;
	const UNormalizer2 *nfkc = unorm2_getNFKCInstance(&e);
	if (U_FAILURE(e))
		return icuError(e, "unorm2_getNFKCInstance");
	const UNormalizer2 *nfd = unorm2_getNFDInstance(&e);
	if (U_FAILURE(e))
		return icuError(e, "unorm2_getNFDInstance");
	auto k = normalizeWith(nfkc, u16);
	if (!k)
		return k.status();
	auto d = normalizeWith(nfd, *k);
	if (!d)
		return d.status();

	// Marks out, then each code point lowercased on its own: no context rules (a lone
	// capital sigma is never final), the root locale's full mapping (U+0130 -> i U+0307).
	std::u32string cps;
	const std::u16string &nd = *d;
	for (size_t i = 0; i < nd.size();) {
		UChar32 c;
		U16_NEXT(nd.data(), i, nd.size(), c);
		if (isMark(c))
			continue;
		EP_TRY(lowerInto(c, cps));
	}

	std::u32string runs;
	for (size_t i = 0; i < cps.size(); i++) {
		if (isRunSpace(cps[i])) {
			if (i == 0 || !isRunSpace(cps[i - 1]))
				runs += U' ';
			continue;
		}
		runs += cps[i];
	}
	if (runs == U" ")
		runs = std::u32string(1, kSentinel);
	size_t b = 0, en = runs.size();
	while (b < en && u_hasBinaryProperty(static_cast<UChar32>(runs[b]), UCHAR_WHITE_SPACE))
		b++;
	while (en > b && u_hasBinaryProperty(static_cast<UChar32>(runs[en - 1]), UCHAR_WHITE_SPACE))
		en--;
	std::string out;
	for (size_t i = b; i < en; i++)
		appendUtf8(out, runs[i] == kSentinel ? U' ' : runs[i]);
	return out;
}

} // namespace engrampool::tokenizer
