# SPDX-License-Identifier: Apache-2.0
# Agent, Ticket, lookup_into and hash(), against the numpy reference hasher.
import numpy as np
import pytest

import engrampool
from conftest import FP8_MODEL, FP32_MODEL, packed, rss_bytes


@pytest.fixture
def agent(pool_setup):
    a = engrampool.Agent(pool_setup.uri, pool_setup.models[FP8_MODEL["name"]], register=False, max_sequences=64)
    yield a
    a.close()


def expected_rows(pool_setup, model, tokens, dead=None):
    """{layer index: packed source rows [B*T, J, row_bytes]} for whole sequences."""
    ids = pool_setup.row_ids(model, tokens, dead)
    cfg = FP8_MODEL if model == FP8_MODEL["name"] else FP32_MODEL
    out = {}
    for li, lid in enumerate(cfg["layer_ids"]):
        src = packed(*pool_setup.source[(model, lid)])
        r = ids[lid]
        out[li] = src[r.reshape(-1)].reshape(r.shape[0] * r.shape[1], r.shape[2], -1)
    return out


def test_hash_matches_numpy_reference(pool_setup):
    rng = np.random.default_rng(2)
    for name, cfg in (("pyt-fp8", FP8_MODEL), ("pyt-fp32", FP32_MODEL)):
        mpath = pool_setup.models[name]
        tokens = rng.integers(0, cfg["tokenizer_vocab_size"], size=(4, 33))
        dead = rng.random(tokens.shape) < 0.1
        for d in (None, dead):
            got = engrampool.hash(mpath, tokens, d)
            ref = pool_setup.row_ids(name, tokens, d)
            assert got.shape == (2, 4, 33, len(pool_setup.np_hashers[name].primes[cfg["layer_ids"][0]]))
            for li, lid in enumerate(cfg["layer_ids"]):
                assert np.array_equal(got[li].astype(np.int64), ref[lid])
        hashes = engrampool.hash(mpath, tokens, kind="hash")
        ref = pool_setup.np_hashers[name].hash(tokens)
        assert np.array_equal(hashes[0].astype(np.int64), ref[cfg["layer_ids"][0]])
        # ragged sequences: [layers, total tokens, J]
        seqs = [tokens[0, :5], tokens[1, :12]]
        got = engrampool.hash(mpath, seqs)
        ref0 = pool_setup.row_ids(name, tokens[:1, :5])[cfg["layer_ids"][0]][0]
        ref1 = pool_setup.row_ids(name, tokens[1:2, :12])[cfg["layer_ids"][0]][0]
        assert np.array_equal(got[0].astype(np.int64), np.concatenate([ref0, ref1]))
    with pytest.raises(ValueError, match="batch"):
        engrampool.hash(pool_setup.models["pyt-fp8"], np.zeros(5, dtype=np.int64))
    with pytest.raises(TypeError, match="batch"):
        engrampool.hash(pool_setup.models["pyt-fp8"], np.zeros((1, 5), dtype=np.float32))
    with pytest.raises(engrampool.Error):
        engrampool.hash(pool_setup.models["pyt-fp8"], np.array([[1, 10**6]]))
    with pytest.raises(engrampool.Error):
        engrampool.Hasher("/no/such/model.json")


