#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# lookup_v41_check.py - `engrampool lookup --dead` output of a V4.1-shaped checkpoint against
# numpy: row ids from scripts/engram_numpy.py (dead flags, the checkpoint's token map), rows
# read from the safetensors shards and dequantized here (e4m3 x 2^(e-127) per block of 32).
#
#   lookup_v41_check.py MODEL.json CHECKPOINT_DIR ROWS.npy TOKENS_JSON DEAD_JSON
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from engram_numpy import EngramNumpy  # noqa: E402


def main():
    model, ck, rows_path, tokens, dead = sys.argv[1:6]
    seqs, flags = json.loads(tokens), json.loads(dead)
    cfg = json.load(open(model))
    lookup = np.load(os.path.join(os.path.dirname(model), cfg["vocab_map"]))
    e = EngramNumpy(cfg, lookup)
    index = json.load(open(os.path.join(ck, "model.safetensors.index.json")))["weight_map"]

    def tensor(name):
        with open(os.path.join(ck, index[name]), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            info = json.loads(f.read(n))[name]
            a, b = info["data_offsets"]
            f.seek(8 + n + a)
            return np.frombuffer(f.read(b - a), dtype=np.uint8).reshape(info["shape"])

    def e4m3(b):
        b = b.astype(np.int32)
        s, ex, m = b >> 7, (b >> 3) & 15, b & 7
        v = np.where(ex == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * np.exp2(ex - 7.0))
        v = np.where((ex == 15) & (m == 7), np.nan, v)
        return np.where(s == 1, -v, v)

    got = np.load(rows_path)
    live = np.load(rows_path[:-len(".npy")] + ".live.npy")
    tmax = max(len(s) for s in seqs)
    want_live = [[1 - d for d in f] + [0] * (tmax - len(f)) for f in flags]
    if live.tolist() != want_live:
        sys.exit(f"live mask {live.tolist()} != {want_live}")
    n = bad = 0
    for li, lid in enumerate(e.layer_ids):
        w = tensor(f"layers.{lid}.engram.embed.weight")
        sc = tensor(f"layers.{lid}.engram.embed.scale")
        for b, (seq, fl) in enumerate(zip(seqs, flags)):
            ids = e.hash(np.array([seq]), np.array([fl], dtype=bool))[lid][0] + np.array(e.offsets[lid])
            for t in range(len(seq)):
                for j in range(ids.shape[1]):
                    r = ids[t, j]
                    scale = np.where(sc[r] == 255, np.nan, np.exp2(sc[r].astype(np.float64) - 127))
                    want = (e4m3(w[r]) * np.repeat(scale, w.shape[1] // sc.shape[1])).astype(np.float32)
                    g = got[li, b, t, j]
                    same = np.array_equal(np.isnan(want), np.isnan(g)) and \
                        np.array_equal(want[~np.isnan(want)], g[~np.isnan(g)])
                    bad += not same
                    n += 1
    print(f"{n} rows of lookup --dead equal numpy's dequantized checkpoint rows; {bad} differ")
    sys.exit(1 if bad or n == 0 else 0)


if __name__ == "__main__":
    main()
