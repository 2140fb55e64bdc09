# SPDX-License-Identifier: Apache-2.0
# Pool, Table, planes and row reads.
import gc
import os

import numpy as np
import pytest

import engrampool
from conftest import FP8_MODEL, FP32_MODEL, packed, rss_bytes


def mapping_of(path):
    """[(begin, end)] of this process's mappings of file `path` (/proc/self/maps)."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == path:
                b, e = (int(x, 16) for x in parts[0].split("-"))
                out.append((b, e))
    return out


def addr(a):
    return a.__array_interface__["data"][0]


def test_tables_and_attributes(pool_setup):
    with engrampool.Pool(pool_setup.uri) as pool:
        tables = {t.name: t for t in pool.tables()}
        assert set(tables) == {"%s/layer%d" % (m["name"], l) for m in (FP8_MODEL, FP32_MODEL) for l in m["layer_ids"]}
        for (model, lid), (values, scales) in pool_setup.source.items():
            t = tables["%s/layer%d" % (model, lid)]
            assert t.layer == lid
            assert t.rows == values.shape[0] == sum(pool_setup.np_hashers[model].primes[lid])
            assert t.dtype == ("fp8-e4m3" if scales is not None else "fp32")
            assert t.layout == ("planar" if (model, lid) == ("pyt-fp8", 3) else "packed")
            assert t.row_bytes == packed(values[:1], None if scales is None else scales[:1]).shape[1]
        st = pool.stat()
        assert st["tables"] == 4 and st["size"] == 64 << 20 and st["generation"] >= 4
        assert isinstance(pool.hosts(), list)
    assert pool.closed


def test_planes_are_views_for_every_tp_split(pool_setup):
    model = FP8_MODEL["name"]
    heads = 24
    rng = np.random.default_rng(5)
    tokens = rng.integers(0, FP8_MODEL["tokenizer_vocab_size"], size=(3, 40))
    ids = pool_setup.row_ids(model, tokens)
    with engrampool.Pool(pool_setup.uri) as pool:
        maps = mapping_of(pool_setup.path)
        assert maps, "the pool file is not mapped"
        for lid in FP8_MODEL["layer_ids"]:
            t = pool.table("%s/layer%d" % (model, lid))
            src_v, src_s = pool_setup.source[(model, lid)]
            offsets = list(pool_setup.np_hashers[model].offsets[lid]) + [t.rows]
            all_v, all_s = t.planes()
            for tp in (1, 2, 3, 4, 8, 24):
                assert heads % tp == 0
                for rank in range(tp):
                    h0, h1 = rank * heads // tp, (rank + 1) * heads // tp
                    v, s = t.planes(h0, h1)
                    info = t.planes_info(h0, h1)
                    assert not v.flags.writeable and not s.flags.writeable
                    assert (info["row_begin"], info["row_end"]) == (offsets[h0], offsets[h1])
                    # zero-copy: the library's pointers, inside the pool file's mapping,
                    # the same address as the all-heads view at that row, on every call
                    assert addr(v) == info["values"] and addr(s) == info["scales"]
                    assert any(b <= addr(v) and addr(v) + v.strides[0] * len(v) <= e for b, e in maps)
                    assert addr(v) == addr(all_v) + offsets[h0] * all_v.strides[0]
                    assert addr(t.planes(h0, h1)[0]) == addr(v)
                    assert v.strides == (info["values_pitch"], 1) and v.shape == (offsets[h1] - offsets[h0], 256)
                    assert s.shape == (offsets[h1] - offsets[h0], 8)
                    # byte-identical to what was imported
                    r0, r1 = offsets[h0], offsets[h1]
                    assert np.array_equal(v, src_v[r0:r1]) and np.array_equal(s, src_s[r0:r1])
                    # a server kernel's address arithmetic: base + row * pitch + col
                    pitch = info["values_pitch"]
                    assert pitch == (256 if t.layout == "planar" else 264)
                    flat = np.lib.stride_tricks.as_strided(v, shape=((len(v) - 1) * pitch + 256,), strides=(1,))
                    cols = np.arange(256)
                    for h in range(h0, h1):
                        rows = ids[lid][:, :, h].reshape(-1) - r0  # the rank's local rows
                        got = flat[rows[:, None] * pitch + cols[None, :]]
                        assert np.array_equal(got, src_v[rows + r0])


def test_planes_fp32_typed_and_read_only(pool_setup):
    model = FP32_MODEL["name"]
    with engrampool.Pool(pool_setup.uri) as pool:
        t = pool.table("%s/layer5" % model)
        v, s = t.planes()
        assert s is None and v.dtype == np.float32 and v.shape == (t.rows, 16)
        assert np.array_equal(v, pool_setup.source[(model, 5)][0])
        with pytest.raises(ValueError):
            v[0, 0] = 1.0
        tv, ts = t.torch_planes()
        assert ts is None and tv.data_ptr() == addr(v) and tv.shape == v.shape


def test_torch_planes_share_memory(pool_setup):
    torch = pytest.importorskip("torch")
    with engrampool.Pool(pool_setup.uri) as pool:
        t = pool.table("%s/layer1" % FP8_MODEL["name"])
        v, s = t.planes(8, 16)
        tv, ts = t.torch_planes(8, 16)
        assert tv.data_ptr() == addr(v) and ts.data_ptr() == addr(s)
        assert tuple(tv.stride()) == v.strides and tuple(tv.shape) == v.shape
        if not hasattr(torch, "float8_e4m3fn"):
            assert tv.dtype == torch.uint8
        assert np.array_equal(tv.view(torch.uint8).numpy() if tv.dtype != torch.uint8 else tv.numpy(), v)


def test_rows_gather(pool_setup):
    model = FP8_MODEL["name"]
    with engrampool.Pool(pool_setup.uri) as pool:
        t = pool.table("%s/layer3" % model)
        src = packed(*pool_setup.source[(model, 3)])
        ids = np.random.default_rng(1).integers(0, t.rows, size=500)
        assert np.array_equal(t.rows(ids), src[ids])
        assert np.array_equal(t.rows(list(ids[:3])), src[ids[:3]])
        with pytest.raises(engrampool.Error) as e:
            t.rows([0, t.rows])
        assert isinstance(e.value, RuntimeError) and e.value.code < 0 and str(e.value)
        with pytest.raises(ValueError, match="ids"):
            t.rows([-1])
        with pytest.raises(TypeError, match="ids"):
            t.rows(np.array([1.5]))
        with pytest.raises(ValueError, match="format"):
            t.rows([0], format="bogus")


def test_bad_input(pool_setup):
    with pytest.raises(engrampool.Error) as e:
        engrampool.Pool("file:/dev/shm/ep-pytest-no-such-pool")
    assert "no-such-pool" in str(e.value)
    with pytest.raises(engrampool.Error):
        engrampool.Pool("bogus:uri")
    with pytest.raises(TypeError):
        engrampool.Pool(42)
    pool = engrampool.Pool(pool_setup.uri)
    t = pool.table("%s/layer1" % FP8_MODEL["name"])
    with pytest.raises(engrampool.Error):
        pool.table("no/such/table")
    with pytest.raises(ValueError, match="h0"):
        t.planes(3, None)
    with pytest.raises(ValueError):
        t.planes(5, 2)
    with pytest.raises(engrampool.Error):
        t.planes(0, 25)  # past the 24 heads
    v, _ = t.planes()
    pool.close()
    pool.close()  # twice is fine
    for call in (pool.tables, pool.stat, pool.hosts, lambda: pool.table("x"), t.planes, lambda: t.rows([0])):
        with pytest.raises(ValueError, match="closed"):
            call()
    # views taken before close() keep the mapping: still readable, still right
    assert np.array_equal(v[:4], pool_setup.source[(FP8_MODEL["name"], 1)][0][:4])


def test_open_close_cycles_do_not_leak(pool_setup):
    def fds():
        return len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        engrampool.Pool(pool_setup.uri).close()
    rss0, fd0 = rss_bytes(), fds()
    for i in range(1000):
        p = engrampool.Pool(pool_setup.uri)
        if i % 100 == 0:
            p.tables()[0].planes()
        p.close()
    assert fds() == fd0
    assert rss_bytes() - rss0 < 8 << 20
    gc.collect()  # views held by earlier tests' tracebacks (reference cycles)
    assert len(mapping_of(pool_setup.path)) == 0


def test_token_map_stored_in_the_pool(tmp_path):
    """The pool stores a mapped model's token map: Pool.token_map reads it back; an
    identity model stores none (ENOENT)."""
    import errno
    import json
    import uuid
    from conftest import run_cli

    path = "/dev/shm/ep-pytest-map-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
    uri = "file:" + path
    try:
        run_cli("create", uri, "--size", "32M")
        lookup = (np.arange(300, dtype=np.int64) * 7) % 200  # 300 ids -> 200 dense ids
        np.save(str(tmp_path / "m.npy"), lookup)
        mapped = dict(FP32_MODEL, name="pyt-mapped", vocab_map="m.npy")
        del mapped["compressed_vocab_size"]
        for cfg in (mapped, FP32_MODEL):
            mpath = str(tmp_path / (cfg["name"] + ".json"))
            with open(mpath, "w") as f:
                json.dump(cfg, f)
            run_cli("import", uri, "--model", mpath, "--layer", "2", "--random")
        with engrampool.Pool(uri) as pool:
            got = pool.token_map("pyt-mapped")
            assert got.dtype == np.int64 and got.shape == (300,)
            assert np.array_equal(got, lookup)
            with pytest.raises(engrampool.Error) as e:
                pool.token_map(FP32_MODEL["name"])
            assert e.value.code == -errno.ENOENT and "no token map" in str(e.value)
            with pytest.raises(engrampool.Error) as e:
                pool.token_map("absent")
            assert e.value.code == -errno.ENOENT
    finally:
        if os.path.exists(path):
            os.unlink(path)