def test_prefetch_output_rows(pool_setup, agent):
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, 500, size=(5, 9))
    dead = np.zeros(tokens.shape, dtype=bool)
    dead[2, 3:6] = True  # an image span
    exp = expected_rows(pool_setup, "pyt-fp8", tokens, dead)
    t = agent.prefetch(tokens, dead=dead, seq_ids=np.arange(100, 105, dtype=np.uint64),
                       flags=engrampool.SEQ_START | engrampool.SEQ_END)
    t.wait()
    for li in range(2):
        out = t.output(li)
        assert out.shape == exp[li].shape and not out.flags.writeable
        assert np.array_equal(out, exp[li])
        assert t.output(li).__array_interface__["data"][0] == out.__array_interface__["data"][0]  # a view
    assert np.array_equal(t.live_mask(), ~dead.reshape(-1))
    torch = pytest.importorskip("torch")
    assert np.array_equal(t.output_torch(1).numpy(), exp[1])
    assert agent.row_format["row_bytes"] == 264 and agent.columns == 24
    agent.release(t)
    # the list form: (seq_id, tokens[, flags]), ragged
    t = agent.prefetch([(7, tokens[0], engrampool.SEQ_START | engrampool.SEQ_END),
                        (8, list(tokens[1, :4]), engrampool.SEQ_START | engrampool.SEQ_END)],
                       dead=[None, dead[1, :4]])
    got = t.output(1)
    assert np.array_equal(got[:9], exp[1][:9])
    assert np.array_equal(got[9:], expected_rows(pool_setup, "pyt-fp8", tokens[1:2, :4])[1])
    agent.release(t)
    m = agent.metrics()
    assert isinstance(m, dict) and m


def test_hot_row_tier_adaptive_or_always(pool_setup):
    """cache_rows turns the tier on; it is adaptive by default, tier_always=True uses it on
    every pass. Either way the rows are exact, and the second run of a batch hits when the
    tier is always used."""
    rng = np.random.default_rng(8)
    tokens = rng.integers(0, 500, size=(4, 40))
    exp = expected_rows(pool_setup, "pyt-fp8", tokens)
    for always in (False, True):
        a = engrampool.Agent(pool_setup.uri, pool_setup.models[FP8_MODEL["name"]], register=False,
                             max_sequences=64, cache_rows=4096, tier_always=always)
        try:
            for _ in range(2):
                t = a.prefetch(tokens, seq_ids=np.arange(10, 14, dtype=np.uint64),
                               flags=engrampool.SEQ_START | engrampool.SEQ_END)
                t.wait()
                for li in range(2):
                    assert np.array_equal(t.output(li), exp[li])
                a.release(t)
            cache = a.metrics()["cache"]
            assert cache["adaptive"] is (not always)
            if always:
                assert cache["hits"] > 0 and cache["bypassed_rows"] == 0
        finally:
            a.close()


def test_wait_helps_and_dedup_always(pool_setup):
    """wait_helps=True: the waiting caller copies rows with the gather threads;
    dedup_always=True: every layer pass is deduplicated (metrics say the dedup is not
    adaptive and skipped nothing). The rows are exact with every combination."""
    rng = np.random.default_rng(12)
    tokens = rng.integers(0, 500, size=(8, 40))
    exp = expected_rows(pool_setup, "pyt-fp8", tokens)
    for helps in (False, True):
        for always in (False, True):
            a = engrampool.Agent(pool_setup.uri, pool_setup.models[FP8_MODEL["name"]], register=False,
                                 max_sequences=64, gather_threads=2, wait_helps=helps, dedup_always=always)
            try:
                for _ in range(3):
                    t = a.prefetch(tokens, seq_ids=np.arange(20, 28, dtype=np.uint64),
                                   flags=engrampool.SEQ_START | engrampool.SEQ_END)
                    t.wait()
                    for li in range(2):
                        assert np.array_equal(t.output(li), exp[li])
                    a.release(t)
                dedup = a.metrics()["dedup"]
                assert dedup["adaptive"] is (not always)
                if always:
                    assert dedup["skipped_rows"] == 0 and not dedup["skipping"]
            finally:
                a.close()


