# SPDX-License-Identifier: Apache-2.0
"""engrampool.torch: the Engram embedding lookup as a torch.nn.Module."""
import numpy as np
import torch

from . import _engrampool
from ._dequant import dequantize


class EngramEmbedding(torch.nn.Module):
    """Engram rows for token ids, read from the pool through an agent.

    forward(ids, dead=None, seq_ids=None) with ids int [B, T] returns the rows of the
    tokens' n-gram hash heads, dequantized to `dtype`: [B, T, (N-1)*H, D] for one
    Engram layer (layer_id), or [layers, B, T, (N-1)*H, D] for all of the model's
    Engram layers (layer_id=None).

    Streaming decode: sequence seq_ids[b] (default b) continues across calls: the first
    call that names it starts it; later calls hash their tokens as continuations of
    what came before (prefill [B, T] then decode steps [B, 1] give the rows of
    hashing the whole sequence at once). end(seq_ids) forgets sequences (all of them
    by default); reset() is end(). dead: bool [B, T], positions (e.g. image spans)
    whose n-grams are blocked, in this call and for the sequence's later calls.
    The module has no parameters: the tables live in the pool.
    """

    def __init__(self, pool_uri, model_path, layer_id=None, dtype=torch.float32, max_batch_tokens=4096,
                 max_sequences=4096, register=False, **agent_kwargs):
        super().__init__()
        agent_kwargs.setdefault("output", "f32")  # the agent dequantizes (C++), not numpy
        self.agent = _engrampool.Agent(pool_uri, str(model_path), device="cpu", max_batch_tokens=max_batch_tokens,
                                       max_sequences=max_sequences, register=register, **agent_kwargs)
        ids = list(self.agent.layer_ids)
        if layer_id is not None and layer_id not in ids:
            raise ValueError("layer_id: %r is not one of the model's Engram layers %r" % (layer_id, ids))
        self.layer_id = layer_id
        self.layer_index = None if layer_id is None else ids.index(layer_id)
        self.dtype = dtype
        self._fmt = self.agent.row_format
        self._live = set()

    def forward(self, ids, dead=None, seq_ids=None):
        if isinstance(ids, torch.Tensor):
            if ids.dtype.is_floating_point or ids.dtype == torch.bool:
                raise TypeError("ids: expected integer token ids, got %s" % ids.dtype)
            ids = ids.detach().cpu().numpy()
        ids = np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError("ids: expected [B, T] token ids, got shape %s" % (ids.shape,))
        if ids.dtype.kind not in "iu":
            raise TypeError("ids: expected integer token ids, got dtype %s" % ids.dtype)
        B, T = ids.shape
        tokens = np.ascontiguousarray(ids, dtype=np.int64)
        seqs = np.arange(B, dtype=np.uint64) if seq_ids is None else np.ascontiguousarray(seq_ids, dtype=np.uint64)
        if seqs.shape != (B,):
            raise ValueError("seq_ids: expected %d ids" % B)
        if len(set(seqs.tolist())) != B:
            raise ValueError("seq_ids: a sequence appears twice in the batch")
        flags = np.array([0 if int(s) in self._live else _engrampool.SEQ_START for s in seqs], dtype=np.uint32)
        d = None
        if dead is not None:
            if isinstance(dead, torch.Tensor):
                dead = dead.detach().cpu().numpy()
            d = np.ascontiguousarray(np.asarray(dead).astype(bool))
            if d.shape != (B, T):
                raise ValueError("dead: expected [B, T] = %s flags, got %s" % ((B, T), d.shape))
        ticket = self.agent.prefetch(tokens, dead=d, seq_ids=seqs, flags=flags)
        try:
            self._live.update(int(s) for s in seqs)
            layers = range(len(self.agent.layer_ids)) if self.layer_index is None else [self.layer_index]
            outs = []
            for li in layers:
                rows = ticket.output(li)  # [B*T, columns, D or row_bytes] view of the staging slot
                if self.agent.output_format == "f32":
                    outs.append(np.array(rows))  # a copy: safe after release
                else:
                    outs.append(dequantize(rows, self._fmt))  # packed: dequantized copy
        finally:
            self.agent.release(ticket)
        out = np.stack(outs).reshape(len(outs), B, T, self.agent.columns, -1)
        t = torch.from_numpy(out).to(self.dtype)
        return t[0] if self.layer_index is not None else t

    def end(self, seq_ids=None):
        """Forget sequences (all when None): their next call starts them afresh."""
        for s in list(self._live) if seq_ids is None else [int(x) for x in seq_ids]:
            if s in self._live:
                self.agent.end_sequence(s)
                self._live.discard(s)

    def reset(self):
        self.end()

    def extra_repr(self):
        return "uri=%r, model=%r, layer_id=%r, dtype=%s" % (self.agent.uri, self.agent.model_name, self.layer_id,
                                                           self.dtype)
