// SPDX-License-Identifier: Apache-2.0
// npy.cpp - NumPy .npy header parser (untrusted bytes) and the int64 array loader.
#include "io/npy.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "io/file_util.hpp"

namespace engrampool::io {

namespace {

constexpr uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
// numpy itself writes headers of a few hundred bytes; anything far larger is hostile
// or corrupt, and we refuse it before allocating.
constexpr uint32_t kMaxHeaderLen = 1u << 20;

// Cursor over the header text; every accessor checks the bound itself so that no
// path through the parser can step past `end`.
class DictParser {
public:
	DictParser(const char *p, const char *end) : begin_(p), p_(p), end_(end) {}

	void skipSpace()
	{
		while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r'))
			p_++;
	}
	bool atEnd() const { return p_ >= end_; }
	bool peek(char c) const { return p_ < end_ && *p_ == c; }
	bool consume(char c)
	{
		skipSpace();
		if (!peek(c))
			return false;
		p_++;
		return true;
	}
	bool consumeWord(const char *w)
	{
		size_t n = std::strlen(w);
		if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, w, n) != 0)
			return false;
		p_ += n;
		return true;
	}

	// A Python string literal in single or double quotes, without escapes (numpy
	// never writes any in the keys and values we accept).
	Status string(std::string &out)
	{
		skipSpace();
		if (atEnd() || (*p_ != '\'' && *p_ != '"'))
			return errorf(-EINVAL, "npy header: expected a quoted string at byte %zu", pos());
		char q = *p_++;
		const char *start = p_;
		while (p_ < end_ && *p_ != q) {
			if (*p_ == '\\')
				return errorf(-EINVAL, "npy header: escape sequences are not supported");
			p_++;
		}
		if (atEnd())
			return errorf(-EINVAL, "npy header: unterminated string");
		out.assign(start, p_);
		p_++;
		return Status::ok();
	}

	Status boolean(bool &out)
	{
		skipSpace();
		if (consumeWord("True")) {
			out = true;
			return Status::ok();
		}
		if (consumeWord("False")) {
			out = false;
			return Status::ok();
		}
		return errorf(-EINVAL, "npy header: expected True or False at byte %zu", pos());
	}

	Status integer(uint64_t &out)
	{
		skipSpace();
		if (atEnd() || *p_ < '0' || *p_ > '9')
			return errorf(-EINVAL, "npy header: expected a non-negative integer at byte %zu", pos());
		uint64_t v = 0;
		while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
			uint64_t d = static_cast<uint64_t>(*p_ - '0');
			if (v > (std::numeric_limits<uint64_t>::max() - d) / 10)
				return errorf(-EINVAL, "npy header: shape dimension overflows");
			v = v * 10 + d;
			p_++;
		}
		// Files written by Python 2 spell longs as "3L".
		if (p_ < end_ && *p_ == 'L')
			p_++;
		out = v;
		return Status::ok();
	}

	// "()" , "(5,)" , "(3, 4)" , "(3, 4,)".
	Status tuple(std::vector<uint64_t> &out)
	{
		out.clear();
		if (!consume('('))
			return errorf(-EINVAL, "npy header: 'shape' is not a tuple");
		if (consume(')'))
			return Status::ok();
		for (;;) {
			if (out.size() >= 32)
				return errorf(-EINVAL, "npy header: shape has more than 32 dimensions");
			uint64_t v = 0;
			EP_TRY(integer(v));
			out.push_back(v);
			if (consume(')'))
				return Status::ok();
			if (!consume(','))
				return errorf(-EINVAL, "npy header: malformed shape tuple at byte %zu", pos());
			if (consume(')'))
				return Status::ok();
		}
	}

	size_t pos() const { return static_cast<size_t>(p_ - begin_); }

private:
	const char *begin_;
	const char *p_;
	const char *end_;
};

// Item size from a simple descr such as "<f4", "|u1", "|V2", "<U8", "<M8[ns]".
Status descrItemSize(const std::string &descr, uint32_t &itemSize)
{
	if (descr.size() < 3 || descr.size() > 32)
		return errorf(-EINVAL, "npy header: unsupported dtype '%s'", descr.c_str());
	char order = descr[0];
	if (order != '<' && order != '>' && order != '|' && order != '=')
		return errorf(-EINVAL, "npy header: unsupported dtype '%s'", descr.c_str());
	char kind = descr[1];
	size_t i = 2;
	uint64_t n = 0;
	while (i < descr.size() && descr[i] >= '0' && descr[i] <= '9' && n < (1u << 20))
		n = n * 10 + static_cast<uint64_t>(descr[i++] - '0');
	bool unitOk = i == descr.size() ||
		      ((kind == 'M' || kind == 'm') && descr[i] == '[' && descr.back() == ']');
	if (i == 2 || n == 0 || n >= (1u << 20) || !unitOk)
		return errorf(-EINVAL, "npy header: unsupported dtype '%s'", descr.c_str());
	switch (kind) {
	case 'b': case 'i': case 'u': case 'f': case 'c': case 'V': case 'S': case 'M': case 'm':
		itemSize = static_cast<uint32_t>(n);
		return Status::ok();
	case 'U':
		itemSize = static_cast<uint32_t>(n * 4);
		return Status::ok();
	default:
		return errorf(-EINVAL, "npy header: unsupported dtype '%s'", descr.c_str());
	}
}

