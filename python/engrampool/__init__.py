# SPDX-License-Identifier: Apache-2.0
"""engrampool: Engram conditional-memory tables served from a shared CXL/DAX pool.

From a build tree:  PYTHONPATH=build/python:python python3 -c 'import engrampool'
(or run inside `meson devenv -C build`). After `meson install` a plain import works.

    import engrampool
    with engrampool.Pool("emul:demo") as pool:
        t = pool.tables()[0]
        values, scales = t.planes()          # zero-copy, read-only, exact pitch
    agent = engrampool.Agent("emul:demo", "model.json")
    tk = agent.prefetch(np.array([[5, 6, 7]]), flags=engrampool.SEQ_START)
    rows = tk.output(0)                      # staging slot view: valid until release
    agent.release(tk)

Library failures raise engrampool.Error (a RuntimeError; .code is the library's
code, the message is the library's); bad arguments raise ValueError or TypeError.
Arrays from Table.planes() and Ticket.output() are views: they keep the pool
mapping / the agent's staging memory alive, but a Ticket.output() array shows rows of
a later step once its ticket is released.
"""
import functools as _functools
import json as _json
import pkgutil as _pkgutil

# The extension sits in build/python/engrampool/ in a build tree, next to this file
# once installed: search every engrampool/ directory on sys.path.
__path__ = _pkgutil.extend_path(__path__, __name__)

from . import _engrampool  # noqa: E402
from ._engrampool import (  # noqa: E402,F401
    Agent, CudaArray, Error, Hasher, Pool, Table, Ticket,
    SEQ_START, SEQ_END, create_pool, cuda_probe, strerror, version,
)
from ._cuda import register_cuda, CudaPlanes  # noqa: E402,F401

__all__ = ["Pool", "Table", "Agent", "Ticket", "Hasher", "Error", "hash", "register_cuda",
           "CudaPlanes", "SEQ_START", "SEQ_END", "create_pool", "version"]


@_functools.lru_cache(maxsize=8)
def _hasher(model):
    return Hasher(model)


def hash(model, batch, dead=None, kind="rows"):
    """Engram row ids (kind="rows") or per-head hash ids (kind="hash") of a batch.

    batch: int [B, T] (B sequences of T tokens, each hashed from its start) -> uint64
    [layers, B, T, J]; or a list of 1-D sequences -> [layers, total_tokens, J].
    dead: flags of the batch's shape (nonzero = dead, e.g. image positions), or None.
    model: path of a MODEL.json (the hasher is cached per path) or a Hasher.
    """
    h = model if isinstance(model, Hasher) else _hasher(str(model))
    return h.hash(batch, dead, kind)


def _is_torch_tensor(x):
    t = type(x)
    return t.__module__.startswith("torch") and t.__name__ in ("Tensor", "Parameter")


def _as_numpy_out(out):
    """A writable numpy view of a CPU torch tensor (bf16 as uint16), or out itself."""
    if _is_torch_tensor(out):
        import torch
        if out.device.type != "cpu":
            raise TypeError("out: a CUDA tensor; lookup_into writes host memory (register it or use a CPU tensor)")
        if not out.is_contiguous():
            raise ValueError("out: tensor must be contiguous")
        if out.dtype == torch.bfloat16:
            return out.detach().view(torch.int16).numpy().view("uint16"), "bf16"
        return out.detach().numpy(), None
    return out, None


def _lookup_into(self, layer, row_ids, out, format=None):
    """Rows of Engram layer `layer` (index in layer_ids order) into out.

    row_ids: integer row ids into the layer's table (any shape; n = row_ids.size).
    out: a C-contiguous writable numpy array or CPU torch tensor of exactly
    n * bytes-per-row bytes. format: "packed" (stored rows), "values", "scales",
    "planes" (n values rows then n scales rows), "f32" or "bf16" (dequantized);
    default f32 for a float32 out, bf16 for a bfloat16 tensor, packed otherwise.
    Runs without the GIL. Returns out.
    """
    arr, inferred = _as_numpy_out(out)
    if format is None:
        format = inferred
    if _is_torch_tensor(row_ids):
        row_ids = row_ids.detach().cpu().numpy()
    self._lookup_into(layer, row_ids, arr, format)
    return out


def _metrics(self):
    """The agent's metrics as a dict (the JSON of ep_agent_metrics)."""
    return _json.loads(self.metrics_text(0))


def _torch_planes(self, h0=None, h1=None, fp8=True):
    """planes() as torch tensors sharing the pool mapping (torch.from_numpy).

    Values are uint8 bytes [rows, bytes] for fp8 tables (viewed as float8_e4m3fn when
    fp8=True and this torch has it; 1.13 does not), float32/float16 rows for those
    formats, int16 for bf16 bytes viewed as torch.bfloat16. Scales: uint8 (or
    float8_e8m0fnu where available). The tensors are read-only memory: do not write.
    """
    import warnings
    import torch
    values, scales = self.planes(h0, h1)

    def wrap(a):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "not writable": the mapping is read-only
            return torch.from_numpy(a)
    tv = wrap(values.view("int16")) if self.dtype == "bf16" and values.dtype.itemsize == 2 else wrap(values)
    if self.dtype == "bf16" and values.dtype.itemsize == 2:
        tv = tv.view(torch.bfloat16)
    if fp8 and self.dtype == "fp8-e4m3" and hasattr(torch, "float8_e4m3fn"):
        tv = tv.view(torch.float8_e4m3fn)
    ts = None
    if scales is not None:
        ts = wrap(scales)
        if fp8 and hasattr(torch, "float8_e8m0fnu"):
            ts = ts.view(torch.float8_e8m0fnu)
    return tv, ts


def _output_torch(self, layer):
    """output(layer) as a torch tensor sharing the staging slot (CPU or CUDA)."""
    import torch
    o = self.output(layer)
    if isinstance(o, CudaArray):
        return torch.as_tensor(o, device="cuda")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(o)


class _RowCount(int):
    """Table.rows: the table's row count (an int) that, called, gathers rows:
    table.rows == 1009 and table.rows([3, 5]) -> uint8 [2, row_bytes] (packed)."""

    def __new__(cls, table):
        r = super().__new__(cls, table.num_rows)
        r._table = table
        return r

    def __call__(self, ids, format="packed"):
        """Copy rows ids of the table (format: packed, values, scales, planes, f32, bf16)."""
        return self._table.read_rows(ids, format)

    def __reduce__(self):
        return (int, (int(self),))


Table.rows = property(_RowCount, doc=_RowCount.__doc__)
Agent.lookup_into = _lookup_into
Agent.metrics = _metrics
Ticket.output_torch = _output_torch
Table.torch_planes = _torch_planes
