// SPDX-License-Identifier: Apache-2.0
// utf8.hpp - step through UTF-8 text read from untrusted places (names in the pool,
// option values). ICU's decoder decides what is well-formed: no overlongs, surrogates
// or code points above U+10FFFF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace engrampool {

// The code point at s[i], advancing i past it; -1 for an ill-formed sequence (i then
// moves past its maximal ill-formed part, at least one byte).
int32_t nextCodePoint(const std::string &s, size_t &i);
// C0 and C1 controls and DEL: code points that act on a terminal.
inline bool isControlCodePoint(int32_t cp)
{
	return cp >= 0 && (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f));
}

} // namespace engrampool
