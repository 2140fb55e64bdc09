// SPDX-License-Identifier: Apache-2.0
// utf8.cpp - UTF-8 stepping on ICU's U8_NEXT.
#include "util/utf8.hpp"

#include <unicode/utf8.h>

namespace engrampool {

int32_t nextCodePoint(const std::string &s, size_t &i)
{
	const auto *p = reinterpret_cast<const uint8_t *>(s.data());
	int32_t at = (int32_t)i, n = (int32_t)s.size();
	UChar32 c;
	U8_NEXT(p, at, n, c);
	i = (size_t)at;
	return c < 0 ? -1 : c;
}

} // namespace engrampool