uint32_t readLe32(const uint8_t *p)
{
	return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// Bytes before the header text, and the header text's length, from the fixed prefix.
Status npyPrefix(const uint8_t *data, size_t len, size_t &prefix, uint32_t &headerLen)
{
	if (len < 8 || std::memcmp(data, kMagic, sizeof(kMagic)) != 0)
		return errorf(-EINVAL, "not an .npy file (bad magic)");
	uint8_t major = data[6], minor = data[7];
	if (major == 1) {
		prefix = 10;
		if (len < prefix)
			return errorf(-EINVAL, "npy header truncated");
		headerLen = uint32_t(data[8]) | uint32_t(data[9]) << 8;
	} else if (major == 2 || major == 3) {
		prefix = 12;
		if (len < prefix)
			return errorf(-EINVAL, "npy header truncated");
		headerLen = readLe32(data + 8);
	} else {
		return errorf(-EINVAL, "unsupported .npy format version %u.%u", major, minor);
	}
	if (minor != 0)
		return errorf(-EINVAL, "unsupported .npy format version %u.%u", major, minor);
	if (headerLen > kMaxHeaderLen)
		return errorf(-EINVAL, "npy header length %u is implausibly large", headerLen);
	return Status::ok();
}

} // namespace

uint64_t NpyHeader::elements() const
{
	uint64_t n = 1;
	for (uint64_t d : shape)
		n *= d;
	return n;
}

Result<NpyHeader> parseNpyHeader(const uint8_t *data, size_t len)
{
	if (!data)
		return errorf(-EINVAL, "npy header: no data");
	size_t prefix = 0;
	uint32_t headerLen = 0;
	EP_TRY(npyPrefix(data, len, prefix, headerLen));
	if (len - prefix < headerLen)
		return errorf(-EINVAL, "npy header truncated: needs %zu bytes, have %zu",
			      prefix + headerLen, len);

	const char *text = reinterpret_cast<const char *>(data + prefix);
	DictParser dp(text, text + headerLen);

	NpyHeader h;
	bool haveDescr = false, haveOrder = false, haveShape = false;
	if (!dp.consume('{'))
		return errorf(-EINVAL, "npy header: not a dictionary");
	for (;;) {
		if (dp.consume('}'))
			break;
		std::string key;
		EP_TRY(dp.string(key));
		if (!dp.consume(':'))
			return errorf(-EINVAL, "npy header: expected ':' after '%s'", key.c_str());
		if (key == "descr" && !haveDescr) {
			dp.skipSpace();
			if (dp.peek('['))
				return errorf(-EINVAL, "npy header: structured dtypes are not supported");
			EP_TRY(dp.string(h.descr));
			haveDescr = true;
		} else if (key == "fortran_order" && !haveOrder) {
			EP_TRY(dp.boolean(h.fortranOrder));
			haveOrder = true;
		} else if (key == "shape" && !haveShape) {
			EP_TRY(dp.tuple(h.shape));
			haveShape = true;
		} else {
			return errorf(-EINVAL, "npy header: unexpected or repeated key '%s'", key.c_str());
		}
		if (dp.consume('}'))
			break;
		if (!dp.consume(','))
			return errorf(-EINVAL, "npy header: expected ',' or '}' at byte %zu", dp.pos());
	}
	// Only padding may follow the dictionary.
	dp.skipSpace();
	if (!dp.atEnd())
		return errorf(-EINVAL, "npy header: trailing bytes after the dictionary");
	if (!haveDescr || !haveOrder || !haveShape)
		return errorf(-EINVAL, "npy header: missing %s", !haveDescr ? "'descr'"
				   : !haveOrder ? "'fortran_order'" : "'shape'");

	EP_TRY(descrItemSize(h.descr, h.itemSize));
	// Refuse element counts whose byte size would overflow any later arithmetic.
	uint64_t limit = std::numeric_limits<int64_t>::max() / h.itemSize;
	uint64_t n = 1;
	for (uint64_t d : h.shape) {
		if (d != 0 && n > limit / d)
			return errorf(-EINVAL, "npy header: shape %s is too large",
				      shapeString(h.shape).c_str());
		n *= d;
	}
	h.dataOffset = prefix + headerLen;
	return h;
}

