// SPDX-License-Identifier: Apache-2.0
// normalize.hpp - the Engram key normalizer (ICU) and strict UTF-8 helpers.
#pragma once

#include <string>

#include "util/status.hpp"

namespace engrampool::tokenizer {

// The code point DeepSeek's normalizer uses as the lone-space sentinel (U+E000). Its last
// step turns every U+E000 back into a space, also one that was in the text.
inline constexpr char32_t kSentinel = 0xE000;

// NFKC -> NFD -> drop general category M -> lowercase each code point alone (full
// mapping, root locale) -> runs of [ \t\r\n] to one space -> exactly " " becomes the
// sentinel -> strip White_Space at both ends -> every sentinel becomes " ".
// `text` must be valid UTF-8 (-EINVAL otherwise).
Result<std::string> normalizeKey(const std::string &text);

// The full lowercase mapping of one code point alone (root locale, no context):
// U+0130 -> "i" U+0307, U+03A3 -> U+03C3 (never the final form). UTF-8.
Result<std::string> lowercaseCodePoint(char32_t cp);
// True when s is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool isValidUtf8(const std::string &s);
// s with every ill-formed sequence replaced by U+FFFD, one per maximal subpart (what
// Rust's String::from_utf8_lossy does).
std::string utf8Lossy(const std::string &s);
// Append code point cp as UTF-8.
void appendUtf8(std::string &out, char32_t cp);
// The code points of valid UTF-8 s.
std::u32string utf8ToCodePoints(const std::string &s);

} // namespace engrampool::tokenizer