def test_ticket_and_batch_errors(pool_setup, agent):
    tok = np.array([[1, 2, 3]], dtype=np.int64)
    t = agent.prefetch(tok, flags=engrampool.SEQ_START)
    agent.release(t)
    assert t.released
    for call in (t.wait, lambda: t.output(0), t.live_mask, lambda: agent.release(t)):
        with pytest.raises(ValueError, match="released"):
            call()
    with pytest.raises(TypeError, match="batch"):
        agent.prefetch(tok.astype(np.float64))
    with pytest.raises(TypeError, match="batch"):
        agent.prefetch(tok.astype(np.int32))
    with pytest.raises(ValueError, match="batch"):
        agent.prefetch(tok[0])
    with pytest.raises(ValueError, match="batch"):
        agent.prefetch(np.asfortranarray(np.ones((2, 3), dtype=np.int64)))
    with pytest.raises(ValueError, match="seq_ids"):
        agent.prefetch(tok, seq_ids=np.arange(2, dtype=np.uint64))
    with pytest.raises(ValueError, match="dead"):
        agent.prefetch(tok, dead=np.zeros((1, 2), dtype=bool))
    with pytest.raises(ValueError, match="flags"):
        agent.prefetch(tok, flags=9)
    with pytest.raises(engrampool.Error) as e:
        agent.prefetch(np.array([[1, 10**6]]), seq_ids=np.array([50], dtype=np.uint64), flags=engrampool.SEQ_START)
    assert "vocabulary" in str(e.value)
    with pytest.raises(engrampool.Error):  # continuing a sequence the agent never saw
        agent.prefetch(tok, seq_ids=np.array([424242], dtype=np.uint64))
    t = agent.prefetch(tok, seq_ids=np.array([51], dtype=np.uint64), flags=engrampool.SEQ_START)
    with pytest.raises(ValueError, match="layer"):
        t.output(5)
    agent.close()
    with pytest.raises(ValueError, match="closed"):
        t.wait()
    with pytest.raises(ValueError, match="closed"):
        agent.prefetch(tok)
    with pytest.raises(engrampool.Error):
        engrampool.Agent(pool_setup.uri, "/no/such/model.json", register=False)
    with pytest.raises(ValueError, match="device"):
        engrampool.Agent(pool_setup.uri, pool_setup.models["pyt-fp8"], device="tpu", register=False)


def test_lookup_into(pool_setup, agent):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    src = packed(*pool_setup.source[("pyt-fp8", 3)])
    ids = rng.integers(0, src.shape[0], size=(16, 24)).astype(np.uint64)
    out = np.zeros((16, 24, 264), dtype=np.uint8)
    assert agent.lookup_into(1, ids, out) is out
    assert np.array_equal(out, src[ids.astype(np.int64)])
    tt = torch.zeros((16 * 24, 264), dtype=torch.uint8)
    agent.lookup_into(1, torch.from_numpy(ids.astype(np.int64)), tt)
    assert np.array_equal(tt.numpy(), src[ids.reshape(-1).astype(np.int64)])
    vals = np.zeros((16 * 24, 256), dtype=np.uint8)
    agent.lookup_into(1, ids, vals, format="values")
    assert np.array_equal(vals, src[ids.reshape(-1).astype(np.int64), :256])
    with pytest.raises(ValueError, match="out"):
        agent.lookup_into(1, ids, np.zeros((3, 264), dtype=np.uint8))
    with pytest.raises(ValueError, match="out"):
        agent.lookup_into(1, ids[:2], np.zeros((2, 264), dtype=np.uint8)[:, ::-1])
    with pytest.raises(TypeError, match="out"):
        agent.lookup_into(1, ids, [0] * 10)
    with pytest.raises(ValueError, match="layer"):
        agent.lookup_into(2, ids, out)
    with pytest.raises(engrampool.Error):
        agent.lookup_into(0, np.array([src.shape[0] + 5]), np.zeros((1, 264), dtype=np.uint8))
    with pytest.raises(ValueError, match="row_ids"):
        agent.lookup_into(0, np.array([-3]), np.zeros((1, 264), dtype=np.uint8))


