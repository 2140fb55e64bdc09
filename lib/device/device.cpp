// SPDX-License-Identifier: Apache-2.0
// device.cpp - Device::create and what both devices share: layout, checks, errors.
#include <cinttypes>
#include <cstdio>

#include "device/device_impl.hpp"

namespace engrampool::device {

Result<std::unique_ptr<Device>> Device::create(const Options &opts)
{
	switch (opts.kind) {
	case Kind::Host:
		return createHostDevice(opts);
	case Kind::Cuda:
		return createCudaDevice(opts);
	}
	return makeError(-EINVAL, "device: unknown kind");
}

namespace {

bool addAligned(size_t *at, size_t bytes, size_t align)
{
	size_t rounded;
	if (__builtin_add_overflow(bytes, align - 1, &rounded))
		return false;
	rounded &= ~(align - 1);
	return !__builtin_add_overflow(*at, rounded, at);
}

} // namespace

Status Layout::compute(uint32_t slots_, uint32_t layers_, size_t maxRows_, size_t maxOut_, uint32_t rowStride_)
{
	if (slots_ == 0 || layers_ == 0)
		return errorf(-EINVAL, "device allocate: %u slots x %u layers: both must be at least 1", slots_, layers_);
	if (rowStride_ == 0)
		return makeError(-EINVAL, "device allocate: row stride 0");
	if (maxRows_ == 0 || maxOut_ == 0)
		return errorf(-EINVAL, "device allocate: maxRows %zu, maxOut %zu: both must be at least 1", maxRows_,
			      maxOut_);
	// Index entries name staged rows below kFromCache; admit pairs are 32-bit too.
	if (maxRows_ > kFromCache)
		return errorf(-EINVAL, "device allocate: maxRows %zu exceeds the index limit %u", maxRows_, kFromCache);
	if (maxOut_ > UINT32_MAX)
		return errorf(-EINVAL, "device allocate: maxOut %zu exceeds %u", maxOut_, UINT32_MAX);
	size_t rowsBytes, outBytes;
	if (__builtin_mul_overflow(maxRows_, (size_t)rowStride_, &rowsBytes) ||
	    __builtin_mul_overflow(maxOut_, (size_t)rowStride_, &outBytes))
		return makeError(-EOVERFLOW, "device allocate: buffer size overflows");
	size_t at = 0;
	size_t rows = at;
	bool ok = addAligned(&at, rowsBytes, kAlign);
	size_t index = at;
	ok = ok && addAligned(&at, maxOut_ * 4, kAlign);
	size_t admit = at;
	ok = ok && addAligned(&at, maxRows_ * 8, kAlign);
	size_t staging = at;
	size_t output = at;
	ok = ok && addAligned(&at, outBytes, kAlign);
	size_t total;
	ok = ok && !__builtin_mul_overflow(at, (size_t)slots_ * layers_, &total);
	if (!ok)
		return makeError(-EOVERFLOW, "device allocate: buffer size overflows");
	slots = slots_, layers = layers_, maxRows = maxRows_, maxOut = maxOut_, rowStride = rowStride_;
	rowsOff = rows, indexOff = index, admitOff = admit, outputOff = output;
	stagingBytes = staging;
	recordBytes = at;
	outputBytes = at - staging;
	return Status::ok();
}

std::string ErrorRecord::text() const
{
	std::lock_guard<std::mutex> lock(mutex_);
	if (!isData_)
		return text_;
	if (data_.code == 0)
		return {};
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "%s (slot %u, layer %u): %s", data_.call, data_.slot, data_.layer,
			 data_.detail);
	if (data_.hasValue && n > 0 && (size_t)n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - n, " (%" PRIu64 ", limit %" PRIu64 ")", data_.value, data_.limit);
	return buf;
}

namespace {

int fail(DataError *err, const SubmitCheck &c, int code, const char *detail, uint64_t value, uint64_t limit)
{
	err->code = code;
	err->call = "submitLayer";
	err->detail = detail;
	err->slot = c.slot;
	err->layer = c.layer;
	err->value = value;
	err->limit = limit;
	err->hasValue = true;
	return code;
}

} // namespace

int checkSubmit(const Layout &l, const SubmitCheck &c, const uint32_t *index, const uint32_t *pairs, size_t cacheRows,
		uint32_t cacheStride, DataError *err)
{
	if (l.slots == 0)
		return fail(err, c, -EINVAL, "no buffers allocated", 0, 0);
	if (c.slot >= l.slots)
		return fail(err, c, -EINVAL, "slot out of range", c.slot, l.slots);
	if (c.layer >= l.layers)
		return fail(err, c, -EINVAL, "layer out of range", c.layer, l.layers);
	if (c.rowStride == 0 || c.rowStride > l.rowStride)
		return fail(err, c, -EINVAL, "row stride is 0 or larger than allocated", c.rowStride, l.rowStride);
	if (c.uniqueRows > l.maxRows)
		return fail(err, c, -EINVAL, "more unique rows than allocated", c.uniqueRows, l.maxRows);
	if (c.outRows > l.maxOut)
		return fail(err, c, -EINVAL, "more output rows than allocated", c.outRows, l.maxOut);
	if (c.admits > l.maxRows)
		return fail(err, c, -EINVAL, "more admit pairs than allocated", c.admits, l.maxRows);
	bool cacheFits = cacheRows > 0 && c.rowStride <= cacheStride;
	if (c.admits > 0 && !cacheFits)
		return fail(err, c, -EINVAL, "admits without a cache of this row stride", c.rowStride, cacheStride);
	if (index) {
		for (size_t i = 0; i < c.outRows; i++) {
			uint32_t e = index[i];
			if (e & kFromCache) {
				if (!cacheFits)
					return fail(err, c, -ERANGE, "index entry names the cache, which is absent or narrower",
						    c.rowStride, cacheStride);
				if ((e & ~kFromCache) >= cacheRows)
					return fail(err, c, -ERANGE, "index entry past the cache rows", e & ~kFromCache,
						    cacheRows);
			} else if (e >= c.uniqueRows) {
				return fail(err, c, -ERANGE, "index entry past the unique staged rows", e, c.uniqueRows);
			}
		}
	}
	if (pairs) {
		for (size_t i = 0; i < c.admits; i++) {
			if (pairs[2 * i] >= c.uniqueRows)
				return fail(err, c, -ERANGE, "admit pair names a staged row past uniqueRows", pairs[2 * i],
					    c.uniqueRows);
			if (pairs[2 * i + 1] >= cacheRows)
				return fail(err, c, -ERANGE, "admit pair names a cache slot past the cache", pairs[2 * i + 1],
					    cacheRows);
		}
	}
	return 0;
}

} // namespace engrampool::device
