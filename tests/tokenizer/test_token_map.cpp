// SPDX-License-Identifier: Apache-2.0
// test_token_map.cpp - the compressed token map: normalizer, decoders, keys, ids, bad files.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "io/npy.hpp"
#include "test_util.hpp"
#include "tokenizer/token_map.hpp"
#include "tokenizer_json.hpp"

using namespace engrampool;
using namespace engrampool::tokenizer;
using nlohmann::json;
using tktest::byteLevel;
using tktest::TokenizerSpec;

namespace {

std::string norm(const std::string &s)
{
	auto r = normalizeKey(s);
	EXPECT_TRUE(r.isOk()) << r.status().message();
	return r.isOk() ? *r : std::string("<error>");
}

TokenMap build(const json &j)
{
	auto r = buildTokenMapFromJson(j.dump());
	EXPECT_TRUE(r.isOk()) << r.status().message();
	return r.isOk() ? *r : TokenMap{};
}

// The error of a document that must be refused; checks its message names `needle`.
void expectRefused(const std::string &text, const std::string &needle, int code = EP_E_MODEL)
{
	auto r = buildTokenMapFromJson(text);
	ASSERT_FALSE(r.isOk()) << "accepted: " << text.substr(0, 200);
	EXPECT_EQ(r.code(), code) << r.status().message();
	EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

std::string decodeWith(const json &decoder, const std::vector<std::string> &tokens)
{
	auto d = Decoder::fromJson(decoder);
	EXPECT_TRUE(d.isOk()) << d.status().message();
	return d.isOk() ? d->decode(tokens) : std::string("<error>");
}

} // namespace

TEST(TokenMapNormalize, AccentsMarksAndCompatibilityForms)
{
	EXPECT_EQ(norm("H\xC3\xA9llo"), "hello");            // é precomposed
	EXPECT_EQ(norm("e\xCC\x81"), "e");                   // e + U+0301
	EXPECT_EQ(norm("\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3"), "abc");  // full-width ＡＢＣ
	EXPECT_EQ(norm("\xEF\xAC\x81"), "fi");               // U+FB01 ligature
	EXPECT_EQ(norm("\xE2\x91\xA0"), "1");                // ① circled one
	EXPECT_EQ(norm("\xE3\x8E\x8F"), "kg");               // ㎏
	EXPECT_EQ(norm("\xE1\xBA\x9E"), "\xC3\x9F");         // ẞ -> ß (full lowercase keeps ß)
	EXPECT_EQ(norm("\xE0\xA4\x95\xE0\xA4\xBF"), "\xE0\xA4\x95");  // Devanagari KA + vowel sign I (Mc)
	EXPECT_EQ(norm("a\xE2\x83\x9D"), "a");               // U+20DD enclosing circle (Me)
	EXPECT_EQ(norm("\xCC\x81"), "");                     // a lone mark normalizes to nothing
}

TEST(TokenMapNormalize, LowercaseIsPerCodePointWithFullMapping)
{
	auto lc = [](char32_t c) {
		auto r = lowercaseCodePoint(c);
		EXPECT_TRUE(r.isOk());
		return r.isOk() ? *r : std::string();
	};
	EXPECT_EQ(lc(0x130), "i\xCC\x87");   // full mapping: i + U+0307, not the Turkish dotless rule
	EXPECT_EQ(lc(0x3A3), "\xCF\x83");    // σ, never ς: no context
	EXPECT_EQ(lc(U'I'), "i");
	EXPECT_EQ(lc(0x1E9E), "\xC3\x9F");   // ẞ -> ß
	EXPECT_EQ(lc(0x10400), "\xF0\x90\x90\xA8");  // Deseret, outside the BMP
	EXPECT_FALSE(lowercaseCodePoint(0xD800).isOk());
	// U+0130 decomposes under NFD, so the mark goes before lowercasing: "i".
	EXPECT_EQ(norm("\xC4\xB0"), "i");
	EXPECT_EQ(norm("\xC4\xB0stanbul"), "istanbul");
	// No final-sigma context: every capital sigma becomes σ, even at a word's end.
	EXPECT_EQ(norm("\xCE\xA3\xCE\x91\xCE\xA3"), "\xCF\x83\xCE\xB1\xCF\x83");
	EXPECT_EQ(norm("\xCF\x82"), "\xCF\x82");             // a final sigma stays one
	EXPECT_EQ(norm("\xC3\x9F"), "\xC3\x9F");             // ß has no single-letter lowercase change
}

TEST(TokenMapNormalize, WhitespaceRunsSentinelAndStrip)
{
	EXPECT_EQ(norm(" "), " ");                           // the lone space survives the strip
	EXPECT_EQ(norm("  "), " ");
	EXPECT_EQ(norm("\t"), " ");
	EXPECT_EQ(norm("\r\n\n"), " ");
	EXPECT_EQ(norm(" a \t b "), "a b");
	EXPECT_EQ(norm("\xE3\x80\x80"), " ");                // ideographic space: NFKC -> " "
	EXPECT_EQ(norm("\xC2\xA0x"), "x");                   // NBSP -> " " then stripped
	EXPECT_EQ(norm("\xC2\x85"), "");                     // NEL: White_Space, not a run character
	EXPECT_EQ(norm("\xE2\x80\xA8"), "");                 // LINE SEPARATOR
	EXPECT_EQ(norm(" \xC2\x85"), "");                    // " " + NEL is not exactly " "
	EXPECT_EQ(norm("\x1C"), "\x1C");                     // not White_Space (Python's isspace says yes)
	EXPECT_EQ(norm("\xEF\xBB\xBF"), "\xEF\xBB\xBF");     // U+FEFF is not White_Space
	EXPECT_EQ(norm(" \xEF\xBB\xBF "), "\xEF\xBB\xBF");
	EXPECT_EQ(norm("\xE2\x80\x8B"), "\xE2\x80\x8B");     // ZERO WIDTH SPACE is not either
	// DeepSeek's normalizer turns every U+E000 (its sentinel) into a space at the end.
	EXPECT_EQ(norm("\xEE\x80\x80x"), " x");
}

TEST(TokenMapNormalize, RefusesInvalidUtf8)
{
	EXPECT_FALSE(normalizeKey("\xC3").isOk());
	EXPECT_FALSE(normalizeKey("\xED\xA0\x80").isOk());   // a surrogate
	EXPECT_FALSE(normalizeKey("\xC0\xAF").isOk());       // overlong
}

TEST(TokenMapUtf8, LossyDecodingReplacesMaximalSubparts)
{
	EXPECT_EQ(utf8Lossy("a\xC3"), "a\xEF\xBF\xBD");
	EXPECT_EQ(utf8Lossy("\xE2\x82"), "\xEF\xBF\xBD");    // one truncated sequence, one U+FFFD
	EXPECT_EQ(utf8Lossy("\xE2\x82\xAC"), "\xE2\x82\xAC");
	EXPECT_EQ(utf8Lossy("\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
	// F4 90 is past U+10FFFF: F4 alone is the maximal subpart, then three stray bytes.
	EXPECT_EQ(utf8Lossy("\xF4\x90\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TokenMapDecoder, ByteLevelAlphabetIsGpt2s)
{
	const auto &a = byteLevelAlphabet();
	ASSERT_EQ(a.size(), 256u);
	EXPECT_EQ(a[' '], 0x120u);   // Ġ
	EXPECT_EQ(a['\n'], 0x10Au);  // Ċ
	EXPECT_EQ(a['A'], U'A');
	EXPECT_EQ(a[0xAD], 0x143u);  // soft hyphen is not printable here
	EXPECT_EQ(a[0xFF], 0xFFu);
	std::vector<char32_t> sorted(a.begin(), a.end());
	std::sort(sorted.begin(), sorted.end());
	EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end());
	EXPECT_EQ(decodeWith({ { "type", "ByteLevel" } }, { byteLevel(" Hello\n") }), " Hello\n");
	// A token with a character outside the alphabet stays as it is.
	EXPECT_EQ(decodeWith({ { "type", "ByteLevel" } }, { "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xEF\xBD\x9C>" }),
		  "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xEF\xBD\x9C>");
}

TEST(TokenMapDecoder, SentencePieceStyleSequence)
{
	// What Llama-style tokenizer.json files declare.
	json d = json::parse(R"({"type":"Sequence","decoders":[
		{"type":"Replace","pattern":{"String":"\u2581"},"content":" "},
		{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]})");
	EXPECT_EQ(decodeWith(d, { "\xE2\x96\x81Hello" }), "Hello");
	EXPECT_EQ(decodeWith(d, { "\xE2\x96\x81\xE2\x96\x81" }), " ");
	EXPECT_EQ(decodeWith(d, { "<0x41>" }), "A");
	EXPECT_EQ(decodeWith(d, { "<0xC3>" }), "\xEF\xBF\xBD");
	EXPECT_EQ(decodeWith(d, { "<0xC3>", "<0xA9>" }), "\xC3\xA9");
	json m = json::parse(R"({"type":"Metaspace","replacement":"\u2581","prepend_scheme":"always","split":true})");
	EXPECT_EQ(decodeWith(m, { "\xE2\x96\x81\xE2\x96\x81Hey" }), "Hey");  // as tokenizers does
	EXPECT_EQ(decodeWith(m, { "\xE2\x96\x81" "a", "\xE2\x96\x81" "b" }), "a b");
	m["prepend_scheme"] = "never";
	EXPECT_EQ(decodeWith(m, { "\xE2\x96\x81" "a" }), " a");
	EXPECT_EQ(decodeWith(json(nullptr), { "x y" }), "x y");  // no decoder: the token itself
}

TEST(TokenMapDecoder, UnsupportedTypesAreNamed)
{
	auto r = Decoder::fromJson({ { "type", "WordPiece" }, { "prefix", "##" } });
	ASSERT_FALSE(r.isOk());
	EXPECT_EQ(r.code(), EP_E_UNSUPPORTED);
	EXPECT_NE(r.status().message().find("'WordPiece'"), std::string::npos) << r.status().message();
	EXPECT_NE(r.status().message().find("'decoder.type'"), std::string::npos) << r.status().message();
	r = Decoder::fromJson(json::parse(R"({"type":"Sequence","decoders":[{"type":"ByteLevel"},{"type":"CTC"}]})"));
	ASSERT_FALSE(r.isOk());
	EXPECT_NE(r.status().message().find("'decoder.decoders[1].type'"), std::string::npos) << r.status().message();
	r = Decoder::fromJson(json::parse(R"({"type":"Replace","pattern":{"Regex":"x+"},"content":" "})"));
	ASSERT_FALSE(r.isOk());
	EXPECT_NE(r.status().message().find("Regex"), std::string::npos) << r.status().message();
	EXPECT_FALSE(Decoder::fromJson(json::parse(R"({"type":"Metaspace","replacement":"ab"})")).isOk());
	EXPECT_FALSE(Decoder::fromJson(json::parse(R"({"decoders":[]})")).isOk());
}

TEST(TokenMap, DeepSeekRules)
{
	TokenizerSpec t;
	const std::vector<std::string> specials = { "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
						    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
						    "<\xEF\xBD\x9C\xE2\x96\x81pad\xE2\x96\x81\xEF\xBD\x9C>" };
	for (auto &s : specials)
		t.vocab.push_back(s);
	const std::vector<std::string> texts = {
		"Hello", " hello", "HELLO",                      // 3 4 5: one key "hello"
		"\xC3\xA9", "e\xCC\x81", "E",                    // 6 7 8: "e"
		"\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3", "abc",   // 9 10: "abc"
		" ", "  ", "\t", "\n\n",                         // 11..14: " "
		"\xEF\xBB\xBF",                                  // 15: U+FEFF, its own key
		"\xC4\xB0", "i\xCC\x87", "I",                    // 16 17 18: "i"
		"\xCE\xA3", "\xCF\x83", "\xCF\x82",              // 19 20 21: σ σ ς
		"\xC2\x85",                                      // 22: normalizes to nothing: the text itself
		"\xCC\x81",                                      // 23: a lone mark: the text itself
		"\xC2\xA9",                                      // 24: "©"
	};
	for (auto &s : texts)
		t.vocab.push_back(byteLevel(s));
	t.vocab.push_back(byteLevel("\xC3"));      // 25: a lead byte alone: U+FFFD, key "Ã"
	t.vocab.push_back(byteLevel("\xA9"));      // 26: a continuation byte: key "©", the same as id 24's
	t.vocab.push_back(byteLevel("\xE2\x82"));  // 27: a cut-short sequence: key "âĤ"
	for (uint64_t i = 0; i < specials.size(); i++)
		t.added.push_back({ i, specials[i] });
	t.added.push_back({ 28, "<think>" });
	t.added.push_back({ 29, "<\xEF\xBD\x9CUser\xEF\xBD\x9C>" });  // "<｜User｜>" -> "<|user|>"
	t.added.push_back({ 30, "\xC4\xA0World" });  // "ĠWorld": decoded like any token -> " World"
	t.added.push_back({ 31, "world" });

	TokenMap m = build(t.toJson());
	ASSERT_EQ(m.tokenizerSize, 32u);
	ASSERT_EQ(m.map.size(), 32u);
	const std::vector<int64_t> want = {
		0, 1, 2,         // special tokens, in order
		3, 3, 3,         // hello
		4, 4, 4,         // e
		5, 5,            // abc
		6, 6, 6, 6,      // " "
		7,               // U+FEFF
		8, 8, 8,         // i
		9, 9, 10,        // σ σ ς
		11, 12,          // NEL, U+0301
		13,              // ©
		14, 13, 15,      // Ã (raw), © (raw, = id 24), âĤ (raw)
		16, 17, 18, 18,  // <think>, <|user|>, world, world
	};
	EXPECT_EQ(m.map, want);
	EXPECT_EQ(m.compressedSize, 19u);
	EXPECT_EQ(m.map[2], 2);  // pad' = map[2] = 2, as for DeepSeek's tokenizer
}

TEST(TokenMap, UnigramVocabularyAndNoDecoder)
{
	json j = json::parse(R"({"model":{"type":"Unigram","vocab":[["<unk>",0],["A",-1.5],["a",-2],[" ",-3]]},
		"decoder":null})");
	TokenMap m = build(j);
	EXPECT_EQ(m.map, (std::vector<int64_t>{ 0, 1, 1, 2 }));
}

TEST(TokenMap, RefusesBadDocuments)
{
	expectRefused("not json", "not JSON");
	expectRefused("[1,2]", "object");
	expectRefused("{}", "'model'");
	expectRefused(R"({"model":{"type":"BPE"}})", "'model.vocab'");
	expectRefused(R"({"model":{"vocab":"x"}})", "'model.vocab'");
	expectRefused(R"({"model":{"vocab":{}}})", "holds no tokens");
	expectRefused(R"({"model":{"vocab":{"a":-1}}})", "'model.vocab'");
	expectRefused(R"({"model":{"vocab":{"a":0,"b":2}}})", "id 1 has no token");
	expectRefused(R"({"model":{"vocab":{"a":0,"b":0}}})", "both");
	expectRefused(R"({"model":{"vocab":{"a":1099511627776}}})", "past the largest");
	expectRefused(R"({"model":{"vocab":{"a":0}},"added_tokens":{}})", "'added_tokens'");
	expectRefused(R"({"model":{"vocab":{"a":0}},"added_tokens":[{"id":1}]})", "'added_tokens[0].content'");
	expectRefused(R"({"model":{"vocab":{"a":0}},"added_tokens":[{"id":"1","content":"b"}]})", "'added_tokens[0].id'");
	// An added token repeating a vocabulary string under another id: len(tokenizer) would not
	// count that id.
	expectRefused(R"({"model":{"vocab":{"a":0,"b":1}},"added_tokens":[{"id":2,"content":"a"}]})", "distinct");
	expectRefused(R"({"model":{"vocab":{"a":0}},"decoder":{"type":"WordPiece"}})", "'WordPiece'", EP_E_UNSUPPORTED);
}

TEST(TokenMap, RefusesBadFiles)
{
	eptest::TempDir dir;
	auto r = buildTokenMap("/dev/zero");
	ASSERT_FALSE(r.isOk());
	EXPECT_NE(r.status().message().find("/dev/zero"), std::string::npos) << r.status().message();
	r = buildTokenMap(dir.path());
	EXPECT_FALSE(r.isOk());
	r = buildTokenMap(dir.file("missing.json"));
	ASSERT_FALSE(r.isOk());
	EXPECT_EQ(r.code(), -ENOENT);
	// A file past the cap is refused by its size, before it is read.
	const std::string huge = dir.file("huge.json");
	{
		int fd = open(huge.c_str(), O_CREAT | O_WRONLY, 0644);
		ASSERT_GE(fd, 0);
		ASSERT_EQ(ftruncate(fd, static_cast<off_t>(kMaxTokenizerJsonBytes + 1)), 0);
		close(fd);
	}
	r = buildTokenMap(huge);
	ASSERT_FALSE(r.isOk());
	EXPECT_EQ(r.code(), -EFBIG) << r.status().message();
	// A parse error names the file.
	const std::string bad = dir.file("bad.json");
	std::ofstream(bad) << "{\"model\": ";
	r = buildTokenMap(bad);
	ASSERT_FALSE(r.isOk());
	EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
	EXPECT_NE(r.status().message().find("not JSON"), std::string::npos) << r.status().message();
}

TEST(TokenMap, NpyRoundTripIsAModelVocabMap)
{
	eptest::TempDir dir;
	TokenizerSpec t;
	for (const char *s : { "A", "a", "b", " B" })
		t.vocab.push_back(byteLevel(s));
	TokenMap m = build(t.toJson());
	ASSERT_EQ(m.map, (std::vector<int64_t>{ 0, 0, 1, 1 }));
	const std::string path = dir.file("map.npy");
	ASSERT_TRUE(writeTokenMapNpy(m, path).isOk());
	auto back = io::loadNpyInt64(path);
	ASSERT_TRUE(back.isOk()) << back.status().message();
	EXPECT_EQ(*back, m.map);
	auto h = io::readNpyHeader(path);
	ASSERT_TRUE(h.isOk());
	EXPECT_EQ(h->descr, "<i8");
	EXPECT_EQ(h->shape, (std::vector<uint64_t>{ 4 }));
}
