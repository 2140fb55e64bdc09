// SPDX-License-Identifier: Apache-2.0
// huge_alloc.hpp - an allocator for large, randomly probed tables (hash maps, sketches):
// 2 MiB and larger blocks come from anonymous mmap with MADV_HUGEPAGE, so a random probe
// costs one cache miss, not a cache miss plus a page walk (transparent huge pages are
// often "madvise" only). Smaller blocks use the ordinary heap.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <sys/mman.h>

namespace engrampool {

template <typename T>
struct HugePageAllocator {
	using value_type = T;
	static constexpr size_t kHuge = size_t(2) << 20;

	HugePageAllocator() = default;
	template <typename U>
	HugePageAllocator(const HugePageAllocator<U> &) noexcept
	{
	}

	static size_t mappedBytes(size_t n) { return (n * sizeof(T) + kHuge - 1) / kHuge * kHuge; }

	T *allocate(size_t n)
	{
		if (n * sizeof(T) < kHuge)
			return std::allocator<T>().allocate(n);
		void *p = mmap(nullptr, mappedBytes(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			throw std::bad_alloc();
		madvise(p, mappedBytes(n), MADV_HUGEPAGE);
		return static_cast<T *>(p);
	}
	void deallocate(T *p, size_t n) noexcept
	{
		if (n * sizeof(T) < kHuge)
			std::allocator<T>().deallocate(p, n);
		else
			munmap(p, mappedBytes(n));
	}
	template <typename U>
	bool operator==(const HugePageAllocator<U> &) const noexcept
	{
		return true;
	}
};

} // namespace engrampool
