# SPDX-License-Identifier: Apache-2.0
# Fixtures of the Python tests: one small file: pool on /dev/shm (removed at the end)
# holding two models' tables imported by the CLI from .npy files written here, and an
# independent numpy hasher (scripts/engram_numpy.py, not the C++ one) for row ids.
import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

SRC = os.environ.get("EP_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("EP_BUILD_ROOT", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "scripts"))

from engram_numpy import EngramNumpy  # noqa: E402

engrampool = pytest.importorskip("engrampool")

CLI = os.path.join(BUILD, "pool_manager", "engrampool")

# DeepSeek-V4.1's row geometry, few rows: orders 2..4 x 8 heads = 24 heads, 256 fp8
# values + 8 e8m0 scales per row.
FP8_MODEL = {
    "name": "pyt-fp8", "engram_vocab_size": 37, "max_ngram_size": 4, "n_embed_per_ngram": 2048,
    "n_head_per_ngram": 8, "layer_ids": [1, 3], "pad_id": 2, "seed": 7, "tokenizer_vocab_size": 500,
    "compressed_vocab_size": 500, "dtype": "fp8-e4m3", "scale": {"dtype": "e8m0", "block": 32},
}
# fp32 rows: dequantization is the identity, so module outputs equal source rows exactly.
FP32_MODEL = {
    "name": "pyt-fp32", "engram_vocab_size": [101, 103], "max_ngram_size": 3, "n_embed_per_ngram": 32,
    "n_head_per_ngram": 2, "layer_ids": [2, 5], "pad_id": 0, "seed": 3, "tokenizer_vocab_size": 300,
    "compressed_vocab_size": 300, "dtype": "fp32",
}


def run_cli(*args):
    r = subprocess.run([CLI, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("engrampool %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def random_fp8(rng, shape):
    v = rng.integers(0, 256, size=shape, dtype=np.uint8)
    v[(v & 0x7F) == 0x7F] = 0x3C  # no NaN codes: results compare with ==
    return v


class PoolSetup:
    def __init__(self, tmp):
        self.tmp = tmp
        self.path = "/dev/shm/ep-pytest-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
        self.uri = "file:" + self.path
        run_cli("create", self.uri, "--size", "64M")
        rng = np.random.default_rng(12345)
        self.models, self.np_hashers, self.source = {}, {}, {}
        for cfg in (FP8_MODEL, FP32_MODEL):
            mpath = os.path.join(tmp, cfg["name"] + ".json")
            with open(mpath, "w") as f:
                json.dump(cfg, f)
            self.models[cfg["name"]] = mpath
            e = EngramNumpy(cfg)
            self.np_hashers[cfg["name"]] = e
            for lid in cfg["layer_ids"]:
                rows = int(sum(e.primes[lid]))
                d = cfg["n_embed_per_ngram"] // cfg["n_head_per_ngram"]
                base = os.path.join(tmp, "%s-%d" % (cfg["name"], lid))
                args = ["import", self.uri, "--model", mpath, "--layer", str(lid), "--from", base + ".npy"]
                if cfg["dtype"] == "fp8-e4m3":
                    values = random_fp8(rng, (rows, d))
                    scales = rng.integers(118, 136, size=(rows, d // 32), dtype=np.uint8)
                    np.save(base + ".npy", values)
                    np.save(base + "-scales.npy", scales)
                    args += ["--scales", base + "-scales.npy"]
                    if lid == 3:  # one packed, one planar table
                        args += ["--layout", "planar"]
                    self.source[(cfg["name"], lid)] = (values, scales)
                else:
                    values = rng.standard_normal((rows, d)).astype(np.float32)
                    np.save(base + ".npy", values)
                    self.source[(cfg["name"], lid)] = (values, None)
                run_cli(*args)

    def row_ids(self, model, tokens, dead=None):
        """{layer_id: [B, T, J] row ids} from the numpy reference (hash + head offset)."""
        e = self.np_hashers[model]
        h = e.hash(np.asarray(tokens, dtype=np.int64), dead)
        return {lid: h[lid] + np.asarray(e.offsets[lid], dtype=np.int64) for lid in e.layer_ids}

    def close(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


@pytest.fixture(scope="session")
def pool_setup(tmp_path_factory):
    s = PoolSetup(str(tmp_path_factory.mktemp("ep")))
    yield s
    s.close()


def packed(values, scales):
    """Source rows as the pool stores them packed: values bytes then scales bytes."""
    v = values.view(np.uint8).reshape(values.shape[0], -1)
    return v if scales is None else np.concatenate([v, scales], axis=1)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