Result<NpyHeader> readNpyHeader(const std::string &path)
{
	auto fd = openReadOnly(path);
	if (!fd)
		return fd.status();
	auto size = fileSize(fd->get(), path);
	if (!size)
		return size.status();

	uint8_t fixed[12];
	size_t got = *size < sizeof(fixed) ? static_cast<size_t>(*size) : sizeof(fixed);
	EP_TRY(preadFull(fd->get(), fixed, got, 0, path));
	size_t prefix = 0;
	uint32_t headerLen = 0;
	Status s = npyPrefix(fixed, got, prefix, headerLen);
	if (!s)
		return std::move(s).context("'" + path + "': ");
	if (*size < prefix + headerLen)
		return errorf(-EINVAL, "'%s': npy header truncated: needs %zu bytes, file is %llu bytes",
			      path.c_str(), prefix + headerLen, static_cast<unsigned long long>(*size));

	std::vector<uint8_t> buf(prefix + headerLen);
	EP_TRY(preadFull(fd->get(), buf.data(), buf.size(), 0, path));
	auto h = parseNpyHeader(buf.data(), buf.size());
	if (!h)
		return h.status().context("'" + path + "': ");

	uint64_t dataBytes = h->elements() * h->itemSize;
	uint64_t need = h->dataOffset + dataBytes;
	if (*size < need)
		return errorf(-EINVAL,
			      "'%s': truncated: shape %s '%s' needs %llu data bytes (%llu bytes in all), "
			      "file is %llu bytes",
			      path.c_str(), shapeString(h->shape).c_str(), h->descr.c_str(),
			      static_cast<unsigned long long>(dataBytes),
			      static_cast<unsigned long long>(need),
			      static_cast<unsigned long long>(*size));
	return h;
}

Result<std::vector<int64_t>> loadNpyInt64(const std::string &path)
{
	auto h = readNpyHeader(path);
	if (!h)
		return h.status();
	// A 1-D array is the same in C and Fortran order, so fortran_order is irrelevant.
	if (h->shape.size() != 1)
		return errorf(EP_E_SHAPE, "'%s': expected a 1-D int64 array, found shape %s '%s'",
			      path.c_str(), shapeString(h->shape).c_str(), h->descr.c_str());
	const std::string &d = h->descr;
	bool little = d[0] == '<' || d[0] == '=';
	enum { I8, I4, U4 } kind;
	if (little && d.substr(1) == "i8")
		kind = I8;
	else if (little && d.substr(1) == "i4")
		kind = I4;
	else if (little && d.substr(1) == "u4")
		kind = U4;
	else
		return errorf(EP_E_SHAPE, "'%s': dtype '%s' is not supported (expected '<i8', '<i4' or '<u4')",
			      path.c_str(), d.c_str());

	auto fd = openReadOnly(path);
	if (!fd)
		return fd.status();
	uint64_t n = h->elements();
	std::vector<int64_t> out(n);
	if (kind == I8) {
		EP_TRY(preadFull(fd->get(), out.data(), n * 8, h->dataOffset, path));
		return out;
	}
	std::vector<uint32_t> raw(n);
	EP_TRY(preadFull(fd->get(), raw.data(), n * 4, h->dataOffset, path));
	for (uint64_t i = 0; i < n; i++)
		out[i] = kind == I4 ? static_cast<int64_t>(static_cast<int32_t>(raw[i]))
				    : static_cast<int64_t>(raw[i]);
	return out;
}

Status writeNpy(const std::string &path, const std::string &descr, const std::vector<uint64_t> &shape,
		const void *data, size_t bytes)
{
	std::string dims;
	for (auto d : shape)
		dims += std::to_string(d) + ", ";
	if (shape.size() > 1)
		dims.resize(dims.size() - 2);
	std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
	size_t pad = (64 - (10 + dict.size() + 1) % 64) % 64;
	dict += std::string(pad, ' ') + "\n";
	if (dict.size() > 65535)
		return makeError(-EINVAL, "npy header too long");
	FILE *f = fopen(path.c_str(), "wb");
	if (!f)
		return errnoError(errno, "create " + path);
	uint16_t hl = (uint16_t)dict.size();
	bool ok = fwrite("\x93NUMPY\x01\x00", 1, 8, f) == 8 && fwrite(&hl, 1, 2, f) == 2 &&
		  fwrite(dict.data(), 1, dict.size(), f) == dict.size() && fwrite(data, 1, bytes, f) == bytes;
	ok = (fclose(f) == 0) && ok;
	if (!ok)
		return errnoError(errno ? errno : EIO, "write " + path);
	return Status::ok();
}

} // namespace engrampool::io
