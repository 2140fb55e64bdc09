# SPDX-License-Identifier: Apache-2.0
"""register_cuda: pin pool planes (or any host arrays) with cudaHostRegister.

The registration itself is lib/device's registerHost: whole pages, chunks of 1 GiB
(far below the 512 GiB a single cudaHostRegister call fails at on recent drivers),
every CUDA error read back with cudaGetLastError so none stays sticky, and the
chunks done so far unregistered when one fails. Overlapping arrays (the values and
scales views of one packed table) are registered once, as one merged range.
"""
from . import _engrampool

_DEFAULT_FLAGS = (_engrampool.CUDA_REGISTER_PORTABLE | _engrampool.CUDA_REGISTER_MAPPED
                  | _engrampool.CUDA_REGISTER_READ_ONLY)
_PAGE = 4096


def _span(a):
    """[begin, end) bytes an array with non-negative strides touches, and its interface."""
    ai = a.__array_interface__
    ptr = ai["data"][0]
    shape = ai["shape"]
    item = a.dtype.itemsize
    strides = ai["strides"] or tuple(item * int(_prod(shape[i + 1:])) for i in range(len(shape)))
    if any(s < 0 for s in strides):
        raise ValueError("register_cuda: arrays with negative strides are not supported")
    if 0 in shape:
        return ptr, ptr, ai, strides
    last = sum((n - 1) * s for n, s in zip(shape, strides)) + item
    return ptr, ptr + last, ai, strides


def _prod(xs):
    p = 1
    for x in xs:
        p *= x
    return p


class CudaPlanes:
    """Host arrays registered with CUDA. .views[i] exposes __cuda_array_interface__ for
    arrays[i] (torch.as_tensor(view, device="cuda") reads the pool in place). Keeps the
    arrays (hence the pool mapping) alive and registered until close()."""

    def __init__(self, arrays, flags):
        self.arrays = list(arrays)
        self._regs = []
        spans = []
        for a in self.arrays:
            if not hasattr(a, "__array_interface__"):
                raise TypeError("register_cuda: expected numpy arrays (e.g. Table.planes())")
            b, e, ai, strides = _span(a)
            spans.append((b, e, ai, strides))
        # Merge page-widened ranges so that no page is registered twice.
        ranges = sorted(((b // _PAGE) * _PAGE, -(-e // _PAGE) * _PAGE) for b, e, _, _ in spans if e > b)
        merged = []
        for b, e in ranges:
            if merged and b <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([b, e])
        try:
            for b, e in merged:
                self._regs.append(_engrampool._cuda_register(b, e - b, flags))
        except BaseException:
            self.close()
            raise
        chunks = [c for r in self._regs for c in r.chunks]
        self.views = []
        for (b, e, ai, strides), a in zip(spans, self.arrays):
            dev = b
            for addr, length, dptr in chunks:
                if addr <= b < addr + length:
                    if dptr and dptr != addr:
                        # Not identity-mapped: a view must not cross chunks.
                        if e > addr + length:
                            raise _engrampool.Error("register_cuda: an array spans two chunks without unified addressing")
                        dev = dptr + (b - addr)
                    break
            self.views.append(_engrampool._cuda_array(dev, list(ai["shape"]), list(strides), ai["typestr"], a))

    def close(self):
        for r in self._regs:
            r.close()
        self._regs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def register_cuda(*arrays, flags=None):
    """Register host arrays (Table.planes() views) with CUDA; returns CudaPlanes.

    flags default to portable | mapped | read-only (the pool is mapped read-only).
    Raises engrampool.Error with CUDA's message when registration fails (no GPU, or
    a build without CUDA); nothing stays pinned then."""
    if not arrays:
        raise ValueError("register_cuda: no arrays given")
    return CudaPlanes([a for a in arrays if a is not None], _DEFAULT_FLAGS if flags is None else flags)
