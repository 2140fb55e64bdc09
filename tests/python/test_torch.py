# SPDX-License-Identifier: Apache-2.0
# engrampool.torch.EngramEmbedding against the source tables indexed with numpy row ids.
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from engrampool.torch import EngramEmbedding  # noqa: E402
from conftest import FP8_MODEL, FP32_MODEL  # noqa: E402
from test_agent import fp8_reference  # noqa: E402


def reference(pool_setup, model, tokens, dead=None):
    """[layers, B, T, J, D] float32: the source tables indexed with numpy row ids."""
    ids = pool_setup.row_ids(model, tokens, dead)
    cfg = FP8_MODEL if model == FP8_MODEL["name"] else FP32_MODEL
    out = []
    for lid in cfg["layer_ids"]:
        v, s = pool_setup.source[(model, lid)]
        rows = v if s is None else fp8_reference(v, s)
        out.append(rows[ids[lid]])
    return np.stack(out)


def test_random_batches_and_dead_spans(pool_setup):
    rng = np.random.default_rng(11)
    emb_all = EngramEmbedding(pool_setup.uri, pool_setup.models["pyt-fp32"])
    emb_l5 = EngramEmbedding(pool_setup.uri, pool_setup.models["pyt-fp32"], layer_id=5, dtype=torch.float64)
    assert len(list(emb_all.parameters())) == 0
    for trial in range(6):
        B, T = rng.integers(1, 6), rng.integers(1, 40)
        tokens = rng.integers(0, 300, size=(B, T))
        dead = None
        if trial % 2:
            dead = np.zeros((B, T), dtype=bool)
            start = rng.integers(0, T)
            dead[rng.integers(0, B), start:start + rng.integers(1, 6)] = True
        ref = reference(pool_setup, "pyt-fp32", tokens, dead)
        got = emb_all(torch.from_numpy(tokens), None if dead is None else torch.from_numpy(dead))
        assert tuple(got.shape) == (2, B, T, 4, 16) and got.dtype == torch.float32
        assert np.array_equal(got.numpy(), ref)
        got5 = emb_l5(tokens, dead)
        assert got5.dtype == torch.float64 and np.array_equal(got5.numpy(), ref[1].astype(np.float64))
        emb_all.reset()
        emb_l5.reset()


def test_streaming_decode(pool_setup):
    rng = np.random.default_rng(12)
    emb = EngramEmbedding(pool_setup.uri, pool_setup.models["pyt-fp32"], layer_id=2)
    B = 4
    seqs = np.array([11, 22, 33, 44], dtype=np.uint64)
    prompt = rng.integers(0, 300, size=(B, 7))
    dead = np.zeros_like(prompt, dtype=bool)
    dead[1, 2:4] = True  # blocks later n-grams of sequence 22 in later calls too
    history, hdead = prompt, dead
    got = emb(prompt, dead, seq_ids=seqs)
    assert np.array_equal(got.numpy(), reference(pool_setup, "pyt-fp32", history, hdead)[0])
    for step in range(25):
        nxt = rng.integers(0, 300, size=(B, 1))
        d = np.zeros_like(nxt, dtype=bool)
        if step == 10:
            d[3, 0] = True
        history = np.concatenate([history, nxt], axis=1)
        hdead = np.concatenate([hdead, d], axis=1)
        got = emb(nxt, d, seq_ids=seqs)
        ref = reference(pool_setup, "pyt-fp32", history, hdead)[0][:, -1:]
        assert np.array_equal(got.numpy(), ref), "decode step %d" % step
    emb.end([22])
    fresh = rng.integers(0, 300, size=(1, 3))
    assert np.array_equal(emb(fresh, seq_ids=[22]).numpy(), reference(pool_setup, "pyt-fp32", fresh)[0])


def test_fp8_dequantized(pool_setup):
    rng = np.random.default_rng(13)
    emb = EngramEmbedding(pool_setup.uri, pool_setup.models["pyt-fp8"], dtype=torch.bfloat16)
    tokens = rng.integers(0, 500, size=(2, 12))
    got = emb(tokens)
    ref = reference(pool_setup, "pyt-fp8", tokens)
    assert tuple(got.shape) == (2, 2, 12, 24, 256) and got.dtype == torch.bfloat16
    assert torch.equal(got, torch.from_numpy(ref).to(torch.bfloat16))


def test_bad_input(pool_setup):
    emb = EngramEmbedding(pool_setup.uri, pool_setup.models["pyt-fp32"], layer_id=2)
    with pytest.raises(ValueError, match="ids"):
        emb(torch.zeros(5, dtype=torch.int64))
    with pytest.raises(TypeError, match="ids"):
        emb(torch.zeros((1, 5)))
    with pytest.raises(ValueError, match="dead"):
        emb(torch.zeros((1, 5), dtype=torch.int64), dead=torch.zeros((1, 4), dtype=torch.bool))
    with pytest.raises(ValueError, match="layer_id"):
        EngramEmbedding(pool_setup.uri, pool_setup.models["pyt-fp32"], layer_id=3)
    import engrampool
    with pytest.raises(engrampool.Error):
        emb(torch.full((1, 2), 10**6, dtype=torch.int64))