def test_lookup_into_dequantized(pool_setup, agent):
    vals, scales = pool_setup.source[("pyt-fp8", 1)]
    ids = np.arange(0, vals.shape[0], 7)
    out = np.zeros((len(ids), 256), dtype=np.float32)
    agent.lookup_into(0, ids, out)  # float32 out: f32
    ref = fp8_reference(vals[ids], scales[ids])
    assert np.array_equal(out, ref)


def fp8_reference(v, s):
    """fp8-e4m3 x 2^(e8m0-127) per 32 values, from the bit fields (no lookup table)."""
    v = v.astype(np.int64)
    sign = np.where(v >> 7, -1.0, 1.0)
    e = (v >> 3) & 15
    m = v & 7
    x = sign * np.where(e == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * 2.0 ** (e - 7))
    return (x * np.repeat(2.0 ** (s.astype(np.int64) - 127), 32, axis=1)).astype(np.float32)


def test_many_prefetches_do_not_leak(pool_setup, agent):
    B = 8
    seqs = np.arange(B, dtype=np.uint64) + 1000
    tok = np.arange(B, dtype=np.int64).reshape(B, 1)
    t = agent.prefetch(tok, seq_ids=seqs, flags=engrampool.SEQ_START)
    agent.release(t)

    def steps(n):
        for i in range(n):
            tok[:, 0] = i % 500
            t = agent.prefetch(tok, seq_ids=seqs)
            t.wait()
            t.output(0)
            agent.release(t)
    steps(1000)
    rss0 = rss_bytes()
    steps(10000)
    assert rss_bytes() - rss0 < 4 << 20
    m = agent.metrics()
    assert "tickets" in str(m)


@pytest.mark.parametrize("output", ["planes", "f32", "bf16"])
def test_agent_output_formats(pool_setup, output):
    """output='planes' -> (values, scales) views; 'f32'/'bf16' -> dequantized rows (issue 11 #5)."""
    a = engrampool.Agent(pool_setup.uri, pool_setup.models[FP8_MODEL["name"]], register=False, max_sequences=64,
                         output=output)
    try:
        assert a.output_format == output
        tokens = np.random.default_rng(9).integers(0, 500, size=(4, 5))
        exp = expected_rows(pool_setup, "pyt-fp8", tokens)
        t = a.prefetch(tokens, seq_ids=np.arange(10, 14, dtype=np.uint64),
                       flags=engrampool.SEQ_START | engrampool.SEQ_END)
        for li in range(2):
            v, s = exp[li][..., :256], exp[li][..., 256:]
            got = t.output(li)
            if output == "planes":
                assert np.array_equal(got[0], v) and np.array_equal(got[1], s)
                continue
            ref = fp8_reference(v.reshape(-1, 256), s.reshape(-1, 8)).reshape(v.shape)
            if output == "f32":
                assert got.dtype == np.float32 and np.array_equal(got, ref)
            else:
                u = ref.view(np.uint32).astype(np.uint64)
                want = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
                assert got.dtype == np.uint16 and np.array_equal(got, want)
        a.release(t)
    finally:
        a.close()


def test_agent_takes_its_model_from_the_pool(pool_setup):
    """model="pool:NAME": the record and token map the pool stores, no model file."""
    rng = np.random.default_rng(5)
    tokens = rng.integers(0, 500, size=(3, 7))
    exp = expected_rows(pool_setup, "pyt-fp8", tokens)
    a = engrampool.Agent(pool_setup.uri, "pool:" + FP8_MODEL["name"], register=False, max_sequences=16)
    try:
        t = a.prefetch(tokens, seq_ids=np.arange(3, dtype=np.uint64),
                       flags=engrampool.SEQ_START | engrampool.SEQ_END)
        t.wait()
        for li in range(2):
            assert np.array_equal(t.output(li), exp[li])
        a.release(t)
    finally:
        a.close()
    with pytest.raises(engrampool.Error, match="nope"):
        engrampool.Agent(pool_setup.uri, "pool:nope", register=False)
